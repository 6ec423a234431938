using IMikelGo.Engine;
using IMikelGo.Engine.Sync;
using IMikelGo.School.Connector;
using IMikelGo.SchoolServer.Messaging;
using Microsoft.Extensions.DependencyInjection;
using Wolverine;

namespace IMikelGo.SchoolServer;

/// <summary>
/// The school server's facade for the administration (CLI, API): the connector once it is open, and the operations
/// that must be followed by a push. Publishing and wiping are stored first (the store is the source of truth), then a
/// <see cref="PushAccount"/> message per touched account is enqueued — durably on PostgreSQL — and handled with retries.
/// </summary>
public sealed class SchoolServer
{
    private readonly TaskCompletionSource<(SchoolConnector Connector, ISchoolConnectorStore Store)> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IServiceScopeFactory _scopes;

    internal SchoolServer(SchoolServerOptions options, IServiceScopeFactory scopes, SchoolServerTelemetry telemetry)
    {
        Options = options;
        _scopes = scopes;
        Telemetry = telemetry;
    }

    /// <summary>The options the server runs with.</summary>
    public SchoolServerOptions Options { get; }

    internal SchoolServerTelemetry Telemetry { get; }

    /// <summary>The outstanding scheduled pull, if any (ticks are skipped while it is queued or running).</summary>
    internal ScheduledRun ScheduledPull { get; } = new();

    /// <summary>The outstanding scheduled enrollment run, if any.</summary>
    internal ScheduledRun ScheduledEnrollments { get; } = new();

    /// <summary>The connector, once the hosted service opened it (waits until then).</summary>
    public async Task<SchoolConnector> ConnectorAsync(CancellationToken cancellationToken) =>
        (await _opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false)).Connector;

    /// <summary>Publishes the pending import effective today and enqueues the pushes.</summary>
    public Task<SchoolPublishResult> PublishAsync(IProgress<SchoolProgress>? progress, CancellationToken cancellationToken) =>
        PublishAsync(progress, null, cancellationToken);

    /// <summary>
    /// Publishes the pending import (see <see cref="SchoolConnector.PublishAsync(IProgress{SchoolProgress}?, DateOnly?, CancellationToken)"/>)
    /// and enqueues the pushes.
    /// </summary>
    public async Task<SchoolPublishResult> PublishAsync(IProgress<SchoolProgress>? progress, DateOnly? effectiveFrom, CancellationToken cancellationToken)
    {
        var connector = await ConnectorAsync(cancellationToken).ConfigureAwait(false);
        var result = await connector.PublishAsync(progress, effectiveFrom, cancellationToken).ConfigureAwait(false);
        await EnqueuePendingPushesAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Remote wipe (see <see cref="SchoolConnector.WipeAsync"/>), then a push of the account (revocation and log).</summary>
    public async Task<SchoolWipeResult> WipeAsync(AccountId account, ReplicaId? device, string reason, CancellationToken cancellationToken)
    {
        var connector = await ConnectorAsync(cancellationToken).ConfigureAwait(false);
        var result = await connector.WipeAsync(account, device, reason, cancellationToken).ConfigureAwait(false);
        await SendAsync(new PushAccount(account.Value)).ConfigureAwait(false);
        return result;
    }

    /// <summary>Enqueues a push (and pull) of one account.</summary>
    public Task RequestPushAsync(AccountId account, CancellationToken cancellationToken) => SendAsync(new PushAccount(account.Value));

    /// <summary>Enqueues an on-demand pull of every account (retried with backoff when the relay is down).</summary>
    public Task RequestPullAsync(CancellationToken cancellationToken) => SendAsync(new PullRelay(Scheduled: false));

    /// <summary>Enqueues the processing of the enrollment requests waiting at the relay.</summary>
    public Task RequestEnrollmentsAsync(CancellationToken cancellationToken) => SendAsync(new ProcessEnrollments());

    /// <summary>Enqueues a push for every account with events the relay has not acknowledged (the store decides).</summary>
    /// <returns>The accounts enqueued.</returns>
    internal async Task<int> EnqueuePendingPushesAsync(CancellationToken cancellationToken)
    {
        var (connector, store) = await _opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        var count = 0;
        foreach (var account in connector.Accounts)
        {
            if ((await store.UnacknowledgedAsync(account.Value, cancellationToken).ConfigureAwait(false)).Count > 0)
            {
                await SendAsync(new PushAccount(account.Value)).ConfigureAwait(false);
                count++;
            }
        }

        return count;
    }

    /// <summary>The connector's store, once open.</summary>
    internal async Task<ISchoolConnectorStore> StoreAsync(CancellationToken cancellationToken) =>
        (await _opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false)).Store;

    internal Task SendPullAsync(bool scheduled) => SendAsync(new PullRelay(scheduled));

    internal Task SendScheduledEnrollmentsAsync() => SendAsync(new ProcessEnrollments(Scheduled: true));

    internal void Opened(SchoolConnector connector, ISchoolConnectorStore store) => _opened.TrySetResult((connector, store));

    internal void Failed(Exception error) => _opened.TrySetException(error);

    private async Task SendAsync<T>(T message)
    {
        using var scope = _scopes.CreateScope();
        await scope.ServiceProvider.GetRequiredService<IMessageBus>().PublishAsync(message).ConfigureAwait(false);
    }
}

/// <summary>
/// One kind of scheduled run. Runs do not overlap: a tick is skipped while the previous run is still queued or running
/// (a slow relay or a loaded machine would otherwise pile up runs that then fire back to back), unless it has been
/// outstanding for ten intervals (a lost message must not stop the schedule).
/// </summary>
internal sealed class ScheduledRun
{
    private long _sentAtTicks;

    /// <summary>Whether to send a run now; if so, it is outstanding from <paramref name="now"/>.</summary>
    public bool TryStart(DateTimeOffset now, TimeSpan interval)
    {
        var sent = Interlocked.Read(ref _sentAtTicks);
        if (sent != 0 && now.UtcTicks - sent < interval.Ticks * 10)
        {
            return false;
        }

        Interlocked.Exchange(ref _sentAtTicks, now.UtcTicks);
        return true;
    }

    /// <summary>The run finished (whatever its outcome).</summary>
    public void Finish() => Interlocked.Exchange(ref _sentAtTicks, 0);
}
