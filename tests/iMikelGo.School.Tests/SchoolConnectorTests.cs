using FluentAssertions;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.School.Connector;
using Xunit;

namespace IMikelGo.School.Tests;

/// <summary>The school connector end to end: SQLite store, real relay over pinned HTTPS, real teacher devices.</summary>
public sealed class SchoolConnectorTests
{
    private const string Data = "data/xhstt/ES-SS-08-SpainSchool.xml";
    private static readonly DateOnly Monday = new(2026, 9, 21);
    private static CancellationToken None => CancellationToken.None;

    [SharedFileFact(Data)]
    public async Task Import_license_enroll_publish_sync_absence_report_end_to_end()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        var published = await school.PublishAsync(null, None);
        published.Accounts.Should().Be(66);
        await world.StartRelayAsync(school.Accounts);

        var teacher = TeacherWithLessons(school);
        var license = await school.IssueLicenseAsync(teacher, None);
        license.Uri.ToString().Should().StartWith("imikelgo://enroll?relay=");
        license.QrSvg().Should().Contain("<svg");
        var device = await world.EnrolledDeviceAsync("phone", license);

        (await school.SyncAsync(null, null, None)).Failures.Should().BeEmpty();
        var first = await device.SyncAsync(null, None);
        first.Refused.Should().BeEmpty();
        device.Week(Monday).Select(l => l.Occurrence).Should().BeEquivalentTo(SchoolWeek(school, teacher), "the device sees exactly its teacher's lessons");
        device.Week(Monday).Should().NotBeEmpty();

        var lesson = device.Week(Monday).First(l => l.Students.Count > 0);
        (await device.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, false, "ill", None)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, None);
        (await school.SyncAsync(teacher, null, None)).EventsReceived.Should().BeGreaterThanOrEqualTo(1);

        var report = school.Report();
        report.Absences.Should().ContainSingle(a => a.Account == teacher.Value && a.Student == lesson.Students[0].Id.Value && a.Absences == 1);
        school.Devices().Should().ContainSingle(d => d.Account == teacher && d.Device == device.DeviceId && d.HasEncryptionKey && d.LastContact != null);

        // The store survives the connector: reopened, the absence is still in the report, nothing is pending.
        school = await world.ReopenAsync();
        school.Report().Absences.Should().ContainSingle(a => a.Account == teacher.Value);
        (await school.SyncAsync(teacher, null, None)).EventsSent.Should().Be(0);
    }

    [SharedFileFact(Data)]
    public async Task Relay_down_during_a_publish_delays_but_everything_arrives_once()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var teacher = TeacherWithLessons(school);
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(teacher, None));

        await world.StopRelayAsync();
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[1], None);
        var diff = await school.PublishAsync(null, None);
        diff.Rescheduled.Should().BeGreaterThan(0);
        var down = await school.SyncAsync(teacher, null, None);
        down.Failures.Should().NotBeEmpty("the relay is down");
        (await school.SyncAsync(teacher, null, None)).Failures.Should().NotBeEmpty();

        await world.StartRelayAsync(school.Accounts);
        var up = await school.SyncAsync(teacher, null, None);
        up.Failures.Should().BeEmpty();
        var result = await device.SyncAsync(null, None);
        result.Refused.Should().BeEmpty();
        result.Details!.DuplicateEvents.Should().Be(0, "every event arrives once");
        device.Week(Monday).Select(l => (l.Occurrence, l.Date, l.Start)).Should().BeEquivalentTo(
            school.ReplicaOf(teacher)!.Calendar.Lessons().Where(l => l.Date >= Monday && l.Date < Monday.AddDays(7))
                .Select(l => (l.Occurrence, l.Date, TimeOnly.FromTimeSpan(TimeSpan.FromMinutes(l.StartMinute)))));
        await AssertDistinctBundlesAsync(world, teacher);
    }

    [SharedFileFact(Data)]
    public async Task Connector_killed_mid_publish_and_restarted_sends_everything_once()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var teacher = TeacherWithLessons(school);
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(teacher, None));

        CrashAfterPush? crash = null;
        var crashing = new SchoolConnectorSettings
        {
            Pbkdf2Iterations = world.Options.Pbkdf2Iterations,
            RelayAddress = world.Options.RelayAddress,
            RelayCertificateSha256 = world.Options.RelayCertificateSha256,
            ConfigureRelay = world.Options.ConfigureRelay,
            WrapRelayClient = c => crash = new CrashAfterPush(c),
        };
        school = await world.ReopenAsync(crashing);
        await ((Func<Task>)(() => school.SyncAsync(teacher, null, None))).Should().ThrowAsync<InvalidOperationException>();
        crash!.Crashed.Should().BeTrue();

        school = await world.ReopenAsync();
        var resumed = await school.SyncAsync(teacher, null, None);
        resumed.Failures.Should().BeEmpty();
        resumed.DuplicatePushes.Should().BeGreaterThanOrEqualTo(1, "the stored outgoing bundle is re-sent under the same id");
        var result = await device.SyncAsync(null, None);
        result.Details!.DuplicateEvents.Should().Be(0);
        device.Week(Monday).Select(l => l.Occurrence).Should().BeEquivalentTo(SchoolWeek(school, teacher));
        await AssertDistinctBundlesAsync(world, teacher);
    }

    [SharedFileFact(Data)]
    public async Task Wipe_revokes_in_the_log_and_at_the_relay_and_the_device_wipes()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var teacher = TeacherWithLessons(school);
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(teacher, None));
        await school.SyncAsync(teacher, null, None);
        await device.SyncAsync(null, None);

        (await school.WipeAsync(teacher, device.DeviceId, "lost phone", None)).Should().Equal(device.DeviceId!.Value);
        school.Devices().Should().ContainSingle(d => d.Device == device.DeviceId && d.Revoked && d.RevocationReason == "lost phone");
        (await device.SyncAsync(null, None)).Wiped.Should().BeTrue();
    }

    private static AccountId TeacherWithLessons(SchoolConnector school) =>
        school.Accounts.First(a => school.ReplicaOf(a)!.Ledger.Applied.Any(e => e.Account == a && e.Payload is SeriesPublished p && p.Students.Length > 0));

    private static IEnumerable<OccurrenceId> SchoolWeek(SchoolConnector school, AccountId teacher) =>
        school.ReplicaOf(teacher)!.Calendar.Lessons().Where(l => l.Date >= Monday && l.Date < Monday.AddDays(7)).Select(l => l.Occurrence);

    private static async Task AssertDistinctBundlesAsync(ConnectorWorld world, AccountId account)
    {
        var bundles = await world.Mailboxes.ReadAsync(account.Value, 0, 10_000, None);
        bundles.Select(b => b.BundleId).Should().OnlyHaveUniqueItems();
    }
}
