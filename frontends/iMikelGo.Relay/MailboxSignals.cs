using System.Collections.Concurrent;

namespace IMikelGo.Relay;

/// <summary>
/// Wakes long-polls of one account when this instance appends to its mailbox. Bundles appended through other
/// instances are found by the long-poll's periodic store read (<see cref="RelayOptions.LongPollStoreInterval"/>).
/// </summary>
public sealed class MailboxSignals
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new(StringComparer.Ordinal);

    /// <summary>A task that completes at the account's next append on this instance.</summary>
    public Task NextAppend(string account) =>
        _waiters.GetOrAdd(account, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Signals an append to <paramref name="account"/>'s mailbox.</summary>
    public void Appended(string account)
    {
        if (_waiters.TryRemove(account, out var waiter))
        {
            waiter.TrySetResult();
        }
    }
}
