using IMikelGo.Engine.Relay;
using Microsoft.AspNetCore.Http;

namespace IMikelGo.Relay;

/// <summary>Every refusal of the relay as RFC 9457 problem details with a machine-readable <c>reason</c>.</summary>
internal static class Problems
{
    public static IResult BadInput(string reason, string detail) =>
        Make(StatusCodes.Status400BadRequest, RelayProtocol.BadInputProblemType, "Bad input", reason, detail);

    public static IResult TooLarge(string reason, string detail) =>
        Make(StatusCodes.Status413PayloadTooLarge, RelayProtocol.BadInputProblemType, "Content too large", reason, detail);

    public static IResult Unauthenticated(string reason, string detail) =>
        Make(StatusCodes.Status401Unauthorized, RelayProtocol.UnauthenticatedProblemType, "Unauthenticated", reason, detail);

    public static IResult Forbidden(string reason, string detail) =>
        Make(StatusCodes.Status403Forbidden, RelayProtocol.ForbiddenProblemType, "Forbidden", reason, detail);

    public static IResult Wipe(string detail) =>
        Make(StatusCodes.Status403Forbidden, RelayProtocol.WipeProblemType, "Device revoked: wipe now", "revoked", detail);

    public static IResult Quota(string detail) =>
        Make(StatusCodes.Status413PayloadTooLarge, RelayProtocol.QuotaProblemType, "Mailbox quota exceeded", "quota", detail);

    public static IResult RateLimited(string detail) =>
        Make(StatusCodes.Status429TooManyRequests, RelayProtocol.RateLimitedProblemType, "Too many requests", "rate-limited", detail);

    public static IResult Make(int status, string type, string title, string reason, string detail) =>
        Results.Problem(detail: detail, statusCode: status, title: title, type: type,
            extensions: new Dictionary<string, object?> { ["reason"] = reason });

    public static Task Write(HttpContext context, IResult problem)
    {
        Telemetry(context)?.Rejected.Add(1, new KeyValuePair<string, object?>("reason", ReasonOf(problem)));
        return problem.ExecuteAsync(context);
    }

    private static RelayTelemetry? Telemetry(HttpContext context) =>
        context.RequestServices.GetService(typeof(RelayTelemetry)) as RelayTelemetry;

    private static object? ReasonOf(IResult problem) =>
        problem is Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult p && p.ProblemDetails.Extensions.TryGetValue("reason", out var r) ? r : null;
}
