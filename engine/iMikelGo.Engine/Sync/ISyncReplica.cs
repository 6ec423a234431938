using IMikelGo.Engine.Chains;
using IMikelGo.Sealing;

namespace IMikelGo.Engine.Sync;

/// <summary>
/// The device replica as the sync agent sees it (a port; <c>DeviceReplica</c> implements it through an adapter,
/// see docs/relay-client.md). Every write method returns only once its effect is durable.
/// </summary>
public interface ISyncReplica
{
    /// <summary>The account whose mailbox this replica syncs.</summary>
    AccountId Account { get; }

    /// <summary>This replica's id (the caller id of its relay requests and the sender of its bundles).</summary>
    ReplicaId Id { get; }

    /// <summary>
    /// The account's school as far as this replica knows it: the one sender whose bundles may carry other authors'
    /// events (forwarded device chains). Null: every event must be its bundle's sender's; the sync agent then also
    /// lets every sender whose own <c>account.opened</c> it opened forward for the rest of the sync (the ledger decides which is the school).
    /// </summary>
    ReplicaId? School => null;

    /// <summary>This device's private encryption keys, for opening bundles addressed to it.</summary>
    IRecipientKeys DecryptionKeys { get; }

    /// <summary>The public encryption keys a bundle of this device's events is sealed for (school and the account's other non-revoked devices).</summary>
    Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken);

    /// <summary>This device's own events not yet acknowledged by the relay, in chain order.</summary>
    Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken);

    /// <summary>Verifies and merges received events; what it applied is durable when this returns.</summary>
    Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken);

    /// <summary>Marks own events as acknowledged by the relay: they leave the outbox (durably).</summary>
    Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken);

    /// <summary>The stored pull cursor: the relay position of the last mailbox item durably processed (0 at first).</summary>
    Task<long> GetCursorAsync(CancellationToken cancellationToken);

    /// <summary>Stores the pull cursor durably.</summary>
    Task SetCursorAsync(long position, CancellationToken cancellationToken);

    /// <summary>The sealed bundle being pushed when the device last stopped, or null (see <see cref="SetOutgoingAsync"/>).</summary>
    Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores (or clears, with null) the sealed bundle about to be pushed, durably, before it is sent: after a crash
    /// between the relay's answer and <see cref="AcknowledgeAsync"/> the same bytes are pushed again and the relay
    /// answers with a duplicate success, so nothing is stored twice (field report F02).
    /// </summary>
    Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken);
}

/// <summary>A sealed bundle of own events whose push the relay has not confirmed yet.</summary>
/// <param name="BundleId">The bundle id (the relay's idempotency key).</param>
/// <param name="Data">The sealed bytes, re-sent unchanged.</param>
/// <param name="EventHashes">The hashes (hex) of the events it carries, acknowledged locally once the relay confirms.</param>
public sealed record OutgoingBundle(Guid BundleId, byte[] Data, IReadOnlyList<string> EventHashes);
