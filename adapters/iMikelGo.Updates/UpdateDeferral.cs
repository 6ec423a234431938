using System.Text.Json;

namespace IMikelGo.Updates;

/// <summary>The teacher's busy times (lesson slots from the calendar): the app never asks, and never installs, during them.</summary>
public interface IBusySchedule
{
    /// <summary>Whether the teacher is busy (in one of their own lessons) at <paramref name="at"/>.</summary>
    /// <param name="at">The instant.</param>
    /// <returns>True when busy.</returns>
    bool IsBusy(DateTimeOffset at);
}

/// <summary>What the app should do about an available update now.</summary>
public enum PromptAction
{
    /// <summary>Show the prompt now (install now / later).</summary>
    AskNow,

    /// <summary>Do not ask yet; ask again at <see cref="PromptDecision.AskAt"/>.</summary>
    AskLater,

    /// <summary>Show the prompt with "install now" only (security grace period over, or below the minimum supported version).</summary>
    InstallRequired,
}

/// <summary>The deferral policy's answer.</summary>
/// <param name="Action">What to do.</param>
/// <param name="AskAt">When to ask (again); null for now.</param>
/// <param name="CanPostpone">Whether the prompt may offer "later".</param>
/// <param name="Deadline">End of the security grace period, if any.</param>
/// <param name="Reason">Why (for logs and the prompt).</param>
public sealed record PromptDecision(PromptAction Action, DateTimeOffset? AskAt, bool CanPostpone, DateTimeOffset? Deadline, string Reason);

/// <summary>
/// Deferral policy: the teacher may postpone; the app asks again after the postponement but never during a lesson; a security
/// update past its grace period (or a version below the minimum supported one) can no longer be postponed. Postponements are
/// persisted in <c>state/deferral.json</c> and survive restarts; they apply to one manifest (version and sequence) only.
/// </summary>
public sealed class UpdateDeferral
{
    private static readonly TimeSpan Step = TimeSpan.FromMinutes(5);
    private readonly string _path;
    private readonly IBusySchedule _schedule;
    private readonly TimeProvider _time;

    /// <summary>Initializes a new instance of the <see cref="UpdateDeferral"/> class.</summary>
    /// <param name="installRoot">The install root (the state is kept in <c>state/deferral.json</c>).</param>
    /// <param name="schedule">The teacher's lesson slots.</param>
    /// <param name="time">The clock.</param>
    public UpdateDeferral(string installRoot, IBusySchedule schedule, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        _path = Path.Combine(new InstallLayout(installRoot, null).StateDir, "deferral.json");
        _schedule = schedule;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Gets the default postponement ("later").</summary>
    public TimeSpan DefaultPostpone { get; init; } = TimeSpan.FromHours(4);

    /// <summary>Decides whether to show the prompt now.</summary>
    /// <param name="update">A verified update.</param>
    /// <returns>The decision.</returns>
    public PromptDecision Evaluate(AvailableUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        var now = _time.GetUtcNow();
        var mandatory = IsMandatory(update, now, out var why);
        if (_schedule.IsBusy(now))
        {
            return new PromptDecision(PromptAction.AskLater, NextFree(now), !mandatory, update.SecurityDeadline, "the teacher is in a lesson");
        }

        if (mandatory)
        {
            return new PromptDecision(PromptAction.InstallRequired, null, false, update.SecurityDeadline, why);
        }

        if (Read() is { } d && d.Sequence == update.Manifest.Sequence && d.Version == update.Manifest.Version.Text && now < d.Until)
        {
            return new PromptDecision(PromptAction.AskLater, NextFree(d.Until), true, update.SecurityDeadline, $"postponed until {Time.Format(d.Until)}");
        }

        return new PromptDecision(PromptAction.AskNow, null, true, update.SecurityDeadline,
            update.Manifest.Security ? "security update" : "update available");
    }

    /// <summary>Records "later". A security update is postponed at most until its deadline; a mandatory one cannot be postponed.</summary>
    /// <param name="update">The update.</param>
    /// <param name="duration">How long (default <see cref="DefaultPostpone"/>).</param>
    /// <param name="decision">When the app asks again, or why postponing was refused.</param>
    /// <returns>False when the update can no longer be postponed.</returns>
    public bool TryPostpone(AvailableUpdate update, TimeSpan? duration, out PromptDecision decision)
    {
        ArgumentNullException.ThrowIfNull(update);
        var now = _time.GetUtcNow();
        if (IsMandatory(update, now, out var why))
        {
            decision = new PromptDecision(PromptAction.InstallRequired, null, false, update.SecurityDeadline, why);
            return false;
        }

        var until = now + (duration is { } d && d > TimeSpan.Zero ? d : DefaultPostpone);
        if (update.SecurityDeadline is { } deadline && until > deadline)
        {
            until = deadline;
        }

        InstallLayout.WriteAtomic(_path, Json.Write(w =>
        {
            w.WriteString("version", update.Manifest.Version.Text);
            w.WriteNumber("sequence", update.Manifest.Sequence);
            w.WriteString("until", Time.Format(until));
        }));
        decision = new PromptDecision(PromptAction.AskLater, NextFree(until), true, update.SecurityDeadline, $"postponed until {Time.Format(until)}");
        return true;
    }

    private static bool IsMandatory(AvailableUpdate update, DateTimeOffset now, out string why)
    {
        if (update.Required)
        {
            why = $"{update.Running} is below the minimum supported version {update.Manifest.MinimumVersion}";
            return true;
        }

        if (update.SecurityDeadline is { } deadline && now >= deadline)
        {
            why = $"security update; the grace period ended at {Time.Format(deadline)}";
            return true;
        }

        why = string.Empty;
        return false;
    }

    private DateTimeOffset NextFree(DateTimeOffset from)
    {
        var t = from;
        for (var i = 0; i < 24 * 12 * 2 && _schedule.IsBusy(t); i++)
        {
            t += Step;
        }

        return t;
    }

    private (string Version, long Sequence, DateTimeOffset Until)? Read()
    {
        try
        {
            if (!File.Exists(_path))
            {
                return null;
            }

            using var doc = JsonDocument.Parse(File.ReadAllBytes(_path));
            var r = doc.RootElement;
            return (r.GetProperty("version").GetString()!, r.GetProperty("sequence").GetInt64(), Time.Parse(r.GetProperty("until").GetString()!));
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null; // a damaged deferral only makes the app ask sooner
        }
    }
}

/// <summary>Adapts a delegate (e.g. a calendar lookup) to <see cref="IBusySchedule"/>.</summary>
/// <param name="isBusy">Returns true during the teacher's lessons.</param>
public sealed class BusySchedule(Func<DateTimeOffset, bool> isBusy) : IBusySchedule
{
    /// <summary>Gets a schedule that is never busy.</summary>
    public static BusySchedule Never { get; } = new(_ => false);

    /// <inheritdoc />
    public bool IsBusy(DateTimeOffset at) => isBusy(at);
}
