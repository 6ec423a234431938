using System.Diagnostics;
using FluentAssertions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Testing;
using Xunit;
using Xunit.Abstractions;

namespace IMikelGo.Engine.Tests.Merge;

/// <summary>
/// The projection stays near-linear in the number of events: the frontier per occurrence is bounded by the number
/// of replicas and the series index avoids scanning every occurrence per series. Figures are in the benchmarks;
/// this only guards against a quadratic regression with a generous bound.
/// </summary>
public sealed class ScaleTests(ITestOutputHelper output)
{
    [Fact]
    public void Projection_of_many_events_is_fast()
    {
        var events = Environment.GetEnvironmentVariable("IMIKELGO_LONG") == "1" ? 100_000 : 8_000;
        using var s = SchoolScenario.Create(new ScenarioOptions { Devices = 3, Weeks = 52, Students = 3 });
        var lessons = s.School.Calendar.Lessons();
        var calendar = new Calendar(s.Account);
        foreach (var e in s.AllEvents())
        {
            calendar.Apply(e.Event, e.Event.Replica == s.School.Id);
        }

        // Device writers produce chained events directly (signed once per batch); applied in causal order.
        var writers = s.Devices.Select(d => new ReplicaWriter(s.Account, TestKeys.For(d.Id == s.Device(1).Id ? "d1" : d.Id == s.Device(2).Id ? "d2" : "d3"), TestTime.At(),
            d.Position)).ToList();
        foreach (var w in writers)
        {
            w.Observe(s.School.Ledger.Heads(s.Account));
        }

        var written = 0;
        var round = 0;
        var applying = TimeSpan.Zero;
        var watch = Stopwatch.StartNew();
        while (written < events)
        {
            var batch = new List<Event>();
            foreach (var (w, i) in writers.Select((w, i) => (w, i)))
            {
                // Five edits per checkpoint signature; every writer edits the same lessons this round.
                var payloads = Enumerable.Range(0, 5).Select(k =>
                {
                    var lesson = lessons[((round * 5) + k) % lessons.Count].Occurrence;
                    return ((round + i + k) % 4) switch
                    {
                        0 => (LessonEvent)new LessonHeld(lesson, "n"),
                        1 => new LessonCancelled(lesson, CancellationReason.StudentIll, false, null),
                        2 => new StudentAbsent(lesson, new StudentId("s2"), true, null),
                        _ => new LessonRescheduled(lesson, lesson.Date.AddDays(1), 17 * 60, 45, new RoomId("r2")),
                    };
                }).ToList();
                batch.AddRange(w.AppendBatch(payloads, _ => null, out _)!.Select(e => e.Event));
            }

            var applyStart = watch.Elapsed;
            foreach (var e in batch)
            {
                calendar.Apply(e, isSchool: false);
            }

            applying += watch.Elapsed - applyStart;

            // Writers see each other every third round, so many edits stay concurrent.
            if (round % 3 == 2)
            {
                var all = batch.Aggregate(VectorClock.Empty, (c, e) => c.Merge(e.Clock));
                writers.ForEach(w => w.Observe(all));
            }

            written += batch.Count;
            round++;
        }

        var write = watch.Elapsed;
        watch.Restart();
        var digest = calendar.Digest();
        var built = watch.Elapsed;
        watch.Restart();
        calendar.Lessons().Should().HaveCount(lessons.Count);
        calendar.Digest().Should().Be(digest);
        var cached = watch.Elapsed;
        output.WriteLine($"{written} events: write+apply {write.TotalMilliseconds:F0} ms (apply {applying.TotalMilliseconds:F0} ms), first digest {built.TotalMilliseconds:F0} ms, lessons+digest again {cached.TotalMilliseconds:F0} ms, {calendar.Conflicts().Count} conflicts");
        calendar.Conflicts().Should().NotBeEmpty("devices edit the same lesson concurrently");
        built.Should().BeLessThan(TimeSpan.FromSeconds(10));
    }
}
