using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IMikelGo.Relay;

/// <summary>
/// The school's public certificates (<see cref="SchoolCertificates"/>) at <c>/v1/schools/{school}/certificates</c>: the
/// school's enrollment caller publishes them (signed; request authentication admits only the school itself on a
/// <c>{school}</c> route), devices fetch them without an identity before they enroll. Nothing here is secret and the
/// relay cannot forge them usefully: a device accepts the root only when it matches the fingerprint in its enrollment
/// code. Kept in the mailbox store as a private mailbox per school (latest publication wins), so every store
/// implementation serves them without a new port.
/// </summary>
internal static class SchoolCertificatesEndpoint
{
    /// <summary>Maps the publish (signed) and fetch (anonymous) routes.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/schools/{school}/certificates", (string school, HttpContext context) =>
                PublishAsync(school, context))
            .WithName("PublishSchoolCertificates")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        app.MapGet("/v1/schools/{school}/certificates", (string school, HttpContext context) =>
                FetchAsync(school, context))
            .WithName("SchoolCertificates")
            .WithMetadata(new AnonymousRelayEndpointAttribute(0))
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
    }

    private static async Task<IResult> PublishAsync(string school, HttpContext context)
    {
        var auth = RelayEndpoints.Auth(context);
        var ct = context.RequestAborted;
        if (!TryRead(auth.Body, out var root, out var enrollment, out var problem))
        {
            return Problems.BadInput("malformed-certificates", problem);
        }

        using (root)
        using (enrollment)
        {
            var options = (RelayOptions)context.RequestServices.GetService(typeof(RelayOptions))!;
            if (!DeviceCertificates.TryVerifyEnrollmentCertificate(enrollment, root, school, options.Time.GetUtcNow(), out _, out var error))
            {
                return Problems.BadInput("certificates-mismatch", $"The enrollment certificate does not verify against the root for school '{school}': {error.Message}");
            }
        }

        var store = Store(context);
        var mailbox = SchoolCertificates.Mailbox(school);
        var head = await store.HeadAsync(mailbox, ct);
        if (head > 0 && (await store.ReadAsync(mailbox, head - 1, 1, ct)) is [{ } latest] && latest.Data.AsSpan().SequenceEqual(auth.Body))
        {
            return Results.NoContent(); // unchanged: a school republishing on every run adds nothing
        }

        await store.AppendAsync(mailbox, Guid.NewGuid(), school, auth.Body, ct);
        return Results.NoContent();
    }

    private static async Task<IResult> FetchAsync(string school, HttpContext context)
    {
        var ct = context.RequestAborted;
        var store = Store(context);
        var mailbox = SchoolCertificates.Mailbox(school);
        var head = Identifiers.IsValid(school) ? await store.HeadAsync(mailbox, ct) : 0;
        if (head == 0 || (await store.ReadAsync(mailbox, head - 1, 1, ct)) is not [{ } latest])
        {
            return Problems.Make(StatusCodes.Status404NotFound, RelayProtocol.BadInputProblemType, "No school certificates", "no-certificates",
                "This school has not published its certificates at the relay (its connector has not run yet).");
        }

        return Results.Bytes(latest.Data, "application/json");
    }

    private static IMailboxStore Store(HttpContext context) => (IMailboxStore)context.RequestServices.GetService(typeof(IMailboxStore))!;

    private static bool TryRead(byte[] body, out X509Certificate2 root, out X509Certificate2 enrollment, out string problem)
    {
        root = null!;
        enrollment = null!;
        problem = "Expected {\"root\": base64 DER, \"enrollment\": base64 DER}.";
        try
        {
            using var doc = JsonDocument.Parse(body);
            var o = doc.RootElement;
            if (o.ValueKind != JsonValueKind.Object || !o.TryGetProperty("root", out var r) || !o.TryGetProperty("enrollment", out var e)
                || r.ValueKind != JsonValueKind.String || e.ValueKind != JsonValueKind.String)
            {
                return false;
            }

            var rootDer = r.GetBytesFromBase64();
            var enrollmentDer = e.GetBytesFromBase64();
            if (rootDer.Length is 0 or > SchoolCertificates.MaxCertificateBytes || enrollmentDer.Length is 0 or > SchoolCertificates.MaxCertificateBytes)
            {
                problem = $"Each certificate has 1 to {SchoolCertificates.MaxCertificateBytes} bytes of DER.";
                return false;
            }

            root = X509CertificateLoader.LoadCertificate(rootDer);
            try
            {
                enrollment = X509CertificateLoader.LoadCertificate(enrollmentDer);
            }
            catch
            {
                root.Dispose();
                throw;
            }

            return true;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or CryptographicException)
        {
            problem = "The certificates are not base64 DER X.509: " + ex.Message;
            return false;
        }
    }
}
