using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Engine.Tests.WireFormat;

/// <summary>One golden vector: a named byte string and its SHA-256.</summary>
internal sealed record GoldenVector(string Name, byte[] Bytes)
{
    public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Bytes));

    public string Text => Encoding.UTF8.GetString(Bytes);

    /// <summary>The block as it appears in docs/wire-format.md.</summary>
    public string Markdown => $"<!-- golden:{Name} -->\n```json\n{Text}\n```\nSHA-256: `{Sha256}`\n";
}

/// <summary>
/// The golden vectors of docs/wire-format.md, built in code from deterministic keys and a fixed clock. The doc is
/// the single written copy; <see cref="FromDoc"/> parses it and the tests compare both, so they cannot drift.
/// </summary>
internal static partial class GoldenVectors
{
    public static string DocPath => Path.Combine(Repo.Root ?? throw new InvalidOperationException("repository root not found"), "docs", "wire-format.md");

    /// <summary>Builds every vector; only the current culture/time zone of the calling thread varies between calls.</summary>
    public static IReadOnlyList<GoldenVector> Build(Func<DateTimeOffset, DateTimeOffset>? shiftOffset = null)
    {
        using var world = new World();
        if (shiftOffset is not null)
        {
            world.Time.Now = shiftOffset(world.Time.Now);
        }

        var school = world.Write(world.School, [world.Opened(), World.Published(), world.Enroll(world.D1Key, "tablet")]);
        if (shiftOffset is not null)
        {
            world.Time.Now = shiftOffset(world.Time.Now);
        }

        world.D1.Observe(school[^1].Event.Clock);

        // "Mu\u0308ller" is decomposed (NFD) on purpose: the wire carries the NFC form "Müller".
        var cancelled = world.Write(world.D1, [new LessonCancelled(
            World.Occurrence(3), CancellationReason.StudentIll, true, "Mu\u0308ller: \"krank\"\n\tRückruf\u0001")])[0];
        var absent = world.Write(world.D1, [new StudentAbsent(World.Occurrence(10), new StudentId("s2"), false, "Fieber 🤒 – keine Nachricht")])[0];

        return
        [
            new("school-1-account-opened", [.. school[0].Event.Body]),
            new("school-2-series-published", [.. school[1].Event.Body]),
            new("school-3-device-enrolled", [.. school[2].Event.Body]),
            new("d1-1-lesson-cancelled", [.. cancelled.Event.Body]),
            new("d1-2-student-absent", [.. absent.Event.Body]),
            new("d1-2-checkpoint-statement", Checkpoint.Statement(World.Account, world.D1.Replica, absent.Event.Seq, absent.Event.Hash)),
        ];
    }

    /// <summary>Parses the vectors written in the doc: name → (exact bytes between the fences, stated SHA-256).</summary>
    public static IReadOnlyDictionary<string, (byte[] Bytes, string Sha256)> FromDoc(string markdown)
    {
        var result = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (Match m in Block().Matches(markdown.ReplaceLineEndings("\n")))
        {
            result.Add(m.Groups["name"].Value, (Encoding.UTF8.GetBytes(m.Groups["body"].Value), m.Groups["sha"].Value));
        }

        return result;
    }

    [GeneratedRegex("<!-- golden:(?<name>[a-z0-9-]+) -->\n```json\n(?<body>[^\n]*)\n```\nSHA-256: `(?<sha>[0-9a-f]{64})`")]
    private static partial Regex Block();
}
