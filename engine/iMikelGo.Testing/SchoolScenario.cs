using System.Collections.Immutable;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Signing;
using Microsoft.Extensions.Time.Testing;

namespace IMikelGo.Testing;

/// <summary>How <see cref="SchoolScenario.Create(ScenarioOptions?)"/> sets up a school.</summary>
public sealed record ScenarioOptions
{
    /// <summary>Number of the teacher's devices (D1…Dn), 1 to 16.</summary>
    public int Devices { get; init; } = 2;

    /// <summary>Seed of the deterministic keys: the same seed gives the same replica ids and event hashes.</summary>
    public int Seed { get; init; }

    /// <summary>Number of weekly lessons in the term of the published series.</summary>
    public int Weeks { get; init; } = 12;

    /// <summary>Number of students taught in the series (s1…sn).</summary>
    public int Students { get; init; } = 2;

    /// <summary>The wall clock every replica starts at.</summary>
    public DateTimeOffset Now { get; init; } = TestTime.SchoolYearStart;
}

/// <summary>A batch of facts to record by one replica (see <see cref="ScenarioExtensions.Records"/>).</summary>
/// <param name="Author">The replica that records.</param>
/// <param name="Payloads">The facts, recorded as one batch.</param>
public sealed record Recording(Replica Author, IReadOnlyList<LessonEvent> Payloads);

/// <summary>Fluent helpers for scenarios.</summary>
public static class ScenarioExtensions
{
    /// <summary>The facts <paramref name="author"/> records, for <see cref="SchoolScenario.Given"/> and <see cref="SchoolScenario.When"/>.</summary>
    public static Recording Records(this Replica author, params LessonEvent[] payloads) => new(author, payloads);
}

/// <summary>A scenario step or expectation did not hold.</summary>
public sealed class ScenarioAssertionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ScenarioAssertionException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ScenarioAssertionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public ScenarioAssertionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A school with one teacher account: the school replica, the teacher's devices D1…Dn enrolled, a published
/// weekly piano series (Thursdays 16:00, 45 min, room r1) with students, all replicas synced. Every replica has its
/// own <see cref="FakeTimeProvider"/> and deterministic key, so a scenario is reproducible to the byte.
/// </summary>
public sealed class SchoolScenario : IDisposable
{
    private readonly List<ReplicaKey> _keys = [];
    private readonly Dictionary<ReplicaId, FakeTimeProvider> _clocks = [];
    private readonly List<SignedEvent> _recorded = [];

    private SchoolScenario(ScenarioOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Devices, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Devices, 16);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Weeks, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Students, 1);
        Options = options;
        Account = new AccountId("k-anna");
        School = NewReplica("school");
        var devices = new List<Replica>();
        for (var i = 1; i <= options.Devices; i++)
        {
            devices.Add(NewReplica($"d{i}"));
        }

        Devices = devices;
        Students = [.. Enumerable.Range(1, options.Students).Select(i => new StudentId($"s{i}"))];
        var termStart = DateOnly.FromDateTime(options.Now.UtcDateTime);
        Published = new SeriesPublished(Series, "Piano", 4, 16 * 60, 45, new RoomId("r1"), Students, termStart, termStart.AddDays((7 * options.Weeks) - 1));
        var setup = new List<LessonEvent> { new AccountOpened("musikschule-x", "Anna", _keys[0].PublicKey), Published };
        setup.AddRange(Students.Select(s => new StudentEnrolled(s, s.Value.ToUpperInvariant())));
        setup.AddRange(devices.Select((d, i) => new DeviceEnrolled(d.Id, $"device {i + 1}", _keys[i + 1].PublicKey)));
        Record(School, setup);
        SyncAll();
    }

    /// <summary>Creates a synced school with <paramref name="devices"/> devices; keys derive from <paramref name="seed"/>.</summary>
    public static SchoolScenario Create(int devices = 2, int seed = 0) => Create(new ScenarioOptions { Devices = devices, Seed = seed });

    /// <summary>Creates a synced school as described by <paramref name="options"/>.</summary>
    public static SchoolScenario Create(ScenarioOptions? options) => new(options ?? new ScenarioOptions());

    /// <summary>The options this scenario was built with.</summary>
    public ScenarioOptions Options { get; }

    /// <summary>The teacher account (license key).</summary>
    public AccountId Account { get; }

    /// <summary>The school connector's replica.</summary>
    public Replica School { get; }

    /// <summary>The teacher's devices, D1 first.</summary>
    public IReadOnlyList<Replica> Devices { get; }

    /// <summary>The school, then every device.</summary>
    public IReadOnlyList<Replica> Replicas => [School, .. Devices];

    /// <summary>The published series.</summary>
    public SeriesId Series { get; } = new("piano-1");

    /// <summary>The series as first published.</summary>
    public SeriesPublished Published { get; }

    /// <summary>The students of the series.</summary>
    public ImmutableArray<StudentId> Students { get; }

    /// <summary>Every event recorded through this scenario so far, in recording order.</summary>
    public IReadOnlyList<SignedEvent> Recorded => _recorded;

    /// <summary>The events recorded by the last <see cref="When"/>, in order.</summary>
    public IReadOnlyList<SignedEvent> LastWhen { get; private set; } = [];

    /// <summary>Device D<paramref name="number"/> (1-based).</summary>
    public Replica Device(int number) => Devices[number - 1];

    /// <summary>The fake clock of <paramref name="replica"/>; advance or set it to any time.</summary>
    public FakeTimeProvider ClockOf(Replica replica)
    {
        ArgumentNullException.ThrowIfNull(replica);
        return _clocks[replica.Id];
    }

    /// <summary>The occurrence of the series in week <paramref name="week"/> of the term (0-based).</summary>
    public OccurrenceId Lesson(int week) => new(Series, Published.Dates(_ => false).ElementAt(week));

    /// <summary>A replica of this account with a deterministic key named <paramref name="name"/>; not enrolled (it can observe, not write).</summary>
    public Replica NewReplica(string name)
    {
        var key = TestKeys.For(name, Options.Seed);
        _keys.Add(key);
        var clock = TestTime.At(Options.Now);
        _clocks[key.Replica] = clock;
        return new Replica(Account, key, null, clock);
    }

    /// <summary>Records <paramref name="payloads"/> as one batch by <paramref name="author"/>; throws when it is refused.</summary>
    public SignedEvent Record(Replica author, IReadOnlyList<LessonEvent> payloads)
    {
        ArgumentNullException.ThrowIfNull(author);
        var before = author.Position.Seq;
        var result = author.RecordBatch(payloads);
        if (!result.Succeeded)
        {
            throw new ScenarioAssertionException($"{author.Id} could not record: {result.Error}");
        }

        for (var seq = before + 1; seq <= author.Position.Seq; seq++)
        {
            _recorded.Add(author.Ledger.Find(Account, author.Id, seq)!);
        }

        return result.Event!;
    }

    /// <summary>Records each batch and then syncs every replica: the starting state of a test.</summary>
    public SchoolScenario Given(params Recording[] recordings)
    {
        ArgumentNullException.ThrowIfNull(recordings);
        foreach (var r in recordings)
        {
            Record(r.Author, r.Payloads);
            SyncAll();
        }

        return this;
    }

    /// <summary>Records each batch without syncing in between: the batches of different replicas are concurrent.</summary>
    public SchoolScenario When(params Recording[] recordings)
    {
        ArgumentNullException.ThrowIfNull(recordings);
        var start = _recorded.Count;
        foreach (var r in recordings)
        {
            Record(r.Author, r.Payloads);
        }

        LastWhen = _recorded[start..];
        return this;
    }

    /// <summary>
    /// Syncs every replica (in a shuffled order with duplicates when <paramref name="deliverySeed"/> is given),
    /// checks that all reached the same digest, and returns expectations on the common calendar.
    /// </summary>
    public CalendarExpectations Then(int? deliverySeed = null)
    {
        if (deliverySeed is { } seed)
        {
            var network = new Network(seed);
            foreach (var from in Replicas)
            {
                network.Broadcast(from, Replicas);
            }

            network.Flush();
        }

        SyncAll();
        return new CalendarExpectations(Replicas);
    }

    /// <summary>Delivers everything <paramref name="from"/> holds that <paramref name="to"/> lacks.</summary>
    public void Sync(Replica from, Replica to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        to.Receive(from.Ledger.Export(Account, to.Ledger.Heads(Account)));
    }

    /// <summary>Syncs every replica with every other until all hold the same events.</summary>
    public void SyncAll()
    {
        foreach (var r in Replicas)
        {
            Sync(r, School);
        }

        foreach (var r in Devices)
        {
            Sync(School, r);
        }
    }

    /// <summary>Every event any replica holds, each once.</summary>
    public IReadOnlyList<SignedEvent> AllEvents()
    {
        var all = new Dictionary<EventHash, SignedEvent>();
        foreach (var r in Replicas)
        {
            foreach (var e in r.Ledger.Export(Account))
            {
                all.TryAdd(e.Event.Hash, e);
            }
        }

        return [.. all.Values.OrderBy(e => e.Event.Replica).ThenBy(e => e.Event.Seq)];
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var key in _keys)
        {
            key.Dispose();
        }
    }
}

/// <summary>Assertions on the calendar that every replica of a scenario agrees on.</summary>
public sealed class CalendarExpectations
{
    internal CalendarExpectations(IReadOnlyList<Replica> replicas)
    {
        Replicas = replicas;
        Calendar = replicas[0].Calendar;
        Digest = Calendar.Digest();
        foreach (var r in replicas.Skip(1))
        {
            if (r.Calendar.Digest() != Digest)
            {
                throw new ScenarioAssertionException($"replica {r.Id} did not converge: digest {r.Calendar.Digest()} != {Digest} of {replicas[0].Id}");
            }
        }
    }

    /// <summary>The replicas compared.</summary>
    public IReadOnlyList<Replica> Replicas { get; }

    /// <summary>The common calendar (the first replica's).</summary>
    public Calendar Calendar { get; }

    /// <summary>The common digest.</summary>
    public string Digest { get; }

    /// <summary>Every conflict.</summary>
    public IReadOnlyList<ConflictRecord> Conflicts => Calendar.Conflicts();

    /// <summary>The lesson <paramref name="occurrence"/>; throws when it is not in the calendar.</summary>
    public LessonView Lesson(OccurrenceId occurrence) =>
        Calendar.Lessons().FirstOrDefault(l => l.Occurrence == occurrence) ?? throw new ScenarioAssertionException($"{occurrence} is not in the calendar");

    /// <summary>Expects <paramref name="occurrence"/> to have <paramref name="status"/>.</summary>
    public CalendarExpectations LessonIs(OccurrenceId occurrence, LessonStatus status)
    {
        var lesson = Lesson(occurrence);
        return lesson.Status == status ? this : throw new ScenarioAssertionException($"{occurrence} is {lesson.Status}, expected {status}");
    }

    /// <summary>Expects <paramref name="occurrence"/> not to be in the calendar (withdrawn, holiday, changed series).</summary>
    public CalendarExpectations LessonMissing(OccurrenceId occurrence) =>
        Calendar.Lessons().Any(l => l.Occurrence == occurrence) ? throw new ScenarioAssertionException($"{occurrence} is still in the calendar") : this;

    /// <summary>Expects <paramref name="student"/> to be absent from <paramref name="occurrence"/> (and excused or not, when given).</summary>
    public CalendarExpectations Absent(OccurrenceId occurrence, StudentId student, bool? excused = null)
    {
        var lesson = Lesson(occurrence);
        return lesson.Absent.TryGetValue(student.Value, out var e) && (excused is null || excused == e)
            ? this
            : throw new ScenarioAssertionException($"{student} is not absent{(excused is null ? string.Empty : excused.Value ? " (excused)" : " (unexcused)")} from {occurrence}");
    }

    /// <summary>Expects <paramref name="student"/> not to be absent from <paramref name="occurrence"/>.</summary>
    public CalendarExpectations NotAbsent(OccurrenceId occurrence, StudentId student) =>
        Lesson(occurrence).Absent.ContainsKey(student.Value) ? throw new ScenarioAssertionException($"{student} is absent from {occurrence}") : this;

    /// <summary>Expects exactly one conflict on <paramref name="occurrence"/> decided by <paramref name="rule"/> (and the given winner and loser) and returns it.</summary>
    public ConflictRecord Conflict(OccurrenceId occurrence, string rule, EventHash? winner = null, EventHash? loser = null)
    {
        var matches = Conflicts.Where(c => c.Occurrence == occurrence && c.Rule == rule && (winner is null || c.Winner == winner) && (loser is null || c.Loser == loser)).ToList();
        return matches.Count == 1
            ? matches[0]
            : throw new ScenarioAssertionException($"expected one {rule} conflict on {occurrence}, found {matches.Count}; conflicts: {string.Join("; ", Conflicts.Select(c => $"{c.Occurrence} {c.Rule}"))}");
    }

    /// <summary>Expects a conflict as in <see cref="Conflict"/>.</summary>
    public CalendarExpectations HasConflict(OccurrenceId occurrence, string rule, EventHash? winner = null, EventHash? loser = null)
    {
        _ = Conflict(occurrence, rule, winner, loser);
        return this;
    }

    /// <summary>Expects no conflict at all (or none on <paramref name="occurrence"/> when given).</summary>
    public CalendarExpectations NoConflicts(OccurrenceId? occurrence = null)
    {
        var found = Conflicts.Where(c => occurrence is null || c.Occurrence == occurrence).ToList();
        return found.Count == 0 ? this : throw new ScenarioAssertionException($"unexpected conflicts: {string.Join("; ", found.Select(c => $"{c.Occurrence} {c.Rule}"))}");
    }
}
