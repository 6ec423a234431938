using System.Text.Json;
using IMikelGo.Engine;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;

namespace IMikelGo.Device.Tests;

/// <summary>
/// The default enrollment channel end to end against the real school connector: the device fetches the school's
/// certificates from the relay (checked against the QR code's root fingerprint), seals its request, submits it to the
/// relay pinned by the QR code's relay fingerprint; the connector (<see cref="School.Connector.SchoolConnector.ProcessEnrollmentsAsync"/>)
/// decides, records, registers and answers with the account's peer keys; the device verifies and syncs.
/// </summary>
public sealed class RelayEnrollmentTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task A_second_device_learns_the_first_ones_key_from_the_answer_and_seals_for_it_at_once()
    {
        await using var world = await World.StartAsync();
        world.DeviceOptions("x").Enrollment.Should().BeNull("the relay hand-off is the default channel");
        var phone = await world.EnrolledDeviceAsync("phone");
        phone.Account.Should().Be(World.Account);
        phone.Relay.Should().Be(new RelaySettings(world.RelayAddress, world.Fingerprint));
        (await world.Store.GetCallerAsync(phone.DeviceId!.Value.Value, None))!.Account.Should().Be(World.Account, "registered in the teacher's own account");
        var laptop = await world.EnrolledDeviceAsync("laptop");

        // The phone has never synced, so its key is not in the log yet: only the laptop's enrollment answer names it.
        (await world.SchoolSyncAsync()).Failures.Should().BeEmpty();
        (await laptop.SyncAsync(null, None)).Refused.Should().BeEmpty();
        (await laptop.RecordAbsenceAsync(World.Thursday(2), World.Lena, excused: true, "krank", None)).Succeeded.Should().BeTrue();
        (await laptop.SyncAsync(null, None)).Sent.Should().BeGreaterThanOrEqualTo(1);

        var first = await phone.SyncAsync(null, None);
        first.Refused.Should().BeEmpty();
        phone.Week(World.Thursday(2).Date).Single(l => l.Occurrence == World.Thursday(2)).Students.Single().Absent
            .Should().BeTrue("the laptop sealed its bundle for the phone's key from the answer");
        await world.ConvergeAsync(phone, laptop);
        phone.Digest.Should().Be(laptop.Digest).And.Be(world.School.Calendar.Digest());
    }

    [Fact]
    public async Task A_wrong_password_is_refused_with_a_clear_reason_and_the_vault_stays_not_enrolled()
    {
        await using var world = await World.StartAsync();
        var device = await world.OpenDeviceAsync("phone");

        var refused = await FluentActions.Awaiting(() => world.EnrollAsync(device, Input(world, "Bratsche"))).Should().ThrowAsync<EnrollmentRefusedException>();
        refused.Which.Reason.Should().Be(EnrollmentRefusalReason.WrongPassword);
        refused.Which.Message.Should().Contain("password is wrong");
        device.State.Should().Be(DeviceState.NotEnrolled);
        device.Account.Should().BeNull();
        await FluentActions.Awaiting(() => device.SyncAsync(null, None)).Should().ThrowAsync<InvalidOperationException>();

        // The right password afterwards enrolls.
        await world.EnrollAsync(device, Input(world, world.Password));
        device.State.Should().Be(DeviceState.Unlocked);
    }

    [Fact]
    public async Task A_relay_serving_a_substituted_school_root_is_refused_before_anything_is_sent()
    {
        await using var world = await World.StartAsync();

        // A compromised relay serves its own root and enrollment certificate (same school id) instead of the school's.
        using var forged = SchoolRoot.Create(World.SchoolId);
        using var forgedKey = EncryptionKeyPair.Generate();
        using var forgedEnrollment = forged.IssueEnrollmentCertificate(forgedKey.PublicKey, DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        var body = JsonSerializer.SerializeToUtf8Bytes(new { root = forged.Certificate.RawData, enrollment = forgedEnrollment.RawData });
        await world.Store.AppendAsync(SchoolCertificates.Mailbox(World.SchoolId), Guid.NewGuid(), World.SchoolId, body, None);

        var device = await world.OpenDeviceAsync("phone");
        var refused = await FluentActions.Awaiting(() => world.EnrollAsync(device, Input(world, world.Password))).Should().ThrowAsync<EnrollmentRefusedException>();
        refused.Which.Reason.Should().Be(EnrollmentRefusalReason.InvalidAnswer);
        refused.Which.Message.Should().Contain("does not match the fingerprint in the enrollment code");
        device.State.Should().Be(DeviceState.NotEnrolled);
        (await world.Store.PendingEnrollmentCountAsync(World.SchoolId, None)).Should().Be(0, "the password was never sealed to the forged key");
        world.Connector.Devices().Should().BeEmpty();
    }

    [Fact]
    public async Task No_answer_in_time_a_rate_limit_no_certificates_and_a_code_without_relay_pin_are_clear_refusals()
    {
        await using var world = await World.StartAsync(o =>
        {
            o.EnrollmentRateLimitBurst = 2;
            o.EnrollmentRateLimitPerMinute = 1;
        });
        var device = await world.OpenDeviceAsync("phone", o =>
        {
            o.Timeout = TimeSpan.FromMilliseconds(400);
            o.ConfigureRelay = r => r.MaxRetries = 0; // a 429 surfaces at once instead of being retried after Retry-After
        });

        // The connector does not run: nobody answers.
        var timeout = await FluentActions.Awaiting(() => device.EnrollAsync(Input(world, world.Password), None)).Should().ThrowAsync<EnrollmentRefusedException>();
        timeout.Which.Reason.Should().Be(EnrollmentRefusalReason.Timeout);
        timeout.Which.Message.Should().Contain("did not answer");
        device.State.Should().Be(DeviceState.NotEnrolled);

        await FluentActions.Awaiting(() => device.EnrollAsync(Input(world, world.Password), None)).Should().ThrowAsync<EnrollmentRefusedException>();
        var limited = await FluentActions.Awaiting(() => device.EnrollAsync(Input(world, world.Password), None)).Should().ThrowAsync<EnrollmentRefusedException>();
        limited.Which.Reason.Should().Be(EnrollmentRefusalReason.RateLimited);
        limited.Which.Message.Should().Contain("try again");
        limited.Which.RetryAfter.Should().NotBeNull();
        device.State.Should().Be(DeviceState.NotEnrolled);

        var unpinned = new EnrollmentUri(world.RelayAddress, World.SchoolId, world.Connector.RootFingerprint, world.License).ToString();
        var noPin = await FluentActions.Awaiting(() => device.EnrollAsync(new EnrollmentInput(unpinned, world.License.Value, world.Password, World.Pin), None))
            .Should().ThrowAsync<EnrollmentRefusedException>();
        noPin.Which.Reason.Should().Be(EnrollmentRefusalReason.RelayNotTrusted);

        var otherSchool = new EnrollmentUri(world.RelayAddress, "other-school", world.Connector.RootFingerprint, world.License, world.Fingerprint).ToString();
        var none = await FluentActions.Awaiting(() => device.EnrollAsync(new EnrollmentInput(otherSchool, world.License.Value, world.Password, World.Pin), None))
            .Should().ThrowAsync<EnrollmentRefusedException>();
        none.Which.Reason.Should().Be(EnrollmentRefusalReason.SchoolCertificatesUnavailable);
        none.Which.Message.Should().Contain("no certificates of this school");
        device.State.Should().Be(DeviceState.NotEnrolled);
    }

    private static EnrollmentInput Input(World world, string password) => new(world.EnrollmentUri, world.License.Value, password, World.Pin);
}
