namespace IMikelGo.Store.Sqlite;

/// <summary>
/// The platform key store holding this install's 32-byte device secret, which is mixed into the PIN-derived key
/// and keys the attempt-counter MAC. Implementations: <see cref="FileDeviceSecretStore"/> (default, Linux/macOS
/// file with mode 0600), <see cref="DpapiDeviceSecretStore"/> (Windows). On iOS implement it over the Keychain
/// (<c>kSecAttrAccessibleWhenUnlockedThisDeviceOnly</c>, not synchronised, so a restored backup has no secret) and
/// on Android over the Keystore (a non-exportable AES key wrapping the secret); see docs/vault.md.
/// </summary>
public interface IDeviceSecretStore
{
    /// <summary>Reads the device secret.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The secret (the caller zeroes it), or null if this device has none.</returns>
    ValueTask<byte[]?> TryGetAsync(CancellationToken cancellationToken);

    /// <summary>Creates a fresh random secret, replacing any existing one, durably.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new secret (the caller zeroes it).</returns>
    ValueTask<byte[]> CreateAsync(CancellationToken cancellationToken);

    /// <summary>Destroys the secret (crypto-shred). Succeeds when there is none.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the secret is gone.</returns>
    ValueTask DestroyAsync(CancellationToken cancellationToken);
}
