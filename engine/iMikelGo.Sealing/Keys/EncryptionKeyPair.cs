using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using IMikelGo.Sealing.Crypto;

namespace IMikelGo.Sealing;

/// <summary>Resolves the private key for a recipient key id when opening sealed data.</summary>
public interface IRecipientKeys
{
    /// <summary>Finds the private key whose public key has the given id.</summary>
    /// <param name="keyId">The recipient key id found in a bundle.</param>
    /// <param name="key">The key pair when held.</param>
    /// <returns>True when this holder has the private key.</returns>
    bool TryGetKey(KeyId keyId, [NotNullWhen(true)] out EncryptionKeyPair? key);
}

/// <summary>
/// A P-256 key pair for HPKE (DHKEM(P-256, HKDF-SHA256)): a device's or school's encryption key.
/// Dispose it to release the private key.
/// </summary>
public sealed class EncryptionKeyPair : IRecipientKeys, IDisposable
{
    private readonly ECDiffieHellman _ecdh;

    private EncryptionKeyPair(ECDiffieHellman ecdh)
    {
        _ecdh = ecdh;
        PublicKey = RecipientPublicKey.FromTrusted(P256.ExportPublicKey(ecdh));
    }

    /// <summary>The public half.</summary>
    public RecipientPublicKey PublicKey { get; }

    /// <summary>The id of the public half.</summary>
    public KeyId Id => PublicKey.Id;

    internal ECDiffieHellman Ecdh => _ecdh;

    /// <summary>Generates a fresh random key pair.</summary>
    /// <returns>The new key pair.</returns>
    public static EncryptionKeyPair Generate() => new(ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>
    /// Derives a key pair deterministically from input keying material (RFC 9180 §7.1.3 DeriveKeyPair for P-256).
    /// Use only with at least 32 bytes of secret, uniformly random material.
    /// </summary>
    /// <param name="ikm">Input keying material.</param>
    /// <returns>The derived key pair.</returns>
    public static EncryptionKeyPair Derive(ReadOnlySpan<byte> ikm)
    {
        Span<byte> scalar = stackalloc byte[P256.ScalarLength];
        try
        {
            DhkemP256.DeriveScalar(ikm, scalar);
            if (!TryImport(scalar, out var key, out _))
            {
                throw new CryptographicException("Derived scalar could not be imported.");
            }

            return key;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(scalar);
        }
    }

    /// <summary>Imports a private key from its 32-byte big-endian scalar.</summary>
    /// <param name="privateScalar">The scalar (1 ≤ d &lt; n).</param>
    /// <param name="key">The key pair when valid.</param>
    /// <param name="error">Why the scalar was refused.</param>
    /// <returns>True when the scalar is a valid P-256 private key.</returns>
    public static bool TryImport(ReadOnlySpan<byte> privateScalar, [NotNullWhen(true)] out EncryptionKeyPair? key, out SealingError error)
    {
        key = null;
        if (!P256.TryImportPrivateKey(privateScalar, out var ecdh, out error))
        {
            return false;
        }

        key = new EncryptionKeyPair(ecdh!);
        return true;
    }

    /// <summary>Writes the 32-byte private scalar (for the device vault). The caller must zero the buffer after use.</summary>
    /// <param name="destination">At least 32 bytes.</param>
    /// <returns>The number of bytes written (32).</returns>
    public int ExportPrivateScalar(Span<byte> destination)
    {
        if (destination.Length < P256.ScalarLength)
        {
            throw new ArgumentException("Destination must hold 32 bytes.", nameof(destination));
        }

        var p = _ecdh.ExportParameters(includePrivateParameters: true);
        try
        {
            var d = p.D!;
            destination[..(P256.ScalarLength - d.Length)].Clear();
            d.CopyTo(destination[(P256.ScalarLength - d.Length)..]);
            return P256.ScalarLength;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(p.D);
        }
    }

    /// <inheritdoc />
    public bool TryGetKey(KeyId keyId, [NotNullWhen(true)] out EncryptionKeyPair? key)
    {
        key = keyId == Id ? this : null;
        return key is not null;
    }

    /// <inheritdoc />
    public void Dispose() => _ecdh.Dispose();

    /// <inheritdoc />
    public override string ToString() => $"P-256 key pair {Id}";
}
