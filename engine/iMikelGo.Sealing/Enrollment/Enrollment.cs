using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace IMikelGo.Sealing;

/// <summary>Why an enrollment was refused.</summary>
public enum EnrollmentErrorCode
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>The request does not follow the format, or its signature or sealed password does not verify.</summary>
    MalformedRequest,
    /// <summary>The request is for another school.</summary>
    WrongSchool,
    /// <summary>The license key contains a typo (check character, length or character).</summary>
    LicenseTypo,
    /// <summary>The license key is well formed but unknown to the school.</summary>
    UnknownLicense,
    /// <summary>The school-internal password is wrong.</summary>
    WrongPassword,
    /// <summary>Too many failed attempts for this license key; try again later.</summary>
    RateLimited,
    /// <summary>The request is too old or from the future.</summary>
    RequestExpired,
    /// <summary>The teacher was deactivated by the school.</summary>
    AccountDisabled,
    /// <summary>The device id is already in the roster (enrolled or revoked); a new device id is needed.</summary>
    DeviceIdInUse,
}

/// <summary>An enrollment failure with a clear reason.</summary>
/// <param name="Code">What kind of failure.</param>
/// <param name="Message">A message safe to show to the user.</param>
public readonly record struct EnrollmentError(EnrollmentErrorCode Code, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{Code}: {Message}";
}

/// <summary>The school's answer to a successful enrollment.</summary>
/// <param name="AccountId">The teacher's account.</param>
/// <param name="DeviceId">The enrolled device.</param>
/// <param name="DeviceCertificate">The device certificate (DER).</param>
/// <param name="SignedRoster">The new roster version, signed (CMS).</param>
/// <param name="DeviceLabel">
/// The label the device sealed into its request ("Laptop"), for the school's own records; null when it gave none (or sent
/// a format-1 request). It is not part of the answer sent back through the relay.
/// </param>
public sealed record EnrollmentApproval(string AccountId, string DeviceId, byte[] DeviceCertificate, byte[] SignedRoster, string? DeviceLabel = null);

/// <summary>
/// Device side of enrollment: generates the device id, signing key (ECDSA P-256) and encryption key, builds the request
/// with the school password sealed (HPKE) to the school's certified enrollment key, and checks the school's answer.
/// </summary>
public sealed class DeviceEnrollment : IDisposable
{
    /// <summary>The longest device label, in UTF-16 code units.</summary>
    public const int MaxLabelLength = 64;

    // Format 1 sealed the password alone; format 2 seals the label with it, so the relay sees neither.
    internal static ReadOnlySpan<byte> PasswordInfo => "iMikelGo enrollment v1 password"u8;

    internal static ReadOnlySpan<byte> SecretInfo => "iMikelGo enrollment v2 label and password"u8;

    private readonly bool _ownsKeys = true;

    private DeviceEnrollment(EnrollmentUri uri, string deviceId)
    {
        Uri = uri;
        DeviceId = deviceId;
        SigningKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        EncryptionKey = EncryptionKeyPair.Generate();
    }

    private DeviceEnrollment(EnrollmentUri uri, string deviceId, ECDsa signingKey, EncryptionKeyPair encryptionKey)
    {
        Uri = uri;
        DeviceId = deviceId;
        SigningKey = signingKey;
        EncryptionKey = encryptionKey;
        _ownsKeys = false;
    }

    /// <summary>The scanned payload.</summary>
    public EnrollmentUri Uri { get; }

    /// <summary>The new device id (random; a restored or cloned device enrolls again under a new id).</summary>
    public string DeviceId { get; }

    /// <summary>The device's signing key (store in the vault).</summary>
    public ECDsa SigningKey { get; }

    /// <summary>The device's first encryption key (store in the vault; later rotated by <see cref="RecipientKeyRing"/>).</summary>
    public EncryptionKeyPair EncryptionKey { get; }

    /// <summary>Why <paramref name="label"/> cannot be sent as a device label (after trimming and NFC normalisation), or null when it can.</summary>
    /// <param name="label">The label; null or blank means none and is fine.</param>
    /// <returns>A message safe to show, or null.</returns>
    public static string? LabelProblem(string? label) => LabelProblem(label, out _);

    /// <summary>As <see cref="LabelProblem(string?)"/>, with the label as it is sent (trimmed, NFC; empty for none).</summary>
    /// <param name="label">The label; null or blank means none.</param>
    /// <param name="normalized">The label as sent, when there is no problem.</param>
    /// <returns>A message safe to show, or null.</returns>
    public static string? LabelProblem(string? label, out string normalized) => DeviceLabels.Normalize(label, out normalized);

    /// <summary>Starts enrollment from a scanned payload with fresh keys.</summary>
    /// <param name="uri">The payload.</param>
    /// <returns>The enrollment state.</returns>
    public static DeviceEnrollment Start(EnrollmentUri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return new DeviceEnrollment(uri, Identifiers.NewId());
    }

    /// <summary>
    /// Starts enrollment with keys the device already holds (e.g. a replica key whose self-certifying id is the device
    /// id, so the relay caller, the bundle sender and the certificate agree). The keys stay the caller's:
    /// <see cref="Dispose"/> does not dispose them.
    /// </summary>
    /// <param name="uri">The payload.</param>
    /// <param name="deviceId">The device id (1..64 characters from [A-Za-z0-9._-]).</param>
    /// <param name="signingKey">The device's ECDSA P-256 signing key.</param>
    /// <param name="encryptionKey">The device's first encryption key.</param>
    /// <returns>The enrollment state.</returns>
    public static DeviceEnrollment Start(EnrollmentUri uri, string deviceId, ECDsa signingKey, EncryptionKeyPair encryptionKey)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentNullException.ThrowIfNull(signingKey);
        ArgumentNullException.ThrowIfNull(encryptionKey);
        Identifiers.Require(deviceId, nameof(deviceId));
        if (signingKey.KeySize != 256)
        {
            throw new ArgumentException("The signing key must be ECDSA P-256.", nameof(signingKey));
        }

        return new DeviceEnrollment(uri, deviceId, signingKey, encryptionKey);
    }

    /// <summary>
    /// Builds the enrollment request. The school root (fetched from the relay) must match the pinned fingerprint, and
    /// the enrollment certificate must chain to it; the password is sealed to its key, so the relay never sees it.
    /// </summary>
    /// <param name="schoolRoot">The school root certificate.</param>
    /// <param name="enrollmentCertificate">The school's enrollment certificate.</param>
    /// <param name="password">The school-internal password.</param>
    /// <param name="now">The current time.</param>
    /// <param name="request">The request bytes to send.</param>
    /// <param name="error">Why it could not be built.</param>
    /// <returns>True when built.</returns>
    public bool TryCreateRequest(X509Certificate2 schoolRoot, X509Certificate2 enrollmentCertificate, string password, DateTimeOffset now,
        [NotNullWhen(true)] out byte[]? request, out SealingError error)
        => TryCreateRequest(schoolRoot, enrollmentCertificate, password, null, now, Uri.License.Value, out request, out error);

    /// <summary>
    /// Builds the enrollment request with a device label ("Laptop") for the school's device list. The label is sealed with
    /// the password, so the relay sees neither; it is trimmed and NFC-normalised, and refused when longer than
    /// <see cref="MaxLabelLength"/> or when it contains control characters. Null or blank: no label.
    /// </summary>
    /// <param name="schoolRoot">The school root certificate.</param>
    /// <param name="enrollmentCertificate">The school's enrollment certificate.</param>
    /// <param name="password">The school-internal password.</param>
    /// <param name="label">The device label, or null.</param>
    /// <param name="now">The current time.</param>
    /// <param name="request">The request bytes to send.</param>
    /// <param name="error">Why it could not be built.</param>
    /// <returns>True when built.</returns>
    public bool TryCreateRequest(X509Certificate2 schoolRoot, X509Certificate2 enrollmentCertificate, string password, string? label, DateTimeOffset now,
        [NotNullWhen(true)] out byte[]? request, out SealingError error)
        => TryCreateRequest(schoolRoot, enrollmentCertificate, password, label, now, Uri.License.Value, out request, out error);

    internal bool TryCreateRequest(X509Certificate2 schoolRoot, X509Certificate2 enrollmentCertificate, string password, string? label, DateTimeOffset now,
        string licenseText, [NotNullWhen(true)] out byte[]? request, out SealingError error)
    {
        ArgumentNullException.ThrowIfNull(schoolRoot);
        ArgumentNullException.ThrowIfNull(password);
        request = null;
        if (DeviceLabels.Normalize(label, out var normalizedLabel) is { } labelProblem)
        {
            error = SealingError.Malformed(labelProblem);
            return false;
        }
        if (!string.Equals(Fingerprints.Of(schoolRoot), Uri.RootFingerprint, StringComparison.Ordinal))
        {
            error = new SealingError(SealingErrorCode.UntrustedSignature, "The school root does not match the fingerprint in the enrollment code.");
            return false;
        }

        if (!DeviceCertificates.TryVerifyEnrollmentCertificate(enrollmentCertificate, schoolRoot, Uri.SchoolId, now, out var schoolKey, out error))
        {
            return false;
        }

        var fields = new RequestFields(Uri.SchoolId, licenseText, DeviceId,
            Convert.ToBase64String(SigningKey.ExportSubjectPublicKeyInfo()), Convert.ToBase64String(EncryptionKey.PublicKey.Span),
            now.UtcDateTime.ToString("O", CultureInfo.InvariantCulture), Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)));
        var secret = DeviceLabels.Secret(normalizedLabel, password);
        try
        {
            var sealedSecret = Hpke.SealBase(HpkeSuite.P256Sha256Aes256Gcm, schoolKey, SecretInfo, fields.Binding(), secret, out var enc);
            var body = fields.ToBody(RequestFields.CurrentFormat, enc, sealedSecret);
            var signature = SigningKey.SignData(body, HashAlgorithmName.SHA256);
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("kind", "imikelgo.enroll");
                w.WriteNumber("format", RequestFields.CurrentFormat);
                w.WriteBase64String("body", body);
                w.WriteBase64String("signature", signature);
                w.WriteEndObject();
            }

            request = ms.ToArray();
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>Checks the school's approval: the certificate chains to the pinned root and binds this device's keys, and the signed roster lists it.</summary>
    /// <param name="approval">The approval.</param>
    /// <param name="schoolRoot">The pinned school root.</param>
    /// <param name="rosters">The device's roster verifier.</param>
    /// <param name="now">The current time.</param>
    /// <param name="identity">The verified identity.</param>
    /// <param name="error">Why it was refused.</param>
    /// <returns>True when the device is enrolled.</returns>
    public bool TryComplete(EnrollmentApproval approval, X509Certificate2 schoolRoot, RosterVerifier rosters, DateTimeOffset now,
        [NotNullWhen(true)] out DeviceIdentity? identity, out SealingError error)
    {
        ArgumentNullException.ThrowIfNull(approval);
        ArgumentNullException.ThrowIfNull(rosters);
        identity = null;
        X509Certificate2 cert;
        try
        {
            cert = X509CertificateLoader.LoadCertificate(approval.DeviceCertificate);
        }
        catch (CryptographicException)
        {
            error = SealingError.Malformed("The device certificate is not DER X.509.");
            return false;
        }

        if (!DeviceCertificates.TryVerify(cert, schoolRoot, now, out var id, out error))
        {
            return false;
        }

        if (!string.Equals(id.DeviceId, DeviceId, StringComparison.Ordinal) || !id.EncryptionKey.Equals(EncryptionKey.PublicKey)
            || !string.Equals(id.SigningKeyFingerprint, Fingerprints.OfSigningKey(SigningKey.ExportSubjectPublicKeyInfo()), StringComparison.Ordinal))
        {
            error = new SealingError(SealingErrorCode.UntrustedSignature, "The certificate does not bind this device's id and keys.");
            return false;
        }

        if (!rosters.TryAccept(approval.SignedRoster, id.AccountId, out var roster, out error))
        {
            return false;
        }

        if (!roster.IsEnrolled(DeviceId))
        {
            error = new SealingError(SealingErrorCode.Revoked, "The signed roster does not list this device as enrolled.");
            return false;
        }

        identity = id;
        return true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsKeys)
        {
            SigningKey.Dispose();
            EncryptionKey.Dispose();
        }
    }
}

internal sealed record RequestFields(string School, string License, string Device, string SigningKey, string EncryptionKey,
    string CreatedAt, string Nonce)
{
    public byte[] Binding()
        => SHA256.HashData(Encoding.UTF8.GetBytes($"{School}\n{License}\n{Device}\n{SigningKey}\n{EncryptionKey}\n{CreatedAt}\n{Nonce}"));

    // Format 1: member "password" (the sealed password). Format 2: member "secret" (the sealed label and password).
    public const int CurrentFormat = 2;

    public byte[] ToBody(int format, byte[] enc, byte[] sealedSecret)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("school", School);
            w.WriteString("license", License);
            w.WriteString("device", Device);
            w.WriteString("signingKey", SigningKey);
            w.WriteString("encryptionKey", EncryptionKey);
            w.WriteString("createdAt", CreatedAt);
            w.WriteString("nonce", Nonce);
            w.WriteBase64String("enc", enc);
            w.WriteBase64String(format == 1 ? "password" : "secret", sealedSecret);
            w.WriteEndObject();
        }

        return ms.ToArray();
    }
}

/// <summary>
/// School side of enrollment: checks the request, the license key and the password (slow salted hash, constant-time
/// compare, rate-limited per license key), issues the device certificate and publishes a new signed roster version.
/// Also revokes devices.
/// </summary>
public sealed class EnrollmentAuthority
{
    private const int MaxRequestBytes = 64 * 1024;
    private readonly SchoolRoot _root;
    private readonly EncryptionKeyPair _enrollmentKey;
    private readonly IPersonnelStore _personnel;
    private readonly ISchoolRosterStore _rosters;
    private readonly SealingOptions _options;
    private readonly TimeProvider _time;
    private readonly Dictionary<LicenseKey, Queue<DateTimeOffset>> _failures = [];
    private readonly Lock _gate = new();

    /// <summary>Creates the authority.</summary>
    /// <param name="root">The school root (issues certificates, signs rosters).</param>
    /// <param name="enrollmentKey">The private half of the certified enrollment key.</param>
    /// <param name="personnel">The personnel store.</param>
    /// <param name="rosters">The roster store.</param>
    /// <param name="options">Options (iterations, rate limits, validity).</param>
    /// <param name="time">The clock.</param>
    public EnrollmentAuthority(SchoolRoot root, EncryptionKeyPair enrollmentKey, IPersonnelStore personnel, ISchoolRosterStore rosters,
        IOptions<SealingOptions> options, TimeProvider time)
    {
        _root = root ?? throw new ArgumentNullException(nameof(root));
        _enrollmentKey = enrollmentKey ?? throw new ArgumentNullException(nameof(enrollmentKey));
        _personnel = personnel ?? throw new ArgumentNullException(nameof(personnel));
        _rosters = rosters ?? throw new ArgumentNullException(nameof(rosters));
        _options = (options ?? throw new ArgumentNullException(nameof(options))).Value;
        _time = time ?? throw new ArgumentNullException(nameof(time));
    }

    /// <summary>Decides an enrollment request.</summary>
    /// <param name="request">The request bytes from the relay.</param>
    /// <param name="approval">The certificate and new signed roster on success.</param>
    /// <param name="error">A clear reason on failure.</param>
    /// <returns>True when the device was enrolled.</returns>
    public bool TryApprove(ReadOnlySpan<byte> request, [NotNullWhen(true)] out EnrollmentApproval? approval, out EnrollmentError error)
    {
        approval = null;
        if (!TryReadRequest(request, out var fields, out var format, out var enc, out var sealedSecret, out var signingKey, out error))
        {
            return false;
        }

        using var signingKeyLifetime = signingKey;
        if (!string.Equals(fields!.School, _root.SchoolId, StringComparison.Ordinal))
        {
            return Fail(EnrollmentErrorCode.WrongSchool, $"The request is for school '{fields.School}', this is '{_root.SchoolId}'.", out error);
        }

        if (!LicenseKey.TryParse(fields.License, out var license, out var licenseError))
        {
            return Fail(EnrollmentErrorCode.LicenseTypo, licenseError, out error);
        }

        var now = _time.GetUtcNow();
        if (IsRateLimited(license, now, out var retryAfter))
        {
            return Fail(EnrollmentErrorCode.RateLimited,
                $"Too many failed attempts for this license key; try again in {Math.Ceiling(retryAfter.TotalMinutes)} minutes.", out error);
        }

        if (!DateTimeOffset.TryParseExact(fields.CreatedAt, "O", CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var createdAt)
            || (now - createdAt).Duration() > _options.EnrollmentRequestMaxAge)
        {
            return Fail(EnrollmentErrorCode.RequestExpired, "The enrollment request is too old or its clock is wrong; please start again.", out error);
        }

        if (!Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes256Gcm, _enrollmentKey, enc, format == 1 ? DeviceEnrollment.PasswordInfo : DeviceEnrollment.SecretInfo,
                fields.Binding(), sealedSecret, out var secret, out _))
        {
            return Fail(EnrollmentErrorCode.MalformedRequest, "The sealed password could not be opened (altered, or sealed to another school key).", out error);
        }

        try
        {
            string? label = null;
            var password = secret.AsSpan();
            if (format != 1 && !DeviceLabels.TrySplit(secret, out label, out password, out var labelProblem))
            {
                return Fail(EnrollmentErrorCode.MalformedRequest, labelProblem, out error);
            }

            var record = _personnel.Find(license);
            if (record is null)
            {
                RecordFailure(license, now);
                return Fail(EnrollmentErrorCode.UnknownLicense, "This license key is not known to the school.", out error);
            }

            if (!record.Active)
            {
                return Fail(EnrollmentErrorCode.AccountDisabled, "This license key was deactivated by the school.", out error);
            }

            if (!record.Password.Verify(password))
            {
                var left = RecordFailure(license, now);
                return Fail(EnrollmentErrorCode.WrongPassword,
                    left > 0 ? $"The school password is wrong ({left} attempts left)." : "The school password is wrong; further attempts are blocked for a while.", out error);
            }

            return Enroll(record, fields, label, signingKey!, now, out approval, out error);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>Revokes a device: publishes a new signed roster version with the device revoked.</summary>
    /// <param name="accountId">The account.</param>
    /// <param name="deviceId">The device.</param>
    /// <returns>The new signed roster.</returns>
    public byte[] RevokeDevice(string accountId, string deviceId)
    {
        lock (_gate)
        {
            var current = _rosters.Get(accountId) ?? throw new InvalidOperationException($"Account '{accountId}' has no roster.");
            var next = current.WithRevoked(deviceId, _time.GetUtcNow());
            var signed = _root.SignDecision(next.ToBytes());
            _rosters.Save(next, signed);
            return signed;
        }
    }

    private bool Enroll(PersonnelRecord record, RequestFields fields, string? label, ECDsa signingKey, DateTimeOffset now,
        [NotNullWhen(true)] out EnrollmentApproval? approval, out EnrollmentError error)
    {
        approval = null;
        if (!RecipientPublicKey.TryParse(Convert.FromBase64String(fields.EncryptionKey), out var encryptionKey, out var keyError))
        {
            return Fail(EnrollmentErrorCode.MalformedRequest, "The device encryption key is invalid: " + keyError.Message, out error);
        }

        lock (_gate)
        {
            var current = _rosters.Get(record.AccountId) ?? new DeviceRoster(_root.SchoolId, record.AccountId, 0, now, []);
            var spki = signingKey.ExportSubjectPublicKeyInfo();
            if (current.Find(fields.Device) is { } existing)
            {
                // The same device with the same keys, still enrolled: its request is answered again (the first answer was
                // lost before the school stored or sent it), with a certificate for those keys and the current signed
                // roster — no new roster version. Useless to anyone but the holder of the device's keys.
                if (existing.Status == DeviceStatus.Enrolled && existing.SigningKeyFingerprint == Fingerprints.OfSigningKey(spki)
                    && existing.EncryptionKeyFingerprint == Fingerprints.OfEncryptionKey(encryptionKey) && _rosters.GetSigned(record.AccountId) is { } signedNow)
                {
                    var again = _root.IssueDeviceCertificate(record.AccountId, fields.Device, spki, encryptionKey, now, _options.DeviceCertificateValidity);
                    approval = new EnrollmentApproval(record.AccountId, fields.Device, again.RawData, signedNow, label);
                    error = default;
                    return true;
                }

                return Fail(EnrollmentErrorCode.DeviceIdInUse, $"Device id '{fields.Device}' is already in the roster with other keys or revoked; start enrollment again.", out error);
            }

            var cert = _root.IssueDeviceCertificate(record.AccountId, fields.Device, spki, encryptionKey, now, _options.DeviceCertificateValidity);
            var entry = new RosterEntry(fields.Device, Fingerprints.OfSigningKey(spki), Fingerprints.OfEncryptionKey(encryptionKey), DeviceStatus.Enrolled, null);
            var next = current.WithEnrolled(entry, now);
            var signed = _root.SignDecision(next.ToBytes());
            _rosters.Save(next, signed);
            approval = new EnrollmentApproval(record.AccountId, fields.Device, cert.RawData, signed, label);
        }

        error = default;
        return true;
    }

    private static bool TryReadRequest(ReadOnlySpan<byte> request, out RequestFields? fields, out int format, out byte[] enc, out byte[] sealedSecret,
        out ECDsa? signingKey, out EnrollmentError error)
    {
        fields = null;
        format = 0;
        enc = sealedSecret = [];
        signingKey = null;
        if (request.Length > MaxRequestBytes)
        {
            return Fail(EnrollmentErrorCode.MalformedRequest, $"The enrollment request is larger than {MaxRequestBytes} bytes.", out error);
        }

        try
        {
            using var outer = JsonDocument.Parse(request.ToArray());
            var o = outer.RootElement;
            format = o.GetProperty("kind").GetString() == "imikelgo.enroll" && o.GetProperty("format").TryGetInt32(out var f) ? f : 0;
            if (format is not (1 or RequestFields.CurrentFormat))
            {
                return Fail(EnrollmentErrorCode.MalformedRequest, "Not an iMikelGo enrollment request (format 1 or 2).", out error);
            }

            var body = o.GetProperty("body").GetBytesFromBase64();
            var signature = o.GetProperty("signature").GetBytesFromBase64();
            using var inner = JsonDocument.Parse(body);
            var b = inner.RootElement;
            string S(string name) => b.GetProperty(name).GetString() ?? throw new FormatException($"'{name}' is null");
            fields = new RequestFields(S("school"), S("license"), S("device"), S("signingKey"), S("encryptionKey"), S("createdAt"), S("nonce"));
            enc = b.GetProperty("enc").GetBytesFromBase64();
            sealedSecret = b.GetProperty(format == 1 ? "password" : "secret").GetBytesFromBase64();
            if (!fields.ToBody(format, enc, sealedSecret).AsSpan().SequenceEqual(body))
            {
                return Fail(EnrollmentErrorCode.MalformedRequest, "The enrollment request body is not in canonical form.", out error);
            }

            if (!Identifiers.IsValid(fields.Device) || !Identifiers.IsValid(fields.School))
            {
                return Fail(EnrollmentErrorCode.MalformedRequest, "The enrollment request has an invalid device or school id.", out error);
            }

            var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(Convert.FromBase64String(fields.SigningKey), out _);
            if (key.KeySize != 256 || !key.VerifyData(body, signature, HashAlgorithmName.SHA256))
            {
                key.Dispose();
                return Fail(EnrollmentErrorCode.MalformedRequest, "The enrollment request signature does not verify with the device signing key.", out error);
            }

            signingKey = key;
            error = default;
            return true;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or CryptographicException)
        {
            return Fail(EnrollmentErrorCode.MalformedRequest, "The enrollment request is malformed: " + e.Message, out error);
        }
    }

    private bool IsRateLimited(LicenseKey license, DateTimeOffset now, out TimeSpan retryAfter)
    {
        lock (_gate)
        {
            retryAfter = TimeSpan.Zero;
            if (!_failures.TryGetValue(license, out var q))
            {
                return false;
            }

            while (q.Count > 0 && now - q.Peek() >= _options.EnrollmentAttemptWindow)
            {
                q.Dequeue();
            }

            if (q.Count < _options.EnrollmentMaxFailedAttempts)
            {
                return false;
            }

            retryAfter = q.Peek() + _options.EnrollmentAttemptWindow - now;
            return true;
        }
    }

    private int RecordFailure(LicenseKey license, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (!_failures.TryGetValue(license, out var q))
            {
                _failures[license] = q = new Queue<DateTimeOffset>();
            }

            q.Enqueue(now);
            return Math.Max(0, _options.EnrollmentMaxFailedAttempts - q.Count);
        }
    }

    private static bool Fail(EnrollmentErrorCode code, string message, out EnrollmentError error)
    {
        error = new EnrollmentError(code, message);
        return false;
    }
}
