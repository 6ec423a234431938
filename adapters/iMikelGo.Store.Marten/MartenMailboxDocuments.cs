namespace IMikelGo.Store.Marten;

// Marten documents of the relay's mailbox store. Public only because Marten maps public types; not an API.
// Composite ids are length-prefixed ("5:alice/device-1") so two different pairs can never share an id.

/// <summary>A stored bundle: ciphertext, pseudonymous ids, size and time. Id: account and bundle id.</summary>
public sealed class MailboxBundleDocument
{
    /// <summary>Document id: <c>{account.Length}:{account}/{bundleId:D}</c>.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The mailbox (pseudonymous account id).</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The sealed bundle's id; unique per account (database unique index).</summary>
    public Guid BundleId { get; set; }

    /// <summary>Position in the mailbox, 1-based and gap-free; unique per account (database unique index).</summary>
    public long Position { get; set; }

    /// <summary>The pushing replica.</summary>
    public string Sender { get; set; } = string.Empty;

    /// <summary>The sealed bundle, byte for byte.</summary>
    public byte[] Data { get; set; } = [];

    /// <summary>Length of <see cref="Data"/>.</summary>
    public long Size { get; set; }

    /// <summary>When the relay stored it.</summary>
    public DateTimeOffset StoredAt { get; set; }
}

/// <summary>A mailbox's head position and total size; updated only under the account's advisory lock.</summary>
public sealed class MailboxHeadDocument
{
    /// <summary>The account.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Highest position.</summary>
    public long Head { get; set; }

    /// <summary>Total bytes stored.</summary>
    public long Size { get; set; }
}

/// <summary>Highest position a caller acknowledged in an account.</summary>
public sealed class MailboxAckDocument
{
    /// <summary>Composite id of account and caller.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The acknowledging caller.</summary>
    public string Caller { get; set; } = string.Empty;

    /// <summary>Everything up to here was received.</summary>
    public long Position { get; set; }
}

/// <summary>A caller known to the relay.</summary>
public sealed class RelayCallerDocument
{
    /// <summary>Caller (replica) id.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Its account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>SubjectPublicKeyInfo of its request-signing key.</summary>
    public byte[] SigningKey { get; set; } = [];

    /// <summary>Whether it is the school.</summary>
    public bool IsSchool { get; set; }
}

/// <summary>A revocation of one device, or of the whole account (<see cref="Device"/> null); kept apart from callers.</summary>
public sealed class RevocationDocument
{
    /// <summary>Composite id of account and device ("" for the whole account).</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The device, or null for every device of the account.</summary>
    public string? Device { get; set; }

    /// <summary>Why.</summary>
    public string Reason { get; set; } = string.Empty;

    /// <summary>When.</summary>
    public DateTimeOffset RevokedAt { get; set; }
}

/// <summary>A device's wipe acknowledgement.</summary>
public sealed class WipeAckDocument
{
    /// <summary>Composite id of account and device.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The device.</summary>
    public string Device { get; set; } = string.Empty;

    /// <summary>When.</summary>
    public DateTimeOffset AckedAt { get; set; }
}

/// <summary>A used request nonce; its id (caller and nonce) is the primary key, so a second use fails in the database.</summary>
public sealed class UsedNonceDocument
{
    /// <summary>Composite id of caller and nonce.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>When it may be pruned.</summary>
    public DateTimeOffset Expires { get; set; }
}

/// <summary>A queued enrollment request (opaque sealed bytes) and, once answered, the school's opaque answer.</summary>
public sealed class EnrollmentDocument
{
    /// <summary>The request id (128-bit random capability, hex).</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The school the request is for.</summary>
    public string School { get; set; } = string.Empty;

    /// <summary>Position in the school's queue, 1-based and gap-free; unique per school (database unique index).</summary>
    public long Position { get; set; }

    /// <summary>The sealed request, byte for byte.</summary>
    public byte[] Request { get; set; } = [];

    /// <summary>When the relay queued it.</summary>
    public DateTimeOffset ReceivedAt { get; set; }

    /// <summary>Whether the school answered.</summary>
    public bool Answered { get; set; }

    /// <summary>Whether the answer is an approval.</summary>
    public bool Approved { get; set; }

    /// <summary>The school's answer bytes.</summary>
    public byte[]? Answer { get; set; }

    /// <summary>When the school answered.</summary>
    public DateTimeOffset? AnsweredAt { get; set; }
}
