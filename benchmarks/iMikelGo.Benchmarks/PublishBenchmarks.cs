using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using IMikelGo.Engine.Signing;
using IMikelGo.Relay;
using IMikelGo.School.Connector;
using IMikelGo.School.Import;
using IMikelGo.School.Model;
using IMikelGo.School.Publishing;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite.Relay;
using IMikelGo.Store.Sqlite.School;
using Microsoft.AspNetCore.Builder;

namespace IMikelGo.Benchmarks;

/// <summary>
/// Issue #6: publish the whole ES-SS-08 timetable (first solution, the importer's default term) to its 66 teachers
/// through a local relay. Two measured halves, each on a fresh school store (a new SQLite file):
/// <see cref="InitImportPublish"/> (<see cref="SchoolConnector.InitAsync"/> → <c>ImportFileAsync</c> →
/// <c>PublishAsync</c>, events durable in the store) and <see cref="SyncPushesEveryAccount"/> (<c>SyncAsync</c>: every
/// account's chain sealed and pushed to a real relay — Kestrel, HTTPS on 127.0.0.1, embedded SQLite mailboxes). A
/// publish only leaves the school for accounts with an enrolled device (no recipients, nothing to seal), so the sync's
/// iteration setup enrolls one device per teacher (license, password, relay registration), which is not measured.
/// End to end = the sum of the two; the <c>publish</c> mode times the whole chain in one go. Baseline in the same run:
/// <see cref="PublishInMemory"/>, the publish step alone (<see cref="TimetablePublisher"/>, no store, no relay).
/// Skipped (the setup says so) when <c>../shared/data/xhstt/ES-SS-08-SpainSchool.xml</c> is absent.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(SingleShotInProcessConfig))]
public class SchoolPublishBenchmarks : IDisposable
{
    private PublishRun? _run;
    private SchoolTimetable _timetable = null!;

    [GlobalSetup]
    public void Setup() => _timetable = new XhsttSchoolDataSource(PublishRun.RequireData()).Load();

    [Benchmark(Baseline = true)]
    public int PublishInMemory()
    {
        using var keys = DerivedSchoolKeyStore.ForTests("bench");
        return new TimetablePublisher(keys).Publish(_timetable).EventsRecorded;
    }

    [IterationSetup(Target = nameof(InitImportPublish))]
    public void NewStore() => _run = new PublishRun();

    [Benchmark]
    public int InitImportPublish() => _run!.InitImportPublishAsync().GetAwaiter().GetResult();

    [IterationSetup(Target = nameof(SyncPushesEveryAccount))]
    public void PublishedAndEnrolled()
    {
        _run = new PublishRun();
        _run.InitImportPublishAsync().GetAwaiter().GetResult();
        _run.EnrollOneDevicePerTeacherAsync().GetAwaiter().GetResult();
    }

    [Benchmark]
    public int SyncPushesEveryAccount() => _run!.SyncAsync().GetAwaiter().GetResult();

    [IterationCleanup]
    public void Drop()
    {
        _run?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _run = null;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        Drop();
        GC.SuppressFinalize(this);
    }
}

/// <summary>One school: a connector on a new SQLite store in its own folder, then a relay and one device per teacher.</summary>
internal sealed class PublishRun : IAsyncDisposable
{
    public const string DataFile = "data/xhstt/ES-SS-08-SpainSchool.xml";
    private readonly string _root = VaultSupport.NewRoot("publish");
    private readonly SchoolConnectorSettings _settings = new() { Pbkdf2Iterations = 1000, ConfigureRelay = o => o.MaxRetries = 0 };
    private readonly List<IDisposable> _keys = [];
    private SqliteSchoolConnectorStore? _store;
    private SqliteMailboxStore? _mailboxes;
    private WebApplication? _relay;

    public SchoolConnector? Connector { get; private set; }

    public int Published { get; private set; }

    /// <summary>The ES-SS-08 archive, or an exception that says it is absent and the benchmark is skipped.</summary>
    public static string RequireData() =>
        Repository.Shared(DataFile) ?? throw new InvalidOperationException($"SKIPPED: ../shared/{DataFile} is absent (the publish benchmark needs the real ES-SS-08 timetable)");

    /// <summary>Init → import → publish; returns the number of events stored.</summary>
    public async Task<int> InitImportPublishAsync()
    {
        var ct = CancellationToken.None;
        _store = await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(_root, "school.db"), ct);
        Connector = await SchoolConnector.InitAsync(_store, "es-ss-08", _settings, ct);
        await Connector.ImportFileAsync(RequireData(), null, ct);
        var result = await Connector.PublishAsync(null, ct);
        if (result.Accounts != 66)
        {
            throw new InvalidOperationException($"published {result.Accounts} accounts, expected ES-SS-08's 66 teachers");
        }

        Published = result.Events;
        return result.Events;
    }

    /// <summary>Starts the relay with the school's registrations and enrolls one device per account (license + password, direct channel).</summary>
    public async Task EnrollOneDevicePerTeacherAsync()
    {
        var ct = CancellationToken.None;
        var connector = Connector!;
        _mailboxes = new SqliteMailboxStore(new SqliteMailboxStoreOptions { Path = Path.Combine(_root, "relay.db") });
        var registrations = connector.RelayRegistrations(connector.Accounts).Select(r => new SchoolRegistration(r.Account, r.Caller, r.SigningKey));
        var (app, address, pin) = await BenchRelay.StartAsync(Path.Combine(_root, "relay"), _mailboxes, registrations);
        _relay = app;
        _settings.RelayAddress = address;
        _settings.RelayCertificateSha256 = pin;
        foreach (var account in connector.Accounts)
        {
            var license = await connector.IssueLicenseAsync(account, ct);
            var signing = Own(ReplicaKey.Create());
            var encryption = Own(EncryptionKeyPair.Generate());
            await connector.EnrollDirectAsync(new DirectEnrollment(license.License.Value, license.Password, signing.PublicKey, encryption.PublicKey, "bench device"), ct);
        }
    }

    /// <summary>Seals and pushes every account's chain; returns the events sent (all of them, or it throws).</summary>
    public async Task<int> SyncAsync()
    {
        var result = await Connector!.SyncAsync(null, null, CancellationToken.None);
        if (result.Failures.Count > 0 || result.EventsSent < Published)
        {
            throw new InvalidOperationException($"sync sent {result.EventsSent} of {Published} published events; failures: {string.Join("; ", result.Failures)}");
        }

        return result.EventsSent;
    }

    public async ValueTask DisposeAsync()
    {
        if (Connector is not null)
        {
            await Connector.DisposeAsync();
        }

        if (_store is not null)
        {
            await _store.DisposeAsync();
        }

        if (_relay is not null)
        {
            await _relay.StopAsync();
            await _relay.DisposeAsync();
        }

        _mailboxes?.Dispose();
        foreach (var key in _keys)
        {
            key.Dispose();
        }

        VaultSupport.DeleteRoot(_root);
    }

    private T Own<T>(T disposable)
        where T : IDisposable
    {
        _keys.Add(disposable);
        return disposable;
    }
}

/// <summary>
/// <c>publish [runs]</c>: the whole chain of <see cref="SchoolPublishBenchmarks"/> in one go with Stopwatch splits
/// (init, import, publish, [enrollment, not counted], sync) and the in-memory publish baseline, per run.
/// </summary>
internal static class PublishSplits
{
    public static int Run(int runs = 3)
    {
        string data;
        try
        {
            data = PublishRun.RequireData();
        }
        catch (InvalidOperationException e)
        {
            Console.WriteLine(e.Message);
            return 0;
        }

        var timetable = new XhsttSchoolDataSource(data).Load();
        for (var i = 0; i < runs; i++)
        {
            var baseline = Stopwatch.StartNew();
            using (var keys = DerivedSchoolKeyStore.ForTests("bench"))
            {
                new TimetablePublisher(keys).Publish(timetable);
            }

            baseline.Stop();
            var run = new PublishRun();
            try
            {
                var publish = Stopwatch.StartNew();
                var events = run.InitImportPublishAsync().GetAwaiter().GetResult();
                publish.Stop();
                run.EnrollOneDevicePerTeacherAsync().GetAwaiter().GetResult();
                var sync = Stopwatch.StartNew();
                run.SyncAsync().GetAwaiter().GetResult();
                sync.Stop();
                var total = publish.Elapsed + sync.Elapsed;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"run {i + 1}: {events} events, 66 accounts: init+import+publish {publish.Elapsed.TotalMilliseconds:F0} ms + sync {sync.Elapsed.TotalMilliseconds:F0} ms = {total.TotalMilliseconds:F0} ms; publish in memory {baseline.Elapsed.TotalMilliseconds:F0} ms (ratio {total / baseline.Elapsed:F2})"));
            }
            finally
            {
                run.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }

        return 0;
    }
}
