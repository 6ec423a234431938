using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Sealing.Crypto;

namespace IMikelGo.Sealing;

/// <summary>
/// Seals a batch of bytes once under a fresh AES-256-GCM content key and wraps that key for each recipient with
/// HPKE base mode (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM). Format: docs/sealing.md.
/// </summary>
public static class Bundle
{
    /// <summary>The format version written and accepted.</summary>
    public const int FormatVersion = 1;

    internal const int WrappedKeyLength = ContentKeyLength + AesGcmAead.TagSize;
    internal const int RecipientEntryLength = KeyId.Length + DhkemP256.EncLength + WrappedKeyLength;
    private const int ContentKeyLength = 32;
    private const int BundleIdLength = 16;

    internal static ReadOnlySpan<byte> Magic => "IMGB"u8;

    internal static ReadOnlySpan<byte> WrapInfo => "iMikelGo bundle v1 content key"u8;

    private static HpkeSuite Suite => HpkeSuite.P256Sha256Aes256Gcm;

    /// <summary>Seals <paramref name="payload"/> for <paramref name="recipients"/> with a new random bundle id.</summary>
    /// <param name="accountId">The account (mailbox) the bundle is for.</param>
    /// <param name="senderReplicaId">The sealing replica.</param>
    /// <param name="ranges">The covered sequence ranges (at least one; one per replica).</param>
    /// <param name="payload">The serialized events.</param>
    /// <param name="recipients">Recipient keys (from non-revoked roster entries); duplicates are merged.</param>
    /// <param name="limits">Size limits; <see cref="BundleLimits.Default"/> when null.</param>
    /// <returns>The sealed bundle.</returns>
    /// <exception cref="ArgumentException">An argument breaks the format's rules or limits.</exception>
    public static SealedBundle Seal(string accountId, string senderReplicaId, IEnumerable<SequenceRange> ranges,
        ReadOnlySpan<byte> payload, IEnumerable<RecipientPublicKey> recipients, BundleLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        ArgumentNullException.ThrowIfNull(recipients);
        limits ??= BundleLimits.Default;
        limits.Validate();
        Identifiers.Require(accountId, nameof(accountId));
        Identifiers.Require(senderReplicaId, nameof(senderReplicaId));

        var sortedRanges = ranges.OrderBy(r => r.ReplicaId, StringComparer.Ordinal).ToList();
        if (sortedRanges.Count < 1 || sortedRanges.Count > limits.MaxRanges)
        {
            throw new ArgumentException($"A bundle covers 1..{limits.MaxRanges} sequence ranges, got {sortedRanges.Count}.", nameof(ranges));
        }

        for (var i = 0; i < sortedRanges.Count; i++)
        {
            var r = sortedRanges[i];
            Identifiers.Require(r.ReplicaId, nameof(ranges));
            if (r.FromSequence < 1 || r.ToSequence < r.FromSequence)
            {
                throw new ArgumentException($"Range for '{r.ReplicaId}' must satisfy 1 <= from <= to.", nameof(ranges));
            }

            if (i > 0 && string.Equals(sortedRanges[i - 1].ReplicaId, r.ReplicaId, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Replica '{r.ReplicaId}' appears in more than one range.", nameof(ranges));
            }
        }

        var sortedRecipients = recipients.DistinctBy(r => r.Id).OrderBy(r => r.Id, KeyIdComparer.Instance).ToList();
        if (sortedRecipients.Count < 1 || sortedRecipients.Count > limits.MaxRecipients)
        {
            throw new ArgumentException($"A bundle has 1..{limits.MaxRecipients} recipients, got {sortedRecipients.Count}.", nameof(recipients));
        }

        if (payload.Length > limits.MaxPayloadBytes)
        {
            throw new ArgumentException($"Payload of {payload.Length} bytes exceeds the limit of {limits.MaxPayloadBytes}.", nameof(payload));
        }

        Span<byte> idBytes = stackalloc byte[BundleIdLength];
        RandomNumberGenerator.Fill(idBytes);
        var bundleId = new Guid(idBytes, bigEndian: true);

        // Fixed part up to and including the ranges.
        var fixedPart = WriteFixedPart(accountId, senderReplicaId, idBytes, sortedRanges);
        var bound = BoundHeader(fixedPart, sortedRecipients.Select(r => r.Id).ToList());
        var prefixLength = fixedPart.Length + 2 + (sortedRecipients.Count * RecipientEntryLength) + 4;
        var output = new byte[prefixLength + payload.Length + AesGcmAead.TagSize];
        fixedPart.CopyTo(output, 0);
        var pos = fixedPart.Length;
        BinaryPrimitives.WriteUInt16BigEndian(output.AsSpan(pos), (ushort)sortedRecipients.Count);
        pos += 2;

        var contentKey = new byte[ContentKeyLength];
        try
        {
            RandomNumberGenerator.Fill(contentKey);
            Span<byte> wrapAad = stackalloc byte[32 + KeyId.Length];
            SHA256.HashData(bound, wrapAad);
            foreach (var recipient in sortedRecipients)
            {
                recipient.Id.WriteTo(wrapAad[32..]);
                var wrapped = Hpke.SealBase(Suite, recipient, WrapInfo, wrapAad, contentKey, out var enc);
                recipient.Id.WriteTo(output.AsSpan(pos));
                enc.CopyTo(output, pos + KeyId.Length);
                wrapped.CopyTo(output, pos + KeyId.Length + DhkemP256.EncLength);
                pos += RecipientEntryLength;
            }

            BinaryPrimitives.WriteUInt32BigEndian(output.AsSpan(pos), (uint)(payload.Length + AesGcmAead.TagSize));
            pos += 4;
            using var aes = new AesGcm(contentKey, AesGcmAead.TagSize);
            Span<byte> nonce = stackalloc byte[AesGcmAead.NonceSize]; // all zero: the content key is used exactly once
            aes.Encrypt(nonce, payload, output.AsSpan(pos, payload.Length), output.AsSpan(pos + payload.Length), output.AsSpan(0, prefixLength));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contentKey);
        }

        return new SealedBundle(bundleId, output);
    }

    /// <summary>Parses and checks a bundle's structure and limits without decrypting (e.g. for the relay).</summary>
    /// <param name="bundle">The sealed bytes.</param>
    /// <param name="header">The header when well formed (not yet authenticated).</param>
    /// <param name="error">What is wrong.</param>
    /// <param name="limits">Size limits; <see cref="BundleLimits.Default"/> when null.</param>
    /// <returns>True when the bytes are a well-formed version 1 bundle.</returns>
    public static bool TryReadHeader(ReadOnlySpan<byte> bundle, [NotNullWhen(true)] out BundleHeader? header,
        out SealingError error, BundleLimits? limits = null)
    {
        header = null;
        if (!TryParse(bundle, limits ?? BundleLimits.Default, out var parsed, out error))
        {
            return false;
        }

        header = parsed!.Header;
        return true;
    }

    /// <summary>Opens a bundle addressed to one of <paramref name="keys"/> in the mailbox of <paramref name="expectedAccountId"/>.</summary>
    /// <param name="bundle">The sealed bytes.</param>
    /// <param name="expectedAccountId">The account whose mailbox the bundle was read from.</param>
    /// <param name="keys">The recipient's private keys (a key pair or a <see cref="RecipientKeyRing"/>).</param>
    /// <param name="opened">The authenticated header and payload.</param>
    /// <param name="error">Why it was refused; no plaintext is returned then.</param>
    /// <param name="limits">Size limits; <see cref="BundleLimits.Default"/> when null.</param>
    /// <returns>True when the bundle is authentic and addressed to the caller.</returns>
    public static bool TryOpen(ReadOnlySpan<byte> bundle, string expectedAccountId, IRecipientKeys keys,
        [NotNullWhen(true)] out OpenedBundle? opened, out SealingError error, BundleLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        opened = null;
        if (!TryParse(bundle, limits ?? BundleLimits.Default, out var parsed, out error))
        {
            return false;
        }

        var header = parsed!.Header;
        if (!string.Equals(header.AccountId, expectedAccountId, StringComparison.Ordinal))
        {
            error = new SealingError(SealingErrorCode.WrongAccount,
                $"Bundle belongs to account '{header.AccountId}', expected '{expectedAccountId}'.");
            return false;
        }

        EncryptionKeyPair? key = null;
        var index = -1;
        for (var i = 0; i < header.RecipientKeyIds.Count; i++)
        {
            if (keys.TryGetKey(header.RecipientKeyIds[i], out key))
            {
                index = i;
                break;
            }
        }

        if (key is null)
        {
            error = new SealingError(SealingErrorCode.NotARecipient, "None of this device's keys is a recipient of the bundle.");
            return false;
        }

        var entry = bundle.Slice(parsed.RecipientsOffset + (index * RecipientEntryLength), RecipientEntryLength);
        Span<byte> wrapAad = stackalloc byte[32 + KeyId.Length];
        SHA256.HashData(parsed.BoundHeader, wrapAad);
        entry[..KeyId.Length].CopyTo(wrapAad[32..]);
        if (!Hpke.TryOpenBase(Suite, key, entry.Slice(KeyId.Length, DhkemP256.EncLength), WrapInfo, wrapAad,
                entry[(KeyId.Length + DhkemP256.EncLength)..], out var contentKey, out error))
        {
            error = new SealingError(error.Code == SealingErrorCode.InvalidKey ? SealingErrorCode.InvalidKey : SealingErrorCode.AuthenticationFailed,
                "The wrapped content key does not authenticate: the header or the wrapped key was altered, or the key is wrong. " + error.Message);
            return false;
        }

        try
        {
            Span<byte> nonce = stackalloc byte[AesGcmAead.NonceSize];
            if (!AesGcmAead.TryOpen(contentKey, nonce, bundle[parsed.CiphertextOffset..], bundle[..parsed.CiphertextOffset],
                    out var payload, out error))
            {
                error = new SealingError(SealingErrorCode.AuthenticationFailed,
                    "The bundle content does not authenticate: the ciphertext, a wrapped key or the header was altered.");
                return false;
            }

            opened = new OpenedBundle(header, payload, header.RecipientKeyIds[index]);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contentKey);
        }
    }

    /// <summary>
    /// Opens a bundle and records its id in <paramref name="seen"/>; a bundle already recorded is refused as
    /// <see cref="SealingErrorCode.Duplicate"/> before any decryption.
    /// </summary>
    /// <param name="bundle">The sealed bytes.</param>
    /// <param name="expectedAccountId">The account whose mailbox the bundle was read from.</param>
    /// <param name="keys">The recipient's private keys.</param>
    /// <param name="seen">The replay detector.</param>
    /// <param name="opened">The authenticated header and payload.</param>
    /// <param name="error">Why it was refused.</param>
    /// <param name="limits">Size limits; <see cref="BundleLimits.Default"/> when null.</param>
    /// <returns>True when the bundle is authentic, addressed to the caller and new.</returns>
    public static bool TryOpenOnce(ReadOnlySpan<byte> bundle, string expectedAccountId, IRecipientKeys keys, ISeenBundles seen,
        [NotNullWhen(true)] out OpenedBundle? opened, out SealingError error, BundleLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(seen);
        opened = null;
        if (!TryReadHeader(bundle, out var header, out error, limits))
        {
            return false;
        }

        if (seen.Contains(header.AccountId, header.BundleId))
        {
            error = new SealingError(SealingErrorCode.Duplicate, $"Bundle {header.BundleId} was already received (replay).");
            return false;
        }

        if (!TryOpen(bundle, expectedAccountId, keys, out opened, out error, limits))
        {
            return false;
        }

        if (!seen.TryRecord(header.AccountId, header.BundleId))
        {
            opened = null;
            error = new SealingError(SealingErrorCode.Duplicate, $"Bundle {header.BundleId} was already received (replay).");
            return false;
        }

        return true;
    }

    private static byte[] WriteFixedPart(string accountId, string sender, ReadOnlySpan<byte> bundleId, List<SequenceRange> ranges)
    {
        var size = 4 + 1 + 6 + 1 + accountId.Length + 1 + sender.Length + BundleIdLength + 2;
        foreach (var r in ranges)
        {
            size += 1 + r.ReplicaId.Length + 16;
        }

        var b = new byte[size];
        var pos = 0;
        Magic.CopyTo(b);
        pos += 4;
        b[pos++] = FormatVersion;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(pos), Suite.KemId);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(pos + 2), Suite.KdfId);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(pos + 4), Suite.AeadId);
        pos += 6;
        pos = WriteId(b, pos, accountId);
        pos = WriteId(b, pos, sender);
        bundleId.CopyTo(b.AsSpan(pos));
        pos += BundleIdLength;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(pos), (ushort)ranges.Count);
        pos += 2;
        foreach (var r in ranges)
        {
            pos = WriteId(b, pos, r.ReplicaId);
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(pos), r.FromSequence);
            BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(pos + 8), r.ToSequence);
            pos += 16;
        }

        return b;
    }

    private static int WriteId(byte[] b, int pos, string id)
    {
        b[pos] = (byte)id.Length;
        Encoding.ASCII.GetBytes(id, b.AsSpan(pos + 1));
        return pos + 1 + id.Length;
    }

    /// <summary>The bytes every wrapped key is bound to: the fixed part, the recipient count and every recipient key id.</summary>
    private static byte[] BoundHeader(ReadOnlySpan<byte> fixedPart, IReadOnlyList<KeyId> keyIds)
    {
        var bound = new byte[fixedPart.Length + 2 + (keyIds.Count * KeyId.Length)];
        fixedPart.CopyTo(bound);
        BinaryPrimitives.WriteUInt16BigEndian(bound.AsSpan(fixedPart.Length), (ushort)keyIds.Count);
        for (var i = 0; i < keyIds.Count; i++)
        {
            keyIds[i].WriteTo(bound.AsSpan(fixedPart.Length + 2 + (i * KeyId.Length)));
        }

        return bound;
    }

    private sealed record Parsed(BundleHeader Header, byte[] BoundHeader, int RecipientsOffset, int CiphertextOffset);

    private static bool TryParse(ReadOnlySpan<byte> b, BundleLimits limits, out Parsed? parsed, out SealingError error)
    {
        parsed = null;
        limits.Validate();
        var r = new Reader(b);
        if (!r.Take(4, out var magic, "magic") || !magic.SequenceEqual(Magic))
        {
            return Fail(r.Error ?? new SealingError(SealingErrorCode.Malformed, "bundle: magic is not 'IMGB' (not an iMikelGo bundle)."), out error);
        }

        if (!r.Byte(out var version, "format version"))
        {
            return Fail(r.Error!.Value, out error);
        }

        if (version != FormatVersion)
        {
            return Fail(new SealingError(SealingErrorCode.Unsupported, $"bundle: format version {version} is not supported (expected {FormatVersion})."), out error);
        }

        if (!r.U16(out var kem, "kem id") || !r.U16(out var kdf, "kdf id") || !r.U16(out var aead, "aead id"))
        {
            return Fail(r.Error!.Value, out error);
        }

        if (kem != Suite.KemId || kdf != Suite.KdfId || aead != Suite.AeadId)
        {
            return Fail(new SealingError(SealingErrorCode.Unsupported,
                $"bundle: HPKE suite kem 0x{kem:x4} kdf 0x{kdf:x4} aead 0x{aead:x4} is not supported (expected 0x0010/0x0001/0x0002)."), out error);
        }

        if (!r.Id(out var account, "account id") || !r.Id(out var sender, "sender replica id") || !r.Take(BundleIdLength, out var idBytes, "bundle id"))
        {
            return Fail(r.Error!.Value, out error);
        }

        var bundleId = new Guid(idBytes, bigEndian: true);
        if (!r.U16(out var rangeCount, "range count"))
        {
            return Fail(r.Error!.Value, out error);
        }

        if (rangeCount < 1 || rangeCount > limits.MaxRanges)
        {
            return Fail(new SealingError(rangeCount < 1 ? SealingErrorCode.Malformed : SealingErrorCode.LimitExceeded,
                $"bundle: range count {rangeCount} is outside 1..{limits.MaxRanges}."), out error);
        }

        var ranges = new SequenceRange[rangeCount];
        for (var i = 0; i < rangeCount; i++)
        {
            if (!r.Id(out var replica, $"range {i} replica id") || !r.U64(out var from, $"range {i} from") || !r.U64(out var to, $"range {i} to"))
            {
                return Fail(r.Error!.Value, out error);
            }

            if (from < 1 || to < from)
            {
                return Fail(SealingError.Malformed($"bundle: range {i} ({replica}) must satisfy 1 <= from <= to, got {from}..{to}."), out error);
            }

            if (i > 0 && string.CompareOrdinal(ranges[i - 1].ReplicaId, replica) >= 0)
            {
                return Fail(SealingError.Malformed($"bundle: ranges are not strictly sorted by replica id at range {i}."), out error);
            }

            ranges[i] = new SequenceRange(replica, from, to);
        }

        var fixedLength = r.Position;
        if (!r.U16(out var recipientCount, "recipient count"))
        {
            return Fail(r.Error!.Value, out error);
        }

        if (recipientCount < 1 || recipientCount > limits.MaxRecipients)
        {
            return Fail(new SealingError(recipientCount < 1 ? SealingErrorCode.Malformed : SealingErrorCode.LimitExceeded,
                $"bundle: recipient count {recipientCount} is outside 1..{limits.MaxRecipients}."), out error);
        }

        var recipientsOffset = r.Position;
        if (!r.Take(recipientCount * RecipientEntryLength, out var entries, "recipient entries"))
        {
            return Fail(r.Error!.Value, out error);
        }

        var keyIds = new KeyId[recipientCount];
        for (var i = 0; i < recipientCount; i++)
        {
            keyIds[i] = KeyId.Read(entries.Slice(i * RecipientEntryLength, KeyId.Length));
            if (i > 0 && keyIds[i - 1].CompareTo(keyIds[i]) >= 0)
            {
                return Fail(SealingError.Malformed($"bundle: recipient key ids are not strictly ascending at entry {i}."), out error);
            }
        }

        if (!r.U32(out var ctLength, "ciphertext length"))
        {
            return Fail(r.Error!.Value, out error);
        }

        if (ctLength < AesGcmAead.TagSize || ctLength - AesGcmAead.TagSize > (uint)limits.MaxPayloadBytes)
        {
            return Fail(new SealingError(ctLength < AesGcmAead.TagSize ? SealingErrorCode.Malformed : SealingErrorCode.LimitExceeded,
                $"bundle: ciphertext length {ctLength} is outside {AesGcmAead.TagSize}..{(long)limits.MaxPayloadBytes + AesGcmAead.TagSize}."), out error);
        }

        var ciphertextOffset = r.Position;
        if (r.Remaining != ctLength)
        {
            return Fail(SealingError.Malformed(r.Remaining < ctLength
                ? $"bundle: truncated: ciphertext length says {ctLength} bytes, {r.Remaining} present."
                : $"bundle: {r.Remaining - ctLength} unexpected trailing bytes after the ciphertext."), out error);
        }

        var header = new BundleHeader(account, sender, bundleId, ranges, keyIds, (int)ctLength - AesGcmAead.TagSize);
        parsed = new Parsed(header, BoundHeader(b[..fixedLength], keyIds), recipientsOffset, ciphertextOffset);
        error = SealingError.None;
        return true;
    }

    private static bool Fail(SealingError e, out SealingError error)
    {
        error = e;
        return false;
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;

        public int Position { get; private set; }

        public readonly int Remaining => _data.Length - Position;

        public SealingError? Error { get; private set; }

        public bool Take(int count, out ReadOnlySpan<byte> bytes, string field)
        {
            if (count > Remaining)
            {
                bytes = default;
                Error = SealingError.Malformed($"bundle: truncated while reading {field} (needs {count} bytes, {Remaining} left).");
                return false;
            }

            bytes = _data.Slice(Position, count);
            Position += count;
            return true;
        }

        public bool Byte(out byte value, string field)
        {
            value = 0;
            if (!Take(1, out var s, field))
            {
                return false;
            }

            value = s[0];
            return true;
        }

        public bool U16(out ushort value, string field)
        {
            value = 0;
            if (!Take(2, out var s, field))
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16BigEndian(s);
            return true;
        }

        public bool U32(out uint value, string field)
        {
            value = 0;
            if (!Take(4, out var s, field))
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt32BigEndian(s);
            return true;
        }

        public bool U64(out ulong value, string field)
        {
            value = 0;
            if (!Take(8, out var s, field))
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt64BigEndian(s);
            return true;
        }

        public bool Id(out string value, string field)
        {
            value = string.Empty;
            if (!Byte(out var length, field + " length"))
            {
                return false;
            }

            if (length is < 1 or > Identifiers.MaxLength)
            {
                Error = new SealingError(length < 1 ? SealingErrorCode.Malformed : SealingErrorCode.LimitExceeded,
                    $"bundle: {field} length {length} is outside 1..{Identifiers.MaxLength}.");
                return false;
            }

            if (!Take(length, out var s, field))
            {
                return false;
            }

            foreach (var c in s)
            {
                if (!(char.IsAsciiLetterOrDigit((char)c) || c is (byte)'.' or (byte)'_' or (byte)'-'))
                {
                    Error = SealingError.Malformed($"bundle: {field} contains a character outside [A-Za-z0-9._-].");
                    return false;
                }
            }

            value = Encoding.ASCII.GetString(s);
            return true;
        }
    }
}

internal sealed class KeyIdComparer : IComparer<KeyId>
{
    public static readonly KeyIdComparer Instance = new();

    public int Compare(KeyId x, KeyId y) => x.CompareTo(y);
}
