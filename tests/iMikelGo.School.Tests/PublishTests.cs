using System.Collections.Immutable;
using System.Diagnostics;
using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Signing;
using IMikelGo.School.Model;
using IMikelGo.School.Publishing;
using Microsoft.Extensions.Time.Testing;
using Xunit;
using Xunit.Abstractions;

namespace IMikelGo.School.Tests;

public sealed class PublishTests(ITestOutputHelper output)
{
    private static readonly string[] Solutions = XhsttImportTests.Solutions;

    // Before the term: a diff's default effective date (today on this clock) then covers every occurrence.
    private static TimetablePublisher NewPublisher() =>
        new(DerivedSchoolKeyStore.ForTests(), new FakeTimeProvider(new DateTimeOffset(2026, 9, 1, 8, 0, 0, TimeSpan.Zero)));

    /// <summary>A device of <paramref name="account"/>, enrolled by the school, that received the account's whole log.</summary>
    private static Replica DeviceOf(TimetablePublisher publisher, AccountId account)
    {
        var key = ReplicaKey.Create();
        publisher.EnrollDevice(account, key.Replica, "phone", key.PublicKey).Succeeded.Should().BeTrue();
        var device = new Replica(account, key);
        var report = device.Receive(publisher.EventsOf(account));
        report.Refused.Should().BeEmpty();
        return device;
    }

    /// <summary>What the teacher's calendar must show: every lesson of the timetable on every school day of the term.</summary>
    private static List<(DateOnly Date, int Start, int Duration, string Room)> Expected(SchoolTimetable t, AccountId teacher)
    {
        var expected = new List<(DateOnly, int, int, string)>();
        for (var d = t.Term.Start; d <= t.Term.End; d = d.AddDays(1))
        {
            if (t.Term.IsHoliday(d))
            {
                continue;
            }

            var weekday = ((int)d.DayOfWeek + 6) % 7 + 1;
            expected.AddRange(t.Lessons.Where(l => l.Teacher == teacher && l.Slot.Weekday == weekday)
                .Select(l => (d, l.Slot.StartMinute, l.Slot.DurationMinutes, l.Slot.Room.Value)));
        }

        return expected;
    }

    /// <summary>Sorted for an O(n log n) multiset comparison (BeEquivalentTo is quadratic on thousands of items).</summary>
    private static List<T> Sorted<T>(IEnumerable<T> items) => [.. items.Order()];

    private static List<(DateOnly, int, int, string)> Seen(Replica device) =>
        [.. device.Calendar.Lessons().Select(l => (l.Date, l.StartMinute, l.DurationMinutes, l.Room.Value))];

    [SharedFileFact(Repo.SpainSchool)]
    public void Each_solution_publishes_and_a_device_sees_exactly_its_teachers_lessons()
    {
        foreach (var solution in Solutions)
        {
            var t = XhsttImportTests.Import(solution);
            var publisher = NewPublisher();
            var sw = Stopwatch.StartNew();
            var result = publisher.Publish(t);
            sw.Stop();
            output.WriteLine($"{solution}: published {result.EventsRecorded} events to {result.AccountsOpened} accounts in {sw.ElapsedMilliseconds} ms: " +
                string.Join(", ", result.ByType.Select(kv => $"{kv.Key} {kv.Value}")));
            result.AccountsOpened.Should().Be(66);
            result.ByType[nameof(AccountOpened)].Should().Be(66);
            result.ByType[nameof(SeriesPublished)].Should().Be(t.Lessons.Length);
            result.ByType[nameof(HolidaysDeclared)].Should().Be(66);

            foreach (var teacher in new[] { "am", "jf", t.Teachers[^1].Account.Value })
            {
                var account = new AccountId(teacher);
                var device = DeviceOf(publisher, account);
                Sorted(Seen(device)).Should().Equal(Sorted(Expected(t, account)), $"device of {teacher} under {solution}");
                device.Calendar.Lessons().Should().OnlyContain(l => l.Status == Engine.Merge.LessonStatus.Scheduled);
                device.Ledger.Accounts.Should().Equal(account);
            }
        }
    }

    [SharedFileFact(Repo.SpainSchool)]
    public void Another_solution_publishes_exactly_the_changed_occurrences_as_school_reschedules()
    {
        var publisher = NewPublisher();
        var before = XhsttImportTests.Import(Solutions[0]);
        publisher.Publish(before);
        var firstSeries = publisher.Accounts.ToDictionary(a => a, a => publisher.ReplicaOf(a).Calendar.Lessons().Select(l => l.Occurrence.Series).ToHashSet());
        var devices = new[] { "am", "jf", "mo" }.ToDictionary(a => a, a => DeviceOf(publisher, new AccountId(a)));

        var after = XhsttImportTests.Import(Solutions[1]);
        var sw = Stopwatch.StartNew();
        var diff = publisher.Publish(after);
        sw.Stop();
        output.WriteLine($"diff {Solutions[0]} → {Solutions[1]}: {diff.Moves.Length} moved weekly lessons, {diff.EventsRecorded} events in {sw.ElapsedMilliseconds} ms: " +
            string.Join(", ", diff.ByType.Select(kv => $"{kv.Key} {kv.Value}")));

        // Independently: per teacher and XHSTT event, the slots only the old solution has and those only the new one has.
        var oldOnly = new List<(string Account, LessonSlot Slot)>();
        var newOnly = new List<(string Account, LessonSlot Slot)>();
        foreach (var key in before.Lessons.Select(l => (l.Teacher, l.Key)).Union(after.Lessons.Select(l => (l.Teacher, l.Key))).Distinct())
        {
            var o = before.Lessons.Where(l => (l.Teacher, l.Key) == key).Select(l => l.Slot).ToList();
            var n = after.Lessons.Where(l => (l.Teacher, l.Key) == key).Select(l => l.Slot).ToList();
            foreach (var s in o.ToList().Where(n.Remove))
            {
                o.Remove(s);
            }

            oldOnly.AddRange(o.Select(s => (key.Teacher.Value, s)));
            newOnly.AddRange(n.Select(s => (key.Teacher.Value, s)));
        }

        oldOnly.Should().HaveSameCount(newOnly, "every XHSTT event keeps its number of sub-events");
        oldOnly.Should().NotBeEmpty();
        var term = before.Term;
        IEnumerable<DateOnly> DatesOn(int weekday)
        {
            for (var d = term.Start; d <= term.End; d = d.AddDays(1))
            {
                if (((int)d.DayOfWeek + 6) % 7 + 1 == weekday && !term.IsHoliday(d))
                {
                    yield return d;
                }
            }
        }

        var expectedFrom = oldOnly.SelectMany(x => DatesOn(x.Slot.Weekday).Select(d => (x.Account, d))).ToList();
        var expectedTo = newOnly.SelectMany(x => DatesOn(x.Slot.Weekday).Select(d => (x.Account, d, x.Slot.StartMinute, x.Slot.DurationMinutes, x.Slot.Room.Value))).ToList();

        var reschedules = diff.Facts.Where(f => f.Payload is LessonRescheduled).Select(f => (f.Account, (LessonRescheduled)f.Payload)).ToList();
        diff.Facts.Should().OnlyContain(f => f.Payload is LessonRescheduled, "the same teachers, groups and term: only reschedules");
        Sorted(reschedules.Select(r => (r.Account.Value, r.Item2.Occurrence.Date))).Should().Equal(Sorted(expectedFrom));
        Sorted(reschedules.Select(r => (r.Account.Value, r.Item2.Date, r.Item2.StartMinute, r.Item2.DurationMinutes, r.Item2.Room.Value))).Should().Equal(Sorted(expectedTo));
        output.WriteLine($"expected and published: {expectedTo.Count} rescheduled occurrences of {oldOnly.Count} moved weekly lessons");
        reschedules.Should().OnlyContain(r => firstSeries[r.Account].Contains(r.Item2.Occurrence.Series), "a reschedule names an occurrence of a series published before");
        diff.Moves.Sum(m => m.Rescheduled).Should().Be(reschedules.Count);

        // End to end: the devices receive the difference and show the new timetable.
        foreach (var (teacher, device) in devices)
        {
            var account = new AccountId(teacher);
            device.Receive(publisher.EventsOf(account)).Refused.Should().BeEmpty();
            Sorted(Seen(device)).Should().Equal(Sorted(Expected(after, account)), $"device of {teacher} after the diff");
            device.Calendar.Conflicts().Should().BeEmpty();
        }

        // The third solution, diffed against the second: the devices follow again.
        var third = XhsttImportTests.Import(Solutions[2]);
        var again = publisher.Publish(third);
        again.Facts.Should().OnlyContain(f => f.Payload is LessonRescheduled);
        foreach (var (teacher, device) in devices)
        {
            var account = new AccountId(teacher);
            device.Receive(publisher.EventsOf(account)).Refused.Should().BeEmpty();
            Sorted(Seen(device)).Should().Equal(Sorted(Expected(third, account)), $"device of {teacher} after the second diff");
        }

        // Publishing the same solution once more changes nothing.
        publisher.Publish(XhsttImportTests.Import(Solutions[2])).EventsRecorded.Should().Be(0);
    }

    [Fact]
    public void Inconsistent_timetable_publishes_nothing()
    {
        var t = Json.Example();
        var broken = t with { Lessons = [.. t.Lessons, t.Lessons[0] with { Series = new SeriesId("x-1"), Slot = t.Lessons[0].Slot with { Room = new RoomId("nowhere") } }] };
        var publisher = NewPublisher();
        var act = () => publisher.Publish(broken);
        act.Should().Throw<SchoolImportException>().Which.Message.Should().Contain("unknown room nowhere");
        publisher.Accounts.Should().BeEmpty();
    }

    [Fact]
    public void Moving_into_a_holiday_cancels_instead_of_rescheduling_and_lessons_added_or_removed_are_published_or_withdrawn()
    {
        var t = Json.Example();
        var holiday = new SchoolHoliday("Local feast", new DateOnly(2026, 9, 25), new DateOnly(2026, 9, 25)); // a Friday
        t = t with { Term = t.Term with { Holidays = [.. t.Term.Holidays, holiday] } };
        var publisher = NewPublisher();
        publisher.Publish(t);
        var piano = t.Lessons.Single(l => l.Series.Value == "piano-anna-1");
        var moved = t with
        {
            Lessons = [.. t.Lessons.Where(l => l != piano && l.Series.Value != "theory-1"), piano with { Slot = piano.Slot with { Weekday = 5 } },
                piano with { Series = new SeriesId("piano-anna-2"), Key = "extra", Slot = piano.Slot with { Weekday = 1 } }],
        };
        var diff = publisher.Publish(moved);
        diff.Facts.Count(f => f.Payload is LessonCancelled).Should().Be(1, "the Friday 25 Sep is a holiday");
        diff.Facts.Count(f => f.Payload is LessonRescheduled).Should().Be(diff.Moves.Single().Rescheduled);
        diff.Facts.Should().ContainSingle(f => f.Payload is SeriesPublished);
        diff.Withdrawn.Should().BeEquivalentTo([(new AccountId("anna"), new SeriesId("theory-1")), (new AccountId("ben"), new SeriesId("theory-1"))]);
        var device = DeviceOf(publisher, new AccountId("anna"));
        device.Calendar.Lessons().Where(l => l.Occurrence.Series.Value == "piano-anna-1").Should()
            .OnlyContain(l => l.Date.DayOfWeek == DayOfWeek.Friday || l.Status == Engine.Merge.LessonStatus.Cancelled);
    }

    [Fact]
    public void A_new_version_moves_only_the_occurrences_from_its_effective_date_and_leaves_those_a_teacher_decided()
    {
        var t = Json.Example();
        var publisher = NewPublisher();
        publisher.Publish(t);
        var piano = t.Lessons.Single(l => l.Series.Value == "piano-anna-1");   // Mondays
        var violin = t.Lessons.Single(l => l.Series.Value == "violin-ben-1");  // Wednesdays
        var moved = t with
        {
            Lessons = [.. t.Lessons.Where(l => l != piano && l != violin), piano with { Slot = piano.Slot with { Weekday = 4 } }, violin with { Slot = violin.Slot with { Weekday = 1 } }],
        };
        var effective = new DateOnly(2026, 9, 29); // a Tuesday
        var cancelledByAnna = new OccurrenceId(piano.Series, new DateOnly(2026, 10, 5));
        var annasCancel = new LessonView(cancelledByAnna, "Klavier", cancelledByAnna.Date, 16 * 60, 45, new RoomId("r101"), Engine.Merge.LessonStatus.Cancelled,
            CancellationReason.TeacherIll, true, null, [], ImmutableSortedDictionary<string, bool>.Empty, null);
        var diff = publisher.Publish(moved, new PublishOptions { EffectiveFrom = effective, TeacherRecord = (account, o) => account.Value == "anna" && o == cancelledByAnna ? annasCancel : null });

        diff.EffectiveFrom.Should().Be(effective);
        var reschedules = diff.Facts.Select(f => f.Payload).OfType<LessonRescheduled>().ToList();
        reschedules.Should().OnlyContain(r => r.Occurrence.Date >= effective && r.Date >= effective, "the past is never rewritten");
        reschedules.Should().NotContain(r => r.Occurrence == cancelledByAnna, "the teacher's cancellation stands");
        var pianoMove = diff.Moves.Single(m => m.Series == piano.Series);
        (pianoMove.KeptBeforeEffective, pianoMove.KeptDecided, pianoMove.Rescheduled).Should().Be((3, 1, 9),
            "Mondays 14, 21, 28 Sep are before; 5 Oct was cancelled by the teacher; 12 Oct – 14 Dec without the autumn holiday move");
        var violinMove = diff.Moves.Single(m => m.Series == violin.Series);
        (violinMove.KeptBeforeEffective, violinMove.KeptDecided, violinMove.Rescheduled).Should().Be((3, 0, 10),
            "Wednesdays 16 and 23 Sep are before, and 30 Sep would move back to Monday 28 Sep; 7 Oct – 16 Dec move");

        var device = DeviceOf(publisher, new AccountId("anna"));
        var lessons = device.Calendar.Lessons().Where(l => l.Occurrence.Series == piano.Series).ToDictionary(l => l.Occurrence.Date);
        lessons[new DateOnly(2026, 9, 21)].Date.Should().Be(new DateOnly(2026, 9, 21), "a past lesson stays where it was");
        lessons[new DateOnly(2026, 10, 5)].Status.Should().Be(Engine.Merge.LessonStatus.Scheduled, "no school event touched it (the teacher's cancellation lives on her device)");
        lessons[new DateOnly(2026, 10, 12)].Date.Should().Be(new DateOnly(2026, 10, 15), "from the effective date on, Thursday");
    }

    [Fact]
    public void A_lesson_gone_from_a_new_version_ends_before_the_effective_date_and_keeps_its_earlier_lessons()
    {
        var t = Json.Example();
        var publisher = NewPublisher();
        publisher.Publish(t);
        var violin = t.Lessons.Single(l => l.Series.Value == "violin-ben-1"); // Wednesdays
        var ben = new AccountId("ben");
        var device = DeviceOf(publisher, ben);
        var withoutViolin = t with { Lessons = [.. t.Lessons.Where(l => l != violin)] };

        var diff = publisher.Publish(withoutViolin, new PublishOptions { EffectiveFrom = new DateOnly(2026, 10, 1) });

        diff.Withdrawn.Should().ContainSingle().Which.Should().Be((ben, violin.Series));
        diff.Facts.Should().ContainSingle().Which.Payload.Should().BeOfType<SeriesPublished>()
            .Which.TermEnd.Should().Be(new DateOnly(2026, 9, 30), "the series now ends the day before the effective date");
        device.Receive(publisher.EventsOf(ben)).Refused.Should().BeEmpty();
        device.Calendar.Lessons().Where(l => l.Occurrence.Series == violin.Series).Select(l => l.Date).Should()
            .Equal([new DateOnly(2026, 9, 16), new DateOnly(2026, 9, 23), new DateOnly(2026, 9, 30)], "the lessons before the effective date stay on record");

        // Published again unchanged: nothing more; a lesson whose whole term lies before the effective date records nothing.
        publisher.Publish(withoutViolin, new PublishOptions { EffectiveFrom = new DateOnly(2026, 10, 1) }).EventsRecorded.Should().Be(0);
        var late = publisher.Publish(t with { Lessons = [.. withoutViolin.Lessons.Where(l => l.Series.Value != "piano-anna-1")] },
            new PublishOptions { EffectiveFrom = new DateOnly(2027, 1, 4) });
        late.Withdrawn.Should().ContainSingle(w => w.Series.Value == "piano-anna-1");
        late.EventsRecorded.Should().Be(0, "after the term there is nothing left to withdraw");
    }

    [Fact]
    public void What_a_teacher_recorded_after_the_effective_date_is_recorded_again_on_the_new_series_of_a_changed_lesson()
    {
        var t = Json.Example();
        var publisher = NewPublisher();
        publisher.Publish(t);
        var anna = new AccountId("anna");
        var device = DeviceOf(publisher, anna);
        var piano = t.Lessons.Single(l => l.Series.Value == "piano-anna-1"); // Mondays 16:00, ensemble-a: lea and max
        OccurrenceId On(int month, int day) => new(piano.Series, new DateOnly(2026, month, day));
        device.Record(new LessonHeld(On(10, 5), "etude 3")).Succeeded.Should().BeTrue();
        device.Record(new StudentAbsent(On(10, 5), new StudentId("lea"), true, "ill")).Succeeded.Should().BeTrue();
        device.Record(new StudentAbsent(On(10, 5), new StudentId("max"), false, null)).Succeeded.Should().BeTrue();
        device.Record(new LessonCancelled(On(10, 12), CancellationReason.TeacherIll, true, "fever")).Succeeded.Should().BeTrue();
        device.Record(new LessonRescheduled(On(10, 19), new DateOnly(2026, 10, 20), 18 * 60, 45, new RoomId("r102"))).Succeeded.Should().BeTrue();
        device.Record(new LessonCancelled(On(9, 28), CancellationReason.StudentIll, false, null)).Succeeded.Should().BeTrue();
        var recorded = device.Calendar.Lessons().Where(l => l.Status != LessonStatus.Scheduled || !l.Absent.IsEmpty).ToDictionary(l => l.Occurrence);

        // Max leaves ensemble A, effective Thursday 1 Oct; the lesson also moves to Tuesdays.
        var group = t.Groups.Single(g => g.Id == piano.Groups[0]);
        var changed = t with
        {
            Groups = [.. t.Groups.Select(g => g == group ? g with { Members = [.. g.Members.Where(m => m.Id.Value != "max")] } : g)],
            Lessons = [.. t.Lessons.Select(l => l == piano ? l with { Slot = l.Slot with { Weekday = 2 } } : l)],
        };
        var diff = publisher.Publish(changed, new PublishOptions
        {
            EffectiveFrom = new DateOnly(2026, 10, 1),
            TeacherRecord = (account, o) => account == anna ? recorded.GetValueOrDefault(o) : null,
        });

        var next = new SeriesId("piano-anna-1.2");
        diff.Facts.Where(f => f.Payload is not SeriesPublished and not StudentEnrolled).Select(f => f.Payload).Should().BeEquivalentTo(new LessonEvent[]
        {
            new StudentAbsent(new OccurrenceId(next, new DateOnly(2026, 10, 6)), new StudentId("lea"), true, null),
            new LessonHeld(new OccurrenceId(next, new DateOnly(2026, 10, 6)), "etude 3"),
            new LessonCancelled(new OccurrenceId(next, new DateOnly(2026, 10, 13)), CancellationReason.TeacherIll, true, "fever"),
            new LessonRescheduled(new OccurrenceId(next, new DateOnly(2026, 10, 20)), new DateOnly(2026, 10, 20), 18 * 60, 45, new RoomId("r102")),
        }, o => o.RespectingRuntimeTypes(), "only the records from the effective date on are carried, each to the same week's Tuesday, and Max's absence leaves with him; 28 Sep stays in the old series");

        device.Receive(publisher.EventsOf(anna)).Refused.Should().BeEmpty();
        var lessons = device.Calendar.Lessons().Where(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).ToDictionary(l => l.Occurrence);
        lessons[On(9, 28)].Status.Should().Be(LessonStatus.Cancelled, "before the effective date the old series keeps its record");
        lessons.Keys.Should().NotContain(o => o.Series == piano.Series && o.Date >= new DateOnly(2026, 10, 1));
        var held = lessons[new OccurrenceId(next, new DateOnly(2026, 10, 6))];
        (held.Status, held.Note, held.Absent.Keys.Single()).Should().Be((LessonStatus.Held, "etude 3", "lea"));
        lessons[new OccurrenceId(next, new DateOnly(2026, 10, 13))].Should().Match<LessonView>(l => l.Status == LessonStatus.Cancelled && l.MakeUpOwed && l.CancellationReason == CancellationReason.TeacherIll);
        lessons[new OccurrenceId(next, new DateOnly(2026, 10, 20))].Should().Match<LessonView>(l => l.Status == LessonStatus.Moved && l.StartMinute == 18 * 60 && l.Room == new RoomId("r102"));
        lessons[new OccurrenceId(next, new DateOnly(2026, 11, 3))].Status.Should().Be(LessonStatus.Scheduled, "an untouched week is simply the new series' lesson");
    }

    [Fact]
    public void A_changed_student_list_continues_as_a_new_series_from_the_effective_date_and_the_past_keeps_its_students()
    {
        var t = Json.Example();
        var publisher = NewPublisher();
        publisher.Publish(t);
        var anna = new AccountId("anna");
        var device = DeviceOf(publisher, anna);
        var piano = t.Lessons.Single(l => l.Series.Value == "piano-anna-1"); // Mondays, ensemble-a: lea and max
        var past = new OccurrenceId(piano.Series, new DateOnly(2026, 9, 21));
        device.Record(new StudentAbsent(past, new StudentId("max"), false, "ill")).Succeeded.Should().BeTrue();

        // Max leaves ensemble A from October on.
        var group = t.Groups.Single(g => g.Id == piano.Groups[0]);
        var changed = t with { Groups = [.. t.Groups.Select(g => g == group ? g with { Members = [.. g.Members.Where(s => s.Id.Value != "max")] } : g)] };
        var diff = publisher.Publish(changed, new PublishOptions { EffectiveFrom = new DateOnly(2026, 10, 1) });

        diff.Withdrawn.Should().BeEmpty("the lessons continue");
        var versions = diff.Facts.Select(f => f.Payload).OfType<SeriesPublished>().Where(p => p.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).ToList();
        versions.Should().HaveCount(2);
        versions.Should().ContainSingle(p => p.Series == piano.Series && p.TermEnd == new DateOnly(2026, 9, 30) && p.Students.Length == 2, "the old version ends before October");
        versions.Should().ContainSingle(p => p.Series.Value == "piano-anna-1.2" && p.TermStart == new DateOnly(2026, 10, 1) && p.Students.SequenceEqual(new[] { new StudentId("lea") }));

        device.Receive(publisher.EventsOf(anna)).Refused.Should().BeEmpty();
        var lessons = device.Calendar.Lessons().Where(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).OrderBy(l => l.Date).ToList();
        var pastLesson = lessons.Single(l => l.Occurrence == past);
        pastLesson.Students.Should().Contain(new StudentId("max"));
        pastLesson.Absent.Should().ContainKey("max", "the absence recorded before the change stays on record");
        lessons.Where(l => l.Date >= new DateOnly(2026, 10, 1)).Should().NotBeEmpty()
            .And.OnlyContain(l => l.Occurrence.Series.Value == "piano-anna-1.2" && !l.Students.Contains(new StudentId("max")));
        lessons.Select(l => l.Date).Should().OnlyHaveUniqueItems("no Monday twice");

        // The same version again records nothing (the new series keeps its later start).
        publisher.Publish(changed, new PublishOptions { EffectiveFrom = new DateOnly(2026, 10, 1) }).EventsRecorded.Should().Be(0);
    }
}
