namespace IMikelGo.Store.Sqlite;

/// <summary>
/// One event as the store keeps it: opaque to the store except for its identity.
/// The canonical event bytes are sealed (AES-256-GCM) before they reach SQLite.
/// </summary>
/// <param name="Account">The account (license key / Kennung) the event belongs to.</param>
/// <param name="ReplicaId">The replica (device or school connector) that authored the event.</param>
/// <param name="Seq">The author's sequence number, unique per account and replica (1-based).</param>
/// <param name="EventHash">The 32-byte hash identifying the event; unique across the store.</param>
/// <param name="CanonicalEvent">The canonical event bytes (lesson content); never stored in plaintext.</param>
public sealed record EventRecord(
    string Account,
    string ReplicaId,
    long Seq,
    ReadOnlyMemory<byte> EventHash,
    ReadOnlyMemory<byte> CanonicalEvent);

/// <summary>Delivery state of one event in the outbox.</summary>
public enum OutboxState
{
    /// <summary>Not yet handed to a transport.</summary>
    Pending = 0,

    /// <summary>Handed to a transport at least once, not yet acknowledged; it is offered again.</summary>
    Sent = 1,

    /// <summary>Acknowledged by the relay; never offered again.</summary>
    Acked = 2,
}

/// <summary>An outbox entry: an event that still has to be delivered, with its delivery bookkeeping.</summary>
/// <param name="Event">The event to deliver.</param>
/// <param name="State">Its delivery state (never <see cref="OutboxState.Acked"/> in a sync read).</param>
/// <param name="Attempts">How many times it was marked sent.</param>
/// <param name="LastAttempt">When it was last marked sent, if ever.</param>
public sealed record OutboxEntry(EventRecord Event, OutboxState State, int Attempts, DateTimeOffset? LastAttempt);

/// <summary>The lifecycle state of the device vault.</summary>
public enum VaultState
{
    /// <summary>No vault on this device (never enrolled): the app runs in demo mode.</summary>
    NotEnrolled,

    /// <summary>An enrolled vault waiting for the PIN.</summary>
    Locked,

    /// <summary>The vault is open; its store is usable.</summary>
    Unlocked,

    /// <summary>The vault was wiped (wrong PINs, remote deactivation, user, tamper or clone): demo mode until re-enrollment.</summary>
    Wiped,
}

/// <summary>Why the vault was wiped.</summary>
public enum WipeReason
{
    /// <summary>Three consecutive wrong PIN entries.</summary>
    WrongPin,

    /// <summary>The school deactivated the user or device (Fernlöschung).</summary>
    RemoteDeactivation,

    /// <summary>The user asked for it.</summary>
    User,

    /// <summary>The attempt counter was missing, edited or rolled back, or the vault files were inconsistent.</summary>
    Tamper,

    /// <summary>The device secret is missing or belongs to another install: a restored or cloned copy.</summary>
    CloneOrRestore,
}

/// <summary>The non-secret record of a wipe, kept so the app can show it until the user acknowledges it.</summary>
/// <param name="Reason">Why the vault was wiped.</param>
/// <param name="WipedAt">When the wipe started.</param>
/// <param name="Completed">Whether every step finished (an interrupted wipe is completed at the next start).</param>
public sealed record WipeRecord(WipeReason Reason, DateTimeOffset WipedAt, bool Completed);

/// <summary>The outcome of a PIN entry.</summary>
public enum UnlockStatus
{
    /// <summary>The PIN was right; the vault is unlocked.</summary>
    Unlocked,

    /// <summary>The PIN was wrong; <see cref="UnlockResult.RemainingAttempts"/> tells how many remain.</summary>
    WrongPin,

    /// <summary>The vault is wiped (now or earlier); no PIN is accepted any more.</summary>
    Wiped,

    /// <summary>There is no vault to unlock (demo mode, never enrolled).</summary>
    NotEnrolled,
}

/// <summary>The result of <see cref="DeviceVault.UnlockAsync"/> or <see cref="DeviceVault.ChangePinAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="RemainingAttempts">Wrong entries left before the wipe.</param>
public sealed record UnlockResult(UnlockStatus Status, int RemainingAttempts);

/// <summary>The result of an enrollment: the fresh identity of this install.</summary>
/// <param name="DeviceId">A new device id, never reused across installs, restores or clones.</param>
/// <param name="Account">The enrolled account.</param>
public sealed record EnrollmentResult(string DeviceId, string Account);

/// <summary>What went wrong in a <see cref="VaultException"/>.</summary>
public enum VaultErrorKind
{
    /// <summary>The encrypted SQLite library could not be found or loaded.</summary>
    NativeLibraryUnavailable,

    /// <summary>The loaded SQLite library does not encrypt (no SQLite3MC and no SQLCipher).</summary>
    EncryptionUnavailable,

    /// <summary>The database file is plaintext SQLite: the vault refuses to use it.</summary>
    PlaintextDatabase,

    /// <summary>The database could not be read with the right key in any known format (not a wrong PIN).</summary>
    DatabaseUnreadable,

    /// <summary>The vault is not in a state that allows the operation (for example locked).</summary>
    InvalidState,

    /// <summary>A demo store was asked to take part in sync.</summary>
    DemoModeCannotSync,

    /// <summary>An event with the same account, replica and sequence but another hash is already stored.</summary>
    Conflict,

    /// <summary>A vault file is malformed (not counted as a wrong PIN).</summary>
    CorruptFile,

    /// <summary>The PIN does not meet the policy (too short).</summary>
    PinPolicy,
}

/// <summary>A vault failure that is not a wrong PIN.</summary>
public sealed class VaultException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kind">What went wrong.</param>
    /// <param name="message">A message without secrets.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public VaultException(VaultErrorKind kind, string message, Exception? inner = null)
        : base(message, inner) => Kind = kind;

    /// <summary>Creates the exception with <see cref="VaultErrorKind.InvalidState"/>.</summary>
    public VaultException() : this(VaultErrorKind.InvalidState, "Vault error.") { }

    /// <summary>Creates the exception with <see cref="VaultErrorKind.InvalidState"/>.</summary>
    /// <param name="message">A message without secrets.</param>
    public VaultException(string message) : this(VaultErrorKind.InvalidState, message) { }

    /// <summary>Creates the exception with <see cref="VaultErrorKind.InvalidState"/>.</summary>
    /// <param name="message">A message without secrets.</param>
    /// <param name="innerException">The underlying exception.</param>
    public VaultException(string message, Exception innerException)
        : this(VaultErrorKind.InvalidState, message, innerException) { }

    /// <summary>What went wrong.</summary>
    public VaultErrorKind Kind { get; }
}
