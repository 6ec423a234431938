using System.Collections;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.Store.Sqlite.Store;
using IMikelGo.Store.Sqlite.Sync;

namespace IMikelGo.Store.Sqlite.Tests;

/// <summary>
/// Attacks on the vault's batch append (<c>AppendBatchAsync</c> with its reused-command <c>EventInserter</c>) and on
/// <see cref="DeviceReplica.ReceiveAsync"/>, which stores peers' events acknowledged in the append's transaction: a
/// conflict in the middle of a batch, a cancelled batch, a record repeated inside one batch, and the acknowledged
/// entries, which must never be offered for sending.
/// </summary>
public sealed class AppendBatchAdversarialTests
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    private static long Count(IDeviceStore store, string sql)
    {
        using var cmd = ((EncryptedSqliteStore)store).Connection.CreateCommand();
        cmd.CommandText = sql;
        return (long)cmd.ExecuteScalar()!;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_batch_whose_middle_record_conflicts_stores_nothing_and_leaves_no_outbox_row(bool acknowledged)
    {
        using var env = new TestVault();
        await using var vault = await env.EnrolledAsync();
        var store = vault.Store;
        await store.AppendAsync(TestVault.Event(2, "held"), Ct);

        // Position 2 is held by another hash; seq 1 before it and seq 3 after it are fine on their own.
        var act = () => store.AppendBatchAsync([TestVault.Event(1, "a"), TestVault.Event(2, "other"), TestVault.Event(3, "c")], acknowledged, Ct);
        (await act.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.Conflict);

        // A record reusing a stored hash at another position is a conflict too.
        var moved = TestVault.Event(2, "held") with { Seq = 4 };
        var act2 = () => store.AppendBatchAsync([TestVault.Event(1, "a"), moved, TestVault.Event(3, "c")], acknowledged, Ct);
        (await act2.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.Conflict);

        Count(store, "SELECT count(*) FROM events").Should().Be(1, "only the event stored before survives");
        Count(store, "SELECT count(*) FROM outbox").Should().Be(1);
        (await store.GetOutboxForSyncAsync(10, Ct)).Select(o => o.Event.Seq).Should().Equal(2);

        // The connection is left clean (no open transaction, gate released): the valid part appends now.
        (await store.AppendBatchAsync([TestVault.Event(1, "a"), TestVault.Event(3, "c")], acknowledged, Ct)).Should().Be(2);
        (await store.ReadEventsAsync(TestVault.Account, "dev-a", 0, 10, Ct)).Select(e => e.Seq).Should().Equal(1, 2, 3);
    }

    [Fact]
    public async Task A_batch_cancelled_between_two_records_stores_none_of_them_and_the_store_stays_usable()
    {
        using var env = new TestVault();
        await using var vault = await env.EnrolledAsync();
        var store = vault.Store;
        using var cts = new CancellationTokenSource();
        var records = Enumerable.Range(1, 5).Select(i => TestVault.Event(i, "r" + i)).ToList();

        // The store reads the list twice (validation, then inserts): cancel while it inserts, after the second record.
        var batch = new CancellingList(records, pass: 2, afterIndex: 1, cts);
        var act = () => store.AppendBatchAsync(batch, acknowledged: false, cts.Token);
        await act.Should().ThrowAsync<OperationCanceledException>();
        batch.Cancelled.Should().BeTrue("the token was cancelled in the middle of the insert loop");

        Count(store, "SELECT count(*) FROM events").Should().Be(0);
        Count(store, "SELECT count(*) FROM outbox").Should().Be(0);
        (await store.AppendBatchAsync(records, Ct)).Should().Be(5);
        (await store.GetOutboxForSyncAsync(10, Ct)).Should().HaveCount(5);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_record_repeated_inside_one_batch_is_stored_once_with_one_outbox_row(bool acknowledged)
    {
        using var env = new TestVault();
        await using var vault = await env.EnrolledAsync();
        var store = vault.Store;
        var a = TestVault.Event(1, "a", "dev-b");
        var b = TestVault.Event(2, "b", "dev-b");

        (await store.AppendBatchAsync([a, b, a, a, b], acknowledged, Ct)).Should().Be(2);

        Count(store, "SELECT count(*) FROM events").Should().Be(2);
        Count(store, "SELECT count(*) FROM outbox").Should().Be(2);
        Count(store, "SELECT count(*) FROM outbox WHERE state = 2").Should().Be(acknowledged ? 2 : 0);
    }

    [Fact]
    public async Task Acknowledged_entries_are_never_offered_not_after_a_late_sent_mark_nor_after_a_restart()
    {
        using var env = new TestVault();
        var peer = new[] { TestVault.Event(1, "p1", "dev-b"), TestVault.Event(2, "p2", "dev-b") };
        await using (var vault = await env.EnrolledAsync())
        {
            var store = vault.Store;
            await store.AppendBatchAsync([TestVault.Event(1, "own")], Ct);
            await store.AppendBatchAsync(peer, acknowledged: true, Ct);
            await store.MarkSentAsync([.. peer.Select(p => p.EventHash)], Ct); // a confused caller: still never offered
            (await store.GetOutboxForSyncAsync(10, Ct)).Select(o => o.Event.ReplicaId).Should().Equal("dev-a");

            // The same peer events appended again unacknowledged keep their (acknowledged) state.
            (await store.AppendBatchAsync(peer, acknowledged: false, Ct)).Should().Be(0);
            (await store.GetOutboxForSyncAsync(10, Ct)).Select(o => o.Event.ReplicaId).Should().Equal("dev-a");
        }

        await using var reopened = env.Create();
        await reopened.InitializeAsync(Ct);
        (await reopened.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        (await reopened.Store.GetOutboxForSyncAsync(10, Ct)).Select(o => o.Event.ReplicaId).Should().Equal("dev-a");
        Count(reopened.Store, "SELECT count(*) FROM outbox WHERE state = 2").Should().Be(2);
    }

    [Fact]
    public async Task A_receive_whose_store_write_failed_is_stored_when_the_same_events_come_again()
    {
        using var test = new TestVault();
        var account = new AccountId(TestVault.Account.ToLowerInvariant());
        using var schoolKey = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        string digest;
        await using (var vault = await test.EnrolledAsync())
        {
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            school.RecordBatch([
                new AccountOpened("ms", "Anna", schoolKey.PublicKey),
                new StudentEnrolled(new StudentId("s1"), "Ben"),
                new SeriesPublished(new SeriesId("oboe"), "Oboe", 3, 900, 45, new RoomId("r1"), [new StudentId("s1")], new DateOnly(2026, 9, 1), new DateOnly(2026, 12, 31)),
            ]).Error.Should().BeNull();
            var events = school.Ledger.Export(account);

            // The write fails after the replica merged the events in memory (here: the sync was cancelled).
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await FluentActions.Awaiting(() => device.ReceiveAsync(events, cancelled.Token)).Should().ThrowAsync<OperationCanceledException>();

            // The relay cursor did not move, so the same page comes again: now it must reach the vault.
            await device.ReceiveAsync(events, Ct);
            digest = device.Replica.Calendar.Digest();
            (await vault.Store.ReadEventsAsync(account.Value, school.Id.Value, 0, 10, Ct)).Should().HaveCount(events.Count, "every merged event is in the vault");
            (await vault.Store.GetOutboxForSyncAsync(10, Ct)).Should().BeEmpty("the school's events are stored acknowledged and the device recorded nothing");
            Count(vault.Store, "SELECT count(*) FROM outbox WHERE state = 2").Should().Be(events.Count);
        }

        await using var reopened = test.Create();
        await reopened.InitializeAsync(Ct);
        (await reopened.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        using var again = await DeviceReplica.OpenAsync(reopened.Store);
        again.Replica.Calendar.Digest().Should().Be(digest, "the restarted device has what it showed before");
    }

    [Fact]
    public async Task A_record_whose_store_write_failed_is_not_sent_and_is_stored_before_the_next_record()
    {
        using var test = new TestVault();
        var account = new AccountId(TestVault.Account.ToLowerInvariant());
        using var schoolKey = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        var occurrence = new OccurrenceId(new SeriesId("oboe"), new DateOnly(2026, 12, 2));
        string digest;
        await using (var vault = await test.EnrolledAsync())
        {
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            school.RecordBatch([
                new AccountOpened("ms", "Anna", schoolKey.PublicKey),
                new StudentEnrolled(new StudentId("s1"), "Ben"),
                new SeriesPublished(new SeriesId("oboe"), "Oboe", 3, 900, 45, new RoomId("r1"), [new StudentId("s1")], new DateOnly(2026, 9, 1), new DateOnly(2026, 12, 31)),
                new DeviceEnrolled(device.Id, "laptop", device.PublicKey),
            ]).Error.Should().BeNull();
            (await device.ReceiveAsync(school.Ledger.Export(account), Ct)).IsClean.Should().BeTrue();
            var keySeq = device.Replica.Position.Seq;

            // The absence's write fails (the call was cancelled): it is not in the vault, so it is not offered for sending.
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await FluentActions.Awaiting(() => device.RecordAsync(new StudentAbsent(occurrence, new StudentId("s1"), false, null), cancelled.Token))
                .Should().ThrowAsync<OperationCanceledException>();
            (await device.PendingAsync(Ct)).Select(e => e.Event.Seq).Should().Equal([keySeq], "only what the vault holds is sent");

            // The next record stores the earlier one first, in the same transaction: no gap in the vault's chain.
            (await device.RecordAsync(new LessonHeld(occurrence, "scales"), Ct)).Error.Should().BeNull();
            (await device.PendingAsync(Ct)).Select(e => e.Event.Seq).Should().Equal([keySeq, keySeq + 1, keySeq + 2]);
            digest = device.Replica.Calendar.Digest();
        }

        await using var reopened = test.Create();
        await reopened.InitializeAsync(Ct);
        (await reopened.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        using var again = await DeviceReplica.OpenAsync(reopened.Store);
        again.Replica.Calendar.Digest().Should().Be(digest, "the restarted device has both facts");
        again.Replica.Calendar.Lessons().Single(l => l.Occurrence == occurrence).Absent.Should().ContainKey("s1");
    }

    /// <summary>A list that cancels <paramref name="cts"/> on its <paramref name="pass"/>-th enumeration after yielding item <paramref name="afterIndex"/>.</summary>
    private sealed class CancellingList(IReadOnlyList<EventRecord> items, int pass, int afterIndex, CancellationTokenSource cts) : IReadOnlyList<EventRecord>
    {
        private int _passes;

        public bool Cancelled { get; private set; }

        public int Count => items.Count;

        public EventRecord this[int index] => items[index];

        public IEnumerator<EventRecord> GetEnumerator()
        {
            var current = ++_passes;
            for (var i = 0; i < items.Count; i++)
            {
                yield return items[i];
                if (current == pass && i == afterIndex)
                {
                    cts.Cancel();
                    Cancelled = true;
                }
            }
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
