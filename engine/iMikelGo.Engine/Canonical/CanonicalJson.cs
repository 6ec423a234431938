using System.Buffers;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace IMikelGo.Engine.Canonical;

/// <summary>
/// The canonical encoding: RFC 8785 (JSON Canonicalization Scheme) restricted to integers, strings, booleans,
/// arrays and objects. Reading is strict: the input must be exactly the bytes this encoder would write, so
/// whitespace, duplicate keys, unsorted keys, escapes other than RFC 8785's, non-NFC text, floats, <c>-0</c>,
/// <c>null</c> and out-of-range integers are all refused.
/// </summary>
public static class CanonicalJson
{
    /// <summary>Deepest nesting accepted on read.</summary>
    public const int MaxDepth = 16;

    /// <summary>Largest document accepted on read (bytes).</summary>
    public const int MaxDocumentBytes = 1 << 20;

    /// <summary>Encodes <paramref name="value"/> to its canonical bytes.</summary>
    public static byte[] Encode(CanonicalValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var buffer = new ByteBuffer(256);
        buffer.Write(value);
        return buffer.Written.ToArray();
    }

    /// <summary>Appends the canonical bytes of <paramref name="value"/> to <paramref name="output"/>.</summary>
    public static void Write(IBufferWriter<byte> output, CanonicalValue value)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(value);
        var buffer = ByteBuffer.Rent();
        buffer.Write(value);
        var written = buffer.Written;
        written.CopyTo(output.GetSpan(written.Length));
        output.Advance(written.Length);
    }

    /// <summary>Decodes canonical bytes, refusing anything that is not exactly canonical.</summary>
    /// <exception cref="WireFormatException">The input is malformed or not canonical; the message says why.</exception>
    public static CanonicalValue Decode(ReadOnlySpan<byte> utf8) => Decode(utf8, null, out _);

    /// <summary>
    /// Decodes canonical bytes and reports where the value of the top-level member <paramref name="member"/>
    /// lies in <paramref name="utf8"/>. Because the input is verified to be exactly canonical, that range holds
    /// exactly the canonical encoding of the member's value (canonical encoding is compositional).
    /// </summary>
    internal static CanonicalValue Decode(ReadOnlySpan<byte> utf8, string? member, out Range memberRange)
    {
        if (utf8.Length > MaxDocumentBytes)
        {
            throw new WireFormatException($"document of {utf8.Length} bytes exceeds the limit of {MaxDocumentBytes}");
        }

        var context = DecodeContext.Rent(member);
        CanonicalValue value;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read())
            {
                throw new WireFormatException("empty document");
            }

            value = ReadValue(ref reader, context);
            if (reader.Read())
            {
                throw new WireFormatException($"trailing data after the document at byte {reader.TokenStartIndex}");
            }
        }
        catch (JsonException ex)
        {
            throw new WireFormatException($"malformed JSON: {ex.Message}", ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new WireFormatException($"malformed text: {ex.Message}", ex);
        }
        catch (ArgumentException ex)
        {
            throw new WireFormatException($"invalid text: {ex.Message}", ex);
        }
        finally
        {
            context.Return();
        }

        // The definitive check: the input must be byte for byte what the encoder writes for the decoded value.
        var buffer = ByteBuffer.Rent();
        buffer.Write(value);
        var canonical = buffer.Written;
        if (!utf8.SequenceEqual(canonical))
        {
            var at = utf8.CommonPrefixLength(canonical);
            throw new WireFormatException($"not in canonical form (first difference at byte {at}: whitespace, key order, escaping or NFC)");
        }

        memberRange = context.MemberRange;
        return value;
    }

    private static readonly SearchValues<byte> FloatMarkers = SearchValues.Create(".eE"u8);

    private static CanonicalValue ReadValue(ref Utf8JsonReader reader, DecodeContext context)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                {
                    var text = reader.GetString()!;
                    if (!text.IsNormalized(NormalizationForm.FormC))
                    {
                        throw new WireFormatException($"{context.Path()}: string is not NFC-normalised");
                    }

                    return new CanonicalString(text, normalized: true);
                }

            case JsonTokenType.Number:
                {
                    ReadOnlySpan<byte> raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan;
                    if (raw.IndexOfAny(FloatMarkers) >= 0)
                    {
                        throw new WireFormatException($"{context.Path()}: floating-point numbers are not allowed (use integers: minutes, cents, microseconds)");
                    }

                    if (!reader.TryGetInt64(out var number) || number is > CanonicalInteger.MaxMagnitude or < -CanonicalInteger.MaxMagnitude)
                    {
                        throw new WireFormatException($"{context.Path()}: integer out of range ±(2^53 − 1)");
                    }

                    if (number == 0 && raw[0] == (byte)'-')
                    {
                        throw new WireFormatException($"{context.Path()}: -0 is not canonical");
                    }

                    return new CanonicalInteger(number);
                }

            case JsonTokenType.True:
                return CanonicalBoolean.True;
            case JsonTokenType.False:
                return CanonicalBoolean.False;
            case JsonTokenType.Null:
                throw new WireFormatException($"{context.Path()}: null is not allowed (omit the member instead)");
            case JsonTokenType.StartArray:
                {
                    var start = context.ItemCount;
                    var index = 0;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        context.PushIndex(index++);
                        context.AddItem(ReadValue(ref reader, context));
                        context.Pop();
                    }

                    return CanonicalArray.Wrap(context.TakeItems(start));
                }

            case JsonTokenType.StartObject:
                {
                    var start = context.MemberCount;
                    var topLevel = context.Depth == 0;
                    var sorted = true;
                    HashSet<string>? seen = null;
                    string? previous = null;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        var key = reader.GetString()!;
                        if (seen is not null)
                        {
                            if (!seen.Add(key))
                            {
                                throw new WireFormatException($"{context.Path()}: duplicate key \"{key}\"");
                            }
                        }
                        else if (previous is not null)
                        {
                            var order = string.CompareOrdinal(previous, key);
                            if (order == 0)
                            {
                                throw new WireFormatException($"{context.Path()}: duplicate key \"{key}\"");
                            }

                            if (order > 0)
                            {
                                // Out of order (the final comparison refuses it); keep checking duplicates exactly.
                                sorted = false;
                                seen = new HashSet<string>(StringComparer.Ordinal);
                                foreach (var m in context.MembersSince(start))
                                {
                                    seen.Add(m.Key);
                                }

                                seen.Add(key);
                            }
                        }

                        previous = key;
                        sorted &= key.IsNormalized(NormalizationForm.FormC);
                        reader.Read();
                        var captured = topLevel && context.Member is not null && string.Equals(key, context.Member, StringComparison.Ordinal);
                        var valueStart = reader.TokenStartIndex;
                        context.PushKey(key);
                        context.AddMember(new(key, ReadValue(ref reader, context)));
                        context.Pop();
                        if (captured)
                        {
                            context.MemberRange = new Range((int)valueStart, (int)reader.BytesConsumed);
                        }
                    }

                    var members = context.TakeMembers(start);
                    return sorted ? CanonicalObject.FromSorted(members) : new CanonicalObject(members);
                }

            default:
                throw new WireFormatException($"{context.Path()}: unexpected token {reader.TokenType}");
        }
    }

    /// <summary>Per-thread scratch state of one decode: the path (built only for error messages) and value stacks.</summary>
    private sealed class DecodeContext
    {
        [ThreadStatic]
        private static DecodeContext? t_cached;

        private readonly string?[] _keys = new string?[MaxDepth + 2];
        private readonly int[] _indices = new int[MaxDepth + 2];
        private KeyValuePair<string, CanonicalValue>[] _members = new KeyValuePair<string, CanonicalValue>[64];
        private CanonicalValue[] _items = new CanonicalValue[64];

        public int Depth { get; private set; }

        public int MemberCount { get; private set; }

        public int ItemCount { get; private set; }

        public string? Member { get; private set; }

        public Range MemberRange { get; set; }

        public static DecodeContext Rent(string? member)
        {
            var context = t_cached ?? new DecodeContext();
            t_cached = null;
            context.Depth = 0;
            context.MemberCount = 0;
            context.ItemCount = 0;
            context.Member = member;
            context.MemberRange = default;
            return context;
        }

        public void Return()
        {
            Array.Clear(_members, 0, MemberCount);
            Array.Clear(_items, 0, ItemCount);
            t_cached = this;
        }

        public void PushKey(string key)
        {
            _keys[Depth] = key;
            Depth++;
        }

        public void PushIndex(int index)
        {
            _keys[Depth] = null;
            _indices[Depth] = index;
            Depth++;
        }

        public void Pop() => Depth--;

        public string Path()
        {
            var path = new StringBuilder("$");
            for (var i = 0; i < Depth; i++)
            {
                _ = _keys[i] is { } key ? path.Append('.').Append(key) : path.Append('[').Append(_indices[i].ToString(CultureInfo.InvariantCulture)).Append(']');
            }

            return path.ToString();
        }

        public void AddMember(KeyValuePair<string, CanonicalValue> member)
        {
            if (MemberCount == _members.Length)
            {
                Array.Resize(ref _members, _members.Length * 2);
            }

            _members[MemberCount++] = member;
        }

        public ReadOnlySpan<KeyValuePair<string, CanonicalValue>> MembersSince(int start) => _members.AsSpan(start, MemberCount - start);

        public KeyValuePair<string, CanonicalValue>[] TakeMembers(int start)
        {
            var result = _members.AsSpan(start, MemberCount - start).ToArray();
            Array.Clear(_members, start, MemberCount - start);
            MemberCount = start;
            return result;
        }

        public void AddItem(CanonicalValue item)
        {
            if (ItemCount == _items.Length)
            {
                Array.Resize(ref _items, _items.Length * 2);
            }

            _items[ItemCount++] = item;
        }

        public ImmutableArray<CanonicalValue> TakeItems(int start)
        {
            var result = _items.AsSpan(start, ItemCount - start).ToArray();
            Array.Clear(_items, start, ItemCount - start);
            ItemCount = start;
            return ImmutableCollectionsMarshal.AsImmutableArray(result);
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly SearchValues<char> NeedsEscape = SearchValues.Create(
        "\"\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f");

    /// <summary>A growable byte buffer the encoder writes to; one cached per thread for the decoder's comparison.</summary>
    private sealed class ByteBuffer(int capacity)
    {
        [ThreadStatic]
        private static ByteBuffer? t_cached;

        private byte[] _bytes = new byte[capacity];
        private int _length;

        public ReadOnlySpan<byte> Written => _bytes.AsSpan(0, _length);

        /// <summary>The calling thread's buffer, emptied; valid until the next call on this thread.</summary>
        public static ByteBuffer Rent()
        {
            var buffer = t_cached ??= new ByteBuffer(4096);
            buffer._length = 0;
            return buffer;
        }

        private Span<byte> Reserve(int count)
        {
            if (_bytes.Length - _length < count)
            {
                Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _length + count));
            }

            return _bytes.AsSpan(_length);
        }

        private void Byte(byte b)
        {
            if (_length == _bytes.Length)
            {
                Array.Resize(ref _bytes, _bytes.Length * 2);
            }

            _bytes[_length++] = b;
        }

        private void Ascii(ReadOnlySpan<byte> text)
        {
            text.CopyTo(Reserve(text.Length));
            _length += text.Length;
        }

        public void Write(CanonicalValue value)
        {
            switch (value)
            {
                case CanonicalString s:
                    String(s.Value);
                    break;
                case CanonicalInteger i:
                    {
                        var span = Reserve(24);
                        i.Value.TryFormat(span, out var n, default, CultureInfo.InvariantCulture);
                        _length += n;
                        break;
                    }

                case CanonicalBoolean b:
                    Ascii(b.Value ? "true"u8 : "false"u8);
                    break;
                case CanonicalArray a:
                    Byte((byte)'[');
                    for (var n = 0; n < a.Items.Length; n++)
                    {
                        if (n > 0)
                        {
                            Byte((byte)',');
                        }

                        Write(a.Items[n]);
                    }

                    Byte((byte)']');
                    break;
                case CanonicalObject o:
                    Byte((byte)'{');
                    var members = o.Members.AsSpan();
                    for (var n = 0; n < members.Length; n++)
                    {
                        if (n > 0)
                        {
                            Byte((byte)',');
                        }

                        String(members[n].Key);
                        Byte((byte)':');
                        Write(members[n].Value);
                    }

                    Byte((byte)'}');
                    break;
                default:
                    throw new ArgumentException($"unsupported value {value.GetType().Name}", nameof(value));
            }
        }

        private void String(string value)
        {
            Byte((byte)'"');
            var rest = value.AsSpan();
            while (true)
            {
                var i = rest.IndexOfAny(NeedsEscape);
                Utf8(i < 0 ? rest : rest[..i]);
                if (i < 0)
                {
                    break;
                }

                var c = rest[i];
                switch (c)
                {
                    case '"':
                        Ascii("\\\""u8);
                        break;
                    case '\\':
                        Ascii("\\\\"u8);
                        break;
                    case '\b':
                        Ascii("\\b"u8);
                        break;
                    case '\f':
                        Ascii("\\f"u8);
                        break;
                    case '\n':
                        Ascii("\\n"u8);
                        break;
                    case '\r':
                        Ascii("\\r"u8);
                        break;
                    case '\t':
                        Ascii("\\t"u8);
                        break;
                    default:
                        Ascii("\\u00"u8);
                        Byte((byte)"0123456789abcdef"[c >> 4]);
                        Byte((byte)"0123456789abcdef"[c & 0xF]);
                        break;
                }

                rest = rest[(i + 1)..];
            }

            Byte((byte)'"');
        }

        private void Utf8(ReadOnlySpan<char> text)
        {
            if (text.IsEmpty)
            {
                return;
            }

            var span = Reserve(StrictUtf8.GetMaxByteCount(text.Length));
            _length += StrictUtf8.GetBytes(text, span);
        }
    }
}
