using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;
using Xunit;

namespace IMikelGo.Engine.Tests.Sync;

public sealed class EventBundleTests
{
    private static (Replica School, ReplicaKey Key, IReadOnlyList<SignedEvent> Events) School(string account)
    {
        var key = ReplicaKey.Create();
        var school = new Replica(new AccountId(account), key);
        school.RecordBatch([
            new AccountOpened("ms-x", "Anna", key.PublicKey),
            new SeriesPublished(new SeriesId("piano"), "Piano", 1, 900, 45, new RoomId("r1"), [new StudentId("s1")], new DateOnly(2026, 9, 1), new DateOnly(2026, 12, 31)),
        ]).Error.Should().BeNull();
        return (school, key, school.Ledger.Export(new AccountId(account)));
    }

    [Fact]
    public void Sealed_events_open_for_each_recipient_and_verify_in_a_fresh_ledger()
    {
        var (school, key, events) = School("k-anna");
        using var d1 = EncryptionKeyPair.Generate();
        using var d2 = EncryptionKeyPair.Generate();
        var bundle = EventBundles.Seal(school.Id, [.. events], [d1.PublicKey, d2.PublicKey]);

        foreach (var recipient in new[] { d1, d2 })
        {
            EventBundles.TryOpen(bundle.Bytes, new AccountId("k-anna"), recipient, null, out var opened, out var error).Should().BeTrue(error);
            var ledger = new Ledger();
            ledger.Ingest(opened!).Applied.Should().HaveCount(events.Count);
        }

        Bundle.TryReadHeader(bundle.Bytes, out var header, out _).Should().BeTrue();
        Encoding.UTF8.GetString(bundle.Bytes).Should().NotContain("Piano", "the relay sees ciphertext only");
        key.Dispose();
    }

    [Fact]
    public void A_bundle_read_from_another_mailbox_a_replay_or_a_stranger_is_refused()
    {
        var (school, key, events) = School("k-anna");
        using var d1 = EncryptionKeyPair.Generate();
        using var stranger = EncryptionKeyPair.Generate();
        var bundle = EventBundles.Seal(school.Id, [.. events], [d1.PublicKey]);

        EventBundles.TryOpen(bundle.Bytes, new AccountId("k-bert"), d1, null, out _, out var wrongAccount).Should().BeFalse();
        wrongAccount.Should().Contain("WrongAccount");
        EventBundles.TryOpen(bundle.Bytes, new AccountId("k-anna"), stranger, null, out _, out var notRecipient).Should().BeFalse();
        notRecipient.Should().Contain("NotARecipient");

        var seen = new InMemorySeenBundles();
        EventBundles.TryOpen(bundle.Bytes, new AccountId("k-anna"), d1, seen, out _, out _).Should().BeTrue();
        EventBundles.TryOpen(bundle.Bytes, new AccountId("k-anna"), d1, seen, out var again, out var replay).Should().BeFalse();
        again.Should().BeNull();
        replay.Should().Contain("Duplicate");
        key.Dispose();
    }

    [Fact]
    public void Events_outside_the_declared_ranges_or_account_are_refused_whole()
    {
        var (school, key, events) = School("k-anna");
        var (_, otherKey, otherEvents) = School("k-bert");
        using var d1 = EncryptionKeyPair.Generate();
        var payload = Encoding.UTF8.GetBytes(string.Join("\n", events.Concat(otherEvents).Select(e => e.ToLine())));
        var smuggled = Bundle.Seal("k-anna", school.Id.Value, [new SequenceRange(school.Id.Value, 1, 2)], payload, [d1.PublicKey]);
        // Events of another author open only when the sender is the forwarder the recipient names (the account's school):
        // a device cannot pass on events signed with another device's key, which the relay refuses from that device.
        var forwarder = new ReplicaId("rforwarder");
        var forwarded = Bundle.Seal("k-anna", forwarder.Value, [new SequenceRange(school.Id.Value, 1, 2)],
            Encoding.UTF8.GetBytes(string.Join("\n", events.Select(e => e.ToLine()))), [d1.PublicKey]);
        EventBundles.TryOpen(forwarded.Bytes, new AccountId("k-anna"), d1, null, out _, out var notSender).Should().BeFalse();
        notSender.Should().Contain("not written by the bundle's sender rforwarder").And.Contain("only the school forwards");
        EventBundles.TryOpen(forwarded.Bytes, new AccountId("k-anna"), d1, null, new ReplicaId("rsomeoneelse"), out _, out _).Should().BeFalse();
        EventBundles.TryOpen(forwarded.Bytes, new AccountId("k-anna"), d1, null, forwarder, out var passedOn, out _).Should().BeTrue();
        new Ledger().Ingest(passedOn!).Applied.Should().HaveCount(2, "forwarded events are as authentic as their own signatures");
        var altered = events[1].ToLine().Replace("\"Piano\"", "\"Piana\"", StringComparison.Ordinal);
        var tampered = Bundle.Seal("k-anna", forwarder.Value, [new SequenceRange(school.Id.Value, 1, 2)],
            Encoding.UTF8.GetBytes(events[0].ToLine() + "\n" + altered), [d1.PublicKey]);
        EventBundles.TryOpen(tampered.Bytes, new AccountId("k-anna"), d1, null, forwarder, out _, out var alteredError).Should().BeFalse();
        alteredError.Should().Contain("does not match the SHA-256", "a forwarder cannot alter an event");
        school.Record(new HolidaysDeclared("Herbst", new DateOnly(2026, 10, 26), new DateOnly(2026, 10, 30))).Succeeded.Should().BeTrue();
        var three = school.Ledger.Export(new AccountId("k-anna"));
        var gapped = () => EventBundles.Seal(school.Id, [three[0], three[2]], [d1.PublicKey]);
        gapped.Should().Throw<ArgumentException>().WithMessage("*not one unbroken run*", "the header could not declare it");

        // A fork (two events at one seq) fills its range by count but is no run either: refused when sealed, not sealed
        // into a bundle every recipient would refuse.
        var twin = new Replica(new AccountId("k-anna"), key, (LedgerOptions?)null, null,
            new ChainPosition(events[1].Event.Seq, events[1].Event.Hash, events[1].Event.Clock, events[1].Event.Time));
        twin.Receive(events).Applied.Should().HaveCount(2);
        twin.Record(new HolidaysDeclared("Winter", new DateOnly(2026, 12, 21), new DateOnly(2026, 12, 31))).Succeeded.Should().BeTrue();
        var fork = twin.Ledger.Export(new AccountId("k-anna"))[2];
        var forked = () => EventBundles.Seal(school.Id, [three[0], three[1], three[2], fork], [d1.PublicKey]);
        forked.Should().Throw<ArgumentException>().WithMessage("*not one unbroken run*");
        var hollow = Bundle.Seal("k-anna", school.Id.Value, [new SequenceRange(school.Id.Value, 1, 2)], Encoding.UTF8.GetBytes(events[0].ToLine()), [d1.PublicKey]);
        EventBundles.TryOpen(hollow.Bytes, new AccountId("k-anna"), d1, null, out _, out var missing).Should().BeFalse();
        missing.Should().Contain("declares 2 event(s) but it holds 1");

        EventBundles.TryOpen(smuggled.Bytes, new AccountId("k-anna"), d1, null, out var opened, out var error).Should().BeFalse();
        opened.Should().BeNull();
        error.Should().Contain("outside the account or sequence ranges");

        var truncatedRange = Bundle.Seal("k-anna", school.Id.Value, [new SequenceRange(school.Id.Value, 1, 1)],
            Encoding.UTF8.GetBytes(string.Join("\n", events.Select(e => e.ToLine()))), [d1.PublicKey]);
        EventBundles.TryOpen(truncatedRange.Bytes, new AccountId("k-anna"), d1, null, out _, out var beyond).Should().BeFalse();
        beyond.Should().Contain("#2");
        key.Dispose();
        otherKey.Dispose();
    }

    [Fact]
    public void Recipients_are_the_keys_devices_published_in_their_signed_chains_and_a_revoked_device_reads_nothing_new()
    {
        var account = new AccountId("k-anna");
        using var schoolKey = ReplicaKey.Create();
        using var d1Key = ReplicaKey.Create();
        using var d2Key = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        school.RecordBatch([
            new AccountOpened("ms-x", "Anna", schoolKey.PublicKey),
            new DeviceEnrolled(d1Key.Replica, "tablet", d1Key.PublicKey),
            new DeviceEnrolled(d2Key.Replica, "phone", d2Key.PublicKey),
        ]).Error.Should().BeNull();
        using var d1Enc = EncryptionKeyPair.Generate();
        using var d2Old = EncryptionKeyPair.Generate();
        using var d2New = EncryptionKeyPair.Generate();
        var d1 = new Replica(account, d1Key);
        var d2 = new Replica(account, d2Key);
        d1.Receive(school.Ledger.Export(account));
        d2.Receive(school.Ledger.Export(account));
        d1.Record(new EncryptionKeyPublished([.. d1Enc.PublicKey.Encoded.ToArray()])).Error.Should().BeNull();
        d2.Record(new EncryptionKeyPublished([.. d2Old.PublicKey.Encoded.ToArray()])).Error.Should().BeNull();
        d2.Record(new EncryptionKeyPublished([.. d2New.PublicKey.Encoded.ToArray()])).Error.Should().BeNull();
        school.Receive(d1.Ledger.Export(account).Concat(d2.Ledger.Export(account))).IsClean.Should().BeTrue();

        var recipients = school.Ledger.RecipientKeys(account);
        recipients.Keys.Should().BeEquivalentTo([d1Key.Replica, d2Key.Replica]);
        recipients[d2Key.Replica].Should().Equal(d2New.PublicKey.Encoded.ToArray(), "the latest published key replaces the old one");

        school.Record(new DeviceRevoked(d2Key.Replica, "lost")).Error.Should().BeNull();
        var after = school.Ledger.RecipientKeys(account);
        after.Keys.Should().Equal(d1Key.Replica);
        var bundle = EventBundles.Seal(school.Id, [.. school.Ledger.Export(account).Where(e => e.Event.Replica == school.Id)],
            after.Values.Select(k => RecipientPublicKey.TryParse(k.AsSpan(), out var key, out _) ? key! : throw new InvalidOperationException()));
        EventBundles.TryOpen(bundle.Bytes, account, d2New, null, out _, out var refused).Should().BeFalse();
        refused.Should().Contain("NotARecipient");
        EventBundles.TryOpen(bundle.Bytes, account, d1Enc, null, out _, out _).Should().BeTrue();
    }

    [Fact]
    public void A_device_enrollment_whose_id_is_not_the_hash_of_its_key_is_never_written_nor_accepted()
    {
        var account = new AccountId("k-anna");
        using var schoolKey = ReplicaKey.Create();
        using var device = ReplicaKey.Create();
        using var other = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        school.Record(new AccountOpened("ms-x", "Anna", schoolKey.PublicKey)).Error.Should().BeNull();
        var result = school.Record(new DeviceEnrolled(other.Replica, "tablet", device.PublicKey));
        result.Succeeded.Should().BeFalse();
        result.Error.Should().Contain("is not the id of deviceKey");
        school.Position.Seq.Should().Be(1, "nothing was appended");
    }
}
