using FluentAssertions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Testing;
using Xunit;

namespace IMikelGo.Engine.Tests.Merge;

/// <summary>Field reports F06 and F07 (../shared/cases/field-reports.md) in the project's terms.</summary>
public sealed class FieldReportTests
{
    /// <summary>
    /// F06: D1 cancels L1 with vc {D1:3, D2:2}; concurrently D2 reschedules L1 with {D1:2, D2:3}. Delivered in both
    /// orders to D1, D2 and the school, all reach the same state and report the pair as a conflict decided by
    /// cancel-beats-reschedule. The loser is given the later wall time and the smaller hash, so neither decides.
    /// </summary>
    [Fact]
    public void F06_cancel_beats_concurrent_reschedule_regardless_of_wall_time_and_hash()
    {
        for (var attempt = 0; attempt < 64; attempt++)
        {
            using var s = SchoolScenario.Create(devices: 2);
            var (d1, d2) = (s.Device(1), s.Device(2));
            var l1 = s.Lesson(6);
            s.Given(d1.Records(new LessonHeld(s.Lesson(0), null)), d1.Records(new LessonHeld(s.Lesson(1), null)),
                d2.Records(new LessonHeld(s.Lesson(2), null)), d2.Records(new LessonHeld(s.Lesson(3), null)));
            s.ClockOf(d2).Advance(TimeSpan.FromHours(3)); // the loser writes later by the wall clock
            s.When(
                d1.Records(new LessonCancelled(l1, CancellationReason.TeacherIll, true, $"ill {attempt}")),
                d2.Records(new LessonRescheduled(l1, l1.Date.AddDays(1), 18 * 60, 45, new RoomId("r2"))));
            var (cancel, move) = (s.LastWhen[0].Event, s.LastWhen[1].Event);
            if (string.CompareOrdinal(move.Hash.Hex, cancel.Hash.Hex) > 0)
            {
                continue; // try another note until the loser also has the "smaller" hash
            }

            cancel.Clock[d1.Id].Should().Be(3);
            cancel.Clock[d2.Id].Should().Be(2);
            move.Clock[d1.Id].Should().Be(2);
            move.Clock[d2.Id].Should().Be(3);
            move.Time.IsAfter(cancel.Time).Should().BeTrue("the loser has the later wall time");

            // Both orders: the school gets cancel first, an observer move first; each device gets the other's event.
            var cancelFirst = s.School;
            cancelFirst.Receive([s.LastWhen[0]]);
            cancelFirst.Receive([s.LastWhen[1]]);
            var moveFirst = s.NewReplica("observer");
            moveFirst.Receive(s.School.Ledger.Export(s.Account).Where(e => e.Event.Hash != cancel.Hash && e.Event.Hash != move.Hash));
            moveFirst.Receive([s.LastWhen[1]]);
            moveFirst.Receive([s.LastWhen[0]]);
            d1.Receive([s.LastWhen[1]]);
            d2.Receive([s.LastWhen[0]]);

            var digest = s.School.Calendar.Digest();
            foreach (var r in new[] { d1, d2, moveFirst })
            {
                r.Calendar.Digest().Should().Be(digest);
            }

            var lesson = d2.Calendar.Lessons().Single(l => l.Occurrence == l1);
            lesson.Status.Should().Be(LessonStatus.Cancelled);
            lesson.DecidedBy.Should().Be(cancel.Hash);
            var conflict = d2.Calendar.Conflicts().Should().ContainSingle().Which;
            conflict.Should().Be(conflict with { Occurrence = l1, Winner = cancel.Hash, Loser = move.Hash, Rule = MergeRules.CancelBeatsReschedule });
            conflict.Description.Should().Contain(cancel.Hash.Short).And.Contain(move.Hash.Short);
            return;
        }

        Assert.Fail("no attempt gave the reschedule the smaller hash");
    }

    /// <summary>
    /// F07: D2's clock says 2099-01-01 when it records a reschedule of L1; D1 (correct clock) has seen it and
    /// cancels. L1 ends cancelled because causal order decides; the school flags the future timestamp.
    /// </summary>
    [Fact]
    public void F07_far_future_device_clock_does_not_win_and_is_flagged()
    {
        using var s = SchoolScenario.Create(devices: 2);
        var (d1, d2) = (s.Device(1), s.Device(2));
        var l1 = s.Lesson(2);
        s.ClockOf(d2).SetUtcNow(new DateTimeOffset(2099, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var move = s.Record(d2, [new LessonRescheduled(l1, l1.Date.AddDays(1), 18 * 60, 45, new RoomId("r2"))]);
        d1.Receive([move]);
        var cancel = s.Record(d1, [new LessonCancelled(l1, CancellationReason.StudentIll, false, null)]);
        cancel.Event.Clock.Covers(move.Event.Clock).Should().BeTrue("D1 has seen the reschedule");
        cancel.Event.Time.WallMicros.Should().BeLessThan(move.Event.Time.WallMicros);

        // The school's clock stands at the real date.
        var report = s.School.Receive([move, cancel]);
        report.Applied.Should().HaveCount(2);
        report.TimeFlags.Should().ContainSingle().Which.Event.Should().Be(move.Event.Hash);
        report.TimeFlags[0].Reason.Should().Contain("ahead");

        var then = s.Then();
        then.LessonIs(l1, LessonStatus.Cancelled).NoConflicts();
        then.Lesson(l1).DecidedBy.Should().Be(cancel.Event.Hash);
        then.Lesson(l1).Date.Should().Be(l1.Date, "the reschedule was superseded causally");
    }
}
