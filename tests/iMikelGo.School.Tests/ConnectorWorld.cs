using System.Net;
using System.Net.Sockets;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Engine.Sync;
using IMikelGo.School.Connector;
using IMikelGo.Store.Marten.School;
using IMikelGo.Store.Sqlite.School;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace IMikelGo.School.Tests;

/// <summary>
/// A school connector on its store — the embedded SQLite file (default) or Marten on real PostgreSQL in a fresh schema
/// (<see cref="SchoolStoreKind.Marten"/>) — a real relay (Kestrel, HTTPS on a fixed 127.0.0.1 port, generated
/// pinned certificate kept in its data directory, in-memory mailboxes that survive a relay stop/start) and teacher devices.
/// </summary>
internal sealed class ConnectorWorld : IAsyncDisposable
{
    internal const string Pin = "4711";
    private readonly string _root = Directory.CreateTempSubdirectory("imikelgo-school-connector-").FullName;
    private readonly int _port;
    private readonly List<TeacherDevice> _devices = [];
    private WebApplication? _relay;

    internal ConnectorWorld(SchoolStoreKind store = SchoolStoreKind.Sqlite)
    {
        StoreKind = store;
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        _port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Options = new SchoolConnectorSettings
        {
            Pbkdf2Iterations = 1000,
            RelayAddress = new Uri($"https://127.0.0.1:{_port}/"),
            ConfigureRelay = FastRelayRetries.Apply,
        };
    }

    internal SchoolConnectorSettings Options { get; }

    internal InMemoryMailboxStore Mailboxes { get; } = new();

    internal SchoolStoreKind StoreKind { get; }

    internal string DatabasePath => Path.Combine(_root, "school.db");

    /// <summary>The PostgreSQL schema of the Marten store (unique per world).</summary>
    internal string MartenSchema { get; } = "school_world_" + Guid.NewGuid().ToString("N")[..12];

    internal ISchoolConnectorStore? Store { get; private set; }

    internal SchoolConnector? School { get; private set; }

    internal async Task<SchoolConnector> InitAsync(string schoolId, Func<ISchoolConnectorStore, ISchoolConnectorStore>? wrapStore = null)
    {
        Store = await OpenStoreAsync();
        Store = wrapStore?.Invoke(Store) ?? Store;
        School = await SchoolConnector.InitAsync(Store, schoolId, Options, CancellationToken.None);
        return School;
    }

    /// <summary>Drops the connector object without completing anything and opens it again from its store file.</summary>
    internal async Task<SchoolConnector> ReopenAsync(SchoolConnectorSettings? options = null)
    {
        await School!.DisposeAsync();
        await Store!.DisposeAsync();
        Store = await OpenStoreAsync();
        School = await SchoolConnector.OpenAsync(Store, options ?? Options, CancellationToken.None);
        return School;
    }

    /// <summary>Opens the world's store (again): the same file or the same PostgreSQL schema.</summary>
    internal async Task<ISchoolConnectorStore> OpenStoreAsync() => StoreKind switch
    {
        SchoolStoreKind.Marten => await MartenSchoolConnectorStore.OpenAsync(PostgresServer.ConnectionString, MartenSchema, CancellationToken.None),
        _ => await SqliteSchoolConnectorStore.OpenAsync(DatabasePath, CancellationToken.None),
    };

    /// <summary>Starts (or restarts) the relay with the school's registrations for <paramref name="accounts"/>.</summary>
    internal async Task StartRelayAsync(IEnumerable<AccountId> accounts)
    {
        var options = new RelayOptions
        {
            DataDirectory = Path.Combine(_root, "relay"),
            StoreFactory = _ => Mailboxes,
            RateLimitBurst = 100_000,
            RateLimitPerSecond = 100_000,
        };
        options.Urls.Add($"https://127.0.0.1:{_port}");
        foreach (var (account, caller, key) in School!.RelayRegistrations(accounts))
        {
            options.Schools.Add(new SchoolRegistration(account, caller, key));
        }

        _relay = RelayHost.Create(options);
        await _relay.StartAsync();
        Options.RelayCertificateSha256 = _relay.Services.GetRequiredService<RelayCertificate>().Fingerprint;
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

    /// <summary>A teacher device whose enrollment channel reaches the connector in-process (license + password checked there).</summary>
    /// <remarks><paramref name="requested"/> sees the device's enrollment request (e.g. its encryption key).</remarks>
    internal async Task<TeacherDevice> EnrolledDeviceAsync(string name, IssuedLicense license, Action<EnrollmentRequest>? requested = null)
    {
        var device = await TeacherDevice.OpenAsync(new TeacherDeviceOptions
        {
            DataDirectory = Path.Combine(_root, name),
            Pbkdf2Iterations = 1000,
            DeviceLabel = name,
            Enrollment = new DelegateEnrollmentChannel(async (request, ct) =>
            {
                requested?.Invoke(request);
                try
                {
                    var (account, _, peers) = await School!.EnrollDirectAsync(
                        new DirectEnrollment(request.LicenseKey, request.SchoolPassword, request.SigningKey, request.EncryptionKey, request.Label), ct);
                    return new EnrollmentGrant(account.Value, request.Uri.Relay, Options.RelayCertificateSha256!, peers);
                }
                catch (UnauthorizedAccessException e)
                {
                    throw new EnrollmentRefusedException(e.Message);
                }
            }),
            ConfigureRelay = FastRelayRetries.Apply,
        }, CancellationToken.None);
        _devices.Add(device);
        await device.EnrollAsync(new EnrollmentInput(license.Uri.ToString(), license.License.Value, license.Password, Pin), CancellationToken.None);
        return device;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }

        if (School is not null)
        {
            await School.DisposeAsync();
        }

        if (Store is not null)
        {
            await Store.DisposeAsync();
        }

        await StopRelayAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Which <see cref="ISchoolConnectorStore"/> a <see cref="ConnectorWorld"/> runs on.</summary>
internal enum SchoolStoreKind
{
    /// <summary>The embedded SQLite file.</summary>
    Sqlite,

    /// <summary>Marten on PostgreSQL.</summary>
    Marten,
}

/// <summary>A relay client that lets the relay store a push, then "crashes" before the connector learns it (once).</summary>
internal sealed class CrashAfterPush(IRelayClient inner) : ForwardingRelayClient(inner)
{
    public bool Crashed { get; private set; }

    public override async Task<PushResult> PushAsync(string account, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken)
    {
        var result = await Inner.PushAsync(account, bundle, cancellationToken);
        if (!Crashed)
        {
            Crashed = true;
            throw new InvalidOperationException("simulated crash after the relay stored the bundle");
        }

        return result;
    }
}

/// <summary>A relay client whose pushes are lost (never reach the relay) while its switch says so.</summary>
internal sealed class LosePushes(IRelayClient inner, LosePushes.Switch lose) : ForwardingRelayClient(inner)
{
    public override Task<PushResult> PushAsync(string account, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken) =>
        lose.Lose ? throw new RelayException("simulated: the push was lost") : Inner.PushAsync(account, bundle, cancellationToken);

    /// <summary>Shared by the clients of every account.</summary>
    internal sealed class Switch
    {
        public bool Lose { get; set; }
    }
}
