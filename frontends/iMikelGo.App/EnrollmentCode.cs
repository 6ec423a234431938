using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;

namespace IMikelGo.App;

/// <summary>
/// What the school hands a device at enrollment (the QR code's content): the account, the relay and its pinned
/// certificate, the device's provisioned signing and encryption keys and the account's current recipients.
/// </summary>
/// <param name="Account">The license key (Kennung).</param>
/// <param name="School">The school's name.</param>
/// <param name="Label">The device's label.</param>
/// <param name="Relay">The relay's https base address.</param>
/// <param name="Fingerprint">The relay certificate's SHA-256 (pinned).</param>
/// <param name="SigningKey">The device's replica signing key (PKCS#8, base64); the school registered its public half at the relay.</param>
/// <param name="EncryptionSeed">The seed of the device's HPKE key pair (base64).</param>
/// <param name="Recipients">The encryption public keys of the school and the account's other devices (base64).</param>
public sealed record EnrollmentPayload(
    string Account, string School, string Label, string Relay, string Fingerprint, string SigningKey, string EncryptionSeed, IReadOnlyList<string> Recipients);

/// <summary>
/// The enrollment URI <c>imikelgo://enroll?v=1&amp;p=…</c>: the payload sealed with AES-256-GCM under a key derived
/// from the school-internal password (PBKDF2-SHA256), so the QR code alone enrolls nothing. The license key the
/// teacher types must match the sealed account.
/// </summary>
public static class EnrollmentCode
{
    /// <summary>The URI prefix.</summary>
    public const string Prefix = "imikelgo://enroll?v=1&p=";

    private const int Iterations = 200_000;

    /// <summary>Seals a payload with the school-internal password.</summary>
    public static string Create(EnrollmentPayload payload, string schoolPassword)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var plain = JsonSerializer.SerializeToUtf8Bytes(payload);
        var salt = RandomNumberGenerator.GetBytes(16);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var key = Rfc2898DeriveBytes.Pbkdf2(schoolPassword, salt, Iterations, HashAlgorithmName.SHA256, 32);
        var data = new byte[16 + 12 + 16 + plain.Length];
        try
        {
            using var aes = new AesGcm(key, 16);
            salt.CopyTo(data, 0);
            nonce.CopyTo(data, 16);
            aes.Encrypt(nonce, plain, data.AsSpan(44), data.AsSpan(28, 16), salt);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(plain);
        }

        return Prefix + Base64Url.EncodeToString(data);
    }

    /// <summary>Opens an enrollment URI; false with a reason when it is malformed or the password is wrong.</summary>
    public static bool TryOpen(string uri, string schoolPassword, out EnrollmentPayload? payload, out string error)
    {
        payload = null;
        if (string.IsNullOrWhiteSpace(uri) || !uri.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = "not an iMikelGo enrollment code (imikelgo://enroll?v=1&p=…)";
            return false;
        }

        byte[] data;
        try
        {
            data = Base64Url.DecodeFromChars(uri.AsSpan(Prefix.Length));
        }
        catch (FormatException)
        {
            error = "the enrollment code is damaged";
            return false;
        }

        if (data.Length < 45)
        {
            error = "the enrollment code is damaged";
            return false;
        }

        var key = Rfc2898DeriveBytes.Pbkdf2(schoolPassword ?? "", data.AsSpan(0, 16), Iterations, HashAlgorithmName.SHA256, 32);
        var plain = new byte[data.Length - 44];
        try
        {
            using var aes = new AesGcm(key, 16);
            aes.Decrypt(data.AsSpan(16, 12), data.AsSpan(44), data.AsSpan(28, 16), plain, data.AsSpan(0, 16));
            payload = JsonSerializer.Deserialize<EnrollmentPayload>(plain);
        }
        catch (AuthenticationTagMismatchException)
        {
            error = "wrong school-internal password (or a damaged code)";
            return false;
        }
        catch (JsonException)
        {
            error = "the enrollment code is damaged";
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(plain);
        }

        error = payload is null ? "the enrollment code is empty" : "";
        return payload is not null;
    }
}
