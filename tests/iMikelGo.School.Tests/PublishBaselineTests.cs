using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.School.Connector;
using IMikelGo.Testing;
using Xunit;

namespace IMikelGo.School.Tests;

/// <summary>
/// The publisher's baseline rebuilt on open must be the one the recorded publishes produced: a later version diffed
/// against a baseline replayed with another effective date names series and occurrences that were never published.
/// </summary>
public sealed class PublishBaselineTests
{
    private static readonly AccountId Anna = new("anna");
    private static readonly DateOnly Effective = new(2026, 10, 5);

    private static CancellationToken None => CancellationToken.None;

    [Fact]
    public async Task A_reopened_connector_diffs_the_next_version_against_the_slots_recorded_with_their_effective_date()
    {
        var inProcess = await PublishThreeVersionsAsync(reopenBeforeTheThird: false);
        var reopened = await PublishThreeVersionsAsync(reopenBeforeTheThird: true);

        // Version 2 continued piano-1 as piano-1.2 from the effective date; version 3 moves that continuation.
        inProcess.Should().NotBeEmpty().And.OnlyContain(r => r.Occurrence.Series == new SeriesId("piano-1.2") && r.Occurrence.Date >= Effective);
        reopened.Should().Equal(inProcess, "a command line opens the school anew for every publish");
    }

    private static async Task<List<LessonRescheduled>> PublishThreeVersionsAsync(bool reopenBeforeTheThird)
    {
        await using var world = new ConnectorWorld();
        world.Options.Time = TestTime.At();
        var school = await world.InitAsync("small-school");
        await school.ImportAsync("json", Timetable("Klavier", "16:00"), null, None);
        await school.PublishAsync(null, None);
        await school.ImportAsync("json", Timetable("Klavier (Ensemble)", "16:00"), null, None);
        await school.PublishAsync(null, Effective, None);
        if (reopenBeforeTheThird)
        {
            school = await world.ReopenAsync();
        }

        var before = school.ReplicaOf(Anna)!.Position.Seq;
        await school.ImportAsync("json", Timetable("Klavier (Ensemble)", "17:00"), null, None);
        await school.PublishAsync(null, Effective, None);
        return [.. school.ReplicaOf(Anna)!.Ledger.Applied.Where(e => e.Account == Anna && e.Seq > before).Select(e => e.Payload).OfType<LessonRescheduled>()];
    }

    private static string Timetable(string subject, string start) => $$"""
        {
          "school": "Musikschule Klein",
          "term": { "start": "2026-09-14", "end": "2026-12-18" },
          "teachers": [ { "id": "anna", "name": "Anna Keller" } ],
          "groups": [ { "id": "ensemble-a", "name": "Ensemble A", "members": [ { "id": "lea", "name": "Lea M." } ] } ],
          "rooms": [ { "id": "r101", "name": "Raum 101" } ],
          "lessons": [
            { "id": "piano-1", "subject": "{{subject}}", "teacher": "anna", "groups": ["ensemble-a"], "room": "r101", "weekday": "monday", "start": "{{start}}", "duration": 45 }
          ]
        }
        """;
}
