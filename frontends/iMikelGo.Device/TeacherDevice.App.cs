using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Relay.Client;
using IMikelGo.Store.Sqlite;

namespace IMikelGo.Device;

/// <summary>A sync with readable lines of what came in and what went out (the teacher app's summary).</summary>
/// <param name="Result">The sync's counts, refusals and wipe flag.</param>
/// <param name="ReceivedLines">The events that arrived, in words (empty after a wipe).</param>
/// <param name="SentLines">This device's changes the relay confirmed, in words.</param>
public sealed record DeviceSyncActivity(DeviceSyncResult Result, IReadOnlyList<string> ReceivedLines, IReadOnlyList<string> SentLines);

/// <summary>What the teacher app needs beyond the CLI: PIN change, the school's name, a first week, a sync summary in words.</summary>
public sealed partial class TeacherDevice
{
    /// <summary>The school's name as the account's log states it (null while locked or never enrolled).</summary>
    public string? SchoolName
    {
        get
        {
            var replica = View;
            return replica?.Ledger.Applied.Where(e => e.Account == replica.Account).Select(e => e.Payload).OfType<AccountOpened>().Select(a => a.School).FirstOrDefault();
        }
    }

    /// <summary>
    /// Changes the PIN. The current PIN is checked like an unlock: a wrong one counts as a strike, and the third wrong
    /// entry in a row wipes all data and switches to demo mode (as <see cref="UnlockAsync"/>).
    /// </summary>
    /// <param name="currentPin">The current PIN.</param>
    /// <param name="newPin">The new PIN (at least the vault's minimum length).</param>
    /// <param name="cancellationToken">Cancels the call before the attempt is counted.</param>
    /// <returns><see cref="UnlockStatus.Unlocked"/> when the new PIN is in force; otherwise the counted failure.</returns>
    /// <exception cref="VaultException">The new PIN breaks the PIN policy (<see cref="VaultErrorKind.PinPolicy"/>); nothing was counted.</exception>
    public async Task<UnlockOutcome> ChangePinAsync(string currentPin, string newPin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(currentPin);
        ArgumentNullException.ThrowIfNull(newPin);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = await _vault.ChangePinAsync(currentPin, newPin, cancellationToken).ConfigureAwait(false);
            if (result.Status == UnlockStatus.Wiped)
            {
                CloseSession();
                _demo = DemoSchool.Create(_options.Time);
            }

            return new UnlockOutcome(result.Status, result.RemainingAttempts, CurrentState());
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The Monday of the week to show first: this week when it has lessons, else the week of the next (or last) lesson.</summary>
    /// <param name="today">Today.</param>
    /// <returns>A Monday.</returns>
    public DateOnly FirstWeekToShow(DateOnly today)
    {
        var monday = MondayOf(today);
        var dates = View?.Calendar.Lessons().Select(l => l.Date).ToList() ?? [];
        if (dates.Count == 0 || dates.Any(d => MondayOf(d) == monday))
        {
            return monday;
        }

        var upcoming = dates.Where(d => d >= today).ToList();
        return MondayOf(upcoming.Count > 0 ? upcoming.Min() : dates.Max());
    }

    /// <summary>
    /// <see cref="SyncAsync"/>, and in words what arrived (events of the account new to this device) and what went out
    /// (own changes that left the outbox because the relay confirmed them).
    /// </summary>
    /// <param name="progress">Progress reports.</param>
    /// <param name="cancellationToken">Cancels the sync (safe: it resumes where it stopped).</param>
    /// <returns>The result with the lines.</returns>
    /// <exception cref="InvalidOperationException">Not unlocked (demo mode never syncs).</exception>
    /// <exception cref="RelayException">The relay could not be reached after the retries, or refused the request.</exception>
    public async Task<DeviceSyncActivity> SyncWithActivityAsync(IProgress<SyncProgress>? progress, CancellationToken cancellationToken)
    {
        var replica = _replica?.Replica;
        var known = replica?.Ledger.Applied.Where(e => e.Account == replica.Account).Select(e => e.Hash).ToHashSet() ?? [];
        var outboxBefore = await OwnOutboxAsync(cancellationToken).ConfigureAwait(false);
        var result = await SyncCoreAsync(progress, cancellationToken).ConfigureAwait(false);
        if (result.Wiped || replica is null || _replica?.Replica != replica)
        {
            return new DeviceSyncActivity(result, [], []);
        }

        var outboxAfter = await OwnOutboxAsync(cancellationToken).ConfigureAwait(false);
        var events = replica.Ledger.Applied.Where(e => e.Account == replica.Account).ToList();
        var byHash = events.ToDictionary(e => e.Hash);
        return new DeviceSyncActivity(result,
            [.. events.Where(e => !known.Contains(e.Hash)).Select(Describe)],
            [.. outboxBefore.Where(h => !outboxAfter.Contains(h)).Select(h => Describe(byHash.GetValueOrDefault(h)))]);
    }

    private async Task<HashSet<EventHash>> OwnOutboxAsync(CancellationToken cancellationToken)
    {
        if (_replica is not { } replica || _vault.State != VaultState.Unlocked)
        {
            return [];
        }

        var outbox = await _vault.Store.GetOutboxForSyncAsync(int.MaxValue, cancellationToken).ConfigureAwait(false);
        return [.. outbox.Where(o => string.Equals(o.Event.ReplicaId, replica.Id.Value, StringComparison.Ordinal))
            .Select(o => SignedEvent.ParseLine(o.Event.CanonicalEvent.Span).Event.Hash)];
    }

    private static DateOnly MondayOf(DateOnly date) => date.AddDays(-(((int)date.DayOfWeek + 6) % 7));
}
