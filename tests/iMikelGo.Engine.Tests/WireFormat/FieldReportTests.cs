using System.Numerics;
using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using Xunit;

namespace IMikelGo.Engine.Tests.WireFormat;

/// <summary>Field reports F08, F10 and F12 (../shared/cases/field-reports.md) in the engine's own terms.</summary>
public sealed class FieldReportTests
{
    private static readonly BigInteger P256Order = BigInteger.Parse(
        "0FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", System.Globalization.NumberStyles.HexNumber);

    [Fact]
    public void F10_seven_digit_ticks_are_hashed_at_microseconds_and_a_change_in_event_4_fails_exactly_there()
    {
        using var world = new World();
        world.Time.Now = new DateTimeOffset(2026, 9, 3, 16, 0, 0, TimeSpan.Zero).AddTicks(1_234_567);
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var d1 = world.WriteEach(world.D1, [World.Held(3, "eins"), World.Held(10, "zwei"), World.Held(17, "drei"), World.Held(24, "vier"), World.Held(1, "fünf")]);
        d1[0].Event.Time.WallMicros.Should().Be(1_788_451_202_123_456, "16:00:02.1234567 is stored as …123456 µs, before hashing");

        // D1 → store (text lines) → relay → D2: the body bytes and hashes survive every hop unchanged.
        var lines = setup.Concat(d1).Select(e => e.ToLine()).ToList();
        var relayed = lines.Select(SignedEvent.ParseLine).Select(e => e.ToLine()).ToList();
        relayed.Should().Equal(lines);
        foreach (var e in d1)
        {
            SignedEvent.ParseBody([.. e.Event.Body]).Event.Hash.Should().Be(e.Event.Hash);
        }

        var d2 = new Ledger();
        d2.IngestLines(relayed).Should().Match<IngestReport>(r => r.IsClean && r.Applied.Length == 9);

        // One character changed in D1's event 4 (the author's bytes, hash recomputed): 1..3 apply, 4 fails, 5 waits.
        var forged = SignedEvent.ParseBody(Encoding.UTF8.GetBytes(
            Encoding.UTF8.GetString(d1[3].Event.Body.AsSpan()).Replace("vier", "vieR", StringComparison.Ordinal))).WithCheckpoint(d1[3].Checkpoint);
        var tampered = lines.ToList();
        tampered[setup.Count + 3] = forged.ToLine();
        var r = new Ledger();
        var report = r.IngestLines(tampered);
        report.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(f =>
            f.Kind == RefusalKind.BadSignature && f.Subject.StartsWith($"{world.D1.Replica}#4 ", StringComparison.Ordinal));
        report.Applied.Where(e => e.Replica == world.D1.Replica).Select(e => e.Seq).Should().Equal(1, 2, 3);
        r.Held().Should().ContainSingle().Which.Should().Match<Hold>(h => h.Subject.StartsWith($"{world.D1.Replica}#5 ", StringComparison.Ordinal));

        // The same change without recomputing the line's hash is refused at the hash step, naming event 4.
        var altered = lines.ToList();
        altered[setup.Count + 3] = lines[setup.Count + 3].Replace("vier", "vieR", StringComparison.Ordinal);
        var r2 = new Ledger();
        var report2 = r2.IngestLines(altered);
        report2.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(f =>
            f.Kind == RefusalKind.HashMismatch && f.Subject == $"line {setup.Count + 4}" && f.Reason.Contains($"{world.D1.Replica}#4 "));
        report2.Applied.Where(e => e.Replica == world.D1.Replica).Select(e => e.Seq).Should().Equal(1, 2, 3);
    }

    [Fact]
    public void F12_a_malleated_signature_is_valid_but_the_copy_is_a_duplicate_of_the_same_event()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var original = world.Write(world.D1, [new LessonCancelled(World.Occurrence(3), CancellationReason.TeacherIll, true, null)])[0];

        var sig = original.Checkpoint.AsSpan();
        var s = new BigInteger(sig[32..], isUnsigned: true, isBigEndian: true);
        var twin = new byte[64];
        sig[..32].CopyTo(twin);
        (P256Order - s).ToByteArray(isUnsigned: true, isBigEndian: true).CopyTo(twin.AsSpan(64 - (P256Order - s).GetByteCount(isUnsigned: true)));
        twin.Should().NotEqual(sig.ToArray());
        var statement = Checkpoint.Statement(World.Account, world.D1.Replica, original.Event.Seq, original.Event.Hash);
        SignatureVerifier.Verify(world.D1Key.PublicKey.AsSpan(), statement, twin).Should().BeTrue("ECDSA accepts (r, n − s)");
        var copy = SignedEvent.ParseLine(original.WithCheckpoint([.. twin]).ToLine());
        copy.Event.Hash.Should().Be(original.Event.Hash, "identity is the unsigned body's hash");

        foreach (var order in new[] { new[] { original, copy }, [copy, original] })
        {
            var r = new Ledger();
            r.Ingest(setup);
            var first = r.Ingest([order[0]]);
            var second = r.Ingest([order[1]]);
            first.Applied.Should().ContainSingle();
            second.Applied.Should().BeEmpty();
            second.Duplicates.Should().Be(1);
            second.Refused.Should().BeEmpty();
            r.Applied.Count(e => e.Replica == world.D1.Replica).Should().Be(1, "R stores one event");
        }
    }

    [Fact]
    public void F08_a_restored_device_writing_seq_4_again_is_a_fork_that_quarantines_it_and_others_keep_applying()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        world.D2.Observe(setup[^1].Event.Clock);
        var first3 = world.WriteEach(world.D1, [World.Held(3, "1"), World.Held(10, "2"), World.Held(17, "3")]);
        var backup = world.D1.Position;
        var next2 = world.WriteEach(world.D1, [World.Held(24, "4"), World.Held(1, "5")]);
        var d1 = first3.Concat(next2).ToList();

        // The clone: D1's key and D1's position at seq 3, restored from a backup.
        var clone = new ReplicaWriter(World.Account, world.D1Key, world.Time, backup);
        var cloned4 = world.Write(clone, [new LessonCancelled(World.Occurrence(24), CancellationReason.StudentIll, false, "vom Backup")])[0];
        cloned4.Event.Seq.Should().Be(4);
        cloned4.Event.Hash.Should().NotBe(d1[3].Event.Hash);

        var r = new Ledger();
        r.Ingest([.. setup, .. d1]).IsClean.Should().BeTrue();
        var report = r.Ingest([cloned4]);
        report.Applied.Should().BeEmpty();
        var fork = report.Forks.Should().ContainSingle().Subject;
        fork.Replica.Should().Be(world.D1.Replica);
        fork.Seq.Should().Be(4);
        fork.First.Event.Hash.Should().Be(d1[3].Event.Hash);
        fork.Second.Event.Hash.Should().Be(cloned4.Event.Hash);
        foreach (var proof in new[] { fork.First, fork.Second })
        {
            SignatureVerifier.Verify(world.D1Key.PublicKey.AsSpan(),
                Checkpoint.Statement(World.Account, world.D1.Replica, proof.Event.Seq, proof.Event.Hash), proof.Checkpoint.AsSpan())
                .Should().BeTrue("both copies are authentic: the fork is proof");
        }

        r.Forks.Should().ContainSingle();

        var d1Later = world.Write(world.D1, [World.Held(8, "6")]);
        var d2Event = world.Write(world.D2, [World.Held(8, "d2 still works")]);
        var after = r.Ingest([.. d1Later, .. d2Event]);
        after.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(f =>
            f.Kind == RefusalKind.Quarantined && f.Reason.Contains("seq 4"));
        after.Applied.Should().ContainSingle().Which.Replica.Should().Be(world.D2.Replica);
    }
}
