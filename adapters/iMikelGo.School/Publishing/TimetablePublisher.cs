using System.Collections.Immutable;
using System.Globalization;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.School.Model;

namespace IMikelGo.School.Publishing;

/// <summary>A weekly lesson whose slot changed between two published timetables.</summary>
/// <param name="Account">The teacher.</param>
/// <param name="Series">The series (as first published).</param>
/// <param name="From">The slot before.</param>
/// <param name="To">The slot now.</param>
/// <param name="Rescheduled">Occurrences rescheduled.</param>
/// <param name="Cancelled">Occurrences cancelled because the new slot falls on a holiday or outside the term.</param>
/// <param name="KeptBeforeEffective">Occurrences left in their slot because they (or their new day) lie before the effective date.</param>
/// <param name="KeptDecided">Occurrences left as they are because a teacher decided them (cancelled, moved or held).</param>
public sealed record SeriesMove(AccountId Account, SeriesId Series, LessonSlot From, LessonSlot To, int Rescheduled, int Cancelled,
    int KeptBeforeEffective = 0, int KeptDecided = 0);

/// <summary>How a publish treats lessons that already have a history.</summary>
public sealed record PublishOptions
{
    /// <summary>
    /// The first day the new timetable version applies to (default: today on the publisher's clock). A changed slot moves
    /// only occurrences on or after it (into days on or after it): the past is never rewritten.
    /// </summary>
    public DateOnly? EffectiveFrom { get; init; }

    /// <summary>
    /// What teachers recorded on an occurrence of an account — the merged calendar's lesson when a teacher decided it
    /// (cancelled, moved, held) or recorded absences on it, else null; null function: nothing anywhere. A changed slot
    /// leaves a decided occurrence alone, and a lesson continued as a new series carries the record over to it. The
    /// school connector answers from the account's merged calendar.
    /// </summary>
    public Func<AccountId, OccurrenceId, LessonView?>? TeacherRecord { get; init; }
}

/// <summary>One school-authored fact recorded by a publish.</summary>
/// <param name="Account">The account whose log it joined.</param>
/// <param name="Payload">The fact.</param>
/// <param name="Batch">The account's facts are recorded in batches, in this order: a fact of batch 1 (what teachers
/// recorded, carried over to a new series) names lessons that batch 0 published, and a batch is checked against the
/// calendar as it was before it.</param>
public sealed record PublishedFact(AccountId Account, LessonEvent Payload, int Batch = 0);

/// <summary>What a publish recorded.</summary>
/// <param name="AccountsOpened">Accounts opened (first publish of a teacher).</param>
/// <param name="Facts">Every recorded fact, per account in account order.</param>
/// <param name="Moves">Lessons whose slot changed (their occurrences are rescheduled).</param>
/// <param name="Withdrawn">Series ended because their lesson is gone: withdrawn, or, when lessons before the effective date exist, republished to end the day before it.</param>
/// <param name="EffectiveFrom">The first day the changes apply to.</param>
public sealed record PublishResult(int AccountsOpened, ImmutableArray<PublishedFact> Facts, ImmutableArray<SeriesMove> Moves,
    ImmutableArray<(AccountId Account, SeriesId Series)> Withdrawn, DateOnly EffectiveFrom)
{
    /// <summary>The number of events recorded.</summary>
    public int EventsRecorded => Facts.Length;

    /// <summary>Recorded events by wire type name.</summary>
    public ImmutableSortedDictionary<string, int> ByType =>
        Facts.GroupBy(f => f.Payload.GetType().Name).ToImmutableSortedDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
}

/// <summary>
/// Turns a <see cref="SchoolTimetable"/> into school-authored events, one school <see cref="Replica"/> per teacher
/// account. The first publish of an account records <c>account.opened</c>, its holidays, its students and one
/// <c>series.published</c> per weekly lesson. A later publish (e.g. another XHSTT solution of the same instance)
/// records only the difference: a lesson whose slot changed keeps its series, and each of its occurrences from the
/// effective date on (<see cref="PublishOptions.EffectiveFrom"/>, default today) gets a school-authored
/// <c>lesson.rescheduled</c> to the same week's new slot (or <c>lesson.cancelled</c> when that day is a holiday or
/// outside the term), except occurrences a teacher already decided (<see cref="PublishOptions.TeacherRecord"/>); unchanged lessons record nothing; new lessons are published and
/// vanished ones withdrawn. A lesson whose students, subject or term changed continues as a new series from the effective
/// date, and what teachers recorded on its later occurrences is recorded again on the new series' lessons of those weeks. The timetable is validated first, and every account's batch is planned before any is
/// recorded, so inconsistent input publishes nothing.
/// </summary>
public sealed class TimetablePublisher
{
    private readonly ISchoolKeyStore _keys;
    private readonly TimeProvider _time;
    private readonly Dictionary<AccountId, AccountState> _accounts = [];

    /// <summary>Creates a publisher signing with keys from <paramref name="keys"/>.</summary>
    public TimetablePublisher(ISchoolKeyStore keys, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _keys = keys;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The accounts published so far, in id order.</summary>
    public IReadOnlyList<AccountId> Accounts => [.. _accounts.Keys.OrderBy(a => a.Value, StringComparer.Ordinal)];

    /// <summary>The timetable as last published (series ids reconciled with earlier publishes), or null.</summary>
    public SchoolTimetable? Current { get; private set; }

    /// <summary>The school replica of <paramref name="account"/>.</summary>
    public Replica ReplicaOf(AccountId account) =>
        _accounts.TryGetValue(account, out var state) ? state.Replica : throw new KeyNotFoundException($"account {account} was never published");

    /// <summary>The signed events of <paramref name="account"/>'s log, for the relay or a device.</summary>
    public IReadOnlyList<SignedEvent> EventsOf(AccountId account, VectorClock? since = null) => ReplicaOf(account).Ledger.Export(account, since);

    /// <summary>Enrolls a device of <paramref name="account"/> (a school decision in the account's log).</summary>
    public RecordResult EnrollDevice(AccountId account, ReplicaId device, string label, ImmutableArray<byte> deviceKey) =>
        ReplicaOf(account).Record(new DeviceEnrolled(device, label, deviceKey));

    /// <summary>Publishes <paramref name="timetable"/>, or the difference to the timetable published before, effective today.</summary>
    /// <exception cref="SchoolImportException">The timetable is inconsistent; nothing was recorded.</exception>
    /// <exception cref="InvalidOperationException">The engine refused a planned fact (a bug); earlier accounts are recorded.</exception>
    public PublishResult Publish(SchoolTimetable timetable) => Publish(timetable, new PublishOptions());

    /// <summary>Publishes <paramref name="timetable"/>, or the difference to the timetable published before, as <paramref name="options"/> say.</summary>
    /// <exception cref="SchoolImportException">The timetable is inconsistent; nothing was recorded.</exception>
    /// <exception cref="InvalidOperationException">The engine refused a planned fact (a bug); earlier accounts are recorded.</exception>
    public PublishResult Publish(SchoolTimetable timetable, PublishOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        TimetableValidator.Validate(timetable);
        var effectiveFrom = options.EffectiveFrom ?? DateOnly.FromDateTime(_time.GetLocalNow().DateTime);
        var plans = Plan(timetable, effectiveFrom, options.TeacherRecord ?? ((_, _) => null), out var moves, out var withdrawn, out var reconciled);
        var opened = 0;
        var facts = ImmutableArray.CreateBuilder<PublishedFact>();
        foreach (var plan in plans)
        {
            if (!_accounts.TryGetValue(plan.Account, out var state))
            {
                state = new AccountState(new Replica(plan.Account, _keys.KeyFor(plan.Account), null, _time));
                _accounts[plan.Account] = state;
                opened++;
            }

            foreach (var (batch, payloads) in new[] { plan.Payloads, plan.Carried }.Index().Where(b => b.Item.Count > 0))
            {
                var result = state.Replica.RecordBatch(payloads);
                if (!result.Succeeded)
                {
                    throw new InvalidOperationException($"the engine refused the publish of account {plan.Account}: {result.Error}");
                }

                facts.AddRange(payloads.Select(p => new PublishedFact(plan.Account, p, batch)));
            }

            plan.Commit(state);
        }

        Current = reconciled;
        return new PublishResult(opened, facts.ToImmutable(), moves, withdrawn, effectiveFrom);
    }

    private List<AccountPlan> Plan(SchoolTimetable t, DateOnly effectiveFrom, Func<AccountId, OccurrenceId, LessonView?> teacherRecord, out ImmutableArray<SeriesMove> moves, out ImmutableArray<(AccountId, SeriesId)> withdrawn, out SchoolTimetable reconciled)
    {
        var students = t.Groups.ToDictionary(g => g.Id, g => g.Students.ToList());
        var plans = new List<AccountPlan>();
        var allMoves = ImmutableArray.CreateBuilder<SeriesMove>();
        var allWithdrawn = ImmutableArray.CreateBuilder<(AccountId, SeriesId)>();
        var lessons = ImmutableArray.CreateBuilder<WeeklyLesson>();
        var teacherIds = t.Teachers.Select(x => x.Account).ToHashSet();
        var orphans = _accounts.Keys.Where(a => !teacherIds.Contains(a)).Select(a => new SchoolTeacher(a, a.Value, a.Value));
        foreach (var teacher in t.Teachers.Concat(orphans).OrderBy(x => x.Account.Value, StringComparer.Ordinal))
        {
            var account = teacher.Account;
            _accounts.TryGetValue(account, out var state);
            var plan = new AccountPlan(account, state);
            var payloads = plan.Payloads;
            if (state is null)
            {
                payloads.Add(new AccountOpened(t.School, teacher.Name, _keys.KeyFor(account).PublicKey));
            }

            foreach (var h in t.Term.Holidays.Where(h => !plan.Holidays.Contains(h)))
            {
                payloads.Add(new HolidaysDeclared(h.Name, h.From, h.To));
                plan.Holidays.Add(h);
            }

            var mine = teacherIds.Contains(account) ? t.LessonsOf(account).ToList() : [];
            foreach (var s in mine.SelectMany(l => l.Groups).Distinct().SelectMany(g => students[g]).DistinctBy(s => s.Id).OrderBy(s => s.Id.Value, StringComparer.Ordinal))
            {
                if (plan.Students.Add(s.Id))
                {
                    payloads.Add(new StudentEnrolled(s.Id, s.Name));
                }
            }

            bool IsHoliday(DateOnly d) => plan.Holidays.Any(h => d >= h.From && d <= h.To);

            // An id not used by the account yet: the wanted one, else with ".2", ".3", … appended.
            SeriesId NewSeriesId(SeriesId wanted)
            {
                var id = wanted;
                for (var k = 2; plan.Series.ContainsKey(id); k++)
                {
                    id = new SeriesId(string.Create(CultureInfo.InvariantCulture, $"{wanted.Value}.{k}"));
                }

                return id;
            }

            // A lesson gone from the new version (or one continued as a new series) ends the day before the effective
            // date: its earlier lessons, and what teachers recorded on them, stay (the series is republished with that
            // term end); withdrawn entirely only when the effective date is not after its first day.
            void Withdraw(PublishedSeries gone, bool removed = true)
            {
                var series = gone.Published.Series;
                var lastDay = effectiveFrom.AddDays(-1);
                if (lastDay < gone.Published.TermStart)
                {
                    payloads.Add(new SeriesWithdrawn(series, "removed from the timetable"));
                }
                else if (lastDay < gone.Published.TermEnd)
                {
                    var ended = gone.Published with { TermEnd = lastDay };
                    payloads.Add(ended);
                    gone = gone with { Published = ended };
                }

                plan.Series[series] = gone with { Active = false };
                if (removed)
                {
                    allWithdrawn.Add((account, series));
                }
            }
            // The old version's occurrences from the new series' start on no longer exist; what teachers recorded on
            // them (a cancellation, a move, a lesson held, absences of students still taught) is recorded again, by the
            // school, on the new series' lesson of the same week, so it stays in the calendars and the payroll report.
            IEnumerable<LessonEvent> CarriedOver(SeriesPublished from, SeriesPublished to)
            {
                foreach (var date in from.Dates(IsHoliday).Where(d => d >= to.TermStart))
                {
                    var target = date.AddDays(to.Weekday - from.Weekday);
                    if (teacherRecord(account, new OccurrenceId(from.Series, date)) is not { } record || target < to.TermStart || target > to.TermEnd || IsHoliday(target))
                    {
                        continue;
                    }

                    var occurrence = new OccurrenceId(to.Series, target);
                    foreach (var (student, excused) in record.Absent.Where(a => to.Students.Contains(new StudentId(a.Key))))
                    {
                        yield return new StudentAbsent(occurrence, new StudentId(student), excused, null);
                    }

                    LessonEvent? decision = record.Status switch
                    {
                        LessonStatus.Cancelled => new LessonCancelled(occurrence, record.CancellationReason ?? CancellationReason.Other, record.MakeUpOwed, record.Note),
                        LessonStatus.Moved => new LessonRescheduled(occurrence, record.Date, record.StartMinute, record.DurationMinutes, record.Room),
                        LessonStatus.Held => new LessonHeld(occurrence, record.Note),
                        _ => null,
                    };
                    if (decision is not null)
                    {
                        yield return decision;
                    }
                }
            }

            SeriesPublished Publishable(SeriesId id, WeeklyLesson l) => new(
                id, l.Subject, l.Slot.Weekday, l.Slot.StartMinute, l.Slot.DurationMinutes, l.Slot.Room,
                [.. l.Groups.SelectMany(g => students[g]).Select(s => s.Id).Distinct().OrderBy(s => s.Value, StringComparer.Ordinal)],
                t.Term.Start, t.Term.End);

            // Match the new lessons to the published ones, per lesson key: identical slots first, then the rest in slot order.
            var byKey = plan.Series.Values.Where(s => s.Active).GroupBy(s => s.Effective.Key, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.OrderBy(s => s.Effective.Slot).ThenBy(s => s.Published.Series.Value, StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
            foreach (var group in mine.GroupBy(l => l.Key, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var olds = byKey.Remove(group.Key, out var o) ? o : [];
                var news = group.OrderBy(l => l.Slot).ThenBy(l => l.Series.Value, StringComparer.Ordinal).ToList();
                var pairs = new List<(PublishedSeries Old, WeeklyLesson New)>();
                foreach (var n in news.ToList())
                {
                    var same = olds.FindIndex(x => x.Effective.Slot == n.Slot);
                    if (same >= 0)
                    {
                        pairs.Add((olds[same], n));
                        olds.RemoveAt(same);
                        news.Remove(n);
                    }
                }

                var paired = Math.Min(olds.Count, news.Count);
                pairs.AddRange(olds.Take(paired).Zip(news.Take(paired)));
                foreach (var (old, n) in pairs)
                {
                    var seriesId = old.Published.Series;
                    var oldContent = old.Published;

                    // A series that began at an earlier effective date keeps that start.
                    var content = Publishable(seriesId, n) is var full && oldContent.TermStart > full.TermStart ? full with { TermStart = oldContent.TermStart } : full;
                    if (content.Subject != oldContent.Subject || !content.Students.SequenceEqual(oldContent.Students) ||
                        content.TermStart != oldContent.TermStart || content.TermEnd != oldContent.TermEnd)
                    {
                        if (effectiveFrom > oldContent.TermStart)
                        {
                            // The series itself changed (students, subject or term) with lessons before the effective date:
                            // the old version ends the day before it (its lessons keep their students and records), the new
                            // one continues as a new series from it.
                            Withdraw(old, removed: false);
                            var id = NewSeriesId(seriesId);
                            var next = content with { Series = id, TermStart = effectiveFrom > content.TermStart ? effectiveFrom : content.TermStart };
                            if (next.TermStart <= next.TermEnd)
                            {
                                payloads.Add(next);
                                plan.Carried.AddRange(CarriedOver(old.Published, next));
                                plan.Series[seriesId] = plan.Series[seriesId] with { ContinuedAs = id };
                                plan.Series[id] = new PublishedSeries(n with { Series = id }, next, true);
                                lessons.Add(n with { Series = id });
                            }

                            continue;
                        }

                        // Not a move, and nothing before the effective date: publish the series' new version.
                        payloads.Add(content);
                        plan.Series[seriesId] = new PublishedSeries(n with { Series = seriesId }, content, true);
                    }
                    else if (old.Effective.Slot != n.Slot)
                    {
                        var (rescheduled, cancelled, before, decided) = (0, 0, 0, 0);
                        foreach (var date in old.Published.Dates(IsHoliday))
                        {
                            var target = date.AddDays(n.Slot.Weekday - old.Published.Weekday);
                            var occurrence = new OccurrenceId(seriesId, date);
                            if (date < effectiveFrom || target < effectiveFrom)
                            {
                                before++;
                            }
                            else if (teacherRecord(account, occurrence) is { Status: not LessonStatus.Scheduled })
                            {
                                decided++;
                            }
                            else if (target >= t.Term.Start && target <= t.Term.End && !IsHoliday(target))
                            {
                                payloads.Add(new LessonRescheduled(occurrence, target, n.Slot.StartMinute, n.Slot.DurationMinutes, n.Slot.Room));
                                rescheduled++;
                            }
                            else
                            {
                                payloads.Add(new LessonCancelled(occurrence, CancellationReason.SchoolClosed, true,
                                    string.Create(CultureInfo.InvariantCulture, $"timetable change: the new slot on {target:yyyy-MM-dd} is not a school day")));
                                cancelled++;
                            }
                        }

                        allMoves.Add(new SeriesMove(account, seriesId, old.Effective.Slot, n.Slot, rescheduled, cancelled, before, decided));
                        plan.Series[seriesId] = old with { Effective = n with { Series = seriesId } };
                    }

                    lessons.Add(n with { Series = seriesId });
                }

                foreach (var gone in olds.Skip(paired))
                {
                    Withdraw(gone);
                }

                foreach (var added in news.Skip(paired))
                {
                    var id = NewSeriesId(added.Series);

                    var content = Publishable(id, added);
                    payloads.Add(content);
                    plan.Series[id] = new PublishedSeries(added with { Series = id }, content, true);
                    lessons.Add(added with { Series = id });
                }
            }

            foreach (var gone in byKey.Values.SelectMany(v => v))
            {
                Withdraw(gone);
            }

            plans.Add(plan);
        }

        moves = allMoves.ToImmutable();
        withdrawn = allWithdrawn.ToImmutable();
        reconciled = t with { Lessons = lessons.ToImmutable() };
        return plans;
    }

    /// <summary>
    /// School-authored events that carry teachers' records which reached the school after their lesson continued as a
    /// new series (students, subject or term changed) over to it: from the day it continued on, the old series'
    /// occurrences no longer exist, so an absence, cancellation, move or lesson held recorded offline on one of them is
    /// recorded again on the new series' lesson of the same week (absences only for students still taught there).
    /// </summary>
    /// <param name="account">The account.</param>
    /// <param name="records">Teachers' events, newly received, in causal order.</param>
    /// <returns>The events to record, in the same order; empty when no record concerns a continued occurrence.</returns>
    public IReadOnlyList<LessonEvent> CarryOver(AccountId account, IEnumerable<LessonEvent> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (!_accounts.TryGetValue(account, out var state))
        {
            return [];
        }

        var carried = new List<LessonEvent>();
        foreach (var record in records)
        {
            if (Engine.Merge.Calendar.OccurrenceOf(record) is not { } from || Successor(state, from) is not { } to)
            {
                continue;
            }

            var students = state.Series[to.Series].Published.Students;
            LessonEvent? again = record switch
            {
                StudentAbsent a when students.Contains(a.Student) => a with { Occurrence = to },
                AbsenceWithdrawn w when students.Contains(w.Student) => w with { Occurrence = to },
                LessonCancelled c => c with { Occurrence = to },
                LessonRescheduled r => r with { Occurrence = to },
                LessonHeld h => h with { Occurrence = to },
                _ => null,
            };
            if (again is not null)
            {
                carried.Add(again);
            }
        }

        return carried;
    }

    // The occurrence that stands for a continued series' occurrence after the day it continued (following further
    // continuations), or null when the occurrence still exists or its week has no lesson in the new series.
    private static OccurrenceId? Successor(AccountState state, OccurrenceId occurrence)
    {
        var at = occurrence;
        while (state.Series.TryGetValue(at.Series, out var series) && series.ContinuedAs is { } nextId && at.Date > series.Published.TermEnd &&
            state.Series.TryGetValue(nextId, out var next))
        {
            var target = at.Date.AddDays(next.Published.Weekday - series.Published.Weekday);
            if (target < next.Published.TermStart || target > next.Published.TermEnd || state.Holidays.Any(h => target >= h.From && target <= h.To))
            {
                return null;
            }

            at = new OccurrenceId(nextId, target);
        }

        return at == occurrence ? null : at;
    }

    private sealed record PublishedSeries(WeeklyLesson Effective, SeriesPublished Published, bool Active, SeriesId? ContinuedAs = null);

    private sealed class AccountState(Replica replica)
    {
        public Replica Replica { get; } = replica;

        public HashSet<SchoolHoliday> Holidays { get; set; } = [];

        public HashSet<StudentId> Students { get; set; } = [];

        public Dictionary<SeriesId, PublishedSeries> Series { get; set; } = [];
    }

    private sealed class AccountPlan
    {
        public AccountPlan(AccountId account, AccountState? state)
        {
            Account = account;
            Holidays = state is null ? [] : [.. state.Holidays];
            Students = state is null ? [] : [.. state.Students];
            Series = state is null ? [] : new Dictionary<SeriesId, PublishedSeries>(state.Series);
        }

        public AccountId Account { get; }

        public List<LessonEvent> Payloads { get; } = [];

        // Teachers' records carried over to new series: recorded after Payloads, which publishes those series.
        public List<LessonEvent> Carried { get; } = [];

        public HashSet<SchoolHoliday> Holidays { get; }

        public HashSet<StudentId> Students { get; }

        public Dictionary<SeriesId, PublishedSeries> Series { get; }

        public void Commit(AccountState state)
        {
            state.Holidays = Holidays;
            state.Students = Students;
            state.Series = Series;
        }
    }
}
