using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Store.Sqlite.Crypto;
using Microsoft.Data.Sqlite;

namespace IMikelGo.Store.Sqlite.Store;

/// <summary>
/// The encrypted store: one keyed SQLite connection (SQLite serialises writers anyway) guarded by a gate; every
/// payload sealed with AES-256-GCM under the payload key before it reaches SQLite.
/// </summary>
internal sealed class EncryptedSqliteStore : IDeviceStore, IDisposable
{
    internal const string Schema = """
        CREATE TABLE IF NOT EXISTS meta(
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS events(
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            replica TEXT NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 0),
            hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
            sealed BLOB NOT NULL,
            UNIQUE (account, replica, seq)) STRICT;
        CREATE TABLE IF NOT EXISTS outbox(
            event_id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
            state INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_attempt_ms INTEGER) STRICT;
        CREATE INDEX IF NOT EXISTS outbox_unacked ON outbox(state) WHERE state <> 2;
        CREATE TABLE IF NOT EXISTS kv(
            key TEXT PRIMARY KEY,
            sealed BLOB NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS cursors(
            mailbox TEXT PRIMARY KEY,
            cursor BLOB NOT NULL,
            updated_ms INTEGER NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS device_keys(
            name TEXT PRIMARY KEY,
            wrapped BLOB NOT NULL,
            created_ms INTEGER NOT NULL) STRICT;
        """;

    private readonly SqliteConnection connection;
    private readonly byte[] payloadKey;
    private readonly TimeProvider time;
    private readonly SemaphoreSlim gate = new(1, 1);
    private bool disposed;

    internal EncryptedSqliteStore(SqliteConnection connection, byte[] payloadKey, TimeProvider time, bool isDemo, string deviceId, string account)
    {
        this.connection = connection;
        this.payloadKey = payloadKey;
        this.time = time;
        IsDemo = isDemo;
        DeviceId = deviceId;
        Account = account;
    }

    public bool IsDemo { get; }

    public string DeviceId { get; }

    public string Account { get; }

    internal SqliteConnection Connection => connection;

    internal static void EnsureSchema(SqliteConnection conn)
    {
        using var tx = conn.BeginTransaction();
        using (var cmd = conn.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = Schema;
            cmd.ExecuteNonQuery();
        }

        tx.Commit();
    }

    internal static string? GetMeta(SqliteConnection conn, string key)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT value FROM meta WHERE key = $k";
        cmd.Parameters.AddWithValue("$k", key);
        return cmd.ExecuteScalar() as string;
    }

    internal static void SetMeta(SqliteConnection conn, string key, string value, SqliteTransaction? tx = null)
    {
        using var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO meta(key, value) VALUES ($k, $v) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
        cmd.Parameters.AddWithValue("$k", key);
        cmd.Parameters.AddWithValue("$v", value);
        cmd.ExecuteNonQuery();
    }

    public async Task<bool> AppendAsync(EventRecord record, CancellationToken cancellationToken) =>
        await AppendBatchAsync([record], cancellationToken).ConfigureAwait(false) == 1;

    public Task<int> AppendBatchAsync(IReadOnlyList<EventRecord> records, CancellationToken cancellationToken) =>
        AppendBatchAsync(records, acknowledged: false, cancellationToken);

    public async Task<int> AppendBatchAsync(IReadOnlyList<EventRecord> records, bool acknowledged, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        foreach (var r in records)
        {
            Validate(r);
        }

        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            using var tx = connection.BeginTransaction(deferred: false);
            using var inserter = new EventInserter(connection, tx, payloadKey, acknowledged);
            var added = 0;
            foreach (var r in records)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (inserter.Insert(r))
                {
                    added++;
                }
            }

            tx.Commit();
            return added;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Inserts an event and its pending outbox entry inside the caller's transaction.</summary>
    internal static bool InsertEvent(SqliteConnection conn, SqliteTransaction tx, EventRecord r, byte[] payloadKey)
    {
        using var inserter = new EventInserter(conn, tx, payloadKey, acknowledged: false);
        return inserter.Insert(r);
    }

    public async Task<IReadOnlyList<EventRecord>> ReadEventsAsync(string account, string replicaId, long fromSeq, int maxCount, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        ArgumentNullException.ThrowIfNull(replicaId);
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        return await WithConnection(conn =>
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "SELECT account, replica, seq, hash, sealed FROM events WHERE account = $a AND replica = $r AND seq >= $s ORDER BY seq LIMIT $n";
            cmd.Parameters.AddWithValue("$a", account);
            cmd.Parameters.AddWithValue("$r", replicaId);
            cmd.Parameters.AddWithValue("$s", fromSeq);
            cmd.Parameters.AddWithValue("$n", maxCount);
            return ReadEvents(cmd, cancellationToken);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<EventRecord> ReadAllEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        const int Page = 1000;
        long after = 0;
        while (true)
        {
            var page = await WithConnection(conn =>
            {
                using var cmd = conn.CreateCommand();
                cmd.CommandText = "SELECT account, replica, seq, hash, sealed, id FROM events WHERE id > $after ORDER BY id LIMIT $n";
                cmd.Parameters.AddWithValue("$after", after);
                cmd.Parameters.AddWithValue("$n", Page);
                var list = new List<(long Id, EventRecord Record)>(Page);
                using var reader = cmd.ExecuteReader();
                while (reader.Read())
                {
                    list.Add((reader.GetInt64(5), Unseal(reader)));
                }

                return list;
            }, cancellationToken).ConfigureAwait(false);

            foreach (var (id, record) in page)
            {
                after = id;
                yield return record;
            }

            if (page.Count < Page)
            {
                yield break;
            }
        }
    }

    public async Task<EventRecord?> FindEventAsync(ReadOnlyMemory<byte> eventHash, CancellationToken cancellationToken) =>
        await WithConnection(conn =>
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "SELECT account, replica, seq, hash, sealed FROM events WHERE hash = $h";
            cmd.Parameters.AddWithValue("$h", eventHash.ToArray());
            return ReadEvents(cmd, cancellationToken).FirstOrDefault();
        }, cancellationToken).ConfigureAwait(false);

    public async Task<IReadOnlyList<OutboxEntry>> GetOutboxForSyncAsync(int maxCount, CancellationToken cancellationToken)
    {
        ThrowIfDemo();
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        return await WithConnection(conn => ReadUnacked(conn, maxCount, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    internal IReadOnlyList<OutboxEntry> ReadUnacked(SqliteConnection conn, int maxCount, CancellationToken cancellationToken)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = """
            SELECT e.account, e.replica, e.seq, e.hash, e.sealed, o.state, o.attempts, o.last_attempt_ms
            FROM outbox o JOIN events e ON e.id = o.event_id
            WHERE o.state <> 2
            ORDER BY e.account, e.replica, e.seq
            LIMIT $n
            """;
        cmd.Parameters.AddWithValue("$n", maxCount);
        var list = new List<OutboxEntry>();
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            list.Add(new OutboxEntry(
                Unseal(reader),
                (OutboxState)reader.GetInt64(5),
                reader.GetInt32(6),
                reader.IsDBNull(7) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7))));
        }

        return list;
    }

    public Task MarkSentAsync(IReadOnlyCollection<ReadOnlyMemory<byte>> eventHashes, CancellationToken cancellationToken)
    {
        ThrowIfDemo();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return UpdateOutbox(eventHashes,
            "UPDATE outbox SET state = 1, attempts = attempts + 1, last_attempt_ms = $now WHERE state <> 2 AND event_id = (SELECT id FROM events WHERE hash = $h)",
            now, cancellationToken);
    }

    public Task MarkAckedAsync(IReadOnlyCollection<ReadOnlyMemory<byte>> eventHashes, CancellationToken cancellationToken)
    {
        ThrowIfDemo();
        return UpdateOutbox(eventHashes,
            "UPDATE outbox SET state = 2 WHERE event_id = (SELECT id FROM events WHERE hash = $h)",
            0, cancellationToken);
    }

    private async Task UpdateOutbox(IReadOnlyCollection<ReadOnlyMemory<byte>> hashes, string sql, long now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        await WithConnection(conn =>
        {
            using var tx = conn.BeginTransaction(deferred: false);
            using var cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            var h = cmd.Parameters.Add("$h", SqliteType.Blob);
            cmd.Parameters.AddWithValue("$now", now);
            foreach (var hash in hashes)
            {
                cancellationToken.ThrowIfCancellationRequested();
                h.Value = hash.ToArray();
                cmd.ExecuteNonQuery();
            }

            tx.Commit();
            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task SetCursorAsync(string mailbox, ReadOnlyMemory<byte> cursor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await WithConnection(conn =>
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "INSERT INTO cursors(mailbox, cursor, updated_ms) VALUES ($m, $c, $t) ON CONFLICT(mailbox) DO UPDATE SET cursor = excluded.cursor, updated_ms = excluded.updated_ms";
            cmd.Parameters.AddWithValue("$m", mailbox);
            cmd.Parameters.AddWithValue("$c", cursor.ToArray());
            cmd.Parameters.AddWithValue("$t", now);
            return cmd.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<byte[]?> GetCursorAsync(string mailbox, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        return await WithConnection(conn =>
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "SELECT cursor FROM cursors WHERE mailbox = $m";
            cmd.Parameters.AddWithValue("$m", mailbox);
            return cmd.ExecuteScalar() as byte[];
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task PutSnapshotAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken) =>
        PutSealed("kv", "key", "sealed", key, value, "kv|", extraColumn: null, cancellationToken);

    public Task<byte[]?> GetSnapshotAsync(string key, CancellationToken cancellationToken) =>
        GetSealed("kv", "key", "sealed", key, "kv|", cancellationToken);

    public Task PutDeviceKeyAsync(string name, ReadOnlyMemory<byte> keyMaterial, CancellationToken cancellationToken) =>
        PutSealed("device_keys", "name", "wrapped", name, keyMaterial, "device-key|", extraColumn: "created_ms", cancellationToken);

    public Task<byte[]?> GetDeviceKeyAsync(string name, CancellationToken cancellationToken) =>
        GetSealed("device_keys", "name", "wrapped", name, "device-key|", cancellationToken);

    private async Task PutSealed(string table, string keyColumn, string valueColumn, string key, ReadOnlyMemory<byte> value, string adPrefix, string? extraColumn, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        var sealedValue = KeyHierarchy.Seal(payloadKey, value.Span, Encoding.UTF8.GetBytes(adPrefix + key));
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await WithConnection(conn =>
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = extraColumn is null
                ? $"INSERT INTO {table}({keyColumn}, {valueColumn}) VALUES ($k, $v) ON CONFLICT({keyColumn}) DO UPDATE SET {valueColumn} = excluded.{valueColumn}"
                : $"INSERT INTO {table}({keyColumn}, {valueColumn}, {extraColumn}) VALUES ($k, $v, $t) ON CONFLICT({keyColumn}) DO UPDATE SET {valueColumn} = excluded.{valueColumn}";
            cmd.Parameters.AddWithValue("$k", key);
            cmd.Parameters.AddWithValue("$v", sealedValue);
            cmd.Parameters.AddWithValue("$t", now);
            return cmd.ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task<byte[]?> GetSealed(string table, string keyColumn, string valueColumn, string key, string adPrefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        var sealedValue = await WithConnection(conn =>
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = $"SELECT {valueColumn} FROM {table} WHERE {keyColumn} = $k";
            cmd.Parameters.AddWithValue("$k", key);
            return cmd.ExecuteScalar() as byte[];
        }, cancellationToken).ConfigureAwait(false);
        return sealedValue is null ? null : KeyHierarchy.Open(payloadKey, sealedValue, Encoding.UTF8.GetBytes(adPrefix + key));
    }

    private List<EventRecord> ReadEvents(SqliteCommand cmd, CancellationToken cancellationToken)
    {
        var list = new List<EventRecord>();
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            cancellationToken.ThrowIfCancellationRequested();
            list.Add(Unseal(reader));
        }

        return list;
    }

    private EventRecord Unseal(SqliteDataReader reader)
    {
        var account = reader.GetString(0);
        var replica = reader.GetString(1);
        var seq = reader.GetInt64(2);
        var hash = (byte[])reader.GetValue(3);
        var sealedPayload = (byte[])reader.GetValue(4);
        var payload = KeyHierarchy.Open(payloadKey, sealedPayload, KeyHierarchy.EventAssociatedData(account, replica, seq, hash));
        return new EventRecord(account, replica, seq, hash, payload);
    }

    private async Task<T> WithConnection<T>(Func<SqliteConnection, T> work, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            return work(connection);
        }
        finally
        {
            gate.Release();
        }
    }

    private static void Validate(EventRecord r)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentException.ThrowIfNullOrEmpty(r.Account);
        ArgumentException.ThrowIfNullOrEmpty(r.ReplicaId);
        ArgumentOutOfRangeException.ThrowIfNegative(r.Seq);
        if (r.EventHash.Length != 32)
        {
            throw new ArgumentException("An event hash is 32 bytes.", nameof(r));
        }
    }

    private void ThrowIfDemo()
    {
        if (IsDemo)
        {
            throw new VaultException(VaultErrorKind.DemoModeCannotSync, "The demo school never syncs.");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    public void Dispose()
    {
        gate.Wait();
        try
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            connection.Dispose();
            CryptographicOperations.ZeroMemory(payloadKey);
        }
        finally
        {
            gate.Release();
        }
    }
}

/// <summary>
/// Inserts events with their outbox entries in one open transaction, reusing its prepared commands for every row (a
/// batch of thousands pays the statement preparation once).
/// </summary>
internal sealed class EventInserter : IDisposable
{
    private readonly SqliteCommand _insert;
    private readonly SqliteCommand _outbox;
    private readonly SqliteCommand _check;
    private readonly byte[] _payloadKey;

    /// <param name="conn">The connection.</param>
    /// <param name="tx">Its open transaction.</param>
    /// <param name="payloadKey">The key sealing each payload.</param>
    /// <param name="acknowledged">
    /// Store the outbox entries as acknowledged (state 2): events received from peers, which this device never sends,
    /// so they are stored and settled in the same transaction.
    /// </param>
    public EventInserter(SqliteConnection conn, SqliteTransaction tx, byte[] payloadKey, bool acknowledged)
    {
        _payloadKey = payloadKey;
        _insert = conn.CreateCommand();
        _insert.Transaction = tx;
        _insert.CommandText = """
            INSERT INTO events(account, replica, seq, hash, sealed) VALUES ($a, $r, $s, $h, $p)
            ON CONFLICT DO NOTHING RETURNING id
            """;
        _insert.Parameters.Add("$a", SqliteType.Text);
        _insert.Parameters.Add("$r", SqliteType.Text);
        _insert.Parameters.Add("$s", SqliteType.Integer);
        _insert.Parameters.Add("$h", SqliteType.Blob);
        _insert.Parameters.Add("$p", SqliteType.Blob);
        _outbox = conn.CreateCommand();
        _outbox.Transaction = tx;
        _outbox.CommandText = "INSERT INTO outbox(event_id, state, attempts) VALUES ($id, $state, 0)";
        _outbox.Parameters.Add("$id", SqliteType.Integer);
        _outbox.Parameters.AddWithValue("$state", acknowledged ? 2 : 0);
        _check = conn.CreateCommand();
        _check.Transaction = tx;
        _check.CommandText = "SELECT count(*) FROM events WHERE hash = $h AND account = $a AND replica = $r AND seq = $s";
        _check.Parameters.Add("$a", SqliteType.Text);
        _check.Parameters.Add("$r", SqliteType.Text);
        _check.Parameters.Add("$s", SqliteType.Integer);
        _check.Parameters.Add("$h", SqliteType.Blob);
    }

    /// <summary>Inserts <paramref name="r"/>; false if the identical event was already stored.</summary>
    /// <exception cref="VaultException">With <see cref="VaultErrorKind.Conflict"/> when the position or hash holds another event.</exception>
    public bool Insert(EventRecord r)
    {
        var hash = r.EventHash.ToArray();
        var ad = KeyHierarchy.EventAssociatedData(r.Account, r.ReplicaId, r.Seq, hash);
        var p = _insert.Parameters;
        p[0].Value = r.Account;
        p[1].Value = r.ReplicaId;
        p[2].Value = r.Seq;
        p[3].Value = hash;
        p[4].Value = KeyHierarchy.Seal(_payloadKey, r.CanonicalEvent.Span, ad);
        if (_insert.ExecuteScalar() is long id)
        {
            _outbox.Parameters[0].Value = id;
            _outbox.ExecuteNonQuery();
            return true;
        }

        // Not inserted: the identical event is a harmless retry; anything else is a conflict.
        var c = _check.Parameters;
        c[0].Value = r.Account;
        c[1].Value = r.ReplicaId;
        c[2].Value = r.Seq;
        c[3].Value = hash;
        if ((long)_check.ExecuteScalar()! == 1)
        {
            return false;
        }

        throw new VaultException(VaultErrorKind.Conflict, "Another event already holds this position or hash.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _insert.Dispose();
        _outbox.Dispose();
        _check.Dispose();
    }
}
