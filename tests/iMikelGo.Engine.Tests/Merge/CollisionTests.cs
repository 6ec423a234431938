using FluentAssertions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Testing;
using Xunit;

namespace IMikelGo.Engine.Tests.Merge;

/// <summary>Every documented collision (docs/merge-rules.md), each delivered in several orders.</summary>
public sealed class CollisionTests : IDisposable
{
    private readonly SchoolScenario _s = SchoolScenario.Create(devices: 2);

    private Replica D1 => _s.Device(1);

    private Replica D2 => _s.Device(2);

    private OccurrenceId L1 => _s.Lesson(3);

    private static StudentId S1 => new("s1");

    public void Dispose() => _s.Dispose();

    private LessonRescheduled Move(int days, int hour, string room) => new(L1, L1.Date.AddDays(days), hour * 60, 45, new RoomId(room));

    private IReadOnlyList<Event> Whens => [.. _s.LastWhen.Select(e => e.Event)];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Two_different_moves_lower_replica_id_wins_with_a_conflict(int order)
    {
        _s.When(D1.Records(Move(1, 18, "r2")), D2.Records(Move(2, 17, "r3")));
        var (m1, m2) = (Whens[0], Whens[1]);
        var (winner, loser) = D1.Id.CompareTo(D2.Id) < 0 ? (m1, m2) : (m2, m1);
        var then = _s.Then(order).LessonIs(L1, LessonStatus.Moved).HasConflict(L1, MergeRules.LowerReplicaWinsMove, winner.Hash, loser.Hash);
        then.Lesson(L1).Date.Should().Be(((LessonRescheduled)winner.Payload).Date);
    }

    [Fact]
    public void Two_identical_moves_do_not_conflict()
    {
        _s.When(D1.Records(Move(1, 18, "r2")), D2.Records(Move(1, 18, "r2")));
        _s.Then(5).LessonIs(L1, LessonStatus.Moved).NoConflicts();
    }

    [Fact]
    public void Move_beats_concurrent_held()
    {
        _s.When(D1.Records(new LessonHeld(L1, "scales")), D2.Records(Move(1, 18, "r2")));
        _s.Then(1).LessonIs(L1, LessonStatus.Moved).HasConflict(L1, MergeRules.RescheduleBeatsHeld, Whens[1].Hash, Whens[0].Hash);
    }

    [Fact]
    public void Cancel_beats_concurrent_held()
    {
        _s.When(D1.Records(new LessonHeld(L1, "scales")), D2.Records(new LessonCancelled(L1, CancellationReason.Other, false, null)));
        _s.Then(2).LessonIs(L1, LessonStatus.Cancelled).HasConflict(L1, MergeRules.CancelBeatsHeld, Whens[1].Hash, Whens[0].Hash);
    }

    [Fact]
    public void Causally_later_edit_replaces_the_earlier_without_conflict()
    {
        _s.Given(D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, true, null)))
            .When(D2.Records(Move(1, 18, "r2")));
        _s.Then(3).LessonIs(L1, LessonStatus.Moved).NoConflicts();
    }

    [Fact]
    public void Absence_on_a_lesson_cancelled_concurrently_is_kept_on_record_with_a_conflict()
    {
        _s.When(D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, true, null)), D2.Records(new StudentAbsent(L1, S1, true, "flu")));
        _s.Then(4).LessonIs(L1, LessonStatus.Cancelled).Absent(L1, S1, excused: true)
            .HasConflict(L1, MergeRules.CancellationVoidsAbsence, Whens[0].Hash, Whens[1].Hash);
    }

    [Fact]
    public void School_cancel_outranks_teacher_held_and_move()
    {
        _s.When(_s.School.Records(new LessonCancelled(L1, CancellationReason.SchoolClosed, false, "closed")),
            D1.Records(new LessonHeld(L1, null)), D2.Records(Move(1, 18, "r2")));
        var then = _s.Then(6).LessonIs(L1, LessonStatus.Cancelled)
            .HasConflict(L1, MergeRules.SchoolOutranksTeacher, Whens[0].Hash, Whens[1].Hash)
            .HasConflict(L1, MergeRules.SchoolOutranksTeacher, Whens[0].Hash, Whens[2].Hash);
        then.Lesson(L1).CancellationReason.Should().Be(CancellationReason.SchoolClosed);
        then.Conflicts.Should().HaveCount(2);
    }

    [Fact]
    public void Teacher_cancel_beats_a_concurrent_school_reschedule_of_the_lesson()
    {
        // A timetable change arrives as one school reschedule per lesson; the teacher cancelled L1 offline meanwhile.
        _s.When(_s.School.Records(Move(1, 17, "r9")), D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, true, null)));
        var then = _s.Then(9).LessonIs(L1, LessonStatus.Cancelled)
            .HasConflict(L1, MergeRules.CancelBeatsReschedule, Whens[1].Hash, Whens[0].Hash);
        then.Lesson(L1).CancellationReason.Should().Be(CancellationReason.TeacherIll);
        then.Lesson(L1).MakeUpOwed.Should().BeTrue("the make-up owed stands");
        then.Conflicts.Should().ContainSingle();
    }

    [Fact]
    public void A_school_reschedule_still_outranks_a_concurrent_teacher_move_or_held()
    {
        _s.When(_s.School.Records(Move(1, 17, "r9")), D1.Records(Move(2, 18, "r2")), D2.Records(new LessonHeld(L1, null)));
        var then = _s.Then(10).LessonIs(L1, LessonStatus.Moved)
            .HasConflict(L1, MergeRules.SchoolOutranksTeacher, Whens[0].Hash, Whens[1].Hash)
            .HasConflict(L1, MergeRules.SchoolOutranksTeacher, Whens[0].Hash, Whens[2].Hash);
        then.Lesson(L1).Room.Should().Be(new RoomId("r9"));
    }

    [Fact]
    public void School_series_change_concurrent_with_teacher_move_outranks_it()
    {
        _s.When(_s.School.Records(_s.Published with { StartMinute = 15 * 60, Room = new RoomId("r9") }), D1.Records(Move(1, 18, "r2")));
        var then = _s.Then(7).LessonIs(L1, LessonStatus.Scheduled).HasConflict(L1, MergeRules.SchoolOutranksTeacher, Whens[0].Hash, Whens[1].Hash);
        then.Lesson(L1).StartMinute.Should().Be(15 * 60);
        then.Lesson(L1).Room.Should().Be(new RoomId("r9"));
        then.Conflicts.Should().ContainSingle();
    }

    [Fact]
    public void Teacher_move_after_seeing_the_series_change_stands()
    {
        _s.Given(_s.School.Records(_s.Published with { StartMinute = 15 * 60 }))
            .When(D1.Records(Move(1, 18, "r2")));
        _s.Then(8).LessonIs(L1, LessonStatus.Moved).NoConflicts();
    }

    [Fact]
    public void Series_change_made_with_knowledge_of_the_move_leaves_the_move_standing()
    {
        _s.Given(D1.Records(Move(1, 18, "r2")))
            .When(_s.School.Records(_s.Published with { Room = new RoomId("r9") }));
        _s.Then(9).LessonIs(L1, LessonStatus.Moved).NoConflicts();
    }

    [Fact]
    public void Series_withdrawn_concurrently_with_teacher_edits_removes_the_lessons_with_conflicts()
    {
        _s.When(_s.School.Records(new SeriesWithdrawn(_s.Series, "teacher left")),
            D1.Records(new LessonHeld(L1, null)), D2.Records(new StudentAbsent(_s.Lesson(4), S1, false, null)));
        var then = _s.Then(10).LessonMissing(L1);
        then.Calendar.Lessons().Should().BeEmpty();
        then.HasConflict(L1, MergeRules.SchoolRemovedLesson, Whens[0].Hash, Whens[1].Hash)
            .HasConflict(_s.Lesson(4), MergeRules.SchoolRemovedLesson, Whens[0].Hash, Whens[2].Hash);
        D1.Record(new LessonHeld(_s.Lesson(5), null)).Error.Should().Contain("withdrawn");
    }

    [Fact]
    public void Holidays_remove_occurrences_and_outrank_concurrent_teacher_edits()
    {
        var holiday = new HolidaysDeclared("autumn", L1.Date.AddDays(-3), L1.Date.AddDays(3));
        _s.When(_s.School.Records(holiday), D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, false, null)));
        _s.Then(11).LessonMissing(L1).LessonIs(_s.Lesson(4), LessonStatus.Scheduled)
            .HasConflict(L1, MergeRules.SchoolRemovedLesson, Whens[0].Hash, Whens[1].Hash);
        D2.Record(new LessonHeld(L1, null)).Error.Should().Contain("not a lesson date");
    }

    [Fact]
    public void Removal_made_with_knowledge_of_the_teacher_edit_is_not_a_conflict()
    {
        _s.Given(D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, false, null)))
            .When(_s.School.Records(new HolidaysDeclared("storm", L1.Date, L1.Date)));
        _s.Then(12).LessonMissing(L1).NoConflicts();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Resolution_keeps_the_chosen_intent_everywhere_and_removes_the_conflict(bool keepLoser)
    {
        _s.When(D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, true, null)), D2.Records(Move(1, 18, "r2")));
        var (cancel, move) = (Whens[0], Whens[1]);
        _s.Then(13).HasConflict(L1, MergeRules.CancelBeatsReschedule, cancel.Hash, move.Hash);
        _s.When(D2.Records(new ConflictResolved(L1, keepLoser ? move.Hash : cancel.Hash)));
        var then = _s.Then(14).LessonIs(L1, keepLoser ? LessonStatus.Moved : LessonStatus.Cancelled).NoConflicts();
        then.Lesson(L1).DecidedBy.Should().Be(Whens[0].Hash, "the resolution now decides the lesson");
    }

    [Fact]
    public void Resolution_must_keep_a_status_event_its_author_has_seen()
    {
        _s.When(D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, true, null)));
        var unseen = Whens[0].Hash;
        D2.Record(new ConflictResolved(L1, unseen)).Error.Should().Contain("had seen");
        _s.Given(D2.Records(new StudentAbsent(L1, S1, true, null)));
        var absence = _s.Recorded[^1].Event.Hash;
        D1.Record(new ConflictResolved(L1, absence)).Error.Should().Contain("not a cancel, move or held");
    }

    [Fact]
    public void Absence_withdrawn_causally_later_wins()
    {
        _s.Given(D1.Records(new StudentAbsent(L1, S1, false, null)))
            .When(D2.Records(new AbsenceWithdrawn(L1, S1)));
        _s.Then(15).NotAbsent(L1, S1).NoConflicts();
    }

    [Fact]
    public void Concurrent_absence_and_withdrawal_add_wins()
    {
        _s.Given(D1.Records(new StudentAbsent(L1, S1, false, null)))
            .When(D1.Records(new StudentAbsent(L1, S1, true, "doctor")), D2.Records(new AbsenceWithdrawn(L1, S1)));
        _s.Then(16).Absent(L1, S1, excused: true).NoConflicts();
    }

    [Fact]
    public void Concurrent_absences_are_excused_only_if_all_say_so()
    {
        _s.When(D1.Records(new StudentAbsent(L1, S1, true, null)), D2.Records(new StudentAbsent(L1, S1, false, null)));
        _s.Then(17).Absent(L1, S1, excused: false);
    }

    [Fact]
    public void Absence_for_a_student_outside_the_series_is_refused()
    {
        D1.Record(new StudentAbsent(L1, new StudentId("s99"), true, null)).Error.Should().Contain("not taught");
    }

    [Fact]
    public void Every_delivery_order_of_the_same_events_gives_the_same_digest()
    {
        _s.When(D1.Records(new LessonCancelled(L1, CancellationReason.TeacherIll, true, null), new StudentAbsent(_s.Lesson(4), S1, true, null)),
            D2.Records(Move(1, 18, "r2"), new LessonHeld(_s.Lesson(4), null)),
            _s.School.Records(_s.Published with { Room = new RoomId("r7") }, new HolidaysDeclared("h", _s.Lesson(6).Date, _s.Lesson(6).Date)));
        var digest = _s.Then(18).Digest;
        var events = _s.AllEvents();
        for (var seed = 0; seed < 10; seed++)
        {
            var ledger = new Ledger();
            var net = new Network(seed, duplicateRate: 0.5, delayRate: 0.5);
            net.Post(ledger, Network.Shuffle(events, new Random(seed)));
            net.Step();
            net.Flush();
            ledger.Calendar(_s.Account).Digest().Should().Be(digest);
        }
    }
}
