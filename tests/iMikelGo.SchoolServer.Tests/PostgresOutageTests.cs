using IMikelGo.Engine;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>
/// The school server's PostgreSQL goes down and comes back while the server runs. Each test starts its own throwaway
/// cluster (scripts/pg-start.sh) and crashes it — never the shared one.
/// </summary>
public sealed class PostgresOutageTests
{
    private static readonly DateOnly Monday = new(2026, 9, 21);
    private static CancellationToken None => CancellationToken.None;

    [PostgresFact]
    public async Task PostgreSQL_down_while_pushes_are_pending_the_server_recovers_without_a_restart_and_every_event_arrives_once()
    {
        using var postgres = OwnPostgres.Start();
        await using var world = new ServerWorld(postgres.ConnectionString);
        var (school, device) = await SchoolServerTests.PublishedWithDeviceAsync(world, TimeSpan.Zero);

        // Version 2 published while the relay is down: its push is stored in PostgreSQL and retried.
        await world.StopRelayAsync();
        await school.ImportAsync("json", TestSchool.Version2, null, None);
        (await world.Server.PublishAsync(null, TestSchool.TermStart, None)).Rescheduled.Should().BeGreaterThan(0);
        await ServerWorld.EventuallyAsync(() => Task.FromResult(world.Faults.Failures >= 2), "the push is retried while the relay is down");

        // The database crashes with the retry pending; the relay comes back while the database is still down.
        postgres.Crash();
        await world.StartRelayAsync();
        await Task.Delay(TimeSpan.FromSeconds(3));
        postgres.Restart();

        await ServerWorld.EventuallyAsync(() => WhenReachableAsync(async () => await world.UnacknowledgedAsync(TestSchool.Anna) == 0),
            "the pending push reaches the relay after PostgreSQL came back, without restarting the school server", seconds: 30);
        await SchoolServerTests.AssertDeviceHasEverythingOnceAsync(world, school, device);
    }

    [PostgresFact]
    public async Task PostgreSQL_down_between_the_relay_page_and_the_store_write_keeps_the_device_event_and_stores_it_once()
    {
        using var postgres = OwnPostgres.Start();
        await using var world = new ServerWorld(postgres.ConnectionString);
        var (school, device) = await SchoolServerTests.PublishedWithDeviceAsync(world, TimeSpan.Zero);
        var lesson = device.Week(Monday).First(l => l.Students.Count > 0);
        (await device.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, false, "ill", None)).Succeeded.Should().BeTrue();
        (await device.SyncAsync(null, None)).Sent.Should().BeGreaterThan(0);

        // The relay answers the pull with the device's bundle; PostgreSQL dies before the school stores it and is back 2 s later.
        var deviceId = device.DeviceId!.Value.Value;
        Task? restarted = null;
        world.Faults.OnPage = page =>
        {
            if (!page.Items.Any(i => i.Sender == deviceId))
            {
                return false;
            }

            postgres.Crash();
            restarted = Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(2));
                postgres.Restart();
            });
            return true;
        };
        await world.Server.RequestPullAsync(None);
        await ServerWorld.EventuallyAsync(() => Task.FromResult(restarted is not null), "the pull reached the device's bundle");
        await restarted!;

        var store = await world.Server.StoreAsync(None);
        await ServerWorld.EventuallyAsync(() => WhenReachableAsync(async () => (await DeviceAbsencesAsync()).Count == 1),
            "the absence is stored once PostgreSQL is back, without restarting the school server", seconds: 30);

        // And it survives a restart: the school's replicas are rebuilt from the store only.
        await world.StopServerAsync();
        var server = await world.StartServerAsync(TimeSpan.Zero);
        school = await server.ConnectorAsync(None);
        school.Report().Absences.Should().ContainSingle(a => a.Account == TestSchool.Anna.Value && a.Absences == 1);
        store = await server.StoreAsync(None);
        (await DeviceAbsencesAsync()).Should().ContainSingle();

        async Task<List<string>> DeviceAbsencesAsync() =>
            [.. (await store.ReadEventsAsync(None)).Where(e => e.Replica == deviceId && e.Line.Contains("student.absent", StringComparison.Ordinal)).Select(e => e.Hash)];
    }

    /// <summary>The condition, false while the test's own reads cannot reach PostgreSQL (pooled connections of the crashed server).</summary>
    private static async Task<bool> WhenReachableAsync(Func<Task<bool>> condition)
    {
        try
        {
            return await condition();
        }
        catch (Npgsql.NpgsqlException)
        {
            return false;
        }
    }
}
