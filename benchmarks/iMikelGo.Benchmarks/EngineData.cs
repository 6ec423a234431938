using System.Security.Cryptography;
using System.Text;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using Microsoft.Extensions.Time.Testing;

namespace IMikelGo.Benchmarks;

/// <summary>
/// A deterministic 100,000-event account: one school replica and three devices writing in batches of
/// 100–500 events (one checkpoint per batch) and syncing with each other between rounds, so the chains carry
/// real cross-replica dependencies and concurrent edits. Keys are derived from fixed labels; payloads come
/// from a seeded generator. Signatures are randomized ECDSA, so the bytes differ run to run, the shape does not.
/// </summary>
internal sealed class EngineData
{
    public const int EventCount = 100_000;

    private static readonly Lazy<EngineData> LazyShared = new(() => Build());

    /// <summary>Built once per process (benchmarks run in process).</summary>
    public static EngineData Shared => LazyShared.Value;

    private readonly (SeriesPublished Series, OccurrenceId Occurrence)[] _occurrences;

    private EngineData(AccountId account, IReadOnlyList<SignedEvent> events, ReplicaKey[] keys, string digest, (SeriesPublished Series, OccurrenceId Occurrence)[] occurrences)
    {
        _occurrences = occurrences;
        Account = account;
        Events = events;
        Keys = keys;
        Digest = digest;
        Lines = [.. events.Select(e => e.ToLine())];
        LineBytes = [.. events.Select(e => e.ToLineBytes())];
        Bodies = [.. events.Select(e => e.Event.Body.ToArray())];
        Checkpoints = events.Count(e => e.IsCheckpoint);
    }

    public AccountId Account { get; }

    /// <summary>Every event, per chain in sequence order (as an export or a sync delivers them).</summary>
    public IReadOnlyList<SignedEvent> Events { get; }

    /// <summary>The same events as log lines (JSON Lines).</summary>
    public string[] Lines { get; }

    /// <summary>The same events as UTF-8 log lines.</summary>
    public byte[][] LineBytes { get; }

    /// <summary>The canonical body of each event (what is hashed).</summary>
    public byte[][] Bodies { get; }

    /// <summary>School, then the three devices.</summary>
    public ReplicaKey[] Keys { get; }

    /// <summary>The calendar digest of the generating school replica.</summary>
    public string Digest { get; }

    public int Checkpoints { get; }

    public long TotalBodyBytes => Bodies.Sum(b => (long)b.Length);

    public static ReplicaKey Key(string label) => ReplicaKey.FromPrivateScalar(SHA256.HashData(Encoding.UTF8.GetBytes("imikelgo-bench/" + label)));

    /// <summary>
    /// Builds the account's log of <paramref name="total"/> events; <paramref name="extraSetup"/> is appended to the
    /// school's first batch (e.g. its encryption key and a further device's enrollment).
    /// </summary>
    public static EngineData Build(int total = EventCount, int seed = 20260901, IReadOnlyList<LessonEvent>? extraSetup = null)
    {
        var rng = new Random(seed);
        var account = new AccountId("bench-anna");
        var keys = new[] { Key("school"), Key("device-1"), Key("device-2"), Key("device-3") };
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 9, 1, 8, 0, 0, TimeSpan.Zero)) { AutoAdvanceAmount = TimeSpan.FromMilliseconds(1) };
        var replicas = keys.Select(k => new Replica(account, k, time: time)).ToArray();
        var school = replicas[0];

        var students = Enumerable.Range(1, 60).Select(i => new StudentId($"s{i:000}")).ToArray();
        var series = new List<SeriesPublished>();
        for (var i = 0; i < 20; i++)
        {
            series.Add(new SeriesPublished(new SeriesId($"series-{i:00}"), i % 2 == 0 ? "Piano" : "Violin", (i % 5) + 1, (14 * 60) + (45 * (i / 5)), 45,
                new RoomId($"r{(i % 4) + 1}"), [.. students.Skip(i * 3).Take(3)], new DateOnly(2026, 9, 1), new DateOnly(2027, 7, 31)));
        }

        var setup = new List<LessonEvent> { new AccountOpened("bench-school", "Anna", keys[0].PublicKey) };
        setup.AddRange(students.Select(s => new StudentEnrolled(s, "Student " + s.Value)));
        setup.AddRange(series);
        setup.AddRange(keys.Skip(1).Select((k, i) => new DeviceEnrolled(k.Replica, $"device-{i + 1}", k.PublicKey)));
        setup.AddRange(extraSetup ?? []);
        Require(school.RecordBatch(setup));
        foreach (var device in replicas.Skip(1))
        {
            device.Receive(school.Ledger.Export(account));
        }

        var occurrences = series.SelectMany(s => s.Dates(_ => false).Select(d => (Series: s, Occurrence: new OccurrenceId(s.Series, d)))).ToArray();
        var written = setup.Count;
        var round = 0;
        while (written < total)
        {
            foreach (var replica in replicas)
            {
                var size = Math.Min(rng.Next(100, 501), total - written);
                if (size == 0)
                {
                    break;
                }

                var payloads = new List<LessonEvent>(size);
                for (var i = 0; i < size; i++)
                {
                    payloads.Add(Payload(rng, occurrences, replica == school));
                }

                Require(replica.RecordBatch(payloads));
                written += size;
            }

            // Devices pull from the school every round; the school pulls from devices every third round and
            // relays them, so chains depend on each other and some edits are concurrent.
            round++;
            if (round % 3 == 0)
            {
                foreach (var device in replicas.Skip(1))
                {
                    school.Receive(device.Ledger.Export(account, school.Ledger.Heads(account)));
                }
            }

            foreach (var device in replicas.Skip(1))
            {
                device.Receive(school.Ledger.Export(account, device.Ledger.Heads(account)));
            }
        }

        foreach (var device in replicas.Skip(1))
        {
            school.Receive(device.Ledger.Export(account, school.Ledger.Heads(account)));
        }

        var events = school.Ledger.Export(account);
        if (events.Count != total || school.Ledger.Held().Count != 0)
        {
            throw new InvalidOperationException($"generator produced {events.Count} events, {school.Ledger.Held().Count} held");
        }

        return new EngineData(account, events, keys, school.Calendar.Digest(), occurrences);
    }

    /// <summary>
    /// A replica of <see cref="Keys"/>[<paramref name="index"/>] holding the whole log and continuing its own chain
    /// where the generator stopped (to write further events of the same shape with <see cref="NextPayloads"/>).
    /// </summary>
    public Replica Continue(int index, TimeProvider? time = null)
    {
        var key = Keys[index];
        var ledger = new Ledger();
        Require(ledger.Ingest(Events));
        var own = ledger.Applied.Where(e => e.Replica == key.Replica).MaxBy(e => e.Seq)!;
        return new Replica(Account, key, ledger, time, new ChainPosition(own.Seq, own.Hash, own.Clock, own.Time));
    }

    /// <summary><paramref name="count"/> further payloads drawn like the generator's (held, absences, cancels, moves).</summary>
    public List<LessonEvent> NextPayloads(Random rng, int count, bool bySchool = false) =>
        [.. Enumerable.Range(0, count).Select(_ => Payload(rng, _occurrences, bySchool))];

    private static LessonEvent Payload(Random rng, (SeriesPublished Series, OccurrenceId Occurrence)[] occurrences, bool bySchool)
    {
        var (s, occurrence) = occurrences[rng.Next(occurrences.Length)];
        var student = s.Students[rng.Next(s.Students.Length)];
        var roll = rng.Next(100);
        return roll switch
        {
            < 40 => new LessonHeld(occurrence, rng.Next(3) == 0 ? null : "Scales, etude no. " + rng.Next(1, 40)),
            < 70 => new StudentAbsent(occurrence, student, rng.Next(2) == 0, rng.Next(2) == 0 ? "ill" : null),
            < 78 => new AbsenceWithdrawn(occurrence, student),
            < 90 => new LessonCancelled(occurrence, bySchool ? CancellationReason.SchoolClosed : CancellationReason.TeacherIll, rng.Next(2) == 0, null),
            _ => new LessonRescheduled(occurrence, occurrence.Date.AddDays(1), 17 * 60, 45, new RoomId($"r{rng.Next(1, 5)}")),
        };
    }

    private static void Require(RecordResult result)
    {
        if (!result.Succeeded)
        {
            throw new InvalidOperationException("generator: " + result.Error);
        }
    }

    private static void Require(IngestReport report)
    {
        if (!report.IsClean)
        {
            throw new InvalidOperationException("generator: " + report.Refused.FirstOrDefault());
        }
    }
}
