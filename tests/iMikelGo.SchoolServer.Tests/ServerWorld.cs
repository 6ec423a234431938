using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.School.Connector;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>
/// A school server host (embedded SQLite store and in-memory messages, or — durable — Marten store and Wolverine messages in PostgreSQL), a real relay (Kestrel, HTTPS on a fixed
/// 127.0.0.1 port, pinned certificate kept in its data directory, in-memory mailboxes that survive a relay stop/start)
/// and teacher devices enrolled in-process.
/// </summary>
internal sealed class ServerWorld : IAsyncDisposable
{
    internal const string Pin = "4711";
    internal const string SchoolId = "musikschule";
    private readonly List<TeacherDevice> _devices = [];
    private WebApplication? _relay;

    internal ServerWorld(bool durable)
        : this(durable ? PostgresServer.ConnectionString : null)
    {
    }

    /// <summary>A world on the PostgreSQL server <paramref name="postgres"/> (durable) or, with null, embedded.</summary>
    internal ServerWorld(string? postgres)
    {
        Root = Directory.CreateTempSubdirectory("imikelgo-school-server-").FullName;
        Postgres = postgres;
        Schema = "school_server_" + Guid.NewGuid().ToString("N")[..12];
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
    }

    internal string Root { get; }

    internal string? Postgres { get; }

    internal string Schema { get; }

    internal int Port { get; }

    internal string Fingerprint { get; private set; } = string.Empty;

    internal InMemoryMailboxStore Mailboxes { get; } = new();

    internal RelayFaults Faults { get; } = new();

    internal IHost? Host { get; private set; }

    /// <summary>
    /// When set, every request to the relay goes through it (after the relay's authentication, before its endpoint): a
    /// broken relay or proxy that may answer by itself or call the real endpoint (<c>next</c>) and mangle the answer.
    /// </summary>
    internal Func<HttpContext, RequestDelegate, Task>? RelayChaos { get; set; }

    internal SchoolServer Server => Host!.Services.GetRequiredService<SchoolServer>();

    /// <summary>The options every school server of the world runs with (also the child process's): short retries.</summary>
    internal static void Configure(SchoolServerOptions o, string root, string? postgres, string schema, int port, string fingerprint, TimeSpan pullInterval, RelayFaults faults)
    {
        o.DataDirectory = postgres is null ? Path.Combine(root, "school") : null;
        o.PostgresConnectionString = postgres;
        o.Schema = schema;
        o.SchoolId = SchoolId;
        o.RelayAddress = new Uri($"https://127.0.0.1:{port}/");
        o.RelayCertificateSha256 = fingerprint;
        o.PullInterval = pullInterval;
        o.RetryCooldowns.Clear();
        o.RetryCooldowns.Add(TimeSpan.FromMilliseconds(100));
        o.RetryCooldowns.Add(TimeSpan.FromMilliseconds(200));
        o.RetrySchedule.Clear();
        o.RetrySchedule.Add(TimeSpan.FromMilliseconds(300));
        o.RetrySchedule.Add(TimeSpan.FromMilliseconds(500));
        o.ConfigureConnector = s =>
        {
            s.Pbkdf2Iterations = 1000;
            s.ConfigureRelay = FastRelayRetries.None;
            s.WrapRelayClient = c => new FaultyRelayClient(c, faults);
        };
    }

    internal static IHost Build(Action<SchoolServerOptions> configure)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddIMikelGoSchoolServer(configure);
        return builder.Build();
    }

    internal async Task<SchoolServer> StartServerAsync(TimeSpan pullInterval)
    {
        Host = Build(o => Configure(o, Root, Postgres, Schema, Port, Fingerprint, pullInterval, Faults));
        await Host.StartAsync();
        return Server;
    }

    internal async Task StopServerAsync()
    {
        if (Host is not null)
        {
            await Host.StopAsync();
            Host.Dispose();
            Host = null;
        }
    }

    /// <summary>Starts (or restarts) the relay; the certificate (and so the pin) persists in its data directory.</summary>
    internal async Task StartRelayAsync()
    {
        var options = new RelayOptions
        {
            DataDirectory = Path.Combine(Root, "relay"),
            StoreFactory = _ => Mailboxes,
            RateLimitBurst = 100_000,
            RateLimitPerSecond = 100_000,
        };
        options.Urls.Add($"https://127.0.0.1:{Port}");
        _relay = RelayHost.Create(options);
        _relay.Use((context, next) => RelayChaos is { } chaos ? chaos(context, next) : next(context));
        await _relay.StartAsync();
        Fingerprint = _relay.Services.GetRequiredService<RelayCertificate>().Fingerprint;
    }

    internal async Task StopRelayAsync()
    {
        if (_relay is not null)
        {
            await _relay.StopAsync();
            await _relay.DisposeAsync();
            _relay = null;
        }
    }

    /// <summary>What the relay operator does: registers the school's callers of <paramref name="accounts"/>.</summary>
    internal async Task RegisterAsync(SchoolConnector school, IEnumerable<AccountId> accounts)
    {
        foreach (var (account, caller, key) in school.RelayRegistrations(accounts))
        {
            await Mailboxes.PutCallerAsync(new RelayCaller(caller, account, Convert.FromBase64String(key), IsSchool: true), CancellationToken.None);
        }
    }

    /// <summary>A teacher device whose enrollment channel reaches the connector in-process.</summary>
    internal async Task<TeacherDevice> EnrolledDeviceAsync(SchoolConnector school, string name, IssuedLicense license)
    {
        var device = await TeacherDevice.OpenAsync(new TeacherDeviceOptions
        {
            DataDirectory = Path.Combine(Root, name),
            Pbkdf2Iterations = 1000,
            DeviceLabel = name,
            Enrollment = new DelegateEnrollmentChannel(async (request, ct) =>
            {
                var (account, _, peers) = await school.EnrollDirectAsync(
                    new DirectEnrollment(request.LicenseKey, request.SchoolPassword, request.SigningKey, request.EncryptionKey, request.Label), ct);
                return new EnrollmentGrant(account.Value, request.Uri.Relay, Fingerprint, peers);
            }),
            ConfigureRelay = FastRelayRetries.Apply,
        }, CancellationToken.None);
        _devices.Add(device);
        await device.EnrollAsync(new EnrollmentInput(license.Uri.ToString(), license.License.Value, license.Password, Pin), CancellationToken.None);
        return device;
    }

    /// <summary>Waits until <paramref name="condition"/> holds (polling), failing with <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    internal static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds))
            {
                throw new TimeoutException($"after {seconds} s: {what}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>How many events of <paramref name="account"/> the relay has not acknowledged (the connector's store).</summary>
    internal async Task<int> UnacknowledgedAsync(AccountId account) =>
        (await (await Server.StoreAsync(CancellationToken.None)).UnacknowledgedAsync(account.Value, CancellationToken.None)).Count;

    /// <summary>PushAccount envelopes in Wolverine's PostgreSQL inbox not yet handled (incoming, or scheduled for a retry).</summary>
    internal static async Task<long> PendingPushEnvelopesAsync(string postgres, string schema)
    {
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand(
            $"SELECT count(*) FROM {schema}.wolverine_incoming_envelopes WHERE message_type ILIKE '%push%account%' AND status <> 'Handled'", connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }

        await StopServerAsync();
        await StopRelayAsync();
        if (Postgres is not null)
        {
            await using var connection = new NpgsqlConnection(Postgres);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {Schema} CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Counters and faults shared by every relay client of a school server.</summary>
internal sealed class RelayFaults
{
    private int _failures;
    private int _replays;

    /// <summary>Push and pull calls that failed (relay down).</summary>
    public int Failures => _failures;

    public int Replays => _replays;

    /// <summary>Pulls still to rewind to the mailbox's start (the relay delivering bundles the school already has).</summary>
    public int ReplaysLeft;

    /// <summary>SIGKILL the process right after the relay stored a push (child process only).</summary>
    public bool KillAfterPush { get; set; }

    /// <summary>
    /// Called with every pulled page before the connector sees it (the test's moment to break something, e.g. stop
    /// PostgreSQL between the relay's answer and the store write); removed once it returns true.
    /// </summary>
    public Func<PullPage, bool>? OnPage { get; set; }

    internal void Pulled(PullPage page)
    {
        if (OnPage is { } hook && hook(page))
        {
            OnPage = null;
        }
    }

    internal void Failed() => Interlocked.Increment(ref _failures);

    internal bool TakeReplay()
    {
        if (Interlocked.Decrement(ref ReplaysLeft) < 0)
        {
            Interlocked.Increment(ref ReplaysLeft);
            return false;
        }

        Interlocked.Increment(ref _replays);
        return true;
    }
}

/// <summary>A relay client that counts failed pushes and pulls, can rewind pulls and can kill its process after a stored push.</summary>
internal sealed class FaultyRelayClient(IRelayClient inner, RelayFaults faults) : ForwardingRelayClient(inner)
{
    public override async Task<PushResult> PushAsync(string account, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken)
    {
        PushResult result;
        try
        {
            result = await Inner.PushAsync(account, bundle, cancellationToken);
        }
        catch
        {
            faults.Failed();
            throw;
        }

        if (faults.KillAfterPush)
        {
            Console.WriteLine("killed after push " + result.BundleId);
            Console.Out.Flush();
            Process.GetCurrentProcess().Kill();
        }

        return result;
    }

    public override async Task<PullPage> PullAsync(string account, long after, int limit, TimeSpan wait, CancellationToken cancellationToken)
    {
        PullPage page;
        try
        {
            page = await Inner.PullAsync(account, after > 0 && faults.TakeReplay() ? 0 : after, limit, wait, cancellationToken);
        }
        catch
        {
            faults.Failed();
            throw;
        }

        faults.Pulled(page);
        return page;
    }
}
