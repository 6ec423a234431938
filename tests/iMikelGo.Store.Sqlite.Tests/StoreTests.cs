using System.Text;
using IMikelGo.Store.Sqlite.Crypto;
using IMikelGo.Store.Sqlite.Store;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace IMikelGo.Store.Sqlite.Tests;

public sealed class StoreTests
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    [Fact]
    public async Task Append_is_durable_idempotent_and_survives_lock_and_unlock()
    {
        using var env = new TestVault();
        await using (var vault = await env.EnrolledAsync())
        {
            var store = vault.Store;
            (await store.AppendAsync(TestVault.Event(1, "Anna"), Ct)).Should().BeTrue();
            (await store.AppendAsync(TestVault.Event(1, "Anna"), Ct)).Should().BeFalse("the identical event is a retry");
            (await store.AppendBatchAsync([TestVault.Event(2, "Ben"), TestVault.Event(3, "Clara")], Ct)).Should().Be(2);
            await store.SetCursorAsync("inbox/dev-a", new byte[] { 1, 2, 3 }, Ct);
            await store.PutSnapshotAsync("timetable", Encoding.UTF8.GetBytes("snapshot"), Ct);
            await store.PutDeviceKeyAsync("signing", new byte[] { 9, 9, 9 }, Ct);
        }

        await using var reopened = env.Create();
        (await reopened.InitializeAsync(Ct)).Should().Be(VaultState.Locked);
        (await reopened.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        var s = reopened.Store;
        var events = await s.ReadEventsAsync(TestVault.Account, "dev-a", 1, 10, Ct);
        events.Select(e => e.Seq).Should().Equal(1, 2, 3);
        Encoding.UTF8.GetString(events[1].CanonicalEvent.Span).Should().Contain("Ben");
        (await s.GetCursorAsync("inbox/dev-a", Ct)).Should().Equal(1, 2, 3);
        Encoding.UTF8.GetString((await s.GetSnapshotAsync("timetable", Ct))!).Should().Be("snapshot");
        (await s.GetDeviceKeyAsync("signing", Ct)).Should().Equal(9, 9, 9);
        (await s.FindEventAsync(TestVault.Event(3, "Clara").EventHash, Ct))!.Seq.Should().Be(3);
        var all = new List<EventRecord>();
        await foreach (var e in s.ReadAllEventsAsync(Ct))
        {
            all.Add(e);
        }

        all.Should().HaveCount(3);
    }

    [Fact]
    public async Task A_conflicting_event_at_a_taken_position_is_refused_and_the_batch_rolls_back()
    {
        using var env = new TestVault();
        await using var vault = await env.EnrolledAsync();
        await vault.Store.AppendAsync(TestVault.Event(1, "Anna"), Ct);
        var act = () => vault.Store.AppendBatchAsync([TestVault.Event(2, "Ben"), TestVault.Event(1, "Other")], Ct);
        (await act.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.Conflict);
        (await vault.Store.ReadEventsAsync(TestVault.Account, "dev-a", 0, 10, Ct)).Should().ContainSingle();
    }

    [Fact]
    public async Task Events_appended_acknowledged_are_stored_and_never_offered_and_a_conflict_rolls_back_the_batch()
    {
        using var env = new TestVault();
        await using (var vault = await env.EnrolledAsync())
        {
            var store = vault.Store;
            (await store.AppendBatchAsync([TestVault.Event(1, "own")], Ct)).Should().Be(1);
            (await store.AppendBatchAsync([TestVault.Event(1, "peer", "dev-b"), TestVault.Event(2, "peer", "dev-b")], acknowledged: true, Ct)).Should().Be(2);

            // A retry of stored events adds nothing and keeps their outbox state (the own pending event stays pending).
            (await store.AppendBatchAsync([TestVault.Event(1, "own"), TestVault.Event(2, "peer", "dev-b")], acknowledged: true, Ct)).Should().Be(0);
            var act = () => store.AppendBatchAsync([TestVault.Event(3, "peer", "dev-b"), TestVault.Event(1, "other", "dev-b")], acknowledged: true, Ct);
            (await act.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.Conflict);
        }

        await using var reopened = env.Create();
        await reopened.InitializeAsync(Ct);
        (await reopened.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        (await reopened.Store.ReadEventsAsync(TestVault.Account, "dev-b", 0, 10, Ct)).Select(e => e.Seq).Should().Equal([1L, 2L], "the refused batch left nothing behind");
        (await reopened.Store.GetOutboxForSyncAsync(10, Ct)).Select(o => o.Event.ReplicaId).Should().Equal("dev-a");
    }

    [Fact]
    public async Task Outbox_tracks_each_event_pending_sent_acked()
    {
        using var env = new TestVault();
        await using var vault = await env.EnrolledAsync();
        var store = vault.Store;
        await store.AppendBatchAsync([TestVault.Event(1, "a"), TestVault.Event(2, "b")], Ct);
        var first = await store.GetOutboxForSyncAsync(10, Ct);
        first.Select(o => o.State).Should().Equal(OutboxState.Pending, OutboxState.Pending);

        await store.MarkSentAsync([first[0].Event.EventHash], Ct);
        var second = await store.GetOutboxForSyncAsync(10, Ct);
        second.Should().HaveCount(2, "a sent but unacknowledged event is offered again");
        second[0].State.Should().Be(OutboxState.Sent);
        second[0].Attempts.Should().Be(1);
        second[0].LastAttempt.Should().NotBeNull();

        await store.MarkAckedAsync([first[0].Event.EventHash], Ct);
        await store.MarkSentAsync([first[0].Event.EventHash], Ct); // a late "sent" never un-acknowledges
        (await store.GetOutboxForSyncAsync(10, Ct)).Select(o => o.Event.Seq).Should().Equal(2);
    }

    [Fact]
    public async Task F03_an_event_committed_after_a_sync_with_a_lower_seq_is_pushed_by_the_next_sync()
    {
        using var env = new TestVault();
        await using var vault = await env.EnrolledAsync();
        var store = (EncryptedSqliteStore)vault.Store;
        var dek = ReadDek(env);

        // D1 opens a write transaction for seq 7 on its own connection (SQLite admits one writer at a time, so the
        // transaction is begun deferred and its insert lands after seq 8 committed — the order of commits that F03 needs).
        using var writer7 = vault.OpenExtraConnection(dek);
        using var tx7 = writer7.BeginTransaction(deferred: true);

        // Meanwhile seq 8 commits and a sync runs: it sees 8 only and the relay acknowledges it.
        await store.AppendAsync(TestVault.Event(8, "eight"), Ct);
        var sync1 = await store.GetOutboxForSyncAsync(100, Ct);
        sync1.Select(o => o.Event.Seq).Should().Equal(8);
        await store.MarkSentAsync(sync1.Select(o => o.Event.EventHash).ToList(), Ct);
        await store.MarkAckedAsync(sync1.Select(o => o.Event.EventHash).ToList(), Ct);

        // Seq 7 commits after that sync finished.
        EncryptedSqliteStore.InsertEvent(writer7, tx7, TestVault.Event(7, "seven"), KeyHierarchy.PayloadKey(dek));
        tx7.Commit();

        var sync2 = await store.GetOutboxForSyncAsync(100, Ct);
        sync2.Select(o => o.Event.Seq).Should().Equal(7);
        Encoding.UTF8.GetString(sync2[0].Event.CanonicalEvent.Span).Should().Contain("seven");
    }

    [Fact]
    public async Task Every_connection_has_temp_store_memory_wal_and_secure_delete()
    {
        using var env = new TestVault();
        await using var vault = await env.EnrolledAsync();
        var store = (EncryptedSqliteStore)vault.Store;
        using var extra = vault.OpenExtraConnection(ReadDek(env));
        foreach (var conn in new[] { store.Connection, extra })
        {
            Scalar(conn, "PRAGMA temp_store").Should().Be(2L);
            Scalar(conn, "PRAGMA journal_mode").Should().Be("wal");
            Scalar(conn, "PRAGMA secure_delete").Should().Be(1L);
            Scalar(conn, "PRAGMA cipher").Should().Be("chacha20");
        }
    }

    [Fact]
    public async Task Wrong_key_fails_right_key_opens_and_the_header_is_not_plaintext()
    {
        using var env = new TestVault();
        await using (var vault = await env.EnrolledAsync())
        {
            await vault.Store.AppendAsync(TestVault.Event(1, "Anna"), Ct);
        }

        var db = env.Paths.Database;
        var header = new byte[16];
        using (var fs = File.OpenRead(db))
        {
            fs.ReadExactly(header);
        }

        Encoding.ASCII.GetString(header).Should().NotStartWith("SQLite format 3");
        var dek = ReadDek(env);
        var wrong = (byte[])dek.Clone();
        wrong[0] ^= 1;
        SqliteConnector.TryOpen(db, KeyHierarchy.DatabaseKey(wrong), CipherProfile.ChaCha20, null).Should().BeNull("a wrong key must fail");
        using var right = SqliteConnector.TryOpen(db, KeyHierarchy.DatabaseKey(dek), CipherProfile.ChaCha20, null);
        right.Should().NotBeNull();
        Scalar(right!, "SELECT count(*) FROM events").Should().Be(1L);
    }

    [Fact]
    public async Task A_plaintext_database_file_is_refused()
    {
        using var env = new TestVault();
        await using (var vault = await env.EnrolledAsync())
        {
        }

        var db = env.Paths.Database;
        foreach (var f in env.Paths.DatabaseFiles(db))
        {
            File.Delete(f);
        }

        using (var plain = new SqliteConnection($"Data Source={db};Pooling=False"))
        {
            plain.Open();
            using var cmd = plain.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);";
            cmd.ExecuteNonQuery();
        }

        await using var reopened = env.Create();
        await reopened.InitializeAsync(Ct);
        var act = () => reopened.UnlockAsync(TestVault.Pin, Ct);
        (await act.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.PlaintextDatabase);
        env.ReadCounter()!.Value.Failures.Should().Be(0, "a refused file is not a wrong PIN");
    }

    [Fact]
    public async Task F14_no_plaintext_in_store_wal_temp_or_os_temp_after_10000_inserts_order_by_and_vacuum()
    {
        var marker = string.Concat("ZZ", "MARKER", Guid.NewGuid().ToString("N")[..8]);
        using var env = new TestVault();
        var startRef = Path.Combine(Path.GetTempPath(), "imikelgo-vault-tests", "f14-start-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(startRef, "");
        File.SetLastWriteTimeUtc(startRef, DateTime.UtcNow.AddSeconds(-2));
        await using var vault = await env.EnrolledAsync();
        var store = (EncryptedSqliteStore)vault.Store;

        var events = Enumerable.Range(1, 10_000).Select(i => TestVault.Event(i, $"{marker} student {i % 97}")).ToList();
        (await store.AppendBatchAsync(events, Ct)).Should().Be(10_000);

        // Plaintext attendance rows inside SQLite itself, to drive the sorter, temp tables and VACUUM (F14).
        var conn = store.Connection;
        Exec(conn, "CREATE TABLE attendance(student TEXT, lesson INTEGER, note TEXT)");
        using (var tx = conn.BeginTransaction())
        {
            using var ins = conn.CreateCommand();
            ins.Transaction = tx;
            ins.CommandText = "INSERT INTO attendance VALUES ($s, $l, $n)";
            var s = ins.Parameters.Add("$s", SqliteType.Text);
            var l = ins.Parameters.Add("$l", SqliteType.Integer);
            var n = ins.Parameters.Add("$n", SqliteType.Text);
            for (var i = 0; i < 10_000; i++)
            {
                s.Value = $"{marker} {i:D5}";
                l.Value = i;
                n.Value = new string('x', 200) + marker;
                ins.ExecuteNonQuery();
            }

            tx.Commit();
        }

        // The scanner itself works (negative control).
        var control = Path.Combine(env.Root, "control.txt");
        await File.WriteAllTextAsync(control, marker);
        TestVault.FilesContaining(env.Root, marker).Should().ContainSingle();
        File.Delete(control);

        File.Exists(env.Paths.Database + "-wal").Should().BeTrue();
        TestVault.FilesContaining(env.Root, marker).Should().BeEmpty("during the run the store and its WAL are encrypted");

        Exec(conn, "PRAGMA cache_size = 10"); // force sorter and page-cache spills
        using (var cmd = conn.CreateCommand())
        {
            cmd.CommandText = "SELECT student, note FROM attendance ORDER BY note DESC, student DESC";
            using var r = cmd.ExecuteReader();
            var rows = 0;
            while (r.Read())
            {
                rows++;
                if (rows == 5000)
                {
                    TestVault.FilesContaining(env.Root, marker).Should().BeEmpty("mid-sort");
                }
            }

            rows.Should().Be(10_000);
        }

        Exec(conn, "CREATE TEMP TABLE scratch AS SELECT * FROM attendance ORDER BY note");
        Exec(conn, "SELECT count(DISTINCT student) FROM attendance");
        Exec(conn, "CREATE INDEX attendance_note ON attendance(note)");
        Exec(conn, "VACUUM");
        Exec(conn, "PRAGMA wal_checkpoint(TRUNCATE)");

        TestVault.FilesContaining(env.Root, marker).Should().BeEmpty("the app's folders hold no plaintext");
        TestVault.FilesContaining(Path.GetTempPath(), marker, startRef).Should().BeEmpty("the OS temp folder holds no plaintext");
        File.Delete(startRef);

        // And the payload column is sealed: even with the page key the lesson content is not readable.
        using var raw = vault.OpenExtraConnection(ReadDek(env));
        using var q = raw.CreateCommand();
        q.CommandText = "SELECT sealed FROM events LIMIT 50";
        using var reader = q.ExecuteReader();
        var m = Encoding.UTF8.GetBytes(marker);
        while (reader.Read())
        {
            ((byte[])reader.GetValue(0)).AsSpan().IndexOf(m).Should().Be(-1);
        }
    }

    [Fact]
    public void Registration_resolves_a_vault_with_options()
    {
        var root = Path.Combine(Path.GetTempPath(), "imikelgo-vault-tests", Guid.NewGuid().ToString("N"));
        var services = new ServiceCollection();
        services.AddIMikelGoDeviceVault(o =>
        {
            o.RootDirectory = root;
            o.Pbkdf2Iterations = 1000;
        });
        using var sp = services.BuildServiceProvider();
        var vault = sp.GetRequiredService<DeviceVault>();
        vault.State.Should().Be(VaultState.NotEnrolled);
        sp.GetRequiredService<IDeviceSecretStore>().Should().BeOfType<FileDeviceSecretStore>();
        sp.GetRequiredService<DeviceVault>().Should().BeSameAs(vault);
    }

    internal static byte[] ReadDek(TestVault env)
    {
        var envelope = Vault.KeyEnvelope.Parse(File.ReadAllBytes(env.Paths.KeyFile));
        var secret = File.ReadAllBytes(Path.Combine(env.SecretDirectory, "device.secret"));
        var kek = KeyHierarchy.DeriveKek(TestVault.Pin, secret, envelope.Salt, envelope.Iterations, envelope.InstallId);
        return KeyHierarchy.Open(kek, envelope.WrappedDek, envelope.AssociatedData());
    }

    private static object? Scalar(SqliteConnection conn, string sql)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    private static void Exec(SqliteConnection conn, string sql)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
