namespace IMikelGo.Engine.Relay;

/// <summary>A stored bundle: pseudonymous ids, size, time and ciphertext only.</summary>
public sealed record StoredBundle(long Position, Guid BundleId, string Sender, byte[] Data, DateTimeOffset StoredAt);

/// <summary>A device (or school) known to the relay, with the key its requests are signed with.</summary>
public sealed record RelayCaller(string Id, string Account, byte[] SigningKey, bool IsSchool);

/// <summary>A queued enrollment request of a school: opaque sealed bytes.</summary>
public sealed record StoredEnrollment(long Position, string Id, string School, byte[] Request, DateTimeOffset ReceivedAt);

/// <summary>An enrollment request's state: unanswered, or answered with the school's opaque answer bytes.</summary>
public sealed record StoredEnrollmentAnswer(string Id, string School, bool Answered, bool Approved, byte[]? Answer, DateTimeOffset? AnsweredAt);

/// <summary>Outcome of <see cref="IMailboxStore.AnswerEnrollmentAsync"/>.</summary>
public enum EnrollmentAnswerOutcome
{
    /// <summary>The answer was stored.</summary>
    Stored,

    /// <summary>The request was already answered; the first answer stands (a retry is not an error).</summary>
    AlreadyAnswered,

    /// <summary>No such request for this school.</summary>
    Unknown,
}

/// <summary>
/// The relay's storage port: per-account append-only mailboxes of sealed bundles, the callers' keys,
/// revocations, wipe acknowledgements and replay-protection nonces. Every implementation passes the same
/// conformance suite (tests/iMikelGo.Relay.Tests). Safe for several relay instances sharing one store:
/// idempotency, positions and nonces are enforced by the store, not by an instance's memory.
/// </summary>
public interface IMailboxStore
{
    /// <summary>Appends a bundle; a bundle id already in the mailbox returns its original position with <c>Duplicate = true</c>.</summary>
    Task<PushResult> AppendAsync(string account, Guid bundleId, string sender, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Bundles with a position greater than <paramref name="after"/>, in position order, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<StoredBundle>> ReadAsync(string account, long after, int limit, CancellationToken cancellationToken);

    /// <summary>The highest position in the mailbox (0 when empty).</summary>
    Task<long> HeadAsync(string account, CancellationToken cancellationToken);

    /// <summary>Total bytes stored for the account (for quotas).</summary>
    Task<long> SizeAsync(string account, CancellationToken cancellationToken);

    /// <summary>Records that <paramref name="caller"/> has received everything up to <paramref name="position"/>.</summary>
    Task AckAsync(string account, string caller, long position, CancellationToken cancellationToken);

    /// <summary>Registers or replaces a caller's key.</summary>
    Task PutCallerAsync(RelayCaller caller, CancellationToken cancellationToken);

    /// <summary>The caller, or null when unknown.</summary>
    Task<RelayCaller?> GetCallerAsync(string id, CancellationToken cancellationToken);

    /// <summary>Deletes a caller's record (a pending wipe survives it).</summary>
    Task DeleteCallerAsync(string id, CancellationToken cancellationToken);

    /// <summary>Records a revocation of one device, or of every device of the account when <paramref name="device"/> is null.</summary>
    Task RevokeAsync(string account, string? device, string reason, CancellationToken cancellationToken);

    /// <summary>Whether the device (or its whole account) is revoked and has a wipe pending or done.</summary>
    Task<bool> IsRevokedAsync(string account, string device, CancellationToken cancellationToken);

    /// <summary>Records the device's wipe acknowledgement.</summary>
    Task AcknowledgeWipeAsync(string account, string device, CancellationToken cancellationToken);

    /// <summary>Whether the device acknowledged its wipe.</summary>
    Task<bool> HasWipedAsync(string account, string device, CancellationToken cancellationToken);

    /// <summary>Uses a request nonce once; false when it was already used (a replay). Expired nonces may be pruned.</summary>
    Task<bool> TryUseNonceAsync(string caller, string nonce, DateTimeOffset expires, CancellationToken cancellationToken);

    /// <summary>
    /// Queues a sealed enrollment request for <paramref name="school"/> under <paramref name="id"/> (a random 128-bit
    /// capability chosen by the relay) and returns its position in the school's queue (1-based, gap-free).
    /// </summary>
    Task<long> EnqueueEnrollmentAsync(string school, string id, ReadOnlyMemory<byte> request, CancellationToken cancellationToken);

    /// <summary>How many of the school's requests are still unanswered (for the queue limit).</summary>
    Task<int> PendingEnrollmentCountAsync(string school, CancellationToken cancellationToken);

    /// <summary>The school's unanswered requests with a position greater than <paramref name="after"/>, in position order, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<StoredEnrollment>> ReadEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken);

    /// <summary>Stores the school's answer; the first answer stands.</summary>
    Task<EnrollmentAnswerOutcome> AnswerEnrollmentAsync(string school, string id, bool approved, ReadOnlyMemory<byte> answer, CancellationToken cancellationToken);

    /// <summary>The request's state by id, or null when unknown.</summary>
    Task<StoredEnrollmentAnswer?> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken);
}
