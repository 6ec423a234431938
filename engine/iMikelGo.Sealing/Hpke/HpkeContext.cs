using System.Buffers.Binary;
using System.Security.Cryptography;

namespace IMikelGo.Sealing.Crypto;

internal enum HpkeMode : byte
{
    Base = 0,
    Psk = 1,
    Auth = 2,
    AuthPsk = 3,
}

/// <summary>An RFC 9180 encryption context (sender or receiver): key, base nonce, sequence number, exporter secret.</summary>
internal sealed class HpkeContext : IDisposable
{
    private const int NonceLength = 12;
    private readonly byte[] _key;
    private readonly byte[] _baseNonce;
    private readonly byte[] _exporterSecret;
    private readonly HpkeSuite _suite;
    private ulong _sequence;

    private HpkeContext(HpkeSuite suite, byte[] key, byte[] baseNonce, byte[] exporterSecret)
    {
        _suite = suite;
        _key = key;
        _baseNonce = baseNonce;
        _exporterSecret = exporterSecret;
    }

    internal ReadOnlySpan<byte> Key => _key;

    internal ReadOnlySpan<byte> BaseNonce => _baseNonce;

    internal ReadOnlySpan<byte> ExporterSecret => _exporterSecret;

    internal ulong Sequence => _sequence;

    /// <summary>RFC 9180 §5.1 KeySchedule.</summary>
    public static HpkeContext KeySchedule(HpkeSuite suite, HpkeMode mode, ReadOnlySpan<byte> sharedSecret,
        ReadOnlySpan<byte> info, ReadOnlySpan<byte> psk, ReadOnlySpan<byte> pskId)
    {
        VerifyPskInputs(mode, psk, pskId);
        var sid = suite.SuiteId;
        Span<byte> context = stackalloc byte[1 + 32 + 32];
        context[0] = (byte)mode;
        Labeled.Extract(sid, [], "psk_id_hash"u8, pskId, context.Slice(1, 32));
        Labeled.Extract(sid, [], "info_hash"u8, info, context.Slice(33, 32));
        Span<byte> secret = stackalloc byte[32];
        try
        {
            Labeled.Extract(sid, sharedSecret, "secret"u8, psk, secret);
            var key = Labeled.Expand(sid, secret, "key"u8, context, suite.KeyLength);
            var nonce = Labeled.Expand(sid, secret, "base_nonce"u8, context, NonceLength);
            var exporter = Labeled.Expand(sid, secret, "exp"u8, context, HkdfSha256.HashLength);
            return new HpkeContext(suite, key, nonce, exporter);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    internal static byte[] KeyScheduleContext(HpkeSuite suite, HpkeMode mode, ReadOnlySpan<byte> info, ReadOnlySpan<byte> pskId)
    {
        var context = new byte[65];
        context[0] = (byte)mode;
        Labeled.Extract(suite.SuiteId, [], "psk_id_hash"u8, pskId, context.AsSpan(1, 32));
        Labeled.Extract(suite.SuiteId, [], "info_hash"u8, info, context.AsSpan(33, 32));
        return context;
    }

    private static void VerifyPskInputs(HpkeMode mode, ReadOnlySpan<byte> psk, ReadOnlySpan<byte> pskId)
    {
        var gotPsk = !psk.IsEmpty;
        var gotPskId = !pskId.IsEmpty;
        if (gotPsk != gotPskId)
        {
            throw new ArgumentException("Inconsistent PSK inputs: give both psk and psk_id or neither.");
        }

        if (gotPsk && mode is HpkeMode.Base or HpkeMode.Auth)
        {
            throw new ArgumentException("PSK input provided when not needed.");
        }

        if (!gotPsk && mode is HpkeMode.Psk or HpkeMode.AuthPsk)
        {
            throw new ArgumentException("Missing required PSK input.");
        }

        if (gotPsk && psk.Length < 32)
        {
            throw new ArgumentException("The PSK must have at least 32 bytes.");
        }
    }

    private void ComputeNonce(Span<byte> nonce)
    {
        _baseNonce.CopyTo(nonce);
        Span<byte> seq = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(seq, _sequence);
        for (var i = 0; i < 8; i++)
        {
            nonce[NonceLength - 8 + i] ^= seq[i];
        }
    }

    private void IncrementSequence()
    {
        if (_sequence == ulong.MaxValue)
        {
            throw new CryptographicException("MessageLimitReachedError: the HPKE sequence number is exhausted.");
        }

        _sequence++;
    }

    public byte[] Seal(ReadOnlySpan<byte> aad, ReadOnlySpan<byte> plaintext)
    {
        Span<byte> nonce = stackalloc byte[NonceLength];
        ComputeNonce(nonce);
        if (!AesGcmAead.TrySeal(_key, nonce, plaintext, aad, out var ct, out var error))
        {
            throw new CryptographicException(error.Message);
        }

        IncrementSequence();
        return ct;
    }

    public bool TryOpen(ReadOnlySpan<byte> aad, ReadOnlySpan<byte> ciphertext, out byte[] plaintext, out SealingError error)
    {
        Span<byte> nonce = stackalloc byte[NonceLength];
        ComputeNonce(nonce);
        if (!AesGcmAead.TryOpen(_key, nonce, ciphertext, aad, out plaintext, out error))
        {
            return false;
        }

        IncrementSequence();
        return true;
    }

    /// <summary>RFC 9180 §5.3 secret export.</summary>
    public byte[] Export(ReadOnlySpan<byte> exporterContext, int length)
    {
        if (length is < 0 or > HkdfSha256.MaxOutputLength)
        {
            throw new ArgumentOutOfRangeException(nameof(length), "Export length must be between 0 and 8160 bytes.");
        }

        return Labeled.Expand(_suite.SuiteId, _exporterSecret, "sec"u8, exporterContext, length);
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_key);
        CryptographicOperations.ZeroMemory(_baseNonce);
        CryptographicOperations.ZeroMemory(_exporterSecret);
    }
}

/// <summary>RFC 9180 §5.1 SetupS / SetupR for all four modes.</summary>
internal static class HpkeSetup
{
    public static HpkeContext SetupSender(HpkeSuite suite, HpkeMode mode, RecipientPublicKey recipient,
        ReadOnlySpan<byte> info, ReadOnlySpan<byte> psk, ReadOnlySpan<byte> pskId, EncryptionKeyPair? sender,
        EncryptionKeyPair? ephemeral, out byte[] enc)
    {
        var isAuth = mode is HpkeMode.Auth or HpkeMode.AuthPsk;
        if (isAuth != (sender is not null))
        {
            throw new ArgumentException("Auth modes need a sender key; other modes must not have one.", nameof(sender));
        }

        var eph = ephemeral ?? EncryptionKeyPair.Generate();
        try
        {
            var shared = DhkemP256.Encap(recipient, eph, sender, out enc);
            try
            {
                return HpkeContext.KeySchedule(suite, mode, shared, info, psk, pskId);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(shared);
            }
        }
        finally
        {
            if (ephemeral is null)
            {
                eph.Dispose();
            }
        }
    }

    public static bool TrySetupReceiver(HpkeSuite suite, HpkeMode mode, ReadOnlySpan<byte> enc, EncryptionKeyPair recipient,
        ReadOnlySpan<byte> info, ReadOnlySpan<byte> psk, ReadOnlySpan<byte> pskId, RecipientPublicKey? senderPublic,
        out HpkeContext? context, out SealingError error)
    {
        context = null;
        var isAuth = mode is HpkeMode.Auth or HpkeMode.AuthPsk;
        if (isAuth != (senderPublic is not null))
        {
            throw new ArgumentException("Auth modes need a sender public key; other modes must not have one.", nameof(senderPublic));
        }

        if (!DhkemP256.TryDecap(enc, recipient, senderPublic, out var shared, out error))
        {
            return false;
        }

        try
        {
            context = HpkeContext.KeySchedule(suite, mode, shared, info, psk, pskId);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }
    }
}
