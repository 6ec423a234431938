using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using Xunit;

namespace IMikelGo.Cli.Tests;

/// <summary>One demo log shared by the tests (generated once).</summary>
public sealed class DemoLogFixture : IDisposable
{
    public DemoLogFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "imikelgo-cli-tests-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        Log = Path.Combine(Directory, "school.jsonl");
        var (code, _, err) = CliTests.Invoke("log", "demo", "--seed", "42", "--replicas", "4", "--events", "600", "--out", Log);
        code.Should().Be(0, err);
        Lines = File.ReadAllLines(Log);
    }

    public string Directory { get; }

    public string Log { get; }

    public string[] Lines { get; }

    public string Write(string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(Directory, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

public sealed class CliTests(DemoLogFixture demo) : IClassFixture<DemoLogFixture>
{
    internal static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = Cli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string DigestOf(string path)
    {
        var (code, json, err) = Invoke("log", "replay", path, "--json");
        code.Should().Be(0, err);
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("digest").GetString()!;
    }

    [Fact]
    public void A_usage_error_points_to_the_help_of_the_command_that_was_mistyped()
    {
        var (code, _, err) = Invoke("school", "init", "--school-id", "x");
        code.Should().Be(LogCheck.ExitUsage);
        err.Should().Contain("--school-id").And.EndWith("Run 'imikelgo school init --help' for usage." + Environment.NewLine);
        Invoke("device", "cancel", "--lesson", "a@2026-09-21", "--reason", "sick").Err.Should().Contain("Run 'imikelgo device cancel --help' for usage.");
        Invoke("bogus").Err.Should().Contain("Run 'imikelgo --help' for usage.");
    }

    [Fact]
    public void Demo_is_deterministic_per_seed()
    {
        var again = Path.Combine(demo.Directory, "again.jsonl");
        var other = Path.Combine(demo.Directory, "other.jsonl");
        Invoke("log", "demo", "--seed", "42", "--replicas", "4", "--events", "600", "--out", again).Code.Should().Be(0);
        Invoke("log", "demo", "--seed", "43", "--replicas", "4", "--events", "600", "--out", other).Code.Should().Be(0);

        File.ReadAllBytes(again).Should().Equal(File.ReadAllBytes(demo.Log));
        File.ReadAllBytes(other).Should().NotEqual(File.ReadAllBytes(demo.Log));
    }

    [Fact]
    public void Demo_writes_the_requested_number_of_events_with_conflicts_and_prints_a_summary()
    {
        demo.Lines.Should().HaveCount(600);
        var (code, output, _) = Invoke("log", "demo", "--seed", "9", "--replicas", "3", "--events", "300", "--out", Path.Combine(demo.Directory, "s9.jsonl"));
        code.Should().Be(0);
        output.Should().Contain("wrote 300 events").And.Contain("3 replicas").And.Contain("conflicts");
        var types = demo.Lines.Select(l => SignedEvent.ParseLine(l).Event.TypeName).ToHashSet();
        types.Should().Contain(["account.opened", "device.enrolled", "series.published", "holidays.declared", "student.enrolled",
            "lesson.held", "student.absent", "lesson.cancelled", "lesson.rescheduled"]);
    }

    [Fact]
    public void Verify_accepts_the_demo_log()
    {
        var (code, output, err) = Invoke("log", "verify", demo.Log);
        code.Should().Be(0, err);
        output.Should().Contain("OK").And.Contain("600 applied");
    }

    [Fact]
    public void Verify_refuses_a_line_with_one_flipped_byte_and_names_it()
    {
        var index = demo.Lines.Length / 2;
        var lines = (string[])demo.Lines.Clone();
        var bytes = Encoding.UTF8.GetBytes(lines[index]);
        bytes[bytes.Length / 2] ^= 0x01;
        lines[index] = Encoding.UTF8.GetString(bytes);
        var (code, _, err) = Invoke("log", "verify", demo.Write("flipped.jsonl", lines));
        code.Should().Be(3);
        err.Should().Contain($"line {index + 1}:");
    }

    [Theory]
    [InlineData(0.25)]
    [InlineData(0.5)]
    [InlineData(0.75)]
    public void Verify_refuses_a_checkpoint_stripped_of_its_signature_with_an_altered_body(double where)
    {
        var lines = (string[])demo.Lines.Clone();
        var parsed = lines.Select(l => SignedEvent.ParseLine(l)).ToArray();
        var lastOfChain = parsed.GroupBy(p => p.Event.Replica).ToDictionary(g => g.Key, g => g.Max(p => p.Event.Seq));
        var index = Enumerable.Range((int)(lines.Length * where), lines.Length)
            .First(i => parsed[i].IsCheckpoint && parsed[i].Event.Seq < lastOfChain[parsed[i].Event.Replica]);

        var body = Encoding.UTF8.GetString(parsed[index].Event.Body.AsSpan());
        var wall = body.IndexOf("\"wall\":", StringComparison.Ordinal) + 7;
        var end = wall;
        while (char.IsAsciiDigit(body[end]))
        {
            end++;
        }

        var altered = body[..(end - 1)] + (char)('0' + ((body[end - 1] - '0' + 1) % 10)) + body[end..];
        var hash = EventHash.Of(Encoding.UTF8.GetBytes(altered));
        lines[index] = "{\"event\":" + altered + ",\"hash\":\"" + hash.Hex + "\"}";

        var (code, _, err) = Invoke("log", "verify", demo.Write("stripped.jsonl", lines));
        code.Should().Be(3, err);
        err.Should().Contain("INVALID").And.Contain("BrokenLink");
    }

    [Fact]
    public void Verify_reports_a_gap_when_a_middle_line_of_one_chain_is_missing()
    {
        var index = demo.Lines.Length / 2;
        var lines = demo.Lines.Where((_, i) => i != index).ToArray();
        var (code, _, err) = Invoke("log", "verify", demo.Write("gap.jsonl", lines));
        code.Should().Be(4, err);
        err.Should().Contain("INCOMPLETE").And.Contain("Gap");
    }

    [Fact]
    public void Verify_refuses_a_fork_signed_by_the_author()
    {
        var account = new AccountId("k-fork");
        using var key = ReplicaKey.Create();
        var honest = new Replica(account, key);
        var twin = new Replica(account, key);
        honest.Record(new AccountOpened("Musikschule A", "Anna", key.PublicKey)).Error.Should().BeNull();
        twin.Record(new AccountOpened("Musikschule B", "Anna", key.PublicKey)).Error.Should().BeNull();
        var lines = honest.Ledger.Export(account).Concat(twin.Ledger.Export(account)).Select(e => e.ToLine());

        var (code, _, err) = Invoke("log", "verify", demo.Write("fork.jsonl", lines));
        code.Should().Be(3);
        err.Should().Contain("Fork");
    }

    [Fact]
    public void Replay_digest_is_the_same_for_any_order_and_duplication()
    {
        var rng = new Random(1);
        var shuffled = demo.Lines.Concat(demo.Lines.Where((_, i) => i % 3 == 0)).OrderBy(_ => rng.Next()).ToArray();
        var reversed = demo.Lines.Reverse().Concat(demo.Lines.Take(50)).ToArray();

        var digest = DigestOf(demo.Log);
        digest.Should().MatchRegex("^[0-9a-f]{64}$");
        DigestOf(demo.Write("shuffled.jsonl", shuffled)).Should().Be(digest);
        DigestOf(demo.Write("reversed.jsonl", reversed)).Should().Be(digest);
    }

    [Fact]
    public void Replay_json_is_one_object_with_a_string_digest_lessons_and_conflicts()
    {
        var (code, json, _) = Invoke("log", "replay", demo.Log, "--json");
        code.Should().Be(0);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        root.ValueKind.Should().Be(JsonValueKind.Object);
        root.GetProperty("digest").ValueKind.Should().Be(JsonValueKind.String);
        root.GetProperty("lessons").GetArrayLength().Should().BeGreaterThan(0);
        root.GetProperty("conflicts").GetArrayLength().Should().BeGreaterThan(0);
        var lesson = root.GetProperty("lessons")[0];
        lesson.GetProperty("subject").GetString().Should().NotBeNullOrEmpty();
        lesson.GetProperty("status").GetString().Should().BeOneOf("scheduled", "held", "cancelled", "moved");
    }

    [Fact]
    public void Replay_text_shows_lessons_conflicts_and_the_digest()
    {
        var (code, output, _) = Invoke("log", "replay", demo.Log);
        code.Should().Be(0);
        output.Should().Contain("Lessons (").And.Contain("Conflicts (").And.Contain("digest: " + DigestOf(demo.Log));
    }

    [Fact]
    public void Replay_of_a_tampered_log_exits_3_and_prints_nothing()
    {
        var lines = (string[])demo.Lines.Clone();
        lines[10] = lines[10].Replace("\"seq\":", "\"seq\": ", StringComparison.Ordinal);
        var (code, output, err) = Invoke("log", "replay", demo.Write("tampered.jsonl", lines), "--json");
        code.Should().Be(3);
        output.Should().BeEmpty();
        err.Should().Contain("line 11:");
    }

    [Theory]
    [InlineData("log", "verify")]
    [InlineData("log", "verify", "a", "b")]
    [InlineData("log", "demo", "--seed", "1")]
    [InlineData("log", "demo", "--out", "x.jsonl", "--replicas", "1")]
    [InlineData("log", "demo", "--out", "x.jsonl", "--events", "abc")]
    [InlineData("log", "nonsense")]
    [InlineData("--frobnicate")]
    public void Usage_errors_exit_2_with_a_message_on_stderr(params string[] args)
    {
        var (code, _, err) = Invoke(args);
        code.Should().Be(2);
        err.Should().Contain("error");
    }

    [Fact]
    public void An_unreadable_file_exits_2()
    {
        var (code, _, err) = Invoke("log", "verify", Path.Combine(demo.Directory, "missing.jsonl"));
        code.Should().Be(2);
        err.Should().Contain("cannot read");
    }

    [Fact]
    public void A_directory_given_as_the_log_is_named_as_such()
    {
        var (code, _, err) = Invoke("log", "verify", demo.Directory);
        code.Should().Be(2);
        err.Should().Contain("it is a directory").And.NotContain("denied");
    }

    [Fact]
    public void Version_and_help_exit_0()
    {
        Invoke("--version").Code.Should().Be(0);
        var (code, output, _) = Invoke("log", "verify", "--help");
        code.Should().Be(0);
        output.Should().Contain("FILE").And.Contain("Exit 0");
    }

    [Fact]
    public void Deterministic_signer_matches_rfc6979_a25_and_verifies()
    {
        var d = Convert.FromHexString("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
        var signature = DeterministicSigner.Sign(d, Encoding.ASCII.GetBytes("sample"));
        Convert.ToHexString(signature).Should().Be(
            "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716" +
            "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
        using var key = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
        SignatureVerifier.Verify(key.ExportSubjectPublicKeyInfo(), Encoding.ASCII.GetBytes("sample"), signature).Should().BeTrue();
    }
}
