namespace IMikelGo.App.Components;

/// <summary>Where the device is in its life cycle, as the screens need it.</summary>
public enum DeviceMode
{
    /// <summary>Never enrolled, or wiped: the built-in demo school, no sync, until enrollment.</summary>
    Demo,

    /// <summary>Enrolled; waiting for the PIN.</summary>
    Locked,

    /// <summary>Enrolled and unlocked: real data, sync available.</summary>
    Unlocked,
}

/// <summary>A lesson's status in the week view.</summary>
public enum LessonState
{
    /// <summary>Nothing recorded yet.</summary>
    Scheduled,

    /// <summary>The lesson took place.</summary>
    Held,

    /// <summary>The lesson was cancelled.</summary>
    Cancelled,

    /// <summary>The lesson was moved.</summary>
    Moved,
}

/// <summary>Why a lesson was cancelled (the engine's reasons).</summary>
public enum CancelReason
{
    /// <summary>The teacher is ill.</summary>
    TeacherIll,

    /// <summary>The student is ill.</summary>
    StudentIll,

    /// <summary>The school is closed (holiday, closure).</summary>
    SchoolClosed,

    /// <summary>Anything else (see the note).</summary>
    Other,
}

/// <summary>A student of a lesson, with an absence if one was recorded.</summary>
/// <param name="Id">The student id.</param>
/// <param name="Name">The display name.</param>
/// <param name="Absent">Null when present; true = excused, false = unexcused.</param>
public sealed record StudentItem(string Id, string Name, bool? Absent);

/// <summary>One lesson of the week.</summary>
/// <param name="Id">The occurrence id (stable across devices).</param>
/// <param name="Subject">The subject.</param>
/// <param name="Date">The (possibly moved) date.</param>
/// <param name="Start">The start time.</param>
/// <param name="DurationMinutes">The length.</param>
/// <param name="Room">The room.</param>
/// <param name="State">The merged status.</param>
/// <param name="CancelReason">Why it was cancelled, if it was.</param>
/// <param name="MakeUpOwed">Whether a make-up lesson is owed.</param>
/// <param name="Note">The note of a held or cancelled lesson.</param>
/// <param name="Students">The students.</param>
public sealed record LessonItem(
    string Id, string Subject, DateOnly Date, TimeOnly Start, int DurationMinutes, string Room, LessonState State,
    CancelReason? CancelReason, bool MakeUpOwed, string? Note, IReadOnlyList<StudentItem> Students);

/// <summary>A conflict between two devices' concurrent edits, and the documented rule that decided it.</summary>
/// <param name="LessonId">The lesson.</param>
/// <param name="Lesson">A readable label of the lesson.</param>
/// <param name="Rule">The merge rule's id (docs/merge-rules.md).</param>
/// <param name="Description">What happened, in words.</param>
/// <param name="Winner">The event that prevailed.</param>
/// <param name="Loser">The event that lost.</param>
/// <param name="WinnerSummary">The prevailing change in words.</param>
/// <param name="LoserSummary">The other change in words.</param>
public sealed record ConflictItem(string LessonId, string Lesson, string Rule, string Description, string Winner, string Loser, string WinnerSummary, string LoserSummary);

/// <summary>A clash of a proposed move with the known timetable.</summary>
/// <param name="SameRoom">True when the room is taken; false when the teacher has another lesson then.</param>
/// <param name="Subject">The other lesson's subject.</param>
/// <param name="Date">Its date.</param>
/// <param name="Start">Its start.</param>
/// <param name="Room">Its room.</param>
public sealed record ClashItem(bool SameRoom, string Subject, DateOnly Date, TimeOnly Start, string Room);

/// <summary>A device of the account.</summary>
/// <param name="Id">The replica id.</param>
/// <param name="Label">The label the school gave it.</param>
/// <param name="IsThisDevice">True for the device running the app.</param>
/// <param name="Revoked">True when the school deactivated it.</param>
public sealed record DeviceItem(string Id, string Label, bool IsThisDevice, bool Revoked);

/// <summary>The outcome of a PIN entry.</summary>
/// <param name="Unlocked">True when the PIN was right.</param>
/// <param name="Wiped">True when this entry was the third wrong one: all data was deleted, demo mode.</param>
/// <param name="RemainingAttempts">Wrong entries left before the wipe.</param>
public sealed record PinOutcome(bool Unlocked, bool Wiped, int RemainingAttempts);

/// <summary>The outcome of a PIN change.</summary>
/// <param name="Changed">True when the new PIN is in force.</param>
/// <param name="Wiped">True when a wrong current PIN was the third strike: all data was deleted, demo mode.</param>
/// <param name="RemainingAttempts">Wrong entries left before the wipe.</param>
/// <param name="Error">Why the new PIN was not accepted (PIN policy; not counted as a strike), if so.</param>
public sealed record PinChangeOutcome(bool Changed, bool Wiped, int RemainingAttempts, string? Error);

/// <summary>Sync progress for the screen.</summary>
/// <param name="Phase">"pulling", "received", "pushing", "pushed" or "completed".</param>
/// <param name="Received">Events received so far.</param>
/// <param name="Sent">Events sent so far.</param>
/// <param name="ToSend">Events to send in this round.</param>
public sealed record SyncStep(string Phase, int Received, int Sent, int ToSend);

/// <summary>What a sync did.</summary>
/// <param name="Received">Events received (new).</param>
/// <param name="Sent">Own events sent.</param>
/// <param name="Refused">Refused bundles or events, with the reason (tampering is refused, never applied).</param>
/// <param name="ReceivedLines">Readable lines about what came in.</param>
/// <param name="SentLines">Readable lines about what went out.</param>
/// <param name="Wiped">True when the school had deactivated this device: all data was deleted, demo mode.</param>
public sealed record SyncReport(int Received, int Sent, IReadOnlyList<string> Refused, IReadOnlyList<string> ReceivedLines, IReadOnlyList<string> SentLines, bool Wiped);

/// <summary>The outcome of a recorded change.</summary>
/// <param name="Ok">True when recorded.</param>
/// <param name="Error">Why not, if not.</param>
public sealed record ChangeResult(bool Ok, string? Error)
{
    /// <summary>Success.</summary>
    public static ChangeResult Success { get; } = new(true, null);
}

/// <summary>
/// Everything the screens need from the device: the vault (PIN, three-strike wipe, demo mode), enrollment, the
/// teacher's calendar and its changes, sync, conflicts and devices. The host adapts the shared TeacherDevice facade
/// (frontends/iMikelGo.Device) to it; a MAUI shell does the same.
/// </summary>
public interface ITeacherDevice
{
    /// <summary>Raised after anything the screens show changed (unlock, wipe, record, sync).</summary>
    event Action? Changed;

    /// <summary>The life-cycle state.</summary>
    DeviceMode Mode { get; }

    /// <summary>The enrolled account (license key), or the demo account.</summary>
    string Account { get; }

    /// <summary>The school's name as the account says it.</summary>
    string School { get; }

    /// <summary>Wrong PIN entries left before the wipe.</summary>
    int RemainingAttempts { get; }

    /// <summary>Maximum wrong entries (3).</summary>
    int MaxAttempts { get; }

    /// <summary>True when the last wipe was caused by wrong PINs and has not been acknowledged.</summary>
    bool WipedByWrongPins { get; }

    /// <summary>True when the last wipe was the school's deactivation of this device and has not been acknowledged.</summary>
    bool WipedBySchool { get; }

    /// <summary>Checks a PIN.</summary>
    Task<PinOutcome> UnlockAsync(string pin, CancellationToken cancellationToken);

    /// <summary>Changes the PIN; a wrong current PIN counts as a strike (the third wipes, as at unlock).</summary>
    Task<PinChangeOutcome> ChangePinAsync(string currentPin, string newPin, CancellationToken cancellationToken);

    /// <summary>Locks the device again.</summary>
    Task LockAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Enrolls this device from the school's enrollment URI (QR code), license key and school-internal password, and sets
    /// the PIN; <paramref name="deviceLabel"/> (blank: the host's default) is how the school lists this device.
    /// </summary>
    Task<ChangeResult> EnrollAsync(string enrollmentUri, string licenseKey, string schoolPassword, string newPin, string? deviceLabel, CancellationToken cancellationToken);

    /// <summary>The lessons of the week starting on <paramref name="monday"/>.</summary>
    IReadOnlyList<LessonItem> Week(DateOnly monday);

    /// <summary>A sensible week to show first (the current week, or the first week with lessons).</summary>
    DateOnly DefaultMonday(DateOnly today);

    /// <summary>Records a student's absence.</summary>
    Task<ChangeResult> RecordAbsenceAsync(string lessonId, string studentId, bool excused, string? reason, CancellationToken cancellationToken);

    /// <summary>Cancels a lesson.</summary>
    Task<ChangeResult> CancelAsync(string lessonId, CancelReason reason, bool makeUpOwed, string? note, CancellationToken cancellationToken);

    /// <summary>Lessons that would clash with a move (same time, and the same room or the same teacher).</summary>
    IReadOnlyList<ClashItem> Clashes(string lessonId, DateOnly date, TimeOnly start, int durationMinutes, string room);

    /// <summary>Moves a lesson.</summary>
    Task<ChangeResult> MoveAsync(string lessonId, DateOnly date, TimeOnly start, int durationMinutes, string room, CancellationToken cancellationToken);

    /// <summary>Records that a lesson took place.</summary>
    Task<ChangeResult> HeldAsync(string lessonId, string? note, CancellationToken cancellationToken);

    /// <summary>Whether sync is possible (enrolled and unlocked).</summary>
    bool CanSync { get; }

    /// <summary>Pulls everything new and pushes this device's changes.</summary>
    Task<SyncReport> SyncAsync(IProgress<SyncStep>? progress, CancellationToken cancellationToken);

    /// <summary>Conflicts the merge decided.</summary>
    IReadOnlyList<ConflictItem> Conflicts();

    /// <summary>Resolves a conflict by keeping one side (a new, signed event that every device applies).</summary>
    Task<ChangeResult> ResolveAsync(string lessonId, string keepEvent, CancellationToken cancellationToken);

    /// <summary>The account's devices.</summary>
    IReadOnlyList<DeviceItem> Devices();
}
