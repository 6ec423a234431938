using IMikelGo.Engine.Sync;
using Microsoft.Data.Sqlite;

namespace IMikelGo.Store.Sqlite.School;

/// <summary>
/// The embedded default <see cref="ISchoolConnectorStore"/>: one SQLite file (Microsoft.Data.Sqlite.Core over the
/// native library Store.Sqlite loads — SQLite3 Multiple Ciphers, <c>scripts/setup-sqlite.sh</c> — because one process
/// can hold only one SQLitePCL provider and the teacher device in the one-machine demo needs that one; WAL, synchronous FULL). The event hash is the primary key of <c>events</c>, so an event is stored
/// once whatever the caller does. The school server's file is not encrypted here: keep it on an encrypted volume.
/// </summary>
public sealed class SqliteSchoolConnectorStore : ISchoolConnectorStore
{
    private readonly SqliteConnection _db;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string _path = string.Empty;

    private SqliteConnection Db => _db;

    private SqliteSchoolConnectorStore(SqliteConnection db) => _db = db;

    /// <summary>Opens (creating) the store at <paramref name="path"/>.</summary>
    public static async Task<SqliteSchoolConnectorStore> OpenAsync(string path, CancellationToken cancellationToken)
    {
        EnsureNativeLoaded();
        if (!OperatingSystem.IsWindows() && !File.Exists(path))
        {
            // The file holds the school root's private key and the school secret: owner-only whatever the umask (SQLite gives
            // the -wal and -shm files the database file's mode).
            using (new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
            }
        }

        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        await db.OpenAsync(cancellationToken).ConfigureAwait(false);
        var store = new SqliteSchoolConnectorStore(db) { _path = Path.GetFullPath(path) };
        await store.ExecAsync("""
            PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
            CREATE TABLE IF NOT EXISTS kv(name TEXT PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS events(n INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, account TEXT NOT NULL,
              replica TEXT NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL, acked INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS events_unacked ON events(account) WHERE acked = 0;
            CREATE TABLE IF NOT EXISTS imports(version INTEGER PRIMARY KEY AUTOINCREMENT, format TEXT NOT NULL, solution TEXT,
              content TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0);
            """, cancellationToken).ConfigureAwait(false);
        return store;
    }

    /// <inheritdoc />
    public async Task<byte[]?> GetValueAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var cmd = Command("SELECT value FROM kv WHERE name = $n", ("$n", name));
            return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task SetValueAsync(string name, byte[]? value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var cmd = value is null
                ? Command("DELETE FROM kv WHERE name = $n", ("$n", name))
                : Command("INSERT INTO kv(name, value) VALUES($n, $v) ON CONFLICT(name) DO UPDATE SET value = excluded.value", ("$n", name), ("$v", value));
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<KeyValuePair<string, byte[]>>> ListValuesAsync(string prefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var cmd = Command("SELECT name, value FROM kv WHERE substr(name, 1, length($p)) = $p ORDER BY name", ("$p", prefix));
            using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<KeyValuePair<string, byte[]>>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new(reader.GetString(0), (byte[])reader.GetValue(1)));
            }

            return list;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<int> AppendEventsAsync(IReadOnlyList<StoredSchoolEvent> events, bool acknowledged, long? publishedImport, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        for (var i = 0; i < events.Count; i++)
        {
            StoredSchoolEvents.Parse(events[i], i);
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var tx = Db.BeginTransaction();
            if (publishedImport is { } version)
            {
                using var mark = Command("UPDATE imports SET published = 1 WHERE version = $v", ("$v", version));
                mark.Transaction = tx;
                if (await mark.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
                {
                    throw new ArgumentException($"there is no import with version {version}; nothing was stored", nameof(publishedImport));
                }
            }

            var added = 0;
            using (var cmd = Command("INSERT INTO events(hash, account, replica, seq, line, acked) VALUES($h, $a, $r, $s, $l, $k) ON CONFLICT(hash) DO NOTHING",
                ("$h", ""), ("$a", ""), ("$r", ""), ("$s", 0L), ("$l", ""), ("$k", acknowledged ? 1 : 0)))
            {
                cmd.Transaction = tx;
                foreach (var e in events)
                {
                    cmd.Parameters["$h"].Value = e.Hash;
                    cmd.Parameters["$a"].Value = e.Account;
                    cmd.Parameters["$r"].Value = e.Replica;
                    cmd.Parameters["$s"].Value = e.Seq;
                    cmd.Parameters["$l"].Value = e.Line;
                    added += await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            return added;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredSchoolEvent>> ReadEventsAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var cmd = Command("SELECT hash, account, replica, seq, line FROM events ORDER BY n");
            using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<StoredSchoolEvent>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetString(4)));
            }

            return list;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task MarkAcknowledgedAsync(IEnumerable<string> hashes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var tx = Db.BeginTransaction();
            using var cmd = Command("UPDATE events SET acked = 1 WHERE hash = $h", ("$h", ""));
            cmd.Transaction = tx;
            foreach (var h in hashes)
            {
                cmd.Parameters["$h"].Value = h;
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlySet<string>> UnacknowledgedAsync(string account, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var cmd = Command("SELECT hash FROM events WHERE account = $a AND acked = 0", ("$a", account));
            using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var set = new HashSet<string>(StringComparer.Ordinal);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                set.Add(reader.GetString(0));
            }

            return set;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<long> AddImportAsync(string format, string? solution, string content, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(format);
        ArgumentNullException.ThrowIfNull(content);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var cmd = Command("INSERT INTO imports(format, solution, content) VALUES($f, $s, $c) RETURNING version",
                ("$f", format), ("$s", (object?)solution ?? DBNull.Value), ("$c", content));
            return (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredImport>> ImportsAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var cmd = Command("SELECT version, format, solution, content, published FROM imports ORDER BY version");
            using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<StoredImport>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new(reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetInt64(4) != 0));
            }

            return list;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>An exclusive open of <c>&lt;database&gt;.lock</c> beside the file (released by the OS if the process dies).</remarks>
    public Task<IAsyncDisposable?> TryLockWriterAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            // FileShare.None: exclusive between processes and between two opens in one process.
            return Task.FromResult<IAsyncDisposable?>(new FileStream(_path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            return Task.FromResult<IAsyncDisposable?>(null);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _db.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    // The school store shares the process (and so the one SQLite library) with the device vault in the QuickStart.
    private static void EnsureNativeLoaded() => Native.EncryptedSqliteLibrary.EnsureLoaded();

    private async Task ExecAsync(string sql, CancellationToken cancellationToken)
    {
        using var cmd = Command(sql);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private SqliteCommand Command(string sql, params (string Name, object Value)[] parameters)
    {
        var cmd = Db.CreateCommand();
#pragma warning disable CA2100 // constant SQL, values are parameters
        cmd.CommandText = sql;
#pragma warning restore CA2100
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return cmd;
    }
}
