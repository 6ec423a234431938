using System.Runtime.InteropServices;
using SQLitePCL;
using NativeLibrary = System.Runtime.InteropServices.NativeLibrary;

namespace IMikelGo.Store.Sqlite.Native;

/// <summary>Which encrypting SQLite build is loaded.</summary>
internal enum SqliteCipherFlavor
{
    SQLite3MultipleCiphers,
    SQLCipher,
}

/// <summary>
/// Loads the encrypted SQLite library by path with the BCL loader (SQLitePCLRaw's own loader needs libdl.so) and
/// installs it as the process-wide SQLitePCLRaw provider, exactly once.
/// </summary>
internal static class SqliteNative
{
    internal const string DefaultFileName = "libsqlite3mc.so";
    private static readonly Lock Gate = new();
    private static string? loadedPath;

    internal static string? LoadedPath
    {
        get { lock (Gate) { return loadedPath; } }
    }

    /// <summary>Loads the library once per process and returns the path in use.</summary>
    internal static string EnsureLoaded(string? configuredPath)
    {
        lock (Gate)
        {
            if (loadedPath is not null)
            {
                return loadedPath;
            }

            var path = Resolve(configuredPath) ?? throw new VaultException(
                VaultErrorKind.NativeLibraryUnavailable,
                $"No encrypted SQLite library found: set DeviceVaultOptions.NativeLibraryPath or {DeviceVaultOptions.NativeLibraryEnvironmentVariable}, or run scripts/setup-sqlite.sh.");
            IntPtr handle;
            try
            {
                handle = NativeLibrary.Load(path);
            }
            catch (Exception ex) when (ex is DllNotFoundException or BadImageFormatException)
            {
                throw new VaultException(VaultErrorKind.NativeLibraryUnavailable, $"Cannot load the encrypted SQLite library '{path}'.", ex);
            }

            if (!NativeLibrary.TryGetExport(handle, "sqlite3_key_v2", out _))
            {
                throw new VaultException(VaultErrorKind.EncryptionUnavailable, $"'{path}' exports no sqlite3_key_v2: it cannot encrypt.");
            }

            SQLite3Provider_dynamic_cdecl.Setup(Path.GetFileNameWithoutExtension(path), new ExportGetter(handle));
            raw.SetProvider(new SQLite3Provider_dynamic_cdecl());
            loadedPath = path;
            return path;
        }
    }

    internal static string? Resolve(string? configuredPath)
    {
        if (!string.IsNullOrWhiteSpace(configuredPath))
        {
            return File.Exists(configuredPath) ? Path.GetFullPath(configuredPath) : null;
        }

        var fromEnv = Environment.GetEnvironmentVariable(DeviceVaultOptions.NativeLibraryEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return File.Exists(fromEnv) ? Path.GetFullPath(fromEnv) : null;
        }

        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, ".cache", "native", DefaultFileName);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        var beside = Path.Combine(AppContext.BaseDirectory, DefaultFileName);
        return File.Exists(beside) ? beside : null;
    }

    private sealed class ExportGetter(IntPtr handle) : IGetFunctionPointer
    {
        public IntPtr GetFunctionPointer(string name) =>
            NativeLibrary.TryGetExport(handle, name, out var p) ? p : IntPtr.Zero;
    }
}
