using System.Buffers.Binary;
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
/// result depends only on the set of events, never on arrival order: every intent is checked against its
/// author's causal past only, and every collision is decided from the causal frontier of each occurrence by
/// fixed rules (docs/merge-rules.md), never by wall clock or payload hash.
/// </summary>
public sealed class Calendar
{
    private readonly Dictionary<SeriesId, List<SeriesVersion>> _series = [];
    private readonly List<(long SchoolSeq, HolidaysDeclared Holidays)> _holidays = [];
    private readonly Dictionary<SeriesId, Dictionary<OccurrenceId, List<Fact>>> _statusFrontier = [];
    private readonly Dictionary<SeriesId, Dictionary<(OccurrenceId Occurrence, StudentId Student), List<Fact>>> _absenceFrontier = [];
    private readonly Dictionary<EventHash, Fact> _facts = [];
    private readonly List<RejectedIntent> _rejected = [];
    private readonly List<Fact> _schoolChain = [];
    private ReplicaId? _school;
    private (List<LessonView> Lessons, List<ConflictRecord> Conflicts)? _built;

    internal Calendar(AccountId account) => Account = account;

    /// <summary>The account.</summary>
    public AccountId Account { get; }

    /// <summary>Number of events applied.</summary>
    public int EventCount => _facts.Count;

    /// <summary>Authentic events whose intent could not apply, with the reason.</summary>
    public IReadOnlyList<RejectedIntent> Rejected => [.. _rejected.OrderBy(r => r.Event.Hex, StringComparer.Ordinal)];

    /// <summary>One version of a series in the school's chain; <c>Version</c> is null when the series was withdrawn.</summary>
    private readonly record struct SeriesVersion(long SchoolSeq, SeriesPublished? Version);

    private sealed record Fact(Event Event, bool BySchool)
    {
        public bool HasSeen(Fact other) => Event.Clock.HasSeen(other.Event.Replica, other.Event.Seq);

        public bool ConcurrentWith(Fact other) => !HasSeen(other) && !other.HasSeen(this);
    }

    internal void Apply(Event e, bool isSchool)
    {
        var fact = new Fact(e, isSchool);
        if (!_facts.TryAdd(e.Hash, fact))
        {
            return;
        }

        _built = null;
        if (isSchool)
        {
            _schoolChain.Add(fact);
        }

        switch (e.Payload)
        {
            case AccountOpened:
                _school = e.Replica;
                break;
            case SeriesPublished published:
                Versions(published.Series).Add(new SeriesVersion(e.Seq, published));
                break;
            case SeriesWithdrawn withdrawn:
                Versions(withdrawn.Series).Add(new SeriesVersion(e.Seq, null));
                break;
            case HolidaysDeclared holidays:
                _holidays.Add((e.Seq, holidays));
                break;
            case StudentAbsent or AbsenceWithdrawn:
                if (Check(fact) is { } absenceFault)
                {
                    _rejected.Add(new RejectedIntent(e.Hash, absenceFault));
                    break;
                }

                var occurrence = LessonOf(e.Payload);
                Advance(Index(_absenceFrontier, occurrence.Series), (occurrence, StudentOf(e.Payload)), fact);
                break;
            case LessonCancelled or LessonRescheduled or LessonHeld or ConflictResolved:
                if (Check(fact) is { } statusFault)
                {
                    _rejected.Add(new RejectedIntent(e.Hash, statusFault));
                    break;
                }

                var lesson = LessonOf(e.Payload);
                Advance(Index(_statusFrontier, lesson.Series), lesson, fact);
                break;
            default:
                break;
        }
    }

    private List<SeriesVersion> Versions(SeriesId series)
    {
        if (!_series.TryGetValue(series, out var versions))
        {
            _series[series] = versions = [];
        }

        return versions;
    }

    private static Dictionary<TKey, List<Fact>> Index<TKey>(Dictionary<SeriesId, Dictionary<TKey, List<Fact>>> index, SeriesId series)
        where TKey : notnull
    {
        if (!index.TryGetValue(series, out var bySeries))
        {
            index[series] = bySeries = [];
        }

        return bySeries;
    }

    /// <summary>Why <paramref name="e"/>'s intent could not apply to this calendar, or null when it can.</summary>
    internal string? Check(Event e, bool isSchool) =>
        e.Payload is StudentAbsent or AbsenceWithdrawn or LessonCancelled or LessonRescheduled or LessonHeld or ConflictResolved
            ? Check(new Fact(e, isSchool))
            : null;

    /// <summary>The highest school seq the author of <paramref name="fact"/> had seen (for the school: its own past).</summary>
    private long SeenSchoolSeq(Fact fact) =>
        fact.BySchool ? fact.Event.Seq - 1 : _school is { } school ? fact.Event.Clock[school] : 0;

    /// <summary>
    /// Checks an intent against its author's causal past only (never against events it could not have seen), so
    /// the verdict is the same on every replica whatever the arrival order.
    /// </summary>
    private string? Check(Fact fact)
    {
        var payload = fact.Event.Payload;
        var occurrence = LessonOf(payload);
        var reason = CheckOccurrence(SeenSchoolSeq(fact), occurrence, payload is StudentAbsent or AbsenceWithdrawn ? StudentOf(payload) : null);
        if (reason is null && payload is ConflictResolved resolved &&
            (!_facts.TryGetValue(resolved.Keep, out var kept) || !fact.HasSeen(kept) ||
             kept.Event.Payload is not (LessonCancelled or LessonRescheduled or LessonHeld) || OccurrenceOf(kept.Event.Payload) != occurrence))
        {
            reason = $"conflict.resolved keeps {resolved.Keep.Short}…, which is not a cancel, move or held on {occurrence} that its author had seen";
        }

        return reason;
    }

    private static StudentId StudentOf(LessonEvent payload) => payload switch
    {
        StudentAbsent a => a.Student,
        AbsenceWithdrawn w => w.Student,
        _ => throw new ArgumentOutOfRangeException(nameof(payload)),
    };

    /// <summary>
    /// The lesson occurrence <paramref name="payload"/> is about (an absence or its withdrawal, a cancellation, move,
    /// lesson held or conflict resolution), or null for any other event.
    /// </summary>
    public static OccurrenceId? OccurrenceOf(LessonEvent payload) => payload switch
    {
        LessonCancelled c => c.Occurrence,
        LessonRescheduled r => r.Occurrence,
        LessonHeld h => h.Occurrence,
        ConflictResolved x => x.Occurrence,
        StudentAbsent a => a.Occurrence,
        AbsenceWithdrawn w => w.Occurrence,
        _ => null,
    };

    private static OccurrenceId LessonOf(LessonEvent payload) => OccurrenceOf(payload) ?? throw new ArgumentOutOfRangeException(nameof(payload));

    /// <summary>Keeps the causally maximal facts: events arrive in causal order, so a new fact is never seen by an old one.</summary>
    private static void Advance<TKey>(Dictionary<TKey, List<Fact>> frontiers, TKey key, Fact fact)
        where TKey : notnull
    {
        if (!frontiers.TryGetValue(key, out var frontier))
        {
            frontiers[key] = frontier = [];
        }

        var kept = 0;
        for (var i = 0; i < frontier.Count; i++)
        {
            if (!fact.HasSeen(frontier[i]))
            {
                frontier[kept++] = frontier[i];
            }
        }

        frontier.RemoveRange(kept, frontier.Count - kept);
        frontier.Add(fact);
    }

    /// <summary>The version of <paramref name="series"/> in force after school seq <paramref name="schoolSeq"/>.</summary>
    private SeriesVersion? VersionAt(SeriesId series, long schoolSeq)
    {
        if (!_series.TryGetValue(series, out var versions))
        {
            return null;
        }

        for (var i = versions.Count - 1; i >= 0; i--)
        {
            if (versions[i].SchoolSeq <= schoolSeq)
            {
                return versions[i];
            }
        }

        return null;
    }

    /// <summary>Whether the occurrence (and student) existed in the schedule as of school seq <paramref name="seen"/>.</summary>
    private string? CheckOccurrence(long seen, OccurrenceId occurrence, StudentId? student)
    {
        if (VersionAt(occurrence.Series, seen) is not { } at)
        {
            return $"series {occurrence.Series} is unknown";
        }

        if (at.Version is not { } version)
        {
            return $"series {occurrence.Series} was withdrawn before the author wrote this";
        }

        if (!IsDateOf(version, occurrence.Date) || IsHoliday(occurrence.Date, seen))
        {
            return $"{occurrence} is not a lesson date of series {occurrence.Series} in the schedule its author had seen";
        }

        return student is { } s && !version.Students.Contains(s)
            ? $"student {s} is not taught in series {occurrence.Series}"
            : null;
    }

    private static bool IsDateOf(SeriesPublished version, DateOnly date) =>
        date >= version.TermStart && date <= version.TermEnd && (int)date.DayOfWeek == version.Weekday % 7;

    private bool IsHoliday(DateOnly date, long schoolSeq = long.MaxValue)
    {
        foreach (var (seq, holidays) in _holidays)
        {
            if (seq <= schoolSeq && date >= holidays.From && date <= holidays.To)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The lessons of every published series, by date and time.</summary>
    public IReadOnlyList<LessonView> Lessons() => [.. Build().Lessons];

    /// <summary>Every conflict, in a stable order (occurrence, rule, winner, loser).</summary>
    public IReadOnlyList<ConflictRecord> Conflicts() => [.. Build().Conflicts];

    private (List<LessonView> Lessons, List<ConflictRecord> Conflicts) Build() => _built ??= BuildLessons();

    private (List<LessonView> Lessons, List<ConflictRecord> Conflicts) BuildLessons()
    {
        var lessons = new List<LessonView>();
        var conflicts = new List<ConflictRecord>();
        foreach (var (seriesId, versions) in _series.OrderBy(s => s.Key.Value, StringComparer.Ordinal))
        {
            var latest = versions[^1];
            var dates = latest.Version is { } current ? current.Dates(d => IsHoliday(d)).ToHashSet() : [];
            foreach (var date in dates.Order())
            {
                lessons.Add(BuildLesson(new OccurrenceId(seriesId, date), latest, conflicts));
            }

            // Teacher edits on lessons that the school removed concurrently: the school decision stands.
            if (_statusFrontier.TryGetValue(seriesId, out var statuses))
            {
                foreach (var (occurrence, frontier) in statuses.Where(f => !dates.Contains(f.Key.Date)))
                {
                    ReportRemoved(occurrence, frontier, conflicts);
                }
            }

            if (_absenceFrontier.TryGetValue(seriesId, out var absences))
            {
                foreach (var (key, marks) in absences.Where(f => !dates.Contains(f.Key.Occurrence.Date)))
                {
                    ReportRemoved(key.Occurrence, marks.Where(m => m.Event.Payload is StudentAbsent), conflicts);
                }
            }
        }

        lessons.Sort((a, b) => a.Date != b.Date ? a.Date.CompareTo(b.Date) : a.StartMinute != b.StartMinute ? a.StartMinute.CompareTo(b.StartMinute) : a.Occurrence.CompareTo(b.Occurrence));
        conflicts.Sort(CompareConflicts);
        var distinct = new List<ConflictRecord>(conflicts.Count);
        foreach (var c in conflicts)
        {
            if (distinct.Count == 0 || CompareConflicts(distinct[^1], c) != 0)
            {
                distinct.Add(c);
            }
        }

        return (lessons, distinct);
    }

    private static int CompareConflicts(ConflictRecord a, ConflictRecord b)
    {
        var c = a.Occurrence.CompareTo(b.Occurrence);
        c = c != 0 ? c : string.CompareOrdinal(a.Rule, b.Rule);
        c = c != 0 ? c : string.CompareOrdinal(a.Winner.Hex, b.Winner.Hex);
        return c != 0 ? c : string.CompareOrdinal(a.Loser.Hex, b.Loser.Hex);
    }

    /// <summary>
    /// For teacher facts on an occurrence that no longer exists: a conflict when the school event that removed
    /// it (withdrawal, changed series, holiday) had not seen the teacher's fact. A removal made with knowledge of
    /// the edit is a later decision, not a collision.
    /// </summary>
    private void ReportRemoved(OccurrenceId occurrence, IEnumerable<Fact> facts, List<ConflictRecord> conflicts)
    {
        foreach (var f in facts.Where(f => !f.BySchool))
        {
            if (Removal(occurrence, SeenSchoolSeq(f)) is { } removal && !removal.HasSeen(f))
            {
                conflicts.Add(new ConflictRecord(occurrence, removal.Event.Hash, f.Event.Hash, MergeRules.SchoolRemovedLesson,
                    $"the school removed {occurrence} ({removal.Event.Describe()}) while {f.Event.Describe()} was written; the school's decision stands"));
            }
        }
    }

    /// <summary>The first school event after <paramref name="seen"/> after which <paramref name="occurrence"/> is no longer a lesson.</summary>
    private Fact? Removal(OccurrenceId occurrence, long seen)
    {
        for (var i = (int)Math.Max(0, seen); i < _schoolChain.Count; i++)
        {
            var school = _schoolChain[i];
            var removes = school.Event.Payload switch
            {
                SeriesWithdrawn w => w.Series == occurrence.Series,
                SeriesPublished p => p.Series == occurrence.Series && !IsDateOf(p, occurrence.Date),
                HolidaysDeclared h => occurrence.Date >= h.From && occurrence.Date <= h.To,
                _ => false,
            };
            if (removes)
            {
                return school;
            }
        }

        return null;
    }

    /// <summary>
    /// The school's series change that overrules a teacher's move <paramref name="f"/>: a version after the one
    /// the move's author had seen, written without knowledge of the move, that changed the lesson's slot.
    /// </summary>
    private Fact? OverrulingSeriesChange(SeriesId series, Fact f)
    {
        var seen = SeenSchoolSeq(f);
        var versions = _series[series];
        var previous = VersionAt(series, seen)?.Version;
        foreach (var v in versions)
        {
            if (v.SchoolSeq <= seen || v.Version is not { } version)
            {
                continue;
            }

            var change = _schoolChain[(int)v.SchoolSeq - 1];
            if (change.HasSeen(f))
            {
                break;
            }

            if (previous is null || previous.Weekday != version.Weekday || previous.StartMinute != version.StartMinute ||
                previous.Room != version.Room || previous.DurationMinutes != version.DurationMinutes)
            {
                return change;
            }

            previous = version;
        }

        return null;
    }

    private LessonView BuildLesson(OccurrenceId occurrence, SeriesVersion series, List<ConflictRecord> conflicts)
    {
        var v = series.Version!;
        var date = occurrence.Date;
        var start = v.StartMinute;
        var duration = v.DurationMinutes;
        var room = v.Room;
        var status = LessonStatus.Scheduled;
        CancellationReason? reason = null;
        var makeUp = false;
        string? note = null;
        Fact? decidedBy = null;

        if (_statusFrontier.TryGetValue(occurrence.Series, out var statuses) && statuses.TryGetValue(occurrence, out var frontier) && frontier.Count > 0)
        {
            var candidates = new List<Fact>(frontier.Count);
            foreach (var f in frontier)
            {
                // A teacher's move that did not see a concurrent change of the series' slot by the school is overruled by it.
                if (!f.BySchool && Intent(f) is LessonRescheduled && OverrulingSeriesChange(occurrence.Series, f) is { } change)
                {
                    conflicts.Add(new ConflictRecord(occurrence, change.Event.Hash, f.Event.Hash, MergeRules.SchoolOutranksTeacher,
                        $"the school changed series {occurrence.Series} ({change.Event.Describe()}) concurrently with {f.Event.Describe()}; the school's timetable stands"));
                    continue;
                }

                candidates.Add(f);
            }

            if (candidates.Count > 0)
            {
                candidates.Sort(CompareForMerge);
                var winner = candidates[0];
                for (var i = 1; i < candidates.Count; i++)
                {
                    var loser = candidates[i];
                    if (MergeRules.Collide(Intent(winner), Intent(loser)))
                    {
                        var rule = MergeRules.Explain(winner.BySchool, loser.BySchool, Intent(winner), Intent(loser));
                        conflicts.Add(new ConflictRecord(occurrence, winner.Event.Hash, loser.Event.Hash, rule,
                            $"{winner.Event.Describe()} and {loser.Event.Describe()} were written concurrently; {rule}"));
                    }
                }

                decidedBy = winner;
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
        if (_absenceFrontier.TryGetValue(occurrence.Series, out var absences))
        {
            foreach (var student in v.Students)
            {
                if (!absences.TryGetValue((occurrence, student), out var marks))
                {
                    continue;
                }

                // Add wins: a student is absent if any latest concurrent mark says so; excused only if all of those do.
                var excused = true;
                var any = false;
                foreach (var m in marks)
                {
                    if (m.Event.Payload is StudentAbsent a)
                    {
                        any = true;
                        excused &= a.Excused;
                        if (status == LessonStatus.Cancelled && decidedBy is { } cancel && m.ConcurrentWith(cancel))
                        {
                            conflicts.Add(new ConflictRecord(occurrence, cancel.Event.Hash, m.Event.Hash, MergeRules.CancellationVoidsAbsence,
                                $"{m.Event.Describe()} records an absence on a lesson that {cancel.Event.Describe()} cancelled concurrently; the cancellation stands and the absence is kept on record"));
                        }
                    }
                }

                if (any)
                {
                    absent[student.Value] = excused;
                }
            }
        }

        return new LessonView(occurrence, v.Subject, date, start, duration, room, status, reason, makeUp, note, v.Students, absent.ToImmutable(), decidedBy?.Event.Hash);
    }

    /// <summary>
    /// The deterministic total order among concurrent facts: school cancels, then teacher cancels, then the school's other
    /// facts, then the teachers'; within a tier cancel &gt; move &gt; held, lower replica id, then seq.
    /// </summary>
    private int CompareForMerge(Fact a, Fact b)
    {
        var c = Tier(a).CompareTo(Tier(b));
        c = c != 0 ? c : MergeRules.Rank(Intent(a)).CompareTo(MergeRules.Rank(Intent(b)));
        c = c != 0 ? c : a.Event.Replica.CompareTo(b.Event.Replica);
        return c != 0 ? c : a.Event.Seq.CompareTo(b.Event.Seq);
    }

    // School first, except that a teacher's cancel beats the school's reschedule of that lesson (a timetable change is
    // sent as one reschedule per lesson): the lesson still exists, so the teacher's cancellation of it applies — her
    // payroll and the make-up owed must not vanish because the school moved the weekly slot concurrently. A key, not a
    // pairwise exception, so the order stays total and transitive.
    private int Tier(Fact fact) => (fact.BySchool, Intent(fact)) switch
    {
        (true, LessonCancelled) => 0,
        (false, LessonCancelled) => 1,
        (true, _) => 2,
        _ => 3,
    };

    /// <summary>The effective intent of a fact: a resolution stands for the event it keeps.</summary>
    private LessonEvent Intent(Fact fact) =>
        fact.Event.Payload is ConflictResolved r && _facts.TryGetValue(r.Keep, out var kept) ? kept.Event.Payload : fact.Event.Payload;

    /// <summary>
    /// SHA-256 over the canonical encoding of the projected state (lessons, conflicts, rejected intents) and of
    /// the sorted set of applied event hashes: equal on every replica that holds the same events.
    /// </summary>
    public string Digest()
    {
        var (lessons, conflicts) = Build();
        var state = new ObjectBuilder()
            .Add("account", Account.Value)
            .Add("events", new ObjectBuilder().Add("count", _facts.Count).Add("sha256", Convert.ToHexStringLower(SortedHashesDigest())).Build())
            .Add("lessons", new CanonicalArray(lessons.Select(ToCanonical)))
            .Add("conflicts", new CanonicalArray(conflicts.Select(c => (CanonicalValue)new ObjectBuilder()
                .Add("occurrence", c.Occurrence.ToString()).Add("winner", c.Winner.Hex).Add("loser", c.Loser.Hex).Add("rule", c.Rule).Build())))
            .Add("rejected", new CanonicalArray(Rejected.Select(r => (CanonicalValue)new ObjectBuilder()
                .Add("event", r.Event.Hex).Add("reason", r.Reason).Build())))
            .Build();
        return Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Encode(state)));
    }

    /// <summary>
    /// SHA-256 over the applied event hashes (32 bytes each) in ascending order. Byte order equals the ordinal
    /// order of their lower-case hex, so this is the digest of the hashes sorted as strings.
    /// </summary>
    private byte[] SortedHashesDigest()
    {
        var keys = new (UInt128 High, UInt128 Low)[_facts.Count];
        Span<byte> bytes = stackalloc byte[32];
        var n = 0;
        foreach (var hash in _facts.Keys)
        {
            Convert.FromHexString(hash.Hex, bytes, out _, out _);
            keys[n++] = (BinaryPrimitives.ReadUInt128BigEndian(bytes), BinaryPrimitives.ReadUInt128BigEndian(bytes[16..]));
        }

        Array.Sort(keys);
        var all = new byte[keys.Length * 32];
        for (var i = 0; i < keys.Length; i++)
        {
            BinaryPrimitives.WriteUInt128BigEndian(all.AsSpan(i * 32), keys[i].High);
            BinaryPrimitives.WriteUInt128BigEndian(all.AsSpan((i * 32) + 16), keys[i].Low);
        }

        return SHA256.HashData(all);
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
