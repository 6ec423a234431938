using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;

namespace IMikelGo.Cli;

/// <summary>What <c>imikelgo log demo</c> produced.</summary>
internal sealed record DemoResult(
    IReadOnlyList<string> Lines, AccountId Account, string School, string Teacher, int Replicas, int Terms,
    int Syncs, int Conflicts, int Resolutions, int Lessons);

/// <summary>
/// Simulates one school replica and R−1 teacher devices syncing through a relay over one or more terms, and
/// returns the union of their chains as log lines. Everything derives from the seed: keys, clock, choices and
/// (through RFC 6979) the checkpoint signatures, so the same seed gives the same bytes.
/// </summary>
internal sealed class DemoLog : IDisposable
{
    public const int MinEvents = 100;
    public const int MaxReplicas = 20;
    private const int EventsPerTerm = 1200;

    private readonly Random _rng;
    private readonly ManualClock _clock;
    private readonly int _target;
    private readonly AccountId _account;
    private readonly DemoKey _schoolKey;
    private readonly Replica _school;
    private readonly Ledger _relay;
    private readonly List<Device> _devices = [];
    private readonly Dictionary<ReplicaId, DemoKey> _keys = [];
    private readonly List<Schedule> _schedules = [];
    private readonly List<RecentEdit> _recent = [];
    private readonly HashSet<OccurrenceId> _resolved = [];
    private readonly List<Term> _terms;
    private readonly Teacher _teacher;
    private readonly string _schoolName;
    private readonly Dictionary<SeriesId, SeriesPublished> _termSeries = [];
    private readonly List<HolidaysDeclared> _holidays = [];
    private readonly List<StudentId> _students = [];
    private int _written;
    private bool _noMoreTerms;
    private int _currentTerm = -1;
    private int _schoolChangesThisTerm;
    private int _syncs;
    private int _deviceSyncs;
    private int _resolutions;
    private int _nextStudent = 1;
    private int _nextSeries = 1;
    private long _termScheduleSeq;
    private TimeSpan _stepPerEvent;

    private DemoLog(long seed, int replicas, int events)
    {
        _rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        _target = events;
        _teacher = DemoData.Teachers[_rng.Next(DemoData.Teachers.Length)];
        _schoolName = DemoData.Schools[_rng.Next(DemoData.Schools.Length)];
        _account = new AccountId("k-" + _teacher.Slug);
        var termCount = Math.Max(1, (events + EventsPerTerm - 1) / EventsPerTerm);
        _terms = Term.Sequence(termCount);
        _clock = new ManualClock(new DateTimeOffset(_terms[0].Start.AddDays(-10), new TimeOnly(9, 0), TimeSpan.Zero));
        _schoolKey = DemoKey.Derive(seed, "school");
        _keys[_schoolKey.Key.Replica] = _schoolKey;
        _school = new Replica(_account, _schoolKey.Key, time: _clock);
        _relay = new Ledger(time: _clock);
        for (var i = 1; i < replicas; i++)
        {
            var key = DemoKey.Derive(seed, $"device-{i}");
            _keys[key.Key.Replica] = key;
            var label = i <= DemoData.DeviceLabels.Length ? DemoData.DeviceLabels[i - 1] : $"Gerät {i}";
            _devices.Add(new Device(new Replica(_account, key.Key, time: _clock), label));
        }
    }

    /// <summary>Generates the log.</summary>
    public static DemoResult Generate(long seed, int replicas, int events)
    {
        using var demo = new DemoLog(seed, replicas, events);
        return demo.Run();
    }

    public void Dispose()
    {
        foreach (var key in _keys.Values)
        {
            key.Dispose();
        }
    }

    private int Remaining => _target - _written;

    private DemoResult Run()
    {
        StartTerm(0);
        var idle = 0;
        while (Remaining > 0)
        {
            var due = (int)Math.Min(_terms.Count - 1, (long)_written * _terms.Count / _target);
            if (due > _currentTerm && !_noMoreTerms)
            {
                _noMoreTerms = !StartTerm(_currentTerm + 1);
                continue;
            }

            var recorded = _devices.Count == 0 || _rng.NextDouble() < 0.05 ? SchoolStep() : DeviceStep(_devices[_rng.Next(_devices.Count)]);
            idle = recorded ? 0 : idle + 1;
            if (idle > 1000)
            {
                throw new InvalidOperationException("the demo simulation stalled: no replica could record a valid fact");
            }
        }

        Push(_school);
        foreach (var device in _devices)
        {
            Push(device.Replica);
        }

        var calendar = _relay.Calendar(_account);
        return new DemoResult(
            Lines(), _account, _schoolName, _teacher.Name, _devices.Count + 1, _currentTerm + 1, _syncs,
            calendar.Conflicts().Count, _resolutions, calendar.Lessons().Count);
    }

    /// <summary>The union of every chain, re-signed deterministically, in recorded-time order.</summary>
    private List<string> Lines()
    {
        var events = _relay.Export(_account);
        if (events.Count != _written)
        {
            throw new InvalidOperationException($"the relay holds {events.Count} events, {_written} were written");
        }

        var ordered = events
            .OrderBy(e => e.Event.Time.WallMicros).ThenBy(e => e.Event.Time.Counter)
            .ThenBy(e => e.Event.Replica).ThenBy(e => e.Event.Seq)
            .ToArray();
        var lines = new string[ordered.Length];
        Parallel.For(0, ordered.Length, i => lines[i] = ToLine(ordered[i]));
        return [.. lines];
    }

    /// <summary>
    /// The canonical log line {"checkpoint":…,"event":{body},"hash":…} (keys in canonical order), built from the
    /// body bytes directly; a checkpoint is re-signed with an RFC 6979 nonce so the bytes depend only on the seed.
    /// </summary>
    private string ToLine(SignedEvent signed)
    {
        var e = signed.Event;
        var body = Encoding.UTF8.GetString(e.Body.AsSpan());
        if (!signed.IsCheckpoint)
        {
            return "{\"event\":" + body + ",\"hash\":\"" + e.Hash.Hex + "\"}";
        }

        var signature = _keys[e.Replica].Sign(DeterministicSigner.CheckpointStatement(e.Account, e.Replica, e.Seq, e.Hash));
        return "{\"checkpoint\":\"" + Convert.ToBase64String(signature) + "\",\"event\":" + body + ",\"hash\":\"" + e.Hash.Hex + "\"}";
    }

    // ---------------------------------------------------------------- sync through the relay

    private void Push(Replica replica)
    {
        var report = _relay.Ingest(replica.Ledger.Export(_account, _relay.Heads(_account)));
        if (!report.IsClean)
        {
            throw new InvalidOperationException("the relay refused a demo event: " + report.Refused[0]);
        }
    }

    private void Pull(Replica replica)
    {
        var report = replica.Receive(_relay.Export(_account, replica.Ledger.Heads(_account)));
        if (!report.IsClean)
        {
            throw new InvalidOperationException("a replica refused a demo event: " + report.Refused[0]);
        }
    }

    private void Sync(Replica replica)
    {
        Push(replica);
        Pull(replica);
        _syncs++;
    }

    // ---------------------------------------------------------------- the school

    private bool StartTerm(int index)
    {
        var term = _terms[index];
        var batch = new List<LessonEvent>();
        if (index == 0)
        {
            batch.Add(new AccountOpened(_schoolName, _teacher.Name, _schoolKey.Key.PublicKey));
            foreach (var device in _devices)
            {
                batch.Add(new DeviceEnrolled(device.Replica.Id, device.Label, _keys[device.Replica.Id].Key.PublicKey));
            }
        }

        var holidays = term.Holidays.Select(h => new HolidaysDeclared(h.Name, h.From, h.To)).ToList();
        batch.AddRange(holidays);

        // Series: the teacher's subjects, slots from 13:30 on weekdays, students continuing or newly enrolled.
        var continuing = _students.OrderBy(_ => _rng.Next()).ToList();
        var newStudents = new List<StudentEnrolled>();
        var series = new List<SeriesPublished>();
        var seriesCount = _rng.Next(10, 16);
        var nextStart = new int[8];
        for (var w = 1; w <= 5; w++)
        {
            nextStart[w] = (13 * 60) + 30 + (15 * _rng.Next(0, 4));
        }

        for (var i = 0; i < seriesCount; i++)
        {
            var subject = DemoData.Subjects[_teacher.Subjects[_rng.NextDouble() < 0.55 ? 0 : _rng.Next(_teacher.Subjects.Length)]];
            var weekday = _rng.Next(1, 6);
            var duration = subject.Durations[_rng.Next(subject.Durations.Length)];
            if (nextStart[weekday] + duration > 20 * 60)
            {
                continue;
            }

            var start = nextStart[weekday];
            nextStart[weekday] += duration + (_rng.NextDouble() < 0.3 ? 15 : 0);
            var size = _rng.Next(subject.MinStudents, subject.MaxStudents + 1);
            var students = new List<StudentId>();
            while (students.Count < size)
            {
                if (continuing.Count > 0 && _rng.NextDouble() < 0.7)
                {
                    students.Add(continuing[^1]);
                    continuing.RemoveAt(continuing.Count - 1);
                }
                else
                {
                    var enrolled = NewStudent();
                    newStudents.Add(enrolled);
                    students.Add(enrolled.Student);
                }
            }

            series.Add(new SeriesPublished(
                new SeriesId($"{term.Code}-{subject.Slug}-{_nextSeries++:D2}"), subject.Name, weekday, start, duration,
                new RoomId(DemoData.Rooms[_rng.Next(DemoData.Rooms.Length)]), [.. students], term.Start, term.End));
        }

        batch.AddRange(newStudents);
        batch.AddRange(series);
        if (batch.Count > Remaining && index > 0)
        {
            _nextStudent -= newStudents.Count;
            return false;
        }

        _currentTerm = index;
        _schoolChangesThisTerm = 0;
        _clock.SetAtLeast(new DateTimeOffset(term.Start.AddDays(-7), new TimeOnly(10, 0), TimeSpan.Zero));
        var termEvents = Math.Max(1, _target / _terms.Count);
        _stepPerEvent = (new DateTimeOffset(term.End, new TimeOnly(18, 0), TimeSpan.Zero) - _clock.Now) / termEvents;
        _termSeries.Clear();
        foreach (var s in series)
        {
            _termSeries[s.Series] = s;
        }

        _holidays.AddRange(holidays);
        _students.AddRange(newStudents.Select(s => s.Student));
        Sync(_school);
        RecordSchool(batch.Count > Remaining ? batch[..Remaining] : batch);
        _termScheduleSeq = _school.Position.Seq;
        return true;
    }

    private StudentEnrolled NewStudent()
    {
        var first = DemoData.FirstNames[_rng.Next(DemoData.FirstNames.Length)];
        var last = DemoData.LastNames[_rng.Next(DemoData.LastNames.Length)];
        return new StudentEnrolled(new StudentId($"s-{_nextStudent++:D3}"), $"{first} {last}");
    }

    private void RecordSchool(List<LessonEvent> batch)
    {
        var result = _school.RecordBatch(batch);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("the school could not record its own demo batch: " + result.Error);
        }

        _written += batch.Count;
        _clock.Advance(_stepPerEvent * batch.Count);
        Push(_school);
        _schedules.Add(new Schedule(_school.Position.Seq, _currentTerm, BuildSlots()));
    }

    private List<Slot> BuildSlots()
    {
        bool IsHoliday(DateOnly d) => _holidays.Exists(h => d >= h.From && d <= h.To);
        return [.. _termSeries.Values.SelectMany(s => s.Dates(IsHoliday).Select(d =>
            new Slot(new OccurrenceId(s.Series, d), s.Students)))];
    }

    private bool SchoolStep()
    {
        if (_rng.NextDouble() < 0.6 || _schoolChangesThisTerm >= 3 || Remaining < 1)
        {
            Sync(_school);
            return false;
        }

        Sync(_school);
        var today = Today;
        var term = _terms[_currentTerm];
        var choice = _rng.NextDouble();
        LessonEvent change;
        if (choice < 0.4)
        {
            var day = today.AddDays(_rng.Next(2, 21));
            if (day > term.End || day.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
            {
                return false;
            }

            var closure = new HolidaysDeclared(DemoData.Closures[_rng.Next(DemoData.Closures.Length)], day, day);
            _holidays.Add(closure);
            change = closure;
        }
        else
        {
            var all = _termSeries.Values.ToList();
            var old = all[_rng.Next(all.Count)];
            var weekday = _rng.NextDouble() < 0.25 ? (old.Weekday % 5) + 1 : old.Weekday;
            var changed = old with
            {
                Weekday = weekday,
                StartMinute = Math.Clamp(old.StartMinute + (15 * _rng.Next(-2, 3)), 8 * 60, (20 * 60) - old.DurationMinutes),
                Room = new RoomId(DemoData.Rooms[_rng.Next(DemoData.Rooms.Length)]),
            };
            _termSeries[old.Series] = changed;
            change = changed;
        }

        _schoolChangesThisTerm++;
        RecordSchool([change]);
        return true;
    }

    // ---------------------------------------------------------------- teacher devices

    private DateOnly Today => DateOnly.FromDateTime(_clock.Now.UtcDateTime);

    private bool DeviceStep(Device device)
    {
        var replica = device.Replica;
        if (replica.Ledger.Heads(_account)[_school.Id] < _termScheduleSeq)
        {
            Pull(replica); // the teacher presses "sync" before the first lesson of the term
            _syncs++;
        }

        var seen = replica.Ledger.Heads(_account)[_school.Id];
        var schedule = _schedules.LastOrDefault(s => s.SchoolSeq <= seen);
        if (schedule is null || schedule.Term != _currentTerm || schedule.Slots.Count == 0)
        {
            return false;
        }

        var count = Math.Min(Remaining, _rng.Next(10, 41));
        var batch = new List<LessonEvent>(count);
        var edits = new List<(OccurrenceId Occurrence, string Kind)>();
        var window = Window(schedule.Slots);
        for (var i = 0; i < count; i++)
        {
            var (fact, kind) = NextFact(device, schedule, window);
            batch.Add(fact);
            if (kind is not null)
            {
                edits.Add((Engine.Merge.Calendar.OccurrenceOf(fact)!.Value, kind));
            }
        }

        var result = replica.RecordBatch(batch);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"{device.Label} could not record its demo batch: {result.Error}");
        }

        _written += batch.Count;
        _clock.Advance(_stepPerEvent * batch.Count * (0.5 + _rng.NextDouble()));
        foreach (var (occurrence, kind) in edits)
        {
            _recent.Add(new RecentEdit(device, occurrence, kind, replica.Position.Seq, _currentTerm));
        }

        if (_recent.Count > 200)
        {
            _recent.RemoveRange(0, _recent.Count - 200);
        }

        if (_rng.NextDouble() < 0.45)
        {
            Sync(replica);
            _deviceSyncs++;
            if (_deviceSyncs % Math.Max(2, _target / 2500) == 0)
            {
                Resolve(device, schedule);
            }
        }

        return true;
    }

    private List<Slot> Window(List<Slot> slots)
    {
        var today = Today;
        var near = slots.Where(s => Math.Abs(s.Occurrence.Date.DayNumber - today.DayNumber) <= 10).ToList();
        return near.Count > 0 ? near : slots;
    }

    private (LessonEvent Fact, string? Kind) NextFact(Device device, Schedule schedule, List<Slot> window)
    {
        var known = device.Replica.Ledger.Heads(_account);
        if (_rng.NextDouble() < 0.06)
        {
            // Someone else touched a lesson we have not seen yet: write a colliding intent (a concurrent edit).
            var others = _recent.Where(r => r.Device != device && r.Term == _currentTerm && known[r.Device.Replica.Id] < r.Seq).ToList();
            if (others.Count > 0)
            {
                var other = others[_rng.Next(others.Count)];
                if (schedule.Slots.Find(s => s.Occurrence == other.Occurrence) is { } slot)
                {
                    return other.Kind switch
                    {
                        "cancel" => (Move(slot), "move"),
                        "move" => _rng.NextDouble() < 0.5 ? (Cancel(slot), "cancel") : (Move(slot), "move"),
                        "held" => _rng.NextDouble() < 0.5 ? (Cancel(slot), "cancel") : (Move(slot), "move"),
                        _ => (Cancel(slot), "cancel"),
                    };
                }
            }
        }

        var today = Today;
        var past = window.Where(s => s.Occurrence.Date <= today).ToList();
        var future = window.Where(s => s.Occurrence.Date >= today).ToList();
        var pick = _rng.NextDouble();
        if (pick < 0.40)
        {
            var slot = Pick(past.Count > 0 ? past : window);
            return (new LessonHeld(slot.Occurrence, _rng.NextDouble() < 0.85 ? DemoData.Notes[_rng.Next(DemoData.Notes.Length)] : null), "held");
        }

        if (pick < 0.62)
        {
            var slot = Pick(past.Count > 0 ? past : window);
            var student = slot.Students[_rng.Next(slot.Students.Length)];
            var excused = _rng.NextDouble() < 0.65;
            var reasons = excused ? DemoData.ExcusedReasons : DemoData.UnexcusedReasons;
            device.Absences.Add((slot.Occurrence, student));
            return (new StudentAbsent(slot.Occurrence, student, excused, reasons[_rng.Next(reasons.Length)]), "absent");
        }

        if (pick < 0.74)
        {
            return (Cancel(Pick(future.Count > 0 ? future : window)), "cancel");
        }

        if (pick < 0.86)
        {
            return (Move(Pick(future.Count > 0 ? future : window)), "move");
        }

        if (pick < 0.93 && device.Absences.Count > 0)
        {
            var i = _rng.Next(device.Absences.Count);
            var (occurrence, student) = device.Absences[i];
            device.Absences.RemoveAt(i);
            if (schedule.Slots.Exists(s => s.Occurrence == occurrence))
            {
                return (new AbsenceWithdrawn(occurrence, student), null);
            }
        }

        var any = Pick(past.Count > 0 ? past : window);
        return (new LessonHeld(any.Occurrence, DemoData.Notes[_rng.Next(DemoData.Notes.Length)]), "held");
    }

    private Slot Pick(List<Slot> slots) => slots[_rng.Next(slots.Count)];

    private LessonCancelled Cancel(Slot slot)
    {
        var reason = (CancellationReason)_rng.Next(4);
        var makeUp = reason is CancellationReason.TeacherIll or CancellationReason.Other || (reason == CancellationReason.StudentIll && _rng.NextDouble() < 0.3);
        var notes = DemoData.CancelNotes[reason];
        return new LessonCancelled(slot.Occurrence, reason, makeUp, _rng.NextDouble() < 0.8 ? notes[_rng.Next(notes.Length)] : null);
    }

    private LessonRescheduled Move(Slot slot)
    {
        var series = _termSeries.GetValueOrDefault(slot.Occurrence.Series);
        var duration = series?.DurationMinutes ?? 45;
        var date = slot.Occurrence.Date.AddDays(_rng.Next(0, 4));
        var start = (14 * 60) + (15 * _rng.Next(0, 20));
        var room = _rng.NextDouble() < 0.5 && series is not null ? series.Room : new RoomId(DemoData.Rooms[_rng.Next(DemoData.Rooms.Length)]);
        return new LessonRescheduled(slot.Occurrence, date, start, duration, room);
    }

    /// <summary>The teacher opens the conflict list and decides a few of them (a new event that has seen both).</summary>
    private void Resolve(Device device, Schedule schedule)
    {
        var statusRules = new HashSet<string>(StringComparer.Ordinal)
        {
            MergeRules.CancelBeatsReschedule, MergeRules.CancelBeatsHeld, MergeRules.RescheduleBeatsHeld, MergeRules.LowerReplicaWinsMove,
        };
        var open = device.Replica.Calendar.Conflicts()
            .Where(c => statusRules.Contains(c.Rule) && !_resolved.Contains(c.Occurrence) && schedule.Slots.Exists(s => s.Occurrence == c.Occurrence))
            .ToList();
        foreach (var conflict in open.Take(Math.Min(Remaining, 2)))
        {
            var keep = _rng.NextDouble() < 0.5 ? conflict.Winner : conflict.Loser;
            if (device.Replica.Record(new ConflictResolved(conflict.Occurrence, keep)).Succeeded)
            {
                _written++;
                _resolutions++;
                _resolved.Add(conflict.Occurrence);
            }
        }
    }

    private sealed record Device(Replica Replica, string Label)
    {
        public List<(OccurrenceId Occurrence, StudentId Student)> Absences { get; } = [];
    }

    private sealed record Slot(OccurrenceId Occurrence, ImmutableArray<StudentId> Students);

    private sealed record Schedule(long SchoolSeq, int Term, List<Slot> Slots);

    private sealed record RecentEdit(Device Device, OccurrenceId Occurrence, string Kind, long Seq, int Term);
}

/// <summary>A half-year term (Halbjahr) with its school holidays.</summary>
internal sealed record Term(string Code, string Name, DateOnly Start, DateOnly End, IReadOnlyList<(string Name, DateOnly From, DateOnly To)> Holidays)
{
    /// <summary>The <paramref name="count"/> terms ending with the summer term 2026, oldest first.</summary>
    public static List<Term> Sequence(int count)
    {
        var terms = new List<Term>();
        for (var back = count - 1; back >= 0; back--)
        {
            terms.Add(back % 2 == 0 ? Summer(2026 - (back / 2)) : Winter(2025 - (back / 2)));
        }

        return terms;
    }

    private static Term Summer(int year) => new(
        $"{year}s", $"Sommerhalbjahr {year}", new DateOnly(year, 2, 2), new DateOnly(year, 7, 10),
        [("Osterferien", new DateOnly(year, 3, 30), new DateOnly(year, 4, 10)), ("Pfingstferien", new DateOnly(year, 5, 26), new DateOnly(year, 5, 29))]);

    private static Term Winter(int year) => new(
        $"{year}w", string.Create(CultureInfo.InvariantCulture, $"Winterhalbjahr {year}/{(year + 1) % 100:D2}"), new DateOnly(year, 9, 7), new DateOnly(year + 1, 1, 29),
        [("Herbstferien", new DateOnly(year, 10, 12), new DateOnly(year, 10, 23)), ("Weihnachtsferien", new DateOnly(year, 12, 21), new DateOnly(year + 1, 1, 5))]);
}
