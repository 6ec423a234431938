namespace IMikelGo.Sealing;

/// <summary>The events of one replica covered by a bundle: sequence numbers <see cref="FromSequence"/>..<see cref="ToSequence"/> inclusive.</summary>
/// <param name="ReplicaId">The replica whose chain the events come from.</param>
/// <param name="FromSequence">First sequence number (at least 1).</param>
/// <param name="ToSequence">Last sequence number (at least <paramref name="FromSequence"/>).</param>
public readonly record struct SequenceRange(string ReplicaId, ulong FromSequence, ulong ToSequence);

/// <summary>Size limits enforced when sealing and before any allocation when parsing.</summary>
public sealed record BundleLimits
{
    /// <summary>The defaults: 16 MiB payload, 64 recipients, 256 ranges.</summary>
    public static BundleLimits Default { get; } = new();

    /// <summary>Largest payload (plaintext) in bytes. Hard ceiling 256 MiB.</summary>
    public int MaxPayloadBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>Most recipients per bundle (1..1024).</summary>
    public int MaxRecipients { get; init; } = 64;

    /// <summary>Most sequence ranges per bundle (1..4096).</summary>
    public int MaxRanges { get; init; } = 256;

    internal void Validate()
    {
        if (MaxPayloadBytes is < 0 or > 256 * 1024 * 1024 || MaxRecipients is < 1 or > 1024 || MaxRanges is < 1 or > 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(BundleLimits), "Bundle limits are outside their hard ceilings.");
        }
    }
}

/// <summary>The authenticated header of a bundle (readable without keys; authenticated only once opened).</summary>
public sealed class BundleHeader
{
    internal BundleHeader(string accountId, string senderReplicaId, Guid bundleId, IReadOnlyList<SequenceRange> ranges,
        IReadOnlyList<KeyId> recipientKeyIds, int payloadLength)
    {
        AccountId = accountId;
        SenderReplicaId = senderReplicaId;
        BundleId = bundleId;
        Ranges = ranges;
        RecipientKeyIds = recipientKeyIds;
        PayloadLength = payloadLength;
    }

    /// <summary>The format version (1).</summary>
    public int FormatVersion => Bundle.FormatVersion;

    /// <summary>The account (mailbox) the bundle belongs to.</summary>
    public string AccountId { get; }

    /// <summary>The replica that sealed the bundle (not proven by the bundle itself; events carry signatures).</summary>
    public string SenderReplicaId { get; }

    /// <summary>A random 16-byte id, unique per bundle; the relay's idempotency key and the replay detector's key.</summary>
    public Guid BundleId { get; }

    /// <summary>The covered sequence ranges, sorted by replica id (ordinal), one per replica.</summary>
    public IReadOnlyList<SequenceRange> Ranges { get; }

    /// <summary>The recipients' key ids, sorted ascending.</summary>
    public IReadOnlyList<KeyId> RecipientKeyIds { get; }

    /// <summary>Length of the payload in bytes.</summary>
    public int PayloadLength { get; }
}

/// <summary>A sealed bundle ready to push to the relay.</summary>
/// <param name="BundleId">The bundle's random id.</param>
/// <param name="Bytes">The sealed bytes (format in docs/sealing.md).</param>
public sealed record SealedBundle(Guid BundleId, byte[] Bytes);

/// <summary>An opened, authenticated bundle.</summary>
public sealed class OpenedBundle
{
    internal OpenedBundle(BundleHeader header, byte[] payload, KeyId openedWith)
    {
        Header = header;
        Payload = payload;
        OpenedWith = openedWith;
    }

    /// <summary>The authenticated header.</summary>
    public BundleHeader Header { get; }

    /// <summary>The plaintext payload (the sender's serialized events).</summary>
    public byte[] Payload { get; }

    /// <summary>The recipient key that opened it.</summary>
    public KeyId OpenedWith { get; }
}
