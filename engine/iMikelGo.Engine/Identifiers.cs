using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace IMikelGo.Engine;

internal static partial class IdRules
{
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    public static partial Regex Id();

    [GeneratedRegex("^[0-9a-f]{64}$", RegexOptions.CultureInvariant)]
    public static partial Regex Sha256Hex();

    /// <summary>Same language as <see cref="Id"/> (<c>^[a-z0-9][a-z0-9._-]{0,63}$</c>), checked by hand.</summary>
    public static bool IsId(string? value)
    {
        if (value is null || value.Length is 0 or > 64 || !IsLowerAlnum(value[0]))
        {
            return false;
        }

        for (var i = 1; i < value.Length; i++)
        {
            var c = value[i];
            if (!IsLowerAlnum(c) && c is not ('.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Same language as <see cref="Sha256Hex"/> (<c>^[0-9a-f]{64}$</c>), checked by hand.</summary>
    public static bool IsSha256Hex(string? value)
    {
        if (value is null || value.Length != 64)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsLowerAlnum(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9');

    public static string Validate(string value, string what) =>
        IsId(value)
            ? value
            : throw new FormatException($"\"{value}\" is not a valid {what} (1–64 of a-z 0-9 . _ -, starting with a letter or digit)");
}

/// <summary>A teacher account (the license, Kennung): the unit of replication.</summary>
public readonly record struct AccountId
{
    /// <summary>Validates and wraps <paramref name="value"/>.</summary>
    /// <exception cref="FormatException">The id is not valid.</exception>
    public AccountId(string value) => Value = IdRules.Validate(value, "account id");

    /// <summary>The id.</summary>
    public string Value { get; }

    /// <inheritdoc />
    public override string ToString() => Value;
}

/// <summary>A writer of an account's log: the school connector or one enrolled device.</summary>
public readonly record struct ReplicaId : IComparable<ReplicaId>
{
    /// <summary>Validates and wraps <paramref name="value"/>.</summary>
    /// <exception cref="FormatException">The id is not valid.</exception>
    public ReplicaId(string value) => Value = IdRules.Validate(value, "replica id");

    /// <summary>The id.</summary>
    public string Value { get; }

    /// <summary>
    /// The self-certifying id of a replica's signing key: <c>r</c> followed by the first 20 bytes of the
    /// SHA-256 of its SubjectPublicKeyInfo, in lower-case hex.
    /// </summary>
    public static ReplicaId FromPublicKey(ReadOnlySpan<byte> subjectPublicKeyInfo) =>
        new("r" + Convert.ToHexStringLower(SHA256.HashData(subjectPublicKeyInfo)[..20]));

    /// <inheritdoc />
    public int CompareTo(ReplicaId other) => string.CompareOrdinal(Value, other.Value);

    /// <inheritdoc />
    public override string ToString() => Value;
}

/// <summary>The SHA-256 of an event's canonical unsigned body: the event's identity and every dedup key.</summary>
public readonly record struct EventHash
{
    /// <summary>The all-zero hash, the <c>prev</c> of every chain's first event.</summary>
    public static readonly EventHash Zero = new(new string('0', 64));

    /// <summary>Validates and wraps lower-case hex.</summary>
    /// <exception cref="FormatException">Not 64 lower-case hex digits.</exception>
    public EventHash(string hex) =>
        Hex = IdRules.IsSha256Hex(hex)
            ? hex
            : throw new FormatException("a hash is 64 lower-case hex digits");

    // For hex this type produced itself (Convert.ToHexStringLower of 32 bytes): nothing to validate.
    private EventHash(string hex, bool trusted)
    {
        System.Diagnostics.Debug.Assert(trusted && IdRules.IsSha256Hex(hex), "only well-formed hex is trusted");
        Hex = hex;
    }

    /// <summary>64 lower-case hex digits.</summary>
    public string Hex { get; }

    /// <summary>Hashes canonical body bytes.</summary>
    public static EventHash Of(ReadOnlySpan<byte> canonicalBody)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(canonicalBody, hash);
        return new(Convert.ToHexStringLower(hash), trusted: true);
    }

    /// <summary>The 32 bytes.</summary>
    public byte[] ToBytes() => Convert.FromHexString(Hex);

    /// <summary>The first 12 hex digits, for display.</summary>
    public string Short => Hex[..12];

    /// <inheritdoc />
    public override string ToString() => Hex;
}

/// <summary>A student (Schüler).</summary>
public readonly record struct StudentId
{
    /// <summary>Validates and wraps <paramref name="value"/>.</summary>
    public StudentId(string value) => Value = IdRules.Validate(value, "student id");

    /// <summary>The id.</summary>
    public string Value { get; }

    /// <inheritdoc />
    public override string ToString() => Value;
}

/// <summary>A room.</summary>
public readonly record struct RoomId
{
    /// <summary>Validates and wraps <paramref name="value"/>.</summary>
    public RoomId(string value) => Value = IdRules.Validate(value, "room id");

    /// <summary>The id.</summary>
    public string Value { get; }

    /// <inheritdoc />
    public override string ToString() => Value;
}

/// <summary>A weekly lesson series.</summary>
public readonly record struct SeriesId
{
    /// <summary>Validates and wraps <paramref name="value"/>.</summary>
    public SeriesId(string value) => Value = IdRules.Validate(value, "series id");

    /// <summary>The id.</summary>
    public string Value { get; }

    /// <inheritdoc />
    public override string ToString() => Value;
}

/// <summary>One date of a lesson series; on the wire <c>series@yyyy-MM-dd</c>.</summary>
public readonly record struct OccurrenceId : IComparable<OccurrenceId>
{
    /// <summary>Creates the id of <paramref name="series"/> on <paramref name="date"/>.</summary>
    public OccurrenceId(SeriesId series, DateOnly date)
    {
        Series = series;
        Date = date;
    }

    /// <summary>The series.</summary>
    public SeriesId Series { get; }

    /// <summary>The scheduled date (before any reschedule).</summary>
    public DateOnly Date { get; }

    /// <summary>Parses <c>series@yyyy-MM-dd</c>.</summary>
    /// <exception cref="FormatException">Malformed.</exception>
    public static OccurrenceId Parse(string text)
    {
        var at = text.LastIndexOf('@');
        return at <= 0 || !DateOnly.TryParseExact(text.AsSpan(at + 1), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
            ? throw new FormatException($"\"{text}\" is not an occurrence id (series@yyyy-MM-dd)")
            : new OccurrenceId(new SeriesId(text[..at]), date);
    }

    /// <inheritdoc />
    public int CompareTo(OccurrenceId other)
    {
        var byDate = Date.CompareTo(other.Date);
        return byDate != 0 ? byDate : string.CompareOrdinal(Series.Value, other.Series.Value);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Series.Value}@{Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}";
}

internal static class StrictBase64
{
    /// <summary>Decodes padded standard base64, refusing every non-canonical spelling.</summary>
    public static byte[] Decode(string text, int maxBytes)
    {
        if (text.Length % 4 != 0 || text.Length > (maxBytes + 2) / 3 * 4)
        {
            throw new FormatException("not padded standard base64, or too long");
        }

        var bytes = Convert.FromBase64String(text);
        return string.Equals(Convert.ToBase64String(bytes), text, StringComparison.Ordinal)
            ? bytes
            : throw new FormatException("non-canonical base64 (unused bits set)");
    }
}
