using System.Net;
using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Sync;
using Xunit;

namespace IMikelGo.Relay.Client.Tests;

public sealed class SyncAgentTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task F01_the_cursor_never_passes_the_last_item_durably_processed()
    {
        using var w = new World(weeks: 40, students: 3);
        for (var week = 0; week < 40; week++)
        {
            for (var s = 0; s < 3; s++)
            {
                w.Absent(w.D2.Replica, week, s);
            }
        }

        var d2 = w.Agent(w.D2, agentOptions: new SyncAgentOptions { MaxEventsPerBundle = 1 });
        (await d2.PushAsync(null, None)).EventsSent.Should().Be(120);
        w.Relay.Mailbox(w.Account).Should().HaveCount(120, "R holds 120 events, one bundle each");

        // R's page 1 returns e1..e50 with next = 120 (the global head); the connection drops on page 2.
        w.Relay.NextIsHead = true;
        var pulls = 0;
        w.Relay.Intercept = (r, _) => r.Method == HttpMethod.Get && Interlocked.Increment(ref pulls) >= 2
            ? throw new HttpRequestException(HttpRequestError.ConnectionError, "connection dropped")
            : Task.FromResult<HttpResponseMessage?>(null);
        var d1 = w.Agent(w.D1, agentOptions: new SyncAgentOptions { PageSize = 50 });

        await ((Func<Task>)(() => d1.SyncAsync(null, None))).Should().ThrowAsync<RelayException>();

        w.D1.Cursor.Should().Be(50, "page 1 of 50 → cursor 50, not the relay's next = 120");
        w.D1.CursorHistory.Should().Equal(50);
        w.D1.EventsBy(w.D2.Id).Should().Be(50);

        w.Relay.Intercept = null;
        var summary = await d1.SyncAsync(null, None);

        w.D1.EventsBy(w.D2.Id).Should().Be(120, "D1 ends with exactly 120 events");
        summary.EventsReceived.Should().Be(70);
        w.D1.CursorHistory.Should().Equal(50, 100, 120);
        w.Relay.Acks[w.D1.Id.Value].Should().Be(120);
    }

    [Fact]
    public async Task F02_a_crash_between_the_relays_answer_and_the_local_mark_ends_in_a_duplicate_success()
    {
        using var w = new World();
        var l1 = w.Scenario.Lesson(3);
        var e1 = w.Scenario.Record(w.D1.Replica, [new LessonCancelled(l1, CancellationReason.TeacherIll, MakeUpOwed: true, Note: null)]);
        var crash = 1;
        w.D1.BeforeAcknowledge = () => Interlocked.Decrement(ref crash) >= 0 ? throw new IOException("D1 killed") : Task.CompletedTask;
        var agent = w.Agent(w.D1);

        await ((Func<Task>)(() => agent.SyncAsync(null, None))).Should().ThrowAsync<IOException>();
        w.Relay.Mailbox(w.Account).Should().ContainSingle("R stored E1 and acked");
        (await w.D1.PendingAsync(None)).Should().ContainSingle("D1 died before marking E1");

        var e2 = w.Scenario.Record(w.D1.Replica, [new LessonRescheduled(l1, l1.Date.AddDays(1), 18 * 60, 45, new RoomId("r2"))]);
        var summary = await agent.SyncAsync(null, None);

        summary.DuplicatePushes.Should().Be(1, "R answers the re-sent E1 as an idempotent duplicate");
        summary.BundlesPushed.Should().Be(2);
        summary.EventsSent.Should().Be(2);
        (await w.D1.PendingAsync(None)).Should().BeEmpty("D1's outbox is empty");
        w.D1.Outgoing.Should().BeNull();
        var stream = w.Relay.Mailbox(w.Account).SelectMany(item =>
        {
            EventBundles.TryOpen(item.Data, w.Scenario.Account, w.SchoolKeys, null, out var events, out var error).Should().BeTrue(error);
            return events!;
        }).Select(e => e.Event.Hash).ToList();
        stream.Should().Equal([e1.Event.Hash, e2.Event.Hash], "R's stream is [E1, E2], each exactly once");
    }

    [Fact]
    public async Task F04_a_failed_push_is_retried_on_its_own_schedule_without_a_new_local_change()
    {
        using var w = new World();
        for (var i = 0; i < 3; i++)
        {
            w.Absent(w.D1.Replica, i, 0);
        }

        var start = w.Time.GetUtcNow();
        var pushes = 0;
        w.Relay.Intercept = (r, _) =>
        {
            if (r.Method != HttpMethod.Post)
            {
                return Task.FromResult<HttpResponseMessage?>(null);
            }

            Interlocked.Increment(ref pushes);
            return Task.FromResult(w.Time.GetUtcNow() - start < TimeSpan.FromSeconds(20) ? new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) : null);
        };
        var agent = w.Agent(w.D1, World.Options(maxRetries: 1, baseDelay: TimeSpan.FromSeconds(1)));
        var position = w.D1.Replica.Position.Seq;
        await using var pusher = new RetryingPusher(agent, w.Time, new RetryingPusherOptions { InitialRetryDelay = TimeSpan.FromSeconds(5), MaxRetryDelay = TimeSpan.FromSeconds(30) });

        pusher.Start();
        for (var step = 0; step < 600; step++)
        {
            await Task.Delay(2);
            w.Time.Advance(TimeSpan.FromMilliseconds(100));
        }

        await Eventually.HoldsAsync(() => w.D1.PendingAsync(None).Result.Count == 0);
        pushes.Should().BeGreaterThanOrEqualTo(3, "at least 3 push attempts in the 60 s");
        (await w.D1.PendingAsync(None)).Should().BeEmpty("the outbox is empty at the end");
        w.Relay.Mailbox(w.Account).Should().ContainSingle();
        w.D1.Replica.Position.Seq.Should().Be(position, "no new local event was recorded");
        pusher.ConsecutiveFailures.Should().Be(0);
        pusher.Rounds.Should().BeGreaterThan(1);
    }

    [Fact]
    public async Task The_pusher_stops_and_reports_when_the_relay_requires_a_wipe()
    {
        using var w = new World();
        w.Absent(w.D1.Replica, 0, 0);
        w.Relay.Revoked.Add(w.D1.Id.Value);
        await using var pusher = new RetryingPusher(w.Agent(w.D1), w.Time);
        var wiped = new TaskCompletionSource<RelayWipeRequiredException>();
        pusher.WipeRequired += (_, ex) => wiped.TrySetResult(ex);

        pusher.Start();
        var ex = await wiped.Task.WaitAsync(TimeSpan.FromSeconds(10));

        ex.Problem!.IsWipe.Should().BeTrue();
        w.Time.Advance(TimeSpan.FromMinutes(10));
        await Task.Delay(50);
        pusher.Rounds.Should().Be(1);
    }

    [Fact]
    public async Task SyncAsync_throws_the_wipe_exception_to_the_app()
    {
        using var w = new World();
        w.Relay.Revoked.Add(w.D1.Id.Value);

        await ((Func<Task>)(() => w.Agent(w.D1).SyncAsync(null, None))).Should().ThrowAsync<RelayWipeRequiredException>();
    }

    [Fact]
    public async Task Bundles_for_other_devices_are_skipped_and_altered_ones_refused_while_the_cursor_moves_on()
    {
        using var w = new World();
        var client = w.Client(w.Signer2);
        var e1 = w.Absent(w.D2.Replica, 0, 0);
        var e2 = w.Absent(w.D2.Replica, 1, 0);
        var e3 = w.Absent(w.D2.Replica, 2, 0);
        var notForD1 = EventBundles.Seal(w.D2.Id, [e1], [w.SchoolKeys.PublicKey]);
        var tampered = EventBundles.Seal(w.D2.Id, [e2], w.D2.Recipients).Bytes;
        tampered[^1] ^= 0x01;
        var good = EventBundles.Seal(w.D2.Id, [e1, e2, e3], w.D2.Recipients);
        await client.PushAsync(w.Account, notForD1, None);
        await client.PushAsync(w.Account, tampered, None);
        await client.PushAsync(w.Account, good, None);

        var summary = await w.Agent(w.D1).SyncAsync(null, None);

        summary.BundlesPulled.Should().Be(3);
        summary.BundlesSkipped.Should().Be(1);
        summary.RefusedBundles.Should().ContainSingle().Which.Should().Match<RefusedBundle>(r => r.Position == 2 && r.Reason.Contains("AuthenticationFailed"));
        summary.Cursor.Should().Be(3);
        w.D1.Cursor.Should().Be(3);
        w.D1.Durable.Should().HaveCount(3, "only the good bundle's events were applied");
        summary.EventsReceived.Should().Be(3);
    }

    [Fact]
    public async Task Own_bundles_in_the_mailbox_are_not_opened_again()
    {
        using var w = new World();
        w.Absent(w.D1.Replica, 0, 0);
        var agent = w.Agent(w.D1);
        await agent.SyncAsync(null, None);

        var summary = await agent.SyncAsync(null, None);

        summary.BundlesPulled.Should().Be(1);
        summary.BundlesSkipped.Should().Be(1);
        summary.RefusedBundles.Should().BeEmpty();
        w.D1.Cursor.Should().Be(1);
    }

    [Fact]
    public async Task Progress_is_reported_through_every_phase()
    {
        using var w = new World();
        var d2 = w.Agent(w.D2, agentOptions: new SyncAgentOptions { MaxEventsPerBundle = 1 });
        for (var i = 0; i < 3; i++)
        {
            w.Absent(w.D2.Replica, i, 1);
        }

        await d2.PushAsync(null, None);
        w.Absent(w.D1.Replica, 5, 0);
        var progress = new ListProgress<SyncProgress>();

        var summary = await w.Agent(w.D1, agentOptions: new SyncAgentOptions { PageSize = 2 }).SyncAsync(progress, None);

        progress.Reports.Select(p => p.Phase).Distinct().Should().Equal(SyncPhase.Pulling, SyncPhase.Received, SyncPhase.Pushing, SyncPhase.Pushed, SyncPhase.Completed);
        progress.Reports.Select(p => p.Cursor).Should().BeInAscendingOrder();
        progress.Reports.Where(p => p.Phase == SyncPhase.Received).Select(p => p.Cursor).Should().Equal(2, 3);
        progress.Reports[^1].Should().Be(new SyncProgress(SyncPhase.Completed, 3, 3, 3, 1, 1));
        summary.EventsReceived.Should().Be(3);
        summary.EventsSent.Should().Be(1);
    }

    [Fact]
    public async Task A_cancelled_sync_sends_nothing()
    {
        using var w = new World();
        w.Absent(w.D1.Replica, 0, 0);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await ((Func<Task>)(() => w.Agent(w.D1).SyncAsync(null, cts.Token))).Should().ThrowAsync<OperationCanceledException>();

        w.Relay.Attempts.Should().BeEmpty();
        (await w.D1.PendingAsync(None)).Should().ContainSingle();
    }

    [Fact]
    public async Task Large_outboxes_are_split_into_several_bundles()
    {
        using var w = new World();
        for (var i = 0; i < 5; i++)
        {
            w.Absent(w.D1.Replica, i, 0);
        }

        var summary = await w.Agent(w.D1, agentOptions: new SyncAgentOptions { MaxEventsPerBundle = 2 }).PushAsync(null, None);

        summary.BundlesPushed.Should().Be(3);
        summary.EventsSent.Should().Be(5);
        w.Relay.Mailbox(w.Account).Should().HaveCount(3);
    }
}
