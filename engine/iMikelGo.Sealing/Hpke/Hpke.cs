using System.Diagnostics.CodeAnalysis;
using IMikelGo.Sealing.Crypto;

namespace IMikelGo.Sealing;

/// <summary>
/// Single-shot HPKE (RFC 9180) base mode: encrypt one message to one recipient public key.
/// Bundles use this to wrap their content key; it is public for other sealed messages (e.g. enrollment secrets).
/// </summary>
public static class Hpke
{
    /// <summary>Encrypts <paramref name="plaintext"/> to <paramref name="recipient"/> with a fresh ephemeral key.</summary>
    /// <param name="suite">The cipher suite.</param>
    /// <param name="recipient">The recipient's public key.</param>
    /// <param name="info">Application context bound into the key schedule.</param>
    /// <param name="aad">Associated data authenticated with the ciphertext.</param>
    /// <param name="plaintext">The message.</param>
    /// <param name="encapsulatedKey">The 65-byte encapsulated key (enc) to send along.</param>
    /// <returns>The ciphertext including its 16-byte tag.</returns>
    public static byte[] SealBase(HpkeSuite suite, RecipientPublicKey recipient, ReadOnlySpan<byte> info,
        ReadOnlySpan<byte> aad, ReadOnlySpan<byte> plaintext, out byte[] encapsulatedKey)
        => SealBase(suite, recipient, info, aad, plaintext, ephemeral: null, out encapsulatedKey);

    internal static byte[] SealBase(HpkeSuite suite, RecipientPublicKey recipient, ReadOnlySpan<byte> info,
        ReadOnlySpan<byte> aad, ReadOnlySpan<byte> plaintext, EncryptionKeyPair? ephemeral, out byte[] encapsulatedKey)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(recipient);
        using var context = HpkeSetup.SetupSender(suite, HpkeMode.Base, recipient, info, [], [], null, ephemeral, out encapsulatedKey);
        return context.Seal(aad, plaintext);
    }

    /// <summary>Decrypts a message sealed with <see cref="SealBase(HpkeSuite, RecipientPublicKey, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, out byte[])"/>.</summary>
    /// <param name="suite">The cipher suite.</param>
    /// <param name="recipient">The recipient's key pair.</param>
    /// <param name="encapsulatedKey">The 65-byte enc.</param>
    /// <param name="info">The same info the sender used.</param>
    /// <param name="aad">The same associated data the sender used.</param>
    /// <param name="ciphertext">Ciphertext and tag.</param>
    /// <param name="plaintext">The message when authentic.</param>
    /// <param name="error">Why it was refused.</param>
    /// <returns>True when the message opened.</returns>
    public static bool TryOpenBase(HpkeSuite suite, EncryptionKeyPair recipient, ReadOnlySpan<byte> encapsulatedKey,
        ReadOnlySpan<byte> info, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> ciphertext,
        [NotNullWhen(true)] out byte[]? plaintext, out SealingError error)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(recipient);
        plaintext = null;
        if (!HpkeSetup.TrySetupReceiver(suite, HpkeMode.Base, encapsulatedKey, recipient, info, [], [], null, out var context, out error))
        {
            return false;
        }

        using (context)
        {
            if (!context!.TryOpen(aad, ciphertext, out var pt, out error))
            {
                return false;
            }

            plaintext = pt;
            return true;
        }
    }
}
