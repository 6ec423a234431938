using System.Security.Cryptography;

namespace IMikelGo.Sealing.Crypto;

/// <summary>NIST P-256 helpers on the platform's <see cref="ECDiffieHellman"/>: strict SEC1 uncompressed points only.</summary>
internal static class P256
{
    public const int PublicKeyLength = 65;
    public const int ScalarLength = 32;
    public const int SharedSecretLength = 32;

    // Group order n of P-256, big-endian.
    private static ReadOnlySpan<byte> Order =>
    [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ];

    // Field prime p of P-256, big-endian.
    private static ReadOnlySpan<byte> Prime =>
    [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ];

    /// <summary>True when 0 &lt; scalar &lt; n (big-endian, 32 bytes).</summary>
    public static bool IsValidScalar(ReadOnlySpan<byte> scalar)
    {
        if (scalar.Length != ScalarLength || scalar.IndexOfAnyExcept((byte)0) < 0)
        {
            return false;
        }

        return scalar.SequenceCompareTo(Order) < 0;
    }

    public static bool TryImportPublicKey(ReadOnlySpan<byte> point, out ECDiffieHellman? key, out SealingError error)
    {
        key = null;
        if (point.Length != PublicKeyLength)
        {
            error = new SealingError(SealingErrorCode.InvalidKey,
                $"P-256 public key must be a {PublicKeyLength}-byte uncompressed point, was {point.Length} bytes.");
            return false;
        }

        if (point[0] != 0x04)
        {
            error = new SealingError(SealingErrorCode.InvalidKey,
                $"P-256 public key must start with 0x04 (uncompressed point), found 0x{point[0]:x2}.");
            return false;
        }

        if (point.Slice(1, 32).SequenceCompareTo(Prime) >= 0 || point.Slice(33, 32).SequenceCompareTo(Prime) >= 0)
        {
            error = new SealingError(SealingErrorCode.InvalidKey, "P-256 public key coordinate is not below the field prime.");
            return false;
        }

        var parameters = new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = point.Slice(1, 32).ToArray(), Y = point.Slice(33, 32).ToArray() },
        };
        var ecdh = ECDiffieHellman.Create();
        try
        {
            ecdh.ImportParameters(parameters);
        }
        catch (CryptographicException)
        {
            ecdh.Dispose();
            error = new SealingError(SealingErrorCode.InvalidKey, "P-256 public key is not a point on the curve.");
            return false;
        }

        key = ecdh;
        error = SealingError.None;
        return true;
    }

    public static bool TryImportPrivateKey(ReadOnlySpan<byte> scalar, out ECDiffieHellman? key, out SealingError error)
    {
        key = null;
        if (!IsValidScalar(scalar))
        {
            error = new SealingError(SealingErrorCode.InvalidKey, "P-256 private key must be a 32-byte scalar in [1, n-1].");
            return false;
        }

        var d = scalar.ToArray();
        var parameters = new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d };
        var ecdh = ECDiffieHellman.Create();
        try
        {
            ecdh.ImportParameters(parameters);
        }
        catch (CryptographicException)
        {
            ecdh.Dispose();
            error = new SealingError(SealingErrorCode.InvalidKey, "P-256 private key could not be imported.");
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(d);
        }

        key = ecdh;
        error = SealingError.None;
        return true;
    }

    public static byte[] ExportPublicKey(ECDiffieHellman key)
    {
        var p = key.ExportParameters(includePrivateParameters: false);
        var point = new byte[PublicKeyLength];
        point[0] = 0x04;
        p.Q.X!.CopyTo(point.AsSpan(1));
        p.Q.Y!.CopyTo(point.AsSpan(33));
        return point;
    }

    /// <summary>ECDH: the x-coordinate of d·Q (32 bytes), after validating the peer point.</summary>
    public static bool TryDeriveSharedSecret(ECDiffieHellman privateKey, ReadOnlySpan<byte> peerPoint,
        out byte[] sharedSecret, out SealingError error)
    {
        sharedSecret = [];
        if (!TryImportPublicKey(peerPoint, out var peer, out error))
        {
            return false;
        }

        using (peer)
        {
            try
            {
                sharedSecret = privateKey.DeriveRawSecretAgreement(peer!.PublicKey);
            }
            catch (CryptographicException)
            {
                error = new SealingError(SealingErrorCode.InvalidKey, "ECDH key agreement failed for this public key.");
                return false;
            }
        }

        // No all-zero check: x = 0 is a legitimate P-256 shared secret (Wycheproof tc 3); P-256 has prime order,
        // so a validated point and a valid scalar never give the point at infinity.
        return true;
    }
}
