using System.Security.Cryptography;
using System.Text;
using IMikelGo.Store.Sqlite;
using IMikelGo.Store.Sqlite.Native;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace IMikelGo.Benchmarks;

/// <summary>Vault fixtures: a vault in its own temp folder, and a plain (unkeyed) SQLite file with the same rows.</summary>
internal static class VaultSupport
{
    public const string Pin = "4711";
    public const string Account = "bench-anna";

    /// <summary>The native encrypted SQLite library built by scripts/setup-sqlite.sh (found from the working directory).</summary>
    public static string NativeLibrary =>
        SqliteNative.Resolve(null) ?? throw new InvalidOperationException("run scripts/setup-sqlite.sh and start the benchmarks from the repository root (or set IMIKELGO_SQLITE_LIB)");

    public static string NewRoot(string name)
    {
        var root = Path.Combine(Path.GetTempPath(), "imikelgo-bench", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        return root;
    }

    public static DeviceVault Create(string root, int iterations)
    {
        var options = new DeviceVaultOptions { RootDirectory = root, Pbkdf2Iterations = iterations, NativeLibraryPath = NativeLibrary };
        return new DeviceVault(Options.Create(options), new FileDeviceSecretStore(options.ResolveDeviceSecretDirectory()), TimeProvider.System, NullLogger<DeviceVault>.Instance);
    }

    public static EventRecord Record(long seq, string replica = "device-1")
    {
        var payload = Encoding.UTF8.GetBytes($"{{\"type\":\"student.absent\",\"seq\":{seq},\"occurrence\":\"series-01@2026-12-03\",\"student\":\"s001\",\"excused\":true,\"note\":\"{new string('x', 300)}\"}}");
        return new EventRecord(Account, replica, seq, SHA256.HashData(Encoding.UTF8.GetBytes($"{replica}|{seq}")), payload);
    }

    /// <summary>A plain SQLite file (no key, no payload sealing) with the vault's events/outbox schema and durability pragmas.</summary>
    public static SqliteConnection OpenPlain(string path)
    {
        SqliteNative.EnsureLoaded(NativeLibrary);
        var conn = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        conn.Open();
        Exec(conn, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;");
        Exec(conn, """
            CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, account TEXT NOT NULL, replica TEXT NOT NULL,
                seq INTEGER NOT NULL, hash BLOB NOT NULL UNIQUE, sealed BLOB NOT NULL, UNIQUE (account, replica, seq)) STRICT;
            CREATE TABLE IF NOT EXISTS outbox(event_id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
                state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_attempt_ms INTEGER) STRICT;
            CREATE INDEX IF NOT EXISTS outbox_unacked ON outbox(state) WHERE state <> 2;
            """);
        return conn;
    }

    /// <summary>The same rows as the vault writes (event + pending outbox entry), one transaction for the batch.</summary>
    public static void InsertPlain(SqliteConnection conn, IReadOnlyList<EventRecord> records)
    {
        using var tx = conn.BeginTransaction(deferred: false);
        foreach (var r in records)
        {
            using var ins = conn.CreateCommand();
            ins.Transaction = tx;
            ins.CommandText = "INSERT INTO events(account, replica, seq, hash, sealed) VALUES ($a, $r, $s, $h, $p) ON CONFLICT DO NOTHING RETURNING id";
            ins.Parameters.AddWithValue("$a", r.Account);
            ins.Parameters.AddWithValue("$r", r.ReplicaId);
            ins.Parameters.AddWithValue("$s", r.Seq);
            ins.Parameters.AddWithValue("$h", r.EventHash.ToArray());
            ins.Parameters.AddWithValue("$p", r.CanonicalEvent.ToArray());
            var id = (long)ins.ExecuteScalar()!;
            using var ob = conn.CreateCommand();
            ob.Transaction = tx;
            ob.CommandText = "INSERT INTO outbox(event_id, state, attempts) VALUES ($id, 0, 0)";
            ob.Parameters.AddWithValue("$id", id);
            ob.ExecuteNonQuery();
        }

        tx.Commit();
    }

    public static void DeleteRoot(string root)
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void Exec(SqliteConnection conn, string sql)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
