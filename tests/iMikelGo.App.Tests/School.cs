using System.Security.Cryptography;
using FluentAssertions;
using IMikelGo.Device;
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

namespace IMikelGo.App.Tests;

/// <summary>
/// A real relay (Kestrel, HTTPS on 127.0.0.1, generated pinned certificate, in-memory mailboxes) and the test as the
/// school: its engine replica of one teacher's account (timetable, school encryption key), and an in-process enrollment
/// channel that checks license key and school password, registers the device at the relay and enrolls it in the log.
/// </summary>
internal sealed class School : IAsyncDisposable
{
    internal const string Account = "k-anna-berger";
    internal const string Password = "schul-passwort-2026";

    private readonly WebApplication _relay;
    private readonly ECDsa _signing;
    private readonly ReplicaKey _key;
    private readonly EncryptionKeyPair _encryption;
    private readonly EcdsaRequestSigner _signer;
    private readonly RelayClient _client;
    private readonly Dictionary<ReplicaId, RecipientPublicKey> _deviceKeys = [];

    private School(WebApplication relay, ECDsa signing, ReplicaKey key, string root)
    {
        _relay = relay;
        _signing = signing;
        _key = key;
        Root = root;
        Relay = new Uri(relay.Urls.First());
        Fingerprint = ((IServiceProvider)relay.Services).GetService(typeof(RelayCertificate)) is RelayCertificate c ? c.Fingerprint : throw new InvalidOperationException("no relay certificate");
        _encryption = EncryptionKeyPair.Generate();
        _signer = new EcdsaRequestSigner(signing, callerId: key.Replica.Value);
        _client = RelayClient.Create(new RelayClientOptions { BaseAddress = Relay, PinnedCertificateSha256 = Fingerprint, RetryBaseDelay = TimeSpan.FromMilliseconds(50) }, _signer);
        Replica = new Replica(new AccountId(Account), key);
        License = LicenseKey.Generate();
        EnrollmentUri = new EnrollmentUri(Relay, "musikschule-lindenberg", new string('a', 64), License).ToString();
    }

    internal string Root { get; }

    internal Uri Relay { get; }

    internal string Fingerprint { get; }

    internal Replica Replica { get; }

    internal LicenseKey License { get; }

    /// <summary>The QR code's content for this teacher.</summary>
    internal string EnrollmentUri { get; }

    /// <summary>Starts the relay and records the account, the school's encryption key, two students and <paramref name="series"/>.</summary>
    internal static async Task<School> StartAsync(params SeriesPublished[] series)
    {
        var root = Directory.CreateTempSubdirectory("imikelgo-app-tests-").FullName;
        var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var key = ReplicaKey.Create();
        var options = new RelayOptions { DataDirectory = Path.Combine(root, "relay"), StoreFactory = _ => new InMemoryMailboxStore(), RateLimitBurst = 10_000, RateLimitPerSecond = 10_000 };
        options.Urls.Add("https://127.0.0.1:0");
        options.Schools.Add(new SchoolRegistration(Account, key.Replica.Value, Convert.ToBase64String(signing.ExportSubjectPublicKeyInfo())));
        var relay = RelayHost.Create(options);
        await relay.StartAsync();
        var school = new School(relay, signing, key, root);
        var result = school.Replica.RecordBatch([
            new AccountOpened("Musikschule Lindenberg", "Anna Berger", key.PublicKey),
            new EncryptionKeyPublished([.. school._encryption.PublicKey.Encoded.Span]),
            new StudentEnrolled(new StudentId("lena"), "Lena Vogel"),
            new StudentEnrolled(new StudentId("tom"), "Tom Krause"),
            .. series,
        ]);
        result.Succeeded.Should().BeTrue(result.Error);
        return school;
    }

    /// <summary>The device options an app instance needs to enroll through this school.</summary>
    internal void Configure(TeacherDeviceOptions options, string label)
    {
        options.Pbkdf2Iterations = 20_000;
        options.DeviceLabel = label;
        options.Enrollment = new DelegateEnrollmentChannel(EnrollAsync);
        options.ConfigureRelay = o =>
        {
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
            o.MaxRetries = 2;
        };
    }

    /// <summary>Publishes the school's chain to the relay, sealed for every device enrolled so far.</summary>
    internal async Task PublishAsync()
    {
        var account = Replica.Account;
        var bundle = EventBundles.Seal(Replica.Id, [.. Replica.Ledger.Export(account).Where(e => e.Event.Replica == Replica.Id)], _deviceKeys.Values);
        await _client.PushAsync(Account, bundle.Bytes, CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        _signer.Dispose();
        _signing.Dispose();
        _encryption.Dispose();
        _key.Dispose();
        await _relay.StopAsync();
        await _relay.DisposeAsync();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<EnrollmentGrant> EnrollAsync(EnrollmentRequest request, CancellationToken cancellationToken)
    {
        if (request.SchoolPassword != Password || request.LicenseKey != License.Value)
        {
            throw new EnrollmentRefusedException(EnrollmentRefusalReason.WrongPassword, "the license key or the school-internal password is wrong");
        }

        await _client.RegisterDeviceAsync(Account, new DeviceRegistration(request.Device.Value, Convert.ToBase64String(request.SigningKey.AsSpan())), cancellationToken);
        var recorded = Replica.Record(new DeviceEnrolled(request.Device, request.Label, request.SigningKey));
        recorded.Succeeded.Should().BeTrue(recorded.Error);
        var peers = _deviceKeys.ToDictionary();
        _deviceKeys[request.Device] = request.EncryptionKey;
        return new EnrollmentGrant(Account, Relay, Fingerprint, peers);
    }
}
