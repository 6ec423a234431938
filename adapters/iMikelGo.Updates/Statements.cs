using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace IMikelGo.Updates;

/// <summary>Vendor key rotation statement number <c>Index</c>: signed by the previous key (and cross-signed by the next key),
/// it moves the pin from <c>Previous</c> to <c>Next</c>. Manifests signed by the previous key are refused afterwards.</summary>
internal sealed record KeyRotation(int Index, string Previous, string Next, byte[] NextCertificate, DateTimeOffset IssuedAt)
{
    public const string Kind = "imikelgo.update.rotation";

    public byte[] ToBytes() => Json.Write(w =>
    {
        w.WriteString("kind", Kind);
        w.WriteNumber("format", 1);
        w.WriteNumber("index", Index);
        w.WriteString("previous", Previous);
        w.WriteString("next", Next);
        w.WriteString("nextCertificate", Convert.ToBase64String(NextCertificate));
        w.WriteString("issuedAt", Time.Format(IssuedAt));
    });

    public static bool TryParse(byte[] bytes, [NotNullWhen(true)] out KeyRotation? rotation, out UpdateError error)
    {
        rotation = null;
        if (!Json.TryRead(bytes, Kind, "rotation", r => new KeyRotation(r.GetProperty("index").GetInt32(), r.GetProperty("previous").GetString()!,
                    r.GetProperty("next").GetString()!, Convert.FromBase64String(r.GetProperty("nextCertificate").GetString()!),
                    Time.Parse(r.GetProperty("issuedAt").GetString()!)), s => s.ToBytes(), out var parsed, out error))
        {
            return false;
        }

        using var cert = X509CertificateLoader.LoadCertificate(parsed.NextCertificate);
        if (parsed.Index < 1 || VendorSignatures.FingerprintOf(cert) != parsed.Next || parsed.Next == parsed.Previous)
        {
            error = new UpdateError(UpdateErrorCode.Malformed, "rotation: index must be >= 1 and 'next' must be the SHA-256 of nextCertificate and differ from 'previous'.");
            return false;
        }

        rotation = parsed;
        return true;
    }
}

/// <summary>An intended rollback: the vendor withdraws the listed versions and allows devices running one of them to install
/// exactly the manifest with <c>ManifestSequence</c> (whose version is <c>Target</c>), even though it is older.</summary>
internal sealed record DowngradeStatement(string Channel, IReadOnlyList<string> Withdrawn, string Target, long ManifestSequence,
    DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt)
{
    public const string Kind = "imikelgo.update.downgrade";

    public byte[] ToBytes() => Json.Write(w =>
    {
        w.WriteString("kind", Kind);
        w.WriteNumber("format", 1);
        w.WriteString("channel", Channel);
        w.WriteStartArray("withdrawn");
        foreach (var v in Withdrawn)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
        w.WriteString("target", Target);
        w.WriteNumber("manifestSequence", ManifestSequence);
        w.WriteString("issuedAt", Time.Format(IssuedAt));
        w.WriteString("expiresAt", Time.Format(ExpiresAt));
    });

    public static bool TryParse(byte[] bytes, [NotNullWhen(true)] out DowngradeStatement? statement, out UpdateError error)
        => Json.TryRead(bytes, Kind, "downgrade", r => new DowngradeStatement(r.GetProperty("channel").GetString()!,
                [.. r.GetProperty("withdrawn").EnumerateArray().Select(e => SemanticVersion.Parse(e.GetString()!).Text)],
                SemanticVersion.Parse(r.GetProperty("target").GetString()!).Text, r.GetProperty("manifestSequence").GetInt64(),
                Time.Parse(r.GetProperty("issuedAt").GetString()!), Time.Parse(r.GetProperty("expiresAt").GetString()!)),
            s => s.ToBytes(), out statement, out error);
}

internal static class Json
{
    public static byte[] Write(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return ms.ToArray();
    }

    public static bool TryRead<T>(byte[] bytes, string kind, string what, Func<JsonElement, T> read, Func<T, byte[]> write,
        [NotNullWhen(true)] out T? value, out UpdateError error)
        where T : class
    {
        value = null;
        try
        {
            if (bytes.Length is 0 or > 256 * 1024)
            {
                error = new UpdateError(UpdateErrorCode.Malformed, $"{what}: size out of range.");
                return false;
            }

            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.GetProperty("kind").GetString() != kind || doc.RootElement.GetProperty("format").GetInt32() != 1)
            {
                error = new UpdateError(UpdateErrorCode.Malformed, $"{what}: not a {kind} format 1.");
                return false;
            }

            var v = read(doc.RootElement);
            if (!bytes.AsSpan().SequenceEqual(write(v)))
            {
                error = new UpdateError(UpdateErrorCode.Malformed, $"{what}: not canonical.");
                return false;
            }

            value = v;
            error = UpdateError.None;
            return true;
        }
#pragma warning disable CA1031 // fail closed
        catch (Exception e)
#pragma warning restore CA1031
        {
            error = new UpdateError(UpdateErrorCode.Malformed, $"{what}: {e.GetType().Name}: {e.Message}");
            return false;
        }
    }
}
