namespace IMikelGo.Sealing;

/// <summary>Replay detection: remembers which bundle ids were already received per account.</summary>
public interface ISeenBundles
{
    /// <summary>True when the bundle was already recorded.</summary>
    /// <param name="accountId">The account (mailbox).</param>
    /// <param name="bundleId">The bundle id.</param>
    /// <returns>Whether the bundle is a duplicate.</returns>
    bool Contains(string accountId, Guid bundleId);

    /// <summary>Records a bundle; false when it was already recorded (a replay).</summary>
    /// <param name="accountId">The account (mailbox).</param>
    /// <param name="bundleId">The bundle id.</param>
    /// <returns>True when the bundle is new.</returns>
    bool TryRecord(string accountId, Guid bundleId);
}

/// <summary>An in-memory <see cref="ISeenBundles"/> (tests, relay caches). Durable stores implement the same interface.</summary>
public sealed class InMemorySeenBundles : ISeenBundles
{
    private readonly HashSet<(string, Guid)> _seen = [];
    private readonly Lock _gate = new();

    /// <inheritdoc />
    public bool Contains(string accountId, Guid bundleId)
    {
        lock (_gate)
        {
            return _seen.Contains((accountId, bundleId));
        }
    }

    /// <inheritdoc />
    public bool TryRecord(string accountId, Guid bundleId)
    {
        lock (_gate)
        {
            return _seen.Add((accountId, bundleId));
        }
    }
}
