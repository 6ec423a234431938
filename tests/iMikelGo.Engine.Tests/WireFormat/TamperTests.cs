using FluentAssertions;
using IMikelGo.Engine.Canonical;
using IMikelGo.Engine.Chains;
using Xunit;

namespace IMikelGo.Engine.Tests.WireFormat;

/// <summary>
/// Every single-byte change of a log line or of a bare body is refused or never applied. The altered copy is
/// ingested into a ledger that already holds the rest of the log, so it is the only thing that could make progress.
/// </summary>
public sealed class TamperTests
{
    /// <summary>School 1..4 (checkpoint on 4); d1 1..4 (checkpoints on 2 and 4); d2 1 (checkpoint).</summary>
    internal static List<SignedEvent> Log(World world)
    {
        var log = new List<SignedEvent>(world.SchoolSetup());
        world.D1.Observe(log[^1].Event.Clock);
        world.D2.Observe(log[^1].Event.Clock);
        log.AddRange(world.Write(world.D1, [World.Held(3, "Tonleitern"), World.Held(10, "Etüde")]));
        log.AddRange(world.Write(world.D1, [World.Held(17, "Sonatine"), World.Held(24, "Vorspiel ♪")]));
        log.AddRange(world.Write(world.D2, [World.Held(1, "x")]));
        return log;
    }

    private static IEnumerable<byte[]> Variants(byte[] original)
    {
        for (var i = 0; i < original.Length; i++)
        {
            var flipped = (byte[])original.Clone();
            flipped[i] ^= 0x01;
            yield return flipped;

            var replaced = (byte[])original.Clone();
            replaced[i] = original[i] == (byte)'7' ? (byte)'A' : (byte)'7'; // another printable character
            yield return replaced;
        }
    }

    [Fact]
    public void Every_single_byte_change_of_any_log_line_is_refused_and_nothing_is_applied()
    {
        using var world = new World();
        var log = Log(world);
        var total = 0;
        for (var index = 0; index < log.Count; index++)
        {
            // One ledger per line holds the rest of the log; a refused copy leaves nothing behind, so the
            // altered copies of this line can share it (each ingest call is checked on its own).
            var ledger = new Ledger();
            ledger.Ingest(log.Where((_, n) => n != index));
            var before = ledger.AppliedCount;
            var original = log[index].ToLineBytes();
            foreach (var altered in Variants(original))
            {
                total++;
                SignedEvent parsed;
                try
                {
                    parsed = SignedEvent.ParseLine(altered);
                }
                catch (WireFormatException)
                {
                    continue; // refused at parse: Malformed or HashMismatch
                }

                var report = ledger.Ingest([parsed]);
                report.Applied.Should().BeEmpty($"line {index} altered to {Lines.Text(altered)}");
                ledger.AppliedCount.Should().Be(before);
                report.Refused.Should().NotBeEmpty($"a parseable altered line {index} must be refused: {Lines.Text(altered)}");
            }

            ledger.Ingest([log[index]]).Applied.Should().NotBeEmpty("the genuine line still applies after its altered copies");
            ledger.AppliedCount.Should().Be(log.Count);
        }

        total.Should().BeGreaterThan(log.Count * 2 * 400);
    }

    [Fact]
    public void Every_single_byte_change_of_a_bare_body_fails_to_parse_or_is_never_applied()
    {
        using var world = new World();
        var log = Log(world);
        for (var index = 0; index < log.Count; index++)
        {
            // Altered bodies are all different events without a checkpoint; none can link below a genuine
            // checkpoint, so they can share one ledger holding the rest of the log.
            var ledger = new Ledger();
            ledger.Ingest(log.Where((_, n) => n != index));
            var before = ledger.AppliedCount;
            var held = new List<string>();
            foreach (var altered in Variants([.. log[index].Event.Body]))
            {
                SignedEvent parsed;
                try
                {
                    parsed = SignedEvent.ParseBody(altered);
                }
                catch (WireFormatException)
                {
                    continue;
                }

                parsed.Event.Hash.Should().NotBe(log[index].Event.Hash);
                ledger.Ingest([parsed]).Applied.Should().BeEmpty($"body {index} altered to {Lines.Text(altered)}");
                ledger.AppliedCount.Should().Be(before);
                held.Add(parsed.Event.Describe());
            }

            ledger.Held().Select(h => h.Subject).Should().Contain(held, "altered bodies are held, never applied");

            ledger.Ingest([log[index]]).Applied.Should().NotBeEmpty("the genuine event still applies after its altered copies");
            foreach (var e in log)
            {
                ledger.Find(e.Event.Account, e.Event.Replica, e.Event.Seq)!.Event.Hash.Should().Be(e.Event.Hash);
            }
        }
    }

    [Fact]
    public void A_refused_line_loses_nothing_around_it()
    {
        using var world = new World();
        var log = Log(world);
        var lines = log.Select(e => e.ToLine()).ToList();
        var d1Head = log.FindIndex(e => e.Event.Replica == world.D1.Replica && e.Event.Seq == 4);
        var good = lines[d1Head];
        lines[d1Head] = good.Replace("Vorspiel", "Vorspiek", StringComparison.Ordinal);

        var ledger = new Ledger();
        var report = ledger.IngestLines(lines);
        report.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(r =>
            r.Kind == RefusalKind.HashMismatch && r.Subject == $"line {d1Head + 1}" && r.Reason.Contains($"{world.D1.Replica}#4"));
        report.Applied.Should().HaveCount(log.Count - 2, "school 1..4, d1 1..2 and d2 1 apply; d1 3 waits for the checkpoint on the refused d1 4");
        ledger.Held().Should().ContainSingle().Which.Kind.Should().Be(HoldKind.AwaitingCheckpoint);

        ledger.IngestLines([good]).Applied.Should().HaveCount(2, "the genuine line still applies, with the event it covers");
        ledger.Held().Should().BeEmpty();
    }

    [Fact]
    public void An_altered_event_with_a_recomputed_hash_fails_at_its_signature_and_breaks_nothing_else()
    {
        using var world = new World();
        var log = Log(world);
        var head = log.Single(e => e.Event.Replica == world.D1.Replica && e.Event.Seq == 4);
        var body = Lines.Text(head.Event.Body.AsSpan()).Replace("Vorspiel", "Vorspiek", StringComparison.Ordinal);
        var forged = SignedEvent.ParseBody(System.Text.Encoding.UTF8.GetBytes(body)).WithCheckpoint(head.Checkpoint);
        var line = forged.ToLine(); // a consistent line: the attacker recomputed "hash"

        var ledger = new Ledger();
        var report = ledger.IngestLines([.. log.Where(e => e != head).Select(e => e.ToLine()), line]);
        report.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(r =>
            r.Kind == RefusalKind.BadSignature && r.Subject.StartsWith($"{world.D1.Replica}#4 ", StringComparison.Ordinal));
        ledger.Find(World.Account, world.D1.Replica, 3).Should().BeNull();
        ledger.Find(World.Account, world.D2.Replica, 1).Should().NotBeNull();
        ledger.IngestLines([head.ToLine()]).Applied.Select(e => e.Seq).Should().Equal(3, 4);
    }
}
