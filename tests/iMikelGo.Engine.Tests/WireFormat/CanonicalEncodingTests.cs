using System.Globalization;
using System.Security.Cryptography;
using FluentAssertions;
using IMikelGo.Engine.Canonical;
using IMikelGo.Engine.Chains;
using Xunit;

namespace IMikelGo.Engine.Tests.WireFormat;

public sealed class CanonicalEncodingTests
{
    [Fact]
    public void Golden_vectors_in_the_doc_match_the_code_byte_for_byte()
    {
        var built = GoldenVectors.Build();
        var doc = GoldenVectors.FromDoc(File.ReadAllText(GoldenVectors.DocPath));
        doc.Keys.Should().BeEquivalentTo(built.Select(v => v.Name), "every vector in the doc is built by the code and vice versa");
        foreach (var vector in built)
        {
            var (bytes, sha) = doc[vector.Name];
            Lines.Text(bytes).Should().Be(vector.Text, $"the doc's bytes of {vector.Name} must be what the engine writes; expected block:\n{vector.Markdown}");
            bytes.Should().Equal(vector.Bytes);
            sha.Should().Be(vector.Sha256, $"the doc's SHA-256 of {vector.Name}");
            Convert.ToHexStringLower(SHA256.HashData(bytes)).Should().Be(sha, "the doc's hash is the hash of the doc's bytes");
        }
    }

    [Fact]
    public void Log_lines_are_the_canonical_encoding_of_their_members_with_and_without_checkpoints()
    {
        var random = new Random(20261204);
        using var history = IMikelGo.Testing.HistoryGenerator.Play([.. Enumerable.Range(0, 400).Select(_ => random.Next())]);
        var events = history.Events.SelectMany(e => new[] { e, e.WithoutCheckpoint() }).ToList();
        events.Should().Contain(e => e.IsCheckpoint).And.Contain(e => !e.IsCheckpoint);
        foreach (var e in events)
        {
            var members = new ObjectBuilder()
                .Add("event", CanonicalJson.Decode(e.Event.Body.AsSpan()))
                .Add("hash", e.Event.Hash.Hex);
            if (e.IsCheckpoint)
            {
                members.Add("checkpoint", Convert.ToBase64String(e.Checkpoint.AsSpan()));
            }

            e.ToLineBytes().Should().Equal(CanonicalJson.Encode(members.Build()), $"the line of {e.Event.Describe()} is what the canonical encoder writes");
            SignedEvent.ParseLine(e.ToLineBytes()).Event.Hash.Should().Be(e.Event.Hash);
        }
    }

    [Fact]
    public void Golden_event_bodies_decode_and_reencode_to_the_same_bytes()
    {
        foreach (var vector in GoldenVectors.Build().Where(v => !v.Name.EndsWith("statement", StringComparison.Ordinal)))
        {
            var parsed = SignedEvent.ParseBody(vector.Bytes);
            parsed.Event.Body.Should().Equal(vector.Bytes);
            parsed.Event.Hash.Hex.Should().Be(vector.Sha256);
        }
    }

    [Theory]
    [InlineData("de-DE")]
    [InlineData("tr-TR")]
    [InlineData("")]
    [InlineData("ar-SA")]
    [InlineData("th-TH")]
    public void Bytes_do_not_depend_on_the_current_culture(string culture)
    {
        var reference = GoldenVectors.Build().Select(v => v.Bytes).ToList();
        List<byte[]>? underCulture = null;
        var thread = new Thread(() =>
        {
            var c = CultureInfo.GetCultureInfo(culture);
            CultureInfo.CurrentCulture = c;
            CultureInfo.CurrentUICulture = c;
            underCulture = [.. GoldenVectors.Build().Select(v => v.Bytes)];
        });
        thread.Start();
        thread.Join();
        underCulture.Should().NotBeNull();
        underCulture!.Should().HaveCount(reference.Count);
        for (var i = 0; i < reference.Count; i++)
        {
            underCulture[i].Should().Equal(reference[i], $"vector {i} under culture '{culture}'");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(60)]
    [InlineData(13 * 60 + 45)] // Pacific/Chatham in summer
    [InlineData(-(9 * 60 + 30))]
    public void The_same_instant_at_any_utc_offset_gives_the_same_bytes(int offsetMinutes)
    {
        var reference = GoldenVectors.Build().Select(v => v.Bytes).ToList();
        var shifted = GoldenVectors.Build(t => t.ToOffset(TimeSpan.FromMinutes(offsetMinutes))).Select(v => v.Bytes).ToList();
        for (var i = 0; i < reference.Count; i++)
        {
            shifted[i].Should().Equal(reference[i]);
        }
    }

    [Fact]
    public void Wall_time_is_stored_with_microsecond_precision()
    {
        using var world = new World();
        world.Time.Now = new DateTimeOffset(2026, 9, 3, 16, 0, 0, TimeSpan.Zero).AddTicks(1_234_567);
        var e = world.School.Append(world.Opened()).Event;
        e.Time.WallMicros.Should().Be(1_788_451_200_123_456);
        e.Time.Wall.Should().Be(new DateTimeOffset(2026, 9, 3, 16, 0, 0, TimeSpan.Zero).AddTicks(1_234_560));
        Lines.Text(e.Body.AsSpan()).Should().Contain("\"wall\":1788451200123456");
    }
}

/// <summary>Tests that change the process-wide local time zone run alone.</summary>
[CollectionDefinition(nameof(LocalTimeZoneCollection), DisableParallelization = true)]
public sealed class LocalTimeZoneCollection;

[Collection(nameof(LocalTimeZoneCollection))]
public sealed class LocalTimeZoneTests
{
    /// <summary>
    /// Switches the process's local time zone in place (TZ plus <see cref="TimeZoneInfo.ClearCachedData"/>, which
    /// .NET on Unix honours) and encodes again. Cheaper than a child process, and it proves the switch happened.
    /// </summary>
    [Theory]
    [InlineData("UTC")]
    [InlineData("Europe/Berlin")]
    [InlineData("Pacific/Chatham")]
    public void Bytes_do_not_depend_on_the_local_time_zone(string zone)
    {
        var reference = GoldenVectors.Build().Select(v => v.Bytes).ToList();
        var previous = Environment.GetEnvironmentVariable("TZ");
        try
        {
            Environment.SetEnvironmentVariable("TZ", zone);
            TimeZoneInfo.ClearCachedData();
            TimeZoneInfo.Local.Id.Should().Be(zone, "the local time zone switch must take effect for this test to mean anything");
            var underZone = GoldenVectors.Build(t => TimeZoneInfo.ConvertTime(t, TimeZoneInfo.Local)).Select(v => v.Bytes).ToList();
            for (var i = 0; i < reference.Count; i++)
            {
                underZone[i].Should().Equal(reference[i], $"vector {i} with local time zone {zone}");
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable("TZ", previous);
            TimeZoneInfo.ClearCachedData();
        }
    }
}
