using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace IMikelGo.Store.Sqlite.Crypto;

/// <summary>Durable, atomic small-file writes (write temp, fsync, rename, fsync directory) and shredding.</summary>
internal static class DurableFile
{
    internal const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    internal const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    internal static void EnsurePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, PrivateDirectory);
        File.SetUnixFileMode(path, PrivateDirectory);
    }

    /// <summary>Writes <paramref name="path"/>.tmp, fsyncs it; the caller renames with <see cref="Commit"/>.</summary>
    internal static string WriteTemp(string path, ReadOnlySpan<byte> content, string suffix = ".tmp")
    {
        var temp = path + suffix;
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.None,
            Options = FileOptions.WriteThrough,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateFile;
        }

        using (var fs = new FileStream(temp, options))
        {
            fs.Write(content);
            fs.Flush(flushToDisk: true);
        }

        return temp;
    }

    /// <summary>Atomically replaces <paramref name="path"/> with <paramref name="temp"/> and fsyncs the directory.</summary>
    internal static void Commit(string temp, string path)
    {
        File.Move(temp, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    internal static void WriteAtomic(string path, ReadOnlySpan<byte> content) => Commit(WriteTemp(path, content), path);

    /// <summary>Overwrites a file with random bytes, fsyncs, then deletes it. Missing files are ignored.</summary>
    internal static void Shred(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            var length = fs.Length;
            var buffer = new byte[(int)Math.Min(Math.Max(length, 1), 64 * 1024)];
            for (long written = 0; written < length; written += buffer.Length)
            {
                RandomNumberGenerator.Fill(buffer);
                fs.Write(buffer, 0, (int)Math.Min(buffer.Length, length - written));
            }

            fs.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            // Best effort: deletion below still removes the name.
        }
        catch (UnauthorizedAccessException)
        {
            // Best effort.
        }

        File.Delete(path);
    }

    internal static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = NativeMethods.open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }

        _ = NativeMethods.fsync(fd);
        _ = NativeMethods.close(fd);
    }

    private static class NativeMethods
    {
        private const string Libc = "libc.so.6";

        [DllImport(Libc, EntryPoint = "open", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport(Libc, EntryPoint = "fsync", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int fsync(int fd);

        [DllImport(Libc, EntryPoint = "close", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int close(int fd);
    }
}
