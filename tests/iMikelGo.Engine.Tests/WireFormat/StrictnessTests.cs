using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Canonical;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using Xunit;

namespace IMikelGo.Engine.Tests.WireFormat;

public sealed class StrictnessTests
{
    private static string Decode(string json) => Decode(Encoding.UTF8.GetBytes(json));

    private static string Decode(byte[] utf8)
    {
        var act = () => CanonicalJson.Decode(utf8);
        return act.Should().Throw<WireFormatException>().Which.Message;
    }

    [Theory]
    [InlineData("{\"a\":1, \"b\":2}", "canonical")]
    [InlineData(" {\"a\":1}", "canonical")]
    [InlineData("{\"a\":1}\n", "canonical")]
    [InlineData("{\"b\":1,\"a\":2}", "canonical")]
    [InlineData("{\"a\":1,\"a\":2}", "duplicate key \"a\"")]
    [InlineData("{\"a\":01}", "malformed JSON")]
    [InlineData("{\"a\":-0}", "-0 is not canonical")]
    [InlineData("{\"a\":+1}", "malformed JSON")]
    [InlineData("{\"a\":null}", "null is not allowed")]
    [InlineData("{\"a\":9007199254740992}", "out of range")]
    [InlineData("{\"a\":-9007199254740992}", "out of range")]
    [InlineData("{\"a\":123456789012345678901234567890}", "out of range")]
    [InlineData("{\"a\":\"\\u0041\"}", "canonical")]
    [InlineData("{\"a\":\"\\/\"}", "canonical")]
    [InlineData("{\"a\":\"\\u001F\"}", "canonical")]
    [InlineData("{\"a\":\"\\ud800\"}", "text")]
    [InlineData("{\"a\":\"\\udc00x\"}", "text")]
    [InlineData("{\"a\":\"Mu\u0308ller\"}", "$.a: string is not NFC-normalised")]
    [InlineData("{\"Mu\u0308ller\":1}", "canonical")]
    [InlineData("{\"a\":1}{\"b\":2}", "malformed JSON")]
    [InlineData("", "malformed JSON")]
    [InlineData("{\"a\":tru}", "malformed JSON")]
    [InlineData("{\"a\":1,}", "malformed JSON")]
    [InlineData("/*c*/{}", "malformed JSON")]
    public void Non_canonical_or_malformed_documents_are_refused_with_a_reason(string json, string reason)
    {
        Decode(json).Should().Contain(reason);
    }

    [Theory]
    [InlineData("1e-5")]
    [InlineData("0.00001")]
    [InlineData("1E-5")]
    [InlineData("-0.0")]
    [InlineData("1e21")]
    [InlineData("1.0")]
    [InlineData("1E+2")]
    public void Floats_are_refused_at_decode_F11(string number)
    {
        Decode($"{{\"feeAdjustment\":{number}}}").Should().Contain("$.feeAdjustment: floating-point numbers are not allowed");
    }

    [Fact]
    public void The_value_model_has_no_float()
    {
        typeof(CanonicalValue).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(CanonicalValue)))
            .Select(t => t.Name).Should().BeEquivalentTo("CanonicalString", "CanonicalInteger", "CanonicalBoolean", "CanonicalArray", "CanonicalObject");
        typeof(ObjectBuilder).GetMethods().Where(m => m.Name == "Add").SelectMany(m => m.GetParameters()).Select(p => p.ParameterType)
            .Should().NotContain([typeof(double), typeof(float), typeof(decimal)]);
        var act = () => new CanonicalInteger(CanonicalInteger.MaxMagnitude + 1);
        act.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void Invalid_utf8_is_refused()
    {
        byte[][] inputs =
        [
            [.. "{\"a\":\""u8, 0xC3, 0x28, .. "\"}"u8],          // bad continuation
            [.. "{\"a\":\""u8, 0xC0, 0xAF, .. "\"}"u8],          // overlong '/'
            [.. "{\"a\":\""u8, 0xED, 0xA0, 0x80, .. "\"}"u8],    // encoded surrogate
            [.. "{\"a\":\""u8, 0xFF, .. "\"}"u8],
            [0xEF, 0xBB, 0xBF, .. "{\"a\":1}"u8],                // BOM
        ];
        foreach (var input in inputs)
        {
            Decode(input).Should().NotBeNullOrEmpty();
        }
    }

    [Fact]
    public void Oversized_documents_and_deep_nesting_are_refused()
    {
        var big = Encoding.UTF8.GetBytes("{\"a\":\"" + new string('x', CanonicalJson.MaxDocumentBytes) + "\"}");
        Decode(big).Should().Contain("exceeds the limit");
        var deep = new string('[', CanonicalJson.MaxDepth + 1) + new string(']', CanonicalJson.MaxDepth + 1);
        Decode(deep).Should().Contain("depth");
        var ok = new string('[', CanonicalJson.MaxDepth) + new string(']', CanonicalJson.MaxDepth);
        CanonicalJson.Decode(Encoding.UTF8.GetBytes(ok)).Should().BeOfType<CanonicalArray>();
    }

    [Fact]
    public void Builder_normalises_to_nfc_and_refuses_lone_surrogates()
    {
        new CanonicalString("Mu\u0308ller").Value.Should().Be("Müller");
        var act = () => new CanonicalString("a\ud800b");
        act.Should().Throw<ArgumentException>();
        var dup = () => new CanonicalObject([new("Mu\u0308ller", CanonicalBoolean.True), new("Müller", CanonicalBoolean.False)]);
        dup.Should().Throw<ArgumentException>().WithMessage("*duplicate key*");
    }

    // ---- envelope and payload: start from a valid golden body and change one thing ----
    private static string GoldenBody(string name) => GoldenVectors.Build().Single(v => v.Name == name).Text;

    private static string ParseBodyError(string body)
    {
        var act = () => SignedEvent.ParseBody(Encoding.UTF8.GetBytes(body));
        return act.Should().Throw<WireFormatException>().Which.Message;
    }

    [Theory]
    [InlineData("\"prev\":\"6cfb1cffdabbbd14a852f40ee318ce38bc26248a23a7b30c15d719ad7ec4360a\"", "\"prev\":\"6CFB1CFFDABBBD14A852F40EE318CE38BC26248A23A7B30C15D719AD7EC4360A\"", "$.prev: a hash is 64 lower-case hex digits")]
    [InlineData("\"prev\":\"6cfb1cffdabbbd14a852f40ee318ce38bc26248a23a7b30c15d719ad7ec4360a\"", "\"prev\":\"6cfb1cffdabbbd14a852f40ee318ce38bc26248a23a7b30c15d719ad7ec436\"", "$.prev: a hash is 64 lower-case hex digits")]
    [InlineData("\"typeVersion\":1", "\"typeVersion\":2", "event type \"student.absent\" has no version 2 known to this engine")]
    [InlineData("\"type\":\"student.absent\"", "\"type\":\"student.absent2\"", "unknown event type \"student.absent2\"")]
    [InlineData("\"v\":1", "\"v\":2", "$.v: envelope version 2 is not supported")]
    [InlineData("\"student\":\"s2\"", "\"student\":\"s2\",\"zzz\":1", "$.payload.zzz: unknown member")]
    [InlineData("\"account\":\"k-anna\"", "\"aaa\":true,\"account\":\"k-anna\"", "$.aaa: unknown member")]
    [InlineData("\"seq\":2", "\"seq\":9007199254740992", "$.seq: integer out of range")]
    [InlineData("\"seq\":2", "\"seq\":3", "$.clock: the author's own entry must equal seq 3")]
    [InlineData("\"excused\":false", "\"excused\":0", "$.payload.excused: expected true or false")]
    [InlineData("\"counter\":0", "\"counter\":-1", "$.time.counter: -1 is outside")]
    [InlineData("\"student\":\"s2\"", "\"student\":\"S2\"", "$.payload.student: \"S2\" is not a valid student id")]
    [InlineData("\"occurrence\":\"piano-1@2026-09-10\"", "\"occurrence\":\"piano-1@2026-9-10\"", "$.payload.occurrence")]
    [InlineData(",\"reason\":\"Fieber 🤒 – keine Nachricht\"", "", "")] // optional member omitted: valid, see below
    public void Envelope_and_payload_faults_are_named(string from, string to, string reason)
    {
        var body = GoldenBody("d1-2-student-absent");
        body.Should().Contain(from);
        var changed = body.Replace(from, to, StringComparison.Ordinal);
        if (reason.Length == 0)
        {
            SignedEvent.ParseBody(Encoding.UTF8.GetBytes(changed)).Event.Payload.Should().BeOfType<StudentAbsent>().Which.Reason.Should().BeNull();
            return;
        }

        ParseBodyError(changed).Should().Contain(reason);
    }

    [Fact]
    public void Envelope_fields_missing_or_of_the_wrong_type_are_named()
    {
        var body = GoldenBody("d1-2-student-absent");
        ParseBodyError(body.Replace("\"seq\":2,", "", StringComparison.Ordinal)).Should().Contain("$.seq: required member is missing");
        ParseBodyError(body.Replace("\"seq\":2", "\"seq\":\"2\"", StringComparison.Ordinal)).Should().Contain("$.seq: expected an integer");
        ParseBodyError(body.Replace("\"seq\":2", "\"seq\":0", StringComparison.Ordinal)).Should().Contain("$.seq: 0 is outside");
        ParseBodyError(body.Replace("\"payload\":{", "\"payload\":{\"a\":null,", StringComparison.Ordinal)).Should().Contain("null is not allowed");
        ParseBodyError(body.Replace("\"wall\":1788451203123456", "\"wall\":1788451203.123456", StringComparison.Ordinal)).Should().Contain("$.time.wall: floating-point");
    }

    [Fact]
    public void Base64_keys_and_checkpoints_must_be_canonical()
    {
        var body = GoldenBody("school-1-account-opened");
        const string key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEbqjqw336tyTxTvYYzkS4Sj3NKnR2nkZI3k7aFGvcKeW2ukWM8zpD9+PcSfok2I8+KHUHKatr9bmzp2SjigGr+A==";
        body.Should().Contain(key);
        string[] bad =
        [
            key.TrimEnd('='),                       // unpadded
            key[..^1],                              // mis-padded
            key[..^3] + "B==",                      // non-zero unused bits (non-canonical)
            key.Replace('+', '-'),                  // URL-safe alphabet
            key[..10] + "\\n" + key[10..],          // escaped newline inside
            key + "====",                           // extra padding
        ];
        foreach (var b in bad)
        {
            ParseBodyError(body.Replace(key, b, StringComparison.Ordinal)).Should().Contain("$.payload.schoolKey");
        }

        using var world = new World();
        var line = world.School.Append(world.Opened()).ToLine();
        var sig = System.Text.RegularExpressions.Regex.Match(line, "\"checkpoint\":\"([^\"]+)\"").Groups[1].Value;
        sig.Should().HaveLength(88);
        string[] badSigs = [sig.TrimEnd('='), sig[..^2] + "B=", sig[..^4], "AAAA"];
        foreach (var b in badSigs)
        {
            var act = () => SignedEvent.ParseLine(line.Replace(sig, b, StringComparison.Ordinal));
            act.Should().Throw<WireFormatException>().Which.Message.Should().Contain("line.checkpoint");
        }
    }

    [Fact]
    public void Log_line_faults_are_named()
    {
        using var world = new World();
        var line = world.School.Append(world.Opened()).ToLine();
        SignedEvent.ParseLine(line).Event.Seq.Should().Be(1);
        var hash = System.Text.RegularExpressions.Regex.Match(line, "\"hash\":\"([0-9a-f]{64})\"").Groups[1].Value;
        var wrong = (hash[0] == '0' ? "1" : "0") + hash[1..];
        var mismatch = () => SignedEvent.ParseLine(line.Replace("\"hash\":\"" + hash, "\"hash\":\"" + wrong, StringComparison.Ordinal));
        mismatch.Should().Throw<WireFormatException>().WithMessage("line.hash:*the event was altered*");
        var upper = () => SignedEvent.ParseLine(line.Replace(hash, hash.ToUpperInvariant(), StringComparison.Ordinal));
        upper.Should().Throw<WireFormatException>().WithMessage("*hash*");
        var extra = () => SignedEvent.ParseLine(line.Replace("{\"checkpoint\"", "{\"a\":1,\"checkpoint\"", StringComparison.Ordinal));
        extra.Should().Throw<WireFormatException>().WithMessage("line.a: unknown member");
        var noHash = () => SignedEvent.ParseLine(System.Text.RegularExpressions.Regex.Replace(line, ",\"hash\":\"[0-9a-f]{64}\"", ""));
        noHash.Should().Throw<WireFormatException>().WithMessage("line.hash: required member is missing");
    }

    [Fact]
    public void Unregistered_event_versions_are_refused_naming_type_and_version()
    {
        var payload = new ObjectBuilder().Add("occurrence", "piano-1@2026-09-03").Build();
        EventCodec.Decode("lesson.held", 1, payload).Should().BeOfType<LessonHeld>();
        var v2 = () => EventCodec.Decode("lesson.held", 2, payload);
        v2.Should().Throw<WireFormatException>().WithMessage("event type \"lesson.held\" has no version 2 known to this engine");
        var unknown = () => EventCodec.Decode("lesson.teleported", 1, payload);
        unknown.Should().Throw<WireFormatException>().WithMessage("unknown event type \"lesson.teleported\"");
        EventCodec.Registered.Should().OnlyHaveUniqueItems().And.Contain(("lesson.held", 1));
    }
}
