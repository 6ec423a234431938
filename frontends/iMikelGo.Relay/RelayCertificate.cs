using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace IMikelGo.Relay;

/// <summary>
/// The relay's TLS certificate. For local runs a self-signed ECDSA P-256 certificate is generated at first start
/// into the data directory (<c>relay-cert.pfx</c>, its random password in <c>relay-cert.pfx.password</c>, both
/// mode 0600); clients pin its SHA-256 <see cref="Fingerprint"/>.
/// </summary>
public sealed class RelayCertificate : IDisposable
{
    /// <summary>File name of the generated certificate in the data directory.</summary>
    public const string FileName = "relay-cert.pfx";

    private RelayCertificate(X509Certificate2 certificate, bool generated)
    {
        Certificate = certificate;
        Generated = generated;
        Fingerprint = FingerprintOf(certificate);
    }

    /// <summary>The certificate served by Kestrel (with its private key).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>SHA-256 of the certificate's DER encoding, 64 lowercase hex digits (what clients pin).</summary>
    public string Fingerprint { get; }

    /// <summary>Whether this start generated the certificate.</summary>
    public bool Generated { get; }

    /// <summary>The pin of <paramref name="certificate"/>: SHA-256 of its DER encoding, lowercase hex.</summary>
    public static string FingerprintOf(X509Certificate certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.GetRawCertData()));
    }

    /// <summary>Loads the configured certificate, or the generated one in the data directory (generating it first).</summary>
    public static RelayCertificate Load(RelayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.CertificatePath is { } path)
        {
            return new RelayCertificate(X509CertificateLoader.LoadPkcs12FromFile(path, options.CertificatePassword), generated: false);
        }

        Directory.CreateDirectory(options.DataDirectory);
        var pfx = Path.Combine(options.DataDirectory, FileName);
        var passwordFile = pfx + ".password";
        if (File.Exists(pfx) && File.Exists(passwordFile))
        {
            var password = File.ReadAllText(passwordFile).Trim();
            return new RelayCertificate(X509CertificateLoader.LoadPkcs12FromFile(pfx, password), generated: false);
        }

        var fresh = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=iMikelGo relay", key, HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddDnsName(Dns.GetHostName());
            names.AddIpAddress(IPAddress.Loopback);
            names.AddIpAddress(IPAddress.IPv6Loopback);
            request.CertificateExtensions.Add(names.Build());
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
            var now = options.Time.GetUtcNow();
            using var self = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(5));
            WritePrivate(passwordFile, System.Text.Encoding.UTF8.GetBytes(fresh));
            WritePrivate(pfx, self.Export(X509ContentType.Pkcs12, fresh));
        }

        return new RelayCertificate(X509CertificateLoader.LoadPkcs12FromFile(pfx, fresh), generated: true);
    }

    /// <inheritdoc />
    public void Dispose() => Certificate.Dispose();

    private static void WritePrivate(string path, byte[] content)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(path, options))
        {
            stream.Write(content);
        }

        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
