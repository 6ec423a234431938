using System.Security.Cryptography;

namespace IMikelGo.Sealing.Crypto;

/// <summary>DHKEM(P-256, HKDF-SHA256), RFC 9180 §4.1 and §7.1.3.</summary>
internal static class DhkemP256
{
    public const ushort KemId = 0x0010;
    public const int SecretLength = 32;
    public const int EncLength = P256.PublicKeyLength;

    // "KEM" || I2OSP(kem_id, 2)
    private static ReadOnlySpan<byte> SuiteId => [0x4B, 0x45, 0x4D, 0x00, 0x10];

    /// <summary>DeriveKeyPair's scalar: rejection sampling with bitmask 0xFF (RFC 9180 §7.1.3).</summary>
    public static void DeriveScalar(ReadOnlySpan<byte> ikm, Span<byte> scalar)
    {
        Span<byte> prk = stackalloc byte[HkdfSha256.HashLength];
        Span<byte> counter = stackalloc byte[1];
        try
        {
            Labeled.Extract(SuiteId, [], "dkp_prk"u8, ikm, prk);
            for (var i = 0; i < 256; i++)
            {
                counter[0] = (byte)i;
                Labeled.Expand(SuiteId, prk, "candidate"u8, counter, scalar);
                scalar[0] &= 0xFF; // the P-256 bitmask (a no-op, kept to mirror the RFC)
                if (P256.IsValidScalar(scalar))
                {
                    return;
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(prk);
        }

        CryptographicOperations.ZeroMemory(scalar);
        throw new CryptographicException("DeriveKeyPairError: no valid P-256 scalar in 256 candidates.");
    }

    private static byte[] ExtractAndExpand(ReadOnlySpan<byte> dh, ReadOnlySpan<byte> kemContext)
    {
        Span<byte> prk = stackalloc byte[HkdfSha256.HashLength];
        try
        {
            Labeled.Extract(SuiteId, [], "eae_prk"u8, dh, prk);
            return Labeled.Expand(SuiteId, prk, "shared_secret"u8, kemContext, SecretLength);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(prk);
        }
    }

    public static byte[] Encap(RecipientPublicKey pkR, EncryptionKeyPair ephemeral, out byte[] enc)
        => Encap(pkR, ephemeral, sender: null, out enc);

    /// <summary>Encap (sender null) or AuthEncap (sender given).</summary>
    public static byte[] Encap(RecipientPublicKey pkR, EncryptionKeyPair ephemeral, EncryptionKeyPair? sender, out byte[] enc)
    {
        enc = ephemeral.PublicKey.Encoded.ToArray();
        var dhLength = sender is null ? 32 : 64;
        var dh = new byte[dhLength];
        var kemContext = new byte[EncLength * (sender is null ? 2 : 3)];
        try
        {
            if (!P256.TryDeriveSharedSecret(ephemeral.Ecdh, pkR.Span, out var dh1, out var error))
            {
                throw new CryptographicException(error.Message);
            }

            dh1.CopyTo(dh, 0);
            CryptographicOperations.ZeroMemory(dh1);
            if (sender is not null)
            {
                if (!P256.TryDeriveSharedSecret(sender.Ecdh, pkR.Span, out var dh2, out error))
                {
                    throw new CryptographicException(error.Message);
                }

                dh2.CopyTo(dh, 32);
                CryptographicOperations.ZeroMemory(dh2);
            }

            enc.CopyTo(kemContext, 0);
            pkR.Span.CopyTo(kemContext.AsSpan(EncLength));
            sender?.PublicKey.Span.CopyTo(kemContext.AsSpan(2 * EncLength));
            return ExtractAndExpand(dh, kemContext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dh);
        }
    }

    /// <summary>Decap (senderPublic null) or AuthDecap (senderPublic given).</summary>
    public static bool TryDecap(ReadOnlySpan<byte> enc, EncryptionKeyPair recipient, RecipientPublicKey? senderPublic,
        out byte[] sharedSecret, out SealingError error)
    {
        sharedSecret = [];
        var dh = new byte[senderPublic is null ? 32 : 64];
        try
        {
            if (!P256.TryDeriveSharedSecret(recipient.Ecdh, enc, out var dh1, out error))
            {
                error = new SealingError(error.Code, "HPKE encapsulated key is invalid: " + error.Message);
                return false;
            }

            dh1.CopyTo(dh, 0);
            CryptographicOperations.ZeroMemory(dh1);
            if (senderPublic is not null)
            {
                if (!P256.TryDeriveSharedSecret(recipient.Ecdh, senderPublic.Span, out var dh2, out error))
                {
                    return false;
                }

                dh2.CopyTo(dh, 32);
                CryptographicOperations.ZeroMemory(dh2);
            }

            var kemContext = new byte[EncLength * (senderPublic is null ? 2 : 3)];
            enc.CopyTo(kemContext);
            recipient.PublicKey.Span.CopyTo(kemContext.AsSpan(EncLength));
            senderPublic?.Span.CopyTo(kemContext.AsSpan(2 * EncLength));
            sharedSecret = ExtractAndExpand(dh, kemContext);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dh);
        }
    }
}
