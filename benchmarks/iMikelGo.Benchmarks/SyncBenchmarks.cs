using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite;
using IMikelGo.Store.Sqlite.Relay;
using IMikelGo.Store.Sqlite.Sync;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace IMikelGo.Benchmarks;

/// <summary>
/// Issue #7: a new device's initial sync of one teacher's school year (<see cref="SyncWorld"/>: 5,000 events in the
/// relay's embedded SQLite mailbox, over HTTPS on loopback) into a fresh encrypted vault through <see cref="SyncAgent"/>
/// and <see cref="DeviceReplica"/> — the Sync button of a just-enrolled device (pull, open, verify, merge, store,
/// publish and push its encryption key, ack). Baselines in the same run: the same sealed bytes in one plain GET over
/// the same HTTPS connection setup (<see cref="PlainHttpsGetOfTheSameBytes"/>), and the engine's in-memory receive of
/// the same bundles (<see cref="OpenAndIngestInMemory"/>: open + parse + verify + merge, no HTTP, no vault).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(SingleShotInProcessConfig))]
public class InitialSyncBenchmarks : IDisposable
{
    private SyncWorld _world = null!;
    private SyncDevice? _device;

    [GlobalSetup]
    public void Setup() => _world = SyncWorld.StartAsync().GetAwaiter().GetResult();

    [Benchmark(Baseline = true)]
    public long PlainHttpsGetOfTheSameBytes() => _world.DownloadYearAsync().GetAwaiter().GetResult();

    [Benchmark]
    public int OpenAndIngestInMemory() => _world.ReceiveInMemory();

    [IterationSetup(Target = nameof(InitialSyncIntoNewVault))]
    public void NewVault() => _device = _world.NewDeviceAsync().GetAwaiter().GetResult();

    /// <summary>The measured Sync button of a new device (its vault created and unlocked in the iteration setup).</summary>
    [Benchmark]
    public int InitialSyncIntoNewVault() => _world.Expect(_device!.Agent.SyncAsync(null, CancellationToken.None).GetAwaiter().GetResult(), _world.Data.Events.Count);

    [IterationCleanup(Target = nameof(InitialSyncIntoNewVault))]
    public void DropVault()
    {
        _device?.Dispose();
        _device = null;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _device?.Dispose();
        _world?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Issue #7: the incremental sync of a device that is up to date but for 10 new events another device of the teacher
/// pushed (in the iteration setup). Baseline: one signed pull of the same 10-event bundle through the same client
/// (the transport share). p50/p95/p99 over many rounds: the <c>sync-latency</c> mode (<see cref="SyncLatency"/>).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(SingleShotInProcessConfig))]
public class IncrementalSyncBenchmarks : IDisposable
{
    private const int NewEvents = 10;
    private SyncWorld _world = null!;
    private SyncDevice _device = null!;
    private long _position;

    [GlobalSetup]
    public void Setup()
    {
        _world = SyncWorld.StartAsync().GetAwaiter().GetResult();
        _device = _world.NewDeviceAsync().GetAwaiter().GetResult();
        _world.Expect(_device.Agent.SyncAsync(null, CancellationToken.None).GetAwaiter().GetResult(), _world.Data.Events.Count);
        _position = _world.PushNewEventsAsync(NewEvents).GetAwaiter().GetResult();
        _world.Expect(_device.Agent.SyncAsync(null, CancellationToken.None).GetAwaiter().GetResult(), NewEvents);
    }

    [Benchmark(Baseline = true)]
    public int SignedPullOfTheSameBundle() => _world.PullOneAsync(_position).GetAwaiter().GetResult();

    [IterationSetup(Target = nameof(IncrementalSync10Events))]
    public void PushTenEvents() => _position = _world.PushNewEventsAsync(NewEvents).GetAwaiter().GetResult();

    [Benchmark]
    public int IncrementalSync10Events() => _world.Expect(_device.Agent.SyncAsync(null, CancellationToken.None).GetAwaiter().GetResult(), NewEvents);

    [GlobalCleanup]
    public void Dispose()
    {
        _device?.Dispose();
        _world?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A device under test: its vault (1 KDF iteration: unlocking is not what is measured), replica and sync agent.</summary>
internal sealed class SyncDevice(string root, DeviceVault vault, DeviceReplica replica, SyncAgent agent) : IDisposable
{
    public DeviceReplica Replica { get; } = replica;

    public SyncAgent Agent { get; } = agent;

    public void Dispose()
    {
        Agent.Dispose();
        Replica.Dispose();
        vault.Dispose();
        VaultSupport.DeleteRoot(root);
    }
}

/// <summary>
/// One teacher's school year at the relay: the <see cref="EngineData"/> account (school + 3 devices, 5,000 events; the
/// data set of the vault's unlock-to-ready figure) whose school also published its encryption key and enrolled a new
/// device. Each replica's chain is in the mailbox as the sync agent would have pushed it — bundles of 500 events sealed
/// for the new device and the account's other replicas — on a real relay (<see cref="RelayHost"/>, Kestrel, HTTPS on
/// 127.0.0.1, generated pinned certificate, embedded SQLite store). <c>GET /bench/year</c> (added for the baseline)
/// serves the same sealed bytes in one response.
/// </summary>
internal sealed class SyncWorld : IAsyncDisposable
{
    public const int YearEvents = 5_000;
    private const int BundleEvents = 500;
    private readonly List<IDisposable> _owned = [];
    private readonly Random _rng = new(7);
    private WebApplication _app = null!;
    private SqliteMailboxStore _store = null!;
    private string _root = "";
    private HttpClient _http = null!;
    private RelayClient[] _clients = [];
    private RecipientPublicKey[] _encryption = [];
    private ReplicaKey _deviceKey = null!;
    private EncryptionKeyPair _deviceEncryption = null!;
    private byte[][] _bundles = [];
    private Replica? _writer;

    public EngineData Data { get; private set; } = null!;

    /// <summary>The sealed bytes of the year (what a new device downloads).</summary>
    public long YearBytes { get; private set; }

    /// <summary>The new device's signed, pinned relay client.</summary>
    public RelayClient DeviceClient => _clients[^1];

    public static async Task<SyncWorld> StartAsync()
    {
        var world = new SyncWorld();
        await world.InitAsync();
        return world;
    }

    /// <summary>A new vault (enrolled, unlocked) holding the new device's keys, its replica opened, and a sync agent.</summary>
    public async Task<SyncDevice> NewDeviceAsync()
    {
        var ct = CancellationToken.None;
        var root = VaultSupport.NewRoot("sync-device");
        var vault = VaultSupport.Create(root, iterations: 1);
        await vault.EnrollAsync(VaultSupport.Account, VaultSupport.Pin, ct);
        await DeviceReplica.ProvisionAsync(vault.Store, _deviceKey, _deviceEncryption, ct);
        var replica = await DeviceReplica.OpenAsync(vault.Store, cancellationToken: ct);
        return new SyncDevice(root, vault, replica, new SyncAgent(DeviceClient, replica));
    }

    /// <summary>Baseline: the year's sealed bytes in one GET over pinned HTTPS (no signing, no paging, no processing).</summary>
    public async Task<long> DownloadYearAsync()
    {
        var bytes = await _http.GetByteArrayAsync(new Uri("/bench/year", UriKind.Relative));
        return bytes.Length == YearBytes ? bytes.Length : throw new InvalidOperationException($"downloaded {bytes.Length} bytes, expected {YearBytes}");
    }

    /// <summary>Baseline: open the same bundles and merge their events into a fresh in-memory replica.</summary>
    public int ReceiveInMemory()
    {
        var events = new List<SignedEvent>(Data.Events.Count);
        foreach (var bundle in _bundles)
        {
            if (!EventBundles.TryOpen(bundle, Data.Account, _deviceEncryption, null, out var opened, out var error))
            {
                throw new InvalidOperationException(error);
            }

            events.AddRange(opened);
        }

        var report = new Replica(Data.Account, _deviceKey).Receive(events);
        return report.IsClean && report.Applied.Length == Data.Events.Count ? report.Applied.Length : throw new InvalidOperationException($"in-memory receive: {report.Applied.Length} applied, {report.Refused.FirstOrDefault()}");
    }

    /// <summary>Device 1 records <paramref name="count"/> further events and pushes them sealed as its agent would; returns the mailbox position.</summary>
    public async Task<long> PushNewEventsAsync(int count)
    {
        _writer ??= Data.Continue(1);
        var before = _writer.Position.Seq;
        var recorded = _writer.RecordBatch(Data.NextPayloads(_rng, count));
        if (!recorded.Succeeded)
        {
            throw new InvalidOperationException(recorded.Error);
        }

        var events = Enumerable.Range(1, count).Select(i => _writer.Ledger.Find(Data.Account, _writer.Id, before + i)!).ToList();
        var result = await _clients[1].PushAsync(Data.Account.Value, EventBundles.Seal(_writer.Id, events, Recipients(1)).Bytes, CancellationToken.None);
        return result.Position;
    }

    /// <summary>One signed pull of the mailbox item at <paramref name="position"/> by the new device.</summary>
    public async Task<int> PullOneAsync(long position)
    {
        var page = await DeviceClient.PullAsync(Data.Account.Value, position - 1, 1, TimeSpan.Zero, CancellationToken.None);
        return page.Items.Count == 1 ? page.Items[0].Data.Length : throw new InvalidOperationException($"no item at {position}");
    }

    /// <summary>
    /// Where an initial sync's time goes, each share measured on its own with the same data: the signed pulls of the
    /// whole mailbox (relay + HTTPS + client pipeline), opening the bundles (HPKE + AES-GCM + line parse), verify and
    /// merge into a fresh replica, and storing the events in a new vault (sealed rows, WAL, synchronous = FULL) and
    /// marking them acknowledged, as <see cref="DeviceReplica.ReceiveAsync"/> does.
    /// </summary>
    public async Task<string> SplitsAsync()
    {
        var ct = CancellationToken.None;
        var t = Stopwatch.StartNew();
        var cursor = 0L;
        while (true)
        {
            var page = await DeviceClient.PullAsync(Data.Account.Value, cursor, 100, TimeSpan.Zero, ct);
            if (page.Items.Count == 0)
            {
                break;
            }

            cursor = page.Items[^1].Position;
            if (cursor >= page.Head)
            {
                break;
            }
        }

        var pull = t.Elapsed;
        t.Restart();
        var events = new List<SignedEvent>(Data.Events.Count);
        foreach (var bundle in _bundles)
        {
            EventBundles.TryOpen(bundle, Data.Account, _deviceEncryption, null, out var opened, out _);
            events.AddRange(opened!);
        }

        var open = t.Elapsed;
        t.Restart();
        new Replica(Data.Account, _deviceKey).Receive(events);
        var merge = t.Elapsed;
        var root = VaultSupport.NewRoot("sync-splits");
        try
        {
            using var vault = VaultSupport.Create(root, iterations: 1);
            await vault.EnrollAsync(VaultSupport.Account, VaultSupport.Pin, ct);
            var records = events.Select(e => new EventRecord(VaultSupport.Account, e.Event.Replica.Value, e.Event.Seq, e.Event.Hash.ToBytes(), e.ToLineBytes())).ToList();
            t.Restart();
            await vault.Store.AppendBatchAsync(records, acknowledged: true, ct); // as DeviceReplica.ReceiveAsync stores them
            var store = t.Elapsed;
            return string.Create(CultureInfo.InvariantCulture,
                $"splits: signed pulls {pull.TotalMilliseconds:F0} ms, open {open.TotalMilliseconds:F0} ms, verify + merge {merge.TotalMilliseconds:F0} ms, vault append + ack {store.TotalMilliseconds:F0} ms; sum {(pull + open + merge + store).TotalMilliseconds:F0} ms");
        }
        finally
        {
            VaultSupport.DeleteRoot(root);
        }
    }

    /// <summary>Checks a sync's outcome (nothing refused, the expected number of events applied) and returns the count.</summary>
    public int Expect(SyncSummary summary, int events)
    {
        if (summary.RefusedBundles.Count > 0 || summary.RefusedEvents.Count > 0 || summary.EventsReceived != events)
        {
            throw new InvalidOperationException($"sync received {summary.EventsReceived} of {events} events; refused: {string.Join("; ", summary.RefusedBundles.Select(r => r.Reason).Concat(summary.RefusedEvents))}");
        }

        return summary.EventsReceived;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        _http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _store?.Dispose();
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            owned.Dispose();
        }

        VaultSupport.DeleteRoot(_root);
    }

    private async Task InitAsync()
    {
        var ct = CancellationToken.None;
        _deviceKey = Own(EngineData.Key("new-device"));
        _deviceEncryption = Own(EncryptionKeyPair.Generate());
        var replicaEncryption = Enumerable.Range(0, 4).Select(_ => Own(EncryptionKeyPair.Generate())).ToArray();
        _encryption = [.. replicaEncryption.Select(k => k.PublicKey)];
        Data = EngineData.Build(YearEvents, extraSetup:
        [
            new EncryptionKeyPublished([.. replicaEncryption[0].PublicKey.Encoded.Span]),
            new DeviceEnrolled(_deviceKey.Replica, "new device", _deviceKey.PublicKey),
        ]);

        var bundles = new List<(int Sender, byte[] Bytes)>();
        for (var sender = 0; sender < Data.Keys.Length; sender++)
        {
            var id = Data.Keys[sender].Replica;
            foreach (var chunk in Data.Events.Where(e => e.Event.Replica == id).Chunk(BundleEvents))
            {
                bundles.Add((sender, EventBundles.Seal(id, chunk, Recipients(sender)).Bytes));
            }
        }

        _bundles = [.. bundles.Select(b => b.Bytes)];
        var year = _bundles.SelectMany(b => b).ToArray();
        YearBytes = year.Length;

        _root = VaultSupport.NewRoot("sync-relay");
        _store = new SqliteMailboxStore(new SqliteMailboxStoreOptions { Path = Path.Combine(_root, "relay.db") });
        var account = Data.Account.Value;
        var school = Data.Keys[0];
        var (app, address, pin) = await BenchRelay.StartAsync(_root, _store,
            [new SchoolRegistration(account, school.Replica.Value, Convert.ToBase64String(school.PublicKey.AsSpan()))],
            a => a.MapGet("/bench/year", () => Results.Bytes(year, "application/octet-stream")));
        _app = app;
        _http = BenchRelay.PinnedHttp(address, pin);
        var signers = Data.Keys.Append(_deviceKey).Select(k => Own(Signer(k))).ToArray();
        foreach (var device in signers.Skip(1))
        {
            await _store.PutCallerAsync(new RelayCaller(device.CallerId, account, device.PublicKey, IsSchool: false), ct);
        }

        _clients = [.. signers.Select(s => RelayClient.Create(new RelayClientOptions { BaseAddress = address, PinnedCertificateSha256 = pin, MaxRetries = 0, AttemptTimeout = TimeSpan.FromSeconds(60) }, s))];
        foreach (var (sender, bytes) in bundles)
        {
            await _clients[sender].PushAsync(account, bytes, ct);
        }
    }

    /// <summary>The new device and the account's replicas other than <paramref name="sender"/>.</summary>
    private RecipientPublicKey[] Recipients(int sender) => [_deviceEncryption.PublicKey, .. _encryption.Where((_, i) => i != sender)];

    private static EcdsaRequestSigner Signer(ReplicaKey key)
    {
        var pkcs8 = key.ExportPkcs8();
        try
        {
            return EcdsaRequestSigner.FromPkcs8(pkcs8);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    private T Own<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }
}

/// <summary>
/// <c>sync-latency [rounds]</c>: p50/p95/p99 of the incremental sync of 10 events (another device pushes 10 events,
/// untimed; then the device's Sync button is timed), interleaved with one signed pull of the same bundle (baseline).
/// Also prints one initial sync of the year for reference and, three times, where its time goes (<see cref="SyncWorld.SplitsAsync"/>).
/// </summary>
internal static class SyncLatency
{
    private const int Warmup = 10;

    public static int Run(int rounds = 200)
    {
        var world = SyncWorld.StartAsync().GetAwaiter().GetResult();
        try
        {
            using var device = world.NewDeviceAsync().GetAwaiter().GetResult();
            var initial = Stopwatch.StartNew();
            world.Expect(device.Agent.SyncAsync(null, CancellationToken.None).GetAwaiter().GetResult(), world.Data.Events.Count);
            initial.Stop();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"initial sync of {world.Data.Events.Count} events ({world.YearBytes / 1024.0 / 1024.0:F2} MiB sealed) into a new vault: {initial.Elapsed.TotalMilliseconds:F0} ms (one run, cold)"));
            for (var i = 0; i < 3; i++)
            {
                Console.WriteLine(world.SplitsAsync().GetAwaiter().GetResult());
            }

            var sync = new List<double>(rounds);
            var pull = new List<double>(rounds);
            for (var round = 0; round < rounds + Warmup; round++)
            {
                var position = world.PushNewEventsAsync(10).GetAwaiter().GetResult();
                var t0 = Stopwatch.GetTimestamp();
                world.PullOneAsync(position).GetAwaiter().GetResult();
                var t1 = Stopwatch.GetTimestamp();
                world.Expect(device.Agent.SyncAsync(null, CancellationToken.None).GetAwaiter().GetResult(), 10);
                var t2 = Stopwatch.GetTimestamp();
                if (round >= Warmup)
                {
                    pull.Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
                    sync.Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
                }
            }

            Console.WriteLine(Latency.Describe("incremental sync of 10 events (Sync button)", sync));
            Console.WriteLine(Latency.Describe("one signed pull of the same bundle (baseline)", pull));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"p50 ratio sync / pull: {Latency.Percentile(sync, 0.50) / Latency.Percentile(pull, 0.50):F2}"));
            return 0;
        }
        finally
        {
            world.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
