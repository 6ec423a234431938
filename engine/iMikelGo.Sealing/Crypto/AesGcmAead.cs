using System.Security.Cryptography;

namespace IMikelGo.Sealing.Crypto;

/// <summary>
/// AES-GCM on the platform's <see cref="AesGcm"/>, restricted to what the engine uses and what is safe:
/// 16/24/32-byte keys, 12-byte nonces and full 16-byte tags. Ciphertexts are laid out as <c>ct || tag</c>.
/// </summary>
internal static class AesGcmAead
{
    public const int NonceSize = 12;
    public const int TagSize = 16;

    public static bool TryCheckParameters(int keyLength, int nonceLength, int tagLength, out SealingError error)
    {
        if (keyLength is not (16 or 24 or 32))
        {
            error = new SealingError(SealingErrorCode.InvalidKey, $"AES-GCM key must be 16, 24 or 32 bytes, was {keyLength}.");
            return false;
        }

        if (nonceLength != NonceSize)
        {
            error = new SealingError(SealingErrorCode.Unsupported, $"AES-GCM nonce must be {NonceSize} bytes, was {nonceLength}.");
            return false;
        }

        if (tagLength != TagSize)
        {
            error = new SealingError(SealingErrorCode.Unsupported, $"AES-GCM tag must be {TagSize} bytes, was {tagLength}.");
            return false;
        }

        error = SealingError.None;
        return true;
    }

    public static bool TrySeal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext,
        ReadOnlySpan<byte> aad, out byte[] ciphertextAndTag, out SealingError error)
    {
        ciphertextAndTag = [];
        if (!TryCheckParameters(key.Length, nonce.Length, TagSize, out error))
        {
            return false;
        }

        var output = new byte[plaintext.Length + TagSize];
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(0, plaintext.Length), output.AsSpan(plaintext.Length), aad);
        ciphertextAndTag = output;
        return true;
    }

    public static bool TryOpen(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertextAndTag,
        ReadOnlySpan<byte> aad, out byte[] plaintext, out SealingError error)
    {
        plaintext = [];
        if (!TryCheckParameters(key.Length, nonce.Length, TagSize, out error))
        {
            return false;
        }

        if (ciphertextAndTag.Length < TagSize)
        {
            error = SealingError.Malformed($"AES-GCM ciphertext is shorter than the {TagSize}-byte tag.");
            return false;
        }

        var ctLength = ciphertextAndTag.Length - TagSize;
        var output = new byte[ctLength];
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(nonce, ciphertextAndTag[..ctLength], ciphertextAndTag[ctLength..], output, aad);
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(output);
            error = new SealingError(SealingErrorCode.AuthenticationFailed,
                "AES-GCM authentication tag does not match: the data was altered or the key is wrong.");
            return false;
        }

        plaintext = output;
        return true;
    }
}
