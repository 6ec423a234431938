using System.Diagnostics;
using System.Globalization;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.School.Connector;
using IMikelGo.Store.Marten.School;
using IMikelGo.Store.Sqlite.School;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>
/// The school server end to end: Wolverine handlers over the connector, a real relay over pinned HTTPS, real teacher
/// devices; durable runs keep Wolverine's messages in a real PostgreSQL (missing PostgreSQL fails them).
/// </summary>
public sealed class SchoolServerTests
{
    private static readonly DateOnly Monday = new(2026, 9, 21);
    private static CancellationToken None => CancellationToken.None;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_second_school_server_on_the_same_store_refuses_to_start_and_starts_once_the_first_stopped(bool durable)
    {
        await using var world = new ServerWorld(durable);
        await world.StartRelayAsync();
        await world.StartServerAsync(TimeSpan.Zero);

        // Two writers with their own in-memory replicas would append different events at the same position of a log.
        using (var second = ServerWorld.Build(o => ServerWorld.Configure(o, world.Root, world.Postgres, world.Schema, world.Port, world.Fingerprint, TimeSpan.Zero, world.Faults)))
        {
            (await FluentActions.Awaiting(() => second.StartAsync()).Should().ThrowAsync<InvalidOperationException>())
                .Which.Message.Should().Contain("another school connector is writing").And.Contain("one school server per store");
        }

        await world.StopServerAsync();
        var again = await world.StartServerAsync(TimeSpan.Zero);
        (await again.ConnectorAsync(None)).SchoolId.Should().Be(ServerWorld.SchoolId, "the lock left with the first server");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Relay_down_during_a_publish_pushes_are_retried_and_every_event_arrives_once(bool durable)
    {
        await using var world = new ServerWorld(durable);
        var (school, device) = await PublishedWithDeviceAsync(world, TimeSpan.Zero);

        await world.StopRelayAsync();
        await school.ImportAsync("json", TestSchool.Version2, null, None);
        (await world.Server.PublishAsync(null, TestSchool.TermStart, None)).Rescheduled.Should().BeGreaterThan(0);
        await ServerWorld.EventuallyAsync(() => Task.FromResult(world.Faults.Failures >= 4), "the push is retried while the relay is down");
        (await world.UnacknowledgedAsync(TestSchool.Anna)).Should().BeGreaterThan(0, "nothing reached the relay");

        await world.StartRelayAsync();
        await ServerWorld.EventuallyAsync(async () => await world.UnacknowledgedAsync(TestSchool.Anna) == 0, "the retried push reaches the relay once it is back");
        await AssertDeviceHasEverythingOnceAsync(world, school, device);
    }

    [Fact]
    public async Task School_server_killed_after_publish_before_the_push_completed_resends_everything_once_after_restart()
    {
        await using var world = new ServerWorld(durable: true);
        var (school, device) = await PublishedWithDeviceAsync(world, TimeSpan.Zero);
        var expected = school.ReplicaOf(TestSchool.Anna)!.Ledger.Export(TestSchool.Anna).Count;
        await world.StopServerAsync();
        var version2 = Path.Combine(world.Root, "version2.json");
        await File.WriteAllTextAsync(version2, TestSchool.Version2);

        var (killed, output) = RunChild(world, "publish", version2);
        output.Should().Contain("killed after push", "the relay stored the push before the process died: {0}", output);
        killed.Should().NotBe(0);
        (await ServerWorld.PendingPushEnvelopesAsync(world.Postgres!, world.Schema)).Should().BeGreaterThan(0, "the push message is still in Wolverine's PostgreSQL inbox");

        var (code, drained) = RunChild(world, "drain", TestSchool.Anna.Value);
        code.Should().Be(0, drained);
        drained.Should().Contain("drained");
        (await ServerWorld.PendingPushEnvelopesAsync(world.Postgres!, world.Schema)).Should().Be(0, "the restarted process handled the recovered message");

        var server = await world.StartServerAsync(TimeSpan.Zero);
        school = await server.ConnectorAsync(None);
        school.ReplicaOf(TestSchool.Anna)!.Ledger.Export(TestSchool.Anna).Count.Should().BeGreaterThan(expected, "version 2 was published by the killed process");
        await AssertDeviceHasEverythingOnceAsync(world, school, device);
    }

    [Fact]
    public async Task Scheduled_pull_applies_a_device_event_to_the_school_store_exactly_once_when_the_bundle_is_pulled_again()
    {
        await using var world = new ServerWorld(durable: true);
        var (school, device) = await PublishedWithDeviceAsync(world, TimeSpan.FromMilliseconds(300));
        var lesson = device.Week(Monday).First(l => l.Students.Count > 0);
        (await device.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, false, "ill", None)).Succeeded.Should().BeTrue();
        world.Faults.ReplaysLeft = 3;
        (await device.SyncAsync(null, None)).Sent.Should().BeGreaterThan(0);

        await ServerWorld.EventuallyAsync(() => Task.FromResult(world.Faults.Replays == 3), "scheduled pulls fetch the mailbox again from its start");
        var store = await world.Server.StoreAsync(None);
        var absences = (await store.ReadEventsAsync(None)).Where(e => e.Replica == device.DeviceId!.Value.Value && e.Line.Contains("student.absent", StringComparison.Ordinal)).ToList();
        absences.Should().ContainSingle("the store keeps the device's event once, however often its bundle is pulled");
        school.Report().Absences.Should().ContainSingle(a => a.Account == TestSchool.Anna.Value && a.Absences == 1);
    }

    [Fact]
    public async Task On_demand_pull_brings_a_device_event_without_a_schedule()
    {
        await using var world = new ServerWorld(durable: true);
        var (school, device) = await PublishedWithDeviceAsync(world, TimeSpan.Zero);
        var lesson = device.Week(Monday).First(l => l.Students.Count > 0);
        (await device.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, true, null, None)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, None);
        school.Report().Absences.Should().BeEmpty("no pull is scheduled");

        await world.Server.RequestPullAsync(None);
        await ServerWorld.EventuallyAsync(() => Task.FromResult(school.Report().Absences.Count == 1), "the on-demand pull stores the absence");
    }

    [Fact]
    public void Options_without_a_store_or_relay_are_refused_with_the_reason()
    {
        FluentActions.Invoking(() => ServerWorld.Build(o => o.RelayAddress = new Uri("https://relay.example/")))
            .Should().Throw<ArgumentException>().WithMessage("*data directory*");
        FluentActions.Invoking(() => ServerWorld.Build(o => o.DataDirectory = "/tmp/x"))
            .Should().Throw<ArgumentException>().WithMessage("*relay's https address*");
        FluentActions.Invoking(() => ServerWorld.Build(o =>
        {
            o.DataDirectory = "/tmp/x";
            o.RelayAddress = new Uri("https://relay.example/");
            o.Schema = "Drop Table";
        })).Should().Throw<ArgumentException>().WithMessage("*schema 'Drop Table'*");
    }

    /// <summary>Relay up, server started, version 1 published, a device of Anna enrolled and synced.</summary>
    internal static async Task<(SchoolConnector School, TeacherDevice Device)> PublishedWithDeviceAsync(ServerWorld world, TimeSpan pullInterval)
    {
        await world.StartRelayAsync();
        var server = await world.StartServerAsync(pullInterval);
        var school = await server.ConnectorAsync(None);
        var store = await server.StoreAsync(None);
        (world.Postgres is null ? store is SqliteSchoolConnectorStore : store is MartenSchoolConnectorStore).Should().BeTrue("the store follows the options, found {0}", store.GetType().Name);
        await world.RegisterAsync(school, TestSchool.Accounts);
        await school.ImportAsync("json", TestSchool.Version1, null, None);
        (await server.PublishAsync(null, None)).Accounts.Should().Be(2);
        var device = await world.EnrolledDeviceAsync(school, "phone", await school.IssueLicenseAsync(TestSchool.Anna, None));
        await server.RequestPushAsync(TestSchool.Anna, None);
        await ServerWorld.EventuallyAsync(async () => await world.UnacknowledgedAsync(TestSchool.Anna) == 0, "the first push reaches the relay");
        (await device.SyncAsync(null, None)).Refused.Should().BeEmpty();
        device.Week(Monday).Should().NotBeEmpty();
        return (school, device);
    }

    internal static async Task AssertDeviceHasEverythingOnceAsync(ServerWorld world, SchoolConnector school, TeacherDevice device)
    {
        var result = await device.SyncAsync(null, None);
        result.Refused.Should().BeEmpty();
        result.Details!.DuplicateEvents.Should().Be(0, "every event arrives once");
        var week = Monday.AddDays(7);
        device.Week(week).Select(l => (l.Occurrence, l.Date, l.Start)).Should().BeEquivalentTo(
            school.ReplicaOf(TestSchool.Anna)!.Calendar.Lessons().Where(l => l.Date >= week && l.Date < week.AddDays(7))
                .Select(l => (l.Occurrence, l.Date, TimeOnly.FromTimeSpan(TimeSpan.FromMinutes(l.StartMinute)))));
        device.Week(week).Should().Contain(l => l.Date.DayOfWeek == DayOfWeek.Thursday, "version 2 moved the piano lesson to Thursday");
        var bundles = await world.Mailboxes.ReadAsync(TestSchool.Anna.Value, 0, 10_000, None);
        bundles.Select(b => b.BundleId).Should().OnlyHaveUniqueItems();
    }

    private static (int ExitCode, string Output) RunChild(ServerWorld world, string mode, string argument)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        var psi = new ProcessStartInfo(string.IsNullOrEmpty(dotnet) || !File.Exists(dotnet) ? "dotnet" : dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "exec", typeof(ChildProgram).Assembly.Location, ChildProgram.Verb, world.Root, world.Postgres!, world.Schema,
                     world.Port.ToString(CultureInfo.InvariantCulture), world.Fingerprint, mode, argument,
                 })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the school server child process hung: " + stdout.Result + stderr.Result);
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
