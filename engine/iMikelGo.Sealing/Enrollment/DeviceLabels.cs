using System.Globalization;
using System.Text;

namespace IMikelGo.Sealing;

/// <summary>
/// The device label sealed with the password in an enrollment request (format 2):
/// <c>label length in bytes (1 byte) ‖ label (UTF-8, NFC, trimmed) ‖ password (UTF-8)</c>. Length 0 = no label.
/// </summary>
internal static class DeviceLabels
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The label as sent (trimmed, NFC; empty = none) and why it cannot be sent, or null.</summary>
    public static string? Normalize(string? label, out string normalized)
    {
        normalized = string.Empty;
        if (label is null)
        {
            return null;
        }

        // Checked before normalising: String.Normalize throws on lone surrogates.
        if (!IsValidText(label))
        {
            return "The device label is not valid Unicode text.";
        }

        normalized = label.Trim().Normalize(NormalizationForm.FormC);
        return Problem(normalized);
    }

    /// <summary>Why <paramref name="label"/> (already trimmed and normalised; empty = none) cannot be sent, or null.</summary>
    public static string? Problem(string label)
    {
        if (label.Length > DeviceEnrollment.MaxLabelLength)
        {
            return $"The device label is longer than {DeviceEnrollment.MaxLabelLength} characters.";
        }

        if (label.Any(char.IsControl))
        {
            return "The device label contains a control character.";
        }

        // Invisible and direction-changing characters (format, line/paragraph separators, private use, unassigned and
        // noncharacters) would let one label pose as another in the school's device list.
        if (label.Any(c => char.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned))
        {
            return "The device label contains an invisible, formatting or unassigned character.";
        }

        if (!IsValidText(label))
        {
            return "The device label is not valid Unicode text.";
        }

        return label != label.Trim() || !label.IsNormalized(NormalizationForm.FormC) ? "The device label is not trimmed and NFC-normalised." : null;
    }

    // Lone surrogates cannot be encoded as UTF-8 and would not survive the trip.
    private static bool IsValidText(string text)
    {
        try
        {
            _ = StrictUtf8.GetByteCount(text);
            return true;
        }
        catch (EncoderFallbackException)
        {
            return false;
        }
    }

    /// <summary>The plaintext to seal (the caller zeroes it).</summary>
    public static byte[] Secret(string label, string password)
    {
        var labelBytes = StrictUtf8.GetByteCount(label);
        var secret = new byte[1 + labelBytes + Encoding.UTF8.GetByteCount(password)];
        secret[0] = checked((byte)labelBytes);
        StrictUtf8.GetBytes(label, secret.AsSpan(1));
        Encoding.UTF8.GetBytes(password, secret.AsSpan(1 + labelBytes));
        return secret;
    }

    /// <summary>Splits an opened secret into label (null when none) and password, refusing a label no device would send.</summary>
    public static bool TrySplit(byte[] secret, out string? label, out Span<byte> password, out string problem)
    {
        label = null;
        password = default;
        if (secret.Length == 0 || secret[0] > secret.Length - 1)
        {
            problem = "The sealed label and password are malformed (the label length exceeds the secret).";
            return false;
        }

        string text;
        try
        {
            text = StrictUtf8.GetString(secret, 1, secret[0]);
        }
        catch (DecoderFallbackException)
        {
            problem = "The device label is not valid UTF-8.";
            return false;
        }

        if (Problem(text) is { } labelProblem)
        {
            problem = labelProblem;
            return false;
        }

        label = text.Length == 0 ? null : text;
        password = secret.AsSpan(1 + secret[0]);
        problem = string.Empty;
        return true;
    }
}
