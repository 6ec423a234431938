using System.Diagnostics;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using IMikelGo.Store.Marten;
using IMikelGo.Store.Sqlite.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IMikelGo.Benchmarks;

/// <summary>
/// The relay over loopback HTTPS: real Kestrel (<see cref="RelayHost"/>), a pinned, signing <see cref="RelayClient"/>
/// (HTTP/2), on the embedded SQLite store and on PostgreSQL through Marten (connection from
/// <c>IMIKELGO_POSTGRES</c>, else <c>scripts/pg-start.sh</c>). One operation = one request; each invoke runs 64
/// requests from 8 concurrent callers, so ops/s = 1 / mean. Baseline: unauthenticated <c>GET /health</c> in the same
/// run. <see cref="Push1000EventBundle"/> seals and pushes a new 1,000-event-sized bundle (540 KB);
/// <see cref="Seal1000EventBundleOnly"/> is its sealing share.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortInProcessConfig))]
public class RelayBenchmarks : IDisposable
{
    private const int Concurrency = 8;
    private const int PerInvoke = 64;
    private RelayWorld _world = null!;
    private byte[] _payload = [];
    private SequenceRange[] _ranges = [];

    [Params("embedded", "postgres")]
    public string Store { get; set; } = "embedded";

    [GlobalSetup]
    public void Setup()
    {
        _world = RelayWorld.StartAsync(Store).GetAwaiter().GetResult();
        _payload = new byte[1000 * 539];
        new Random(42).NextBytes(_payload);
        _ranges = [new SequenceRange(_world.DeviceId, 1, 1000)];
        _world.Device.PushAsync(RelayWorld.Account, Seal(), CancellationToken.None).GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = PerInvoke)]
    public Task HealthUnauthenticated() => Parallel(async () =>
    {
        using var response = await _world.Http.GetAsync(new Uri("/health", UriKind.Relative));
        response.EnsureSuccessStatusCode();
    });

    [Benchmark(OperationsPerInvoke = PerInvoke)]
    public Task PullUpToDateMailbox() => Parallel(async () =>
    {
        var page = await _world.Device.PullAsync(RelayWorld.Account, long.MaxValue / 2, 100, TimeSpan.Zero, CancellationToken.None);
        if (page.Items.Count != 0)
        {
            throw new InvalidOperationException("the mailbox should be up to date");
        }
    });

    [Benchmark]
    public Task<PushResult> Push1000EventBundle() => _world.Device.PushAsync(RelayWorld.Account, Seal(), CancellationToken.None);

    [Benchmark]
    public byte[] Seal1000EventBundleOnly() => Seal();

    [GlobalCleanup]
    public void Dispose()
    {
        _world?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        GC.SuppressFinalize(this);
    }

    private byte[] Seal() => Bundle.Seal(RelayWorld.Account, _world.DeviceId, _ranges, _payload, [_world.DeviceEncryption.PublicKey]).Bytes;

    private static Task Parallel(Func<Task> call) =>
        Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
        {
            for (var i = 0; i < PerInvoke / Concurrency; i++)
            {
                await call();
            }
        }));
}

/// <summary>A relay on a chosen store with one school and one registered device, and their pinned clients.</summary>
internal sealed class RelayWorld : IAsyncDisposable
{
    public const string Account = "bench-account";
    private readonly WebApplication _app;
    private readonly IMailboxStore _store;
    private readonly string _data;
    private readonly ECDsa _deviceKey;

    private RelayWorld(WebApplication app, IMailboxStore store, string data, ECDsa deviceKey, string deviceId, RelayClient device, HttpClient http)
    {
        DeviceId = deviceId;
        _app = app;
        _store = store;
        _data = data;
        _deviceKey = deviceKey;
        Device = device;
        Http = http;
    }

    public string DeviceId { get; }

    public EncryptionKeyPair DeviceEncryption { get; } = EncryptionKeyPair.Generate();

    public RelayClient Device { get; }

    public HttpClient Http { get; }

    public static async Task<RelayWorld> StartAsync(string store)
    {
        var data = Directory.CreateTempSubdirectory("imikelgo-relay-bench-").FullName;
        IMailboxStore mailbox = store switch
        {
            "embedded" => new SqliteMailboxStore(new SqliteMailboxStoreOptions { Path = Path.Combine(data, "relay.db") }),
            "postgres" => MartenMailboxStore.Create(new MartenMailboxOptions { ConnectionString = PostgresConnection(), SchemaName = "bench_" + Guid.NewGuid().ToString("N")[..8] }),
            _ => throw new ArgumentException("store: embedded or postgres", nameof(store)),
        };
        var (app, baseAddress, pin) = await BenchRelay.StartAsync(data, mailbox);
        var deviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var deviceId = "bench-device-" + Guid.NewGuid().ToString("N")[..8];
        await mailbox.PutCallerAsync(new RelayCaller(deviceId, Account, deviceKey.ExportSubjectPublicKeyInfo(), IsSchool: false), CancellationToken.None);
        var client = RelayClient.Create(new RelayClientOptions { BaseAddress = baseAddress, PinnedCertificateSha256 = pin, MaxRetries = 0, AttemptTimeout = TimeSpan.FromSeconds(60) },
            new EcdsaRequestSigner(deviceKey, ownsKey: false, callerId: deviceId));
        var http = BenchRelay.PinnedHttp(baseAddress, pin);
        return new RelayWorld(app, mailbox, data, deviceKey, deviceId, client, http);
    }

    public async ValueTask DisposeAsync()
    {
        Device.Dispose();
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        (_store as IDisposable)?.Dispose();
        _deviceKey.Dispose();
        DeviceEncryption.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary><c>IMIKELGO_POSTGRES</c>, else the connection printed by <c>scripts/pg-start.sh</c>.</summary>
    public static string PostgresConnection()
    {
        var env = Environment.GetEnvironmentVariable("IMIKELGO_POSTGRES");
        if (!string.IsNullOrWhiteSpace(env))
        {
            return env;
        }

        var script = Path.Combine(Repository.Root, "scripts", "pg-start.sh");
        var psi = new ProcessStartInfo(script) { RedirectStandardOutput = true, UseShellExecute = false };
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output.Trim().Split('\n')[^1];
    }
}

/// <summary>The relay host on 127.0.0.1 (HTTPS, generated certificate, no logging, no rate limit) and a pinned HTTP/2 client.</summary>
internal static class BenchRelay
{
    /// <summary>Starts <see cref="RelayHost"/> on <paramref name="store"/>; <paramref name="map"/> may add routes before the start.</summary>
    public static async Task<(WebApplication App, Uri Address, string Pin)> StartAsync(
        string data, IMailboxStore store, IEnumerable<SchoolRegistration>? schools = null, Action<WebApplication>? map = null)
    {
        var options = new RelayOptions { DataDirectory = data, StoreFactory = _ => store, RateLimitBurst = 1_000_000, RateLimitPerSecond = 1_000_000 };
        options.Urls.Add("https://127.0.0.1:0");
        foreach (var school in schools ?? [])
        {
            options.Schools.Add(school);
        }

        var builder = RelayHost.CreateBuilder(options);
        builder.Logging.ClearProviders();
        var app = RelayHost.Build(builder);
        map?.Invoke(app);
        await app.StartAsync();
        return (app, new Uri(app.Urls.First()), app.Services.GetRequiredService<RelayCertificate>().Fingerprint);
    }

    /// <summary>A plain HTTP/2 client that accepts exactly the relay's certificate (no request signing, no resilience pipeline).</summary>
    public static HttpClient PinnedHttp(Uri address, string pin)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), pin, StringComparison.OrdinalIgnoreCase);
        return new HttpClient(handler) { BaseAddress = address, DefaultRequestVersion = System.Net.HttpVersion.Version20 };
    }
}

/// <summary>
/// <c>relay-longpoll [embedded|postgres]</c>: GC heap and working set of the process (relay and clients in one
/// process) before and after opening 1,000 concurrent long-polls (<c>wait=30</c>) on an up-to-date mailbox, then
/// one push that wakes them all.
/// </summary>
internal static class RelayLongPollMemory
{
    public static int Run(string store)
    {
        const int Polls = 1000;
        var world = RelayWorld.StartAsync(store).GetAwaiter().GetResult();
        try
        {
            var ct = CancellationToken.None;
            var warm = world.Device.PullAsync(RelayWorld.Account, 0, 10, TimeSpan.Zero, ct).GetAwaiter().GetResult();
            var cursor = warm.Head;
            var (heap0, ws0) = Measure();
            var sw = Stopwatch.StartNew();
            var polls = Enumerable.Range(0, Polls).Select(_ => world.Device.PullAsync(RelayWorld.Account, cursor, 10, TimeSpan.FromSeconds(30), ct)).ToArray();
            Thread.Sleep(TimeSpan.FromSeconds(5));
            var (heap1, ws1) = Measure();
            var active = polls.Count(p => !p.IsCompleted);
            var payload = new byte[1024];
            using var enc = EncryptionKeyPair.Generate();
            var bundle = Bundle.Seal(RelayWorld.Account, world.DeviceId, [new SequenceRange(world.DeviceId, 1, 1)], payload, [enc.PublicKey]);
            var wake = Stopwatch.StartNew();
            world.Device.PushAsync(RelayWorld.Account, bundle.Bytes, ct).GetAwaiter().GetResult();
            var pages = Task.WhenAll(polls).GetAwaiter().GetResult();
            wake.Stop();
            Console.WriteLine($"store={store} long-polls={Polls} still waiting after 5 s={active}");
            Console.WriteLine($"GC heap: {heap0 / 1048576.0:F1} MiB -> {heap1 / 1048576.0:F1} MiB (+{(heap1 - heap0) / 1024.0 / Polls:F1} KiB per long-poll)");
            Console.WriteLine($"working set: {ws0 / 1048576.0:F1} MiB -> {ws1 / 1048576.0:F1} MiB (+{(ws1 - ws0) / 1024.0 / Polls:F1} KiB per long-poll)");
            Console.WriteLine($"one push woke {pages.Count(p => p.Items.Count == 1)}/{Polls} long-polls in {wake.Elapsed.TotalMilliseconds:F0} ms (opened in {sw.Elapsed.TotalSeconds - 5 - wake.Elapsed.TotalSeconds:F1} s beyond the 5 s wait)");
            return 0;
        }
        finally
        {
            world.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static (long Heap, long WorkingSet) Measure()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return (GC.GetTotalMemory(forceFullCollection: true), process.WorkingSet64);
    }
}
