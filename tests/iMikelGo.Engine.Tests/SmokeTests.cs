using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Signing;
using Xunit;

namespace IMikelGo.Engine.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void School_and_two_devices_converge_and_report_cancel_vs_move_conflict()
    {
        var account = new AccountId("k-anna");
        using var schoolKey = ReplicaKey.Create();
        using var d1Key = ReplicaKey.Create();
        using var d2Key = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        var series = new SeriesId("piano-1");
        school.RecordBatch([
            new AccountOpened("musikschule-x", "Anna", schoolKey.PublicKey),
            new SeriesPublished(series, "Piano", 4, 16 * 60, 45, new RoomId("r1"), [new StudentId("s1")], new DateOnly(2026, 9, 1), new DateOnly(2027, 1, 31)),
            new DeviceEnrolled(d1Key.Replica, "tablet", d1Key.PublicKey),
            new DeviceEnrolled(d2Key.Replica, "pc", d2Key.PublicKey),
        ]).Error.Should().BeNull();

        var d1 = new Replica(account, d1Key);
        var d2 = new Replica(account, d2Key);
        d1.Receive(school.Ledger.Export(account)).IsClean.Should().BeTrue();
        d2.Receive(school.Ledger.Export(account)).IsClean.Should().BeTrue();

        var occurrence = new OccurrenceId(series, new DateOnly(2026, 12, 3));
        d1.Record(new LessonCancelled(occurrence, CancellationReason.TeacherIll, true, null)).Error.Should().BeNull();
        d2.Record(new LessonRescheduled(occurrence, new DateOnly(2026, 12, 4), 18 * 60, 45, new RoomId("r2"))).Error.Should().BeNull();

        foreach (var r in new[] { school, d1, d2 })
        {
            r.Receive(d1.Ledger.Export(account));
            r.Receive(d2.Ledger.Export(account));
        }

        school.Calendar.Digest().Should().Be(d1.Calendar.Digest()).And.Be(d2.Calendar.Digest());
        var lesson = d2.Calendar.Lessons().Single(l => l.Occurrence == occurrence);
        lesson.Status.Should().Be(LessonStatus.Cancelled);
        d1.Calendar.Conflicts().Should().ContainSingle().Which.Rule.Should().Be(MergeRules.CancelBeatsReschedule);
        d1.Record(new StudentAbsent(new OccurrenceId(series, new DateOnly(2026, 12, 2)), new StudentId("s1"), true, null))
            .Error.Should().Contain("not a lesson date");
    }
}
