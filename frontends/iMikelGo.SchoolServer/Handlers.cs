using IMikelGo.Engine;
using IMikelGo.Relay.Client;
using Microsoft.Extensions.Logging;
using Wolverine;

namespace IMikelGo.SchoolServer.Messaging;

/// <summary>
/// Wolverine handlers: each calls the connector, which is idempotent (the store is the source of truth, outgoing
/// bundles keep their id until acknowledged), so a redelivered or retried message never sends an event twice.
/// A relay failure throws <see cref="RelayUnavailableException"/> so Wolverine's retry policy takes over.
/// </summary>
public static partial class SchoolServerHandlers
{
    /// <summary>Pushes and pulls one account.</summary>
    public static async Task Handle(PushAccount message, SchoolServer server, ILogger<SchoolServer> logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(server);
        var connector = await server.ConnectorAsync(cancellationToken).ConfigureAwait(false);
        var result = await connector.SyncAsync(new AccountId(message.Account), null, cancellationToken).ConfigureAwait(false);
        server.Telemetry.Synced(result);
        if (!result.Complete)
        {
            throw new RelayUnavailableException($"sync of {message.Account} failed: {string.Join("; ", result.Failures)}");
        }

        LogPushed(logger, message.Account, result.EventsSent, result.EventsReceived, result.DuplicatePushes);
    }

    /// <summary>
    /// Syncs every account. A failed on-demand pull is retried whole (accounts already synced cost one request each);
    /// a failed scheduled pull waits for the next tick.
    /// </summary>
    public static async Task Handle(PullRelay message, SchoolServer server, ILogger<SchoolServer> logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(server);
        IMikelGo.School.Connector.SchoolSyncResult result;
        try
        {
            var connector = await server.ConnectorAsync(cancellationToken).ConfigureAwait(false);
            result = await connector.SyncAsync(null, null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (message.Scheduled)
            {
                server.ScheduledPull.Finish();
            }
        }

        server.Telemetry.Synced(result);
        if (result.Complete)
        {
            LogPulled(logger, result.Accounts, result.EventsReceived, result.EventsSent);
            return;
        }

        var failure = $"pull failed for {result.Failures.Count} of {result.Accounts} accounts ({result.NotAttempted.Count} not attempted): {string.Join("; ", result.Failures.Take(3))}";
        if (!message.Scheduled)
        {
            throw new RelayUnavailableException(failure);
        }

        LogScheduledPullFailed(logger, failure);
    }

    /// <summary>
    /// Decides the pending enrollment requests; each approved account gets a push (its chain for the new device). A failed
    /// on-demand run is retried with backoff; a failed scheduled run (relay down, or a relay that does not know the
    /// enrollment caller) is logged once and left to the next tick, so it never turns into a fast retry loop.
    /// </summary>
    public static async Task<OutgoingMessages> Handle(ProcessEnrollments message, SchoolServer server, ILogger<SchoolServer> logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(server);
        var connector = await server.ConnectorAsync(cancellationToken).ConfigureAwait(false);
        var pushes = new OutgoingMessages();
        try
        {
            var outcomes = await connector.ProcessEnrollmentsAsync(cancellationToken).ConfigureAwait(false);
            pushes.AddRange(outcomes.Where(o => o.Approved && o.Account is not null).Select(o => o.Account!).Distinct(StringComparer.Ordinal).Select(a => new PushAccount(a)));
            if (outcomes.Count > 0)
            {
                LogEnrollments(logger, outcomes.Count, outcomes.Count(o => o.Approved));
            }

            return pushes;
        }
        catch (Exception e) when (e is RelayException or HttpRequestException)
        {
            if (!message.Scheduled)
            {
                throw new RelayUnavailableException("processing enrollments failed: " + e.Message, e);
            }

            server.Telemetry.EnrollmentFailed();
            LogScheduledEnrollmentsFailed(logger, e.Message);
            return pushes;
        }
        finally
        {
            if (message.Scheduled)
            {
                server.ScheduledEnrollments.Finish();
            }
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Synced account {Account}: sent {Sent}, received {Received}, duplicate pushes {Duplicates}")]
    private static partial void LogPushed(ILogger logger, string account, int sent, int received, int duplicates);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Pulled {Accounts} accounts: received {Received}, sent {Sent}")]
    private static partial void LogPulled(ILogger logger, int accounts, int received, int sent);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Scheduled {Failure}; the next scheduled pull retries")]
    private static partial void LogScheduledPullFailed(ILogger logger, string failure);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Scheduled enrollment processing failed: {Error}; the next scheduled run retries")]
    private static partial void LogScheduledEnrollmentsFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Processed {Requests} enrollment requests: {Approved} approved")]
    private static partial void LogEnrollments(ILogger logger, int requests, int approved);
}
