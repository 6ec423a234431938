using System.Security.Cryptography;
using IMikelGo.Store.Sqlite.Crypto;

namespace IMikelGo.Store.Sqlite;

/// <summary>
/// The default device-secret store: a 32-byte file readable only by the owner (file 0600, directory 0700 on Unix).
/// Keep its directory out of backups and device-to-device copies, so a copied vault has no secret.
/// </summary>
public sealed class FileDeviceSecretStore : IDeviceSecretStore
{
    private const string FileName = "device.secret";
    private const int SecretSize = 32;
    private readonly string directory;

    /// <summary>Creates the store over a directory.</summary>
    /// <param name="directory">The directory that holds (only) the secret.</param>
    public FileDeviceSecretStore(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        this.directory = directory;
    }

    internal string SecretPath => Path.Combine(directory, FileName);

    /// <inheritdoc />
    public ValueTask<byte[]?> TryGetAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!File.Exists(SecretPath))
        {
            return ValueTask.FromResult<byte[]?>(null);
        }

        if (!OperatingSystem.IsWindows())
        {
            // Tighten permissions if something loosened them.
            File.SetUnixFileMode(SecretPath, DurableFile.PrivateFile);
        }

        var bytes = File.ReadAllBytes(SecretPath);
        if (bytes.Length != SecretSize)
        {
            CryptographicOperations.ZeroMemory(bytes);
            return ValueTask.FromResult<byte[]?>(null);
        }

        return ValueTask.FromResult<byte[]?>(bytes);
    }

    /// <inheritdoc />
    public ValueTask<byte[]> CreateAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        DurableFile.EnsurePrivateDirectory(directory);
        var secret = RandomNumberGenerator.GetBytes(SecretSize);
        DurableFile.WriteAtomic(SecretPath, secret);
        return ValueTask.FromResult(secret);
    }

    /// <inheritdoc />
    public ValueTask DestroyAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        DurableFile.Shred(SecretPath);
        DurableFile.Shred(SecretPath + ".tmp");
        if (Directory.Exists(directory))
        {
            DurableFile.SyncDirectory(directory);
        }

        return ValueTask.CompletedTask;
    }
}
