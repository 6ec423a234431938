using System.Text;

namespace IMikelGo.Engine.Canonical;

internal static class CanonicalText
{
    public static string Normalize(string value)
    {
        if (!value.IsNormalized(NormalizationForm.FormC))
        {
            // IsNormalized throws on lone surrogates, which is what we want: they have no UTF-8 form.
            return value.Normalize(NormalizationForm.FormC);
        }

        return value;
    }
}

/// <summary>Input that is not in the canonical wire format; the message names what and where.</summary>
public sealed class WireFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public WireFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public WireFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public WireFormatException()
    {
    }
}
