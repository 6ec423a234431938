using Microsoft.AspNetCore.Http;
using Wolverine.Http;

namespace IMikelGo.Relay;

/// <summary>
/// The relay's JSON endpoints on Wolverine.Http. The body is parsed by <see cref="RelayService"/> from the exact
/// bytes the caller signed (kept by <see cref="RequestAuthentication"/>), so malformed JSON gets the relay's own
/// problem details. The binary push is a minimal API (see <see cref="RelayHost"/>).
/// </summary>
public static class RelayEndpoints
{
    /// <summary>Pull a page after a cursor, optionally long-polling.</summary>
    [WolverineGet("/v1/accounts/{account}/bundles", OperationId = "Pull")]
    public static Task<IResult> Pull(string account, HttpContext context) =>
        Service(context).PullAsync(account, context.Request.Query, context.RequestAborted);

    /// <summary>Acknowledge receipt up to a position.</summary>
    [WolverinePost("/v1/accounts/{account}/acks", OperationId = "Ack")]
    public static Task<IResult> Ack(string account, HttpContext context) =>
        Service(context).AckAsync(Auth(context), account, context.RequestAborted);

    /// <summary>Register a device's signing key (the account's school only).</summary>
    [WolverinePost("/v1/accounts/{account}/devices", OperationId = "RegisterDevice")]
    public static Task<IResult> RegisterDevice(string account, HttpContext context) =>
        Service(context).RegisterDeviceAsync(Auth(context), account, context.RequestAborted);

    /// <summary>Revoke a device or the whole account (the account's school only).</summary>
    [WolverinePost("/v1/accounts/{account}/revocations", OperationId = "Revoke")]
    public static Task<IResult> Revoke(string account, HttpContext context) =>
        Service(context).RevokeAsync(Auth(context), account, context.RequestAborted);

    /// <summary>A revoked device confirms its wipe.</summary>
    [WolverinePost("/v1/wipe-acks", OperationId = "WipeAck")]
    public static Task<IResult> WipeAck(HttpContext context) =>
        Service(context).WipeAckAsync(Auth(context), context.RequestAborted);

    /// <summary>The school pulls its pending enrollment requests (the school only).</summary>
    [WolverineGet("/v1/schools/{school}/enrollments", OperationId = "PullEnrollments")]
    public static Task<IResult> PullEnrollments(string school, HttpContext context) =>
        Enrollments(context).PullAsync(Auth(context), context.Request.Query, context.RequestAborted);

    /// <summary>The school answers an enrollment request, registering the device on approval (the school only).</summary>
    [WolverinePost("/v1/schools/{school}/enrollments/{id}/answer", OperationId = "AnswerEnrollment")]
    public static Task<IResult> AnswerEnrollment(string school, string id, HttpContext context) =>
        Enrollments(context).AnswerAsync(Auth(context), id, context.RequestAborted);

    internal static EnrollmentRelay Enrollments(HttpContext context) =>
        (EnrollmentRelay)context.RequestServices.GetService(typeof(EnrollmentRelay))!;

    internal static RelayService Service(HttpContext context) =>
        (RelayService)context.RequestServices.GetService(typeof(RelayService))!;

    internal static RelayRequestFeature Auth(HttpContext context) =>
        context.Features.Get<RelayRequestFeature>() ?? throw new InvalidOperationException("relay request reached an endpoint unauthenticated");
}
