using FluentAssertions;
using JasperFx.Events;
using Marten;
using Xunit;

namespace IMikelGo.Relay.Tests.Stores;

/// <summary>
/// Field report F09 against Marten 9 itself (the school connector relies on it): appending with an expected version
/// greater than 0 to a stream that does not exist must throw a concurrency exception and create nothing.
/// </summary>
public sealed class MartenExpectedVersionTests
{
    public sealed record AbsenceRecorded(string Lesson, string Student);

    [Theory]
    [InlineData(EventAppendMode.Rich)]
    [InlineData(EventAppendMode.Quick)]
    public async Task Appending_with_expected_version_3_to_a_missing_stream_throws_and_creates_nothing_F09(EventAppendMode mode)
    {
        using var store = DocumentStore.For(o =>
        {
            o.Connection(PostgresServer.ConnectionString);
            o.DatabaseSchemaName = "f09_" + mode.ToString().ToLowerInvariant();
            o.Events.AppendMode = mode;
            o.Events.StreamIdentity = StreamIdentity.AsString;
        });
        var stream = "lesson-l9-" + Guid.NewGuid().ToString("N");

        await using (var session = store.LightweightSession())
        {
            session.Events.Append(stream, 3, new AbsenceRecorded("L9", "s1"));
            var act = () => session.SaveChangesAsync();
            await act.Should().ThrowAsync<JasperFx.ConcurrencyException>("Marten 9 checks the expected version of a missing stream");
        }

        await using var query = store.QuerySession();
        (await query.Events.FetchStreamStateAsync(stream)).Should().BeNull("the stream still does not exist (version 0)");
        (await query.Events.FetchStreamAsync(stream)).Should().BeEmpty();

        // The same append with the right expectation (a new stream: version 0 → 1) works.
        await using (var session = store.LightweightSession())
        {
            session.Events.StartStream(stream, new AbsenceRecorded("L9", "s1"));
            await session.SaveChangesAsync();
        }

        (await query.Events.FetchStreamStateAsync(stream))!.Version.Should().Be(1);
    }
}
