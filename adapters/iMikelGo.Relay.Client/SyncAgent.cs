using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IMikelGo.Relay.Client;

/// <summary>
/// The transport side of the device's Sync button: pulls the account's mailbox since the stored cursor, opens
/// and stores what is addressed to this device, then seals the device's pending events into a bundle and pushes
/// it. Invariants (docs/relay-client.md):
/// <list type="bullet">
/// <item>The cursor is stored only after the page's events are durable, and is the position of the last item
/// processed — never the relay's <c>Next</c> or <c>Head</c> (field report F01).</item>
/// <item>Own events leave the outbox only after the relay confirmed their bundle; the sealed bundle is kept until
/// then and re-sent unchanged, so a crash after the relay's answer ends in a duplicate success (F02).</item>
/// <item>A bundle that does not open is reported and refused for good; the cursor moves past it.</item>
/// </list>
/// Calls are serialized: a sync and a background push never run at once.
/// </summary>
public sealed partial class SyncAgent : IDisposable
{
    private readonly IRelayClient _relay;
    private readonly ISyncReplica _replica;
    private readonly SyncAgentOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Creates an agent syncing <paramref name="replica"/> through <paramref name="relay"/>.</summary>
    public SyncAgent(IRelayClient relay, ISyncReplica replica, SyncAgentOptions? options = null, ILogger<SyncAgent>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(relay);
        ArgumentNullException.ThrowIfNull(replica);
        _relay = relay;
        _replica = replica;
        _options = options ?? new SyncAgentOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.PageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(_options.PageSize, RelayProtocol.MaxPageSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MaxEventsPerBundle, 1);
        _logger = logger ?? NullLogger<SyncAgent>.Instance;
    }

    /// <summary>Pulls, then pushes. Throws <see cref="RelayWipeRequiredException"/> when the device must wipe.</summary>
    public async Task<SyncSummary> SyncAsync(IProgress<SyncProgress>? progress, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var state = new State();
            await PullCoreAsync(state, progress, cancellationToken).ConfigureAwait(false);
            await PushCoreAsync(state, progress, cancellationToken).ConfigureAwait(false);
            return Complete(state, progress);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Pulls and stores everything after the stored cursor.</summary>
    public async Task<SyncSummary> PullAsync(IProgress<SyncProgress>? progress, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var state = new State();
            await PullCoreAsync(state, progress, cancellationToken).ConfigureAwait(false);
            return Complete(state, progress);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Pushes the device's pending events (first any bundle left unconfirmed by an earlier run).</summary>
    public async Task<SyncSummary> PushAsync(IProgress<SyncProgress>? progress, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var state = new State { Cursor = await _replica.GetCursorAsync(cancellationToken).ConfigureAwait(false) };
            await PushCoreAsync(state, progress, cancellationToken).ConfigureAwait(false);
            return Complete(state, progress);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public void Dispose() => _gate.Dispose();

    private async Task PullCoreAsync(State state, IProgress<SyncProgress>? progress, CancellationToken cancellationToken)
    {
        var account = _replica.Account;
        state.Cursor = await _replica.GetCursorAsync(cancellationToken).ConfigureAwait(false);
        var start = state.Cursor;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(state.Progress(SyncPhase.Pulling));
            var page = await _relay.PullAsync(account.Value, state.Cursor, _options.PageSize, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            state.Head = Math.Max(state.Head, page.Head);
            if (page.Items.Count == 0)
            {
                break;
            }

            var events = new List<SignedEvent>();
            foreach (var item in page.Items)
            {
                state.BundlesPulled++;
                Open(item, events, state);
            }

            if (events.Count > 0)
            {
                var report = await _replica.ReceiveAsync(events, cancellationToken).ConfigureAwait(false);
                state.EventsReceived += report.Applied.Length;
                state.DuplicateEvents += report.Duplicates;
                state.RefusedEvents.AddRange(report.Refused.Select(r => r.ToString()));
                RelayClientDiagnostics.EventsReceived.Add(report.Applied.Length);
            }

            // The page is durable: the cursor moves to the last item processed, never to the relay's Next or Head.
            state.Cursor = page.Items[^1].Position;
            await _replica.SetCursorAsync(state.Cursor, cancellationToken).ConfigureAwait(false);
            progress?.Report(state.Progress(SyncPhase.Received));
            if (state.Cursor >= page.Head)
            {
                break;
            }
        }

        if (_options.AcknowledgeToRelay && state.Cursor > start)
        {
            try
            {
                await _relay.AckAsync(account.Value, state.Cursor, cancellationToken).ConfigureAwait(false);
            }
            catch (RelayException ex) when (ex is not RelayWipeRequiredException)
            {
                // The relay's ack only lets it prune; the local cursor is what resumes the pull.
                LogAckFailed(_logger, state.Cursor, ex.Message);
            }
        }
    }

    private void Open(MailboxItem item, List<SignedEvent> events, State state)
    {
        if (string.Equals(item.Sender, _replica.Id.Value, StringComparison.Ordinal))
        {
            state.BundlesSkipped++;
            return;
        }

        if (!Bundle.TryReadHeader(item.Data, out var header, out var headerError))
        {
            Refuse(item, $"bundle refused: {headerError.Code}: {headerError.Message}", state);
            return;
        }

        if (!header.RecipientKeyIds.Any(id => _replica.DecryptionKeys.TryGetKey(id, out _)))
        {
            // Sealed for other devices only (e.g. keys this device no longer holds): not ours to open.
            state.BundlesSkipped++;
            LogNotAddressed(_logger, item.Position, item.BundleId);
            return;
        }

        // A replica that knows no school yet lets every sender that showed its own account.opened in this sync forward
        // (the school's announcement starts with it; the bundles forwarding the devices' chains follow, maybe in the same
        // page), and the ledger decides which one is the school. Taking only the first such sender would let any device
        // whose bundle with a forged account.opened comes before the school's make it refuse the school's forwarding.
        var sender = new ReplicaId(header.SenderReplicaId);
        var forwarder = _replica.School ?? (state.Openers.Contains(sender) ? sender : null);
        if (!EventBundles.TryOpen(item.Data, _replica.Account, _replica.DecryptionKeys, null, forwarder, out var opened, out var error))
        {
            Refuse(item, error ?? "bundle refused", state);
            return;
        }

        if (opened.Any(e => e.Event.Seq == 1 && e.Event.Payload is AccountOpened && e.Event.Replica == sender))
        {
            state.Openers.Add(sender);
        }

        events.AddRange(opened);
    }

    private void Refuse(MailboxItem item, string reason, State state)
    {
        state.Refused.Add(new RefusedBundle(item.Position, item.BundleId, item.Sender, reason));
        RelayClientDiagnostics.BundlesRefused.Add(1);
        LogRefused(_logger, item.Position, item.BundleId, item.Sender, reason);
    }

    private async Task PushCoreAsync(State state, IProgress<SyncProgress>? progress, CancellationToken cancellationToken)
    {
        var account = _replica.Account.Value;

        // 1. A bundle left unconfirmed by an earlier run (crash after the relay stored it): the same bytes again.
        var outgoing = await _replica.GetOutgoingAsync(cancellationToken).ConfigureAwait(false);
        var pending = await _replica.PendingAsync(cancellationToken).ConfigureAwait(false);
        state.EventsToSend = pending.Count;
        if (outgoing is not null)
        {
            progress?.Report(state.Progress(SyncPhase.Pushing));
            var carried = outgoing.EventHashes.ToHashSet(StringComparer.Ordinal);
            await ConfirmAsync(account, outgoing, [.. pending.Where(e => carried.Contains(e.Event.Hash.Hex))], state, cancellationToken).ConfigureAwait(false);
            progress?.Report(state.Progress(SyncPhase.Pushed));
            pending = await _replica.PendingAsync(cancellationToken).ConfigureAwait(false);
        }

        if (pending.Count == 0)
        {
            return;
        }

        var recipients = await _replica.GetRecipientsAsync(cancellationToken).ConfigureAwait(false);
        if (recipients.Count == 0)
        {
            throw new InvalidOperationException($"no recipients to seal {pending.Count} pending events for: the account's encryption keys are unknown");
        }

        // 2. The rest, in chain order, in bundles of at most MaxEventsPerBundle events and MaxBundleBytes bytes.
        var index = 0;
        var batch = _options.MaxEventsPerBundle;
        while (index < pending.Count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = pending.Skip(index).Take(batch).ToList();
            var sealedBundle = EventBundles.Seal(_replica.Id, chunk, recipients);
            if (sealedBundle.Bytes.Length > RelayProtocol.MaxBundleBytes)
            {
                if (chunk.Count == 1)
                {
                    throw new InvalidOperationException($"event {chunk[0].Event.Describe()} does not fit in a bundle of {RelayProtocol.MaxBundleBytes} bytes");
                }

                batch = Math.Max(1, chunk.Count / 2);
                continue;
            }

            progress?.Report(state.Progress(SyncPhase.Pushing));
            var bundle = new OutgoingBundle(sealedBundle.BundleId, sealedBundle.Bytes, [.. chunk.Select(e => e.Event.Hash.Hex)]);
            await _replica.SetOutgoingAsync(bundle, cancellationToken).ConfigureAwait(false);
            await ConfirmAsync(account, bundle, chunk, state, cancellationToken).ConfigureAwait(false);
            progress?.Report(state.Progress(SyncPhase.Pushed));
            index += chunk.Count;
            batch = _options.MaxEventsPerBundle;
        }
    }

    private async Task ConfirmAsync(string account, OutgoingBundle bundle, IReadOnlyList<SignedEvent> events, State state, CancellationToken cancellationToken)
    {
        var result = await _relay.PushAsync(account, bundle.Data, cancellationToken).ConfigureAwait(false);

        // Only now, after the relay's confirmation (a duplicate is one too), do the events leave the outbox.
        if (events.Count > 0)
        {
            await _replica.AcknowledgeAsync(events, cancellationToken).ConfigureAwait(false);
        }

        await _replica.SetOutgoingAsync(null, cancellationToken).ConfigureAwait(false);
        state.BundlesPushed++;
        state.DuplicatePushes += result.Duplicate ? 1 : 0;
        state.EventsSent += events.Count;
        RelayClientDiagnostics.EventsSent.Add(events.Count);
        LogPushed(_logger, events.Count, result.BundleId, result.Position, result.Duplicate);
    }

    private static SyncSummary Complete(State state, IProgress<SyncProgress>? progress)
    {
        progress?.Report(state.Progress(SyncPhase.Completed));
        return new SyncSummary(state.EventsReceived, state.DuplicateEvents, state.EventsSent, state.BundlesPulled, state.BundlesPushed,
            state.DuplicatePushes, state.BundlesSkipped, state.Refused, state.RefusedEvents, state.Cursor);
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Refused mailbox bundle {BundleId} at position {Position} from {Sender}: {Reason}; the cursor moves past it")]
    private static partial void LogRefused(ILogger logger, long position, Guid bundleId, string sender, string reason);

    [LoggerMessage(EventId = 21, Level = LogLevel.Debug, Message = "Bundle {BundleId} at position {Position} is not addressed to this device; skipped")]
    private static partial void LogNotAddressed(ILogger logger, long position, Guid bundleId);

    [LoggerMessage(EventId = 22, Level = LogLevel.Information, Message = "Sent {Count} events in bundle {BundleId} at position {Position} (duplicate: {Duplicate})")]
    private static partial void LogPushed(ILogger logger, int count, Guid bundleId, long position, bool duplicate);

    [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "Could not acknowledge position {Position} to the relay: {Reason}")]
    private static partial void LogAckFailed(ILogger logger, long position, string reason);

    private sealed class State
    {
        public long Cursor { get; set; }

        public HashSet<ReplicaId> Openers { get; } = [];

        public long Head { get; set; }

        public int EventsReceived { get; set; }

        public int DuplicateEvents { get; set; }

        public int EventsSent { get; set; }

        public int EventsToSend { get; set; }

        public int BundlesPulled { get; set; }

        public int BundlesPushed { get; set; }

        public int DuplicatePushes { get; set; }

        public int BundlesSkipped { get; set; }

        public List<RefusedBundle> Refused { get; } = [];

        public List<string> RefusedEvents { get; } = [];

        public SyncProgress Progress(SyncPhase phase) => new(phase, Cursor, Head, EventsReceived, EventsSent, EventsToSend);
    }
}
