using System.Security.Cryptography;

namespace IMikelGo.Sealing.Crypto;

/// <summary>HKDF with SHA-256 (RFC 5869) on the platform's <see cref="HKDF"/>, with its limits checked up front.</summary>
internal static class HkdfSha256
{
    public const int HashLength = 32;
    public const int MaxOutputLength = 255 * HashLength;

    public static void Extract(ReadOnlySpan<byte> salt, ReadOnlySpan<byte> ikm, Span<byte> prk)
        => HKDF.Extract(HashAlgorithmName.SHA256, ikm, salt, prk);

    public static void Expand(ReadOnlySpan<byte> prk, ReadOnlySpan<byte> info, Span<byte> output)
    {
        if (output.Length > MaxOutputLength)
        {
            throw new ArgumentOutOfRangeException(nameof(output), "HKDF-SHA256 output is limited to 8160 bytes.");
        }

        HKDF.Expand(HashAlgorithmName.SHA256, prk, output, info);
    }

    /// <summary>Full HKDF (extract then expand). Refuses output lengths above 255 * 32 bytes and below 1.</summary>
    public static bool TryDerive(ReadOnlySpan<byte> ikm, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> info, int length,
        out byte[] okm, out SealingError error)
    {
        if (length is < 1 or > MaxOutputLength)
        {
            okm = [];
            error = new SealingError(SealingErrorCode.LimitExceeded,
                $"HKDF-SHA256 output length must be between 1 and {MaxOutputLength} bytes, was {length}.");
            return false;
        }

        Span<byte> prk = stackalloc byte[HashLength];
        try
        {
            Extract(salt, ikm, prk);
            okm = new byte[length];
            Expand(prk, info, okm);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(prk);
        }

        error = SealingError.None;
        return true;
    }
}
