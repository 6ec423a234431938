using System.Diagnostics.CodeAnalysis;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;

namespace IMikelGo.Sealing;

/// <summary>Object identifiers and URI forms used in iMikelGo certificates.</summary>
public static class IMikelGoOids
{
    /// <summary>
    /// Certificate extension carrying the subject's HPKE encryption public key: DER OCTET STRING holding the 65-byte
    /// uncompressed P-256 point. A UUID-based OID (ITU-T X.667 arc 2.25) for UUID ead8ea1b-4f28-43db-95af-245b73918510.
    /// </summary>
    public const string EncryptionKeyExtension = "2.25.312165635382619472661117787607841998096";

    /// <summary>SAN URI of a device certificate: <c>urn:imikelgo:account:{accountId}:device:{deviceId}</c>.</summary>
    /// <param name="accountId">The account.</param>
    /// <param name="deviceId">The device.</param>
    /// <returns>The URI text.</returns>
    public static string DeviceUri(string accountId, string deviceId) => $"urn:imikelgo:account:{accountId}:device:{deviceId}";

    /// <summary>SAN URI of a school root: <c>urn:imikelgo:school:{schoolId}</c>.</summary>
    /// <param name="schoolId">The school.</param>
    /// <returns>The URI text.</returns>
    public static string SchoolUri(string schoolId) => $"urn:imikelgo:school:{schoolId}";

    /// <summary>SAN URI of the school's enrollment key certificate: <c>urn:imikelgo:school:{schoolId}:enrollment</c>.</summary>
    /// <param name="schoolId">The school.</param>
    /// <returns>The URI text.</returns>
    public static string EnrollmentUri(string schoolId) => $"urn:imikelgo:school:{schoolId}:enrollment";
}

/// <summary>Fingerprints: lowercase hex SHA-256.</summary>
public static class Fingerprints
{
    /// <summary>SHA-256 of a certificate's DER encoding (the pinned school root fingerprint).</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns>64 lowercase hex digits.</returns>
    public static string Of(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));
    }

    /// <summary>SHA-256 of a signing key's SubjectPublicKeyInfo DER.</summary>
    /// <param name="subjectPublicKeyInfo">The SPKI bytes.</param>
    /// <returns>64 lowercase hex digits.</returns>
    public static string OfSigningKey(ReadOnlySpan<byte> subjectPublicKeyInfo) => Convert.ToHexStringLower(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>SHA-256 of an encryption key's 65-byte point (its first 16 bytes are the <see cref="KeyId"/>).</summary>
    /// <param name="key">The key.</param>
    /// <returns>64 lowercase hex digits.</returns>
    public static string OfEncryptionKey(RecipientPublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(key.Span));
    }
}

/// <summary>
/// The school's root of trust: an ECDSA P-256 key with a self-signed X.509 certificate. Issues device and enrollment
/// certificates and signs school decisions (CMS SignedData). Created once by the school connector.
/// </summary>
public sealed class SchoolRoot : IDisposable
{
    private static readonly TimeSpan Backdate = TimeSpan.FromMinutes(5);
    private readonly ECDsa _key;

    private SchoolRoot(string schoolId, X509Certificate2 certificate, ECDsa key)
    {
        SchoolId = schoolId;
        Certificate = certificate;
        _key = key;
    }

    /// <summary>The school id.</summary>
    public string SchoolId { get; }

    /// <summary>The self-signed root certificate (with private key).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The SHA-256 fingerprint devices pin (carried in the enrollment QR code).</summary>
    public string Fingerprint => Fingerprints.Of(Certificate);

    internal ECDsa Key => _key;

    /// <summary>Creates a new root key and self-signed certificate.</summary>
    /// <param name="schoolId">The school id.</param>
    /// <param name="time">The clock (system clock when null).</param>
    /// <param name="validity">Certificate lifetime (default 20 years).</param>
    /// <returns>The root.</returns>
    public static SchoolRoot Create(string schoolId, TimeProvider? time = null, TimeSpan? validity = null)
    {
        Identifiers.Require(schoolId, nameof(schoolId));
        var now = (time ?? TimeProvider.System).GetUtcNow();
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN=iMikelGo school root {schoolId}, O=iMikelGo", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(IMikelGoOids.SchoolUri(schoolId)));
        req.CertificateExtensions.Add(san.Build());
        var cert = req.CreateSelfSigned(now - Backdate, now + (validity ?? TimeSpan.FromDays(365 * 20)));
        return new SchoolRoot(schoolId, cert, key);
    }

    /// <summary>Loads a root from its certificate with private key (e.g. from the school connector's key store).</summary>
    /// <param name="certificate">A certificate with an ECDSA private key.</param>
    /// <returns>The root.</returns>
    public static SchoolRoot FromCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("The certificate has no ECDSA private key.", nameof(certificate));
        var schoolId = CertificateFields.SanUris(certificate)
            .Select(u => u.StartsWith("urn:imikelgo:school:", StringComparison.Ordinal) ? u["urn:imikelgo:school:".Length..] : null)
            .FirstOrDefault(Identifiers.IsValid)
            ?? throw new ArgumentException("The certificate has no urn:imikelgo:school SAN URI.", nameof(certificate));
        return new SchoolRoot(schoolId, certificate, key);
    }

    /// <summary>Issues a device certificate binding device id, account, signing key and encryption key.</summary>
    /// <param name="accountId">The teacher's account.</param>
    /// <param name="deviceId">The device.</param>
    /// <param name="signingKeySpki">The device's ECDSA P-256 signing public key (SubjectPublicKeyInfo DER).</param>
    /// <param name="encryptionKey">The device's HPKE public key.</param>
    /// <param name="now">Issue time.</param>
    /// <param name="validity">Lifetime (capped at the root's expiry).</param>
    /// <returns>The certificate (public only).</returns>
    public X509Certificate2 IssueDeviceCertificate(string accountId, string deviceId, ReadOnlySpan<byte> signingKeySpki,
        RecipientPublicKey encryptionKey, DateTimeOffset now, TimeSpan validity)
    {
        Identifiers.Require(accountId, nameof(accountId));
        Identifiers.Require(deviceId, nameof(deviceId));
        return Issue($"CN={deviceId}, OU={accountId}, O=iMikelGo", IMikelGoOids.DeviceUri(accountId, deviceId), signingKeySpki, encryptionKey, now, validity);
    }

    /// <summary>Issues the certificate for the school's enrollment HPKE key (devices seal the school password to it).</summary>
    /// <param name="enrollmentKey">The school's enrollment encryption key.</param>
    /// <param name="now">Issue time.</param>
    /// <param name="validity">Lifetime.</param>
    /// <returns>The certificate (public only; its signing key is the root's own public key, unused).</returns>
    public X509Certificate2 IssueEnrollmentCertificate(RecipientPublicKey enrollmentKey, DateTimeOffset now, TimeSpan validity)
        => Issue($"CN=iMikelGo enrollment {SchoolId}, O=iMikelGo", IMikelGoOids.EnrollmentUri(SchoolId),
            Certificate.PublicKey.ExportSubjectPublicKeyInfo(), enrollmentKey, now, validity);

    private X509Certificate2 Issue(string subject, string sanUri, ReadOnlySpan<byte> spki, RecipientPublicKey encryptionKey,
        DateTimeOffset now, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(encryptionKey);
        var publicKey = PublicKey.CreateFromSubjectPublicKeyInfo(spki, out var read);
        if (read != spki.Length || publicKey.Oid.Value != "1.2.840.10045.2.1")
        {
            throw new ArgumentException("The signing key must be an EC SubjectPublicKeyInfo.", nameof(spki));
        }

        var req = new CertificateRequest(new X500DistinguishedName(subject), publicKey, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(publicKey, false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(sanUri));
        req.CertificateExtensions.Add(san.Build());
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteOctetString(encryptionKey.Span);
        req.CertificateExtensions.Add(new X509Extension(IMikelGoOids.EncryptionKeyExtension, writer.Encode(), false));

        Span<byte> serial = stackalloc byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        var notAfter = now + validity;
        if (notAfter > Certificate.NotAfter)
        {
            notAfter = Certificate.NotAfter;
        }

        return req.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key), now - Backdate, notAfter, serial);
    }

    /// <summary>Signs a school decision (roster, revocation, update manifest) as CMS SignedData with SHA-256.</summary>
    /// <param name="content">The decision bytes.</param>
    /// <param name="detached">True for a detached signature (content shipped separately).</param>
    /// <returns>DER-encoded CMS ContentInfo.</returns>
    public byte[] SignDecision(ReadOnlySpan<byte> content, bool detached = false)
    {
        var cms = new SignedCms(new ContentInfo(content.ToArray()), detached);
        var signer = new CmsSigner(SubjectIdentifierType.IssuerAndSerialNumber, Certificate, _key)
        {
            DigestAlgorithm = new System.Security.Cryptography.Oid("2.16.840.1.101.3.4.2.1"),
            IncludeOption = X509IncludeOption.EndCertOnly,
        };
        signer.SignedAttributes.Add(new Pkcs9SigningTime(DateTime.UtcNow));
        cms.ComputeSignature(signer, silent: true);
        return cms.Encode();
    }

    /// <summary>The root certificate in PEM (public; give it to devices and to openssl).</summary>
    /// <returns>PEM text.</returns>
    public string ExportCertificatePem() => Certificate.ExportCertificatePem();

    /// <inheritdoc />
    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}
/// <summary>A verified device identity read from a device certificate.</summary>
/// <param name="AccountId">The teacher account.</param>
/// <param name="DeviceId">The device.</param>
/// <param name="SigningKeyFingerprint">SHA-256 hex of the signing key's SPKI.</param>
/// <param name="EncryptionKey">The device's HPKE key at enrollment.</param>
/// <param name="Certificate">The verified certificate.</param>
public sealed record DeviceIdentity(string AccountId, string DeviceId, string SigningKeyFingerprint, RecipientPublicKey EncryptionKey,
    X509Certificate2 Certificate)
{
    /// <summary>The device's ECDSA P-256 signing public key.</summary>
    /// <returns>A new ECDsa instance holding the public key.</returns>
    public ECDsa GetSigningKey() => Certificate.GetECDsaPublicKey() ?? throw new InvalidOperationException("Not an ECDSA certificate.");
}

/// <summary>Verifies certificates against the pinned school root.</summary>
public static class DeviceCertificates
{
    /// <summary>
    /// Verifies that <paramref name="certificate"/> chains to <paramref name="pinnedRoot"/> at time <paramref name="at"/>
    /// (X509Chain with custom root trust, no downloads), is an end-entity certificate, and carries the device SAN URI
    /// and the encryption-key extension.
    /// </summary>
    /// <param name="certificate">The device certificate.</param>
    /// <param name="pinnedRoot">The pinned school root.</param>
    /// <param name="at">The verification time.</param>
    /// <param name="identity">The verified identity.</param>
    /// <param name="error">Why it was refused.</param>
    /// <returns>True when valid.</returns>
    public static bool TryVerify(X509Certificate2 certificate, X509Certificate2 pinnedRoot, DateTimeOffset at,
        [NotNullWhen(true)] out DeviceIdentity? identity, out SealingError error)
    {
        identity = null;
        if (!CertificateFields.TryVerifyChain(certificate, pinnedRoot, at, out error))
        {
            return false;
        }

        string? account = null, device = null;
        foreach (var uri in CertificateFields.SanUris(certificate))
        {
            var parts = uri.Split(':');
            if (parts is ["urn", "imikelgo", "account", var a, "device", var d] && Identifiers.IsValid(a) && Identifiers.IsValid(d))
            {
                (account, device) = (a, d);
            }
        }

        if (account is null || device is null)
        {
            error = SealingError.Malformed("Device certificate has no urn:imikelgo:account:<id>:device:<id> SAN URI.");
            return false;
        }

        if (!CertificateFields.TryGetEncryptionKey(certificate, out var key, out error))
        {
            return false;
        }

        identity = new DeviceIdentity(account, device, Fingerprints.OfSigningKey(certificate.PublicKey.ExportSubjectPublicKeyInfo()), key, certificate);
        return true;
    }

    /// <summary>Verifies the school's enrollment certificate and returns its HPKE key.</summary>
    /// <param name="certificate">The enrollment certificate.</param>
    /// <param name="pinnedRoot">The pinned school root.</param>
    /// <param name="schoolId">The expected school.</param>
    /// <param name="at">The verification time.</param>
    /// <param name="enrollmentKey">The school's enrollment key.</param>
    /// <param name="error">Why it was refused.</param>
    /// <returns>True when valid.</returns>
    public static bool TryVerifyEnrollmentCertificate(X509Certificate2 certificate, X509Certificate2 pinnedRoot, string schoolId,
        DateTimeOffset at, [NotNullWhen(true)] out RecipientPublicKey? enrollmentKey, out SealingError error)
    {
        enrollmentKey = null;
        if (!CertificateFields.TryVerifyChain(certificate, pinnedRoot, at, out error))
        {
            return false;
        }

        if (!CertificateFields.SanUris(certificate).Contains(IMikelGoOids.EnrollmentUri(schoolId), StringComparer.Ordinal))
        {
            error = new SealingError(SealingErrorCode.UntrustedSignature, $"Certificate is not the enrollment certificate of school '{schoolId}'.");
            return false;
        }

        return CertificateFields.TryGetEncryptionKey(certificate, out enrollmentKey, out error);
    }
}

internal static class CertificateFields
{
    public static IEnumerable<string> SanUris(X509Certificate2 certificate)
    {
        foreach (var ext in certificate.Extensions)
        {
            if (ext is X509SubjectAlternativeNameExtension san)
            {
                var reader = new AsnReader(san.RawData, AsnEncodingRules.DER).ReadSequence();
                var uris = new List<string>();
                while (reader.HasData)
                {
                    var tag = reader.PeekTag();
                    if (tag == new Asn1Tag(TagClass.ContextSpecific, 6))
                    {
                        uris.Add(reader.ReadCharacterString(UniversalTagNumber.IA5String, tag));
                    }
                    else
                    {
                        reader.ReadEncodedValue();
                    }
                }

                return uris;
            }
        }

        return [];
    }

    public static bool TryGetEncryptionKey(X509Certificate2 certificate, [NotNullWhen(true)] out RecipientPublicKey? key, out SealingError error)
    {
        key = null;
        var ext = certificate.Extensions[IMikelGoOids.EncryptionKeyExtension];
        if (ext is null)
        {
            error = SealingError.Malformed($"Certificate has no encryption-key extension ({IMikelGoOids.EncryptionKeyExtension}).");
            return false;
        }

        try
        {
            var reader = new AsnReader(ext.RawData, AsnEncodingRules.DER);
            var point = reader.ReadOctetString();
            reader.ThrowIfNotEmpty();
            return RecipientPublicKey.TryParse(point, out key, out error);
        }
        catch (AsnContentException)
        {
            error = SealingError.Malformed("Certificate encryption-key extension is not a DER OCTET STRING.");
            return false;
        }
    }

    public static bool TryVerifyChain(X509Certificate2 certificate, X509Certificate2 pinnedRoot, DateTimeOffset at, out SealingError error)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(pinnedRoot);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(pinnedRoot);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // revocation is the signed roster's job
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationTime = at.UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        var ok = chain.Build(certificate);
        if (!ok)
        {
            var flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (f, s) => f | s.Status);
            error = (flags & X509ChainStatusFlags.NotTimeValid) != 0
                ? new SealingError(SealingErrorCode.Expired, $"Certificate '{certificate.Subject}' is not valid at {at:O}.")
                : new SealingError(SealingErrorCode.UntrustedSignature, $"Certificate '{certificate.Subject}' does not chain to the pinned school root ({flags}).");
            return false;
        }

        var top = chain.ChainElements[^1].Certificate;
        if (!top.RawData.AsSpan().SequenceEqual(pinnedRoot.RawData))
        {
            error = new SealingError(SealingErrorCode.UntrustedSignature, "Certificate chains to a root other than the pinned school root.");
            return false;
        }

        error = SealingError.None;
        return true;
    }
}
