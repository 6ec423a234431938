using System.Security.Cryptography;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace IMikelGo.Device.Tests;

/// <summary>
/// A real relay (Kestrel, HTTPS on 127.0.0.1, generated pinned certificate, in-memory store) and an in-process school
/// connector: the school's engine replica, its encryption key published in its chain, a relay client signed with its
/// replica key, and an enrollment channel that checks the password, registers the device at the relay and enrolls it
/// in the log with <see cref="DeviceEnrolled"/>.
/// </summary>
internal sealed class World : IAsyncDisposable
{
    internal const string Account = "k-anna-berger";
    internal const string Password = "Geheim-2026!";
    internal const string Pin = "4711";
    internal static readonly SeriesId Piano = new("piano-thu");
    internal static readonly SeriesId Violin = new("violin-thu");
    internal static readonly StudentId Lena = new("lena");
    internal static readonly StudentId Max = new("max");
    internal static readonly DateOnly TermStart = new(2026, 9, 1);

    private readonly WebApplication _app;
    private readonly ReplicaKey _schoolKey;
    private readonly EncryptionKeyPair _schoolEncryption;
    private readonly EcdsaRequestSigner _schoolSigner;
    private readonly RelayClient _schoolRelay;
    private readonly SchoolReplica _schoolSync;
    private readonly SyncAgent _schoolAgent;
    private readonly string _root;
    private readonly List<TeacherDevice> _devices = [];

    private World(WebApplication app, ReplicaKey schoolKey, EncryptionKeyPair schoolEncryption, string root, InMemoryMailboxStore store)
    {
        _app = app;
        _schoolKey = schoolKey;
        _schoolEncryption = schoolEncryption;
        _root = root;
        Store = store;
        RelayAddress = new Uri(app.Urls.First());
        Fingerprint = app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
        School = new Replica(new AccountId(Account), schoolKey);
        var pkcs8 = schoolKey.ExportPkcs8();
        try
        {
            _schoolSigner = EcdsaRequestSigner.FromPkcs8(pkcs8);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }

        _schoolRelay = RelayClient.Create(RelayOptions(), _schoolSigner);
        _schoolSync = new SchoolReplica(School, schoolEncryption, DeviceKeys);
        _schoolAgent = new SyncAgent(_schoolRelay, _schoolSync);
        License = LicenseKey.Generate();
        EnrollmentUri = new EnrollmentUri(RelayAddress, "musikschule-lindenberg", new string('a', 64), License).ToString();
    }

    internal Replica School { get; }

    internal InMemoryMailboxStore Store { get; }

    internal Uri RelayAddress { get; }

    internal string Fingerprint { get; }

    internal LicenseKey License { get; }

    internal string EnrollmentUri { get; }

    /// <summary>Device encryption keys the school learned at enrollment.</summary>
    internal Dictionary<ReplicaId, RecipientPublicKey> DeviceKeys { get; } = [];

    internal static OccurrenceId Thursday(int week, SeriesId? series = null) => new(series ?? Piano, new DateOnly(2026, 9, 3).AddDays(7 * week));

    internal static async Task<World> StartAsync(Action<IMikelGo.Relay.RelayOptions>? configure = null)
    {
        var root = Directory.CreateTempSubdirectory("imikelgo-device-tests-").FullName;
        var schoolKey = ReplicaKey.Create();
        var store = new InMemoryMailboxStore();
        var options = new IMikelGo.Relay.RelayOptions
        {
            DataDirectory = Path.Combine(root, "relay"),
            StoreFactory = _ => store,
            RateLimitBurst = 10_000,
            RateLimitPerSecond = 10_000,
        };
        options.Urls.Add("https://127.0.0.1:0");
        options.Schools.Add(new SchoolRegistration(Account, schoolKey.Replica.Value, Convert.ToBase64String(schoolKey.PublicKey.AsSpan())));
        configure?.Invoke(options);
        var app = RelayHost.Create(options);
        await app.StartAsync();
        var schoolEncryption = EncryptionKeyPair.Generate();
        var world = new World(app, schoolKey, schoolEncryption, root, store);
        var result = world.School.RecordBatch([
            new AccountOpened("musikschule-lindenberg", "Anna Berger", schoolKey.PublicKey),
            new EncryptionKeyPublished([.. schoolEncryption.PublicKey.Encoded.Span]),
            new StudentEnrolled(Lena, "Lena Vogel"),
            new StudentEnrolled(Max, "Max Huber"),
            new SeriesPublished(Piano, "Klavier", 4, 16 * 60, 45, new RoomId("raum-101"), [Lena], TermStart, new DateOnly(2027, 1, 31)),
            new SeriesPublished(Violin, "Violine", 4, 17 * 60, 45, new RoomId("raum-102"), [Max], TermStart, new DateOnly(2027, 1, 31)),
        ]);
        result.Succeeded.Should().BeTrue(result.Error);
        return world;
    }

    internal RelayClientOptions RelayOptions() => new()
    {
        BaseAddress = RelayAddress,
        PinnedCertificateSha256 = Fingerprint,
        RetryBaseDelay = TimeSpan.FromMilliseconds(20),
        MaxRetries = 1,
    };

    internal TeacherDeviceOptions DeviceOptions(string name) => new()
    {
        DataDirectory = Path.Combine(_root, name),
        Pbkdf2Iterations = 1000,
        DeviceLabel = name,
        Enrollment = new DelegateEnrollmentChannel(EnrollAsync),
        ConfigureRelay = o =>
        {
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
            o.MaxRetries = 1;
        },
    };

    /// <summary>Opens a device folder and enrolls it through the in-process school.</summary>
    internal async Task<TeacherDevice> EnrolledDeviceAsync(string name)
    {
        var device = await OpenDeviceAsync(name);
        await device.EnrollAsync(new EnrollmentInput(EnrollmentUri, License.Value, Password, Pin), CancellationToken.None);
        return device;
    }

    internal async Task<TeacherDevice> OpenDeviceAsync(string name)
    {
        var device = await TeacherDevice.OpenAsync(DeviceOptions(name), CancellationToken.None);
        _devices.Add(device);
        return device;
    }

    /// <summary>The school connector's relay client (signed with the school replica key; its caller id is the school id at the relay).</summary>
    internal RelayClient SchoolRelay => _schoolRelay;

    internal Task<SyncSummary> SchoolSyncAsync() => _schoolAgent.SyncAsync(null, CancellationToken.None);

    /// <summary>Rounds of school → devices until nothing moves (at most <paramref name="rounds"/>).</summary>
    internal async Task ConvergeAsync(params TeacherDevice[] devices)
    {
        for (var round = 0; round < 4; round++)
        {
            var moved = (await SchoolSyncAsync()).EventsReceived;
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

    /// <summary>The school revokes a device: in its signed log and at the relay.</summary>
    internal async Task RevokeAsync(ReplicaId device, string reason)
    {
        School.Record(new DeviceRevoked(device, reason)).Succeeded.Should().BeTrue();
        await _schoolRelay.RevokeAsync(Account, new RevocationRequest(device.Value, reason), CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }

        _schoolAgent.Dispose();
        _schoolRelay.Dispose();
        _schoolSigner.Dispose();
        _schoolEncryption.Dispose();
        _schoolKey.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<EnrollmentGrant> EnrollAsync(EnrollmentRequest request, CancellationToken cancellationToken)
    {
        if (request.SchoolPassword != Password || request.LicenseKey != License.Value)
        {
            throw new EnrollmentRefusedException("wrong license key or school password");
        }

        await _schoolRelay.RegisterDeviceAsync(Account, new DeviceRegistration(request.Device.Value, Convert.ToBase64String(request.SigningKey.AsSpan())), cancellationToken);
        var recorded = School.Record(new DeviceEnrolled(request.Device, request.Label, request.SigningKey));
        recorded.Succeeded.Should().BeTrue(recorded.Error);
        var peers = DeviceKeys.ToDictionary();
        DeviceKeys[request.Device] = request.EncryptionKey;
        return new EnrollmentGrant(Account, RelayAddress, Fingerprint, peers);
    }

    /// <summary>The school connector as a sync replica (in memory): seals its chain for every enrolled device's key.</summary>
    private sealed class SchoolReplica(Replica replica, EncryptionKeyPair keys, Dictionary<ReplicaId, RecipientPublicKey> enrolledKeys) : ISyncReplica
    {
        private readonly HashSet<string> _acked = [];
        private HashSet<ReplicaId> _announced = [];
        private (HashSet<ReplicaId> Recipients, long Head)? _announcing;
        private long _cursor;
        private OutgoingBundle? _outgoing;

        public AccountId Account => replica.Account;

        public ReplicaId Id => replica.Id;

        public IRecipientKeys DecryptionKeys => keys;

        public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyCollection<RecipientPublicKey>>([.. Recipients().Values]);

        public Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken)
        {
            var own = replica.Ledger.Export(Account).Where(e => e.Event.Replica == Id).ToList();
            var recipients = Recipients().Keys.ToHashSet();
            if (recipients.Count == 0)
            {
                return Task.FromResult<IReadOnlyList<SignedEvent>>([]);
            }

            if (!recipients.IsSubsetOf(_announced))
            {
                _announcing = (recipients, replica.Position.Seq);
                return Task.FromResult<IReadOnlyList<SignedEvent>>(own);
            }

            return Task.FromResult<IReadOnlyList<SignedEvent>>([.. own.Where(e => !_acked.Contains(e.Event.Hash.Hex))]);
        }

        public Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken) => Task.FromResult(replica.Receive(events));

        public Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
        {
            var list = events.ToList();
            _acked.UnionWith(list.Select(e => e.Event.Hash.Hex));
            if (_announcing is { } a && list.Any(e => e.Event.Seq >= a.Head))
            {
                _announced = [.. _announced.Union(a.Recipients)];
                _announcing = null;
            }

            return Task.CompletedTask;
        }

        public Task<long> GetCursorAsync(CancellationToken cancellationToken) => Task.FromResult(_cursor);

        public Task SetCursorAsync(long position, CancellationToken cancellationToken)
        {
            _cursor = position;
            return Task.CompletedTask;
        }

        public Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken) => Task.FromResult(_outgoing);

        public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken)
        {
            _outgoing = bundle;
            return Task.CompletedTask;
        }

        private Dictionary<ReplicaId, RecipientPublicKey> Recipients()
        {
            var revoked = replica.Ledger.Applied.Select(e => e.Payload).OfType<DeviceRevoked>().Select(r => r.Device).ToHashSet();
            var result = enrolledKeys.Where(k => !revoked.Contains(k.Key)).ToDictionary();
            foreach (var (id, encoded) in replica.Ledger.RecipientKeys(Account))
            {
                if (id != Id && RecipientPublicKey.TryParse(encoded.AsSpan(), out var key, out _))
                {
                    result[id] = key;
                }
            }

            return result;
        }
    }
}
