using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace IMikelGo.Sealing;

/// <summary>
/// A license key (Kennung): 15 Crockford base32 data characters plus one check character, shown as
/// <c>XXXX-XXXX-XXXX-XXXX</c>. Parsing is case-insensitive, ignores hyphens and spaces, reads O as 0 and I/L as 1.
/// The check character is Σ αⁱ·vᵢ over GF(32) (x⁵+x²+1, α = x), which detects every single-character error and every
/// transposition of two adjacent characters; such mistakes are reported as typos.
/// </summary>
public readonly record struct LicenseKey
{
    /// <summary>Crockford's base32 alphabet (no I, L, O, U).</summary>
    public const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    private const int DataLength = 15;
    private const int TotalLength = DataLength + 1;

    private LicenseKey(string canonical) => Value = canonical;

    /// <summary>The canonical form <c>XXXX-XXXX-XXXX-XXXX</c>.</summary>
    public string Value { get; }

    /// <summary>Generates a random license key (75 random bits).</summary>
    /// <returns>The key.</returns>
    public static LicenseKey Generate()
    {
        Span<int> values = stackalloc int[TotalLength];
        for (var i = 0; i < DataLength; i++)
        {
            values[i] = RandomNumberGenerator.GetInt32(32);
        }

        values[DataLength] = Checksum(values[..DataLength]);
        return new LicenseKey(Format(values));
    }

    /// <summary>Parses user input; on failure <paramref name="error"/> says what to fix (a typo, a wrong length...).</summary>
    /// <param name="text">What the user typed or scanned.</param>
    /// <param name="key">The key when valid.</param>
    /// <param name="error">A clear message when invalid; empty on success.</param>
    /// <returns>True when the text is a valid license key.</returns>
    public static bool TryParse(string? text, out LicenseKey key, out string error)
    {
        key = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "The license key is empty.";
            return false;
        }

        if (text.Length > 64)
        {
            error = "The license key is far too long (expected 16 characters like ABCD-EFGH-JKMN-PQRS).";
            return false;
        }

        Span<int> values = stackalloc int[TotalLength];
        var count = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = char.ToUpperInvariant(text[i]);
            if (c is '-' or ' ')
            {
                continue;
            }

            var v = c switch
            {
                'O' => 0,
                'I' or 'L' => 1,
                _ => Alphabet.IndexOf(c, StringComparison.Ordinal),
            };
            if (v < 0)
            {
                error = c == 'U'
                    ? $"The license key contains 'U' at position {i + 1}, which license keys never use: please check that character."
                    : $"The license key contains '{text[i]}' at position {i + 1}, which license keys never use.";
                return false;
            }

            if (count == TotalLength)
            {
                error = "The license key has more than 16 characters: please check for an extra character.";
                return false;
            }

            values[count++] = v;
        }

        if (count != TotalLength)
        {
            error = $"The license key has {count} characters, expected 16: please check for a missing character.";
            return false;
        }

        if (Checksum(values[..DataLength]) != values[DataLength])
        {
            error = "The license key contains a typo (its check character does not match): please compare it character by character.";
            return false;
        }

        key = new LicenseKey(Format(values));
        error = string.Empty;
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/>.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The key.</returns>
    public static LicenseKey Parse(string text) => TryParse(text, out var key, out var error) ? key : throw new FormatException(error);

    /// <inheritdoc />
    public override string ToString() => Value ?? string.Empty;

    internal static int Checksum(ReadOnlySpan<int> data)
    {
        var sum = 0;
        var weight = 1; // α⁰
        foreach (var v in data)
        {
            sum ^= Gf32Multiply(weight, v);
            weight = Gf32Multiply(weight, 2);
        }

        return sum;
    }

    private static int Gf32Multiply(int a, int b)
    {
        var result = 0;
        for (var i = 0; i < 5; i++)
        {
            if ((b & 1) != 0)
            {
                result ^= a;
            }

            b >>= 1;
            a <<= 1;
            if ((a & 0x20) != 0)
            {
                a ^= 0x25; // x⁵ + x² + 1
            }
        }

        return result;
    }

    private static string Format(ReadOnlySpan<int> values)
    {
        var sb = new StringBuilder(19);
        for (var i = 0; i < values.Length; i++)
        {
            if (i > 0 && i % 4 == 0)
            {
                sb.Append('-');
            }

            sb.Append(Alphabet[values[i]]);
        }

        return sb.ToString();
    }

}
