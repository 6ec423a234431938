using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IMikelGo.Engine;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;

namespace IMikelGo.Device;

/// <summary>Why an enrollment did not succeed (<see cref="EnrollmentRefusedException.Reason"/>).</summary>
public enum EnrollmentRefusalReason
{
    /// <summary>Not further specified.</summary>
    Unspecified = 0,

    /// <summary>The school-internal password is wrong.</summary>
    WrongPassword,

    /// <summary>The license key contains a typo.</summary>
    LicenseTypo,

    /// <summary>The license key is well formed but unknown to the school.</summary>
    UnknownLicense,

    /// <summary>Too many failed attempts for this license key at the school; try again later.</summary>
    TooManyAttempts,

    /// <summary>The teacher was deactivated by the school.</summary>
    AccountDisabled,

    /// <summary>The school rejected the request itself (malformed, stale, other school, device id in use).</summary>
    RequestRejected,

    /// <summary>The relay rate-limited the submission (<see cref="EnrollmentRefusedException.RetryAfter"/> when known).</summary>
    RateLimited,

    /// <summary>The school did not answer in time (its connector is probably not running).</summary>
    Timeout,

    /// <summary>The relay does not know the school in the enrollment code.</summary>
    UnknownSchool,

    /// <summary>The relay could not be reached, or failed.</summary>
    RelayUnavailable,

    /// <summary>The relay's certificate does not match the fingerprint in the enrollment code, or there is none to pin.</summary>
    RelayNotTrusted,

    /// <summary>The school's root and enrollment certificates are not available to the device.</summary>
    SchoolCertificatesUnavailable,

    /// <summary>The school's certificates or answer do not verify against the school root pinned by the enrollment code.</summary>
    InvalidAnswer,
}

/// <summary>The school's public certificates a device needs to seal its enrollment request (DER).</summary>
/// <param name="Root">The school root certificate (must match the fingerprint in the enrollment code).</param>
/// <param name="Enrollment">The school's enrollment certificate (its HPKE key, issued by the root).</param>
public sealed record SchoolEnrollmentCertificates(byte[] Root, byte[] Enrollment);

/// <summary>How a <see cref="RelayEnrollmentChannel"/> enrolls.</summary>
public sealed class RelayEnrollmentOptions
{
    /// <summary>
    /// Where the school's root and enrollment certificates come from; null (the default) = fetched from the relay named
    /// and pinned by the enrollment code, where the school connector publishes them. Whatever the source, the root
    /// must match the fingerprint in the enrollment code, so the relay cannot substitute them.
    /// </summary>
    public Func<EnrollmentUri, CancellationToken, Task<SchoolEnrollmentCertificates>>? SchoolCertificates { get; set; }

    /// <summary>The relay certificate fingerprint to pin when the enrollment code carries none (<c>relayPin</c>); never unpinned.</summary>
    public string? RelayCertificateSha256 { get; set; }

    /// <summary>How long to wait for the school's answer (default 10 minutes).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The first wait between polls (default 1 s); it doubles up to <see cref="MaxPollDelay"/>.</summary>
    public TimeSpan FirstPollDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between polls (default 30 s).</summary>
    public TimeSpan MaxPollDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Called once the relay queued the request, before the device waits for the school's answer (up to <see cref="Timeout"/>).</summary>
    public Action<TimeSpan>? Waiting { get; set; }

    /// <summary>Tunes the relay client (retries, timeouts); base address and pin always come from the enrollment code.</summary>
    public Action<RelayClientOptions>? ConfigureRelay { get; set; }

    /// <summary>The clock (polling, certificate validity).</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}

/// <summary>
/// The relay hand-off (docs/relay.md, "Enrollment hand-off"): seals the request to the school's certified enrollment
/// key (<see cref="DeviceEnrollment"/>), submits it to the relay named and pinned by the enrollment code, polls for the
/// school's answer with backoff, and verifies an approval against the school root pinned by the code
/// (<see cref="DeviceEnrollment.TryComplete"/>). Every failure is an <see cref="EnrollmentRefusedException"/> with a
/// <see cref="EnrollmentRefusalReason"/> and a message safe to show.
/// </summary>
/// <param name="options">The options.</param>
public sealed class RelayEnrollmentChannel(RelayEnrollmentOptions options) : IEnrollmentChannel
{
    private readonly RelayEnrollmentOptions _options = options ?? throw new ArgumentNullException(nameof(options));

    /// <inheritdoc />
    public async Task<EnrollmentGrant> EnrollAsync(EnrollmentRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var uri = request.Uri;
        var signingKey = request.DeviceSigningKey
            ?? throw new InvalidOperationException("the relay enrollment channel needs the device's private keys (enroll through TeacherDevice)");
        var encryptionKey = request.DeviceEncryptionKey
            ?? throw new InvalidOperationException("the relay enrollment channel needs the device's private keys (enroll through TeacherDevice)");
        var pin = uri.RelayPin ?? _options.RelayCertificateSha256
            ?? throw Refused(EnrollmentRefusalReason.RelayNotTrusted, "the enrollment code carries no relay certificate fingerprint (relayPin); ask the school for a new code");
        var time = _options.Time;
        using var ecdsa = ECDsa.Create();
        var pkcs8 = signingKey.ExportPkcs8();
        try
        {
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }

        var relayOptions = new RelayClientOptions();
        _options.ConfigureRelay?.Invoke(relayOptions);
        relayOptions.BaseAddress = uri.Relay;
        relayOptions.PinnedCertificateSha256 = pin;
        relayOptions.AllowUnpinnedCertificate = false;
        using var signer = new EcdsaRequestSigner(ecdsa, ownsKey: false, callerId: request.Device.Value);
        using var relay = RelayClient.Create(relayOptions, signer, time);

        var certificates = await SchoolCertificatesAsync(relay, uri, cancellationToken).ConfigureAwait(false);
        using var root = Load(certificates.Root, "root");
        if (!string.Equals(Fingerprints.Of(root), uri.RootFingerprint, StringComparison.Ordinal))
        {
            throw Refused(EnrollmentRefusalReason.InvalidAnswer,
                "the school root certificate the device received does not match the fingerprint in the enrollment code: it is not your school's (was it substituted on the way?); nothing was sent");
        }

        using var enrollmentCertificate = Load(certificates.Enrollment, "enrollment");
        using var enrollment = DeviceEnrollment.Start(uri, request.Device.Value, ecdsa, encryptionKey);
        if (!enrollment.TryCreateRequest(root, enrollmentCertificate, request.SchoolPassword, request.Label, time.GetUtcNow(), out var sealedRequest, out var sealError))
        {
            throw Refused(EnrollmentRefusalReason.InvalidAnswer, "the school's certificates do not match the enrollment code: " + sealError.Message);
        }

        string id;
        try
        {
            id = await relay.SubmitEnrollmentAsync(uri.SchoolId, uri.License, sealedRequest, cancellationToken).ConfigureAwait(false);
        }
        catch (RelayException e)
        {
            throw FromRelay(e, "submitting the enrollment request");
        }

        _options.Waiting?.Invoke(_options.Timeout);
        var status = await PollAsync(relay, id, cancellationToken).ConfigureAwait(false);
        if (!EnrollmentAnswers.TryRead(status, out var approval, out var peers, out var refusal))
        {
            throw status.Status == EnrollmentStatus.Refused && refusal.Code != EnrollmentErrorCode.MalformedRequest
                ? Refused(ReasonOf(refusal.Code), "the school refused the enrollment: " + refusal.Message)
                : Refused(status.Status == EnrollmentStatus.Refused ? EnrollmentRefusalReason.RequestRejected : EnrollmentRefusalReason.InvalidAnswer,
                    "the school refused the enrollment: " + refusal.Message);
        }

        if (!string.Equals(approval.DeviceId, request.Device.Value, StringComparison.Ordinal))
        {
            throw Refused(EnrollmentRefusalReason.InvalidAnswer, "the school's approval names another device");
        }

        var rosters = new RosterVerifier(root, time);
        if (!enrollment.TryComplete(approval, root, rosters, time.GetUtcNow(), out var identity, out var completeError))
        {
            throw Refused(EnrollmentRefusalReason.InvalidAnswer, "the school's approval does not verify against the school root in the enrollment code: " + completeError.Message);
        }

        // The answer's peers are not signed: the relay could add its own key and read every bundle sealed for it. Only a
        // peer the school-signed roster lists as enrolled with exactly this encryption key is taken; others are dropped
        // (the log's signed key events reach the device on its first pull anyway).
        rosters.TryAccept(approval.SignedRoster, identity.AccountId, out var roster, out _);
        var peerKeys = new Dictionary<ReplicaId, RecipientPublicKey>();
        foreach (var (peer, key) in peers)
        {
            if (!string.Equals(peer, request.Device.Value, StringComparison.Ordinal)
                && roster?.Find(peer) is { Status: DeviceStatus.Enrolled } entry
                && string.Equals(entry.EncryptionKeyFingerprint, Fingerprints.OfEncryptionKey(key), StringComparison.Ordinal))
            {
                try
                {
                    peerKeys[new ReplicaId(peer)] = key;
                }
                catch (FormatException e)
                {
                    throw Refused(EnrollmentRefusalReason.InvalidAnswer, $"the school's answer names an invalid peer device '{peer}'", e);
                }
            }
        }

        return new EnrollmentGrant(identity.AccountId, uri.Relay, pin, peerKeys);
    }

    /// <summary>The school's certificates from <see cref="RelayEnrollmentOptions.SchoolCertificates"/>, else from the pinned relay.</summary>
    private async Task<SchoolEnrollmentCertificates> SchoolCertificatesAsync(RelayClient relay, EnrollmentUri uri, CancellationToken cancellationToken)
    {
        if (_options.SchoolCertificates is { } source)
        {
            try
            {
                return await source(uri, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException and not EnrollmentRefusedException)
            {
                throw Refused(EnrollmentRefusalReason.SchoolCertificatesUnavailable, "the school's certificates could not be fetched: " + e.Message, e);
            }
        }

        try
        {
            var published = await relay.GetSchoolCertificatesAsync(uri.SchoolId, cancellationToken).ConfigureAwait(false);
            return new SchoolEnrollmentCertificates(published.Root, published.Enrollment);
        }
        catch (RelayException e) when (e.Problem is { Status: 404 })
        {
            throw Refused(EnrollmentRefusalReason.SchoolCertificatesUnavailable,
                "the relay has no certificates of this school yet (the school's connector has not run); ask the school, then enroll again", e);
        }
        catch (RelayException e)
        {
            throw FromRelay(e, "fetching the school's certificates");
        }
    }

    private async Task<EnrollmentStatus> PollAsync(RelayClient relay, string id, CancellationToken cancellationToken)
    {
        var time = _options.Time;
        var deadline = time.GetUtcNow() + _options.Timeout;
        var delay = _options.FirstPollDelay > TimeSpan.Zero ? _options.FirstPollDelay : TimeSpan.FromMilliseconds(100);
        var max = _options.MaxPollDelay >= delay ? _options.MaxPollDelay : delay;
        RelayException? lastError = null;
        while (true)
        {
            try
            {
                var status = await relay.GetEnrollmentAnswerAsync(id, cancellationToken).ConfigureAwait(false);
                if (status.Status != EnrollmentStatus.Pending)
                {
                    return status;
                }

                lastError = null;
            }
            catch (RelayException e) when (e.IsTransient || e.Problem is null)
            {
                // The relay is down or busy for a moment: keep polling until the deadline.
                lastError = e;
            }
            catch (RelayException e)
            {
                throw FromRelay(e, "reading the school's answer");
            }

            var left = deadline - time.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                throw lastError is not null
                    ? FromRelay(lastError, "waiting for the school's answer")
                    : Refused(EnrollmentRefusalReason.Timeout, string.Create(CultureInfo.InvariantCulture,
                        $"the school did not answer within {_options.Timeout.TotalMinutes:0.#} minutes; ask the school to run its connector, then enroll again"));
            }

            await Task.Delay(delay < left ? delay : left, time, cancellationToken).ConfigureAwait(false);
            delay = delay * 2 < max ? delay * 2 : max;
        }
    }

    private static X509Certificate2 Load(byte[] der, string which)
    {
        try
        {
            return X509CertificateLoader.LoadCertificate(der);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw Refused(EnrollmentRefusalReason.InvalidAnswer, $"the school's {which} certificate is not DER X.509", e);
        }
    }

    private static EnrollmentRefusalReason ReasonOf(EnrollmentErrorCode code) => code switch
    {
        EnrollmentErrorCode.WrongPassword => EnrollmentRefusalReason.WrongPassword,
        EnrollmentErrorCode.LicenseTypo => EnrollmentRefusalReason.LicenseTypo,
        EnrollmentErrorCode.UnknownLicense => EnrollmentRefusalReason.UnknownLicense,
        EnrollmentErrorCode.RateLimited => EnrollmentRefusalReason.TooManyAttempts,
        EnrollmentErrorCode.AccountDisabled => EnrollmentRefusalReason.AccountDisabled,
        _ => EnrollmentRefusalReason.RequestRejected,
    };

    private static EnrollmentRefusedException FromRelay(RelayException e, string doing) => e switch
    {
        RelayCertificatePinningException => Refused(EnrollmentRefusalReason.RelayNotTrusted,
            $"{doing}: the relay's certificate does not match the fingerprint in the enrollment code", e),
        { Problem.Status: 429 } => new EnrollmentRefusedException(EnrollmentRefusalReason.RateLimited,
            $"{doing}: the relay is limiting enrollment requests; try again{(e.RetryAfter is { } after ? string.Create(CultureInfo.InvariantCulture, $" in {Math.Ceiling(after.TotalSeconds):0} s") : " later")}",
            e, e.RetryAfter),
        { Problem.Status: 404 } when e.Problem.Type?.Contains("unknown-school", StringComparison.Ordinal) == true || doing.StartsWith("submitting", StringComparison.Ordinal) =>
            Refused(EnrollmentRefusalReason.UnknownSchool, $"{doing}: the relay does not know the school in the enrollment code ({e.Problem.Detail ?? e.Problem.Title})", e),
        { Problem: { } problem } => Refused(EnrollmentRefusalReason.RelayUnavailable, $"{doing}: the relay refused ({problem})", e),
        _ => Refused(EnrollmentRefusalReason.RelayUnavailable, $"{doing}: the relay could not be reached ({e.Message})", e),
    };

    private static EnrollmentRefusedException Refused(EnrollmentRefusalReason reason, string message, Exception? inner = null) =>
        new(reason, message, inner, null);
}
