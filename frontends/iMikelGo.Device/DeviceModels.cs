using System.Collections.Immutable;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Signing;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite;

namespace IMikelGo.Device;

/// <summary>What the teacher app shows at start (docs/device.md).</summary>
public enum DeviceState
{
    /// <summary>Never enrolled: demo mode is available, enrollment is offered.</summary>
    NotEnrolled,

    /// <summary>Enrolled; waiting for the PIN.</summary>
    Locked,

    /// <summary>Unlocked: the teacher's week, changes and sync are available.</summary>
    Unlocked,

    /// <summary>Wiped (three wrong PINs, remote deactivation, tamper, user): demo mode until re-enrollment.</summary>
    Wiped,

    /// <summary>The built-in demo school is open (never syncs).</summary>
    Demo,
}

/// <summary>How a <see cref="TeacherDevice"/> is set up.</summary>
public sealed class TeacherDeviceOptions
{
    /// <summary>The device folder (vault, device secret, settings). Required.</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>Where the 32-byte device secret lives; default <c>DATA/device</c> (keep it out of backups).</summary>
    public string? DeviceSecretDirectory { get; set; }

    /// <summary>PBKDF2 iterations for a new PIN (null = the vault's default, ≈250 ms). Tests lower it.</summary>
    public int? Pbkdf2Iterations { get; set; }

    /// <summary>
    /// How the device enrolls with its school (license key + school password). Null (the default) = the relay hand-off,
    /// a <see cref="RelayEnrollmentChannel"/> set up by <see cref="ConfigureRelayEnrollment"/>.
    /// </summary>
    public IEnrollmentChannel? Enrollment { get; set; }

    /// <summary>
    /// Tunes the default <see cref="RelayEnrollmentChannel"/> (school certificate source, answer timeout, poll backoff);
    /// it starts with this device's <see cref="Time"/> and <see cref="ConfigureRelay"/>.
    /// </summary>
    public Action<RelayEnrollmentOptions>? ConfigureRelayEnrollment { get; set; }

    /// <summary>Tunes the relay client (retries, timeouts); base address and pin always come from the enrollment.</summary>
    public Action<RelayClientOptions>? ConfigureRelay { get; set; }

    /// <summary>The device label sent at enrollment (e.g. "Laptop"); default the machine name.</summary>
    public string? DeviceLabel { get; set; }

    /// <summary>The clock (tests inject a fake one).</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}

/// <summary>What the teacher types or scans to enroll this device.</summary>
/// <param name="EnrollmentUri">The QR payload <c>imikelgo://enroll?relay=…&amp;school=…&amp;root=…&amp;license=…</c>.</param>
/// <param name="LicenseKey">The license key (Kennung); must match the one in the QR payload when it has one.</param>
/// <param name="SchoolPassword">The school-internal password (never stored, never sent in plaintext).</param>
/// <param name="Pin">The new device PIN.</param>
public sealed record EnrollmentInput(string EnrollmentUri, string LicenseKey, string SchoolPassword, string Pin)
{
    /// <summary>How the school lists this device ("Annas Laptop"); null or blank: <see cref="TeacherDeviceOptions.DeviceLabel"/>.</summary>
    public string? DeviceLabel { get; init; }
}

/// <summary>What the device sends its school through an <see cref="IEnrollmentChannel"/>.</summary>
/// <param name="Uri">The parsed QR payload.</param>
/// <param name="LicenseKey">The license key as typed.</param>
/// <param name="SchoolPassword">The school-internal password (the channel seals it to the school).</param>
/// <param name="Device">The new device's replica id (hash of its signing key; also its relay caller id).</param>
/// <param name="SigningKey">The device's signing public key (SubjectPublicKeyInfo).</param>
/// <param name="EncryptionKey">The device's first HPKE public key: the school seals its bundles to it at once.</param>
/// <param name="Label">A human label ("Laptop").</param>
public sealed record EnrollmentRequest(
    EnrollmentUri Uri, string LicenseKey, string SchoolPassword, ReplicaId Device, ImmutableArray<byte> SigningKey,
    RecipientPublicKey EncryptionKey, string Label)
{
    /// <summary>The device's private signing key (only for channels in this assembly that sign the request themselves).</summary>
    internal ReplicaKey? DeviceSigningKey { get; init; }

    /// <summary>The device's private HPKE key (only for channels in this assembly; the relay hand-off binds it in the certificate).</summary>
    internal EncryptionKeyPair? DeviceEncryptionKey { get; init; }
}

/// <summary>The school's approval as the device needs it.</summary>
/// <param name="Account">The account (the teacher's log) the device joined.</param>
/// <param name="Relay">The relay's https base address.</param>
/// <param name="RelayCertificateSha256">The pinned relay certificate fingerprint (64 hex digits).</param>
/// <param name="PeerKeys">
/// The current HPKE keys of the account's other enrolled devices, by replica id, as the school knows them from their
/// enrollment: the new device seals its first events to them, so peers learn its key (docs/device.md, key bootstrap).
/// </param>
public sealed record EnrollmentGrant(string Account, Uri Relay, string RelayCertificateSha256, IReadOnlyDictionary<ReplicaId, RecipientPublicKey> PeerKeys);

/// <summary>
/// The port through which a device enrolls with its school. Implementations: the relay hand-off
/// (<see cref="RelayEnrollmentChannel"/>: the request sealed to the school's enrollment key, queued at the relay,
/// answered by the school connector), and <see cref="DelegateEnrollmentChannel"/> for an in-process school
/// (QuickStart, tests). The channel must verify the license key and school password before answering.
/// </summary>
public interface IEnrollmentChannel
{
    /// <summary>Enrolls the device; throws <see cref="EnrollmentRefusedException"/> when the school says no.</summary>
    /// <param name="request">The device's request.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The school's grant.</returns>
    Task<EnrollmentGrant> EnrollAsync(EnrollmentRequest request, CancellationToken cancellationToken);
}

/// <summary>The school refused the enrollment (wrong license key or password, revoked, unknown school…), or it could not be completed (relay rate limit, timeout).</summary>
public sealed class EnrollmentRefusedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">Why, as a code.</param>
    /// <param name="message">Why, in words (no secrets).</param>
    /// <param name="innerException">The cause, if any.</param>
    /// <param name="retryAfter">When trying again makes sense, if known.</param>
    public EnrollmentRefusedException(EnrollmentRefusalReason reason, string message, Exception? innerException = null, TimeSpan? retryAfter = null)
        : base(message, innerException)
    {
        Reason = reason;
        RetryAfter = retryAfter;
    }

    /// <summary>Why, as a code (<see cref="EnrollmentRefusalReason.Unspecified"/> when the channel did not say).</summary>
    public EnrollmentRefusalReason Reason { get; }

    /// <summary>When trying again makes sense (relay rate limit), if known.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>Creates the exception.</summary>
    public EnrollmentRefusedException() : base("The school refused the enrollment.") { }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why (no secrets).</param>
    public EnrollmentRefusedException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why (no secrets).</param>
    /// <param name="innerException">The cause.</param>
    public EnrollmentRefusedException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>An <see cref="IEnrollmentChannel"/> over a delegate: the school runs in the same process.</summary>
/// <param name="enroll">The school's enrollment decision.</param>
public sealed class DelegateEnrollmentChannel(Func<EnrollmentRequest, CancellationToken, Task<EnrollmentGrant>> enroll) : IEnrollmentChannel
{
    /// <inheritdoc />
    public Task<EnrollmentGrant> EnrollAsync(EnrollmentRequest request, CancellationToken cancellationToken) => enroll(request, cancellationToken);
}

/// <summary>The outcome of a PIN entry.</summary>
/// <param name="Status">Unlocked, wrong PIN, wiped or not enrolled.</param>
/// <param name="RemainingAttempts">Wrong entries left before the wipe (0 after it).</param>
/// <param name="State">The device state afterwards (<see cref="DeviceState.Demo"/> after the third wrong PIN).</param>
public sealed record UnlockOutcome(UnlockStatus Status, int RemainingAttempts, DeviceState State);

/// <summary>One student of a lesson.</summary>
/// <param name="Id">The student id.</param>
/// <param name="Name">The name the school published (the id when unknown).</param>
/// <param name="Absent">Null when present; true for an excused, false for an unexcused absence.</param>
public sealed record LessonStudent(StudentId Id, string Name, bool? Absent);

/// <summary>One lesson of the week.</summary>
/// <param name="Occurrence">The lesson occurrence (series and original date): the handle for every change.</param>
/// <param name="Subject">What is taught.</param>
/// <param name="Date">The (possibly moved) date.</param>
/// <param name="Start">The (possibly moved) start time.</param>
/// <param name="DurationMinutes">The length.</param>
/// <param name="Room">The (possibly moved) room.</param>
/// <param name="Status">Scheduled, held, cancelled or moved.</param>
/// <param name="CancellationReason">Why it was cancelled, if it was.</param>
/// <param name="MakeUpOwed">Whether a make-up lesson is owed.</param>
/// <param name="Note">The note (held or cancelled).</param>
/// <param name="Students">The students with their absence state.</param>
/// <param name="HasConflict">Whether a conflict was decided on this lesson.</param>
public sealed record WeekLesson(
    OccurrenceId Occurrence, string Subject, DateOnly Date, TimeOnly Start, int DurationMinutes, RoomId Room, LessonStatus Status,
    CancellationReason? CancellationReason, bool MakeUpOwed, string? Note, IReadOnlyList<LessonStudent> Students, bool HasConflict);

/// <summary>A clash of a proposed move with the known timetable.</summary>
/// <param name="Kind">Same teacher (another of the account's lessons at that time) or same room.</param>
/// <param name="Occurrence">The lesson it clashes with.</param>
/// <param name="Subject">That lesson's subject.</param>
/// <param name="Date">Its date.</param>
/// <param name="Start">Its start.</param>
/// <param name="DurationMinutes">Its length.</param>
/// <param name="Room">Its room.</param>
public sealed record MoveClash(ClashKind Kind, OccurrenceId Occurrence, string Subject, DateOnly Date, TimeOnly Start, int DurationMinutes, RoomId Room);

/// <summary>Why a move clashes.</summary>
public enum ClashKind
{
    /// <summary>The teacher has another lesson at that time.</summary>
    Teacher,

    /// <summary>The room is taken by another known lesson at that time (only the lessons this device knows).</summary>
    Room,
}

/// <summary>The outcome of a change (absence, cancel, move, held, resolve).</summary>
/// <param name="Succeeded">Whether it was recorded (durable in the vault, pending for sync).</param>
/// <param name="Error">Why not, in words.</param>
/// <param name="Clashes">For a move: the clashes found (the move is recorded anyway; the UI warns).</param>
public sealed record ChangeResult(bool Succeeded, string? Error, IReadOnlyList<MoveClash> Clashes)
{
    /// <summary>A success without clashes.</summary>
    public static ChangeResult Ok { get; } = new(true, null, []);

    /// <summary>A failure.</summary>
    /// <param name="error">Why.</param>
    /// <returns>The result.</returns>
    public static ChangeResult Failed(string error) => new(false, error, []);
}

/// <summary>What one press of the Sync button did.</summary>
/// <param name="Received">Events received and applied.</param>
/// <param name="Sent">Own events the relay confirmed.</param>
/// <param name="Refused">Bundles or events refused, with reasons (nothing of a refused bundle was applied).</param>
/// <param name="Wiped">True when the school deactivated this device: the vault is wiped and the app is in demo mode.</param>
/// <param name="NewConflicts">Conflicts after the sync that were not there before.</param>
/// <param name="Details">The relay client's full summary (null after a wipe).</param>
public sealed record DeviceSyncResult(int Received, int Sent, IReadOnlyList<string> Refused, bool Wiped, int NewConflicts, SyncSummary? Details);

/// <summary>A conflict: two concurrent changes whose intents collided, the one that prevailed and the rule.</summary>
/// <param name="Occurrence">The lesson.</param>
/// <param name="Winner">The event that prevailed.</param>
/// <param name="Loser">The event that did not.</param>
/// <param name="WinnerSummary">The prevailing change in words.</param>
/// <param name="LoserSummary">The other change in words.</param>
/// <param name="Rule">The rule that decided (docs/merge-rules.md).</param>
/// <param name="Description">The engine's description.</param>
public sealed record DeviceConflict(OccurrenceId Occurrence, EventHash Winner, EventHash Loser, string WinnerSummary, string LoserSummary, string Rule, string Description);

/// <summary>One device of the account, from the log.</summary>
/// <param name="Id">The device's replica id.</param>
/// <param name="Label">The label given at enrollment.</param>
/// <param name="Revoked">Whether the school revoked it.</param>
/// <param name="RevocationReason">The school's reason, if revoked.</param>
/// <param name="IsThisDevice">Whether it is this device.</param>
/// <param name="HasEncryptionKey">Whether it published an encryption key (it receives bundles).</param>
public sealed record DeviceInfo(ReplicaId Id, string Label, bool Revoked, string? RevocationReason, bool IsThisDevice, bool HasEncryptionKey);

/// <summary>The relay settings kept in the vault.</summary>
/// <param name="Relay">The relay base address.</param>
/// <param name="CertificateSha256">The pinned certificate fingerprint.</param>
public sealed record RelaySettings(Uri Relay, string CertificateSha256);
