using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Store.Sqlite.Crypto;

namespace IMikelGo.Store.Sqlite;

/// <summary>
/// Windows device-secret store: the secret is protected with DPAPI (current user scope) and the blob kept in a file.
/// A copy of the blob taken to another machine or user cannot be unprotected, which the vault treats as a clone.
/// </summary>
[SupportedOSPlatform("windows")]
public sealed class DpapiDeviceSecretStore : IDeviceSecretStore
{
    private const string FileName = "device.secret.dpapi";
    private static readonly byte[] Entropy = Encoding.ASCII.GetBytes("imikelgo/device-secret/v1");
    private readonly string directory;

    /// <summary>Creates the store over a directory.</summary>
    /// <param name="directory">The directory for the protected blob.</param>
    public DpapiDeviceSecretStore(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        this.directory = directory;
    }

    private string BlobPath => Path.Combine(directory, FileName);

    /// <inheritdoc />
    public ValueTask<byte[]?> TryGetAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!File.Exists(BlobPath))
        {
            return ValueTask.FromResult<byte[]?>(null);
        }

        try
        {
            return ValueTask.FromResult<byte[]?>(ProtectedData.Unprotect(File.ReadAllBytes(BlobPath), Entropy, DataProtectionScope.CurrentUser));
        }
        catch (CryptographicException)
        {
            return ValueTask.FromResult<byte[]?>(null);
        }
    }

    /// <inheritdoc />
    public ValueTask<byte[]> CreateAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Directory.CreateDirectory(directory);
        var secret = RandomNumberGenerator.GetBytes(32);
        DurableFile.WriteAtomic(BlobPath, ProtectedData.Protect(secret, Entropy, DataProtectionScope.CurrentUser));
        return ValueTask.FromResult(secret);
    }

    /// <inheritdoc />
    public ValueTask DestroyAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        DurableFile.Shred(BlobPath);
        return ValueTask.CompletedTask;
    }
}
