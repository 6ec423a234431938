using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;

namespace IMikelGo.Samples.QuickStart;

/// <summary>
/// One teacher account's school replica as a sync replica (in memory): it seals its chain for every enrolled,
/// non-revoked device's key and ingests what the devices send. Stand-in until the school connector's own sync
/// (adapters/iMikelGo.School, <c>SchoolConnector</c>) is in; same shape as the device tests' in-process school.
/// </summary>
internal sealed class SchoolSyncReplica(Replica replica, EncryptionKeyPair keys, Dictionary<ReplicaId, RecipientPublicKey> enrolledKeys) : ISyncReplica
{
    private readonly HashSet<string> _acked = [];
    private HashSet<ReplicaId> _announced = [];
    private (HashSet<ReplicaId> Recipients, long Head)? _announcing;
    private long _cursor;
    private OutgoingBundle? _outgoing;

    public AccountId Account => replica.Account;

    public ReplicaId Id => replica.Id;

    public IRecipientKeys DecryptionKeys => keys;

    public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyCollection<RecipientPublicKey>>([.. Recipients().Values]);

    public Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken)
    {
        var own = replica.Ledger.Export(Account).Where(e => e.Event.Replica == Id).ToList();
        var recipients = Recipients().Keys.ToHashSet();
        if (recipients.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<SignedEvent>>([]);
        }

        if (!recipients.IsSubsetOf(_announced))
        {
            // A new device: it needs the whole school chain (timetable, enrollments), sealed to its key too.
            _announcing = (recipients, replica.Position.Seq);
            return Task.FromResult<IReadOnlyList<SignedEvent>>(own);
        }

        return Task.FromResult<IReadOnlyList<SignedEvent>>([.. own.Where(e => !_acked.Contains(e.Event.Hash.Hex))]);
    }

    public Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken) => Task.FromResult(replica.Receive(events));

    public Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
    {
        var list = events.ToList();
        _acked.UnionWith(list.Select(e => e.Event.Hash.Hex));
        if (_announcing is { } a && list.Any(e => e.Event.Seq >= a.Head))
        {
            _announced = [.. _announced.Union(a.Recipients)];
            _announcing = null;
        }

        return Task.CompletedTask;
    }

    public Task<long> GetCursorAsync(CancellationToken cancellationToken) => Task.FromResult(_cursor);

    public Task SetCursorAsync(long position, CancellationToken cancellationToken)
    {
        _cursor = position;
        return Task.CompletedTask;
    }

    public Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken) => Task.FromResult(_outgoing);

    public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken)
    {
        _outgoing = bundle;
        return Task.CompletedTask;
    }

    /// <summary>The current HPKE keys of the account's enrolled, non-revoked devices.</summary>
    public Dictionary<ReplicaId, RecipientPublicKey> Recipients()
    {
        var revoked = replica.Ledger.Applied.Select(e => e.Payload).OfType<DeviceRevoked>().Select(r => r.Device).ToHashSet();
        var result = enrolledKeys.Where(k => !revoked.Contains(k.Key)).ToDictionary();
        foreach (var (id, encoded) in replica.Ledger.RecipientKeys(Account))
        {
            if (id != Id && !revoked.Contains(id) && RecipientPublicKey.TryParse(encoded.AsSpan(), out var key, out _))
            {
                result[id] = key;
            }
        }

        return result;
    }
}
