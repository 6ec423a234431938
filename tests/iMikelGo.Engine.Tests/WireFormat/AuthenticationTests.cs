using FluentAssertions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using Xunit;

namespace IMikelGo.Engine.Tests.WireFormat;

public sealed class AuthenticationTests
{
    private static Ledger Ingested(IEnumerable<SignedEvent> events)
    {
        var ledger = new Ledger();
        ledger.Ingest(events).Refused.Should().BeEmpty();
        return ledger;
    }

    [Fact]
    public void Events_of_a_device_never_enrolled_are_held_as_unknown_author()
    {
        using var world = new World();
        using var strangerKey = Keys.For("stranger");
        var stranger = new ReplicaWriter(World.Account, strangerKey, world.Time);
        var setup = world.SchoolSetup();
        stranger.Observe(setup[^1].Event.Clock);
        var foreign = world.Write(stranger, [World.Held(3, "not mine")]);

        var ledger = new Ledger();
        var report = ledger.Ingest([.. setup, .. foreign]);
        report.Applied.Should().HaveCount(setup.Count);
        ledger.Held().Should().ContainSingle().Which.Should().Match<Hold>(h => h.Kind == HoldKind.UnknownAuthor && h.Subject.StartsWith(strangerKey.Replica.Value, StringComparison.Ordinal));
    }

    [Fact]
    public void A_device_writing_a_school_event_is_refused_as_unauthorized()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var forged = world.Write(world.D1, [new HolidaysDeclared("Herbstferien", new DateOnly(2026, 10, 12), new DateOnly(2026, 10, 23))]);
        var report = new Ledger().Ingest([.. setup, .. forged]);
        report.Applied.Should().HaveCount(setup.Count);
        report.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(r =>
            r.Kind == RefusalKind.Unauthorized && r.Reason.Contains("may not write holidays.declared"));
    }

    [Fact]
    public void A_revoked_device_is_refused_after_it_saw_its_revocation_but_a_concurrent_event_applies()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var concurrent = world.Write(world.D1, [World.Held(3, "before the wipe reached me")]);
        var revoked = world.Write(world.School, [new DeviceRevoked(world.D1.Replica, "tablet lost")]);
        world.D1.Observe(revoked[^1].Event.Clock);
        var after = world.Write(world.D1, [World.Held(10, "after I saw the wipe")]);

        foreach (var order in new[] { new[] { setup, concurrent, revoked, after }, [after, revoked, concurrent, setup], [revoked, after, setup, concurrent] })
        {
            var ledger = new Ledger();
            var report = ledger.Ingest(order.SelectMany(x => x));
            report.Applied.Select(e => e.Hash).Should().BeEquivalentTo(setup.Concat(revoked).Concat(concurrent).Select(e => e.Event.Hash));
            report.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(r =>
                r.Kind == RefusalKind.Unauthorized && r.Subject == after[0].Event.Describe() && r.Reason.Contains("revoked"));
        }
    }

    [Fact]
    public void A_checkpoint_signed_with_a_wrong_key_is_refused_as_bad_signature()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var genuine = world.Write(world.D1, [World.Held(3, "a")])[0];
        var wrongKey = genuine.WithCheckpoint([.. world.D2Key.SignCheckpoint(World.Account, genuine.Event.Seq, genuine.Event.Hash)]);
        var garbage = genuine.WithCheckpoint([.. new byte[64]]);

        var ledger = Ingested(setup);
        foreach (var bad in new[] { wrongKey, garbage })
        {
            var report = ledger.Ingest([bad]);
            report.Applied.Should().BeEmpty();
            report.Refused.Should().ContainSingle().Which.Should().Match<Refusal>(r =>
                r.Kind == RefusalKind.BadSignature && r.Subject == genuine.Event.Describe());
        }

        ledger.Ingest([genuine]).Applied.Should().ContainSingle("the genuine copy still applies after forged ones");
    }

    [Fact]
    public void A_forged_signature_arriving_with_or_before_the_genuine_one_does_not_evict_it()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var batch = world.Write(world.D1, [World.Held(3, "a"), World.Held(10, "b")]);
        var forged = batch[^1].WithCheckpoint([.. new byte[64]]);
        var unsigned = batch.Select(e => e.WithoutCheckpoint()).ToList();

        // forged first in the same call, genuine after it
        var one = new Ledger();
        var report = one.Ingest([.. setup, .. unsigned, forged, batch[^1]]);
        report.Applied.Should().HaveCount(setup.Count + 2);
        report.Refused.Should().ContainSingle().Which.Kind.Should().Be(RefusalKind.BadSignature);

        // forged copy over a held plain copy: the plain copy stays held, and a later genuine signature applies it
        var two = Ingested([.. setup, .. unsigned]);
        two.Ingest([forged]).Refused.Should().ContainSingle().Which.Kind.Should().Be(RefusalKind.BadSignature);
        two.Held().Should().HaveCount(2).And.OnlyContain(h => h.Kind == HoldKind.AwaitingCheckpoint);
        two.Ingest([batch[^1]]).Applied.Should().HaveCount(2);
    }

    [Fact]
    public void Events_without_a_covering_checkpoint_are_held_and_a_later_signed_copy_applies_them()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var batch = world.Write(world.D1, [World.Held(3, "a"), World.Held(10, "b"), World.Held(17, "c")]);
        var ledger = Ingested(setup);

        var report = ledger.Ingest(batch.Select(e => e.WithoutCheckpoint()));
        report.Applied.Should().BeEmpty();
        ledger.Held().Should().HaveCount(3).And.OnlyContain(h => h.Kind == HoldKind.AwaitingCheckpoint);

        report = ledger.Ingest([batch[^1]]);
        report.Duplicates.Should().Be(1, "the signed copy has the same identity as the unsigned one");
        report.Applied.Select(e => e.Seq).Should().Equal(1, 2, 3);
        ledger.Held().Should().BeEmpty();
    }

    [Fact]
    public void A_gap_is_held_and_applied_once_filled()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        world.D1.Observe(setup[^1].Event.Clock);
        var first = world.Write(world.D1, [World.Held(3, "a")]);
        var second = world.Write(world.D1, [World.Held(10, "b"), World.Held(17, "c")]);
        var ledger = Ingested(setup);

        ledger.Ingest([second[1]]).Applied.Should().BeEmpty();
        ledger.Held().Should().ContainSingle().Which.Should().Match<Hold>(h => h.Kind == HoldKind.Gap && h.Reason.Contains("seq 2"));
        ledger.Ingest([first[0]]).Applied.Select(e => e.Seq).Should().Equal(1);
        ledger.Held().Should().ContainSingle().Which.Should().Match<Hold>(h => h.Kind == HoldKind.Gap && h.Reason.Contains("seq 2"));
        ledger.Ingest([second[0]]).Applied.Select(e => e.Seq).Should().Equal(2, 3);
        ledger.Held().Should().BeEmpty();
    }

    [Fact]
    public void A_duplicate_line_is_a_no_op()
    {
        using var world = new World();
        var setup = world.SchoolSetup();
        var lines = setup.Select(e => e.ToLine()).ToList();
        var ledger = new Ledger();
        ledger.IngestLines(lines).Applied.Should().HaveCount(4);
        var again = ledger.IngestLines([.. lines, .. lines]);
        again.Applied.Should().BeEmpty();
        again.Refused.Should().BeEmpty();
        again.Duplicates.Should().Be(8);
        ledger.AppliedCount.Should().Be(4);
    }

    [Fact]
    public void Any_ingest_order_with_duplicates_gives_the_same_applied_set()
    {
        using var world = new World();
        var log = TamperTests.Log(world);
        world.D2.Observe(log[^1].Event.Clock);
        log.AddRange(world.Write(world.D2, [World.Held(8, "after everything")]));
        var expected = log.Select(e => e.Event.Hash.Hex).Order(StringComparer.Ordinal).ToList();
        var random = new Random(20260903);
        for (var run = 0; run < 40; run++)
        {
            var shuffled = log.Concat(log.Take(random.Next(log.Count))).OrderBy(_ => random.Next()).ToList();
            var ledger = new Ledger();
            var chunk = 1 + random.Next(4);
            for (var i = 0; i < shuffled.Count; i += chunk)
            {
                ledger.Ingest(shuffled.Skip(i).Take(chunk)).Refused.Should().BeEmpty();
            }

            ledger.Applied.Select(e => e.Hash.Hex).Order(StringComparer.Ordinal).Should().Equal(expected, $"run {run}");
            ledger.Held().Should().BeEmpty();
        }
    }
}
