using FluentAssertions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace IMikelGo.Sealing.Tests;

public sealed class KeyRingTests
{
    private static readonly string[] Replica = ["phone"];

    private static SealedBundle SealTo(RecipientPublicKey key, string text)
        => Bundle.Seal("acct", Replica[0], [new(Replica[0], 1, 1)], System.Text.Encoding.UTF8.GetBytes(text), [key]);

    [Fact]
    public void Rotation_keeps_old_bundles_openable_until_released_or_expired()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        using var ring = new RecipientKeyRing(time, TimeSpan.FromDays(7), TimeSpan.FromDays(30));
        var first = ring.Current.PublicKey;
        var announcedNext = ring.Next;
        var oldBundle = SealTo(first, "old");
        var earlyNext = SealTo(announcedNext, "sent to the announced next key");

        ring.RotateIfDue().Should().BeFalse();
        Bundle.TryOpen(earlyNext.Bytes, "acct", ring, out _, out var error).Should().BeTrue("the published next key already opens: {0}", error);

        time.Advance(TimeSpan.FromDays(7));
        ring.RotateIfDue().Should().BeTrue();
        ring.Current.PublicKey.Should().Be(announcedNext);
        ring.Next.Should().NotBe(announcedNext);
        ring.PreviousKeyIds.Should().Equal(first.Id);
        Bundle.TryOpen(oldBundle.Bytes, "acct", ring, out var opened, out error).Should().BeTrue(error.ToString());
        opened!.OpenedWith.Should().Be(first.Id);

        ring.Release(first.Id).Should().BeTrue();
        ring.Release(ring.Current.Id).Should().BeFalse("the current key cannot be released");
        Bundle.TryOpen(oldBundle.Bytes, "acct", ring, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.NotARecipient);

        // Max age: a retired key is deleted even if never released.
        var second = ring.Current.PublicKey;
        var secondBundle = SealTo(second, "second");
        time.Advance(TimeSpan.FromDays(7));
        ring.RotateIfDue().Should().BeTrue();
        Bundle.TryOpen(secondBundle.Bytes, "acct", ring, out _, out error).Should().BeTrue(error.ToString());
        time.Advance(TimeSpan.FromDays(29));
        ring.PruneExpired().Should().Be(0);
        time.Advance(TimeSpan.FromDays(1));
        ring.PruneExpired().Should().Be(1);
        Bundle.TryOpen(secondBundle.Bytes, "acct", ring, out _, out error).Should().BeFalse();
    }
}
