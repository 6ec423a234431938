using System.Globalization;
using IMikelGo.Store.Sqlite.Native;
using Microsoft.Data.Sqlite;

namespace IMikelGo.Store.Sqlite.Store;

/// <summary>A cipher configuration of SQLite3 Multiple Ciphers (or the compatibility level of SQLCipher).</summary>
internal sealed record CipherProfile(string Cipher, int? Legacy)
{
    internal static readonly CipherProfile ChaCha20 = new("chacha20", null);
    internal static readonly CipherProfile SqlCipher4 = new("sqlcipher", 4);
    internal static readonly CipherProfile SqlCipher3 = new("sqlcipher", 3);

    /// <summary>Formats an older app version may have written, tried (after a proven-correct PIN) when the current one fails.</summary>
    internal static IReadOnlyList<CipherProfile> LegacyFormats { get; } = [SqlCipher4, SqlCipher3, ChaCha20, new("aes256cbc", null)];

    public override string ToString() => Legacy is null ? Cipher : string.Create(CultureInfo.InvariantCulture, $"{Cipher} (legacy={Legacy})");
}

/// <summary>Opens keyed, verified connections: refuses plaintext files and proves encryption and the safety pragmas.</summary>
internal static class SqliteConnector
{
    internal const int SqliteNotADatabase = 26;
    private static readonly byte[] PlainHeader = "SQLite format 3\0"u8.ToArray();
    private static readonly Lock FlavorGate = new();
    private static SqliteCipherFlavor? flavor;

    internal static SqliteCipherFlavor Flavor(string? nativeLibraryPath)
    {
        SqliteNative.EnsureLoaded(nativeLibraryPath);
        lock (FlavorGate)
        {
            if (flavor is { } known)
            {
                return known;
            }

            using var c = new SqliteConnection("Data Source=:memory:;Pooling=False");
            c.Open();
            if (TryScalar(c, "SELECT sqlite3mc_version()") is string mc && mc.Length > 0)
            {
                flavor = SqliteCipherFlavor.SQLite3MultipleCiphers;
            }
            else if (TryScalar(c, "PRAGMA cipher_version") is string sc && sc.Length > 0)
            {
                flavor = SqliteCipherFlavor.SQLCipher;
            }
            else
            {
                throw new VaultException(VaultErrorKind.EncryptionUnavailable,
                    "The loaded SQLite library is neither SQLite3 Multiple Ciphers nor SQLCipher: refusing to store data unencrypted.");
            }

            return flavor.Value;
        }
    }

    internal static bool IsPlaintextSqlite(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        Span<byte> header = stackalloc byte[16];
        return fs.ReadAtLeast(header, 16, throwOnEndOfStream: false) == 16 && header.SequenceEqual(PlainHeader);
    }

    /// <summary>
    /// Opens, keys and verifies a connection. Returns null when the key/profile cannot read the file
    /// (SQLITE_NOTADB); the caller decides whether that is a format to migrate. Every other failure throws.
    /// </summary>
    internal static SqliteConnection? TryOpen(string path, ReadOnlySpan<byte> rawKey, CipherProfile profile, string? nativeLibraryPath, bool migrateSqlCipher = false)
    {
        var kind = Flavor(nativeLibraryPath);
        if (IsPlaintextSqlite(path))
        {
            throw new VaultException(VaultErrorKind.PlaintextDatabase, "The vault database is a plaintext SQLite file: refusing to use it.");
        }

        var cs = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString();
        var conn = new SqliteConnection(cs);
        var keyPragma = KeyPragma(rawKey, "key");
        try
        {
            conn.Open();
            if (kind == SqliteCipherFlavor.SQLite3MultipleCiphers)
            {
                Exec(conn, $"PRAGMA cipher = '{Sanitize(profile.Cipher)}'");
                if (profile.Legacy is { } legacy)
                {
                    Exec(conn, string.Create(CultureInfo.InvariantCulture, $"PRAGMA legacy = {legacy}"));
                }

                Exec(conn, keyPragma);
            }
            else
            {
                // SQLCipher: the key must be the first statement, migration right after it (F13).
                Exec(conn, keyPragma);
                if (migrateSqlCipher)
                {
                    Exec(conn, "PRAGMA cipher_migrate");
                }
            }

            try
            {
                Exec(conn, "SELECT count(*) FROM sqlite_master");
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteNotADatabase)
            {
                conn.Dispose();
                return null;
            }

            Harden(conn, kind);
            return conn;
        }
        catch
        {
            conn.Dispose();
            throw;
        }
    }

    /// <summary>Re-encrypts an open SQLite3MC database under another cipher profile (used after a legacy open).</summary>
    internal static void Migrate(SqliteConnection conn, ReadOnlySpan<byte> rawKey, CipherProfile target)
    {
        // SQLite3MC cannot rekey in WAL mode.
        Exec(conn, "PRAGMA wal_checkpoint(TRUNCATE)");
        Exec(conn, "PRAGMA journal_mode = DELETE");
        Exec(conn, $"PRAGMA cipher = '{Sanitize(target.Cipher)}'");
        if (target.Legacy is { } legacy)
        {
            Exec(conn, string.Create(CultureInfo.InvariantCulture, $"PRAGMA legacy = {legacy}"));
        }

        Exec(conn, KeyPragma(rawKey, "rekey"));
        Expect(conn, "PRAGMA journal_mode = WAL", "wal");
    }

    /// <summary>Sets and verifies the per-connection safety settings.</summary>
    private static void Harden(SqliteConnection conn, SqliteCipherFlavor kind)
    {
        Exec(conn, "PRAGMA busy_timeout = 5000");
        Exec(conn, "PRAGMA temp_store = MEMORY");
        Expect(conn, "PRAGMA temp_store", "2");
        Exec(conn, "PRAGMA secure_delete = ON");
        Expect(conn, "PRAGMA secure_delete", "1");
        Expect(conn, "PRAGMA journal_mode = WAL", "wal");
        Exec(conn, "PRAGMA synchronous = FULL");
        Exec(conn, "PRAGMA foreign_keys = ON");
        if (kind == SqliteCipherFlavor.SQLite3MultipleCiphers)
        {
            if (TryScalar(conn, "PRAGMA cipher") is not string c || c.Length == 0)
            {
                throw new VaultException(VaultErrorKind.EncryptionUnavailable, "No cipher is active on the connection.");
            }
        }
        else if (TryScalar(conn, "PRAGMA cipher_version") is not string v || v.Length == 0)
        {
            throw new VaultException(VaultErrorKind.EncryptionUnavailable, "No cipher is active on the connection.");
        }
    }

    internal static void Exec(SqliteConnection conn, string sql)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        _ = cmd.ExecuteScalar();
    }

    private static void Expect(SqliteConnection conn, string sql, string expected)
    {
        using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        var actual = Convert.ToString(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
        {
            throw new VaultException(VaultErrorKind.EncryptionUnavailable, $"'{sql}' gave '{actual}', expected '{expected}'.");
        }
    }

    private static object? TryScalar(SqliteConnection conn, string sql)
    {
        try
        {
            using var cmd = conn.CreateCommand();
            cmd.CommandText = sql;
            return cmd.ExecuteScalar();
        }
        catch (SqliteException)
        {
            return null;
        }
    }

    // The pragma text holds the hex key for a moment; .NET strings cannot be zeroed, so it is kept as short-lived as possible.
    private static string KeyPragma(ReadOnlySpan<byte> rawKey, string pragma) =>
        $"PRAGMA {pragma} = \"x'{Convert.ToHexString(rawKey)}'\"";

    private static string Sanitize(string cipher)
    {
        foreach (var ch in cipher)
        {
            if (!char.IsAsciiLetterOrDigit(ch) && ch != '-' && ch != '_')
            {
                throw new ArgumentException("Invalid cipher name.", nameof(cipher));
            }
        }

        return cipher;
    }
}
