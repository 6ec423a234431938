using System.Security.Cryptography;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Store.Sqlite.Sync;

/// <summary>
/// A device's replica of its account whose every event — its own chain and what it received — lives in the
/// encrypted vault. A recorded fact is durable before <see cref="RecordAsync"/> returns; after a restart the
/// replica is rebuilt (and re-verified) from the vault and continues its chain where it stopped. The device's
/// own events stay in the per-event outbox until the relay acknowledges them.
/// </summary>
public sealed class DeviceReplica : IDisposable
{
    private const string SigningKeyName = "replica-signing-key";
    private const string InboxKey = "inbox";
    private readonly IDeviceStore _store;
    private readonly ReplicaKey _key;

    private DeviceReplica(IDeviceStore store, ReplicaKey key, Replica replica)
    {
        _store = store;
        _key = key;
        Replica = replica;
    }

    /// <summary>The in-memory replica (ledger and calendar).</summary>
    public Replica Replica { get; }

    /// <summary>This device's replica id (the hash of its signing key).</summary>
    public ReplicaId Id => Replica.Id;

    /// <summary>This device's signing public key, for the school's enrollment.</summary>
    public System.Collections.Immutable.ImmutableArray<byte> PublicKey => _key.PublicKey;

    /// <summary>Opens the replica stored in <paramref name="store"/>, creating its signing key on first use.</summary>
    /// <exception cref="InvalidOperationException">The vault holds an event that no longer verifies.</exception>
    public static async Task<DeviceReplica> OpenAsync(IDeviceStore store, LedgerOptions? options = null, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var key = await LoadOrCreateKeyAsync(store, cancellationToken).ConfigureAwait(false);
        var account = new AccountId(store.Account.ToLowerInvariant());
        var events = new List<SignedEvent>();
        await foreach (var record in store.ReadAllEventsAsync(cancellationToken).ConfigureAwait(false))
        {
            events.Add(SignedEvent.ParseLine(record.CanonicalEvent.Span));
        }

        // Events that were held back (a gap, a missing checkpoint) wait in the sealed inbox snapshot.
        var inbox = await store.GetSnapshotAsync(InboxKey, cancellationToken).ConfigureAwait(false);
        if (inbox is not null)
        {
            events.AddRange(System.Text.Encoding.UTF8.GetString(inbox).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(SignedEvent.ParseLine));
        }

        var ledger = new Ledger(options, time);
        var report = ledger.Ingest(events);
        if (!report.IsClean)
        {
            key.Dispose();
            throw new InvalidOperationException($"the vault holds events that do not verify: {report.Refused.FirstOrDefault()}");
        }

        var own = ledger.Applied.Where(e => e.Replica == key.Replica && e.Account == account).MaxBy(e => e.Seq);
        var position = own is null ? null : new ChainPosition(own.Seq, own.Hash, own.Clock, own.Time);
        return new DeviceReplica(store, key, new Replica(account, key, ledger, time, position));
    }

    /// <summary>Records a fact; it is in the vault and the outbox when this returns.</summary>
    public async Task<RecordResult> RecordAsync(LessonEvent payload, CancellationToken cancellationToken)
    {
        var before = Replica.Position.Seq;
        var result = Replica.Record(payload);
        if (result.Succeeded)
        {
            var mine = Replica.Ledger.Export(Replica.Account).Where(e => e.Event.Replica == Id && e.Event.Seq > before).ToList();
            await _store.AppendBatchAsync([.. mine.Select(ToRecord)], cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>Verifies and merges events from peers, storing those that were applied.</summary>
    public async Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
    {
        var report = Replica.Receive(events);
        if (report.Applied.Length > 0)
        {
            var applied = report.Applied.Select(e => Replica.Ledger.Find(e.Account, e.Replica, e.Seq)!).ToList();
            var records = applied.Select(ToRecord).ToList();
            await _store.AppendBatchAsync(records, cancellationToken).ConfigureAwait(false);
            // Peers' events are not ours to send: acknowledged at once, so the outbox holds only our own chain.
            await _store.MarkAckedAsync([.. records.Select(r => r.EventHash)], cancellationToken).ConfigureAwait(false);
        }

        var unapplied = Replica.Ledger.Unapplied();
        await _store.PutSnapshotAsync(InboxKey, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', unapplied.Select(e => e.ToLine()))), cancellationToken).ConfigureAwait(false);
        return report;
    }

    /// <summary>This device's events not yet acknowledged by the relay, in chain order.</summary>
    public async Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken)
    {
        var outbox = await _store.GetOutboxForSyncAsync(int.MaxValue, cancellationToken).ConfigureAwait(false);
        return [.. outbox.Select(o => SignedEvent.ParseLine(o.Event.CanonicalEvent.Span))
            .Where(e => e.Event.Replica == Id).OrderBy(e => e.Event.Seq)];
    }

    /// <summary>Marks events as acknowledged by the relay: they leave the outbox for good.</summary>
    public Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken) =>
        _store.MarkAckedAsync([.. events.Select(e => (ReadOnlyMemory<byte>)e.Event.Hash.ToBytes())], cancellationToken);

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();

    private static EventRecord ToRecord(SignedEvent e) =>
        new(e.Event.Account.Value, e.Event.Replica.Value, e.Event.Seq, e.Event.Hash.ToBytes(), e.ToLineBytes());

    private static async Task<ReplicaKey> LoadOrCreateKeyAsync(IDeviceStore store, CancellationToken cancellationToken)
    {
        var stored = await store.GetDeviceKeyAsync(SigningKeyName, cancellationToken).ConfigureAwait(false);
        if (stored is not null)
        {
            try
            {
                return ReplicaKey.ImportPkcs8(stored);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(stored);
            }
        }

        var key = ReplicaKey.Create();
        var pkcs8 = key.ExportPkcs8();
        try
        {
            await store.PutDeviceKeyAsync(SigningKeyName, pkcs8, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }

        return key;
    }
}
