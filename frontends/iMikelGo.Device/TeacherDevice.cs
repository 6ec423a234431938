using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Relay.Client;
using IMikelGo.Store.Sqlite;

namespace IMikelGo.Device;

/// <summary>
/// One teacher device: the encrypted vault, the device's replica of the teacher's log and the relay sync behind a
/// small API that the teacher app (web UI) and the CLI share. Not thread-safe: one UI drives it (calls are
/// serialized internally where they touch the vault). See docs/device.md.
/// </summary>
public sealed partial class TeacherDevice : IAsyncDisposable
{
    /// <summary>Opens the device folder: finishes an interrupted wipe, detects clones, reads the state.</summary>
    /// <param name="options">The options.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The device in state <see cref="DeviceState.NotEnrolled"/>, <see cref="DeviceState.Locked"/> or <see cref="DeviceState.Wiped"/>.</returns>
    public static Task<TeacherDevice> OpenAsync(TeacherDeviceOptions options, CancellationToken cancellationToken) =>
        OpenCoreAsync(options, cancellationToken);

    /// <summary>The current state.</summary>
    public DeviceState State => CurrentState();

    /// <summary>True in demo mode (never enrolled or wiped): nothing syncs.</summary>
    public bool IsDemoMode => State is DeviceState.Demo or DeviceState.NotEnrolled or DeviceState.Wiped;

    /// <summary>The last wipe (reason and time) until acknowledged, for an honest message in the UI.</summary>
    public WipeRecord? LastWipe => _vault.LastWipe;

    /// <summary>The enrolled account (null while locked, in demo mode, or never enrolled).</summary>
    public string? Account => _replica?.Replica.Account.Value;

    /// <summary>This device's replica id (null unless unlocked or demo).</summary>
    public ReplicaId? DeviceId => _replica?.Id ?? _demo?.Device.Id;

    /// <summary>
    /// The calendar digest of this device's replica of the account's log (lowercase hex SHA-256 of the merged calendar):
    /// equal on every replica of the account, school included, that has applied the same events. Null unless unlocked.
    /// </summary>
    public string? Digest => _replica?.Replica.Calendar.Digest();

    /// <summary>The relay settings kept in the vault (null unless unlocked).</summary>
    public RelaySettings? Relay => _settings?.RelaySettings;

    /// <summary>Enters the PIN. The third wrong entry in a row wipes all data and switches to demo mode.</summary>
    /// <param name="pin">The PIN.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The outcome with the remaining attempts.</returns>
    public Task<UnlockOutcome> UnlockAsync(string pin, CancellationToken cancellationToken) => UnlockCoreAsync(pin, cancellationToken);

    /// <summary>Locks the device (the PIN is needed again).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public Task LockAsync(CancellationToken cancellationToken) => LockCoreAsync(cancellationToken);

    /// <summary>
    /// Enrolls this device (allowed in demo mode only): creates fresh keys, asks the school through the
    /// <see cref="TeacherDeviceOptions.Enrollment"/> channel, then creates the vault under <see cref="EnrollmentInput.Pin"/>
    /// and keeps the relay URL and pin in it. The device is unlocked afterwards.
    /// </summary>
    /// <param name="input">URI, license key, school password, PIN.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>This device's replica id.</returns>
    /// <exception cref="ArgumentException">The URI is malformed or the license key does not match it.</exception>
    /// <exception cref="EnrollmentRefusedException">The school refused.</exception>
    public Task<ReplicaId> EnrollAsync(EnrollmentInput input, CancellationToken cancellationToken) => EnrollCoreAsync(input, cancellationToken);

    /// <summary>Opens the built-in demo school (only when not enrolled or wiped). It never syncs; changes stay in memory.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public Task OpenDemoAsync(CancellationToken cancellationToken) => OpenDemoCoreAsync(cancellationToken);

    /// <summary>The lessons of the ISO week (Monday to Sunday) that contains <paramref name="anyDay"/>, by date and time.</summary>
    /// <param name="anyDay">Any day of the week.</param>
    /// <returns>The lessons.</returns>
    public IReadOnlyList<WeekLesson> Week(DateOnly anyDay) => WeekCore(anyDay);

    /// <summary>Records that a student was absent.</summary>
    /// <param name="occurrence">The lesson.</param>
    /// <param name="student">The student.</param>
    /// <param name="excused">Excused or not.</param>
    /// <param name="reason">An optional reason.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The result.</returns>
    public Task<ChangeResult> RecordAbsenceAsync(OccurrenceId occurrence, StudentId student, bool excused, string? reason, CancellationToken cancellationToken) =>
        RecordAsync(new StudentAbsent(occurrence, student, excused, reason), [], cancellationToken);

    /// <summary>Cancels a lesson.</summary>
    /// <param name="occurrence">The lesson.</param>
    /// <param name="reason">Why.</param>
    /// <param name="makeUpOwed">Whether a make-up lesson is owed.</param>
    /// <param name="note">An optional note.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The result.</returns>
    public Task<ChangeResult> CancelAsync(OccurrenceId occurrence, CancellationReason reason, bool makeUpOwed, string? note, CancellationToken cancellationToken) =>
        RecordAsync(new LessonCancelled(occurrence, reason, makeUpOwed, note), [], cancellationToken);

    /// <summary>The clashes a move would cause: the teacher's other lessons, or another known lesson in the room, at that time.</summary>
    /// <param name="occurrence">The lesson to move.</param>
    /// <param name="date">The new date.</param>
    /// <param name="start">The new start.</param>
    /// <param name="durationMinutes">The length.</param>
    /// <param name="room">The new room.</param>
    /// <returns>The clashes (empty when none).</returns>
    public IReadOnlyList<MoveClash> CheckMove(OccurrenceId occurrence, DateOnly date, TimeOnly start, int durationMinutes, RoomId room) =>
        CheckMoveCore(occurrence, date, start, durationMinutes, room);

    /// <summary>Moves a lesson (Terminverschiebung). Clashes are reported in the result; the move is recorded anyway.</summary>
    /// <param name="occurrence">The lesson.</param>
    /// <param name="date">The new date.</param>
    /// <param name="start">The new start.</param>
    /// <param name="durationMinutes">The length.</param>
    /// <param name="room">The new room.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The result with the clashes.</returns>
    public Task<ChangeResult> MoveAsync(OccurrenceId occurrence, DateOnly date, TimeOnly start, int durationMinutes, RoomId room, CancellationToken cancellationToken) =>
        RecordAsync(new LessonRescheduled(occurrence, date, (start.Hour * 60) + start.Minute, durationMinutes, room),
            CheckMoveCore(occurrence, date, start, durationMinutes, room), cancellationToken);

    /// <summary>Records that a lesson took place, with a short note.</summary>
    /// <param name="occurrence">The lesson.</param>
    /// <param name="note">An optional note.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The result.</returns>
    public Task<ChangeResult> MarkHeldAsync(OccurrenceId occurrence, string? note, CancellationToken cancellationToken) =>
        RecordAsync(new LessonHeld(occurrence, note), [], cancellationToken);

    /// <summary>
    /// The Sync button: receives everything new and sends all own changes. When the school deactivated this device, the
    /// vault is wiped (<see cref="WipeReason.RemoteDeactivation"/>), the wipe is acknowledged to the relay and the result
    /// says <see cref="DeviceSyncResult.Wiped"/>.
    /// </summary>
    /// <param name="progress">Progress reports (phases, counts).</param>
    /// <param name="cancellationToken">Cancels the sync (safe: it resumes where it stopped).</param>
    /// <returns>What came in and went out.</returns>
    /// <exception cref="InvalidOperationException">Not unlocked (demo mode never syncs).</exception>
    /// <exception cref="RelayException">The relay could not be reached after the retries, or refused the request.</exception>
    public Task<DeviceSyncResult> SyncAsync(IProgress<SyncProgress>? progress, CancellationToken cancellationToken) =>
        SyncCoreAsync(progress, cancellationToken);

    /// <summary>The conflicts decided so far, each with the rule that decided.</summary>
    /// <returns>The conflicts.</returns>
    public IReadOnlyList<DeviceConflict> Conflicts() => ConflictsCore();

    /// <summary>Resolves a conflict by keeping one of its two events (a new, synced event).</summary>
    /// <param name="conflict">The conflict.</param>
    /// <param name="keep">The event to keep: <see cref="DeviceConflict.Winner"/> or <see cref="DeviceConflict.Loser"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The result.</returns>
    public Task<ChangeResult> ResolveAsync(DeviceConflict conflict, EventHash keep, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(conflict);
        return keep != conflict.Winner && keep != conflict.Loser
            ? Task.FromResult(ChangeResult.Failed("keep must be one of the conflict's two events"))
            : RecordAsync(new ConflictResolved(conflict.Occurrence, keep), [], cancellationToken);
    }

    /// <summary>The account's devices from the log (enrolled and revoked).</summary>
    /// <returns>The devices.</returns>
    public IReadOnlyList<DeviceInfo> Devices() => DevicesCore();

    /// <summary>Own changes not yet confirmed by the relay.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many.</returns>
    public Task<int> PendingCountAsync(CancellationToken cancellationToken) => PendingCountCoreAsync(cancellationToken);

    /// <summary>Wipes this device at the user's request (demo mode afterwards).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public Task WipeAsync(CancellationToken cancellationToken) => WipeCoreAsync(WipeReason.User, cancellationToken);

    /// <summary>Removes the wipe notice once the user has seen it.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public Task AcknowledgeWipeAsync(CancellationToken cancellationToken) => _vault.AcknowledgeWipeAsync(cancellationToken);
}
