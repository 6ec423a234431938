using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;

namespace IMikelGo.Updates;

/// <summary>
/// The vendor's release-signing key (ECDSA P-256) and its self-signed certificate. Apps pin the certificate by its SHA-256
/// fingerprint (<see cref="Fingerprint"/>). Keep the private key offline; only <c>imikelgo release sign|publish|rotate</c> need it.
/// </summary>
public sealed class VendorKey : IDisposable
{
    private readonly ECDsa _key;

    private VendorKey(X509Certificate2 certificate, ECDsa key)
    {
        Certificate = certificate;
        _key = key;
    }

    /// <summary>Gets the vendor certificate (public).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>Gets the lower-case hex SHA-256 of the certificate's DER encoding: the value apps pin.</summary>
    public string Fingerprint => VendorSignatures.FingerprintOf(Certificate);

    /// <summary>Creates a new vendor key with a self-signed certificate.</summary>
    /// <param name="subject">Distinguished name, e.g. <c>CN=iMikelGo Releases 2026, O=iMikelGo</c>.</param>
    /// <param name="now">Start of validity.</param>
    /// <param name="validity">Validity (e.g. 10 years).</param>
    /// <returns>The key.</returns>
    public static VendorKey Create(string subject, DateTimeOffset now, TimeSpan validity)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.3")], false));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x01);
        var cert = req.Create(new X500DistinguishedName(subject), X509SignatureGenerator.CreateForECDsa(key), now.AddMinutes(-5), now + validity, serial);
        return new VendorKey(cert, key);
    }

    /// <summary>Loads a key from a PKCS#12 file (<c>.pfx</c>/<c>.p12</c>) or a PEM file holding the certificate and the private key.</summary>
    /// <param name="path">The file.</param>
    /// <param name="password">The PKCS#12 or encrypted-PEM password, if any.</param>
    /// <returns>The key.</returns>
    public static VendorKey Load(string path, string? password = null)
    {
        X509Certificate2 withKey;
        if (path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
        {
            withKey = X509CertificateLoader.LoadPkcs12FromFile(path, password, X509KeyStorageFlags.EphemeralKeySet | X509KeyStorageFlags.Exportable);
        }
        else
        {
            withKey = string.IsNullOrEmpty(password) ? X509Certificate2.CreateFromPemFile(path) : X509Certificate2.CreateFromEncryptedPemFile(path, password);
        }

        using (withKey)
        {
            var key = withKey.GetECDsaPrivateKey() ?? throw new CryptographicException("The vendor key must be an ECDSA key with its private key.");
            return new VendorKey(X509CertificateLoader.LoadCertificate(withKey.RawData), key);
        }
    }

    /// <summary>Signs bytes as a detached CMS SignedData (SHA-256, one signer, certificate embedded, signed attributes).</summary>
    /// <param name="content">The bytes (a manifest or statement).</param>
    /// <returns>DER CMS ContentInfo without the content.</returns>
    public byte[] Sign(ReadOnlySpan<byte> content)
    {
        var cms = new SignedCms(new ContentInfo(content.ToArray()), detached: true);
        var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, Certificate, _key)
        {
            DigestAlgorithm = new Oid("2.16.840.1.101.3.4.2.1"),
            IncludeOption = X509IncludeOption.EndCertOnly,
        };
        signer.SignedAttributes.Add(new Pkcs9SigningTime(DateTime.UtcNow));
        cms.ComputeSignature(signer, silent: true);
        return cms.Encode();
    }

    /// <summary>Exports certificate and private key as PKCS#12.</summary>
    /// <param name="password">The password.</param>
    /// <returns>The PFX bytes.</returns>
    public byte[] ExportPfx(string? password)
    {
        using var withKey = Certificate.CopyWithPrivateKey(_key);
        return withKey.Export(X509ContentType.Pkcs12, password);
    }

    /// <summary>Exports the certificate and the unencrypted PKCS#8 private key as one PEM text.</summary>
    /// <returns>PEM text.</returns>
    public string ExportPem() => Certificate.ExportCertificatePem() + "\n" + _key.ExportPkcs8PrivateKeyPem() + "\n";

    /// <inheritdoc />
    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}

/// <summary>Verification of detached vendor signatures against one pinned certificate fingerprint.</summary>
internal static class VendorSignatures
{
    private static readonly HashSet<string> AllowedDigests = new(StringComparer.Ordinal)
    {
        "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3",
    };

    public const int MaxSignatureBytes = 64 * 1024;

    public static string FingerprintOf(X509Certificate2 certificate) => Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));

    /// <summary>Verifies that <paramref name="signature"/> is a detached CMS over <paramref name="content"/> with exactly one signer whose
    /// embedded certificate's full DER hashes to <paramref name="pinnedFingerprint"/> and is valid at <paramref name="at"/>.</summary>
    public static bool TryVerify(ReadOnlySpan<byte> signature, ReadOnlySpan<byte> content, string pinnedFingerprint, DateTimeOffset at,
        string what, out UpdateError error)
    {
        try
        {
            return TryVerifyCore(signature, content, pinnedFingerprint, at, what, out error);
        }
#pragma warning disable CA1031 // fail closed: any failure in verification is a refusal
        catch (Exception e)
#pragma warning restore CA1031
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: signature verification failed: {e.GetType().Name}: {e.Message}");
            return false;
        }
    }

    private static bool TryVerifyCore(ReadOnlySpan<byte> signature, ReadOnlySpan<byte> content, string pinnedFingerprint, DateTimeOffset at,
        string what, out UpdateError error)
    {
        if (signature.Length is 0 or > MaxSignatureBytes)
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: signature size {signature.Length} is outside 1..{MaxSignatureBytes} bytes.");
            return false;
        }

        var cms = new SignedCms(new ContentInfo(content.ToArray()), detached: true);
        try
        {
            cms.Decode(signature);
        }
        catch (CryptographicException e)
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: not a DER CMS SignedData: {e.Message}");
            return false;
        }

        if (cms.ContentInfo.ContentType.Value != "1.2.840.113549.1.7.1")
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: content type is not id-data.");
            return false;
        }

        if (cms.SignerInfos.Count != 1)
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: expected exactly one signer, found {cms.SignerInfos.Count}.");
            return false;
        }

        var signer = cms.SignerInfos[0];
        if (signer.DigestAlgorithm.Value is not { } digest || !AllowedDigests.Contains(digest))
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: digest algorithm {signer.DigestAlgorithm.Value} is not SHA-2.");
            return false;
        }

        if (signer.CounterSignerInfos.Count != 0)
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: counter-signatures are not accepted.");
            return false;
        }

        var cert = signer.Certificate;
        if (cert is null)
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: the signer certificate is not embedded.");
            return false;
        }

        var fingerprint = FingerprintOf(cert);
        if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(fingerprint),
                System.Text.Encoding.ASCII.GetBytes(pinnedFingerprint.ToLowerInvariant())))
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature,
                $"{what}: signed by certificate {fingerprint[..16]}… ({cert.Subject}), not the pinned vendor certificate {pinnedFingerprint[..Math.Min(16, pinnedFingerprint.Length)]}….");
            return false;
        }

        try
        {
            signer.CheckSignature([cert], verifySignatureOnly: true);
        }
        catch (CryptographicException)
        {
            error = new UpdateError(UpdateErrorCode.UntrustedSignature, $"{what}: the signature does not verify (content altered or wrong key).");
            return false;
        }

        if (at < new DateTimeOffset(cert.NotBefore.ToUniversalTime()) || at > new DateTimeOffset(cert.NotAfter.ToUniversalTime()))
        {
            error = new UpdateError(UpdateErrorCode.Expired, $"{what}: the vendor certificate is not valid at {Time.Format(at)}.");
            return false;
        }

        error = UpdateError.None;
        return true;
    }
}
