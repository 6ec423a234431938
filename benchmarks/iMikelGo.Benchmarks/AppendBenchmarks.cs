using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Benchmarks;

/// <summary>
/// Append + sign: one checkpoint per event (Append) versus one per 100 events (AppendBatch), on the bare
/// ReplicaWriter and through Replica.Record/RecordBatch (intent check + own-ledger ingest, which verifies the
/// new checkpoint). Every figure is per event (OperationsPerInvoke = 100).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortInProcessConfig))]
public class AppendBenchmarks : IDisposable
{
    private const int Events = 100;

    private ReplicaKey _key = null!;
    private ReplicaWriter _writer = null!;
    private Replica _replica = null!;
    private LessonEvent[] _payloads = null!;
    private byte[] _statement = null!;
    private ECDsa _ecdsa = null!;

    [GlobalSetup]
    public void Setup()
    {
        _key = EngineData.Key("append");
        var account = new AccountId("bench-append");
        _writer = new ReplicaWriter(account, _key);
        _replica = new Replica(account, _key);
        var series = new SeriesPublished(new SeriesId("piano-1"), "Piano", 4, 16 * 60, 45, new RoomId("r1"), [new StudentId("s1")], new DateOnly(2026, 9, 1), new DateOnly(2027, 7, 31));
        var opened = _replica.RecordBatch([new AccountOpened("bench-school", "Anna", _key.PublicKey), new StudentEnrolled(new StudentId("s1"), "Sam"), series]);
        if (!opened.Succeeded)
        {
            throw new InvalidOperationException(opened.Error);
        }

        var dates = series.Dates(_ => false).ToArray();
        _payloads = [.. Enumerable.Range(0, Events).Select(i => (LessonEvent)(i % 2 == 0
            ? new LessonHeld(new OccurrenceId(series.Series, dates[i % dates.Length]), "Scales, etude no. " + i)
            : new StudentAbsent(new OccurrenceId(series.Series, dates[i % dates.Length]), new StudentId("s1"), true, "ill")))];
        _ecdsa = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = SHA256.HashData(Encoding.UTF8.GetBytes("imikelgo-bench/append")) });
        _statement = Checkpoint.Statement(account, _key.Replica, 1234, EventHash.Of("x"u8));
    }

    /// <summary>Baseline: one bare ECDSA P-256 SignData over a prepared ~200-byte checkpoint statement.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Events)]
    public int EcdsaSignCheckpoint()
    {
        var x = 0;
        for (var i = 0; i < Events; i++)
        {
            x ^= _ecdsa.SignData(_statement, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)[0];
        }

        return x;
    }

    /// <summary>ReplicaWriter.Append: a checkpoint signature on every event.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public long WriterAppendSingle()
    {
        for (var i = 0; i < Events; i++)
        {
            _writer.Append(_payloads[i]);
        }

        return _writer.Position.Seq;
    }

    /// <summary>ReplicaWriter.AppendBatch of 100: one checkpoint signature per 100 events.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public long WriterAppendBatch100()
    {
        _writer.AppendBatch(_payloads);
        return _writer.Position.Seq;
    }

    /// <summary>Replica.Record: intent check + append + sign + ingest (verifies the checkpoint) per event.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public long ReplicaRecordSingle()
    {
        for (var i = 0; i < Events; i++)
        {
            _replica.Record(_payloads[i]);
        }

        return _replica.Position.Seq;
    }

    /// <summary>Replica.RecordBatch of 100: one signature and one verify per 100 events.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public long ReplicaRecordBatch100()
    {
        _replica.RecordBatch(_payloads);
        return _replica.Position.Seq;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _key?.Dispose();
        _ecdsa?.Dispose();
        GC.SuppressFinalize(this);
    }
}
