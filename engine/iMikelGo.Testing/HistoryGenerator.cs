using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;

namespace IMikelGo.Testing;

/// <summary>A resolution recorded during a generated history: which conflict it resolved.</summary>
/// <param name="Resolution">The <c>conflict.resolved</c> event.</param>
/// <param name="Conflict">The conflict it resolved, as its author saw it.</param>
public sealed record ResolvedConflict(EventHash Resolution, ConflictRecord Conflict);

/// <summary>A generated multi-replica history: the scenario (replicas in their final, possibly unsynced, state) and what happened.</summary>
public sealed class History : IDisposable
{
    internal History(SchoolScenario scenario) => Scenario = scenario;

    /// <summary>The school and devices after the history ran; they are not necessarily synced.</summary>
    public SchoolScenario Scenario { get; }

    /// <summary>Each step, in words (for failure messages).</summary>
    public List<string> Steps { get; } = [];

    /// <summary>Every resolution recorded, with the conflict it resolved.</summary>
    public List<ResolvedConflict> Resolutions { get; } = [];

    /// <summary>Every event recorded by any replica, each once.</summary>
    public IReadOnlyList<SignedEvent> Events => Scenario.AllEvents();

    /// <inheritdoc />
    public override string ToString() => string.Join(Environment.NewLine, Steps);

    /// <inheritdoc />
    public void Dispose() => Scenario.Dispose();
}

/// <summary>
/// Generates random multi-replica histories with concurrent and conflicting edits: series changes, withdrawals,
/// holidays, school cancellations, teacher cancels, moves, held, absences, withdrawn absences, conflict
/// resolutions, and partial syncs over an unreliable <see cref="Network"/> in between. A history is a pure function
/// of a list of integer choices, so a property-testing library shrinks it by shrinking the list, e.g. with CsCheck:
/// <c>Gen.Int[0, int.MaxValue].Array[10, 60].Select(c =&gt; HistoryGenerator.Play(c))</c>.
/// </summary>
public static class HistoryGenerator
{
    /// <summary>Plays the history described by <paramref name="choices"/>: one step per choice, further choices drawn round-robin.</summary>
    /// <param name="choices">The random choices (any integers).</param>
    /// <param name="devices">Number of devices; by default 2–4, taken from the first choice.</param>
    public static History Play(IReadOnlyList<int> choices, int? devices = null)
    {
        ArgumentNullException.ThrowIfNull(choices);
        var next = new Choices(choices);
        var deviceCount = devices ?? 2 + next.Below(3);
        var scenario = SchoolScenario.Create(new ScenarioOptions { Devices = deviceCount, Weeks = 4, Students = 2 });
        var history = new History(scenario);
        var network = new Network(next.Below(int.MaxValue));
        for (var step = 0; step < choices.Count; step++)
        {
            var kind = next.Below(20);
            var author = kind < 2 ? scenario.School : scenario.Devices[next.Below(deviceCount)];
            var description = kind switch
            {
                < 2 => SchoolEdit(scenario, next),
                < 7 => StatusEdit(scenario, author, next),
                < 10 => AbsenceEdit(scenario, author, next),
                < 12 => Resolve(history, author, next),
                < 18 => Exchange(scenario, network, next),
                _ => Flush(scenario, network),
            };
            if (description is not null)
            {
                history.Steps.Add($"{step}: {description}");
            }
        }

        return history;
    }

    private static string? Exchange(SchoolScenario s, Network network, Choices next)
    {
        var replicas = s.Replicas;
        var from = replicas[next.Below(replicas.Count)];
        var to = replicas[next.Below(replicas.Count)];
        if (ReferenceEquals(from, to))
        {
            network.Step();
            return "network step";
        }

        network.Send(from, to);
        network.Step();
        return $"send {from.Id} → {to.Id}, partial delivery";
    }

    private static string Flush(SchoolScenario s, Network network)
    {
        foreach (var r in s.Replicas)
        {
            network.Broadcast(r, s.Replicas);
        }

        network.Flush();
        return "full sync";
    }

    private static string? SchoolEdit(SchoolScenario s, Choices next)
    {
        var calendar = s.School.Calendar;
        var current = s.Published;
        var lessons = calendar.Lessons();
        LessonEvent payload = next.Below(7) switch
        {
            0 => current with { StartMinute = 14 * 60 + (15 * next.Below(8)) },
            1 => current with { Room = new RoomId($"r{1 + next.Below(3)}") },
            2 => new SeriesWithdrawn(s.Series, "teacher left"),
            3 => current with { Students = [s.Students[0]] },
            4 => current,
            5 when lessons.Count > 0 => Holiday(lessons[next.Below(lessons.Count)].Occurrence.Date, next.Below(2) * 7),
            _ when lessons.Count > 0 => new LessonCancelled(lessons[next.Below(lessons.Count)].Occurrence, CancellationReason.SchoolClosed, false, "school closed"),
            _ => current,
        };
        return TryRecord(s, s.School, payload);
    }

    private static HolidaysDeclared Holiday(DateOnly from, int extraDays) => new("holiday", from, from.AddDays(extraDays));

    private static string? StatusEdit(SchoolScenario s, Replica author, Choices next)
    {
        var lessons = author.Calendar.Lessons();
        if (lessons.Count == 0)
        {
            return null;
        }

        var occurrence = lessons[next.Below(lessons.Count)].Occurrence;
        LessonEvent payload = next.Below(3) switch
        {
            0 => new LessonCancelled(occurrence, (CancellationReason)next.Below(4), next.Below(2) == 0, null),
            1 => new LessonRescheduled(occurrence, occurrence.Date.AddDays(next.Below(3)), 17 * 60 + (30 * next.Below(3)), 45, new RoomId($"r{1 + next.Below(3)}")),
            _ => new LessonHeld(occurrence, next.Below(2) == 0 ? null : "scales"),
        };
        return TryRecord(s, author, payload);
    }

    private static string? AbsenceEdit(SchoolScenario s, Replica author, Choices next)
    {
        var lessons = author.Calendar.Lessons();
        if (lessons.Count == 0)
        {
            return null;
        }

        var lesson = lessons[next.Below(lessons.Count)];
        var student = lesson.Students[next.Below(lesson.Students.Length)];
        LessonEvent payload = next.Below(3) == 0
            ? new AbsenceWithdrawn(lesson.Occurrence, student)
            : new StudentAbsent(lesson.Occurrence, student, next.Below(2) == 0, null);
        return TryRecord(s, author, payload);
    }

    private static string? Resolve(History history, Replica author, Choices next)
    {
        var conflicts = author.Calendar.Conflicts().Where(c => c.Rule != MergeRules.SchoolRemovedLesson).ToList();
        if (conflicts.Count == 0)
        {
            return null;
        }

        var conflict = conflicts[next.Below(conflicts.Count)];
        var keepLoser = next.Below(2) == 0 && conflict.Rule != MergeRules.CancellationVoidsAbsence;
        var keep = keepLoser || conflict.Rule == MergeRules.SchoolOutranksTeacher && IsSeriesChange(author, conflict.Winner) ? conflict.Loser : conflict.Winner;
        var payload = new ConflictResolved(conflict.Occurrence, keep);
        var result = TryRecord(history.Scenario, author, payload);
        if (result is not null && !result.StartsWith("refused", StringComparison.Ordinal))
        {
            history.Resolutions.Add(new ResolvedConflict(history.Scenario.Recorded[^1].Event.Hash, conflict));
        }

        return result;
    }

    private static bool IsSeriesChange(Replica author, EventHash hash) =>
        author.Ledger.Applied.FirstOrDefault(e => e.Hash == hash)?.Payload is SeriesPublished;

    private static string TryRecord(SchoolScenario s, Replica author, LessonEvent payload)
    {
        try
        {
            var e = s.Record(author, [payload]);
            return $"{author.Id} records {e.Event.Describe()}: {payload}";
        }
        catch (ScenarioAssertionException ex)
        {
            return $"refused: {ex.Message}";
        }
    }

    private sealed class Choices(IReadOnlyList<int> values)
    {
        private int _at;

        public int Below(int bound) => values.Count == 0 ? 0 : (int)((uint)values[_at++ % values.Count] % (uint)bound);
    }
}
