using System.Collections.Immutable;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using Microsoft.Extensions.Options;

namespace IMikelGo.Device.Tests;

/// <summary>
/// The default enrollment channel end to end: the device seals its request to the school's enrollment key, submits it
/// to the real relay pinned by the QR code's relay fingerprint, a school answers through the relay
/// (<see cref="EnrollmentAnswers.Decide(EnrollmentAuthority, PendingEnrollment, Func{string, IReadOnlyDictionary{string, RecipientPublicKey}}, out EnrollmentError)"/>),
/// and the device verifies the approval against the pinned school root, then syncs.
/// </summary>
public sealed class RelayEnrollmentTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Devices_enroll_through_the_relay_by_default_and_can_then_sync()
    {
        await using var world = await World.StartAsync();
        await using var school = EnrollmentSchool.Start(world);
        var phoneOptions = school.DeviceOptions("phone");
        phoneOptions.Enrollment.Should().BeNull("the relay hand-off is the default channel");

        await using var relayPhone = await TeacherDevice.OpenAsync(phoneOptions, None);
        var phoneId = await relayPhone.EnrollAsync(school.Input(World.Password), None);
        relayPhone.State.Should().Be(DeviceState.Unlocked);
        relayPhone.Account.Should().Be(World.Account);
        relayPhone.Relay.Should().Be(new RelaySettings(world.RelayAddress, world.Fingerprint));
        (await world.Store.GetCallerAsync(phoneId.Value, None)).Should().NotBeNull("the approval registered the device at the relay");

        await using var relayLaptop = await TeacherDevice.OpenAsync(school.DeviceOptions("laptop"), None);
        await relayLaptop.EnrollAsync(school.Input(World.Password), None);
        school.PeersSent.Should().HaveCount(2);
        school.PeersSent[0].Should().BeEmpty();
        school.PeersSent[1].Keys.Should().Equal([phoneId.Value], "the second device learns the first one's key");

        await world.ConvergeAsync(relayPhone, relayLaptop);
        relayPhone.Week(World.Thursday(2).Date).Should().HaveCount(2, "the school's timetable arrived");
        (await relayPhone.RecordAbsenceAsync(World.Thursday(2), World.Lena, excused: true, "krank", None)).Succeeded.Should().BeTrue();
        (await relayPhone.SyncAsync(null, None)).Sent.Should().BeGreaterThanOrEqualTo(1);
        (await relayLaptop.SyncAsync(null, None)).Received.Should().Be(1);
        relayLaptop.Week(World.Thursday(2).Date).Single(l => l.Occurrence == World.Thursday(2)).Students.Single().Absent.Should().BeTrue();
        (await world.SchoolSyncAsync()).EventsReceived.Should().Be(1);
        world.School.Calendar.Lessons().Single(l => l.Occurrence == World.Thursday(2)).Absent.Should().ContainKey(World.Lena.Value);
    }

    [Fact]
    public async Task A_wrong_password_is_refused_with_a_clear_reason_and_the_vault_stays_not_enrolled()
    {
        await using var world = await World.StartAsync();
        await using var school = EnrollmentSchool.Start(world);
        await using var device = await TeacherDevice.OpenAsync(school.DeviceOptions("phone"), None);

        var refused = await FluentActions.Awaiting(() => device.EnrollAsync(school.Input("Bratsche"), None)).Should().ThrowAsync<EnrollmentRefusedException>();
        refused.Which.Reason.Should().Be(EnrollmentRefusalReason.WrongPassword);
        refused.Which.Message.Should().Contain("password is wrong");
        device.State.Should().Be(DeviceState.NotEnrolled);
        device.Account.Should().BeNull();
        await FluentActions.Awaiting(() => device.SyncAsync(null, None)).Should().ThrowAsync<InvalidOperationException>();

        // The right password afterwards enrolls.
        await device.EnrollAsync(school.Input(World.Password), None);
        device.State.Should().Be(DeviceState.Unlocked);
    }

    [Fact]
    public async Task No_answer_in_time_a_rate_limit_and_a_code_without_relay_pin_are_clear_refusals()
    {
        await using var world = await World.StartAsync(o =>
        {
            o.EnrollmentRateLimitBurst = 2;
            o.EnrollmentRateLimitPerMinute = 1;
        });
        await using var school = EnrollmentSchool.Create(world); // not answering
        var options = school.DeviceOptions("phone", o => o.Timeout = TimeSpan.FromMilliseconds(400));
        await using var device = await TeacherDevice.OpenAsync(options, None);

        var timeout = await FluentActions.Awaiting(() => device.EnrollAsync(school.Input(World.Password), None)).Should().ThrowAsync<EnrollmentRefusedException>();
        timeout.Which.Reason.Should().Be(EnrollmentRefusalReason.Timeout);
        timeout.Which.Message.Should().Contain("did not answer");
        device.State.Should().Be(DeviceState.NotEnrolled);

        await FluentActions.Awaiting(() => device.EnrollAsync(school.Input(World.Password), None)).Should().ThrowAsync<EnrollmentRefusedException>();
        var limited = await FluentActions.Awaiting(() => device.EnrollAsync(school.Input(World.Password), None)).Should().ThrowAsync<EnrollmentRefusedException>();
        limited.Which.Reason.Should().Be(EnrollmentRefusalReason.RateLimited);
        limited.Which.Message.Should().Contain("try again");
        limited.Which.RetryAfter.Should().NotBeNull();
        device.State.Should().Be(DeviceState.NotEnrolled);

        var unpinned = new EnrollmentUri(world.RelayAddress, school.SchoolId, school.RootFingerprint, world.License).ToString();
        var noPin = await FluentActions.Awaiting(() => device.EnrollAsync(new EnrollmentInput(unpinned, world.License.Value, World.Password, World.Pin), None))
            .Should().ThrowAsync<EnrollmentRefusedException>();
        noPin.Which.Reason.Should().Be(EnrollmentRefusalReason.RelayNotTrusted);
        device.State.Should().Be(DeviceState.NotEnrolled);
    }

    /// <summary>
    /// The school side of the hand-off, as the school connector will run it: root, certified enrollment key, personnel,
    /// <see cref="EnrollmentAuthority"/>; it pulls the relay's queue, answers with
    /// <see cref="EnrollmentAnswers.Decide(EnrollmentAuthority, PendingEnrollment, Func{string, IReadOnlyDictionary{string, RecipientPublicKey}}, out EnrollmentError)"/>
    /// (peer keys included) and records an approved device in the teacher's log.
    /// </summary>
    private sealed class EnrollmentSchool : IAsyncDisposable
    {
        private readonly World _world;
        private readonly SchoolRoot _root;
        private readonly EncryptionKeyPair _enrollmentKey;
        private readonly byte[] _enrollmentCertificate;
        private readonly EnrollmentAuthority _authority;
        private readonly CancellationTokenSource _stop = new();
        private Task _loop = Task.CompletedTask;
        private long _cursor;

        private EnrollmentSchool(World world)
        {
            _world = world;
            SchoolId = world.School.Id.Value; // the school's relay caller id
            _root = SchoolRoot.Create(SchoolId);
            _enrollmentKey = EncryptionKeyPair.Generate();
            using var certificate = _root.IssueEnrollmentCertificate(_enrollmentKey.PublicKey, DateTimeOffset.UtcNow, TimeSpan.FromDays(365));
            _enrollmentCertificate = certificate.RawData;
            var sealing = new SealingOptions { Pbkdf2Iterations = 1_000 };
            var personnel = new InMemoryPersonnelStore();
            personnel.Upsert(new PersonnelRecord(world.License, World.Account, PasswordHash.Create(World.Password, sealing.Pbkdf2Iterations)));
            _authority = new EnrollmentAuthority(_root, _enrollmentKey, personnel, new InMemorySchoolRosterStore(), Options.Create(sealing), TimeProvider.System);
        }

        public string SchoolId { get; }

        public string RootFingerprint => _root.Fingerprint;

        /// <summary>The peer keys sent with each approval, in order.</summary>
        public List<IReadOnlyDictionary<string, RecipientPublicKey>> PeersSent { get; } = [];

        /// <summary>The QR payload with the relay pin.</summary>
        public string Qr => new EnrollmentUri(_world.RelayAddress, SchoolId, _root.Fingerprint, _world.License, _world.Fingerprint).ToString();

        public static EnrollmentSchool Create(World world) => new(world);

        public static EnrollmentSchool Start(World world)
        {
            var school = new EnrollmentSchool(world);
            school._loop = school.RunAsync(school._stop.Token);
            return school;
        }

        public EnrollmentInput Input(string password) => new(Qr, _world.License.Value, password, World.Pin);

        public TeacherDeviceOptions DeviceOptions(string name, Action<RelayEnrollmentOptions>? configure = null)
        {
            var options = _world.DeviceOptions(name + "-relay");
            options.Enrollment = null;
            options.ConfigureRelay = o =>
            {
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                o.MaxRetries = 0;
            };
            options.ConfigureRelayEnrollment = o =>
            {
                o.SchoolCertificates = (_, _) => Task.FromResult(new SchoolEnrollmentCertificates(_root.Certificate.RawData, _enrollmentCertificate));
                o.FirstPollDelay = TimeSpan.FromMilliseconds(20);
                o.MaxPollDelay = TimeSpan.FromMilliseconds(200);
                o.Timeout = TimeSpan.FromSeconds(30);
                configure?.Invoke(o);
            };
            return options;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
            _enrollmentKey.Dispose();
            _root.Dispose();
        }

        private async Task RunAsync(CancellationToken cancellationToken)
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var page = await _world.SchoolRelay.PullEnrollmentsAsync(SchoolId, _cursor, 100, cancellationToken);
                foreach (var pending in page.Items)
                {
                    var peers = _world.DeviceKeys.ToDictionary(k => k.Key.Value, k => k.Value);
                    var answer = EnrollmentAnswers.Decide(_authority, pending, _ => peers, out _);
                    if (answer.Approved)
                    {
                        var (device, signingKey, encryptionKey) = ReadRequest(pending.Request);
                        var recorded = _world.School.Record(new DeviceEnrolled(device, "enrolled via relay", signingKey));
                        recorded.Succeeded.Should().BeTrue(recorded.Error);
                        _world.DeviceKeys[device] = encryptionKey;
                        PeersSent.Add(peers);
                    }

                    await _world.SchoolRelay.AnswerEnrollmentAsync(SchoolId, pending.Id, answer, cancellationToken);
                }

                _cursor = page.Next;
                await Task.Delay(20, cancellationToken);
            }
        }

        private static (ReplicaId Device, ImmutableArray<byte> SigningKey, RecipientPublicKey EncryptionKey) ReadRequest(byte[] request)
        {
            using var outer = JsonDocument.Parse(request);
            using var body = JsonDocument.Parse(outer.RootElement.GetProperty("body").GetBytesFromBase64());
            var b = body.RootElement;
            RecipientPublicKey.TryParse(b.GetProperty("encryptionKey").GetBytesFromBase64(), out var key, out var error).Should().BeTrue(error.ToString());
            return (new ReplicaId(b.GetProperty("device").GetString()!), [.. b.GetProperty("signingKey").GetBytesFromBase64()], key!);
        }
    }
}
