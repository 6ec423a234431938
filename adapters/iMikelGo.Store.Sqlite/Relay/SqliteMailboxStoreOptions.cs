namespace IMikelGo.Store.Sqlite.Relay;

/// <summary>Options of the relay's embedded mailbox store.</summary>
public sealed class SqliteMailboxStoreOptions
{
    /// <summary>The database file (created when missing; its directory too).</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>
    /// Optional relay-local passphrase (defense in depth): when set, the whole file is encrypted by the loaded
    /// SQLite3 Multiple Ciphers library. The relay stores ciphertext only, so this is not needed for
    /// confidentiality; use a random value kept next to the relay's other secrets, never a school or device key.
    /// </summary>
    public string? Passphrase { get; set; }

    /// <summary>Path of the native SQLite library; null: the vault's usual lookup (env, .cache/native, beside the app).</summary>
    public string? NativeLibraryPath { get; set; }

    /// <summary>How long a writer waits for another writer (another thread or process) before failing.</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often expired nonces are deleted.</summary>
    public TimeSpan NoncePruneInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The clock for stored times and nonce expiry.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
