using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay;
using IMikelGo.School.Connector;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite.School;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace IMikelGo.Device.Tests;

/// <summary>
/// A real relay (Kestrel, HTTPS on 127.0.0.1, generated pinned certificate, in-memory store) and the real school
/// connector (<see cref="SchoolConnector"/> on its SQLite store) with a small timetable for one teacher imported as
/// JSON. Devices enroll through the relay hand-off (their default channel) while the connector answers with
/// <see cref="SchoolConnector.ProcessEnrollmentsAsync"/>.
/// </summary>
internal sealed class World : IAsyncDisposable
{
    internal const string Account = "k-anna-berger";
    internal const string SchoolId = "musikschule-lindenberg";
    internal const string Pin = "4711";
    internal static readonly SeriesId Piano = new("piano-thu");
    internal static readonly SeriesId Violin = new("violin-thu");
    internal static readonly StudentId Lena = new("lena");
    internal static readonly StudentId Max = new("max");

    private const string Timetable = """
        {
          "school": "Musikschule Lindenberg",
          "term": { "start": "2026-09-01", "end": "2027-01-31" },
          "teachers": [ { "id": "k-anna-berger", "name": "Anna Berger" }, { "id": "k-ben-ott", "name": "Ben Ott" } ],
          "groups": [ { "id": "lena", "name": "Lena Vogel" }, { "id": "max", "name": "Max Huber" }, { "id": "ida", "name": "Ida Roth" } ],
          "rooms": [ { "id": "raum-101", "name": "Raum 101" }, { "id": "raum-102", "name": "Raum 102" } ],
          "lessons": [
            { "id": "piano-thu", "subject": "Klavier", "teacher": "k-anna-berger", "groups": ["lena"], "room": "raum-101", "weekday": "thursday", "start": "16:00", "duration": 45 },
            { "id": "violin-thu", "subject": "Violine", "teacher": "k-anna-berger", "groups": ["max"], "room": "raum-102", "weekday": "thursday", "start": "17:00", "duration": 45 },
            { "id": "cello-mon", "subject": "Cello", "teacher": "k-ben-ott", "groups": ["ida"], "room": "raum-101", "weekday": "monday", "start": "15:00", "duration": 45 }
          ]
        }
        """;

    private readonly string _root;
    private readonly List<TeacherDevice> _devices = [];
    private readonly SqliteSchoolConnectorStore _schoolStore;
    private WebApplication? _app;

    private World(string root, SqliteSchoolConnectorStore schoolStore, SchoolConnector connector, SchoolConnectorSettings settings)
    {
        _root = root;
        _schoolStore = schoolStore;
        Connector = connector;
        Settings = settings;
    }

    /// <summary>The school connector.</summary>
    internal SchoolConnector Connector { get; }

    internal SchoolConnectorSettings Settings { get; }

    /// <summary>The school's replica of <see cref="Account"/> (its ledger and calendar).</summary>
    internal Replica School => Connector.ReplicaOf(new AccountId(Account))!;

    internal InMemoryMailboxStore Store { get; } = new();

    internal Uri RelayAddress => Settings.RelayAddress!;

    internal string Fingerprint => Settings.RelayCertificateSha256!;

    /// <summary>The license the school issued for <see cref="Account"/>.</summary>
    internal IssuedLicense Issued { get; private set; } = null!;

    internal LicenseKey License => Issued.License;

    internal string Password => Issued.Password;

    /// <summary>The enrollment QR payload (relay pinned, school root fingerprint).</summary>
    internal string EnrollmentUri => Issued.Uri.ToString();

    internal static OccurrenceId Thursday(int week, SeriesId? series = null) => new(series ?? Piano, new DateOnly(2026, 9, 3).AddDays(7 * week));

    /// <summary>Starts the connector (importing <paramref name="timetable"/>, JSON; default: the small timetable above) and the relay.</summary>
    /// <remarks>Also compiled into tests/iMikelGo.App.Tests (linked), whose browser tests need a timetable around today.</remarks>
    internal static async Task<World> StartAsync(Action<IMikelGo.Relay.RelayOptions>? configure = null, string? timetable = null)
    {
        var root = Directory.CreateTempSubdirectory("imikelgo-device-tests-").FullName;
        var settings = new SchoolConnectorSettings
        {
            Pbkdf2Iterations = 1_000,
            ConfigureRelay = FastRelayRetries.Apply,
        };
        var store = await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(root, "school.db"), CancellationToken.None);
        var connector = await SchoolConnector.InitAsync(store, SchoolId, settings, CancellationToken.None);
        var world = new World(root, store, connector, settings);
        try
        {
            await connector.ImportAsync("json", timetable ?? Timetable, null, CancellationToken.None);
            await connector.PublishAsync(null, CancellationToken.None);
            await world.StartRelayAsync(configure);
            await connector.PublishCertificatesAsync(CancellationToken.None);
            world.Issued = await connector.IssueLicenseAsync(new AccountId(Account), CancellationToken.None);
            return world;
        }
        catch
        {
            await world.DisposeAsync();
            throw;
        }
    }

    internal TeacherDeviceOptions DeviceOptions(string name, Action<RelayEnrollmentOptions>? configure = null) => new()
    {
        DataDirectory = Path.Combine(_root, name),
        Pbkdf2Iterations = 1000,
        DeviceLabel = name,
        ConfigureRelay = FastRelayRetries.Apply,
        ConfigureRelayEnrollment = o =>
        {
            o.FirstPollDelay = TimeSpan.FromMilliseconds(20);
            o.MaxPollDelay = TimeSpan.FromMilliseconds(200);
            o.Timeout = TimeSpan.FromSeconds(30);
            configure?.Invoke(o);
        },
    };

    /// <summary>Opens a device folder and enrolls it with the world's license through the relay.</summary>
    internal async Task<TeacherDevice> EnrolledDeviceAsync(string name, IssuedLicense? license = null)
    {
        var device = await OpenDeviceAsync(name);
        license ??= Issued;
        await EnrollAsync(device, new EnrollmentInput(license.Uri.ToString(), license.License.Value, license.Password, Pin));
        return device;
    }

    /// <summary>Enrolls <paramref name="device"/> while the school connector answers the relay's enrollment queue.</summary>
    internal async Task<ReplicaId> EnrollAsync(TeacherDevice device, EnrollmentInput input)
    {
        var enrolling = device.EnrollAsync(input, CancellationToken.None);
        while (!enrolling.IsCompleted)
        {
            await Connector.ProcessEnrollmentsAsync(CancellationToken.None);
            await Task.WhenAny(enrolling, Task.Delay(20));
        }

        return await enrolling;
    }

    internal async Task<TeacherDevice> OpenDeviceAsync(string name, Action<RelayEnrollmentOptions>? configure = null)
    {
        var device = await TeacherDevice.OpenAsync(DeviceOptions(name, configure), CancellationToken.None);
        _devices.Add(device);
        return device;
    }

    internal Task<SchoolSyncResult> SchoolSyncAsync(string account = Account) => Connector.SyncAsync(new AccountId(account), null, CancellationToken.None);

    /// <summary>Rounds of school → devices until nothing moves.</summary>
    internal async Task ConvergeAsync(params TeacherDevice[] devices)
    {
        for (var round = 0; round < 4; round++)
        {
            var school = await SchoolSyncAsync(devices.Length > 0 ? devices[0].Account ?? Account : Account);
            school.Failures.Should().BeEmpty();
            var moved = school.EventsReceived;
            foreach (var device in devices)
            {
                var result = await device.SyncAsync(null, CancellationToken.None);
                result.Refused.Should().BeEmpty();
                moved += result.Received + result.Sent;
            }

            if (moved == 0 && round > 0)
            {
                return;
            }
        }
    }

    /// <summary>The school revokes a device (connector.WipeAsync: in its signed log and at the relay).</summary>
    internal Task RevokeAsync(ReplicaId device, string reason) => Connector.WipeAsync(new AccountId(Account), device, reason, CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }

        await Connector.DisposeAsync();
        await _schoolStore.DisposeAsync();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task StartRelayAsync(Action<IMikelGo.Relay.RelayOptions>? configure)
    {
        var options = new IMikelGo.Relay.RelayOptions
        {
            DataDirectory = Path.Combine(_root, "relay"),
            StoreFactory = _ => Store,
            RateLimitBurst = 10_000,
            RateLimitPerSecond = 10_000,
        };
        options.Urls.Add("https://127.0.0.1:0");
        foreach (var (account, caller, key) in Connector.RelayRegistrations(Connector.Accounts))
        {
            options.Schools.Add(new SchoolRegistration(account, caller, key));
        }

        configure?.Invoke(options);
        _app = RelayHost.Create(options);
        await _app.StartAsync();
        Settings.RelayAddress = new Uri(_app.Urls.First());
        Settings.RelayCertificateSha256 = _app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
    }
}
