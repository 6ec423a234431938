using IMikelGo.Engine.Sync;
using IMikelGo.School.Connector;
using IMikelGo.Store.Marten.School;
using IMikelGo.Store.Sqlite.School;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IMikelGo.SchoolServer;

/// <summary>
/// Opens the store and the connector before Wolverine starts (registered first) and closes them after Wolverine
/// stopped (hosted services stop in reverse order), so no handler runs against a closed connector.
/// </summary>
internal sealed partial class SchoolConnectorHost(SchoolServer server, SchoolServerOptions options, ILogger<SchoolConnectorHost> logger) : IHostedService
{
    private ISchoolConnectorStore? _store;
    private IAsyncDisposable? _writer;
    private SchoolConnector? _connector;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            _store = await OpenStoreAsync(cancellationToken).ConfigureAwait(false);
            _writer = await _store.TryLockWriterAsync(cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException(
                $"another school connector is writing {(options.Durable ? "PostgreSQL schema " + options.Schema : options.DataDirectory)} " +
                "(a second school server, or an 'imikelgo school' command): run one school server per store");
            _connector = await OpenConnectorAsync(_store, cancellationToken).ConfigureAwait(false);
            server.Opened(_connector, _store);
            LogOpened(logger, _connector.SchoolId, _connector.Accounts.Count, options.Durable ? "PostgreSQL (Marten), schema " + options.Schema : "embedded SQLite in " + options.DataDirectory);
        }
        catch (Exception e)
        {
            server.Failed(e);
            if (_writer is null && _store is not null)
            {
                await _store.DisposeAsync().ConfigureAwait(false);
                _store = null;
            }

            throw;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_connector is not null)
        {
            await _connector.DisposeAsync().ConfigureAwait(false);
        }

        if (_writer is not null)
        {
            await _writer.DisposeAsync().ConfigureAwait(false);
        }

        if (_store is not null)
        {
            await _store.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<ISchoolConnectorStore> OpenStoreAsync(CancellationToken cancellationToken)
    {
        if (options.Durable)
        {
            return await MartenSchoolConnectorStore.OpenAsync(options.PostgresConnectionString!, options.Schema, cancellationToken).ConfigureAwait(false);
        }

        Directory.CreateDirectory(options.DataDirectory!);
        return await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(options.DataDirectory!, "school.db"), cancellationToken).ConfigureAwait(false);
    }

    private async Task<SchoolConnector> OpenConnectorAsync(ISchoolConnectorStore store, CancellationToken cancellationToken)
    {
        var settings = new SchoolConnectorSettings
        {
            RelayAddress = options.RelayAddress,
            RelayCertificateSha256 = options.RelayCertificateSha256,
            Time = options.Time,
        };
        options.ConfigureConnector?.Invoke(settings);

        // A store with nothing in it is a new school (when a school id is given); anything else must open.
        if (options.SchoolId is { } schoolId && (await store.ListValuesAsync(string.Empty, cancellationToken).ConfigureAwait(false)).Count == 0)
        {
            return await SchoolConnector.InitAsync(store, schoolId, settings, cancellationToken).ConfigureAwait(false);
        }

        return await SchoolConnector.OpenAsync(store, settings, cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "School {School} open with {Accounts} accounts on {Store}")]
    private static partial void LogOpened(ILogger logger, string school, int accounts, string store);
}

/// <summary>
/// Started after Wolverine: enqueues a push for every account the relay has not acknowledged yet (the store is the
/// source of truth; this also covers a crash between a publish and its message), then enqueues an enrollment run and a
/// pull every <see cref="SchoolServerOptions.PullInterval"/> (both scheduled: a failure waits for the next tick).
/// </summary>
internal sealed partial class SchoolServerScheduler(SchoolServer server, SchoolServerOptions options, ILogger<SchoolServerScheduler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var pending = await server.EnqueuePendingPushesAsync(stoppingToken).ConfigureAwait(false);
        LogResumed(logger, pending);
        if (options.PullInterval == TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.PullInterval, options.Time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            var now = options.Time.GetUtcNow();
            if (server.ScheduledEnrollments.TryStart(now, options.PullInterval))
            {
                await server.SendScheduledEnrollmentsAsync().ConfigureAwait(false);
            }

            if (server.ScheduledPull.TryStart(now, options.PullInterval))
            {
                await server.SendPullAsync(scheduled: true).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Enqueued pushes for {Accounts} accounts with unacknowledged events")]
    private static partial void LogResumed(ILogger logger, int accounts);
}
