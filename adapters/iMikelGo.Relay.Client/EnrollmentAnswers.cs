using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;

namespace IMikelGo.Relay.Client;

/// <summary>
/// The bytes a school sends back through the relay for an enrollment request, and how the device reads them. An
/// approval carries the device certificate and the signed roster (both signed by the school root the device pinned
/// from the QR code, so the relay cannot forge one); a refusal carries the reason code and message.
/// <code>
/// {"kind":"imikelgo.enroll-answer","format":1,"approved":true,"account":…,"device":…,"certificate":b64 DER,"roster":b64 CMS}
/// {"kind":"imikelgo.enroll-answer","format":1,"approved":false,"code":"WrongPassword","message":…}
/// </code>
/// </summary>
public static class EnrollmentAnswers
{
    private const string Kind = "imikelgo.enroll-answer";

    /// <summary>School side: decides a pulled request with <paramref name="authority"/> and builds the relay answer (with the device's registration on approval).</summary>
    public static EnrollmentAnswerRequest Decide(EnrollmentAuthority authority, PendingEnrollment pending, out EnrollmentError error)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(pending);
        if (authority.TryApprove(pending.Request, out var approval, out error))
        {
            return ForApproval(approval);
        }

        return new EnrollmentAnswerRequest(false, Refusal(error), null, null);
    }

    /// <summary>The relay answer for an approval: the encoded approval, the account, and the device's signing key from its certificate.</summary>
    public static EnrollmentAnswerRequest ForApproval(EnrollmentApproval approval)
    {
        ArgumentNullException.ThrowIfNull(approval);
        using var cert = X509CertificateLoader.LoadCertificate(approval.DeviceCertificate);
        using var key = cert.GetECDsaPublicKey() ?? throw new ArgumentException("The device certificate has no ECDSA key.", nameof(approval));
        var registration = new DeviceRegistration(approval.DeviceId, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()));
        return new EnrollmentAnswerRequest(true, Approval(approval), approval.AccountId, registration);
    }

    /// <summary>Encodes an approval.</summary>
    public static byte[] Approval(EnrollmentApproval approval)
    {
        ArgumentNullException.ThrowIfNull(approval);
        return Write(w =>
        {
            w.WriteBoolean("approved", true);
            w.WriteString("account", approval.AccountId);
            w.WriteString("device", approval.DeviceId);
            w.WriteBase64String("certificate", approval.DeviceCertificate);
            w.WriteBase64String("roster", approval.SignedRoster);
        });
    }

    /// <summary>Encodes a refusal.</summary>
    public static byte[] Refusal(EnrollmentError error) => Write(w =>
    {
        w.WriteBoolean("approved", false);
        w.WriteString("code", error.Code.ToString());
        w.WriteString("message", error.Message);
    });

    /// <summary>
    /// Device side: reads an answered <see cref="EnrollmentStatus"/>. True with <paramref name="approval"/> (still to be
    /// checked with <c>DeviceEnrollment.TryComplete</c>) or false with the school's <paramref name="refusal"/>
    /// (<see cref="EnrollmentErrorCode.MalformedRequest"/> when the answer is unreadable or still pending).
    /// </summary>
    public static bool TryRead(EnrollmentStatus status, [NotNullWhen(true)] out EnrollmentApproval? approval, out EnrollmentError refusal)
    {
        ArgumentNullException.ThrowIfNull(status);
        approval = null;
        refusal = default;
        if (status.Answer is null || status.Status == EnrollmentStatus.Pending)
        {
            refusal = new EnrollmentError(EnrollmentErrorCode.MalformedRequest, "The school has not answered yet.");
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(status.Answer);
            var o = doc.RootElement;
            if (o.GetProperty("kind").GetString() != Kind || o.GetProperty("format").GetInt32() != 1)
            {
                throw new FormatException("not an enrollment answer");
            }

            var approved = o.GetProperty("approved").GetBoolean();
            if (approved != (status.Status == EnrollmentStatus.Approved))
            {
                throw new FormatException("the relay's status and the school's answer disagree");
            }

            if (approved)
            {
                approval = new EnrollmentApproval(o.GetProperty("account").GetString()!, o.GetProperty("device").GetString()!,
                    o.GetProperty("certificate").GetBytesFromBase64(), o.GetProperty("roster").GetBytesFromBase64());
                return true;
            }

            var code = Enum.TryParse<EnrollmentErrorCode>(o.GetProperty("code").GetString(), out var c) ? c : EnrollmentErrorCode.MalformedRequest;
            refusal = new EnrollmentError(code, o.GetProperty("message").GetString() ?? string.Empty);
            return false;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or NullReferenceException)
        {
            refusal = new EnrollmentError(EnrollmentErrorCode.MalformedRequest, "The enrollment answer is malformed: " + e.Message);
            return false;
        }
    }

    private static byte[] Write(Action<Utf8JsonWriter> fields)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("kind", Kind);
            w.WriteNumber("format", 1);
            fields(w);
            w.WriteEndObject();
        }

        return ms.ToArray();
    }
}
