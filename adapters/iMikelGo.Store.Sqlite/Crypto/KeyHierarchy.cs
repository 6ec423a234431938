using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace IMikelGo.Store.Sqlite.Crypto;

/// <summary>
/// The vault's key hierarchy:
/// KEK = HKDF-SHA256(PBKDF2-SHA256(PIN, salt, n) || deviceSecret, salt, "imikelgo/kek/v1" || installId);
/// DEK (random 32 bytes) is wrapped by KEK with AES-256-GCM; the SQLite raw key, the payload-sealing key and the
/// counter MAC key are HKDF-SHA256 outputs of the DEK or the device secret with distinct labels.
/// </summary>
internal static class KeyHierarchy
{
    internal const int KeySize = 32;
    internal const int NonceSize = 12;
    internal const int TagSize = 16;

    /// <summary>The slow half: PBKDF2-SHA256 of the PIN (exposed for benchmarks).</summary>
    internal static byte[] DerivePinKey(string pin, ReadOnlySpan<byte> salt, int iterations)
    {
        // NFC: the same PIN typed on keyboards that compose differently (é vs e + ◌́) must derive the same key.
        var pinBytes = Encoding.UTF8.GetBytes(pin.Normalize(NormalizationForm.FormC));
        try
        {
            return Rfc2898DeriveBytes.Pbkdf2(pinBytes, salt, iterations, HashAlgorithmName.SHA256, KeySize);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pinBytes);
        }
    }

    /// <summary>Combines the PIN key with the device secret: without the device secret the KEK cannot be computed.</summary>
    internal static byte[] DeriveKek(ReadOnlySpan<byte> pinKey, ReadOnlySpan<byte> deviceSecret, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> installId)
    {
        var ikm = new byte[pinKey.Length + deviceSecret.Length];
        var info = Concat(Encoding.ASCII.GetBytes("imikelgo/kek/v1"), installId);
        try
        {
            pinKey.CopyTo(ikm);
            deviceSecret.CopyTo(ikm.AsSpan(pinKey.Length));
            return HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, KeySize, salt.ToArray(), info);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ikm);
        }
    }

    internal static byte[] DeriveKek(string pin, ReadOnlySpan<byte> deviceSecret, ReadOnlySpan<byte> salt, int iterations, ReadOnlySpan<byte> installId)
    {
        var pinKey = DerivePinKey(pin, salt, iterations);
        try
        {
            return DeriveKek(pinKey, deviceSecret, salt, installId);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pinKey);
        }
    }

    internal static byte[] Label(ReadOnlySpan<byte> key, string label, ReadOnlySpan<byte> context = default) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key.ToArray(), KeySize, salt: null, Concat(Encoding.ASCII.GetBytes(label), context));

    internal static byte[] DatabaseKey(ReadOnlySpan<byte> dek) => Label(dek, "imikelgo/sqlite/v1");

    internal static byte[] PayloadKey(ReadOnlySpan<byte> dek) => Label(dek, "imikelgo/payload/v1");

    internal static byte[] CounterMacKey(ReadOnlySpan<byte> deviceSecret, ReadOnlySpan<byte> installId) =>
        Label(deviceSecret, "imikelgo/pin-counter/v1", installId);

    internal static byte[] InstallMacKey(ReadOnlySpan<byte> deviceSecret) => Label(deviceSecret, "imikelgo/install/v1");

    /// <summary>AES-256-GCM: returns nonce || tag || ciphertext.</summary>
    internal static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var output = new byte[NonceSize + TagSize + plaintext.Length];
        var nonce = output.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(NonceSize + TagSize), output.AsSpan(NonceSize, TagSize), associatedData);
        return output;
    }

    /// <summary>Opens <see cref="Seal"/> output; throws <see cref="AuthenticationTagMismatchException"/> on a wrong key or tampering.</summary>
    internal static byte[] Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedData, ReadOnlySpan<byte> associatedData)
    {
        if (sealedData.Length < NonceSize + TagSize)
        {
            throw new CryptographicException("Sealed data is too short.");
        }

        var plaintext = new byte[sealedData.Length - NonceSize - TagSize];
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(sealedData[..NonceSize], sealedData[(NonceSize + TagSize)..], sealedData.Slice(NonceSize, TagSize), plaintext, associatedData);
        return plaintext;
    }

    /// <summary>Associated data binding an event payload to its identity: account|replica|seq|hash, length-prefixed.</summary>
    internal static byte[] EventAssociatedData(string account, string replica, long seq, ReadOnlySpan<byte> hash)
    {
        var a = Encoding.UTF8.GetBytes(account);
        var r = Encoding.UTF8.GetBytes(replica);
        var ad = new byte[6 + 4 + a.Length + 4 + r.Length + 8 + hash.Length];
        var span = ad.AsSpan();
        Encoding.ASCII.GetBytes("event|", span);
        span = span[6..];
        BinaryPrimitives.WriteInt32BigEndian(span, a.Length);
        a.CopyTo(span[4..]);
        span = span[(4 + a.Length)..];
        BinaryPrimitives.WriteInt32BigEndian(span, r.Length);
        r.CopyTo(span[4..]);
        span = span[(4 + r.Length)..];
        BinaryPrimitives.WriteInt64BigEndian(span, seq);
        hash.CopyTo(span[8..]);
        return ad;
    }

    internal static byte[] Concat(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var r = new byte[a.Length + b.Length];
        a.CopyTo(r);
        b.CopyTo(r.AsSpan(a.Length));
        return r;
    }
}
