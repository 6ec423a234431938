namespace IMikelGo.Store.Sqlite;

/// <summary>Options of the device vault.</summary>
public sealed class DeviceVaultOptions
{
    /// <summary>The environment variable that names the encrypted SQLite library to load.</summary>
    public const string NativeLibraryEnvironmentVariable = "IMIKELGO_SQLITE_LIB";

    /// <summary>Consecutive wrong PIN entries that wipe the vault (fixed by the product promise).</summary>
    public const int MaxPinAttempts = 3;

    /// <summary>
    /// The app's data folder. The vault keeps its files in <c>vault/</c>, the demo school in <c>demo/</c> and the
    /// wipe marker at the top. Default: the user's local application data folder + <c>iMikelGo</c>.
    /// </summary>
    public string RootDirectory { get; set; } =
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "iMikelGo");

    /// <summary>
    /// Where the default file-based <see cref="FileDeviceSecretStore"/> keeps the device secret.
    /// Default: <c>RootDirectory/device</c> (mode 0700). Place it outside backups where the platform allows.
    /// </summary>
    public string? DeviceSecretDirectory { get; set; }

    /// <summary>
    /// Full path of the encrypted SQLite library (SQLite3 Multiple Ciphers or SQLCipher). When null, the
    /// <c>IMIKELGO_SQLITE_LIB</c> environment variable is used, then <c>.cache/native/libsqlite3mc.so</c> found by
    /// walking up from the application's base directory and the working directory.
    /// </summary>
    public string? NativeLibraryPath { get; set; }

    /// <summary>
    /// The SQLite3 Multiple Ciphers cipher for new databases: <c>chacha20</c> (default, ChaCha20-Poly1305) or
    /// <c>sqlcipher</c> (with <see cref="CipherLegacy"/> 4 for the SQLCipher 4 format). Ignored with a SQLCipher
    /// library, which always uses its own format.
    /// </summary>
    public string Cipher { get; set; } = "chacha20";

    /// <summary>The cipher's <c>legacy</c> parameter (for <c>sqlcipher</c>: the SQLCipher major version), or null.</summary>
    public int? CipherLegacy { get; set; }

    /// <summary>PBKDF2-SHA256 iterations for the PIN; ≈250 ms on the reference machine. Stored per wrapped key.</summary>
    public int Pbkdf2Iterations { get; set; } = 500_000;

    /// <summary>The shortest PIN or password accepted.</summary>
    public int MinimumPinLength { get; set; } = 4;

    internal string ResolveDeviceSecretDirectory() =>
        DeviceSecretDirectory ?? Path.Combine(RootDirectory, "device");
}
