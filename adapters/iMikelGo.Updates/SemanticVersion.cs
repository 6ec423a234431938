using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace IMikelGo.Updates;

/// <summary>A SemVer 2.0.0 version (<c>MAJOR.MINOR.PATCH[-prerelease][+build]</c>) with SemVer precedence; build metadata is ignored when comparing.</summary>
public sealed class SemanticVersion : IComparable<SemanticVersion>, IEquatable<SemanticVersion>
{
    private readonly string[] _pre;

    private SemanticVersion(ulong major, ulong minor, ulong patch, string[] pre, string text)
    {
        Major = major;
        Minor = minor;
        Patch = patch;
        _pre = pre;
        Text = text;
    }

    /// <summary>Gets the major number.</summary>
    public ulong Major { get; }

    /// <summary>Gets the minor number.</summary>
    public ulong Minor { get; }

    /// <summary>Gets the patch number.</summary>
    public ulong Patch { get; }

    /// <summary>Gets the text exactly as parsed.</summary>
    public string Text { get; }

    /// <summary>Parses a strict SemVer 2.0.0 string (no leading zeros, no 'v' prefix, at most 64 characters).</summary>
    /// <param name="text">The text.</param>
    /// <param name="version">The version.</param>
    /// <returns>True when valid.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out SemanticVersion? version)
    {
        version = null;
        if (string.IsNullOrEmpty(text) || text.Length > 64)
        {
            return false;
        }

        var core = text;
        var plus = core.IndexOf('+', StringComparison.Ordinal);
        if (plus >= 0)
        {
            if (!ValidIdentifiers(core[(plus + 1)..], numericNoLeadingZero: false))
            {
                return false;
            }

            core = core[..plus];
        }

        string[] pre = [];
        var dash = core.IndexOf('-', StringComparison.Ordinal);
        if (dash >= 0)
        {
            var p = core[(dash + 1)..];
            if (!ValidIdentifiers(p, numericNoLeadingZero: true))
            {
                return false;
            }

            pre = p.Split('.');
            core = core[..dash];
        }

        var parts = core.Split('.');
        if (parts.Length != 3 || !TryNumber(parts[0], out var major) || !TryNumber(parts[1], out var minor) || !TryNumber(parts[2], out var patch))
        {
            return false;
        }

        version = new SemanticVersion(major, minor, patch, pre, text);
        return true;
    }

    /// <summary>Parses or throws <see cref="FormatException"/>.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The version.</returns>
    public static SemanticVersion Parse(string text)
        => TryParse(text, out var v) ? v : throw new FormatException($"'{text}' is not a SemVer 2.0.0 version.");

    /// <inheritdoc />
    public int CompareTo(SemanticVersion? other)
    {
        if (other is null)
        {
            return 1;
        }

        var c = Major.CompareTo(other.Major);
        if (c == 0)
        {
            c = Minor.CompareTo(other.Minor);
        }

        if (c == 0)
        {
            c = Patch.CompareTo(other.Patch);
        }

        if (c != 0)
        {
            return c;
        }

        if (_pre.Length == 0 || other._pre.Length == 0)
        {
            return Math.Sign(other._pre.Length.CompareTo(_pre.Length));
        }

        for (var i = 0; i < Math.Min(_pre.Length, other._pre.Length); i++)
        {
            var a = _pre[i];
            var b = other._pre[i];
            var an = ulong.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out var av);
            var bn = ulong.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var bv);
            c = (an, bn) switch
            {
                (true, true) => av.CompareTo(bv),
                (true, false) => -1,
                (false, true) => 1,
                _ => string.CompareOrdinal(a, b),
            };
            if (c != 0)
            {
                return Math.Sign(c);
            }
        }

        return _pre.Length.CompareTo(other._pre.Length);
    }

    /// <inheritdoc />
    public bool Equals(SemanticVersion? other) => other is not null && CompareTo(other) == 0;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is SemanticVersion v && Equals(v);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Major, Minor, Patch, string.Join('.', _pre));

    /// <inheritdoc />
    public override string ToString() => Text;

    /// <summary>Less than.</summary>
    /// <param name="a">Left.</param>
    /// <param name="b">Right.</param>
    /// <returns>The comparison.</returns>
    public static bool operator <(SemanticVersion? a, SemanticVersion? b) => Compare(a, b) < 0;

    /// <summary>Greater than.</summary>
    /// <param name="a">Left.</param>
    /// <param name="b">Right.</param>
    /// <returns>The comparison.</returns>
    public static bool operator >(SemanticVersion? a, SemanticVersion? b) => Compare(a, b) > 0;

    /// <summary>Less or equal.</summary>
    /// <param name="a">Left.</param>
    /// <param name="b">Right.</param>
    /// <returns>The comparison.</returns>
    public static bool operator <=(SemanticVersion? a, SemanticVersion? b) => Compare(a, b) <= 0;

    /// <summary>Greater or equal.</summary>
    /// <param name="a">Left.</param>
    /// <param name="b">Right.</param>
    /// <returns>The comparison.</returns>
    public static bool operator >=(SemanticVersion? a, SemanticVersion? b) => Compare(a, b) >= 0;

    /// <summary>Equal precedence.</summary>
    /// <param name="a">Left.</param>
    /// <param name="b">Right.</param>
    /// <returns>The comparison.</returns>
    public static bool operator ==(SemanticVersion? a, SemanticVersion? b) => Compare(a, b) == 0;

    /// <summary>Different precedence.</summary>
    /// <param name="a">Left.</param>
    /// <param name="b">Right.</param>
    /// <returns>The comparison.</returns>
    public static bool operator !=(SemanticVersion? a, SemanticVersion? b) => Compare(a, b) != 0;

    private static int Compare(SemanticVersion? a, SemanticVersion? b)
        => a is null ? (b is null ? 0 : -1) : a.CompareTo(b);

    private static bool TryNumber(string s, out ulong value)
    {
        value = 0;
        return s.Length is > 0 and <= 9 && (s.Length == 1 || s[0] != '0') && s.All(char.IsAsciiDigit)
               && ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static bool ValidIdentifiers(string s, bool numericNoLeadingZero)
    {
        if (s.Length == 0)
        {
            return false;
        }

        foreach (var id in s.Split('.'))
        {
            if (id.Length == 0 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                return false;
            }

            if (numericNoLeadingZero && id.Length > 1 && id[0] == '0' && id.All(char.IsAsciiDigit))
            {
                return false;
            }
        }

        return true;
    }
}
