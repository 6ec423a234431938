namespace IMikelGo.Store.Sqlite.Native;

/// <summary>
/// The process-wide encrypted SQLite library (SQLite3 Multiple Ciphers or SQLCipher). Server-side stores that share a
/// process with the device vault must use this one library: a second SQLite library in the same process is refused.
/// </summary>
public static class EncryptedSqliteLibrary
{
    /// <summary>Loads the library once per process (see docs/vault.md for how the path is found) and returns its path.</summary>
    /// <param name="path">An explicit library path, or null for the default search.</param>
    public static string EnsureLoaded(string? path = null) => SqliteNative.EnsureLoaded(path);
}
