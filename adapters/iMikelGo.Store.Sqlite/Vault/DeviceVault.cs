using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using IMikelGo.Store.Sqlite.Crypto;
using IMikelGo.Store.Sqlite.Native;
using IMikelGo.Store.Sqlite.Store;
using IMikelGo.Store.Sqlite.Vault;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace IMikelGo.Store.Sqlite;

/// <summary>
/// The device vault: an encrypted local store behind a PIN, with a three-strike wipe, remote-deactivation wipe,
/// clone detection and a demo mode. One instance per app data folder; all methods are safe to call concurrently.
/// </summary>
public sealed class DeviceVault : IAsyncDisposable, IDisposable
{
    private const string PinGenerationMetaKey = "pin_generation";
    private readonly DeviceVaultOptions options;
    private readonly IDeviceSecretStore deviceSecrets;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly VaultPaths paths;
    private readonly SemaphoreSlim gate = new(1, 1);
    private volatile VaultState state = VaultState.NotEnrolled;
    private bool initialized;
    private long lastSeenGeneration;
    private EncryptedSqliteStore? store;
    private EncryptedSqliteStore? demoStore;

    /// <summary>Creates the vault (call <see cref="InitializeAsync"/> or any other method to inspect the disk).</summary>
    /// <param name="options">The vault options.</param>
    /// <param name="deviceSecrets">The platform key store for the device secret.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="logger">The logger (never receives secrets or PINs).</param>
    public DeviceVault(IOptions<DeviceVaultOptions> options, IDeviceSecretStore deviceSecrets, TimeProvider timeProvider, ILogger<DeviceVault> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(deviceSecrets);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        this.options = options.Value;
        this.deviceSecrets = deviceSecrets;
        time = timeProvider;
        this.logger = logger;
        paths = new VaultPaths(this.options.RootDirectory, this.options.ResolveDeviceSecretDirectory());
    }

    /// <summary>The current state.</summary>
    public VaultState State => state;

    /// <summary>True when the app must run the demo school (never enrolled, or wiped).</summary>
    public bool IsDemoMode => state is VaultState.NotEnrolled or VaultState.Wiped;

    /// <summary>True only when an enrolled vault is unlocked: the only state in which sync may run.</summary>
    public bool CanSync => state == VaultState.Unlocked;

    /// <summary>The store of the unlocked vault.</summary>
    /// <exception cref="VaultException">When the vault is not unlocked.</exception>
    public IDeviceStore Store => state == VaultState.Unlocked && store is { } s
        ? s
        : throw new VaultException(VaultErrorKind.InvalidState, $"The vault is {state}, not unlocked.");

    /// <summary>The record of the last wipe, until acknowledged; null if none.</summary>
    public WipeRecord? LastWipe => WipeMarkerFile.TryRead(paths.WipeMarker);

    /// <summary>Timings of the last successful unlock (KDF versus open), for benchmarks.</summary>
    internal (TimeSpan Kdf, TimeSpan Open)? LastUnlockTiming { get; private set; }

    internal VaultPaths Paths => paths;

    /// <summary>
    /// Inspects the disk: finishes an interrupted wipe, discards an uncommitted PIN change, detects a restored or
    /// cloned install (device secret missing or foreign: wipe) and sets <see cref="State"/>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state.</returns>
    public async Task<VaultState> InitializeAsync(CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
            return state;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Re-enrollment hook (after the license key and school password were verified elsewhere): creates a fresh vault
    /// with a fresh device secret and device id, protected by <paramref name="pin"/>, and unlocks it.
    /// Allowed only in demo mode (never enrolled or wiped).
    /// </summary>
    /// <param name="account">The account (license key / Kennung).</param>
    /// <param name="pin">The new PIN or password.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The new identity.</returns>
    public async Task<EnrollmentResult> EnrollAsync(string account, string pin, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        CheckPinPolicy(pin);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
            if (!IsDemoMode)
            {
                throw new VaultException(VaultErrorKind.InvalidState, "A vault is already enrolled; wipe it before enrolling again.");
            }

            DisposeDemo();
            DeleteVaultDirectory();
            DurableFile.EnsurePrivateDirectory(paths.VaultDirectory);

            var secret = await deviceSecrets.CreateAsync(cancellationToken).ConfigureAwait(false);
            var dek = RandomNumberGenerator.GetBytes(KeyHierarchy.KeySize);
            byte[]? kek = null;
            try
            {
                var installId = RandomNumberGenerator.GetBytes(16);
                var deviceId = "dev-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
                var salt = RandomNumberGenerator.GetBytes(16);
                kek = KeyHierarchy.DeriveKek(pin, secret, salt, options.Pbkdf2Iterations, installId);
                var envelope = new KeyEnvelope(options.Pbkdf2Iterations, salt, installId, deviceId, account, [], KeyEnvelope.ComputeInstallMac(secret, installId, deviceId));
                envelope = envelope with { WrappedDek = KeyHierarchy.Seal(kek, dek, envelope.AssociatedData()) };

                var newStore = OpenDatabase(dek, envelope, create: true);
                try
                {
                    EncryptedSqliteStore.SetMeta(newStore.Connection, "device_id", deviceId);
                    EncryptedSqliteStore.SetMeta(newStore.Connection, "account", account);
                    EncryptedSqliteStore.SetMeta(newStore.Connection, "install_id", Convert.ToBase64String(installId));
                    EncryptedSqliteStore.SetMeta(newStore.Connection, "created", time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture));
                    EncryptedSqliteStore.SetMeta(newStore.Connection, PinGenerationMetaKey, "1");
                    WriteCounter(new PinCounter(1, 0), secret, installId);
                    DurableFile.WriteAtomic(paths.KeyFile, envelope.Serialize()); // the commit point of enrollment
                }
                catch
                {
                    newStore.Dispose();
                    throw;
                }

                store = newStore;
                SetState(VaultState.Unlocked);
                Log.Enrolled(logger);
                return new EnrollmentResult(deviceId, account);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(secret);
                CryptographicOperations.ZeroMemory(dek);
                if (kek is not null)
                {
                    CryptographicOperations.ZeroMemory(kek);
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// One PIN entry. The failure counter is incremented durably before the PIN is checked and reset only after a
    /// correct PIN; the third consecutive wrong PIN wipes the vault at once. A missing or tampered counter wipes.
    /// Failures that are not a wrong PIN (disk, format, native library) throw <see cref="VaultException"/> and are
    /// never counted.
    /// </summary>
    /// <param name="pin">The PIN or password.</param>
    /// <param name="cancellationToken">Cancels the call before the attempt is counted.</param>
    /// <returns>The outcome.</returns>
    public async Task<UnlockResult> UnlockAsync(string pin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pin);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
            (UnlockResult result, byte[]? dek, KeyEnvelope? envelope, long generation) attempt;
            try
            {
                attempt = await AttemptAsync(pin, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                // Another process holds the vault's files (a second app instance): not a wrong PIN, nothing counted twice.
                throw new VaultException(VaultErrorKind.InvalidState, "The vault is busy in another app instance; try again.", ex);
            }

            var (result, dek, envelope, generation) = attempt;
            if (dek is null)
            {
                return result;
            }

            try
            {
                if (store is null)
                {
                    var sw = Stopwatch.StartNew();
                    var opened = OpenDatabase(dek, envelope!, create: false);
                    if (!CheckGenerationWitness(opened, generation))
                    {
                        opened.Dispose();
                        await WipeCoreAsync(WipeReason.Tamper, cancellationToken).ConfigureAwait(false);
                        return new UnlockResult(UnlockStatus.Wiped, 0);
                    }

                    store = opened;
                    LastUnlockTiming = (LastUnlockTiming?.Kdf ?? TimeSpan.Zero, sw.Elapsed);
                }

                SetState(VaultState.Unlocked);
                return result;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(dek);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Changes the PIN. The current PIN is checked like an unlock (counted, three strikes wipe). The database key is
    /// re-wrapped under the new PIN and written to a new file, fsynced and atomically renamed over the old one, so
    /// a kill at any step leaves exactly one of the two PINs working. The vault's lock state is unchanged.
    /// </summary>
    /// <param name="currentPin">The current PIN.</param>
    /// <param name="newPin">The new PIN.</param>
    /// <param name="cancellationToken">Cancels the call before the attempt is counted.</param>
    /// <returns><see cref="UnlockStatus.Unlocked"/> when the new PIN is in force; otherwise the failed attempt's outcome.</returns>
    public async Task<UnlockResult> ChangePinAsync(string currentPin, string newPin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(currentPin);
        CheckPinPolicy(newPin);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
            var (result, dek, envelope, _) = await AttemptAsync(currentPin, cancellationToken).ConfigureAwait(false);
            if (dek is null)
            {
                return result;
            }

            var secret = await deviceSecrets.TryGetAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new VaultException(VaultErrorKind.InvalidState, "The device secret disappeared.");
            byte[]? kek = null;
            try
            {
                VaultTestHooks.Hit("pinchange:after-verify");
                var salt = RandomNumberGenerator.GetBytes(16);
                var updated = envelope! with { Salt = salt, Iterations = options.Pbkdf2Iterations };
                kek = KeyHierarchy.DeriveKek(newPin, secret, salt, updated.Iterations, updated.InstallId);
                updated = updated with { WrappedDek = KeyHierarchy.Seal(kek, dek, updated.AssociatedData()) };

                var temp = DurableFile.WriteTemp(paths.KeyFile, updated.Serialize(), ".new");
                VaultTestHooks.Hit("pinchange:after-temp-write");
                File.Move(temp, paths.KeyFile, overwrite: true);
                VaultTestHooks.Hit("pinchange:after-rename");
                DurableFile.SyncDirectory(paths.VaultDirectory);
                VaultTestHooks.Hit("pinchange:after-dir-sync");
                Log.PinChanged(logger);
                return result;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(dek);
                CryptographicOperations.ZeroMemory(secret);
                if (kek is not null)
                {
                    CryptographicOperations.ZeroMemory(kek);
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Locks an unlocked vault: closes the store and forgets its keys.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public async Task LockAsync(CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (state == VaultState.Unlocked)
            {
                store?.Dispose();
                store = null;
                SetState(VaultState.Locked);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Wipes all iMikelGo data on the device, exactly once: records a non-secret marker, crypto-shreds the wrapped
    /// key, counter and device secret, deletes the database with its WAL, SHM, journal and caches, resets the demo
    /// school and enters demo mode. Serves three wrong PINs, remote deactivation and the user's own request. No PIN
    /// is needed. An interrupted wipe is finished by the next <see cref="InitializeAsync"/>.
    /// </summary>
    /// <param name="reason">Why.</param>
    /// <param name="cancellationToken">Cancels waiting for the vault; a started wipe always runs to the end.</param>
    /// <returns>True if this call wiped; false if the vault was already wiped or never enrolled.</returns>
    public async Task<bool> WipeAsync(WipeReason reason, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
            if (state is VaultState.Wiped or VaultState.NotEnrolled && !HasVaultFiles())
            {
                return false;
            }

            await WipeCoreAsync(reason, CancellationToken.None).ConfigureAwait(false);
            return true;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Removes the wipe marker once the user has seen it.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public async Task AcknowledgeWipeAsync(CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (WipeMarkerFile.TryRead(paths.WipeMarker) is { Completed: true })
            {
                File.Delete(paths.WipeMarker);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Opens the built-in demo school (generated, labelled "DEMO"), in its own folder and database. Available only in
    /// demo mode; its store refuses every sync entry point.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The demo store.</returns>
    public async Task<IDeviceStore> OpenDemoAsync(CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
            if (!IsDemoMode)
            {
                throw new VaultException(VaultErrorKind.InvalidState, "Demo mode is only available while no vault is enrolled.");
            }

            if (demoStore is not null)
            {
                return demoStore;
            }

            demoStore = OpenDemoStore();
            if (await demoStore.ReadEventsAsync(DemoSchool.Account, DemoSchool.DeviceId, 0, 1, cancellationToken).ConfigureAwait(false) is { Count: 0 })
            {
                await demoStore.AppendBatchAsync(DemoSchool.GenerateEvents(), cancellationToken).ConfigureAwait(false);
            }

            return demoStore;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        gate.Wait();
        try
        {
            store?.Dispose();
            store = null;
            DisposeDemo();
        }
        finally
        {
            gate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    // ---- internals -------------------------------------------------------------------------------------------

    /// <summary>Opens a second, independently keyed connection to the unlocked vault's database (tests, tools).</summary>
    internal SqliteConnection OpenExtraConnection(ReadOnlySpan<byte> dek) =>
        SqliteConnector.TryOpen(paths.Database, KeyHierarchy.DatabaseKey(dek), Profile, options.NativeLibraryPath)
        ?? throw new VaultException(VaultErrorKind.DatabaseUnreadable, "Cannot open the database.");

    internal CipherProfile Profile => new(options.Cipher, options.CipherLegacy);

    private async Task EnsureInitializedAsync(CancellationToken cancellationToken)
    {
        if (initialized)
        {
            return;
        }

        var path = SqliteNative.EnsureLoaded(options.NativeLibraryPath);
        Log.Native(logger, path, SqliteConnector.Flavor(options.NativeLibraryPath).ToString());
        DurableFile.EnsurePrivateDirectory(paths.Root);

        if (WipeMarkerFile.TryRead(paths.WipeMarker) is { Completed: false } unfinished)
        {
            await WipeCoreAsync(unfinished.Reason, CancellationToken.None, unfinished).ConfigureAwait(false);
            initialized = true;
            return;
        }

        // A PIN change that never reached its rename: the old key file is authoritative.
        DeleteIfExists(paths.NewKeyFile);
        DeleteIfExists(paths.CounterFile + ".tmp");
        DeleteIfExists(paths.KeyFile + ".tmp");

        if (File.Exists(paths.KeyFile))
        {
            var envelope = KeyEnvelope.Parse(await File.ReadAllBytesAsync(paths.KeyFile, cancellationToken).ConfigureAwait(false));
            var secret = await deviceSecrets.TryGetAsync(cancellationToken).ConfigureAwait(false);
            var genuine = secret is not null && CryptographicOperations.FixedTimeEquals(
                envelope.InstallMac, KeyEnvelope.ComputeInstallMac(secret, envelope.InstallId, envelope.DeviceId));
            if (secret is not null)
            {
                CryptographicOperations.ZeroMemory(secret);
            }

            initialized = true;
            if (!genuine)
            {
                await WipeCoreAsync(WipeReason.CloneOrRestore, CancellationToken.None).ConfigureAwait(false);
                return;
            }

            SetState(VaultState.Locked);
            return;
        }

        initialized = true;
        if (HasVaultFiles())
        {
            // Data without its key: unreadable leftovers (or an interrupted enrollment). Remove them the same way.
            await WipeCoreAsync(WipeReason.Tamper, CancellationToken.None).ConfigureAwait(false);
            return;
        }

        SetState(File.Exists(paths.WipeMarker) ? VaultState.Wiped : VaultState.NotEnrolled);
    }

    /// <summary>The counted attempt. Returns the DEK (caller zeroes it) only for a correct PIN.</summary>
    private async Task<(UnlockResult Result, byte[]? Dek, KeyEnvelope? Envelope, long Generation)> AttemptAsync(string pin, CancellationToken cancellationToken)
    {
        switch (state)
        {
            case VaultState.Wiped:
                return (new UnlockResult(UnlockStatus.Wiped, 0), null, null, 0);
            case VaultState.NotEnrolled:
                return (new UnlockResult(UnlockStatus.NotEnrolled, 0), null, null, 0);
        }

        // Everything that can fail for reasons other than the PIN happens before the attempt is counted.
        var envelope = KeyEnvelope.Parse(await File.ReadAllBytesAsync(paths.KeyFile, cancellationToken).ConfigureAwait(false));
        SqliteNative.EnsureLoaded(options.NativeLibraryPath);
        var secret = await deviceSecrets.TryGetAsync(cancellationToken).ConfigureAwait(false);
        if (secret is null || !CryptographicOperations.FixedTimeEquals(envelope.InstallMac, KeyEnvelope.ComputeInstallMac(secret, envelope.InstallId, envelope.DeviceId)))
        {
            if (secret is not null)
            {
                CryptographicOperations.ZeroMemory(secret);
            }

            await WipeCoreAsync(WipeReason.CloneOrRestore, CancellationToken.None).ConfigureAwait(false);
            return (new UnlockResult(UnlockStatus.Wiped, 0), null, null, 0);
        }

        var macKey = KeyHierarchy.CounterMacKey(secret, envelope.InstallId);
        byte[]? kek = null;
        try
        {
            var counter = PinCounter.TryRead(paths.CounterFile, macKey);
            if (counter is null || counter.Value.Generation < lastSeenGeneration)
            {
                await WipeCoreAsync(WipeReason.Tamper, CancellationToken.None).ConfigureAwait(false);
                return (new UnlockResult(UnlockStatus.Wiped, 0), null, null, 0);
            }

            if (counter.Value.Failures >= DeviceVaultOptions.MaxPinAttempts)
            {
                await WipeCoreAsync(WipeReason.WrongPin, CancellationToken.None).ConfigureAwait(false);
                return (new UnlockResult(UnlockStatus.Wiped, 0), null, null, 0);
            }

            // Count first, durably; from here on a kill still counts the attempt.
            var counted = new PinCounter(counter.Value.Generation + 1, counter.Value.Failures + 1);
            WriteCounter(counted, macKey);
            VaultTestHooks.Hit("unlock:after-counter-increment");

            var sw = Stopwatch.StartNew();
            kek = KeyHierarchy.DeriveKek(pin, secret, envelope.Salt, envelope.Iterations, envelope.InstallId);
            var kdf = sw.Elapsed;
            byte[] dek;
            try
            {
                dek = KeyHierarchy.Open(kek, envelope.WrappedDek, envelope.AssociatedData());
            }
            catch (AuthenticationTagMismatchException)
            {
                VaultTestHooks.Hit("unlock:after-wrong-pin");
                var remaining = DeviceVaultOptions.MaxPinAttempts - counted.Failures;
                if (remaining <= 0)
                {
                    SetState(VaultState.Wiped); // nothing accepts input from here on
                    await WipeCoreAsync(WipeReason.WrongPin, CancellationToken.None).ConfigureAwait(false);
                    return (new UnlockResult(UnlockStatus.Wiped, 0), null, null, 0);
                }

                Log.WrongPin(logger, remaining);
                return (new UnlockResult(UnlockStatus.WrongPin, remaining), null, null, 0);
            }

            var reset = new PinCounter(counted.Generation + 1, 0);
            WriteCounter(reset, macKey);
            VaultTestHooks.Hit("unlock:after-reset");
            LastUnlockTiming = (kdf, TimeSpan.Zero);
            return (new UnlockResult(UnlockStatus.Unlocked, DeviceVaultOptions.MaxPinAttempts), dek, envelope, counter.Value.Generation);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
            CryptographicOperations.ZeroMemory(macKey);
            if (kek is not null)
            {
                CryptographicOperations.ZeroMemory(kek);
            }
        }
    }

    /// <summary>
    /// The database remembers the highest counter generation it has seen; a counter file older than that was rolled
    /// back (restored from a copy) and counts as tampering.
    /// </summary>
    /// <param name="opened">The freshly opened store.</param>
    /// <param name="readGeneration">The generation the counter file had when this attempt read it.</param>
    private bool CheckGenerationWitness(EncryptedSqliteStore opened, long readGeneration)
    {
        var seen = EncryptedSqliteStore.GetMeta(opened.Connection, PinGenerationMetaKey);
        if (seen is not null && long.TryParse(seen, NumberStyles.None, CultureInfo.InvariantCulture, out var seenGeneration) && seenGeneration > readGeneration)
        {
            return false;
        }

        // The counter now stands at readGeneration + 2 (counted, then reset).
        EncryptedSqliteStore.SetMeta(opened.Connection, PinGenerationMetaKey, (readGeneration + 2).ToString(CultureInfo.InvariantCulture));
        return true;
    }

    private void WriteCounter(PinCounter counter, ReadOnlySpan<byte> secret, ReadOnlySpan<byte> installId)
    {
        var macKey = KeyHierarchy.CounterMacKey(secret, installId);
        try
        {
            WriteCounter(counter, macKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(macKey);
        }
    }

    private void WriteCounter(PinCounter counter, ReadOnlySpan<byte> macKey)
    {
        DurableFile.WriteAtomic(paths.CounterFile, PinCounter.Serialize(counter, macKey));
        lastSeenGeneration = Math.Max(lastSeenGeneration, counter.Generation);
    }

    private EncryptedSqliteStore OpenDatabase(byte[] dek, KeyEnvelope envelope, bool create)
    {
        if (!create && !File.Exists(paths.Database))
        {
            throw new VaultException(VaultErrorKind.DatabaseUnreadable, "The vault database is missing.");
        }

        var dbKey = KeyHierarchy.DatabaseKey(dek);
        var payloadKey = KeyHierarchy.PayloadKey(dek);
        try
        {
            var conn = SqliteConnector.TryOpen(paths.Database, dbKey, Profile, options.NativeLibraryPath)
                ?? OpenLegacy(dbKey)
                ?? throw new VaultException(VaultErrorKind.DatabaseUnreadable,
                    "The PIN is right but the database cannot be read in any known format (not counted as a wrong PIN).");
            try
            {
                EncryptedSqliteStore.EnsureSchema(conn);
                if (SqliteConnector.IsPlaintextSqlite(paths.Database))
                {
                    throw new VaultException(VaultErrorKind.EncryptionUnavailable, "The database was written in plaintext.");
                }
            }
            catch
            {
                conn.Dispose();
                throw;
            }

            return new EncryptedSqliteStore(conn, payloadKey, time, isDemo: false, envelope.DeviceId, envelope.Account);
        }
        catch
        {
            CryptographicOperations.ZeroMemory(payloadKey);
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dbKey);
        }
    }

    /// <summary>F13: after a correct PIN, try the formats older versions wrote, right after keying, and migrate.</summary>
    private SqliteConnection? OpenLegacy(byte[] dbKey)
    {
        if (SqliteConnector.Flavor(options.NativeLibraryPath) == SqliteCipherFlavor.SQLCipher)
        {
            var migrated = SqliteConnector.TryOpen(paths.Database, dbKey, Profile, options.NativeLibraryPath, migrateSqlCipher: true);
            if (migrated is not null)
            {
                Log.Migrated(logger, "SQLCipher (older major version)", "SQLCipher (current)");
            }

            return migrated;
        }

        foreach (var legacy in CipherProfile.LegacyFormats)
        {
            if (legacy == Profile)
            {
                continue;
            }

            var conn = SqliteConnector.TryOpen(paths.Database, dbKey, legacy, options.NativeLibraryPath);
            if (conn is null)
            {
                continue;
            }

            try
            {
                SqliteConnector.Migrate(conn, dbKey, Profile);
            }
            catch
            {
                conn.Dispose();
                throw;
            }

            Log.Migrated(logger, legacy.ToString(), Profile.ToString());
            return conn;
        }

        return null;
    }

    private EncryptedSqliteStore OpenDemoStore()
    {
        DurableFile.EnsurePrivateDirectory(paths.DemoDirectory);
        for (var attempt = 0; ; attempt++)
        {
            byte[] demoKey;
            if (File.Exists(paths.DemoKeyFile) && File.ReadAllBytes(paths.DemoKeyFile) is { Length: KeyHierarchy.KeySize } existing)
            {
                demoKey = existing;
            }
            else
            {
                foreach (var f in paths.DatabaseFiles(paths.DemoDatabase))
                {
                    DeleteIfExists(f);
                }

                demoKey = RandomNumberGenerator.GetBytes(KeyHierarchy.KeySize);
                DurableFile.WriteAtomic(paths.DemoKeyFile, demoKey);
            }

            var dbKey = KeyHierarchy.DatabaseKey(demoKey);
            try
            {
                var conn = SqliteConnector.TryOpen(paths.DemoDatabase, dbKey, Profile, options.NativeLibraryPath);
                if (conn is not null)
                {
                    EncryptedSqliteStore.EnsureSchema(conn);
                    EncryptedSqliteStore.SetMeta(conn, "demo", DemoSchool.Label);
                    return new EncryptedSqliteStore(conn, KeyHierarchy.PayloadKey(demoKey), time, isDemo: true, DemoSchool.DeviceId, DemoSchool.Account);
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(dbKey);
                CryptographicOperations.ZeroMemory(demoKey);
            }

            if (attempt > 0)
            {
                throw new VaultException(VaultErrorKind.DatabaseUnreadable, "Cannot create the demo database.");
            }

            DeleteIfExists(paths.DemoKeyFile); // unreadable demo data: regenerate
        }
    }

    private async Task WipeCoreAsync(WipeReason reason, CancellationToken cancellationToken, WipeRecord? resume = null)
    {
        SetState(VaultState.Wiped); // first: nothing accepts input any more
        Log.Wiping(logger, reason);
        var record = resume ?? new WipeRecord(reason, time.GetUtcNow(), Completed: false);
        var ok = true;
        void Step(string name, Action action)
        {
            try
            {
                action();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or SqliteException or VaultException)
            {
                ok = false;
                Log.WipeStepFailed(logger, ex, name);
            }
        }

        Step("marker", () => WipeMarkerFile.Write(paths.WipeMarker, record));
        VaultTestHooks.Hit("wipe:after-marker");

        // 1. Crypto-shred: without the wrapped key and the device secret the database is noise.
        Step("close", () =>
        {
            store?.Dispose();
            store = null;
            DisposeDemo();
            SqliteConnection.ClearAllPools();
        });
        Step("key", () =>
        {
            DurableFile.Shred(paths.KeyFile);
            DurableFile.Shred(paths.NewKeyFile);
            DurableFile.Shred(paths.CounterFile);
        });
        try
        {
            await deviceSecrets.DestroyAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            ok = false;
            Log.WipeStepFailed(logger, ex, "device-secret");
        }

        VaultTestHooks.Hit("wipe:after-shred");

        // 2. Delete the database, WAL, SHM, journal, caches and anything else in the vault folder.
        Step("database", DeleteVaultDirectory);

        // 3. Reset the demo school to a fresh copy.
        Step("demo", () =>
        {
            if (Directory.Exists(paths.DemoDirectory))
            {
                Directory.Delete(paths.DemoDirectory, recursive: true);
            }
        });

        lastSeenGeneration = 0;
        if (ok)
        {
            Step("marker-complete", () => WipeMarkerFile.Write(paths.WipeMarker, record with { Completed = true }));
        }

        Log.Wiped(logger, reason);
    }

    private void DeleteVaultDirectory()
    {
        if (!Directory.Exists(paths.VaultDirectory))
        {
            return;
        }

        foreach (var f in paths.DatabaseFiles(paths.Database))
        {
            DeleteIfExists(f);
        }

        Directory.Delete(paths.VaultDirectory, recursive: true);
    }

    private bool HasVaultFiles() =>
        Directory.Exists(paths.VaultDirectory) && Directory.EnumerateFileSystemEntries(paths.VaultDirectory).Any();

    private void DisposeDemo()
    {
        demoStore?.Dispose();
        demoStore = null;
    }

    private const int MaximumPinLength = 128;

    private void CheckPinPolicy(string pin)
    {
        ArgumentNullException.ThrowIfNull(pin);
        if (pin.Length < options.MinimumPinLength)
        {
            throw new VaultException(VaultErrorKind.PinPolicy, $"A PIN has at least {options.MinimumPinLength} characters.");
        }

        if (pin.Length > MaximumPinLength || string.IsNullOrWhiteSpace(pin) || pin.Any(char.IsControl))
        {
            throw new VaultException(VaultErrorKind.PinPolicy, $"A PIN has at most {MaximumPinLength} characters and no control characters, and is not blank.");
        }
    }

    private void SetState(VaultState next)
    {
        if (state != next)
        {
            state = next;
            Log.State(logger, next);
        }
    }

    private static void DeleteIfExists(string path)
    {
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
