using System.Security.Cryptography;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using Xunit;

namespace IMikelGo.Relay.Tests.Stores;

/// <summary>The enrollment queue of <see cref="IMailboxStore"/>: opaque requests per school, answers by id.</summary>
public abstract partial class MailboxStoreConformance
{
    private string School => "school-" + Account;

    private static string NewEnrollmentId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    [Fact]
    public async Task Enrollments_queue_per_school_with_positions_1_2_3_and_exact_bytes()
    {
        var other = "school-" + OtherAccount;
        var ids = new[] { NewEnrollmentId(), NewEnrollmentId(), NewEnrollmentId() };
        var requests = new[] { Bytes(10, 1), Bytes(64 * 1024, 2), Bytes(1, 3) };
        for (var i = 0; i < 3; i++)
        {
            (await Store.EnqueueEnrollmentAsync(School, ids[i], requests[i], None)).Should().Be(i + 1);
        }

        (await Store.EnqueueEnrollmentAsync(other, NewEnrollmentId(), Bytes(5, 4), None)).Should().Be(1, "positions are per school");

        var read = await Store.ReadEnrollmentsAsync(School, 0, 10, None);
        read.Select(e => e.Position).Should().Equal(1, 2, 3);
        read.Select(e => e.Id).Should().Equal(ids);
        for (var i = 0; i < 3; i++)
        {
            read[i].Request.Should().Equal(requests[i]);
            read[i].School.Should().Be(School);
            read[i].ReceivedAt.Should().Be(Clock.GetUtcNow());
        }

        (await Store.PendingEnrollmentCountAsync(School, None)).Should().Be(3);
        (await Store.PendingEnrollmentCountAsync(other, None)).Should().Be(1);
        (await Store.PendingEnrollmentCountAsync("school-nobody", None)).Should().Be(0);
        (await Store.ReadEnrollmentsAsync("school-nobody", 0, 10, None)).Should().BeEmpty();
    }

    [Fact]
    public async Task Enrollments_read_by_cursor_and_limit_and_answered_ones_leave_the_queue()
    {
        var ids = Enumerable.Range(0, 5).Select(_ => NewEnrollmentId()).ToList();
        foreach (var id in ids)
        {
            await Store.EnqueueEnrollmentAsync(School, id, Bytes(8, id.GetHashCode()), None);
        }

        (await Store.ReadEnrollmentsAsync(School, 0, 2, None)).Select(e => e.Position).Should().Equal(1, 2);
        (await Store.ReadEnrollmentsAsync(School, 2, 2, None)).Select(e => e.Position).Should().Equal(3, 4);
        (await Store.ReadEnrollmentsAsync(School, 5, 2, None)).Should().BeEmpty();

        (await Store.AnswerEnrollmentAsync(School, ids[1], approved: true, Bytes(3, 9), None)).Should().Be(EnrollmentAnswerOutcome.Stored);
        (await Store.ReadEnrollmentsAsync(School, 0, 10, None)).Select(e => e.Position).Should().Equal(1, 3, 4, 5);
        (await Store.PendingEnrollmentCountAsync(School, None)).Should().Be(4);
    }

    [Fact]
    public async Task An_enrollment_answer_is_stored_once_the_first_answer_stands_and_only_its_school_may_answer()
    {
        var id = NewEnrollmentId();
        await Store.EnqueueEnrollmentAsync(School, id, Bytes(20, 1), None);
        var pending = await Store.GetEnrollmentAnswerAsync(id, None);
        pending.Should().NotBeNull();
        pending!.Answered.Should().BeFalse();
        pending.Answer.Should().BeNull();
        pending.School.Should().Be(School);

        (await Store.AnswerEnrollmentAsync("school-" + OtherAccount, id, true, Bytes(4, 2), None)).Should().Be(EnrollmentAnswerOutcome.Unknown, "another school cannot answer");
        (await Store.AnswerEnrollmentAsync(School, NewEnrollmentId(), true, Bytes(4, 2), None)).Should().Be(EnrollmentAnswerOutcome.Unknown);

        Clock.Advance(TimeSpan.FromSeconds(7));
        var refusal = Bytes(30, 3);
        (await Store.AnswerEnrollmentAsync(School, id, approved: false, refusal, None)).Should().Be(EnrollmentAnswerOutcome.Stored);
        (await Store.AnswerEnrollmentAsync(School, id, approved: true, Bytes(30, 4), None)).Should().Be(EnrollmentAnswerOutcome.AlreadyAnswered);

        var answered = await Store.GetEnrollmentAnswerAsync(id, None);
        answered!.Answered.Should().BeTrue();
        answered.Approved.Should().BeFalse("the first answer stands");
        answered.Answer.Should().Equal(refusal);
        answered.AnsweredAt.Should().Be(Clock.GetUtcNow());
        (await Store.GetEnrollmentAnswerAsync(NewEnrollmentId(), None)).Should().BeNull();
    }

    [Fact]
    public async Task Two_instances_enqueue_gap_free_and_answer_an_enrollment_exactly_once()
    {
        var second = await CreateSecondInstanceAsync();
        try
        {
            var ids = Enumerable.Range(0, 40).Select(_ => NewEnrollmentId()).ToList();
            var positions = await Task.WhenAll(ids.Select((id, i) =>
                Task.Run(() => (i % 2 == 0 ? Store : second).EnqueueEnrollmentAsync(School, id, Bytes(16, i), None))));
            positions.Order().Should().Equal(Enumerable.Range(1, 40).Select(i => (long)i));
            (await second.ReadEnrollmentsAsync(School, 0, 100, None)).Select(e => e.Id).Should().BeEquivalentTo(ids);

            var outcomes = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
                Task.Run(() => (i % 2 == 0 ? Store : second).AnswerEnrollmentAsync(School, ids[0], i % 3 == 0, Bytes(8, 100 + i), None))));
            outcomes.Count(o => o == EnrollmentAnswerOutcome.Stored).Should().Be(1);
            outcomes.Count(o => o == EnrollmentAnswerOutcome.AlreadyAnswered).Should().Be(7);
            (await Store.PendingEnrollmentCountAsync(School, None)).Should().Be(39);
        }
        finally
        {
            (second as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public async Task Enrollment_bad_arguments_are_refused_without_writing()
    {
        await FluentActions.Awaiting(() => Store.EnqueueEnrollmentAsync("", NewEnrollmentId(), Bytes(4, 1), None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => Store.EnqueueEnrollmentAsync(School, "", Bytes(4, 1), None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => Store.ReadEnrollmentsAsync(School, -1, 10, None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => Store.ReadEnrollmentsAsync(School, 0, 0, None)).Should().ThrowAsync<ArgumentException>();
        (await Store.PendingEnrollmentCountAsync(School, None)).Should().Be(0);
    }
}
