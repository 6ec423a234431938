namespace IMikelGo.Relay.Client;

/// <summary>What a sync is doing.</summary>
public enum SyncPhase
{
    /// <summary>Pulling pages from the relay.</summary>
    Pulling,

    /// <summary>A page was opened and its events stored; the cursor moved.</summary>
    Received,

    /// <summary>Pushing own events.</summary>
    Pushing,

    /// <summary>A bundle of own events was confirmed by the relay.</summary>
    Pushed,

    /// <summary>The sync finished.</summary>
    Completed,
}

/// <summary>Progress of a sync, reported through <see cref="IProgress{T}"/>.</summary>
/// <param name="Phase">The current step.</param>
/// <param name="Cursor">The stored pull cursor.</param>
/// <param name="Head">The mailbox head the relay reported last (0 before the first page).</param>
/// <param name="EventsReceived">Events applied so far.</param>
/// <param name="EventsSent">Own events confirmed by the relay so far.</param>
/// <param name="EventsToSend">Own events pending at the start of the push.</param>
public sealed record SyncProgress(SyncPhase Phase, long Cursor, long Head, int EventsReceived, int EventsSent, int EventsToSend);

/// <summary>A bundle that was refused; the cursor moved past it (the relay cannot repair it, and a refusal is final).</summary>
/// <param name="Position">Its mailbox position.</param>
/// <param name="BundleId">Its id as listed by the relay.</param>
/// <param name="Sender">The sender the relay recorded.</param>
/// <param name="Reason">The reason, in words.</param>
public sealed record RefusedBundle(long Position, Guid BundleId, string Sender, string Reason);

/// <summary>The outcome of a sync.</summary>
/// <param name="EventsReceived">Events applied to the replica.</param>
/// <param name="DuplicateEvents">Events received again (already known).</param>
/// <param name="EventsSent">Own events confirmed by the relay (and acknowledged locally).</param>
/// <param name="BundlesPulled">Mailbox items read.</param>
/// <param name="BundlesPushed">Bundles confirmed by the relay (duplicates included).</param>
/// <param name="DuplicatePushes">Pushes the relay answered as duplicates (a resend after a crash).</param>
/// <param name="BundlesSkipped">Bundles not addressed to this device, or sent by it.</param>
/// <param name="RefusedBundles">Bundles refused, with reasons.</param>
/// <param name="RefusedEvents">Events the ledger refused inside opened bundles, with reasons.</param>
/// <param name="Cursor">The stored cursor at the end.</param>
public sealed record SyncSummary(
    int EventsReceived, int DuplicateEvents, int EventsSent, int BundlesPulled, int BundlesPushed, int DuplicatePushes,
    int BundlesSkipped, IReadOnlyList<RefusedBundle> RefusedBundles, IReadOnlyList<string> RefusedEvents, long Cursor);

/// <summary>How the sync agent pages and batches.</summary>
public sealed class SyncAgentOptions
{
    /// <summary>Bundles per pull page (1 to <c>RelayProtocol.MaxPageSize</c>).</summary>
    public int PageSize { get; set; } = 100;

    /// <summary>Most own events sealed into one bundle (a bundle over <c>RelayProtocol.MaxBundleBytes</c> is split further).</summary>
    public int MaxEventsPerBundle { get; set; } = 500;

    /// <summary>Whether to acknowledge the pulled position to the relay at the end of a pull.</summary>
    public bool AcknowledgeToRelay { get; set; } = true;
}
