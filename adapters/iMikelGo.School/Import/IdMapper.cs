using System.Globalization;
using System.Text;

namespace IMikelGo.School.Import;

/// <summary>
/// Maps admin-system names to valid iMikelGo ids (<c>[a-z0-9][a-z0-9._-]{0,63}</c>) deterministically: Unicode
/// compatibility decomposition, diacritics stripped, a few letters transliterated (ß→ss, æ→ae, ø→o, ł→l…),
/// lower case, every other run of characters → <c>-</c>, trimmed, at most 56 characters; an empty result becomes
/// <c>x</c>. Two different names that map to the same id are told apart by a suffix <c>-2</c>, <c>-3</c>… in the
/// order they are first mapped, so mapping the same names in the same order always gives the same ids.
/// </summary>
public sealed class IdMapper
{
    private const int MaxBase = 56;
    private readonly Dictionary<string, string> _byName = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly string _prefix;

    /// <summary>Creates a mapper whose ids start with <paramref name="prefix"/> (may be empty).</summary>
    public IdMapper(string prefix = "")
    {
        _prefix = prefix ?? string.Empty;
    }

    /// <summary>The id for <paramref name="name"/>; the same name always gets the same id from this mapper.</summary>
    public string Map(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out var known))
        {
            return known;
        }

        var baseId = Slug(_prefix + name);
        var id = baseId;
        for (var n = 2; !_used.Add(id); n++)
        {
            id = string.Create(CultureInfo.InvariantCulture, $"{baseId}-{n}");
        }

        _byName[name] = id;
        return id;
    }

    /// <summary>The bare slug of <paramref name="text"/> (no collision handling).</summary>
    public static string Slug(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length);
        var dash = false;
        foreach (var ch in text.Normalize(NormalizationForm.FormKD))
        {
            if (CharUnicodeInfo.GetUnicodeCategory(ch) == UnicodeCategory.NonSpacingMark)
            {
                continue;
            }

            var mapped = char.ToLowerInvariant(ch) switch
            {
                'ß' => "ss",
                'æ' => "ae",
                'œ' => "oe",
                'ø' => "o",
                'ł' => "l",
                'đ' => "d",
                'þ' => "th",
                'ı' => "i",
                var c when c is (>= 'a' and <= 'z') or (>= '0' and <= '9') => c.ToString(),
                '.' or '_' => ch.ToString(),
                _ => null,
            };
            if (mapped is null)
            {
                dash = sb.Length > 0;
                continue;
            }

            if (dash)
            {
                sb.Append('-');
                dash = false;
            }

            sb.Append(mapped);
        }

        var s = sb.ToString().TrimStart('.', '_', '-');
        s = s.Length > MaxBase ? s[..MaxBase].TrimEnd('.', '_', '-') : s;
        return s.Length == 0 ? "x" : s;
    }
}
