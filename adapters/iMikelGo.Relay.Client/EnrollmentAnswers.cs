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
/// {"kind":"imikelgo.enroll-answer","format":1,"approved":true,"account":…,"device":…,"certificate":b64 DER,"roster":b64 CMS,"peers":{device:b64 HPKE key}}
/// {"kind":"imikelgo.enroll-answer","format":1,"approved":false,"code":"WrongPassword","message":…}
/// </code>
/// <c>peers</c> is optional (absent = none known): the current HPKE keys of the account's other enrolled devices, so the
/// new device can seal its first events to them before its first pull (docs/device.md, key bootstrap).
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

    /// <summary>
    /// School side: like <see cref="Decide(EnrollmentAuthority, PendingEnrollment, out EnrollmentError)"/>, and on approval adds
    /// <paramref name="peersOf"/>(account): the HPKE keys of the account's other enrolled devices, by device id.
    /// </summary>
    public static EnrollmentAnswerRequest Decide(EnrollmentAuthority authority, PendingEnrollment pending,
        Func<string, IReadOnlyDictionary<string, RecipientPublicKey>> peersOf, out EnrollmentError error)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(pending);
        ArgumentNullException.ThrowIfNull(peersOf);
        if (authority.TryApprove(pending.Request, out var approval, out error))
        {
            return ForApproval(approval, peersOf(approval.AccountId));
        }

        return new EnrollmentAnswerRequest(false, Refusal(error), null, null);
    }

    /// <summary>The relay answer for an approval: the encoded approval, the account, and the device's signing key from its certificate.</summary>
    public static EnrollmentAnswerRequest ForApproval(EnrollmentApproval approval) => ForApproval(approval, null);

    /// <summary>The relay answer for an approval that also lists the account's other devices' HPKE keys (<paramref name="peers"/>, by device id).</summary>
    public static EnrollmentAnswerRequest ForApproval(EnrollmentApproval approval, IReadOnlyDictionary<string, RecipientPublicKey>? peers)
    {
        ArgumentNullException.ThrowIfNull(approval);
        using var cert = X509CertificateLoader.LoadCertificate(approval.DeviceCertificate);
        using var key = cert.GetECDsaPublicKey() ?? throw new ArgumentException("The device certificate has no ECDSA key.", nameof(approval));
        var registration = new DeviceRegistration(approval.DeviceId, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()));
        return new EnrollmentAnswerRequest(true, Approval(approval, peers), approval.AccountId, registration);
    }

    /// <summary>Encodes an approval.</summary>
    public static byte[] Approval(EnrollmentApproval approval) => Approval(approval, null);

    /// <summary>Encodes an approval with the account's other devices' HPKE keys (omitted when null or empty).</summary>
    public static byte[] Approval(EnrollmentApproval approval, IReadOnlyDictionary<string, RecipientPublicKey>? peers)
    {
        ArgumentNullException.ThrowIfNull(approval);
        return Write(w =>
        {
            w.WriteBoolean("approved", true);
            w.WriteString("account", approval.AccountId);
            w.WriteString("device", approval.DeviceId);
            w.WriteBase64String("certificate", approval.DeviceCertificate);
            w.WriteBase64String("roster", approval.SignedRoster);
            if (peers is { Count: > 0 })
            {
                w.WriteStartObject("peers");
                foreach (var (device, key) in peers.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (string.Equals(device, approval.DeviceId, StringComparison.Ordinal))
                    {
                        continue; // never the new device itself
                    }

                    w.WriteBase64String(device, key.Encoded.Span);
                }

                w.WriteEndObject();
            }
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
        => TryRead(status, out approval, out _, out refusal);

    /// <summary>
    /// Device side: like <see cref="TryRead(EnrollmentStatus, out EnrollmentApproval?, out EnrollmentError)"/>, and on approval
    /// also the account's other devices' HPKE keys by device id (<paramref name="peers"/>; empty when the school sent none).
    /// An invalid peer key makes the whole answer malformed.
    /// </summary>
    public static bool TryRead(EnrollmentStatus status, [NotNullWhen(true)] out EnrollmentApproval? approval,
        out IReadOnlyDictionary<string, RecipientPublicKey> peers, out EnrollmentError refusal)
    {
        ArgumentNullException.ThrowIfNull(status);
        approval = null;
        peers = new Dictionary<string, RecipientPublicKey>();
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
                var read = new EnrollmentApproval(o.GetProperty("account").GetString()!, o.GetProperty("device").GetString()!,
                    o.GetProperty("certificate").GetBytesFromBase64(), o.GetProperty("roster").GetBytesFromBase64());
                var keys = new Dictionary<string, RecipientPublicKey>(StringComparer.Ordinal);
                if (o.TryGetProperty("peers", out var peerList))
                {
                    foreach (var peer in peerList.EnumerateObject())
                    {
                        if (!RecipientPublicKey.TryParse(peer.Value.GetBytesFromBase64(), out var key, out var keyError))
                        {
                            throw new FormatException($"peer {peer.Name}: {keyError.Message}");
                        }

                        keys[peer.Name] = key;
                    }
                }

                approval = read;
                peers = keys;
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
