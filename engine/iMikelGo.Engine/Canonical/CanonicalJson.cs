using System.Buffers;
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
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, value);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Appends the canonical bytes of <paramref name="value"/> to <paramref name="output"/>.</summary>
    public static void Write(IBufferWriter<byte> output, CanonicalValue value)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(value);
        switch (value)
        {
            case CanonicalString s:
                WriteString(output, s.Value);
                break;
            case CanonicalInteger i:
                WriteAscii(output, i.Value.ToString(CultureInfo.InvariantCulture));
                break;
            case CanonicalBoolean b:
                WriteAscii(output, b.Value ? "true" : "false");
                break;
            case CanonicalArray a:
                WriteByte(output, (byte)'[');
                for (var n = 0; n < a.Items.Length; n++)
                {
                    if (n > 0)
                    {
                        WriteByte(output, (byte)',');
                    }

                    Write(output, a.Items[n]);
                }

                WriteByte(output, (byte)']');
                break;
            case CanonicalObject o:
                WriteByte(output, (byte)'{');
                var first = true;
                foreach (var (key, member) in o.Members)
                {
                    if (!first)
                    {
                        WriteByte(output, (byte)',');
                    }

                    first = false;
                    WriteString(output, key);
                    WriteByte(output, (byte)':');
                    Write(output, member);
                }

                WriteByte(output, (byte)'}');
                break;
            default:
                throw new ArgumentException($"unsupported value {value.GetType().Name}", nameof(value));
        }
    }

    /// <summary>Decodes canonical bytes, refusing anything that is not exactly canonical.</summary>
    /// <exception cref="WireFormatException">The input is malformed or not canonical; the message says why.</exception>
    public static CanonicalValue Decode(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxDocumentBytes)
        {
            throw new WireFormatException($"document of {utf8.Length} bytes exceeds the limit of {MaxDocumentBytes}");
        }

        CanonicalValue value;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read())
            {
                throw new WireFormatException("empty document");
            }

            value = ReadValue(ref reader, "$");
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

        var canonical = Encode(value);
        if (!utf8.SequenceEqual(canonical))
        {
            var at = utf8.CommonPrefixLength(canonical);
            throw new WireFormatException($"not in canonical form (first difference at byte {at}: whitespace, key order, escaping or NFC)");
        }

        return value;
    }

    private static CanonicalValue ReadValue(ref Utf8JsonReader reader, string path)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                {
                    var text = reader.GetString()!;
                    if (!text.IsNormalized(NormalizationForm.FormC))
                    {
                        throw new WireFormatException($"{path}: string is not NFC-normalised");
                    }

                    return new CanonicalString(text);
                }

            case JsonTokenType.Number:
                {
                    var raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan.ToArray();
                    if (Array.Exists(raw, b => b is (byte)'.' or (byte)'e' or (byte)'E'))
                    {
                        throw new WireFormatException($"{path}: floating-point numbers are not allowed (use integers: minutes, cents, microseconds)");
                    }

                    if (!reader.TryGetInt64(out var number) || number is > CanonicalInteger.MaxMagnitude or < -CanonicalInteger.MaxMagnitude)
                    {
                        throw new WireFormatException($"{path}: integer out of range ±(2^53 − 1)");
                    }

                    if (number == 0 && raw[0] == (byte)'-')
                    {
                        throw new WireFormatException($"{path}: -0 is not canonical");
                    }

                    return new CanonicalInteger(number);
                }

            case JsonTokenType.True:
                return CanonicalBoolean.True;
            case JsonTokenType.False:
                return CanonicalBoolean.False;
            case JsonTokenType.Null:
                throw new WireFormatException($"{path}: null is not allowed (omit the member instead)");
            case JsonTokenType.StartArray:
                {
                    var items = new List<CanonicalValue>();
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        items.Add(ReadValue(ref reader, $"{path}[{items.Count}]"));
                    }

                    return new CanonicalArray(items);
                }

            case JsonTokenType.StartObject:
                {
                    var members = new List<KeyValuePair<string, CanonicalValue>>();
                    var seen = new HashSet<string>(StringComparer.Ordinal);
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        var key = reader.GetString()!;
                        if (!seen.Add(key))
                        {
                            throw new WireFormatException($"{path}: duplicate key \"{key}\"");
                        }

                        reader.Read();
                        members.Add(new(key, ReadValue(ref reader, $"{path}.{key}")));
                    }

                    return new CanonicalObject(members);
                }

            default:
                throw new WireFormatException($"{path}: unexpected token {reader.TokenType}");
        }
    }

    private static void WriteString(IBufferWriter<byte> output, string value)
    {
        WriteByte(output, (byte)'"');
        var start = 0;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            string? escape = c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\b' => "\\b",
                '\f' => "\\f",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < ' ' => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
                _ => null,
            };
            if (escape is null)
            {
                continue;
            }

            WriteUtf8(output, value.AsSpan(start, i - start));
            WriteAscii(output, escape);
            start = i + 1;
        }

        WriteUtf8(output, value.AsSpan(start));
        WriteByte(output, (byte)'"');
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static void WriteUtf8(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return;
        }

        var span = output.GetSpan(StrictUtf8.GetMaxByteCount(text.Length));
        output.Advance(StrictUtf8.GetBytes(text, span));
    }

    private static void WriteAscii(IBufferWriter<byte> output, string text)
    {
        var span = output.GetSpan(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            span[i] = (byte)text[i];
        }

        output.Advance(text.Length);
    }

    private static void WriteByte(IBufferWriter<byte> output, byte b)
    {
        output.GetSpan(1)[0] = b;
        output.Advance(1);
    }
}
