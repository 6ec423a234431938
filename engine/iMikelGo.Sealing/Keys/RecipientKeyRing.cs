using System.Diagnostics.CodeAnalysis;

namespace IMikelGo.Sealing;

/// <summary>
/// A device's continuously rotated HPKE key pairs: the <see cref="Current"/> key (what senders use), the already
/// published <see cref="Next"/> key, and retired previous keys kept only until their bundles are drained or
/// <see cref="SealingOptions.PreviousKeyMaxAge"/> passes. Private keys leave memory (zeroed by the platform) on removal.
/// </summary>
public sealed class RecipientKeyRing : IRecipientKeys, IDisposable
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _rotationInterval;
    private readonly TimeSpan _previousMaxAge;
    private readonly List<(EncryptionKeyPair Key, DateTimeOffset RetiredAt)> _previous = [];
    private readonly Lock _gate = new();

    /// <summary>Creates a ring with a fresh current and next key.</summary>
    /// <param name="time">The clock.</param>
    /// <param name="rotationInterval">How long a key stays current.</param>
    /// <param name="previousKeyMaxAge">How long a retired key is kept at most.</param>
    public RecipientKeyRing(TimeProvider time, TimeSpan rotationInterval, TimeSpan previousKeyMaxAge)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(rotationInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(previousKeyMaxAge, TimeSpan.Zero);
        _time = time;
        _rotationInterval = rotationInterval;
        _previousMaxAge = previousKeyMaxAge;
        Current = EncryptionKeyPair.Generate();
        NextKey = EncryptionKeyPair.Generate();
        CurrentSince = time.GetUtcNow();
    }

    /// <summary>Creates a ring from <see cref="SealingOptions"/>.</summary>
    /// <param name="time">The clock.</param>
    /// <param name="options">The options.</param>
    public RecipientKeyRing(TimeProvider time, SealingOptions options)
        : this(time, (options ?? throw new ArgumentNullException(nameof(options))).KeyRotationInterval, options.PreviousKeyMaxAge)
    {
    }

    /// <summary>The key senders should seal to now (published in the roster / the device's chain).</summary>
    public EncryptionKeyPair Current { get; private set; }

    /// <summary>The next public key, published ahead so senders can switch without a gap.</summary>
    public RecipientPublicKey Next => NextKey.PublicKey;

    /// <summary>When <see cref="Current"/> became current.</summary>
    public DateTimeOffset CurrentSince { get; private set; }

    /// <summary>Ids of retired keys still held.</summary>
    public IReadOnlyList<KeyId> PreviousKeyIds
    {
        get
        {
            lock (_gate)
            {
                return _previous.Select(p => p.Key.Id).ToList();
            }
        }
    }

    private EncryptionKeyPair NextKey { get; set; }

    /// <summary>Rotates when <see cref="SealingOptions.KeyRotationInterval"/> has passed, and prunes expired keys.</summary>
    /// <returns>True when a rotation happened (publish the new <see cref="Next"/>).</returns>
    public bool RotateIfDue()
    {
        var rotated = false;
        lock (_gate)
        {
            if (_time.GetUtcNow() - CurrentSince >= _rotationInterval)
            {
                RotateLocked();
                rotated = true;
            }
        }

        PruneExpired();
        return rotated;
    }

    /// <summary>Rotates now: next becomes current, current is retired, a new next key is generated.</summary>
    public void Rotate()
    {
        lock (_gate)
        {
            RotateLocked();
        }
    }

    private void RotateLocked()
    {
        var now = _time.GetUtcNow();
        _previous.Add((Current, now));
        Current = NextKey;
        CurrentSince = now;
        NextKey = EncryptionKeyPair.Generate();
    }

    /// <summary>
    /// Deletes a retired private key once every bundle addressed to it has been opened (the engine knows this when
    /// its mailbox cursor has passed the point where all senders had switched). The current and next keys cannot be released.
    /// </summary>
    /// <param name="keyId">The retired key.</param>
    /// <returns>True when a key was deleted.</returns>
    public bool Release(KeyId keyId)
    {
        lock (_gate)
        {
            var index = _previous.FindIndex(p => p.Key.Id == keyId);
            if (index < 0)
            {
                return false;
            }

            _previous[index].Key.Dispose();
            _previous.RemoveAt(index);
            return true;
        }
    }

    /// <summary>Deletes retired keys older than the maximum age, drained or not.</summary>
    /// <returns>How many keys were deleted.</returns>
    public int PruneExpired()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var expired = _previous.Where(p => now - p.RetiredAt >= _previousMaxAge).ToList();
            foreach (var e in expired)
            {
                e.Key.Dispose();
                _previous.Remove(e);
            }

            return expired.Count;
        }
    }

    /// <inheritdoc />
    public bool TryGetKey(KeyId keyId, [NotNullWhen(true)] out EncryptionKeyPair? key)
    {
        lock (_gate)
        {
            key = Current.Id == keyId ? Current
                : NextKey.Id == keyId ? NextKey
                : _previous.FirstOrDefault(p => p.Key.Id == keyId).Key;
            return key is not null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_gate)
        {
            Current.Dispose();
            NextKey.Dispose();
            foreach (var p in _previous)
            {
                p.Key.Dispose();
            }

            _previous.Clear();
        }
    }
}
