using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace IMikelGo.Relay.Client;

/// <summary>
/// Certificate pinning: accepts exactly the relay certificate whose SHA-256 fingerprint (over its DER encoding)
/// was pinned at enrollment, whatever its CA trust, host name or validity; refuses every other certificate,
/// even one a trusted CA issued.
/// </summary>
public sealed class CertificatePin
{
    private readonly byte[] _pinned;
    private string? _lastRefused;

    /// <summary>Pins <paramref name="sha256Fingerprint"/> (64 hex digits; colons, dashes and spaces ignored).</summary>
    public CertificatePin(string sha256Fingerprint)
    {
        Fingerprint = Normalize(sha256Fingerprint);
        _pinned = Convert.FromHexString(Fingerprint);
    }

    /// <summary>The pinned fingerprint, lower-case hex.</summary>
    public string Fingerprint { get; }

    /// <summary>The fingerprint of the last certificate refused (null when none was).</summary>
    public string? LastRefused => Volatile.Read(ref _lastRefused);

    /// <summary>The SHA-256 fingerprint of a certificate's DER encoding, lower-case hex.</summary>
    public static string FingerprintOf(X509Certificate certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.GetRawCertData()));
    }

    /// <summary>Normalizes a fingerprint to 64 lower-case hex digits; throws <see cref="FormatException"/> otherwise.</summary>
    public static string Normalize(string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(fingerprint);
        var hex = new string([.. fingerprint.Where(c => c is not (':' or '-' or ' '))]).ToLowerInvariant();
        if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
        {
            throw new FormatException("a certificate pin is the SHA-256 fingerprint of the certificate: 64 hex digits");
        }

        return hex;
    }

    /// <summary>Whether <paramref name="certificate"/> is the pinned one.</summary>
    public bool Matches(X509Certificate? certificate) =>
        certificate is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(certificate.GetRawCertData()), _pinned);

    /// <summary>
    /// The TLS validation callback (for <c>SslClientAuthenticationOptions.RemoteCertificateValidationCallback</c>):
    /// true exactly for the pinned certificate; <paramref name="errors"/> (CA trust, name) are deliberately ignored.
    /// </summary>
    public bool Validate(object? sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (Matches(certificate))
        {
            return true;
        }

        Volatile.Write(ref _lastRefused, certificate is null ? "(none)" : FingerprintOf(certificate));
        return false;
    }

    /// <summary>The message explaining a refusal.</summary>
    internal string RefusalMessage(Uri? relay) =>
        $"the relay at {relay?.GetLeftPart(UriPartial.Authority) ?? "(unknown)"} presented certificate SHA-256 {LastRefused ?? "(unknown)"}, " +
        $"which is not the pinned certificate {Fingerprint}; connection refused";
}
