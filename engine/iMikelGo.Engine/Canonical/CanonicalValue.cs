using System.Collections.Immutable;

namespace IMikelGo.Engine.Canonical;

/// <summary>
/// A value of the canonical wire format: a strict subset of JSON (RFC 8259) serialised as in RFC 8785, with
/// integers only (no floating point), no <c>null</c>, NFC-normalised strings and ordinally sorted object keys.
/// </summary>
public abstract record CanonicalValue
{
    private protected CanonicalValue()
    {
    }
}

/// <summary>A UTF-8 string, always in Unicode normalisation form C.</summary>
public sealed record CanonicalString : CanonicalValue
{
    /// <summary>Creates a string value; the text is normalised to NFC.</summary>
    /// <exception cref="ArgumentException">The text contains a lone surrogate.</exception>
    public CanonicalString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Value = CanonicalText.Normalize(value);
    }

    /// <summary>The NFC-normalised text.</summary>
    public string Value { get; }
}

/// <summary>An integer in the range that every JSON implementation represents exactly (±(2^53 − 1)).</summary>
public sealed record CanonicalInteger : CanonicalValue
{
    /// <summary>The largest magnitude allowed on the wire.</summary>
    public const long MaxMagnitude = 9_007_199_254_740_991;

    /// <summary>Creates an integer value.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside ±(2^53 − 1).</exception>
    public CanonicalInteger(long value)
    {
        if (value is > MaxMagnitude or < -MaxMagnitude)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "integers on the wire are limited to ±(2^53 − 1)");
        }

        Value = value;
    }

    /// <summary>The integer.</summary>
    public long Value { get; }
}

/// <summary>A boolean.</summary>
public sealed record CanonicalBoolean : CanonicalValue
{
    /// <summary>The value <c>true</c>.</summary>
    public static readonly CanonicalBoolean True = new(true);

    /// <summary>The value <c>false</c>.</summary>
    public static readonly CanonicalBoolean False = new(false);

    private CanonicalBoolean(bool value) => Value = value;

    /// <summary>The boolean.</summary>
    public bool Value { get; }

    /// <summary>The shared instance for <paramref name="value"/>.</summary>
    public static CanonicalBoolean Of(bool value) => value ? True : False;
}

/// <summary>An ordered list of values.</summary>
public sealed record CanonicalArray : CanonicalValue
{
    /// <summary>Creates an array.</summary>
    public CanonicalArray(IEnumerable<CanonicalValue> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        Items = [.. items];
    }

    /// <summary>The items in wire order.</summary>
    public ImmutableArray<CanonicalValue> Items { get; }

    /// <inheritdoc />
    public bool Equals(CanonicalArray? other) =>
        other is not null && Items.AsSpan().SequenceEqual(other.Items.AsSpan());

    /// <inheritdoc />
    public override int GetHashCode() => Items.Length;
}

/// <summary>An object whose members are kept sorted by key (UTF-16 code units, as RFC 8785 sorts them).</summary>
public sealed record CanonicalObject : CanonicalValue
{
    /// <summary>Creates an object; duplicate keys are refused.</summary>
    /// <exception cref="ArgumentException">Two members have the same key.</exception>
    public CanonicalObject(IEnumerable<KeyValuePair<string, CanonicalValue>> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        var builder = ImmutableSortedDictionary.CreateBuilder<string, CanonicalValue>(StringComparer.Ordinal);
        foreach (var (key, value) in members)
        {
            var normalized = CanonicalText.Normalize(key);
            if (!builder.TryAdd(normalized, value))
            {
                throw new ArgumentException($"duplicate key \"{normalized}\"", nameof(members));
            }
        }

        Members = builder.ToImmutable();
    }

    /// <summary>The members, sorted by key.</summary>
    public ImmutableSortedDictionary<string, CanonicalValue> Members { get; }

    /// <inheritdoc />
    public bool Equals(CanonicalObject? other) =>
        other is not null && Members.Count == other.Members.Count &&
        Members.All(m => other.Members.TryGetValue(m.Key, out var v) && Equals(m.Value, v));

    /// <inheritdoc />
    public override int GetHashCode() => Members.Count;
}
