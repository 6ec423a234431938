using System.Globalization;
using IMikelGo.App.Components;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Relay.Client;
using IMikelGo.Store.Sqlite;
using ChangeResult = IMikelGo.App.Components.ChangeResult;
using DeviceChange = IMikelGo.Device.ChangeResult;

namespace IMikelGo.App;

/// <summary>
/// The screens' <see cref="ITeacherDevice"/> over the shared <see cref="TeacherDevice"/> facade (the same one the CLI
/// uses): only mapping of ids, enums and results, and the translation of refusals into messages for the screen.
/// </summary>
internal sealed class TeacherDeviceAdapter(TeacherDevice device) : ITeacherDevice, IAsyncDisposable
{
    private int _remaining = DeviceVaultOptions.MaxPinAttempts;

    /// <inheritdoc />
    public event Action? Changed;

    /// <summary>The facade (the host's update check reads the lesson slots through the screens' view).</summary>
    public TeacherDevice Device => device;

    /// <inheritdoc />
    public DeviceMode Mode => device.State switch
    {
        DeviceState.Unlocked => DeviceMode.Unlocked,
        DeviceState.Locked => DeviceMode.Locked,
        _ => DeviceMode.Demo,
    };

    /// <inheritdoc />
    public string Account => device.Account ?? "";

    /// <inheritdoc />
    public string School => device.SchoolName ?? "";

    /// <inheritdoc />
    public int RemainingAttempts => _remaining;

    /// <inheritdoc />
    public int MaxAttempts => DeviceVaultOptions.MaxPinAttempts;

    /// <inheritdoc />
    public bool WipedByWrongPins => device.LastWipe?.Reason == WipeReason.WrongPin;

    /// <inheritdoc />
    public bool WipedBySchool => device.LastWipe?.Reason == WipeReason.RemoteDeactivation;

    /// <inheritdoc />
    public bool CanSync => device.State == DeviceState.Unlocked;

    /// <summary>Opens the device folder; without an enrollment (or after a wipe) the demo school is shown.</summary>
    public static async Task<TeacherDeviceAdapter> OpenAsync(TeacherDeviceOptions options, CancellationToken cancellationToken)
    {
        var device = await TeacherDevice.OpenAsync(options, cancellationToken).ConfigureAwait(false);
        if (device.IsDemoMode)
        {
            await device.OpenDemoAsync(cancellationToken).ConfigureAwait(false);
        }

        return new TeacherDeviceAdapter(device);
    }

    /// <inheritdoc />
    public async Task<PinOutcome> UnlockAsync(string pin, CancellationToken cancellationToken)
    {
        try
        {
            var outcome = await device.UnlockAsync(pin ?? "", cancellationToken).ConfigureAwait(false);
            _remaining = outcome.Status == UnlockStatus.Unlocked ? MaxAttempts : outcome.RemainingAttempts;
            return outcome.Status switch
            {
                UnlockStatus.Unlocked => new PinOutcome(true, false, _remaining),
                UnlockStatus.Wiped => new PinOutcome(false, true, 0),
                _ => new PinOutcome(false, false, _remaining),
            };
        }
        finally
        {
            Changed?.Invoke();
        }
    }

    /// <inheritdoc />
    public async Task<PinChangeOutcome> ChangePinAsync(string currentPin, string newPin, CancellationToken cancellationToken)
    {
        try
        {
            var outcome = await device.ChangePinAsync(currentPin ?? "", newPin ?? "", cancellationToken).ConfigureAwait(false);
            _remaining = outcome.Status == UnlockStatus.Unlocked ? MaxAttempts : outcome.RemainingAttempts;
            return new PinChangeOutcome(outcome.Status == UnlockStatus.Unlocked, outcome.Status == UnlockStatus.Wiped, _remaining, null);
        }
        catch (VaultException e) when (e.Kind == VaultErrorKind.PinPolicy)
        {
            return new PinChangeOutcome(false, false, _remaining, e.Message);
        }
        finally
        {
            Changed?.Invoke();
        }
    }

    /// <inheritdoc />
    public async Task LockAsync(CancellationToken cancellationToken)
    {
        await device.LockAsync(cancellationToken).ConfigureAwait(false);
        Changed?.Invoke();
    }

    /// <inheritdoc />
    public async Task<ChangeResult> EnrollAsync(string enrollmentUri, string licenseKey, string schoolPassword, string newPin, string? deviceLabel, CancellationToken cancellationToken)
    {
        try
        {
            await device.EnrollAsync(new EnrollmentInput(enrollmentUri, licenseKey, schoolPassword, newPin) { DeviceLabel = deviceLabel }, cancellationToken).ConfigureAwait(false);
            await device.AcknowledgeWipeAsync(cancellationToken).ConfigureAwait(false);
            _remaining = MaxAttempts;
            return ChangeResult.Success;
        }
        catch (Exception e) when (e is ArgumentException or EnrollmentRefusedException or InvalidOperationException or VaultException or RelayException)
        {
            // Every refusal's message is written to be shown (no secrets); nothing was created.
            return new ChangeResult(false, e.Message);
        }
        finally
        {
            Changed?.Invoke();
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<LessonItem> Week(DateOnly monday) => [.. device.Week(monday).Select(ToItem)];

    /// <inheritdoc />
    public DateOnly DefaultMonday(DateOnly today) => device.FirstWeekToShow(today);

    /// <inheritdoc />
    public Task<ChangeResult> RecordAbsenceAsync(string lessonId, string studentId, bool excused, string? reason, CancellationToken cancellationToken) =>
        ChangeAsync(() => device.RecordAbsenceAsync(OccurrenceId.Parse(lessonId), new StudentId(studentId), excused, reason, cancellationToken));

    /// <inheritdoc />
    public Task<ChangeResult> CancelAsync(string lessonId, Components.CancelReason reason, bool makeUpOwed, string? note, CancellationToken cancellationToken) =>
        ChangeAsync(() => device.CancelAsync(OccurrenceId.Parse(lessonId), Enum.Parse<CancellationReason>(reason.ToString()), makeUpOwed, note, cancellationToken));

    /// <inheritdoc />
    public IReadOnlyList<ClashItem> Clashes(string lessonId, DateOnly date, TimeOnly start, int durationMinutes, string room)
    {
        try
        {
            return [.. device.CheckMove(OccurrenceId.Parse(lessonId), date, start, durationMinutes, new RoomId(room.Trim()))
                .Select(c => new ClashItem(c.Kind == ClashKind.Room, c.Subject, c.Date, c.Start, c.Room.Value))];
        }
        catch (ArgumentException)
        {
            return []; // an incomplete room while typing: the move itself reports it
        }
    }

    /// <inheritdoc />
    public Task<ChangeResult> MoveAsync(string lessonId, DateOnly date, TimeOnly start, int durationMinutes, string room, CancellationToken cancellationToken) =>
        ChangeAsync(() => device.MoveAsync(OccurrenceId.Parse(lessonId), date, start, durationMinutes, new RoomId(room), cancellationToken));

    /// <inheritdoc />
    public Task<ChangeResult> HeldAsync(string lessonId, string? note, CancellationToken cancellationToken) =>
        ChangeAsync(() => device.MarkHeldAsync(OccurrenceId.Parse(lessonId), note, cancellationToken));

    /// <inheritdoc />
    public async Task<SyncReport> SyncAsync(IProgress<SyncStep>? progress, CancellationToken cancellationToken)
    {
        try
        {
            var relayProgress = progress is null
                ? null
                : new Progress<SyncProgress>(p => progress.Report(new SyncStep(p.Phase.ToString().ToLowerInvariant(), p.EventsReceived, p.EventsSent, p.EventsToSend)));
            var activity = await device.SyncWithActivityAsync(relayProgress, cancellationToken).ConfigureAwait(false);
            var r = activity.Result;
            return new SyncReport(r.Received, r.Sent, r.Refused, activity.ReceivedLines, activity.SentLines, r.Wiped);
        }
        finally
        {
            Changed?.Invoke();
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<ConflictItem> Conflicts() => [.. device.Conflicts().Select(c => new ConflictItem(
        c.Occurrence.ToString(), LessonLabel(c.Occurrence), c.Rule, c.Description, c.Winner.Hex, c.Loser.Hex, c.WinnerSummary, c.LoserSummary))];

    /// <inheritdoc />
    public Task<ChangeResult> ResolveAsync(string lessonId, string keepEvent, CancellationToken cancellationToken)
    {
        var conflict = device.Conflicts().FirstOrDefault(c => c.Occurrence.ToString() == lessonId && (c.Winner.Hex == keepEvent || c.Loser.Hex == keepEvent));
        return conflict is null
            ? Task.FromResult(new ChangeResult(false, "this conflict is no longer open"))
            : ChangeAsync(() => device.ResolveAsync(conflict, conflict.Winner.Hex == keepEvent ? conflict.Winner : conflict.Loser, cancellationToken));
    }

    /// <inheritdoc />
    public IReadOnlyList<DeviceItem> Devices() => [.. device.Devices().Select(d => new DeviceItem(d.Id.Value, d.Label, d.IsThisDevice, d.Revoked))];

    /// <inheritdoc />
    public ValueTask DisposeAsync() => device.DisposeAsync();

    private async Task<ChangeResult> ChangeAsync(Func<Task<DeviceChange>> change)
    {
        try
        {
            var result = await change().ConfigureAwait(false);
            return result.Succeeded ? ChangeResult.Success : new ChangeResult(false, result.Error);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            return new ChangeResult(false, e.Message);
        }
        finally
        {
            Changed?.Invoke();
        }
    }

    private string LessonLabel(OccurrenceId occurrence) =>
        device.Week(occurrence.Date).FirstOrDefault(l => l.Occurrence == occurrence) is { } l
            ? $"{l.Subject} {occurrence.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}" // ISO: the adapter does not know the screen's language
            : occurrence.ToString();

    private static LessonItem ToItem(WeekLesson l) => new(
        l.Occurrence.ToString(), l.Subject, l.Date, l.Start, l.DurationMinutes, l.Room.Value, Enum.Parse<LessonState>(l.Status.ToString()),
        l.CancellationReason is { } r ? Enum.Parse<Components.CancelReason>(r.ToString()) : null, l.MakeUpOwed, l.Note,
        [.. l.Students.Select(s => new StudentItem(s.Id.Value, s.Name, s.Absent))]);
}
