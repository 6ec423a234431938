using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using IMikelGo.Engine.Chains;
using IMikelGo.Store.Sqlite;
using Microsoft.Data.Sqlite;

namespace IMikelGo.Benchmarks;

/// <summary>
/// Unlock to ready. The KDF is measured on its own (raw PBKDF2-SHA256 at the vault's default 500,000
/// iterations, the baseline) and the rest with a vault whose KDF is 1 iteration: lock + unlock (PIN counter
/// write, key unwrap, open the keyed database) and then load 5,000 events (read + decrypt every row, parse,
/// verify and merge them, project the calendar digest).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortInProcessConfig))]
public class VaultUnlockBenchmarks : IDisposable
{
    private const int Events = 5_000;
    private readonly byte[] _salt = SHA256.HashData("imikelgo-bench/salt"u8);
    private string _root = "";
    private DeviceVault _vault = null!;
    private EngineData _data = null!;

    [GlobalSetup]
    public void Setup()
    {
        _data = EngineData.Build(Events);
        _root = VaultSupport.NewRoot("unlock");
        _vault = VaultSupport.Create(_root, iterations: 1);
        var enrolled = _vault.EnrollAsync(VaultSupport.Account, VaultSupport.Pin, CancellationToken.None).GetAwaiter().GetResult();
        var store = _vault.Store;
        var records = _data.Events.Select(e => new EventRecord(VaultSupport.Account, e.Event.Replica.Value, e.Event.Seq, e.Event.Hash.ToBytes(), e.ToLineBytes())).ToList();
        foreach (var chunk in records.Chunk(500))
        {
            store.AppendBatchAsync(chunk, CancellationToken.None).GetAwaiter().GetResult();
        }

        if (LockUnlockAndLoad() != _data.Digest)
        {
            throw new InvalidOperationException($"loaded calendar differs from the generator's ({enrolled})");
        }
    }

    /// <summary>Baseline: the KDF alone, PBKDF2-SHA256 at DeviceVaultOptions' default 500,000 iterations.</summary>
    [Benchmark(Baseline = true)]
    public byte Kdf500k() => Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(VaultSupport.Pin), _salt, 500_000, HashAlgorithmName.SHA256, 32)[0];

    /// <summary>Lock, then unlock without the KDF cost (1 iteration): counter file, key unwrap, open keyed database.</summary>
    [Benchmark]
    public VaultState LockUnlock()
    {
        _vault.LockAsync(CancellationToken.None).GetAwaiter().GetResult();
        _vault.UnlockAsync(VaultSupport.Pin, CancellationToken.None).GetAwaiter().GetResult();
        return _vault.State;
    }

    /// <summary>Lock, unlock (KDF excluded) and read + decrypt the 5,000 stored events (the vault's share of "ready").</summary>
    [Benchmark]
    public int LockUnlockAndRead()
    {
        LockUnlock();
        var count = 0;
        var all = _vault.Store.ReadAllEventsAsync(CancellationToken.None).GetAsyncEnumerator();
        try
        {
            while (all.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                count += all.Current.CanonicalEvent.Length > 0 ? 1 : 0;
            }
        }
        finally
        {
            all.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        return count;
    }

    /// <summary>Lock, unlock (KDF excluded) and load 5,000 events into a verified ledger and calendar digest: "ready".</summary>
    [Benchmark]
    public string LockUnlockAndLoad()
    {
        LockUnlock();
        return Load();
    }

    private string Load()
    {
        var events = new List<SignedEvent>(Events);
        var all = _vault.Store.ReadAllEventsAsync(CancellationToken.None).GetAsyncEnumerator();
        try
        {
            while (all.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                events.Add(SignedEvent.ParseLine(all.Current.CanonicalEvent.Span));
            }
        }
        finally
        {
            all.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        var ledger = new Ledger();
        ledger.Ingest(events);
        return ledger.Calendar(_data.Account).Digest();
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _vault?.Dispose();
        VaultSupport.DeleteRoot(_root);
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Durable append of events with their outbox entries (WAL, synchronous = FULL): one event per transaction and
/// 100 per transaction, through the vault (payload sealed with AES-256-GCM, keyed database) and through plain
/// Microsoft.Data.Sqlite with the same rows, schema and pragmas, unkeyed (baseline). Batched figures are per event.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortInProcessConfig))]
public class VaultAppendBenchmarks : IDisposable
{
    private const int Batch = 100;
    private string _root = "";
    private DeviceVault _vault = null!;
    private IDeviceStore _store = null!;
    private SqliteConnection _plain = null!;
    private long _vaultSeq;
    private long _plainSeq;

    [GlobalSetup]
    public void Setup()
    {
        _root = VaultSupport.NewRoot("append");
        _vault = VaultSupport.Create(Path.Combine(_root, "vault"), iterations: 1);
        _vault.EnrollAsync(VaultSupport.Account, VaultSupport.Pin, CancellationToken.None).GetAwaiter().GetResult();
        _store = _vault.Store;
        Directory.CreateDirectory(Path.Combine(_root, "plain"));
        _plain = VaultSupport.OpenPlain(Path.Combine(_root, "plain", "plain.db"));
    }

    [Benchmark(Baseline = true)]
    public void PlainSqliteInsertOne() => VaultSupport.InsertPlain(_plain, [VaultSupport.Record(++_plainSeq)]);

    [Benchmark]
    public bool VaultAppendOne() => _store.AppendAsync(VaultSupport.Record(++_vaultSeq), CancellationToken.None).GetAwaiter().GetResult();

    [Benchmark(OperationsPerInvoke = Batch)]
    public void PlainSqliteInsertBatch100() => VaultSupport.InsertPlain(_plain, Next(ref _plainSeq));

    [Benchmark(OperationsPerInvoke = Batch)]
    public int VaultAppendBatch100() => _store.AppendBatchAsync(Next(ref _vaultSeq), CancellationToken.None).GetAwaiter().GetResult();

    private static EventRecord[] Next(ref long seq)
    {
        var records = new EventRecord[Batch];
        for (var i = 0; i < Batch; i++)
        {
            records[i] = VaultSupport.Record(++seq);
        }

        return records;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _plain?.Dispose();
        _vault?.Dispose();
        VaultSupport.DeleteRoot(_root);
        GC.SuppressFinalize(this);
    }
}
