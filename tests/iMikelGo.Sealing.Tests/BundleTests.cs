using System.Buffers.Binary;
using System.Text;
using FluentAssertions;
using Xunit;

namespace IMikelGo.Sealing.Tests;

public sealed class BundleTests : IDisposable
{
    private readonly EncryptionKeyPair _phone = EncryptionKeyPair.Generate();
    private readonly EncryptionKeyPair _laptop = EncryptionKeyPair.Generate();
    private readonly EncryptionKeyPair _stranger = EncryptionKeyPair.Generate();

    private static readonly SequenceRange[] Ranges = [new("phone-1", 5, 9), new("school", 1, 3)];

    public void Dispose()
    {
        _phone.Dispose();
        _laptop.Dispose();
        _stranger.Dispose();
    }

    private SealedBundle SealSmall(string account = "acct-1", string payload = "events")
        => Bundle.Seal(account, "phone-1", Ranges, Encoding.UTF8.GetBytes(payload), [_phone.PublicKey, _laptop.PublicKey]);

    [Fact]
    public void Every_recipient_opens_and_sees_the_authenticated_header()
    {
        var payload = new byte[70_000];
        Random.Shared.NextBytes(payload);
        var sealedBundle = Bundle.Seal("acct-1", "phone-1", Ranges.Reverse(), payload, [_laptop.PublicKey, _phone.PublicKey, _phone.PublicKey]);

        foreach (var key in new[] { _phone, _laptop })
        {
            Bundle.TryOpen(sealedBundle.Bytes, "acct-1", key, out var opened, out var error).Should().BeTrue(error.ToString());
            opened!.Payload.Should().Equal(payload);
            opened.OpenedWith.Should().Be(key.Id);
            opened.Header.AccountId.Should().Be("acct-1");
            opened.Header.SenderReplicaId.Should().Be("phone-1");
            opened.Header.BundleId.Should().Be(sealedBundle.BundleId);
            opened.Header.Ranges.Should().Equal(new SequenceRange("phone-1", 5, 9), new SequenceRange("school", 1, 3));
            opened.Header.RecipientKeyIds.Should().HaveCount(2).And.Contain([_phone.Id, _laptop.Id]);
            opened.Header.PayloadLength.Should().Be(payload.Length);
        }

        var second = Bundle.Seal("acct-1", "phone-1", Ranges, payload, [_phone.PublicKey]);
        second.BundleId.Should().NotBe(sealedBundle.BundleId, "bundle ids are random");
    }

    [Fact]
    public void Layout_matches_the_documented_format()
    {
        var b = SealSmall().Bytes;
        Encoding.ASCII.GetString(b, 0, 4).Should().Be("IMGB");
        b[4].Should().Be(1);
        BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(5)).Should().Be(0x0010);
        BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(7)).Should().Be(0x0001);
        BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(9)).Should().Be(0x0002);
        b[11].Should().Be(6);
        Encoding.ASCII.GetString(b, 12, 6).Should().Be("acct-1");
        var fixedLength = 11 + 7 + 8 + 16 + 2 + (1 + 7 + 16) + (1 + 6 + 16);
        BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(fixedLength)).Should().Be(2);
        var ctOffset = fixedLength + 2 + (2 * (16 + 65 + 48)) + 4;
        BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(ctOffset - 4)).Should().Be(6 + 16);
        b.Length.Should().Be(ctOffset + 6 + 16);
    }

    [Fact]
    public void Every_single_byte_change_is_refused_with_a_reason_and_no_plaintext()
    {
        var original = SealSmall(payload: "absence: lesson 42").Bytes;
        var refusedCodes = new HashSet<SealingErrorCode>();
        for (var i = 0; i < original.Length; i++)
        {
            foreach (var mask in new byte[] { 0x01, 0x80 })
            {
                var tampered = (byte[])original.Clone();
                tampered[i] ^= mask;
                foreach (var key in new[] { _phone, _laptop })
                {
                    var ok = Bundle.TryOpen(tampered, "acct-1", key, out var opened, out var error);
                    ok.Should().BeFalse($"byte {i} ^ 0x{mask:x2} must be refused for {key.Id}");
                    opened.Should().BeNull();
                    error.Code.Should().NotBe(SealingErrorCode.None);
                    error.Message.Should().NotBeNullOrWhiteSpace();
                    refusedCodes.Add(error.Code);
                }
            }
        }

        refusedCodes.Should().Contain([SealingErrorCode.Malformed, SealingErrorCode.AuthenticationFailed, SealingErrorCode.NotARecipient]);
    }

    [Fact]
    public void Truncation_and_extension_are_refused()
    {
        var original = SealSmall().Bytes;
        for (var length = 0; length < original.Length; length++)
        {
            Bundle.TryOpen(original.AsSpan(0, length), "acct-1", _phone, out var opened, out var error).Should().BeFalse();
            opened.Should().BeNull();
            error.Code.Should().Be(SealingErrorCode.Malformed, $"length {length}");
        }

        Bundle.TryOpen([.. original, 0], "acct-1", _phone, out _, out var e2).Should().BeFalse();
        e2.Message.Should().Contain("trailing");
    }

    [Fact]
    public void Another_account_or_a_non_recipient_cannot_open()
    {
        var b = SealSmall().Bytes;
        Bundle.TryOpen(b, "acct-2", _phone, out _, out var error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.WrongAccount);

        Bundle.TryOpen(b, "acct-1", _stranger, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.NotARecipient);

        // Relabel the bundle into another mailbox (same length account id): the AD binding refuses it.
        var moved = (byte[])b.Clone();
        Encoding.ASCII.GetBytes("acct-2").CopyTo(moved, 12);
        Bundle.TryOpen(moved, "acct-2", _phone, out var opened, out error).Should().BeFalse();
        opened.Should().BeNull();
        error.Code.Should().Be(SealingErrorCode.AuthenticationFailed);
    }

    [Fact]
    public void Splicing_recipient_entries_or_ciphertexts_between_bundles_is_refused()
    {
        var a = SealSmall(payload: "first!").Bytes;
        var b = SealSmall(payload: "second").Bytes;
        a.Length.Should().Be(b.Length);
        var ctLength = 6 + 16;

        // Ciphertext of b under the header and wrapped keys of a.
        var splice1 = a.Take(a.Length - ctLength).Concat(b.Skip(b.Length - ctLength)).ToArray();
        Bundle.TryOpen(splice1, "acct-1", _phone, out _, out var error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.AuthenticationFailed);

        // Header (with bundle id) of b, everything after the range list from a.
        var fixedLength = 11 + 7 + 8 + 16 + 2 + (1 + 7 + 16) + (1 + 6 + 16);
        var splice2 = b.Take(fixedLength).Concat(a.Skip(fixedLength)).ToArray();
        Bundle.TryOpen(splice2, "acct-1", _phone, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.AuthenticationFailed);
    }

    [Fact]
    public void Header_with_changed_sequence_range_is_refused_even_when_well_formed()
    {
        var b = SealSmall().Bytes;
        // range 0 "phone-1" 5..9: "to" at 11+7+8+16+2+1+7+8
        var toOffset = 11 + 7 + 8 + 16 + 2 + 1 + 7 + 8;
        BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan(toOffset)).Should().Be(9);
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(toOffset), 8);
        Bundle.TryReadHeader(b, out var header, out var error).Should().BeTrue(error.ToString());
        header!.Ranges[0].ToSequence.Should().Be(8);
        Bundle.TryOpen(b, "acct-1", _laptop, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.AuthenticationFailed);
    }

    [Fact]
    public void Replay_is_recognised_as_a_duplicate()
    {
        var seen = new InMemorySeenBundles();
        var b = SealSmall().Bytes;
        Bundle.TryOpenOnce(b, "acct-1", _phone, seen, out var opened, out var error).Should().BeTrue(error.ToString());
        opened.Should().NotBeNull();
        Bundle.TryOpenOnce(b, "acct-1", _phone, seen, out opened, out error).Should().BeFalse();
        opened.Should().BeNull();
        error.Code.Should().Be(SealingErrorCode.Duplicate);
        error.Message.Should().Contain("replay");

        // Another device has its own detector; same bundle id in another account is a different key.
        seen.Contains("acct-9", Bundle.TryReadHeader(b, out var h, out _) ? h!.BundleId : default).Should().BeFalse();

        // A tampered copy does not poison the detector.
        var seen2 = new InMemorySeenBundles();
        var bad = (byte[])b.Clone();
        bad[^1] ^= 1;
        Bundle.TryOpenOnce(bad, "acct-1", _phone, seen2, out _, out _).Should().BeFalse();
        Bundle.TryOpenOnce(b, "acct-1", _phone, seen2, out _, out error).Should().BeTrue(error.ToString());
    }

    [Fact]
    public void Length_fields_are_limited_before_allocation()
    {
        var b = SealSmall().Bytes;
        var limits = new BundleLimits { MaxRecipients = 1 };
        Bundle.TryReadHeader(b, out _, out var error, limits).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.LimitExceeded);
        error.Message.Should().Contain("recipient count");

        var huge = (byte[])b.Clone();
        var ctLenOffset = b.Length - 22 - 4;
        BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(ctLenOffset), uint.MaxValue);
        Bundle.TryReadHeader(huge, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.LimitExceeded);
        error.Message.Should().Contain("ciphertext length");

        var badVersion = (byte[])b.Clone();
        badVersion[4] = 2;
        Bundle.TryReadHeader(badVersion, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.Unsupported);
        error.Message.Should().Contain("version 2");

        var act = () => Bundle.Seal("acct-1", "p", Ranges, new byte[11], [_phone.PublicKey], new BundleLimits { MaxPayloadBytes = 10 });
        act.Should().Throw<ArgumentException>().WithMessage("*exceeds*");
        var act2 = () => Bundle.Seal("acct 1", "p", Ranges, [], [_phone.PublicKey]);
        act2.Should().Throw<ArgumentException>().WithMessage("*accountId*");
        var act3 = () => Bundle.Seal("acct-1", "p", [new("x", 3, 2)], [], [_phone.PublicKey]);
        act3.Should().Throw<ArgumentException>();
        var act4 = () => Bundle.Seal("acct-1", "p", Ranges, [], []);
        act4.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Empty_payload_round_trips()
    {
        var b = Bundle.Seal("a", "p", [new("p", 1, 1)], [], [_phone.PublicKey]);
        Bundle.TryOpen(b.Bytes, "a", _phone, out var opened, out var error).Should().BeTrue(error.ToString());
        opened!.Payload.Should().BeEmpty();
    }
}
