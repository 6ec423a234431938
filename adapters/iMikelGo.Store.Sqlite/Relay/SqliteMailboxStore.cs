using System.Globalization;
using IMikelGo.Engine.Relay;
using IMikelGo.Store.Sqlite.Native;
using Microsoft.Data.Sqlite;

namespace IMikelGo.Store.Sqlite.Relay;

/// <summary>
/// The relay's embedded mailbox store (one machine): one SQLite file in WAL mode, shared safely by several threads
/// and several processes. Every write runs in a <c>BEGIN IMMEDIATE</c> transaction, so writers are serialized by
/// SQLite's file lock: a mailbox's positions are assigned gap-free and in commit order (a reader never sees
/// position N+1 before N), and <c>UNIQUE(account, bundle_id)</c> makes a retried push return the original position
/// instead of a second copy (field report F05). Nonces are single-use through <c>UNIQUE(caller, nonce)</c>.
/// Revocations live apart from callers, so deleting a caller keeps its pending wipe. Stores ciphertext, pseudonymous
/// ids, sizes and times only; see docs/stores.md for the optional file encryption.
/// </summary>
public sealed class SqliteMailboxStore : IMailboxStore, IDisposable
{
    private const int SqliteConstraint = 19;
    private const string WholeAccount = "";

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS mailbox_heads (
            account TEXT NOT NULL PRIMARY KEY,
            head INTEGER NOT NULL,
            size INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS bundles (
            account TEXT NOT NULL,
            position INTEGER NOT NULL CHECK (position > 0),
            bundle_id TEXT NOT NULL,
            sender TEXT NOT NULL,
            data BLOB NOT NULL,
            size INTEGER NOT NULL,
            stored_at INTEGER NOT NULL,
            PRIMARY KEY (account, position),
            UNIQUE (account, bundle_id)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS acks (
            account TEXT NOT NULL,
            caller TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (account, caller)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS callers (
            id TEXT NOT NULL PRIMARY KEY,
            account TEXT NOT NULL,
            signing_key BLOB NOT NULL,
            is_school INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS revocations (
            account TEXT NOT NULL,
            device TEXT NOT NULL,
            reason TEXT NOT NULL,
            revoked_at INTEGER NOT NULL,
            PRIMARY KEY (account, device)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS wipe_acks (
            account TEXT NOT NULL,
            device TEXT NOT NULL,
            acked_at INTEGER NOT NULL,
            PRIMARY KEY (account, device)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS nonces (
            caller TEXT NOT NULL,
            nonce TEXT NOT NULL,
            expires INTEGER NOT NULL,
            PRIMARY KEY (caller, nonce)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires);
        CREATE TABLE IF NOT EXISTS enrollments (
            id TEXT NOT NULL PRIMARY KEY,
            school TEXT NOT NULL,
            position INTEGER NOT NULL CHECK (position > 0),
            request BLOB NOT NULL,
            received_at INTEGER NOT NULL,
            answered INTEGER NOT NULL DEFAULT 0,
            approved INTEGER NOT NULL DEFAULT 0,
            answer BLOB,
            answered_at INTEGER,
            UNIQUE (school, position)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS enrollments_pending ON enrollments (school, answered, position);
        """;

    private const string ReadSql =
        "SELECT position, bundle_id, sender, data, stored_at FROM bundles WHERE account = $a AND position > $after ORDER BY position LIMIT $limit";

    private const string HeadSql = "SELECT head FROM mailbox_heads WHERE account = $a";
    private const string SizeSql = "SELECT size FROM mailbox_heads WHERE account = $a";
    private const string CallerSql = "SELECT id, account, signing_key, is_school FROM callers WHERE id = $i";
    private const string RevokedSql = "SELECT 1 FROM revocations WHERE account = $a AND device IN ($d, '') LIMIT 1";
    private const string NonceSql = "INSERT INTO nonces (caller, nonce, expires) VALUES ($c, $n, $e) ON CONFLICT (caller, nonce) DO NOTHING";
    private const string PruneSql = "DELETE FROM nonces WHERE expires < $now";

    /// <summary>Most idle read sessions kept open (more concurrent readers open and close extra ones).</summary>
    private const int MaxIdleSessions = 16;

    /// <summary>Nonce inserts between two background checkpoints (the nonce connection never checkpoints itself).</summary>
    private const int NonceCheckpointEvery = 256;

    private readonly string connectionString;
    private readonly SqliteMailboxStoreOptions options;
    private readonly System.Collections.Concurrent.ConcurrentBag<Session> idle = [];
    private readonly Lock nonceGate = new();
    private Session? nonceSession;
    private long nextPruneTicks;
    private int noncesSinceCheckpoint;
    private int checkpointRunning;
    private bool disposed;

    /// <summary>Opens (and creates when missing) the store.</summary>
    public SqliteMailboxStore(SqliteMailboxStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Path))
        {
            throw new ArgumentException("SqliteMailboxStoreOptions.Path is required.", nameof(options));
        }

        this.options = options;
        SqliteNative.EnsureLoaded(options.NativeLibraryPath);
        var full = System.IO.Path.GetFullPath(options.Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = full,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = Math.Max(1, (int)options.BusyTimeout.TotalSeconds),
        };
        if (!string.IsNullOrEmpty(options.Passphrase))
        {
            builder.Password = options.Passphrase;
        }

        connectionString = builder.ToString();
        FilePath = full;
        using var conn = Open();
        Exec(conn, "PRAGMA journal_mode = WAL", expect: "wal");
        using var tx = conn.BeginTransaction(deferred: false);
        Exec(conn, Schema, tx);
        tx.Commit();
    }

    /// <summary>The database file.</summary>
    public string FilePath { get; }

    /// <inheritdoc />
    public Task<PushResult> AppendAsync(string account, Guid bundleId, string sender, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        RequireId(sender, nameof(sender));
        cancellationToken.ThrowIfCancellationRequested();
        var id = bundleId.ToString("D");
        for (var attempt = 0; ; attempt++)
        {
            using var conn = Open();
            try
            {
                using var tx = conn.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: one writer at a time, across processes
                if (Scalar(conn, tx, "SELECT position FROM bundles WHERE account = $a AND bundle_id = $b", ("$a", account), ("$b", id)) is long existing)
                {
                    tx.Commit();
                    return Task.FromResult(new PushResult(existing, bundleId, Duplicate: true));
                }

                var head = Scalar(conn, tx, "SELECT head FROM mailbox_heads WHERE account = $a", ("$a", account)) as long? ?? 0;
                var position = head + 1;
                using (var insert = Command(conn, tx,
                    "INSERT INTO bundles (account, position, bundle_id, sender, data, size, stored_at) VALUES ($a, $p, $b, $s, $d, $n, $t)",
                    ("$a", account), ("$p", position), ("$b", id), ("$s", sender), ("$d", data.ToArray()), ("$n", (long)data.Length), ("$t", Now())))
                {
                    insert.ExecuteNonQuery();
                }

                using (var upsert = Command(conn, tx,
                    "INSERT INTO mailbox_heads (account, head, size) VALUES ($a, $p, $n) ON CONFLICT (account) DO UPDATE SET head = excluded.head, size = size + excluded.size",
                    ("$a", account), ("$p", position), ("$n", (long)data.Length)))
                {
                    upsert.ExecuteNonQuery();
                }

                tx.Commit();
                return Task.FromResult(new PushResult(position, bundleId, Duplicate: false));
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint && attempt < 3)
            {
                // The database refused a second copy (a writer that bypassed the lock): read the original again.
            }
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredBundle>> ReadAsync(string account, long after, int limit, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        cancellationToken.ThrowIfCancellationRequested();
        var session = Rent();
        try
        {
            var cmd = session.Prepared(ReadSql, "$a", "$after", "$limit");
            cmd.Parameters[0].Value = account;
            cmd.Parameters[1].Value = after;
            cmd.Parameters[2].Value = (long)limit;
            using var reader = cmd.ExecuteReader();
            List<StoredBundle>? list = null;
            while (reader.Read())
            {
                (list ??= []).Add(new StoredBundle(
                    reader.GetInt64(0),
                    Guid.ParseExact(reader.GetString(1), "D"),
                    reader.GetString(2),
                    (byte[])reader.GetValue(3),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4))));
            }

            return Task.FromResult<IReadOnlyList<StoredBundle>>(list ?? (IReadOnlyList<StoredBundle>)[]);
        }
        finally
        {
            Return(session);
        }
    }

    /// <inheritdoc />
    public Task<long> HeadAsync(string account, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        return Task.FromResult(ReadLong(HeadSql, account));
    }

    /// <inheritdoc />
    public Task<long> SizeAsync(string account, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        return Task.FromResult(ReadLong(SizeSql, account));
    }

    /// <inheritdoc />
    public Task AckAsync(string account, string caller, long position, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        RequireId(caller, nameof(caller));
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        Write(
            "INSERT INTO acks (account, caller, position) VALUES ($a, $c, $p) ON CONFLICT (account, caller) DO UPDATE SET position = max(position, excluded.position)",
            ("$a", account), ("$c", caller), ("$p", position));
        return Task.CompletedTask;
    }

    /// <summary>The highest position <paramref name="caller"/> acknowledged (0 when none); for tests and operations.</summary>
    public Task<long> AckedAsync(string account, string caller, CancellationToken cancellationToken)
    {
        using var conn = Open();
        return Task.FromResult(Scalar(conn, null, "SELECT position FROM acks WHERE account = $a AND caller = $c", ("$a", account), ("$c", caller)) as long? ?? 0);
    }

    /// <inheritdoc />
    public Task PutCallerAsync(RelayCaller caller, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        RequireId(caller.Id, nameof(caller));
        RequireId(caller.Account, nameof(caller));
        ArgumentNullException.ThrowIfNull(caller.SigningKey);
        Write(
            "INSERT INTO callers (id, account, signing_key, is_school) VALUES ($i, $a, $k, $s) ON CONFLICT (id) DO UPDATE SET account = excluded.account, signing_key = excluded.signing_key, is_school = excluded.is_school",
            ("$i", caller.Id), ("$a", caller.Account), ("$k", caller.SigningKey), ("$s", caller.IsSchool ? 1L : 0L));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<RelayCaller?> GetCallerAsync(string id, CancellationToken cancellationToken)
    {
        RequireId(id, nameof(id));
        var session = Rent();
        try
        {
            var cmd = session.Prepared(CallerSql, "$i");
            cmd.Parameters[0].Value = id;
            using var reader = cmd.ExecuteReader();
            RelayCaller? caller = reader.Read()
                ? new RelayCaller(reader.GetString(0), reader.GetString(1), (byte[])reader.GetValue(2), reader.GetInt64(3) != 0)
                : null;
            return Task.FromResult(caller);
        }
        finally
        {
            Return(session);
        }
    }

    /// <inheritdoc />
    public Task DeleteCallerAsync(string id, CancellationToken cancellationToken)
    {
        RequireId(id, nameof(id));
        Write("DELETE FROM callers WHERE id = $i", ("$i", id));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task RevokeAsync(string account, string? device, string reason, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        if (device is not null)
        {
            RequireId(device, nameof(device));
        }

        ArgumentNullException.ThrowIfNull(reason);
        Write(
            "INSERT INTO revocations (account, device, reason, revoked_at) VALUES ($a, $d, $r, $t) ON CONFLICT (account, device) DO NOTHING",
            ("$a", account), ("$d", device ?? WholeAccount), ("$r", reason), ("$t", Now()));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<bool> IsRevokedAsync(string account, string device, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        RequireId(device, nameof(device));
        var session = Rent();
        try
        {
            // Never cached: every request reads the stored revocations, so a revocation made through any instance
            // (or straight in the store) is seen by the device's very next request.
            var cmd = session.Prepared(RevokedSql, "$a", "$d");
            cmd.Parameters[0].Value = account;
            cmd.Parameters[1].Value = device;
            var hit = cmd.ExecuteScalar();
            return Task.FromResult(hit is not null and not DBNull);
        }
        finally
        {
            Return(session);
        }
    }

    /// <inheritdoc />
    public Task AcknowledgeWipeAsync(string account, string device, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        RequireId(device, nameof(device));
        Write("INSERT INTO wipe_acks (account, device, acked_at) VALUES ($a, $d, $t) ON CONFLICT (account, device) DO NOTHING",
            ("$a", account), ("$d", device), ("$t", Now()));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<bool> HasWipedAsync(string account, string device, CancellationToken cancellationToken)
    {
        RequireId(account, nameof(account));
        RequireId(device, nameof(device));
        using var conn = Open();
        var hit = Scalar(conn, null, "SELECT 1 FROM wipe_acks WHERE account = $a AND device = $d", ("$a", account), ("$d", device));
        return Task.FromResult(hit is not null);
    }

    /// <inheritdoc />
    public Task<bool> TryUseNonceAsync(string caller, string nonce, DateTimeOffset expires, CancellationToken cancellationToken)
    {
        RequireId(caller, nameof(caller));
        RequireId(nonce, nameof(nonce));
        var now = options.TimeProvider.GetUtcNow();
        lock (nonceGate)
        {
            // One dedicated connection with synchronous = NORMAL (docs/stores.md, "Nonces"): the insert is still a
            // committed write under SQLite's file lock, so UNIQUE(caller, nonce) makes a nonce single-use across
            // every thread and every process sharing the file; only the fsync at commit is skipped (a power cut,
            // not a crash, may forget nonces of the last moments, which expire within 5 minutes anyway).
            ObjectDisposedException.ThrowIf(disposed, this);
            var session = nonceSession ??= new Session(OpenNonceConnection());
            try
            {
                var due = nextPruneTicks;
                if (now.UtcTicks >= due)
                {
                    nextPruneTicks = (now + options.NoncePruneInterval).UtcTicks;
                    var prune = session.Prepared(PruneSql, "$now");
                    prune.Parameters[0].Value = now.ToUnixTimeMilliseconds();
                    prune.ExecuteNonQuery();
                }

                var insert = session.Prepared(NonceSql, "$c", "$n", "$e");
                insert.Parameters[0].Value = caller;
                insert.Parameters[1].Value = nonce;
                insert.Parameters[2].Value = expires.ToUnixTimeMilliseconds();
                var fresh = insert.ExecuteNonQuery() == 1; // one statement in autocommit: its own transaction
                if (++noncesSinceCheckpoint >= NonceCheckpointEvery)
                {
                    noncesSinceCheckpoint = 0;
                    CheckpointInBackground();
                }

                return Task.FromResult(fresh);
            }
            catch
            {
                nonceSession = null;
                session.Dispose();
                throw;
            }
        }
    }

    /// <inheritdoc />
    public Task<long> EnqueueEnrollmentAsync(string school, string id, ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        RequireId(school, nameof(school));
        RequireId(id, nameof(id));
        cancellationToken.ThrowIfCancellationRequested();
        using var conn = Open();
        using var tx = conn.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: positions per school are gap-free
        var position = (Scalar(conn, tx, "SELECT max(position) FROM enrollments WHERE school = $s", ("$s", school)) as long? ?? 0) + 1;
        try
        {
            using var insert = Command(conn, tx,
                "INSERT INTO enrollments (id, school, position, request, received_at) VALUES ($i, $s, $p, $r, $t)",
                ("$i", id), ("$s", school), ("$p", position), ("$r", request.ToArray()), ("$t", Now()));
            insert.ExecuteNonQuery();
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint)
        {
            throw new InvalidOperationException($"Enrollment id '{id}' is already in use.", ex);
        }

        tx.Commit();
        return Task.FromResult(position);
    }

    /// <inheritdoc />
    public Task<int> PendingEnrollmentCountAsync(string school, CancellationToken cancellationToken)
    {
        RequireId(school, nameof(school));
        using var conn = Open();
        return Task.FromResult((int)(Scalar(conn, null, "SELECT count(*) FROM enrollments WHERE school = $s AND answered = 0", ("$s", school)) as long? ?? 0));
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredEnrollment>> ReadEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken)
    {
        RequireId(school, nameof(school));
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        using var conn = Open();
        using var cmd = Command(conn, null,
            "SELECT position, id, request, received_at FROM enrollments WHERE school = $s AND answered = 0 AND position > $after ORDER BY position LIMIT $limit",
            ("$s", school), ("$after", after), ("$limit", (long)limit));
        using var reader = cmd.ExecuteReader();
        var list = new List<StoredEnrollment>();
        while (reader.Read())
        {
            list.Add(new StoredEnrollment(reader.GetInt64(0), reader.GetString(1), school, (byte[])reader.GetValue(2),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))));
        }

        return Task.FromResult<IReadOnlyList<StoredEnrollment>>(list);
    }

    /// <inheritdoc />
    public Task<EnrollmentAnswerOutcome> AnswerEnrollmentAsync(string school, string id, bool approved, ReadOnlyMemory<byte> answer, CancellationToken cancellationToken)
    {
        RequireId(school, nameof(school));
        RequireId(id, nameof(id));
        using var conn = Open();
        using var tx = conn.BeginTransaction(deferred: false);
        using (var update = Command(conn, tx,
            "UPDATE enrollments SET answered = 1, approved = $ok, answer = $a, answered_at = $t WHERE id = $i AND school = $s AND answered = 0",
            ("$ok", approved ? 1L : 0L), ("$a", answer.ToArray()), ("$t", Now()), ("$i", id), ("$s", school)))
        {
            if (update.ExecuteNonQuery() == 1)
            {
                tx.Commit();
                return Task.FromResult(EnrollmentAnswerOutcome.Stored);
            }
        }

        var known = Scalar(conn, tx, "SELECT 1 FROM enrollments WHERE id = $i AND school = $s", ("$i", id), ("$s", school)) is not null;
        tx.Commit();
        return Task.FromResult(known ? EnrollmentAnswerOutcome.AlreadyAnswered : EnrollmentAnswerOutcome.Unknown);
    }

    /// <inheritdoc />
    public Task<StoredEnrollmentAnswer?> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken)
    {
        RequireId(id, nameof(id));
        using var conn = Open();
        using var cmd = Command(conn, null, "SELECT school, answered, approved, answer, answered_at FROM enrollments WHERE id = $i", ("$i", id));
        using var reader = cmd.ExecuteReader();
        StoredEnrollmentAnswer? state = reader.Read()
            ? new StoredEnrollmentAnswer(id, reader.GetString(0), reader.GetInt64(1) != 0, reader.GetInt64(2) != 0,
                reader.IsDBNull(3) ? null : (byte[])reader.GetValue(3),
                reader.IsDBNull(4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)))
            : null;
        return Task.FromResult(state);
    }

    /// <summary>Releases the pooled connections of this file.</summary>
    public void Dispose()
    {
        lock (nonceGate)
        {
            disposed = true;
            nonceSession?.Dispose();
            nonceSession = null;
        }

        while (idle.TryTake(out var session))
        {
            session.Dispose();
        }

        using var conn = new SqliteConnection(connectionString);
        SqliteConnection.ClearPool(conn);
    }

    private SqliteConnection Open() => OpenRaw(synchronous: "FULL");

    private SqliteConnection OpenRaw(string synchronous)
    {
        var conn = new SqliteConnection(connectionString);
        try
        {
            conn.Open();
            Exec(conn, string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {(long)options.BusyTimeout.TotalMilliseconds}"));
            Exec(conn, "PRAGMA synchronous = " + synchronous);
            return conn;
        }
        catch
        {
            conn.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The nonce connection: synchronous = NORMAL, and no automatic checkpoint (a checkpoint syncs the database file
    /// and would stall every request waiting for the nonce lock): its WAL frames are copied to the database by a
    /// passive checkpoint on another connection, off the request path (<see cref="CheckpointInBackground"/>), or by
    /// the next bundle append, whose connections keep SQLite's automatic checkpoint.
    /// </summary>
    private SqliteConnection OpenNonceConnection()
    {
        var conn = OpenRaw(synchronous: "NORMAL");
        Exec(conn, "PRAGMA wal_autocheckpoint = 0");
        return conn;
    }

    private void CheckpointInBackground()
    {
        if (Interlocked.Exchange(ref checkpointRunning, 1) == 1)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(
            static store =>
            {
                try
                {
                    if (!store.disposed)
                    {
                        using var conn = store.Open();
                        Exec(conn, "PRAGMA wal_checkpoint(PASSIVE)");
                    }
                }
                catch (SqliteException)
                {
                    // Busy or closing: the next batch of nonces (or a bundle append) checkpoints instead.
                }
                finally
                {
                    Volatile.Write(ref store.checkpointRunning, 0);
                }
            },
            this,
            preferLocal: false);
    }

    /// <summary>An open read session (synchronous = FULL like every other connection) from the idle set.</summary>
    private Session Rent()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return idle.TryTake(out var session) ? session : new Session(Open());
    }

    private void Return(Session session)
    {
        if (disposed || idle.Count >= MaxIdleSessions)
        {
            session.Dispose();
            return;
        }

        idle.Add(session);
        if (disposed && idle.TryTake(out var late))
        {
            late.Dispose();
        }
    }

    private long ReadLong(string sql, string account)
    {
        var session = Rent();
        try
        {
            var cmd = session.Prepared(sql, "$a");
            cmd.Parameters[0].Value = account;
            return cmd.ExecuteScalar() is long value ? value : 0;
        }
        finally
        {
            Return(session);
        }
    }

    /// <summary>
    /// A long-lived connection with its prepared statements (hot paths: the per-request reads and the nonce insert),
    /// used by one thread at a time. Each statement runs in autocommit mode, so it reads the latest committed state
    /// (of every process) and holds no snapshot between calls.
    /// </summary>
    private sealed class Session(SqliteConnection connection) : IDisposable
    {
        private readonly Dictionary<string, SqliteCommand> commands = new(StringComparer.Ordinal);

        public SqliteCommand Prepared(string sql, params ReadOnlySpan<string> names)
        {
            if (commands.TryGetValue(sql, out var cmd))
            {
                return cmd;
            }

            cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            foreach (var name in names)
            {
                cmd.Parameters.Add(new SqliteParameter { ParameterName = name, Value = DBNull.Value });
            }

            cmd.Prepare();
            commands.Add(sql, cmd);
            return cmd;
        }

        public void Dispose()
        {
            foreach (var cmd in commands.Values)
            {
                cmd.Dispose();
            }

            commands.Clear();
            connection.Dispose();
        }
    }

    private void Write(string sql, params (string Name, object Value)[] parameters)
    {
        using var conn = Open();
        using var tx = conn.BeginTransaction(deferred: false);
        using (var cmd = Command(conn, tx, sql, parameters))
        {
            cmd.ExecuteNonQuery();
        }

        tx.Commit();
    }

    private long Now() => options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private static SqliteCommand Command(SqliteConnection conn, SqliteTransaction? tx, string sql, params (string Name, object Value)[] parameters)
    {
        var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return cmd;
    }

    private static object? Scalar(SqliteConnection conn, SqliteTransaction? tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var cmd = Command(conn, tx, sql, parameters);
        var value = cmd.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    private static void Exec(SqliteConnection conn, string sql, SqliteTransaction? tx = null, string? expect = null)
    {
        using var cmd = Command(conn, tx, sql);
        var result = cmd.ExecuteScalar();
        if (expect is not null && !string.Equals(Convert.ToString(result, CultureInfo.InvariantCulture), expect, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"'{sql}' gave '{result}', expected '{expect}'.");
        }
    }

    private static void RequireId(string value, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, name);
    }
}
