using CsCheck;
using FluentAssertions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Testing;
using Xunit;
using Xunit.Abstractions;

namespace IMikelGo.Engine.Tests.Merge;

/// <summary>
/// Random multi-replica histories delivered in random orders, with duplicates and delays: every replica and
/// observer reaches the same digest, which equals a fold of the events in one canonical causal order, and the
/// domain invariants hold. CI runs a fixed set of seeds; IMIKELGO_LONG=1 adds a long random CsCheck run.
/// </summary>
public sealed class ConvergenceProperties(ITestOutputHelper output)
{
    private static readonly Gen<int[]> Choices = Gen.Int[0, int.MaxValue].Array[10, 70];

    private static bool Long => Environment.GetEnvironmentVariable("IMIKELGO_LONG") == "1";

    [Fact]
    public void Fixed_seeds_converge_and_keep_invariants()
    {
        var iterations = Long ? 400 : 40;
        var conflicts = 0;
        var resolutions = 0;
        for (var i = 0; i < iterations; i++)
        {
            var choices = Choices.Generate(new PCG(7, (ulong)i), null, out _);
            var (c, r) = CheckHistory(choices, i);
            conflicts += c;
            resolutions += r;
        }

        output.WriteLine($"{iterations} histories, {conflicts} conflicts, {resolutions} resolutions");
        conflicts.Should().BeGreaterThan(iterations / 4, "the generator must produce colliding edits");
        resolutions.Should().BeGreaterThan(0, "the generator must produce resolutions");
    }

    [Fact]
    public void Random_histories_converge_when_IMIKELGO_LONG_is_set()
    {
        if (!Long)
        {
            return;
        }

        Choices.Sample(choices => CheckHistory(choices, choices.Length), iter: 2000, print: c => string.Join(",", c));
    }

    private static (int Conflicts, int Resolutions) CheckHistory(int[] choices, int seed)
    {
        using var history = HistoryGenerator.Play(choices);
        var s = history.Scenario;
        try
        {
            // Finish delivery among the replicas over an unreliable network.
            var network = new Network(seed);
            foreach (var r in s.Replicas)
            {
                network.Broadcast(r, s.Replicas);
            }

            network.Flush();
            s.SyncAll();
            var events = history.Events;

            // Fresh observers get everything shuffled, duplicated and in delayed batches.
            var random = new Random(seed);
            var observers = new List<Ledger>();
            for (var o = 0; o < 2; o++)
            {
                var ledger = new Ledger(null, TestTime.At());
                var net = new Network(seed * 31 + o, duplicateRate: 0.3, delayRate: 0.5);
                net.Post(ledger, Network.Shuffle(events, random, 0.3));
                net.Step();
                net.Step();
                net.Flush();
                net.Reports.Should().OnlyContain(rep => rep.IsClean);
                ledger.Held().Should().BeEmpty();
                observers.Add(ledger);
            }

            // The reference: the calendar folded over one canonical causal order (sum of the vector clock, then replica, then seq).
            var school = s.School.Id;
            var reference = new Calendar(s.Account);
            foreach (var e in events.Select(e => e.Event).OrderBy(e => e.Clock.Sum).ThenBy(e => e.Replica).ThenBy(e => e.Seq))
            {
                reference.Apply(e, e.Replica == school);
            }

            var digest = reference.Digest();
            foreach (var r in s.Replicas)
            {
                r.Ledger.AppliedCount.Should().Be(events.Count);
                r.Calendar.Digest().Should().Be(digest, $"replica {r.Id} must equal the canonical fold");
            }

            foreach (var o in observers)
            {
                o.Calendar(s.Account).Digest().Should().Be(digest, "an observer must equal the canonical fold");
            }

            CheckInvariants(reference, events.Select(e => e.Event).ToList(), school, history);
            return (reference.Conflicts().Count, history.Resolutions.Count);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"history (choices {string.Join(",", choices)}) failed:{Environment.NewLine}{history}", ex);
        }
    }

    /// <summary>Checks the domain invariants against a model computed independently from the raw events.</summary>
    private static void CheckInvariants(Calendar calendar, IReadOnlyList<Event> events, ReplicaId school, History history)
    {
        var byHash = events.ToDictionary(e => e.Hash);
        var lessons = calendar.Lessons();
        var conflicts = calendar.Conflicts();

        // Honest authors only record what applies to what they had seen, so nobody may reject it elsewhere.
        calendar.Rejected.Should().BeEmpty("an intent is judged by its author's causal past only");

        // The schedule, modelled from the school's chain alone.
        var schoolEvents = events.Where(e => e.Replica == school).OrderBy(e => e.Seq).ToList();
        SeriesPublished? series = null;
        foreach (var e in schoolEvents)
        {
            series = e.Payload switch
            {
                SeriesPublished p => p,
                SeriesWithdrawn => null,
                _ => series,
            };
        }

        var holidays = schoolEvents.Select(e => e.Payload).OfType<HolidaysDeclared>().ToList();
        var expectedDates = series is null ? [] : series.Dates(d => holidays.Exists(h => d >= h.From && d <= h.To)).ToList();
        lessons.Select(l => l.Occurrence.Date).Order().Should().Equal(expectedDates, "the calendar lists exactly the series' dates minus holidays");

        foreach (var lesson in lessons)
        {
            // Every absence refers to an existing occurrence and a student of its series.
            lesson.Absent.Keys.Should().BeSubsetOf(series!.Students.Select(st => st.Value));
            lesson.Students.Should().Equal(series.Students);

            // No occurrence both held and cancelled (its causally maximal intents) without a conflict record.
            var maximal = MaximalIntents(lesson.Occurrence, events, byHash, calendar);
            if (maximal.OfType<LessonHeld>().Any() && maximal.OfType<LessonCancelled>().Any())
            {
                conflicts.Should().Contain(c => c.Occurrence == lesson.Occurrence, $"{lesson.Occurrence} has concurrent held and cancelled");
            }

            if (lesson.Status == LessonStatus.Scheduled)
            {
                lesson.DecidedBy.Should().BeNull();
            }
            else
            {
                byHash.Should().ContainKey(lesson.DecidedBy!.Value);
            }
        }

        foreach (var c in conflicts)
        {
            // Every conflict names two applied events and a known rule.
            byHash.Should().ContainKey(c.Winner);
            byHash.Should().ContainKey(c.Loser);
            c.Winner.Should().NotBe(c.Loser);
            MergeRules.All.Should().Contain(c.Rule);
        }

        // A resolution removes the conflict it resolved.
        foreach (var resolved in history.Resolutions)
        {
            conflicts.Should().NotContain(c => c.Occurrence == resolved.Conflict.Occurrence && c.Winner == resolved.Conflict.Winner &&
                c.Loser == resolved.Conflict.Loser && c.Rule == resolved.Conflict.Rule);
        }
    }

    private static List<LessonEvent> MaximalIntents(OccurrenceId occurrence, IReadOnlyList<Event> events, Dictionary<EventHash, Event> byHash, Calendar calendar)
    {
        var rejected = calendar.Rejected.Select(r => r.Event).ToHashSet();
        var status = events.Where(e => !rejected.Contains(e.Hash) && e.Payload is LessonCancelled or LessonRescheduled or LessonHeld or ConflictResolved &&
            Calendar.OccurrenceOf(e.Payload) == occurrence).ToList();
        return [.. status
            .Where(e => !status.Exists(o => o != e && o.Clock.HasSeen(e.Replica, e.Seq)))
            .Select(e => e.Payload is ConflictResolved r ? byHash[r.Keep].Payload : e.Payload)];
    }

    [Fact]
    public void Same_choices_give_the_same_history_to_the_byte()
    {
        var choices = Choices.Generate(new PCG(7, 12345), null, out _);
        using var a = HistoryGenerator.Play(choices);
        using var b = HistoryGenerator.Play(choices);
        a.Events.Select(e => e.Event.Hash).Should().Equal(b.Events.Select(e => e.Event.Hash), "ECDSA checkpoint signatures are randomized; event identities are not");
        a.Steps.Should().Equal(b.Steps);
    }
}
