using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using IMikelGo.Engine.Relay;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace IMikelGo.Relay;

/// <summary>The authenticated caller of a relay request and the exact body bytes it signed.</summary>
public sealed class RelayRequestFeature(RelayCaller caller, byte[] body, string account)
{
    /// <summary>The verified caller.</summary>
    public RelayCaller Caller { get; } = caller;

    /// <summary>The request body as received and signed.</summary>
    public byte[] Body { get; } = body;

    /// <summary>The account the request is about (route or wipe acknowledgement).</summary>
    public string Account { get; } = account;
}

/// <summary>
/// Marks the relay's unauthenticated endpoints (the device's enrollment submission and answer poll): no signature,
/// the body is still read once and bounded to <see cref="MaxBodyBytes"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class)]
public sealed class AnonymousRelayEndpointAttribute(int maxBodyBytes = 0) : Attribute
{
    /// <summary>Largest body accepted.</summary>
    public int MaxBodyBytes { get; } = maxBodyBytes;
}

/// <summary>The bounded body of an unauthenticated request.</summary>
public sealed class AnonymousRequestFeature(byte[] body)
{
    /// <summary>The request body as received.</summary>
    public byte[] Body { get; } = body;
}

/// <summary>
/// Authenticates every <c>/v1/</c> request (docs/relay.md): headers well formed, timestamp within
/// <see cref="RelayProtocol.MaxRequestAge"/>, device not revoked (checked before the key lookup, so a deleted
/// record still gets the wipe), caller known and of the account, signature valid, nonce never used (the store
/// enforces it across instances). The body is read once, bounded, and kept for the endpoint.
/// </summary>
internal sealed partial class RequestAuthentication(RequestDelegate next, IMailboxStore store, RelayOptions options, ILogger<RequestAuthentication> logger)
{
    /// <summary>Largest JSON body (everything but a bundle push).</summary>
    public const int MaxJsonBytes = 64 * 1024;

    private readonly CallerKeys keys = new();

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            await next(context);
            return;
        }

        if (context.GetEndpoint()?.Metadata.GetMetadata<AnonymousRelayEndpointAttribute>() is { } anonymous)
        {
            var (anonymousBody, anonymousProblem) = await ReadBodyAsync(context, anonymous.MaxBodyBytes, context.RequestAborted);
            if (anonymousProblem is not null)
            {
                await Problems.Write(context, anonymousProblem);
                return;
            }

            context.Features.Set(new AnonymousRequestFeature(anonymousBody!));
            await next(context);
            return;
        }

        using var activity = RelayTelemetry.Activities.StartActivity("relay.authenticate");
        var problem = await AuthenticateAsync(context);
        if (problem is not null)
        {
            activity?.SetStatus(ActivityStatusCode.Error);
            await Problems.Write(context, problem);
            return;
        }

        await next(context);
    }

    private async Task<IResult?> AuthenticateAsync(HttpContext context)
    {
        var request = context.Request;
        var ct = context.RequestAborted;
        var caller = request.Headers[RelayProtocol.CallerHeader].ToString();
        var timestampText = request.Headers[RelayProtocol.TimestampHeader].ToString();
        var nonce = request.Headers[RelayProtocol.NonceHeader].ToString();
        var signature = request.Headers[RelayProtocol.SignatureHeader].ToString();
        if (!IMikelGo.Sealing.Identifiers.IsValid(caller) || timestampText.Length == 0 || nonce.Length == 0 || signature.Length == 0)
        {
            return Problems.Unauthenticated("missing-headers", "Every request carries the caller, timestamp, nonce and signature headers.");
        }

        if (!long.TryParse(timestampText, NumberStyles.None, CultureInfo.InvariantCulture, out var timestamp))
        {
            return Problems.Unauthenticated("bad-timestamp", "The timestamp is not Unix milliseconds.");
        }

        if (!IsNonce(nonce))
        {
            return Problems.Unauthenticated("bad-nonce", "The nonce is not 16 random bytes in base64.");
        }

        var now = options.Time.GetUtcNow();
        var sent = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(timestamp, 0, 253402300799999));
        if ((now - sent).Duration() > RelayProtocol.MaxRequestAge)
        {
            LogRefused(logger, caller, "stale");
            return Problems.Unauthenticated("stale", $"The request timestamp is more than {RelayProtocol.MaxRequestAge.TotalMinutes:0} minutes from the relay's clock.");
        }

        var (body, bodyProblem) = await ReadBodyAsync(context, BodyLimit(request), ct);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        var isWipeAck = request.Path.Equals(RelayProtocol.WipeAcks, StringComparison.Ordinal);
        var school = context.GetRouteValue("school") as string;
        string? account;
        if (school is not null)
        {
            // School routes (enrollment queue): the account is the school's own, known after the key lookup.
            account = null;
        }
        else if (isWipeAck)
        {
            account = TryReadWipeAck(body!)?.Account;
            if (string.IsNullOrEmpty(account))
            {
                return Problems.BadInput("malformed-json", "The wipe acknowledgement is not {\"device\":...,\"account\":...}.");
            }
        }
        else
        {
            account = context.GetRouteValue("account") as string;
            if (string.IsNullOrEmpty(account))
            {
                return Problems.Make(StatusCodes.Status404NotFound, RelayProtocol.BadInputProblemType, "Not found", "no-route", "No relay endpoint at this path.");
            }
        }

        // Revocation first: a revoked device (even one whose record was deleted) is told to wipe.
        if (!isWipeAck && account is not null && await store.IsRevokedAsync(account, caller, ct))
        {
            LogRefused(logger, caller, "revoked");
            return Problems.Wipe("This device was revoked: wipe its local data, then confirm at " + RelayProtocol.WipeAcks + ".");
        }

        var known = await store.GetCallerAsync(caller, ct);
        if (known is null)
        {
            LogRefused(logger, caller, "unknown-caller");
            return Problems.Unauthenticated("unknown-caller", "The relay does not know this caller.");
        }

        if (!keys.Verify(known, request.Method, RawTarget(context), timestamp, nonce, body, signature))
        {
            LogRefused(logger, caller, "bad-signature");
            return Problems.Unauthenticated("bad-signature", "The signature does not match the request.");
        }

        if (school is not null)
        {
            if (!known.IsSchool || !string.Equals(known.Id, school, StringComparison.Ordinal))
            {
                return Problems.Forbidden("not-school", "Only this school reads and answers its enrollment requests.");
            }

            account = known.Account;
        }
        else if (!string.Equals(known.Account, account, StringComparison.Ordinal))
        {
            return Problems.Forbidden("other-account", "The caller does not belong to this account.");
        }

        if (!await store.TryUseNonceAsync(caller, nonce, sent + RelayProtocol.MaxRequestAge, ct))
        {
            LogRefused(logger, caller, "replayed");
            return Problems.Unauthenticated("replayed", "This nonce was already used: the request is a replay.");
        }

        context.Features.Set(new RelayRequestFeature(known, body!, account!));
        request.Body = new MemoryStream(body!, writable: false);
        return null;
    }

    private static int BodyLimit(HttpRequest request) =>
        !HttpMethods.IsPost(request.Method) || request.Path.Value is not { } p ? MaxJsonBytes
        : p.EndsWith("/bundles", StringComparison.Ordinal) ? RelayProtocol.MaxBundleBytes
        : p.EndsWith("/answer", StringComparison.Ordinal) ? RelayProtocol.MaxEnrollmentAnswerBytes
        : MaxJsonBytes;

    private static async Task<(byte[]? Body, IResult? Problem)> ReadBodyAsync(HttpContext context, int limit, CancellationToken ct)
    {
        var request = context.Request;
        if (request.ContentLength > limit)
        {
            return (null, Problems.TooLarge("too-large", $"The body is larger than {limit} bytes."));
        }

        if (request.ContentLength == 0
            || context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: false })
        {
            return ([], null); // GET/HEAD without a body (the pull): nothing to read or buffer
        }

        var buffer = new MemoryStream();
        var chunk = System.Buffers.ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    return (null, Problems.TooLarge("too-large", $"The body is larger than {limit} bytes."));
                }

                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e)
        {
            return (null, Problems.Make(e.StatusCode is >= 400 and < 500 ? e.StatusCode : 400, RelayProtocol.BadInputProblemType,
                "Bad request body", "truncated", "The body could not be read completely: " + e.Message));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(chunk);
        }

        if (request.ContentLength is { } declared && declared != buffer.Length)
        {
            return (null, Problems.BadInput("truncated", "The body is shorter than its Content-Length."));
        }

        return (buffer.ToArray(), null);
    }

    private static string RawTarget(HttpContext context) =>
        context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw
            ? raw
            : context.Request.Path.ToUriComponent() + context.Request.QueryString.ToUriComponent();

    private static bool IsNonce(string nonce)
    {
        Span<byte> bytes = stackalloc byte[24];
        return nonce.Length <= 32 && Convert.TryFromBase64String(nonce, bytes, out var written) && written == 16;
    }

    internal static WipeAck? TryReadWipeAck(byte[] body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, RelayJson.Default.WipeAck);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused a request of {Caller}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string caller, string reason);
}
