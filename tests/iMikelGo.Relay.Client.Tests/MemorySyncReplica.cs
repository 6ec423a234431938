using IMikelGo.Engine.Sync;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Sealing;

namespace IMikelGo.Relay.Client.Tests;

/// <summary>An <see cref="ISyncReplica"/> over an engine replica whose "durable" state is kept in fields; crashes are injected through hooks.</summary>
internal sealed class MemorySyncReplica(Replica replica, EncryptionKeyPair keys) : ISyncReplica
{
    public Replica Replica { get; } = replica;

    public EncryptionKeyPair Keys { get; } = keys;

    public List<RecipientPublicKey> Recipients { get; } = [];

    public HashSet<string> Acked { get; } = [];

    public List<SignedEvent> Durable { get; } = [];

    public List<long> CursorHistory { get; } = [];

    public long Cursor { get; private set; }

    public OutgoingBundle? Outgoing { get; private set; }

    /// <summary>Runs before the local acknowledgement; throw to simulate a crash after the relay's answer.</summary>
    public Func<Task>? BeforeAcknowledge { get; set; }

    public AccountId Account => Replica.Account;

    public ReplicaId Id => Replica.Id;

    public IRecipientKeys DecryptionKeys => Keys;

    public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyCollection<RecipientPublicKey>>(Recipients);

    public Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<SignedEvent>>([.. Replica.Ledger.Export(Account)
            .Where(e => e.Event.Replica == Id && !Acked.Contains(e.Event.Hash.Hex)).OrderBy(e => e.Event.Seq)]);

    public Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
    {
        var report = Replica.Receive(events);
        Durable.AddRange(report.Applied.Select(e => Replica.Ledger.Find(e.Account, e.Replica, e.Seq)!));
        return Task.FromResult(report);
    }

    public async Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
    {
        if (BeforeAcknowledge is { } hook)
        {
            await hook();
        }

        foreach (var e in events)
        {
            Acked.Add(e.Event.Hash.Hex);
        }
    }

    public Task<long> GetCursorAsync(CancellationToken cancellationToken) => Task.FromResult(Cursor);

    public Task SetCursorAsync(long position, CancellationToken cancellationToken)
    {
        Cursor = position;
        CursorHistory.Add(position);
        return Task.CompletedTask;
    }

    public Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken) => Task.FromResult(Outgoing);

    public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken)
    {
        Outgoing = bundle;
        return Task.CompletedTask;
    }

    public int EventsBy(ReplicaId author) => Replica.Ledger.Export(Account).Count(e => e.Event.Replica == author);
}
