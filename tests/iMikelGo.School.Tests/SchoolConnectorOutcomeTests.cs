using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.School.Connector;
using Xunit;

namespace IMikelGo.School.Tests;

/// <summary>
/// What the connector tells its caller: a license for an account outside the timetable is refused, a sync stops at an
/// unreachable relay (or an impostor certificate) and names the accounts it did not try, a wipe says whether the relay
/// took the revocation. A small JSON school (three teachers), SQLite store, real relay over pinned HTTPS.
/// </summary>
public sealed class SchoolConnectorOutcomeTests
{
    private static readonly AccountId Anna = new("anna");
    private static readonly AccountId Ben = new("ben");
    private static readonly AccountId Clara = new("clara");

    private static CancellationToken None => CancellationToken.None;

    [Fact]
    public async Task A_license_for_an_account_outside_the_published_timetable_is_refused_and_nothing_is_stored()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("small-school");
        await school.ImportAsync("json", Timetable, null, None);

        // Imported but not yet published: the accounts do not exist yet.
        var pending = () => school.IssueLicenseAsync(Anna, None);
        (await pending.Should().ThrowAsync<KeyNotFoundException>()).Which.Message.Should().Contain("unknown account 'anna'").And.Contain("not in the published timetable");

        await school.PublishAsync(null, None);
        var unknown = () => school.IssueLicenseAsync(new AccountId("nobody"), None);
        (await unknown.Should().ThrowAsync<KeyNotFoundException>()).Which.Message.Should().Contain("unknown account 'nobody'").And.Contain("3 accounts");
        (await world.Store!.ListValuesAsync("personnel/", None)).Should().BeEmpty("a refused license leaves no personnel record");

        var issued = await school.IssueLicenseAsync(Anna, None);
        issued.Account.Should().Be(Anna);
        (await world.Store!.ListValuesAsync("personnel/", None)).Should().ContainSingle();
    }

    [Fact]
    public async Task Sync_stops_at_an_unreachable_relay_and_reports_the_other_accounts_as_not_attempted()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("small-school");
        await school.ImportAsync("json", Timetable, null, None);
        await school.PublishAsync(null, None);
        school.Accounts.Should().Equal(Anna, Ben, Clara);

        // The relay is down (started once for its certificate pin): the first account fails after the client's retry, the others are not tried.
        await world.StartRelayAsync(school.Accounts);
        await world.StopRelayAsync();
        var progress = new List<SchoolProgress>();
        var down = await school.SyncAsync(null, new SynchronousProgress(progress), None);
        down.Failures.Should().ContainSingle().Which.Should().StartWith("anna: ");
        down.NotAttempted.Should().Equal(Ben, Clara);
        down.Complete.Should().BeFalse();
        progress.Should().ContainSingle("only the attempted account reports progress");

        await world.StartRelayAsync(school.Accounts);
        var up = await school.SyncAsync(null, null, None);
        up.Complete.Should().BeTrue();
        up.Failures.Should().BeEmpty();
        up.NotAttempted.Should().BeEmpty();
    }

    [Fact]
    public async Task Sync_stops_at_a_relay_presenting_another_certificate()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("small-school");
        await school.ImportAsync("json", Timetable, null, None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);

        var impostorPin = new SchoolConnectorSettings
        {
            Pbkdf2Iterations = world.Options.Pbkdf2Iterations,
            RelayAddress = world.Options.RelayAddress,
            RelayCertificateSha256 = new string('0', 64),
            ConfigureRelay = world.Options.ConfigureRelay,
        };
        school = await world.ReopenAsync(impostorPin);
        var result = await school.SyncAsync(null, null, None);
        result.Failures.Should().ContainSingle();
        result.NotAttempted.Should().Equal(Ben, Clara);
        (await world.Store!.UnacknowledgedAsync(Anna.Value, None)).Should().NotBeEmpty("nothing was sent to the impostor");
    }

    [Fact]
    public async Task A_refusal_for_one_account_does_not_stop_the_others()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("small-school");
        await school.ImportAsync("json", Timetable, null, None);
        await school.PublishAsync(null, None);

        // The relay knows Ben's and Clara's school callers but not Anna's: Anna is refused (not an outage), the rest sync.
        await world.StartRelayAsync([Ben, Clara]);
        var progress = new List<SchoolProgress>();
        var result = await school.SyncAsync(null, new SynchronousProgress(progress), None);
        result.Failures.Should().ContainSingle().Which.Should().StartWith("anna: ");
        result.NotAttempted.Should().BeEmpty();
        progress.Should().HaveCount(3, "every account was tried");
    }

    [Fact]
    public async Task Wipe_says_whether_the_relay_took_the_revocation()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("small-school");
        await school.ImportAsync("json", Timetable, null, None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var phone = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(Anna, None));
        var tablet = await world.EnrolledDeviceAsync("tablet", await school.IssueLicenseAsync(Anna, None));
        (await school.SyncAsync(Anna, null, None)).Complete.Should().BeTrue();

        await world.StopRelayAsync();
        var offline = await school.WipeAsync(Anna, phone.DeviceId, "lost phone", None);
        offline.Revoked.Should().Equal(phone.DeviceId!.Value);
        offline.RelayReached.Should().BeFalse();
        offline.RelayError.Should().Contain("revocation anna/" + phone.DeviceId!.Value.Value);
        school.Devices().Should().Contain(d => d.Device == phone.DeviceId && d.Revoked, "revoked in the log even without the relay");

        await world.StartRelayAsync(school.Accounts);
        (await school.SyncAsync(Anna, null, None)).Complete.Should().BeTrue("the pending revocation is sent by the sync");
        (await phone.SyncAsync(null, None)).Wiped.Should().BeTrue();

        var online = await school.WipeAsync(Anna, tablet.DeviceId, "stolen", None);
        online.Revoked.Should().Equal(tablet.DeviceId!.Value);
        online.RelayReached.Should().BeTrue();
        online.RelayError.Should().BeNull();
        (await tablet.SyncAsync(null, None)).Wiped.Should().BeTrue();
    }

    [Fact]
    public async Task A_wipe_without_relay_settings_is_recorded_with_the_licenses_deactivated_and_says_the_relay_waits()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("small-school");
        await school.ImportAsync("json", Timetable, null, None);
        await school.PublishAsync(null, None);
        await school.IssueLicenseAsync(Anna, None);

        // No relay certificate pin configured: the relay cannot be asked, which is an outcome of the wipe, not a failure of it.
        var wiped = await school.WipeAsync(Anna, null, "left the school", None);
        wiped.RelayReached.Should().BeFalse();
        wiped.RelayError.Should().Contain("the relay is not configured").And.Contain("PinnedCertificateSha256");
        var licenses = await world.Store!.ListValuesAsync("personnel/", None);
        System.Text.Encoding.UTF8.GetString(licenses.Should().ContainSingle().Which.Value).Should().Contain("\"active\":false", "the wipe is recorded; only its sending waits for the next sync");
        (await world.Store.ListValuesAsync("pending-revocation/", None)).Should().ContainSingle(v => v.Key.EndsWith("/*", StringComparison.Ordinal), "the revocation waits to be sent");
    }

    private static string Timetable => """
        {
          "school": "Musikschule Klein",
          "term": { "start": "2026-09-14", "end": "2026-12-18" },
          "teachers": [ { "id": "anna", "name": "Anna Keller" }, { "id": "ben", "name": "Ben Roth" }, { "id": "clara", "name": "Clara Vogt" } ],
          "groups": [ { "id": "ensemble-a", "name": "Ensemble A", "members": [ { "id": "lea", "name": "Lea M." } ] } ],
          "rooms": [ { "id": "r101", "name": "Raum 101" } ],
          "lessons": [
            { "id": "piano-1", "subject": "Klavier", "teacher": "anna", "groups": ["ensemble-a"], "room": "r101", "weekday": "monday", "start": "16:00", "duration": 45 },
            { "id": "violin-1", "subject": "Violine", "teacher": "ben", "groups": ["ensemble-a"], "room": "r101", "weekday": "tuesday", "start": "15:00", "duration": 45 },
            { "id": "cello-1", "subject": "Cello", "teacher": "clara", "groups": ["ensemble-a"], "room": "r101", "weekday": "wednesday", "start": "15:00", "duration": 45 }
          ]
        }
        """;

    /// <summary>Records progress on the reporting thread (<see cref="Progress{T}"/> would post it later).</summary>
    private sealed class SynchronousProgress(List<SchoolProgress> reports) : IProgress<SchoolProgress>
    {
        public void Report(SchoolProgress value) => reports.Add(value);
    }
}
