using IMikelGo.Engine;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>
/// The school server's PostgreSQL goes down and comes back while the server runs. Each test starts its own throwaway
/// cluster (scripts/pg-start.sh) and crashes it — never the shared one.
/// </summary>
public sealed class PostgresOutageTests
{
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
        (await world.Server.PublishAsync(null, None)).Rescheduled.Should().BeGreaterThan(0);
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
