using FluentAssertions;
using IMikelGo.Engine.Relay;
using Xunit;

namespace IMikelGo.Relay.Tests.Stores;

/// <summary>The enrollment queue of the relay's in-process store (the full conformance suite needs durable storage).</summary>
public sealed class InMemoryMailboxStoreEnrollmentTests
{
    [Fact]
    public async Task Queue_answer_and_state_follow_the_store_contract()
    {
        var store = new InMemoryMailboxStore();
        var ct = CancellationToken.None;
        (await store.EnqueueEnrollmentAsync("s1", "a".PadLeft(32, '0'), new byte[] { 1 }, ct)).Should().Be(1);
        (await store.EnqueueEnrollmentAsync("s1", "b".PadLeft(32, '0'), new byte[] { 2 }, ct)).Should().Be(2);
        (await store.ReadEnrollmentsAsync("s1", 1, 10, ct)).Select(e => e.Request[0]).Should().Equal((byte)2);
        (await store.AnswerEnrollmentAsync("s2", "a".PadLeft(32, '0'), true, new byte[] { 9 }, ct)).Should().Be(EnrollmentAnswerOutcome.Unknown);
        (await store.AnswerEnrollmentAsync("s1", "a".PadLeft(32, '0'), true, new byte[] { 9 }, ct)).Should().Be(EnrollmentAnswerOutcome.Stored);
        (await store.AnswerEnrollmentAsync("s1", "a".PadLeft(32, '0'), false, new byte[] { 8 }, ct)).Should().Be(EnrollmentAnswerOutcome.AlreadyAnswered);
        (await store.GetEnrollmentAnswerAsync("a".PadLeft(32, '0'), ct))!.Answer.Should().Equal((byte)9);
        (await store.PendingEnrollmentCountAsync("s1", ct)).Should().Be(1);
        (await store.ReadEnrollmentsAsync("s1", 0, 10, ct)).Should().ContainSingle();
    }
}
