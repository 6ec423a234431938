using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.RateLimiting;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace IMikelGo.Relay;

/// <summary>
/// The enrollment hand-off (docs/relay.md): a device that is not yet registered queues its sealed enrollment request
/// for a school and polls for the answer under a random 128-bit id; the school (signed) pulls the queue and posts its
/// answer together with the device's registration. The relay only forwards bytes: it cannot read the sealed password
/// nor forge an approval (the certificate and roster are signed by the school root the device pinned).
/// </summary>
internal sealed partial class EnrollmentRelay : IDisposable
{
    private readonly IMailboxStore store;
    private readonly RelayOptions options;
    private readonly ILogger<EnrollmentRelay> logger;
    private readonly PartitionedRateLimiter<string> perIp;
    private readonly PartitionedRateLimiter<string> perLicense;

    public EnrollmentRelay(IMailboxStore store, RelayOptions options, ILogger<EnrollmentRelay> logger)
    {
        this.store = store;
        this.options = options;
        this.logger = logger;
        perIp = Limiter(options);
        perLicense = Limiter(options);
    }

    public async Task<IResult> SubmitAsync(string school, HttpContext context)
    {
        var ct = context.RequestAborted;
        var body = context.Features.Get<AnonymousRequestFeature>()?.Body ?? [];
        var licenseHash = context.Request.Headers[RelayProtocol.LicenseHashHeader].ToString();
        if (!Identifiers.IsValid(school))
        {
            return Problems.BadInput("bad-school", "The school id is not a valid id.");
        }

        if (licenseHash.Length != 64 || !licenseHash.All(char.IsAsciiHexDigitLower))
        {
            return Problems.BadInput("missing-license-hash", $"{RelayProtocol.LicenseHashHeader} must be the lowercase hex SHA-256 of the license key.");
        }

        if (body.Length == 0)
        {
            return Problems.BadInput("empty", "The body must be a sealed enrollment request.");
        }

        var ip = "ip:" + context.Connection.RemoteIpAddress;
        if (!Acquire(perIp, ip, context) || !Acquire(perLicense, "license:" + licenseHash, context))
        {
            LogRateLimited(logger, school);
            return Problems.RateLimited("Too many enrollment requests from this address or for this license key; retry after the Retry-After delay.");
        }

        if (await store.GetCallerAsync(school, ct) is not { IsSchool: true })
        {
            return Problems.Make(StatusCodes.Status404NotFound, RelayProtocol.BadInputProblemType, "Unknown school", "unknown-school",
                "The relay does not serve this school.");
        }

        if (await store.PendingEnrollmentCountAsync(school, ct) >= options.MaxPendingEnrollments)
        {
            context.Response.Headers.RetryAfter = "60";
            return Problems.Make(StatusCodes.Status429TooManyRequests, RelayProtocol.RateLimitedProblemType, "Enrollment queue full", "queue-full",
                "The school has too many unanswered enrollment requests; try again later.");
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var position = await store.EnqueueEnrollmentAsync(school, id, body, ct);
        LogQueued(logger, school, position, body.Length);
        context.Response.Headers.Location = RelayProtocol.Enrollment(id);
        return Results.Json(new EnrollmentSubmitted(id), RelayJson.Default.EnrollmentSubmitted, statusCode: StatusCodes.Status202Accepted);
    }

    public async Task<IResult> StatusAsync(string id, CancellationToken ct)
    {
        var state = RelayProtocol.IsEnrollmentId(id) ? await store.GetEnrollmentAnswerAsync(id, ct) : null;
        if (state is null)
        {
            return UnknownEnrollment();
        }

        var status = !state.Answered ? EnrollmentStatus.Pending : state.Approved ? EnrollmentStatus.Approved : EnrollmentStatus.Refused;
        return Results.Json(new EnrollmentStatus(id, status, state.Answered ? state.Answer : null), RelayJson.Default.EnrollmentStatus);
    }

    public async Task<IResult> PullAsync(RelayRequestFeature auth, IQueryCollection query, CancellationToken ct)
    {
        if (!TryQuery(query, "after", 0, 0, long.MaxValue, out var after) || !TryQuery(query, "limit", RelayProtocol.MaxEnrollmentPageSize, 1, RelayProtocol.MaxEnrollmentPageSize, out var limit))
        {
            return Problems.BadInput("bad-query", $"after >= 0, 1 <= limit <= {RelayProtocol.MaxEnrollmentPageSize}.");
        }

        var items = await store.ReadEnrollmentsAsync(auth.Caller.Id, after, (int)limit, ct);
        var page = items.Select(e => new PendingEnrollment(e.Position, e.Id, e.Request, e.ReceivedAt)).ToList();
        return Results.Json(new EnrollmentPage(page, page.Count > 0 ? page[^1].Position : after), RelayJson.Default.EnrollmentPage);
    }

    public async Task<IResult> AnswerAsync(RelayRequestFeature auth, string id, CancellationToken ct)
    {
        EnrollmentAnswerRequest? answer;
        try
        {
            answer = JsonSerializer.Deserialize(auth.Body, RelayJson.Default.EnrollmentAnswerRequest);
        }
        catch (JsonException)
        {
            answer = null;
        }

        if (answer is null || answer.Answer is not { Length: > 0 }
            || (answer.Approved && (answer.Registration is null || answer.Account is null))
            || (answer.Registration is { } r && (!Identifiers.IsValid(r.Device) || !RelayService.TryKey(r.SigningKey, out _))))
        {
            return Problems.BadInput("malformed-json",
                "Expected {\"approved\": bool, \"answer\": base64, \"account\": id, \"registration\": {\"device\": id, \"signingKey\": base64}} (account and registration required on approval).");
        }

        var school = auth.Caller.Id;
        var state = RelayProtocol.IsEnrollmentId(id) ? await store.GetEnrollmentAnswerAsync(id, ct) : null;
        if (state is null || !string.Equals(state.School, school, StringComparison.Ordinal))
        {
            return UnknownEnrollment();
        }

        if (state.Answered)
        {
            return Results.NoContent(); // a retry: the first answer stands
        }

        if (answer.Registration is { } elsewhere && !string.Equals(answer.Account, auth.Account, StringComparison.Ordinal))
        {
            // A device of another account of the school: that account's school caller registered it first (signed with
            // the account's key); the enrollment caller may only confirm that registration, never make one elsewhere.
            RelayService.TryKey(elsewhere.SigningKey, out var confirmed);
            if (await store.GetCallerAsync(elsewhere.Device, ct) is not { IsSchool: false } registered
                || !string.Equals(registered.Account, answer.Account, StringComparison.Ordinal)
                || !registered.SigningKey.AsSpan().SequenceEqual(confirmed))
            {
                return Problems.Forbidden("other-account",
                    "A school registers devices only in its own account; a device of another account must first be registered there by that account's school.");
            }
        }
        else if (answer.Registration is { } registration)
        {
            if (await store.GetCallerAsync(registration.Device, ct) is { } existing
                && (existing.IsSchool || !string.Equals(existing.Account, auth.Account, StringComparison.Ordinal)))
            {
                return Problems.Forbidden("id-taken", "This id belongs to a school or to another account.");
            }

            if (await store.IsRevokedAsync(auth.Account, registration.Device, ct))
            {
                return Problems.Forbidden("revoked", "A revoked device id cannot be registered again; enroll the device under a new id.");
            }

            // Registered before the answer is visible, so a device that sees its approval can call at once.
            RelayService.TryKey(registration.SigningKey, out var key);
            await store.PutCallerAsync(new RelayCaller(registration.Device, auth.Account, key, IsSchool: false), ct);
        }

        var outcome = await store.AnswerEnrollmentAsync(school, id, answer.Approved, answer.Answer, ct);
        if (outcome == EnrollmentAnswerOutcome.Unknown)
        {
            return UnknownEnrollment();
        }

        LogAnswered(logger, school, answer.Approved);
        return Results.NoContent();
    }

    public void Dispose()
    {
        perIp.Dispose();
        perLicense.Dispose();
    }

    private static IResult UnknownEnrollment() =>
        Problems.Make(StatusCodes.Status404NotFound, RelayProtocol.BadInputProblemType, "Unknown enrollment", "unknown-enrollment",
            "No enrollment request with this id.");

    private static bool Acquire(PartitionedRateLimiter<string> limiter, string key, HttpContext context)
    {
        using var lease = limiter.AttemptAcquire(key);
        if (lease.IsAcquired)
        {
            return true;
        }

        var retry = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(6);
        context.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(retry.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        return false;
    }

    private static PartitionedRateLimiter<string> Limiter(RelayOptions options) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = Math.Max(1, options.EnrollmentRateLimitBurst),
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1.0 / Math.Max(1, options.EnrollmentRateLimitPerMinute)),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    private static bool TryQuery(IQueryCollection query, string name, long fallback, long min, long max, out long value)
    {
        value = fallback;
        return !query.TryGetValue(name, out var raw)
            || (raw.Count == 1 && long.TryParse(raw[0], NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Queued an enrollment request for school {School} at {Position} ({Bytes} bytes)")]
    private static partial void LogQueued(ILogger logger, string school, long position, int bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "School {School} answered an enrollment request (approved: {Approved})")]
    private static partial void LogAnswered(ILogger logger, string school, bool approved);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rate-limited an enrollment submission for school {School}")]
    private static partial void LogRateLimited(ILogger logger, string school);
}
