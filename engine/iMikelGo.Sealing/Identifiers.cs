namespace IMikelGo.Sealing;

/// <summary>Rules for account, replica, device and school identifiers used in bundles, certificates and rosters.</summary>
public static class Identifiers
{
    /// <summary>The maximum identifier length in characters (and bytes; identifiers are ASCII).</summary>
    public const int MaxLength = 64;

    /// <summary>True when <paramref name="id"/> has 1..64 characters from [A-Za-z0-9._-].</summary>
    /// <param name="id">The identifier.</param>
    /// <returns>Whether the identifier is valid.</returns>
    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxLength)
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    internal static void Require(string? id, string paramName)
    {
        if (!IsValid(id))
        {
            throw new ArgumentException($"'{paramName}' must be 1..{MaxLength} characters from [A-Za-z0-9._-].", paramName);
        }
    }

    /// <summary>A new random identifier: 26 lowercase Crockford base32 characters (128 bits).</summary>
    /// <returns>The identifier.</returns>
    public static string NewId()
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        const string alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
        var chars = new char[26];
        var acc = new System.Numerics.BigInteger(bytes, isUnsigned: true, isBigEndian: true);
        for (var i = 25; i >= 0; i--)
        {
            chars[i] = alphabet[(int)(acc & 31)];
            acc >>= 5;
        }

        return new string(chars);
    }
}
