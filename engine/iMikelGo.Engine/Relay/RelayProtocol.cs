using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace IMikelGo.Engine.Relay;

/// <summary>
/// The relay protocol (docs/relay.md): routes, headers and problem types shared by the relay server and its
/// clients. The relay stores sealed bundles in per-account mailboxes; it never sees plaintext.
/// </summary>
public static class RelayProtocol
{
    /// <summary>Header naming the calling replica (device or school).</summary>
    public const string CallerHeader = "X-IMikelGo-Caller";

    /// <summary>Header with the request time in Unix milliseconds.</summary>
    public const string TimestampHeader = "X-IMikelGo-Timestamp";

    /// <summary>Header with a fresh random nonce (base64, 16 bytes).</summary>
    public const string NonceHeader = "X-IMikelGo-Nonce";

    /// <summary>Header with the ECDSA P-256 signature (base64, P1363) over <see cref="RequestSignature.StringToSign"/>.</summary>
    public const string SignatureHeader = "X-IMikelGo-Signature";

    /// <summary>How far a request's timestamp may be from the relay's clock.</summary>
    public static readonly TimeSpan MaxRequestAge = TimeSpan.FromMinutes(5);

    /// <summary>Problem type: the device was revoked and must wipe its data now.</summary>
    public const string WipeProblemType = "https://imikelgo.example/problems/wipe";

    /// <summary>Problem type: the request's authentication failed (unknown caller, bad signature, stale, replayed).</summary>
    public const string UnauthenticatedProblemType = "https://imikelgo.example/problems/unauthenticated";

    /// <summary>Problem type: malformed, oversized or inconsistent input.</summary>
    public const string BadInputProblemType = "https://imikelgo.example/problems/bad-input";

    /// <summary>Problem type: an authenticated caller asked for something it may not do (another account, not the school, another sender).</summary>
    public const string ForbiddenProblemType = "https://imikelgo.example/problems/forbidden";

    /// <summary>Problem type: the account's mailbox is full (HTTP 413); pull and ack, or ask the operator for more.</summary>
    public const string QuotaProblemType = "https://imikelgo.example/problems/quota";

    /// <summary>Problem type: too many requests from this caller (HTTP 429, with Retry-After).</summary>
    public const string RateLimitedProblemType = "https://imikelgo.example/problems/rate-limited";

    /// <summary>Largest bundle the relay accepts (bytes).</summary>
    public const int MaxBundleBytes = 4 * 1024 * 1024;

    /// <summary>Most bundles returned by one pull.</summary>
    public const int MaxPageSize = 500;

    /// <summary>Push a sealed bundle: <c>POST /v1/accounts/{account}/bundles</c> (body: the bundle bytes).</summary>
    public static string Bundles(string account) => $"/v1/accounts/{Uri.EscapeDataString(account)}/bundles";

    /// <summary>Pull bundles after a cursor: <c>GET /v1/accounts/{account}/bundles?after=N&amp;limit=M&amp;wait=S</c>.</summary>
    public static string Pull(string account, long after, int limit, int waitSeconds = 0) =>
        string.Create(CultureInfo.InvariantCulture, $"{Bundles(account)}?after={after}&limit={limit}&wait={waitSeconds}");

    /// <summary>Acknowledge receipt up to a position: <c>POST /v1/accounts/{account}/acks</c>.</summary>
    public static string Acks(string account) => $"/v1/accounts/{Uri.EscapeDataString(account)}/acks";

    /// <summary>Register a device's signing key (school-signed): <c>POST /v1/accounts/{account}/devices</c>.</summary>
    public static string Devices(string account) => $"/v1/accounts/{Uri.EscapeDataString(account)}/devices";

    /// <summary>Revoke a device or the whole account (school-signed): <c>POST /v1/accounts/{account}/revocations</c>.</summary>
    public static string Revocations(string account) => $"/v1/accounts/{Uri.EscapeDataString(account)}/revocations";

    /// <summary>A revoked device confirms its wipe: <c>POST /v1/wipe-acks</c>.</summary>
    public const string WipeAcks = "/v1/wipe-acks";

    /// <summary>
    /// Header of an enrollment submission: lowercase hex SHA-256 of the canonical license key, so the relay can
    /// rate-limit attempts per license key without learning it.
    /// </summary>
    public const string LicenseHashHeader = "X-IMikelGo-License-Hash";

    /// <summary>Largest sealed enrollment request the relay queues (bytes; the school refuses larger ones too).</summary>
    public const int MaxEnrollmentRequestBytes = 64 * 1024;

    /// <summary>Largest school answer to an enrollment (bytes of the JSON body: certificate and signed roster, base64).</summary>
    public const int MaxEnrollmentAnswerBytes = 256 * 1024;

    /// <summary>Most pending enrollments returned by one school pull.</summary>
    public const int MaxEnrollmentPageSize = 100;

    /// <summary>
    /// Submit (unauthenticated device, body: the sealed request bytes) or pull (the school, signed):
    /// <c>/v1/schools/{school}/enrollments</c>.
    /// </summary>
    public static string Enrollments(string school) => $"/v1/schools/{Uri.EscapeDataString(school)}/enrollments";

    /// <summary>The school pulls pending enrollments after a cursor: <c>GET /v1/schools/{school}/enrollments?after=N&amp;limit=M</c>.</summary>
    public static string PullEnrollments(string school, long after, int limit = MaxEnrollmentPageSize) =>
        string.Create(CultureInfo.InvariantCulture, $"{Enrollments(school)}?after={after}&limit={limit}");

    /// <summary>The school answers an enrollment (signed): <c>POST /v1/schools/{school}/enrollments/{id}/answer</c>.</summary>
    public static string EnrollmentAnswer(string school, string id) => $"{Enrollments(school)}/{Uri.EscapeDataString(id)}/answer";

    /// <summary>The device polls for the answer (unauthenticated; the id is a 128-bit capability): <c>GET /v1/enrollments/{id}</c>.</summary>
    public static string Enrollment(string id) => $"/v1/enrollments/{Uri.EscapeDataString(id)}";

    /// <summary>Lowercase hex SHA-256 of a canonical license key, for <see cref="LicenseHashHeader"/>.</summary>
    public static string LicenseHash(string canonicalLicense)
    {
        ArgumentNullException.ThrowIfNull(canonicalLicense);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("imikelgo-license/1\n" + canonicalLicense)));
    }

    /// <summary>Whether <paramref name="id"/> has the form of an enrollment id (32 lowercase hex digits, 128 bits).</summary>
    public static bool IsEnrollmentId(string? id)
    {
        if (id is null || id.Length != 32)
        {
            return false;
        }

        foreach (var c in id)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// Signs and checks relay requests: every request is signed by the caller's replica key over method, path
/// and query, timestamp, nonce and the SHA-256 of the body, so it cannot be altered, replayed or moved.
/// </summary>
public static class RequestSignature
{
    /// <summary>The exact bytes that are signed.</summary>
    public static byte[] StringToSign(string method, string pathAndQuery, long timestampMs, string nonce, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(pathAndQuery);
        ArgumentNullException.ThrowIfNull(nonce);
        var text = string.Create(CultureInfo.InvariantCulture,
            $"imikelgo-request/1\n{method.ToUpperInvariant()}\n{pathAndQuery}\n{timestampMs}\n{nonce}\n{Convert.ToHexStringLower(SHA256.HashData(body))}");
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>Signs a request with <paramref name="key"/> (P1363 signature, base64).</summary>
    public static string Sign(ECDsa key, string method, string pathAndQuery, long timestampMs, string nonce, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToBase64String(key.SignData(StringToSign(method, pathAndQuery, timestampMs, nonce, body), HashAlgorithmName.SHA256,
            DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
    }

    /// <summary>Whether <paramref name="signature"/> is valid for the request under the caller's SubjectPublicKeyInfo.</summary>
    public static bool Verify(ReadOnlySpan<byte> subjectPublicKeyInfo, string method, string pathAndQuery, long timestampMs, string nonce, ReadOnlySpan<byte> body, string signature)
    {
        byte[] sig;
        try
        {
            sig = Convert.FromBase64String(signature ?? string.Empty);
        }
        catch (FormatException)
        {
            return false;
        }

        return Signing.SignatureVerifier.Verify(subjectPublicKeyInfo, StringToSign(method, pathAndQuery, timestampMs, nonce, body), sig);
    }
}

/// <summary>Answer to a push: the bundle's position in the mailbox; a retry of the same bundle id is a success with the original position.</summary>
public sealed record PushResult(long Position, Guid BundleId, bool Duplicate);

/// <summary>One bundle in a pull page.</summary>
public sealed record MailboxItem(long Position, Guid BundleId, string Sender, byte[] Data);

/// <summary>
/// A page of a pull. <see cref="Next"/> is the position of the last item returned (or the request's cursor
/// when empty) — never the mailbox head — so a client that stores it never skips a bundle.
/// </summary>
public sealed record PullPage(IReadOnlyList<MailboxItem> Items, long Next, long Head);

/// <summary>Acknowledgement of everything up to <see cref="Position"/> by the calling device.</summary>
public sealed record AckRequest(long Position);

/// <summary>A device registration: the school tells the relay which key a device signs its requests with.</summary>
/// <param name="Device">The device's replica id.</param>
/// <param name="SigningKey">Its SubjectPublicKeyInfo, base64.</param>
public sealed record DeviceRegistration(string Device, string SigningKey);

/// <summary>A revocation: one device, or the whole account when <see cref="Device"/> is null.</summary>
public sealed record RevocationRequest(string? Device, string Reason);

/// <summary>A revoked device's confirmation that it wiped its data.</summary>
public sealed record WipeAck(string Device, string Account);

/// <summary>The relay's answer to an enrollment submission: the request's id, a 128-bit random capability.</summary>
/// <param name="Id">32 lowercase hex digits; whoever knows it can read the school's answer.</param>
public sealed record EnrollmentSubmitted(string Id);

/// <summary>A pending enrollment request, as the school pulls it.</summary>
/// <param name="Position">The request's position in the school's queue (the pull cursor).</param>
/// <param name="Id">The request id.</param>
/// <param name="Request">The sealed request bytes, exactly as the device sent them.</param>
/// <param name="ReceivedAt">When the relay queued it.</param>
public sealed record PendingEnrollment(long Position, string Id, byte[] Request, DateTimeOffset ReceivedAt);

/// <summary>A page of pending enrollments; <see cref="Next"/> is the last position returned (or the cursor).</summary>
public sealed record EnrollmentPage(IReadOnlyList<PendingEnrollment> Items, long Next);

/// <summary>
/// The school's answer to an enrollment request: opaque bytes for the device (a signed approval or a refusal), and
/// on approval the device's registration in the school's account, so the relay learns the device's key in the same
/// step.
/// </summary>
/// <param name="Approved">Whether the device was enrolled.</param>
/// <param name="Answer">The bytes the device receives (the relay does not interpret them).</param>
/// <param name="Account">The account the device was enrolled in (required with <paramref name="Registration"/>).</param>
/// <param name="Registration">The device's signing key to register (required on approval).</param>
public sealed record EnrollmentAnswerRequest(bool Approved, byte[] Answer, string? Account, DeviceRegistration? Registration);

/// <summary>What the device sees when it polls its enrollment.</summary>
/// <param name="Id">The request id.</param>
/// <param name="Status"><c>pending</c>, <c>approved</c> or <c>refused</c>.</param>
/// <param name="Answer">The school's answer bytes once answered.</param>
public sealed record EnrollmentStatus(string Id, string Status, byte[]? Answer)
{
    /// <summary>The request is queued or being decided.</summary>
    public const string Pending = "pending";

    /// <summary>The school enrolled the device; <see cref="Answer"/> holds the approval.</summary>
    public const string Approved = "approved";

    /// <summary>The school refused; <see cref="Answer"/> holds the reason.</summary>
    public const string Refused = "refused";
}
