using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using QRCoder;

namespace IMikelGo.Sealing;

/// <summary>
/// The enrollment QR payload:
/// <c>imikelgo://enroll?relay=&lt;percent-encoded https URL&gt;&amp;school=&lt;id&gt;&amp;root=&lt;sha256 hex&gt;&amp;license=&lt;key&gt;</c>,
/// optionally followed by <c>&amp;relayPin=&lt;sha256 hex of the relay's TLS certificate&gt;</c> (the device pins the relay with it).
/// </summary>
public sealed record EnrollmentUri
{
    private const string Prefix = "imikelgo://enroll?";
    private const int MaxLength = 2048;

    /// <summary>Creates a payload; arguments are validated.</summary>
    /// <param name="relay">The relay's https base URL.</param>
    /// <param name="schoolId">The school id.</param>
    /// <param name="rootFingerprint">SHA-256 hex of the school root certificate (pinned by the device).</param>
    /// <param name="license">The teacher's license key.</param>
    /// <param name="relayPin">Optional SHA-256 hex of the relay's TLS certificate (pinned by the device).</param>
    public EnrollmentUri(Uri relay, string schoolId, string rootFingerprint, LicenseKey license, string? relayPin = null)
    {
        ArgumentNullException.ThrowIfNull(relay);
        if (!IsValidRelay(relay, out var why))
        {
            throw new ArgumentException(why, nameof(relay));
        }

        Identifiers.Require(schoolId, nameof(schoolId));
        if (!IsFingerprint(rootFingerprint))
        {
            throw new ArgumentException("The root fingerprint must be 64 hex digits.", nameof(rootFingerprint));
        }

        if (license.Value is null)
        {
            throw new ArgumentException("The license key is empty.", nameof(license));
        }

        if (relayPin is not null && !IsFingerprint(relayPin))
        {
            throw new ArgumentException("The relay certificate fingerprint must be 64 hex digits.", nameof(relayPin));
        }

        Relay = relay;
        SchoolId = schoolId;
        RelayPin = relayPin?.ToLowerInvariant();
        RootFingerprint = rootFingerprint.ToLowerInvariant();
        License = license;
    }

    /// <summary>The relay URL.</summary>
    public Uri Relay { get; }

    /// <summary>The school id.</summary>
    public string SchoolId { get; }

    /// <summary>The pinned root fingerprint (lowercase hex).</summary>
    public string RootFingerprint { get; }

    /// <summary>The license key.</summary>
    public LicenseKey License { get; }

    /// <summary>The relay's TLS certificate fingerprint (lowercase hex), when the code carries one.</summary>
    public string? RelayPin { get; }

    /// <inheritdoc />
    public override string ToString()
        => string.Create(CultureInfo.InvariantCulture,
            $"{Prefix}relay={Uri.EscapeDataString(Relay.AbsoluteUri)}&school={SchoolId}&root={RootFingerprint}&license={License.Value}{(RelayPin is null ? "" : "&relayPin=" + RelayPin)}");

    /// <summary>Parses a scanned payload strictly: the four required parameters and the optional <c>relayPin</c>, each at most once, each valid.</summary>
    /// <param name="text">The scanned text.</param>
    /// <param name="uri">The payload when valid.</param>
    /// <param name="error">What is wrong.</param>
    /// <returns>True when valid.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out EnrollmentUri? uri, out string error)
    {
        uri = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "The enrollment code is empty.";
            return false;
        }

        if (text.Length > MaxLength)
        {
            error = $"The enrollment code is longer than {MaxLength} characters.";
            return false;
        }

        if (!text.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            error = "Not an iMikelGo enrollment code (expected it to start with imikelgo://enroll?).";
            return false;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in text[Prefix.Length..].Split('&'))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                error = $"Enrollment code parameter '{pair}' is not name=value.";
                return false;
            }

            var name = pair[..eq];
            if (name is not ("relay" or "school" or "root" or "license" or "relayPin"))
            {
                error = $"Enrollment code has an unknown parameter '{name}'.";
                return false;
            }

            if (!values.TryAdd(name, Uri.UnescapeDataString(pair[(eq + 1)..])))
            {
                error = $"Enrollment code has the parameter '{name}' more than once.";
                return false;
            }
        }

        foreach (var required in new[] { "relay", "school", "root", "license" })
        {
            if (!values.ContainsKey(required))
            {
                error = $"Enrollment code is missing the '{required}' parameter.";
                return false;
            }
        }

        if (!Uri.TryCreate(values["relay"], UriKind.Absolute, out var relay))
        {
            error = "Enrollment code relay is not an absolute URL.";
            return false;
        }

        if (!IsValidRelay(relay, out var relayError))
        {
            error = "Enrollment code relay: " + relayError;
            return false;
        }

        if (!Identifiers.IsValid(values["school"]))
        {
            error = "Enrollment code school id must be 1..64 characters from [A-Za-z0-9._-].";
            return false;
        }

        if (!IsFingerprint(values["root"]))
        {
            error = "Enrollment code root fingerprint must be 64 hex digits (SHA-256).";
            return false;
        }

        if (!LicenseKey.TryParse(values["license"], out var license, out var licenseError))
        {
            error = "Enrollment code license key: " + licenseError;
            return false;
        }

        var relayPin = values.GetValueOrDefault("relayPin");
        if (relayPin is not null && !IsFingerprint(relayPin))
        {
            error = "Enrollment code relay certificate fingerprint (relayPin) must be 64 hex digits (SHA-256).";
            return false;
        }

        uri = new EnrollmentUri(relay, values["school"], values["root"], license, relayPin);
        error = string.Empty;
        return true;
    }

    private static bool IsValidRelay(Uri relay, out string error)
    {
        error = relay.Scheme != Uri.UriSchemeHttps ? "the relay URL must use https."
            : !string.IsNullOrEmpty(relay.UserInfo) ? "the relay URL must not contain user information."
            : !string.IsNullOrEmpty(relay.Query) || !string.IsNullOrEmpty(relay.Fragment) ? "the relay URL must not have a query or fragment."
            : string.Empty;
        return error.Length == 0;
    }

    private static bool IsFingerprint(string? s) => s is { Length: 64 } && s.All(char.IsAsciiHexDigit);
}

/// <summary>Renders an <see cref="EnrollmentUri"/> as a QR code (QRCoder, error correction level M).</summary>
public static class EnrollmentQrCode
{
    /// <summary>A PNG image.</summary>
    /// <param name="uri">The payload.</param>
    /// <param name="pixelsPerModule">Pixels per QR module.</param>
    /// <returns>PNG bytes.</returns>
    public static byte[] ToPng(EnrollmentUri uri, int pixelsPerModule = 8)
    {
        using var data = Create(uri);
        using var png = new PngByteQRCode(data);
        return png.GetGraphic(pixelsPerModule);
    }

    /// <summary>An SVG document.</summary>
    /// <param name="uri">The payload.</param>
    /// <param name="pixelsPerModule">Units per QR module.</param>
    /// <returns>SVG text.</returns>
    public static string ToSvg(EnrollmentUri uri, int pixelsPerModule = 8)
    {
        using var data = Create(uri);
        using var svg = new SvgQRCode(data);
        return svg.GetGraphic(pixelsPerModule);
    }

    /// <summary>Terminal text using Unicode half blocks (two modules per character row), with a quiet zone.</summary>
    /// <param name="uri">The payload.</param>
    /// <returns>Lines of text.</returns>
    public static string ToTerminalText(EnrollmentUri uri)
    {
        using var data = Create(uri);
        using var ascii = new AsciiQRCode(data);
        return ascii.GetGraphicSmall(drawQuietZones: true, invert: false, endOfLine: "\n");
    }

    internal static QRCodeData Create(EnrollmentUri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        using var generator = new QRCodeGenerator();
        return generator.CreateQrCode(uri.ToString(), QRCodeGenerator.ECCLevel.M);
    }
}
