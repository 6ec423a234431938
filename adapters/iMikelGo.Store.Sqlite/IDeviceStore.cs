namespace IMikelGo.Store.Sqlite;

/// <summary>
/// The device's encrypted local store: events with a per-event outbox, mailbox cursors, projection snapshots and
/// wrapped device keys. Obtained from an unlocked <see cref="DeviceVault"/> (real data) or from its demo mode.
/// </summary>
public interface IDeviceStore
{
    /// <summary>True for the built-in demo school: such a store never takes part in sync.</summary>
    bool IsDemo { get; }

    /// <summary>This install's device id (fresh at every enrollment).</summary>
    string DeviceId { get; }

    /// <summary>The enrolled account.</summary>
    string Account { get; }

    /// <summary>Durably appends one event and its pending outbox entry in one transaction.</summary>
    /// <param name="record">The event.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True if stored; false if the identical event (same hash and position) was already stored.</returns>
    /// <exception cref="VaultException">With <see cref="VaultErrorKind.Conflict"/> when the position holds another event.</exception>
    Task<bool> AppendAsync(EventRecord record, CancellationToken cancellationToken);

    /// <summary>Durably appends several events and their outbox entries in one transaction (all or nothing).</summary>
    /// <param name="records">The events.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were new.</returns>
    Task<int> AppendBatchAsync(IReadOnlyList<EventRecord> records, CancellationToken cancellationToken);

    /// <summary>
    /// Durably appends several events and their outbox entries in one transaction (all or nothing); with
    /// <paramref name="acknowledged"/> the entries are stored acknowledged, for events received from peers that this
    /// device never sends (stored and settled together, so no crash leaves them pending).
    /// </summary>
    /// <param name="records">The events.</param>
    /// <param name="acknowledged">Store the outbox entries as acknowledged.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were new (an event already stored keeps its outbox state).</returns>
    Task<int> AppendBatchAsync(IReadOnlyList<EventRecord> records, bool acknowledged, CancellationToken cancellationToken);

    /// <summary>Reads events of one replica in sequence order.</summary>
    /// <param name="account">The account.</param>
    /// <param name="replicaId">The replica.</param>
    /// <param name="fromSeq">The first sequence number to return.</param>
    /// <param name="maxCount">The most events to return.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The events, unsealed.</returns>
    Task<IReadOnlyList<EventRecord>> ReadEventsAsync(string account, string replicaId, long fromSeq, int maxCount, CancellationToken cancellationToken);

    /// <summary>Streams every stored event in insertion order (for rebuilding projections).</summary>
    /// <param name="cancellationToken">Cancels the enumeration.</param>
    /// <returns>The events, unsealed.</returns>
    IAsyncEnumerable<EventRecord> ReadAllEventsAsync(CancellationToken cancellationToken);

    /// <summary>Finds an event by its hash.</summary>
    /// <param name="eventHash">The 32-byte hash.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The event, or null.</returns>
    Task<EventRecord?> FindEventAsync(ReadOnlyMemory<byte> eventHash, CancellationToken cancellationToken);

    /// <summary>
    /// Sync entry point: every event not yet acknowledged (pending or sent), whatever its sequence number, ordered by
    /// account, replica and sequence. Never a high-water mark.
    /// </summary>
    /// <param name="maxCount">The most entries to return.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries.</returns>
    /// <exception cref="VaultException">With <see cref="VaultErrorKind.DemoModeCannotSync"/> on a demo store.</exception>
    Task<IReadOnlyList<OutboxEntry>> GetOutboxForSyncAsync(int maxCount, CancellationToken cancellationToken);

    /// <summary>Marks events as handed to the transport (counts an attempt); acknowledged events stay acknowledged.</summary>
    /// <param name="eventHashes">The events' hashes.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when durable.</returns>
    Task MarkSentAsync(IReadOnlyCollection<ReadOnlyMemory<byte>> eventHashes, CancellationToken cancellationToken);

    /// <summary>Marks events as acknowledged by the relay; they are never offered again.</summary>
    /// <param name="eventHashes">The events' hashes.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when durable.</returns>
    Task MarkAckedAsync(IReadOnlyCollection<ReadOnlyMemory<byte>> eventHashes, CancellationToken cancellationToken);

    /// <summary>Stores the cursor of a relay mailbox (opaque bytes).</summary>
    /// <param name="mailbox">The mailbox name.</param>
    /// <param name="cursor">The cursor.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when durable.</returns>
    Task SetCursorAsync(string mailbox, ReadOnlyMemory<byte> cursor, CancellationToken cancellationToken);

    /// <summary>Reads the cursor of a relay mailbox.</summary>
    /// <param name="mailbox">The mailbox name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The cursor, or null if none is stored.</returns>
    Task<byte[]?> GetCursorAsync(string mailbox, CancellationToken cancellationToken);

    /// <summary>Stores a projection snapshot or other key/value state, sealed like events.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when durable.</returns>
    Task PutSnapshotAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken);

    /// <summary>Reads a projection snapshot.</summary>
    /// <param name="key">The key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The value, or null.</returns>
    Task<byte[]?> GetSnapshotAsync(string key, CancellationToken cancellationToken);

    /// <summary>Stores a device private key, wrapped (sealed) under the vault's key hierarchy.</summary>
    /// <param name="name">The key's name.</param>
    /// <param name="keyMaterial">The key bytes (the caller zeroes its copy).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when durable.</returns>
    Task PutDeviceKeyAsync(string name, ReadOnlyMemory<byte> keyMaterial, CancellationToken cancellationToken);

    /// <summary>Reads a device private key (the caller zeroes it after use).</summary>
    /// <param name="name">The key's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The key bytes, or null.</returns>
    Task<byte[]?> GetDeviceKeyAsync(string name, CancellationToken cancellationToken);
}
