using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace IMikelGo.Relay.Tests.Enrollment;

/// <summary>
/// Enrollment through the real relay (Kestrel, loopback HTTPS, pinned client): QR payload → sealed request → relay →
/// school EnrollmentAuthority → relay (with the device's registration) → device TryComplete → the device pushes.
/// </summary>
public sealed class EnrollmentHandOffTests
{
    private const string SchoolId = "ms-linz";
    private const string AccountId = "acct-anna";
    private const string Password = "Geige-2026!";
    private static readonly CancellationToken None = CancellationToken.None;

    [Theory]
    [InlineData("memory")]
    [InlineData("embedded")]
    public async Task A_device_enrolls_through_the_relay_and_can_then_push(string storeKind)
    {
        await using var world = await World.StartAsync(storeKind);
        EnrollmentUri.TryParse(world.Qr.ToString(), out var uri, out var parseError).Should().BeTrue(parseError);
        using var device = DeviceEnrollment.Start(uri!);
        var request = world.CreateRequest(device, Password);
        Encoding.UTF8.GetString(request).Should().NotContain(Password, "the password is sealed to the school");

        using var deviceClient = world.Client(device.SigningKey, device.DeviceId);
        var id = await deviceClient.SubmitEnrollmentAsync(uri!.SchoolId, uri.License, request, None);
        id.Should().MatchRegex("^[0-9a-f]{32}$");
        (await deviceClient.GetEnrollmentAnswerAsync(id, None)).Status.Should().Be(EnrollmentStatus.Pending);

        // Before the school answers, the device is unknown to the relay.
        var early = await FluentActions.Awaiting(() => deviceClient.PullAsync(AccountId, 0, 10, TimeSpan.Zero, None)).Should().ThrowAsync<RelayException>();
        early.Which.Problem!.Status.Should().Be(401);

        // The school pulls, decides and answers.
        using var school = world.SchoolClient();
        var page = await school.PullEnrollmentsAsync(SchoolId, 0, 100, None);
        page.Items.Should().ContainSingle();
        page.Items[0].Id.Should().Be(id);
        page.Items[0].Request.Should().Equal(request, "the relay forwards the sealed request byte for byte");
        page.Next.Should().Be(page.Items[0].Position);
        var answer = EnrollmentAnswers.Decide(world.Authority, page.Items[0], out var decideError);
        answer.Approved.Should().BeTrue(decideError.ToString());
        await school.AnswerEnrollmentAsync(SchoolId, id, answer, None);
        await school.AnswerEnrollmentAsync(SchoolId, id, answer, None); // a retry is a success
        (await school.PullEnrollmentsAsync(SchoolId, 0, 100, None)).Items.Should().BeEmpty("answered requests leave the queue");

        // The device reads the approval and verifies it against the pinned school root.
        var status = await deviceClient.GetEnrollmentAnswerAsync(id, None);
        status.Status.Should().Be(EnrollmentStatus.Approved);
        EnrollmentAnswers.TryRead(status, out var approval, out var refusal).Should().BeTrue(refusal.ToString());
        using var root = world.PublicRoot();
        device.TryComplete(approval!, root, new RosterVerifier(root, TimeProvider.System), DateTimeOffset.UtcNow, out var identity, out var sealError)
            .Should().BeTrue(sealError.ToString());
        identity!.AccountId.Should().Be(AccountId);

        // Registered in the same step: the device pushes a sealed bundle and the school pulls it.
        var bundle = Bundle.Seal(AccountId, device.DeviceId, [new SequenceRange(device.DeviceId, 1, 1)], "first lesson"u8, [device.EncryptionKey.PublicKey]);
        var pushed = await deviceClient.PushAsync(AccountId, bundle.Bytes, None);
        pushed.Position.Should().Be(1);
        var pulled = await school.PullAsync(AccountId, 0, 10, TimeSpan.Zero, None);
        pulled.Items.Should().ContainSingle().Which.Sender.Should().Be(device.DeviceId);
    }

    [Fact]
    public async Task A_wrong_password_refusal_reaches_the_device_and_registers_nothing()
    {
        await using var world = await World.StartAsync("memory");
        using var device = DeviceEnrollment.Start(world.Qr);
        using var deviceClient = world.Client(device.SigningKey, device.DeviceId);
        var id = await deviceClient.SubmitEnrollmentAsync(SchoolId, world.Qr.License, world.CreateRequest(device, "Bratsche"), None);

        using var school = world.SchoolClient();
        var pending = (await school.PullEnrollmentsAsync(SchoolId, 0, 100, None)).Items.Should().ContainSingle().Subject;
        var answer = EnrollmentAnswers.Decide(world.Authority, pending, out var error);
        answer.Approved.Should().BeFalse();
        answer.Registration.Should().BeNull();
        error.Code.Should().Be(EnrollmentErrorCode.WrongPassword);
        await school.AnswerEnrollmentAsync(SchoolId, id, answer, None);

        var status = await deviceClient.GetEnrollmentAnswerAsync(id, None);
        status.Status.Should().Be(EnrollmentStatus.Refused);
        EnrollmentAnswers.TryRead(status, out var approval, out var refusal).Should().BeFalse();
        approval.Should().BeNull();
        refusal.Code.Should().Be(EnrollmentErrorCode.WrongPassword);
        refusal.Message.Should().Contain("password is wrong");

        var push = Bundle.Seal(AccountId, device.DeviceId, [new SequenceRange(device.DeviceId, 1, 1)], "x"u8, [device.EncryptionKey.PublicKey]);
        var refused = await FluentActions.Awaiting(() => deviceClient.PushAsync(AccountId, push.Bytes, None)).Should().ThrowAsync<RelayException>();
        refused.Which.Problem!.Status.Should().Be(401, "a refused device is not registered");
        (await world.Store.GetCallerAsync(device.DeviceId, None)).Should().BeNull();
    }

    [Fact]
    public async Task Submissions_are_rate_limited_per_source_with_429_and_Retry_After()
    {
        await using var world = await World.StartAsync("memory", o =>
        {
            o.EnrollmentRateLimitBurst = 3;
            o.EnrollmentRateLimitPerMinute = 1;
        });
        using var device = DeviceEnrollment.Start(world.Qr);
        using var http = world.Http();
        var request = world.CreateRequest(device, Password);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            using var response = await Submit(http, SchoolId, request, RelayProtocol.LicenseHash(world.Qr.License.Value));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                response.Headers.RetryAfter.Should().NotBeNull();
                (await response.Content.ReadAsStringAsync()).Should().Contain("rate-limited");
            }
        }

        statuses.Should().Equal(HttpStatusCode.Accepted, HttpStatusCode.Accepted, HttpStatusCode.Accepted, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests);
        using var otherLicense = await Submit(http, SchoolId, request, RelayProtocol.LicenseHash(LicenseKey.Generate().Value));
        otherLicense.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, "the per-IP bucket is empty too");
        (await world.Store.PendingEnrollmentCountAsync(SchoolId, None)).Should().Be(3);

        // The client surfaces it as a transient RelayException (no retries here).
        using var client = world.Client(device.SigningKey, device.DeviceId, maxRetries: 0);
        var limited = await FluentActions.Awaiting(() => client.SubmitEnrollmentAsync(SchoolId, world.Qr.License, request, None)).Should().ThrowAsync<RelayException>();
        limited.Which.Problem!.Status.Should().Be(429);
        limited.Which.IsTransient.Should().BeTrue();
    }

    [Fact]
    public async Task Bad_enrollment_input_gets_a_4xx_problem_and_writes_nothing()
    {
        await using var world = await World.StartAsync("memory", o => o.MaxPendingEnrollments = 1);
        using var http = world.Http();
        var hash = RelayProtocol.LicenseHash(world.Qr.License.Value);

        (await Status(Submit(http, SchoolId, [1, 2, 3], null))).Should().Be(HttpStatusCode.BadRequest, "the license hash header is required");
        (await Status(Submit(http, SchoolId, [1, 2, 3], "XYZ"))).Should().Be(HttpStatusCode.BadRequest);
        (await Status(Submit(http, SchoolId, [], hash))).Should().Be(HttpStatusCode.BadRequest);
        (await Status(Submit(http, SchoolId, new byte[RelayProtocol.MaxEnrollmentRequestBytes + 1], hash))).Should().Be(HttpStatusCode.RequestEntityTooLarge);
        (await Status(Submit(http, "no-such-school", [1, 2, 3], hash))).Should().Be(HttpStatusCode.NotFound);
        (await world.Store.PendingEnrollmentCountAsync(SchoolId, None)).Should().Be(0);

        (await Status(Submit(http, SchoolId, [1, 2, 3], hash))).Should().Be(HttpStatusCode.Accepted);
        (await Status(Submit(http, SchoolId, [4, 5, 6], hash))).Should().Be(HttpStatusCode.TooManyRequests, "the school's queue is full");
        (await world.Store.PendingEnrollmentCountAsync(SchoolId, None)).Should().Be(1);

        (await Status(http.GetAsync(RelayProtocol.Enrollment(new string('0', 32))))).Should().Be(HttpStatusCode.NotFound);
        (await Status(http.GetAsync("/v1/enrollments/not-an-id"))).Should().Be(HttpStatusCode.NotFound);

        // The queue and the answers are the school's own: unsigned, device-signed or other-school calls are refused.
        (await Status(http.GetAsync(RelayProtocol.PullEnrollments(SchoolId, 0)))).Should().Be(HttpStatusCode.Unauthorized);
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var strangerClient = world.Client(stranger, "intruder", maxRetries: 0);
        var denied = await FluentActions.Awaiting(() => strangerClient.PullEnrollmentsAsync(SchoolId, 0, 10, None)).Should().ThrowAsync<RelayException>();
        denied.Which.Problem!.Status.Should().Be(401);

        using var school = world.SchoolClient();
        var pending = (await school.PullEnrollmentsAsync(SchoolId, 0, 10, None)).Items.Should().ContainSingle().Subject;
        var approveWithoutRegistration = new EnrollmentAnswerRequest(true, [1], AccountId, null);
        var bad = await FluentActions.Awaiting(() => school.AnswerEnrollmentAsync(SchoolId, pending.Id, approveWithoutRegistration, None)).Should().ThrowAsync<RelayException>();
        bad.Which.Problem!.Status.Should().Be(400);
        var unknown = await FluentActions.Awaiting(() => school.AnswerEnrollmentAsync(SchoolId, new string('1', 32), new EnrollmentAnswerRequest(false, [1], null, null), None))
            .Should().ThrowAsync<RelayException>();
        unknown.Which.Problem!.Status.Should().Be(404);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var otherAccount = new EnrollmentAnswerRequest(true, [1], "acct-other", new DeviceRegistration("dev-x", Convert.ToBase64String(key.ExportSubjectPublicKeyInfo())));
        var forbidden = await FluentActions.Awaiting(() => school.AnswerEnrollmentAsync(SchoolId, pending.Id, otherAccount, None)).Should().ThrowAsync<RelayException>();
        forbidden.Which.Problem!.Status.Should().Be(403);
        (await world.Store.GetCallerAsync("dev-x", None)).Should().BeNull();
        (await world.Store.GetEnrollmentAnswerAsync(pending.Id, None))!.Answered.Should().BeFalse();
    }

    [Fact]
    public async Task The_school_publishes_its_certificates_signed_and_devices_fetch_them_anonymously()
    {
        await using var world = await World.StartAsync("embedded");
        using var http = world.Http();
        (await Status(http.GetAsync(SchoolCertificates.Route(SchoolId)))).Should().Be(HttpStatusCode.NotFound, "nothing published yet");

        using var school = world.SchoolClient();
        var published = world.Certificates();
        await school.PublishSchoolCertificatesAsync(SchoolId, published, None);
        await school.PublishSchoolCertificatesAsync(SchoolId, published, None);
        (await world.Store.HeadAsync(SchoolCertificates.Mailbox(SchoolId), None)).Should().Be(1, "republishing the same certificates stores nothing new");

        // Any caller, even one the relay does not know, reads them (a device before its enrollment).
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var anonymous = world.Client(stranger, "not-yet-enrolled", maxRetries: 0);
        var fetched = await anonymous.GetSchoolCertificatesAsync(SchoolId, None);
        fetched.Root.Should().Equal(published.Root);
        fetched.Enrollment.Should().Equal(published.Enrollment);

        // Only the school publishes, and only certificates that chain to the root it sends, for its own school id.
        var notSchool = await FluentActions.Awaiting(() => anonymous.PublishSchoolCertificatesAsync(SchoolId, published, None)).Should().ThrowAsync<RelayException>();
        notSchool.Which.Problem!.Status.Should().Be(401);
        using var other = SchoolRoot.Create(SchoolId);
        var mismatch = await FluentActions.Awaiting(() => school.PublishSchoolCertificatesAsync(SchoolId, published with { Root = other.Certificate.RawData }, None))
            .Should().ThrowAsync<RelayException>();
        mismatch.Which.Problem!.Status.Should().Be(400);
        mismatch.Which.Problem.Detail.Should().Contain("does not verify against the root");
        var garbage = await FluentActions.Awaiting(() => school.PublishSchoolCertificatesAsync(SchoolId, new SchoolCertificates([1, 2, 3], [4, 5]), None))
            .Should().ThrowAsync<RelayException>();
        garbage.Which.Problem!.Status.Should().Be(400);
        var elsewhere = await FluentActions.Awaiting(() => school.PublishSchoolCertificatesAsync("another-school", published, None)).Should().ThrowAsync<RelayException>();
        elsewhere.Which.Problem!.Status.Should().Be(403);
        (await world.Store.HeadAsync(SchoolCertificates.Mailbox(SchoolId), None)).Should().Be(1, "refused publications store nothing");
        (await anonymous.GetSchoolCertificatesAsync(SchoolId, None)).Root.Should().Equal(published.Root);
    }

    [Fact]
    public async Task An_approval_for_another_account_only_confirms_a_device_that_account_s_school_registered()
    {
        await using var world = await World.StartAsync("memory", o =>
            o.Schools.Add(new SchoolRegistration(OtherAccount, OtherAccountSchool, Convert.ToBase64String(OtherSchoolKey.ExportSubjectPublicKeyInfo()))));
        using var device = DeviceEnrollment.Start(world.Qr);
        using var deviceClient = world.Client(device.SigningKey, device.DeviceId);
        var id = await deviceClient.SubmitEnrollmentAsync(SchoolId, world.Qr.License, world.CreateRequest(device, Password), None);
        using var school = world.SchoolClient();
        var pending = (await school.PullEnrollmentsAsync(SchoolId, 0, 10, None)).Items.Should().ContainSingle().Subject;
        var registration = new DeviceRegistration(device.DeviceId, Convert.ToBase64String(device.SigningKey.ExportSubjectPublicKeyInfo()));
        var answer = new EnrollmentAnswerRequest(true, [1, 2, 3], OtherAccount, registration);

        // Not registered there yet: the enrollment caller may not register a device in an account it does not belong to.
        var refused = await FluentActions.Awaiting(() => school.AnswerEnrollmentAsync(SchoolId, id, answer, None)).Should().ThrowAsync<RelayException>();
        refused.Which.Problem!.Status.Should().Be(403);
        (await world.Store.GetCallerAsync(device.DeviceId, None)).Should().BeNull();

        // Registered by that account's school (signed with its key) with another key: still refused.
        using var otherSchool = world.Client(OtherSchoolKey, OtherAccountSchool);
        using var wrongKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await otherSchool.RegisterDeviceAsync(OtherAccount, new DeviceRegistration(device.DeviceId, Convert.ToBase64String(wrongKey.ExportSubjectPublicKeyInfo())), None);
        (await FluentActions.Awaiting(() => school.AnswerEnrollmentAsync(SchoolId, id, answer, None)).Should().ThrowAsync<RelayException>()).Which.Problem!.Status.Should().Be(403);

        // Registered there with the device's key: the answer confirms it and reaches the device.
        await otherSchool.RegisterDeviceAsync(OtherAccount, registration, None);
        await school.AnswerEnrollmentAsync(SchoolId, id, answer, None);
        (await deviceClient.GetEnrollmentAnswerAsync(id, None)).Status.Should().Be(EnrollmentStatus.Approved);
        (await world.Store.GetCallerAsync(device.DeviceId, None))!.Account.Should().Be(OtherAccount);
        var bundle = Bundle.Seal(OtherAccount, device.DeviceId, [new SequenceRange(device.DeviceId, 1, 1)], "x"u8, [device.EncryptionKey.PublicKey]);
        (await deviceClient.PushAsync(OtherAccount, bundle.Bytes, None)).Position.Should().Be(1);
    }

    private const string OtherAccount = "acct-ben";
    private const string OtherAccountSchool = "school-of-acct-ben";
    private static readonly ECDsa OtherSchoolKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    private static async Task<HttpStatusCode> Status(Task<HttpResponseMessage> call)
    {
        using var response = await call;
        return response.StatusCode;
    }

    private static Task<HttpResponseMessage> Submit(HttpClient http, string school, byte[] body, string? licenseHash)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        if (licenseHash is not null)
        {
            content.Headers.Add(RelayProtocol.LicenseHashHeader, licenseHash);
        }

        return http.PostAsync(RelayProtocol.Enrollments(school), content);
    }

    /// <summary>A school (root, enrollment key, personnel, authority) and a relay serving it.</summary>
    private sealed class World : IAsyncDisposable
    {
        private readonly WebApplication app;
        private readonly SchoolRoot root;
        private readonly EncryptionKeyPair enrollmentKey;
        private readonly X509Certificate2 enrollmentCertificate;
        private readonly ECDsa schoolKey;
        private readonly string data;

        private World(WebApplication app, SchoolRoot root, EncryptionKeyPair enrollmentKey, X509Certificate2 enrollmentCertificate, ECDsa schoolKey,
            string data, EnrollmentAuthority authority, EnrollmentUri qr, IMailboxStore store, Uri baseAddress, string fingerprint)
        {
            this.app = app;
            this.root = root;
            this.enrollmentKey = enrollmentKey;
            this.enrollmentCertificate = enrollmentCertificate;
            this.schoolKey = schoolKey;
            this.data = data;
            Authority = authority;
            Qr = qr;
            Store = store;
            BaseAddress = baseAddress;
            Fingerprint = fingerprint;
        }

        public EnrollmentAuthority Authority { get; }

        public EnrollmentUri Qr { get; }

        public IMailboxStore Store { get; }

        public Uri BaseAddress { get; }

        public string Fingerprint { get; }

        public static async Task<World> StartAsync(string storeKind, Action<RelayOptions>? configure = null)
        {
            var time = TimeProvider.System;
            var sealing = new SealingOptions { Pbkdf2Iterations = 1_000 };
            var root = SchoolRoot.Create(SchoolId, time);
            var enrollmentKey = EncryptionKeyPair.Generate();
            var enrollmentCertificate = root.IssueEnrollmentCertificate(enrollmentKey.PublicKey, time.GetUtcNow(), TimeSpan.FromDays(365));
            var personnel = new InMemoryPersonnelStore();
            var license = LicenseKey.Generate();
            personnel.Upsert(new PersonnelRecord(license, AccountId, PasswordHash.Create(Password, sealing.Pbkdf2Iterations)));
            var authority = new EnrollmentAuthority(root, enrollmentKey, personnel, new InMemorySchoolRosterStore(), Options.Create(sealing), time);
            var schoolKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

            var data = Directory.CreateTempSubdirectory("imikelgo-enroll-").FullName;
            IMailboxStore store = storeKind == "memory"
                ? new InMemoryMailboxStore()
                : new SqliteMailboxStore(new SqliteMailboxStoreOptions { Path = Path.Combine(data, "relay.db") });
            var options = new RelayOptions { DataDirectory = data, StoreFactory = _ => store };
            options.Urls.Add("https://127.0.0.1:0");
            options.Schools.Add(new SchoolRegistration(AccountId, SchoolId, Convert.ToBase64String(schoolKey.ExportSubjectPublicKeyInfo())));
            configure?.Invoke(options);
            var app = RelayHost.Create(options);
            await app.StartAsync();
            var baseAddress = new Uri(app.Urls.First());
            var fingerprint = app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
            var qr = new EnrollmentUri(baseAddress, SchoolId, root.Fingerprint, license);
            return new World(app, root, enrollmentKey, enrollmentCertificate, schoolKey, data, authority, qr, store, baseAddress, fingerprint);
        }

        public X509Certificate2 PublicRoot() => X509CertificateLoader.LoadCertificate(root.Certificate.RawData);

        public SchoolCertificates Certificates() => new(root.Certificate.RawData, enrollmentCertificate.RawData);

        public byte[] CreateRequest(DeviceEnrollment device, string password)
        {
            using var publicRoot = PublicRoot();
            device.TryCreateRequest(publicRoot, enrollmentCertificate, password, DateTimeOffset.UtcNow, out var request, out var error)
                .Should().BeTrue(error.ToString());
            return request!;
        }

        public RelayClient Client(ECDsa key, string callerId, int maxRetries = 2) =>
            RelayClient.Create(new RelayClientOptions
            {
                BaseAddress = BaseAddress,
                PinnedCertificateSha256 = Fingerprint,
                MaxRetries = maxRetries,
                RetryBaseDelay = TimeSpan.FromMilliseconds(20),
                UseJitter = false,
            }, new EcdsaRequestSigner(key, ownsKey: false, callerId: callerId));

        public RelayClient SchoolClient() => Client(schoolKey, SchoolId);

        public HttpClient Http()
        {
            var handler = new HttpClientHandler
            {
                ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
                    certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), Fingerprint, StringComparison.OrdinalIgnoreCase),
            };
            return new HttpClient(handler) { BaseAddress = BaseAddress };
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
            (Store as IDisposable)?.Dispose();
            root.Dispose();
            enrollmentKey.Dispose();
            enrollmentCertificate.Dispose();
            schoolKey.Dispose();
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
