using System.Globalization;

namespace IMikelGo.Engine.Canonical;

/// <summary>Builds a <see cref="CanonicalObject"/> member by member.</summary>
public sealed class ObjectBuilder
{
    private readonly List<KeyValuePair<string, CanonicalValue>> _members = [];

    /// <summary>Adds a member.</summary>
    public ObjectBuilder Add(string key, CanonicalValue value)
    {
        _members.Add(new(key, value));
        return this;
    }

    /// <summary>Adds a string member.</summary>
    public ObjectBuilder Add(string key, string value) => Add(key, new CanonicalString(value));

    /// <summary>Adds an integer member.</summary>
    public ObjectBuilder Add(string key, long value) => Add(key, new CanonicalInteger(value));

    /// <summary>Adds a boolean member.</summary>
    public ObjectBuilder Add(string key, bool value) => Add(key, CanonicalBoolean.Of(value));

    /// <summary>Adds a string member when <paramref name="value"/> is not null.</summary>
    public ObjectBuilder AddIfPresent(string key, string? value) => value is null ? this : Add(key, value);

    /// <summary>Adds an array of strings.</summary>
    public ObjectBuilder Add(string key, IEnumerable<string> values) =>
        Add(key, new CanonicalArray(values.Select(v => (CanonicalValue)new CanonicalString(v))));

    /// <summary>Adds a date as <c>yyyy-MM-dd</c>.</summary>
    public ObjectBuilder Add(string key, DateOnly value) =>
        Add(key, value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));

    /// <summary>The object.</summary>
    public CanonicalObject Build() => new(_members);
}

/// <summary>
/// Reads the members of a <see cref="CanonicalObject"/> with typed, validated accessors. Every error names the
/// member; <see cref="EnsureNoOthers"/> refuses members nobody asked for, so unknown fields are never ignored.
/// </summary>
public sealed class MemberReader
{
    private readonly CanonicalObject _object;
    private readonly string _path;
    private readonly bool[]? _readMany;
    private ulong _read;

    /// <summary>Reads <paramref name="value"/>, which must be an object.</summary>
    public MemberReader(CanonicalValue value, string path)
    {
        _path = path;
        _object = value as CanonicalObject ?? throw new WireFormatException($"{path}: expected an object");
        _readMany = _object.Members.Count > 64 ? new bool[_object.Members.Count] : null;
    }

    /// <summary>The object's path, used in error messages.</summary>
    public string Path => _path;

    /// <summary>A required member of any type.</summary>
    public CanonicalValue Value(string key)
    {
        var index = _object.Members.IndexOf(key);
        if (index < 0)
        {
            throw new WireFormatException($"{_path}.{key}: required member is missing");
        }

        if (_readMany is not null)
        {
            _readMany[index] = true;
        }
        else
        {
            _read |= 1UL << index;
        }

        return _object.Members.At(index).Value;
    }

    /// <summary>Whether the member is present.</summary>
    public bool Has(string key) => _object.Members.ContainsKey(key);

    /// <summary>A required string, at most <paramref name="maxLength"/> characters, not empty.</summary>
    public string String(string key, int maxLength = 200)
    {
        var value = Value(key) as CanonicalString ?? throw Fail(key, "expected a string");
        if (value.Value.Length == 0)
        {
            throw Fail(key, "must not be empty");
        }

        if (value.Value.Length > maxLength)
        {
            throw Fail(key, $"longer than {maxLength} characters");
        }

        return value.Value;
    }

    /// <summary>An optional string.</summary>
    public string? OptionalString(string key, int maxLength = 200) => Has(key) ? String(key, maxLength) : null;

    /// <summary>A required integer within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long Integer(string key, long min, long max)
    {
        var value = Value(key) as CanonicalInteger ?? throw Fail(key, "expected an integer");
        return value.Value < min || value.Value > max
            ? throw Fail(key, $"{value.Value} is outside [{min}, {max}]")
            : value.Value;
    }

    /// <summary>A required boolean.</summary>
    public bool Boolean(string key) =>
        (Value(key) as CanonicalBoolean ?? throw Fail(key, "expected true or false")).Value;

    /// <summary>A required nested object.</summary>
    public MemberReader Object(string key) => new(Value(key), $"{_path}.{key}");

    /// <summary>A required array.</summary>
    public IReadOnlyList<CanonicalValue> Array(string key, int maxItems)
    {
        var array = Value(key) as CanonicalArray ?? throw Fail(key, "expected an array");
        return array.Items.Length > maxItems ? throw Fail(key, $"more than {maxItems} items") : array.Items;
    }

    /// <summary>A required array of strings, each validated by <paramref name="parse"/>.</summary>
    public IReadOnlyList<T> StringArray<T>(string key, int maxItems, Func<string, T> parse)
    {
        var items = Array(key, maxItems);
        var result = new List<T>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var text = (items[i] as CanonicalString)?.Value ?? throw Fail($"{key}[{i}]", "expected a string");
            result.Add(Parse($"{key}[{i}]", text, parse));
        }

        return result;
    }

    /// <summary>A required string parsed by <paramref name="parse"/>; its errors are reported with the member's path.</summary>
    public T Parsed<T>(string key, Func<string, T> parse, int maxLength = 200) => Parse(key, String(key, maxLength), parse);

    /// <summary>A required date in <c>yyyy-MM-dd</c> form.</summary>
    public DateOnly Date(string key) => Parsed(key, text =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
            ? date
            : throw new FormatException($"\"{text}\" is not a date in yyyy-MM-dd form"));

    /// <summary>A required string that must be one of the names in <paramref name="names"/>.</summary>
    public T Enum<T>(string key, IReadOnlyDictionary<string, T> names)
    {
        var text = String(key);
        return names.TryGetValue(text, out var value)
            ? value
            : throw Fail(key, $"\"{text}\" is not one of {string.Join(", ", names.Keys.Order(StringComparer.Ordinal))}");
    }

    /// <summary>Refuses members that were not read.</summary>
    public void EnsureNoOthers()
    {
        var members = _object.Members.AsSpan();
        for (var i = 0; i < members.Length; i++)
        {
            if (_readMany is not null ? !_readMany[i] : (_read & (1UL << i)) == 0)
            {
                throw new WireFormatException($"{_path}.{members[i].Key}: unknown member");
            }
        }
    }

    private T Parse<T>(string key, string text, Func<string, T> parse)
    {
        try
        {
            return parse(text);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw Fail(key, ex.Message);
        }
    }

    private WireFormatException Fail(string key, string reason) => new($"{_path}.{key}: {reason}");
}
