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

    /// <summary>Wraps text the caller has checked to be NFC (the decoder refuses anything else).</summary>
    internal CanonicalString(string value, bool normalized)
    {
        System.Diagnostics.Debug.Assert(normalized, "callers pass only NFC text");
        Value = value;
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

    private CanonicalArray(ImmutableArray<CanonicalValue> items) => Items = items;

    /// <summary>Wraps items already collected (the decoder's path: no copy).</summary>
    internal static CanonicalArray Wrap(ImmutableArray<CanonicalValue> items) => new(items);

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
        var list = members.TryGetNonEnumeratedCount(out var count) ? new List<KeyValuePair<string, CanonicalValue>>(count) : [];
        foreach (var (key, value) in members)
        {
            list.Add(new(CanonicalText.Normalize(key), value));
        }

        var sorted = list.ToArray();
        Array.Sort(sorted, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        for (var i = 1; i < sorted.Length; i++)
        {
            if (string.Equals(sorted[i - 1].Key, sorted[i].Key, StringComparison.Ordinal))
            {
                throw new ArgumentException($"duplicate key \"{sorted[i].Key}\"", nameof(members));
            }
        }

        Members = new CanonicalMembers(sorted);
    }

    private CanonicalObject(CanonicalMembers members) => Members = members;

    /// <summary>Wraps members whose keys are NFC and strictly ascending in ordinal order (the caller checked).</summary>
    internal static CanonicalObject FromSorted(KeyValuePair<string, CanonicalValue>[] sortedMembers) => new(new CanonicalMembers(sortedMembers));

    /// <summary>The members, sorted by key.</summary>
    public CanonicalMembers Members { get; }

    /// <inheritdoc />
    public bool Equals(CanonicalObject? other)
    {
        if (other is null || Members.Count != other.Members.Count)
        {
            return false;
        }

        for (var i = 0; i < Members.Count; i++)
        {
            var (a, b) = (Members.At(i), other.Members.At(i));
            if (!string.Equals(a.Key, b.Key, StringComparison.Ordinal) || !Equals(a.Value, b.Value))
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc />
    public override int GetHashCode() => Members.Count;
}

/// <summary>
/// The members of a <see cref="CanonicalObject"/>: an immutable array sorted by key in ordinal (UTF-16 code
/// unit) order, looked up by binary search.
/// </summary>
public sealed class CanonicalMembers : IReadOnlyDictionary<string, CanonicalValue>
{
    private readonly KeyValuePair<string, CanonicalValue>[] _members;

    internal CanonicalMembers(KeyValuePair<string, CanonicalValue>[] sorted) => _members = sorted;

    /// <inheritdoc />
    public int Count => _members.Length;

    /// <inheritdoc />
    public IEnumerable<string> Keys => _members.Select(m => m.Key);

    /// <inheritdoc />
    public IEnumerable<CanonicalValue> Values => _members.Select(m => m.Value);

    /// <inheritdoc />
    public CanonicalValue this[string key] =>
        TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"no member \"{key}\"");

    /// <summary>The member at <paramref name="index"/> in key order.</summary>
    public KeyValuePair<string, CanonicalValue> At(int index) => _members[index];

    /// <summary>The members in key order.</summary>
    public ReadOnlySpan<KeyValuePair<string, CanonicalValue>> AsSpan() => _members;

    /// <summary>The position of <paramref name="key"/> in key order, or a negative number when absent.</summary>
    public int IndexOf(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        int lo = 0, hi = _members.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >> 1;
            var c = string.CompareOrdinal(_members[mid].Key, key);
            if (c == 0)
            {
                return mid;
            }

            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return -1;
    }

    /// <inheritdoc />
    public bool ContainsKey(string key) => IndexOf(key) >= 0;

    /// <inheritdoc />
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out CanonicalValue value)
    {
        var i = IndexOf(key);
        value = i >= 0 ? _members[i].Value : null;
        return i >= 0;
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, CanonicalValue>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, CanonicalValue>>)_members).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
