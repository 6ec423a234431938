using System.Collections.Immutable;
using System.Security.Cryptography;
using IMikelGo.Engine.Canonical;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;

namespace IMikelGo.Engine.Merge;

/// <summary>What happened to a lesson occurrence.</summary>
public enum LessonStatus
{
    /// <summary>Nothing recorded yet.</summary>
    Scheduled,

    /// <summary>The lesson took place.</summary>
    Held,

    /// <summary>The lesson was cancelled.</summary>
    Cancelled,

    /// <summary>The lesson was moved to another date, time or room.</summary>
    Moved,
}

/// <summary>One lesson in the teacher calendar.</summary>
public sealed record LessonView(
    OccurrenceId Occurrence,
    string Subject,
    DateOnly Date,
    int StartMinute,
    int DurationMinutes,
    RoomId Room,
    LessonStatus Status,
    CancellationReason? CancellationReason,
    bool MakeUpOwed,
    string? Note,
    ImmutableArray<StudentId> Students,
    ImmutableSortedDictionary<string, bool> Absent,
    EventHash? DecidedBy);

/// <summary>
/// Two concurrent events whose intents collide, the one that prevailed, and the documented rule that decided
/// (docs/merge-rules.md). Resolving it is a new event (<see cref="ConflictResolved"/>).
/// </summary>
public sealed record ConflictRecord(OccurrenceId Occurrence, EventHash Winner, EventHash Loser, string Rule, string Description);

/// <summary>An authentic event whose intent cannot apply (e.g. it names a lesson its author could not have seen).</summary>
public sealed record RejectedIntent(EventHash Event, string Reason);

/// <summary>
/// The teacher calendar projection: a deterministic view of one account built from its applied events. The
/// result depends only on the set of events, never on arrival order: every collision is decided from the
/// causal frontier of each occurrence by fixed rules, never by wall clock or payload hash.
/// </summary>
public sealed class Calendar
{
    private readonly Dictionary<SeriesId, List<(long SchoolSeq, SeriesPublished Version)>> _series = [];
    private readonly Dictionary<SeriesId, long> _withdrawn = [];
    private readonly List<HolidaysDeclared> _holidays = [];
    private readonly Dictionary<OccurrenceId, List<Fact>> _statusFrontier = [];
    private readonly Dictionary<(OccurrenceId, StudentId), List<Fact>> _absenceFrontier = [];
    private readonly Dictionary<EventHash, Fact> _facts = [];
    private readonly List<RejectedIntent> _rejected = [];
    private readonly SortedSet<string> _eventHashes = new(StringComparer.Ordinal);
    private readonly Dictionary<long, EventHash> _schoolEvents = [];
    private ReplicaId? _school;

    internal Calendar(AccountId account) => Account = account;

    /// <summary>The account.</summary>
    public AccountId Account { get; }

    /// <summary>Number of events applied.</summary>
    public int EventCount => _eventHashes.Count;

    /// <summary>Authentic events whose intent could not apply, with the reason.</summary>
    public IReadOnlyList<RejectedIntent> Rejected => [.. _rejected.OrderBy(r => r.Event.Hex, StringComparer.Ordinal)];

    private sealed record Fact(Event Event, bool BySchool)
    {
        public bool HasSeen(Fact other) => Event.Clock.HasSeen(other.Event.Replica, other.Event.Seq);
    }

    internal void Apply(Event e, bool isSchool)
    {
        _eventHashes.Add(e.Hash.Hex);
        var fact = new Fact(e, isSchool);
        _facts[e.Hash] = fact;
        if (isSchool)
        {
            _schoolEvents[e.Seq] = e.Hash;
        }
        switch (e.Payload)
        {
            case AccountOpened:
                _school = e.Replica;
                break;
            case SeriesPublished published:
                if (!_series.TryGetValue(published.Series, out var versions))
                {
                    _series[published.Series] = versions = [];
                }

                versions.Add((e.Seq, published));
                _withdrawn.Remove(published.Series);
                break;
            case SeriesWithdrawn withdrawn:
                _withdrawn[withdrawn.Series] = e.Seq;
                break;
            case HolidaysDeclared holidays:
                _holidays.Add(holidays);
                break;
            case StudentAbsent or AbsenceWithdrawn:
                if (Check(fact) is { } absenceFault)
                {
                    _rejected.Add(new RejectedIntent(e.Hash, absenceFault));
                    break;
                }

                Advance(_absenceFrontier, (OccurrenceOf(e.Payload), StudentOf(e.Payload)), fact);
                break;
            case LessonCancelled or LessonRescheduled or LessonHeld or ConflictResolved:
                if (Check(fact) is { } statusFault)
                {
                    _rejected.Add(new RejectedIntent(e.Hash, statusFault));
                    break;
                }

                Advance(_statusFrontier, OccurrenceOf(e.Payload), fact);
                break;
            default:
                break;
        }
    }

    /// <summary>Why <paramref name="e"/>'s intent could not apply to this calendar, or null when it can.</summary>
    internal string? Check(Event e, bool isSchool) =>
        e.Payload is StudentAbsent or AbsenceWithdrawn or LessonCancelled or LessonRescheduled or LessonHeld or ConflictResolved
            ? Check(new Fact(e, isSchool))
            : null;

    private string? Check(Fact fact)
    {
        var payload = fact.Event.Payload;
        var occurrence = OccurrenceOf(payload);
        var reason = CheckOccurrence(fact, occurrence, payload is StudentAbsent or AbsenceWithdrawn ? StudentOf(payload) : null);
        if (reason is null && payload is ConflictResolved resolved &&
            (!_facts.TryGetValue(resolved.Keep, out var kept) || !fact.HasSeen(kept) || OccurrenceOf(kept.Event.Payload) != occurrence || kept.Event.Payload is ConflictResolved))
        {
            reason = $"conflict.resolved keeps {resolved.Keep.Short}…, which is not a lesson event on {occurrence} that its author had seen";
        }

        return reason;
    }

    private static StudentId StudentOf(LessonEvent payload) => payload switch
    {
        StudentAbsent a => a.Student,
        AbsenceWithdrawn w => w.Student,
        _ => throw new ArgumentOutOfRangeException(nameof(payload)),
    };

    private static OccurrenceId OccurrenceOf(LessonEvent payload) => payload switch
    {
        LessonCancelled c => c.Occurrence,
        LessonRescheduled r => r.Occurrence,
        LessonHeld h => h.Occurrence,
        ConflictResolved x => x.Occurrence,
        StudentAbsent a => a.Occurrence,
        AbsenceWithdrawn w => w.Occurrence,
        _ => throw new ArgumentOutOfRangeException(nameof(payload)),
    };

    private static void Advance<TKey>(Dictionary<TKey, List<Fact>> frontiers, TKey key, Fact fact)
        where TKey : notnull
    {
        if (!frontiers.TryGetValue(key, out var frontier))
        {
            frontiers[key] = frontier = [];
        }

        frontier.RemoveAll(fact.HasSeen);
        frontier.Add(fact);
    }

    /// <summary>Whether the occurrence (and student) existed in the schedule its author had seen.</summary>
    private string? CheckOccurrence(Fact fact, OccurrenceId occurrence, StudentId? student)
    {
        var seenSchoolSeq = _school is { } school ? fact.Event.Clock[school] : 0;
        if (!_series.TryGetValue(occurrence.Series, out var versions))
        {
            return $"series {occurrence.Series} is unknown";
        }

        var seen = versions.Where(v => v.SchoolSeq <= seenSchoolSeq || fact.BySchool).ToList();
        if (_withdrawn.TryGetValue(occurrence.Series, out var withdrawnAt) && withdrawnAt <= seenSchoolSeq && !fact.BySchool)
        {
            return $"series {occurrence.Series} was withdrawn before the author wrote this";
        }

        if (seen.Count == 0 || !IsDateOf(seen[^1].Version, occurrence.Date))
        {
            return $"{occurrence} is not a lesson date of series {occurrence.Series} in the schedule its author had seen";
        }

        return student is { } s && !seen.Any(v => v.Version.Students.Contains(s))
            ? $"student {s} is not taught in series {occurrence.Series}"
            : null;
    }

    private static bool IsDateOf(SeriesPublished version, DateOnly date) =>
        date >= version.TermStart && date <= version.TermEnd && (int)date.DayOfWeek == version.Weekday % 7;

    private bool IsHoliday(DateOnly date) => _holidays.Exists(h => date >= h.From && date <= h.To);

    /// <summary>The lessons of every published series, by date and time.</summary>
    public IReadOnlyList<LessonView> Lessons() => [.. BuildLessons().Lessons];

    /// <summary>Every conflict, in a stable order.</summary>
    public IReadOnlyList<ConflictRecord> Conflicts() => [.. BuildLessons().Conflicts];

    private (List<LessonView> Lessons, List<ConflictRecord> Conflicts) BuildLessons()
    {
        var lessons = new List<LessonView>();
        var conflicts = new List<ConflictRecord>();
        foreach (var (seriesId, versions) in _series.OrderBy(s => s.Key.Value, StringComparer.Ordinal))
        {
            var latest = versions[^1];
            var withdrawn = _withdrawn.ContainsKey(seriesId);
            var dates = withdrawn ? [] : latest.Version.Dates(IsHoliday).ToHashSet();
            foreach (var date in dates.Order())
            {
                lessons.Add(BuildLesson(new OccurrenceId(seriesId, date), latest, conflicts));
            }

            // Teacher edits on lessons that the school removed concurrently: the school decision stands.
            foreach (var (occurrence, frontier) in _statusFrontier.Where(f => f.Key.Series == seriesId && !dates.Contains(f.Key.Date)))
            {
                foreach (var f in frontier.Where(f => !f.BySchool))
                {
                    conflicts.Add(new ConflictRecord(occurrence, latest.Version == null ? f.Event.Hash : f.Event.Hash, f.Event.Hash,
                        MergeRules.SchoolRemovedLesson, $"the school removed {occurrence} while {f.Event.Describe()} was written; the school's decision stands"));
                }
            }
        }

        lessons.Sort((a, b) => a.Date != b.Date ? a.Date.CompareTo(b.Date) : a.StartMinute != b.StartMinute ? a.StartMinute.CompareTo(b.StartMinute) : a.Occurrence.CompareTo(b.Occurrence));
        conflicts.Sort((a, b) => (a.Occurrence.CompareTo(b.Occurrence), string.CompareOrdinal(a.Winner.Hex, b.Winner.Hex), string.CompareOrdinal(a.Loser.Hex, b.Loser.Hex)) switch
        {
            (not 0 and var c, _, _) => c,
            (_, not 0 and var c, _) => c,
            (_, _, var c) => c,
        });
        return (lessons, conflicts);
    }

    private LessonView BuildLesson(OccurrenceId occurrence, (long SchoolSeq, SeriesPublished Version) series, List<ConflictRecord> conflicts)
    {
        var v = series.Version;
        var date = occurrence.Date;
        var start = v.StartMinute;
        var duration = v.DurationMinutes;
        var room = v.Room;
        var status = LessonStatus.Scheduled;
        CancellationReason? reason = null;
        var makeUp = false;
        string? note = null;
        EventHash? decidedBy = null;

        if (_statusFrontier.TryGetValue(occurrence, out var frontier) && frontier.Count > 0)
        {
            var candidates = new List<Fact>();
            foreach (var f in frontier)
            {
                // A teacher's move that did not see a later change of the series by the school is overruled by it.
                if (!f.BySchool && Intent(f) is LessonRescheduled && _school is { } school && f.Event.Clock[school] < series.SchoolSeq &&
                    SlotChangedSince(occurrence.Series, f.Event.Clock[school]))
                {
                    conflicts.Add(new ConflictRecord(occurrence, HashOfSeriesChange(occurrence.Series), f.Event.Hash, MergeRules.SchoolOutranksTeacher,
                        $"the school changed series {occurrence.Series} concurrently with {f.Event.Describe()}; the school's timetable stands"));
                    continue;
                }

                candidates.Add(f);
            }

            if (candidates.Count > 0)
            {
                var ranked = candidates
                    .OrderBy(f => f.BySchool ? 0 : 1)
                    .ThenBy(f => MergeRules.Rank(Intent(f)))
                    .ThenBy(f => f.Event.Replica.Value, StringComparer.Ordinal)
                    .ThenBy(f => f.Event.Seq)
                    .ToList();
                var winner = ranked[0];
                foreach (var loser in ranked.Skip(1))
                {
                    if (MergeRules.Collide(Intent(winner), Intent(loser)))
                    {
                        var rule = MergeRules.Explain(winner.BySchool, loser.BySchool, Intent(winner), Intent(loser));
                        conflicts.Add(new ConflictRecord(occurrence, winner.Event.Hash, loser.Event.Hash, rule,
                            $"{winner.Event.Describe()} and {loser.Event.Describe()} were written concurrently; {rule}"));
                    }
                }

                decidedBy = winner.Event.Hash;
                switch (Intent(winner))
                {
                    case LessonCancelled c:
                        status = LessonStatus.Cancelled;
                        reason = c.Reason;
                        makeUp = c.MakeUpOwed;
                        note = c.Note;
                        break;
                    case LessonRescheduled r:
                        status = LessonStatus.Moved;
                        date = r.Date;
                        start = r.StartMinute;
                        duration = r.DurationMinutes;
                        room = r.Room;
                        break;
                    case LessonHeld h:
                        status = LessonStatus.Held;
                        note = h.Note;
                        break;
                    default:
                        break;
                }
            }
        }

        var absent = ImmutableSortedDictionary.CreateBuilder<string, bool>(StringComparer.Ordinal);
        foreach (var student in v.Students)
        {
            if (!_absenceFrontier.TryGetValue((occurrence, student), out var marks))
            {
                continue;
            }

            // Add wins: a student is absent if any latest concurrent mark says so; excused only if all of those do.
            var absences = marks.Select(m => m.Event.Payload).OfType<StudentAbsent>().ToList();
            if (absences.Count == 0)
            {
                continue;
            }

            absent[student.Value] = absences.TrueForAll(a => a.Excused);
            if (status == LessonStatus.Cancelled && decidedBy is { } cancel && _facts[cancel] is var c)
            {
                foreach (var m in marks.Where(m => m.Event.Payload is StudentAbsent && !m.HasSeen(c) && !c.HasSeen(m)))
                {
                    conflicts.Add(new ConflictRecord(occurrence, cancel, m.Event.Hash, MergeRules.CancellationVoidsAbsence,
                        $"{m.Event.Describe()} records an absence on a lesson that {c.Event.Describe()} cancelled concurrently; the cancellation stands and the absence is kept on record"));
                }
            }
        }

        return new LessonView(occurrence, v.Subject, date, start, duration, room, status, reason, makeUp, note, v.Students, absent.ToImmutable(), decidedBy);
    }

    private bool SlotChangedSince(SeriesId series, long seenSchoolSeq)
    {
        var versions = _series[series];
        var seen = versions.LastOrDefault(v => v.SchoolSeq <= seenSchoolSeq).Version;
        var latest = versions[^1].Version;
        return seen is null || seen.Weekday != latest.Weekday || seen.StartMinute != latest.StartMinute || seen.Room != latest.Room || seen.DurationMinutes != latest.DurationMinutes;
    }

    private EventHash HashOfSeriesChange(SeriesId series) => _schoolEvents[_series[series][^1].SchoolSeq];

    /// <summary>The effective intent of a fact: a resolution stands for the event it keeps.</summary>
    private LessonEvent Intent(Fact fact) =>
        fact.Event.Payload is ConflictResolved r && _facts.TryGetValue(r.Keep, out var kept) ? kept.Event.Payload : fact.Event.Payload;

    /// <summary>
    /// SHA-256 over the canonical encoding of the projected state (lessons, conflicts, rejected intents) and of
    /// the sorted set of applied event hashes: equal on every replica that holds the same events.
    /// </summary>
    public string Digest()
    {
        var (lessons, conflicts) = BuildLessons();
        var events = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var hash in _eventHashes)
        {
            events.AppendData(Convert.FromHexString(hash));
        }

        var state = new ObjectBuilder()
            .Add("account", Account.Value)
            .Add("events", new ObjectBuilder().Add("count", _eventHashes.Count).Add("sha256", Convert.ToHexStringLower(events.GetHashAndReset())).Build())
            .Add("lessons", new CanonicalArray(lessons.Select(ToCanonical)))
            .Add("conflicts", new CanonicalArray(conflicts.Select(c => (CanonicalValue)new ObjectBuilder()
                .Add("occurrence", c.Occurrence.ToString()).Add("winner", c.Winner.Hex).Add("loser", c.Loser.Hex).Add("rule", c.Rule).Build())))
            .Add("rejected", new CanonicalArray(Rejected.Select(r => (CanonicalValue)new ObjectBuilder()
                .Add("event", r.Event.Hex).Add("reason", r.Reason).Build())))
            .Build();
        return Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Encode(state)));
    }

    internal static CanonicalValue ToCanonical(LessonView l)
    {
        var b = new ObjectBuilder()
            .Add("occurrence", l.Occurrence.ToString()).Add("subject", l.Subject).Add("date", l.Date)
            .Add("start", l.StartMinute).Add("duration", l.DurationMinutes).Add("room", l.Room.Value)
            .Add("status", l.Status.ToString().ToLowerInvariant()).Add("makeUpOwed", l.MakeUpOwed)
            .Add("students", l.Students.Select(s => s.Value))
            .Add("absent", new CanonicalObject(l.Absent.Select(a => new KeyValuePair<string, CanonicalValue>(a.Key, CanonicalBoolean.Of(a.Value)))))
            .AddIfPresent("note", l.Note)
            .AddIfPresent("decidedBy", l.DecidedBy?.Hex);
        if (l.CancellationReason is { } reason)
        {
            b.Add("reason", EventCodec.ReasonNames[reason]);
        }

        return b.Build();
    }
}
