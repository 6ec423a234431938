using IMikelGo.Engine.Relay;

namespace IMikelGo.Relay;

/// <summary>
/// A non-durable <see cref="IMailboxStore"/> in process memory: a fast path for tests and demos only. It holds
/// nothing across restarts and is not shared between instances; production uses the SQLite or Marten store.
/// </summary>
public sealed class InMemoryMailboxStore : IMailboxStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<StoredBundle>> _mailboxes = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Account, Guid Id), long> _ids = [];
    private readonly Dictionary<string, RelayCaller> _callers = new(StringComparer.Ordinal);
    private readonly HashSet<(string Account, string? Device)> _revoked = [];
    private readonly HashSet<(string Account, string Device)> _wiped = [];
    private readonly Dictionary<(string Account, string Caller), long> _acks = [];
    private readonly Dictionary<(string Caller, string Nonce), DateTimeOffset> _nonces = [];
    private readonly Dictionary<string, List<StoredEnrollment>> _enrollmentQueues = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StoredEnrollmentAnswer> _enrollments = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    /// <summary>Creates an empty store.</summary>
    public InMemoryMailboxStore(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <inheritdoc />
    public Task<PushResult> AppendAsync(string account, Guid bundleId, string sender, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_ids.TryGetValue((account, bundleId), out var existing))
            {
                return Task.FromResult(new PushResult(existing, bundleId, Duplicate: true));
            }

            var box = Mailbox(account);
            var position = box.Count == 0 ? 1 : box[^1].Position + 1;
            box.Add(new StoredBundle(position, bundleId, sender, data.ToArray(), _time.GetUtcNow()));
            _ids[(account, bundleId)] = position;
            return Task.FromResult(new PushResult(position, bundleId, Duplicate: false));
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredBundle>> ReadAsync(string account, long after, int limit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<StoredBundle> page = [.. Mailbox(account).Where(b => b.Position > after).Take(limit)];
            return Task.FromResult(page);
        }
    }

    /// <inheritdoc />
    public Task<long> HeadAsync(string account, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var box = Mailbox(account);
            return Task.FromResult(box.Count == 0 ? 0L : box[^1].Position);
        }
    }

    /// <inheritdoc />
    public Task<long> SizeAsync(string account, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(Mailbox(account).Sum(b => (long)b.Data.Length));
        }
    }

    /// <inheritdoc />
    public Task AckAsync(string account, string caller, long position, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _acks[(account, caller)] = Math.Max(position, _acks.GetValueOrDefault((account, caller)));
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task PutCallerAsync(RelayCaller caller, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        lock (_gate)
        {
            _callers[caller.Id] = caller;
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<RelayCaller?> GetCallerAsync(string id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_callers.GetValueOrDefault(id));
        }
    }

    /// <inheritdoc />
    public Task DeleteCallerAsync(string id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _callers.Remove(id);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task RevokeAsync(string account, string? device, string reason, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _revoked.Add((account, device));
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<bool> IsRevokedAsync(string account, string device, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_revoked.Contains((account, device)) || _revoked.Contains((account, null)));
        }
    }

    /// <inheritdoc />
    public Task AcknowledgeWipeAsync(string account, string device, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _wiped.Add((account, device));
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<bool> HasWipedAsync(string account, string device, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_wiped.Contains((account, device)));
        }
    }

    /// <inheritdoc />
    public Task<bool> TryUseNonceAsync(string caller, string nonce, DateTimeOffset expires, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (_nonces.Count > 10_000)
            {
                foreach (var stale in _nonces.Where(n => n.Value < now).Select(n => n.Key).ToList())
                {
                    _nonces.Remove(stale);
                }
            }

            return Task.FromResult(_nonces.TryAdd((caller, nonce), expires));
        }
    }

    /// <inheritdoc />
    public Task<long> EnqueueEnrollmentAsync(string school, string id, ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(school);
        ArgumentException.ThrowIfNullOrEmpty(id);
        lock (_gate)
        {
            if (_enrollments.ContainsKey(id))
            {
                throw new InvalidOperationException($"Enrollment id '{id}' is already in use.");
            }

            if (!_enrollmentQueues.TryGetValue(school, out var queue))
            {
                _enrollmentQueues[school] = queue = [];
            }

            var position = queue.Count + 1L;
            queue.Add(new StoredEnrollment(position, id, school, request.ToArray(), _time.GetUtcNow()));
            _enrollments[id] = new StoredEnrollmentAnswer(id, school, Answered: false, Approved: false, Answer: null, AnsweredAt: null);
            return Task.FromResult(position);
        }
    }

    /// <inheritdoc />
    public Task<int> PendingEnrollmentCountAsync(string school, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_enrollmentQueues.TryGetValue(school, out var queue) ? queue.Count(e => !_enrollments[e.Id].Answered) : 0);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredEnrollment>> ReadEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        lock (_gate)
        {
            IReadOnlyList<StoredEnrollment> page = _enrollmentQueues.TryGetValue(school, out var queue)
                ? [.. queue.Where(e => e.Position > after && !_enrollments[e.Id].Answered).Take(limit)]
                : [];
            return Task.FromResult(page);
        }
    }

    /// <inheritdoc />
    public Task<EnrollmentAnswerOutcome> AnswerEnrollmentAsync(string school, string id, bool approved, ReadOnlyMemory<byte> answer, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_enrollments.TryGetValue(id, out var state) || !string.Equals(state.School, school, StringComparison.Ordinal))
            {
                return Task.FromResult(EnrollmentAnswerOutcome.Unknown);
            }

            if (state.Answered)
            {
                return Task.FromResult(EnrollmentAnswerOutcome.AlreadyAnswered);
            }

            _enrollments[id] = state with { Answered = true, Approved = approved, Answer = answer.ToArray(), AnsweredAt = _time.GetUtcNow() };
            return Task.FromResult(EnrollmentAnswerOutcome.Stored);
        }
    }

    /// <inheritdoc />
    public Task<StoredEnrollmentAnswer?> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_enrollments.GetValueOrDefault(id));
        }
    }

    private List<StoredBundle> Mailbox(string account)
    {
        if (!_mailboxes.TryGetValue(account, out var box))
        {
            box = [];
            _mailboxes[account] = box;
        }

        return box;
    }
}
