using System.Security.Cryptography;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;

namespace IMikelGo.Store.Sqlite.Sync;

/// <summary>
/// A device's replica of its account whose every event — its own chain and what it received — lives in the
/// encrypted vault. A recorded fact is durable before <see cref="RecordAsync"/> returns; after a restart the
/// replica is rebuilt (and re-verified) from the vault and continues its chain where it stopped. The device's
/// own events stay in the per-event outbox until the relay acknowledges them.
/// <para>
/// As an <see cref="ISyncReplica"/> (the port the relay client's <c>SyncAgent</c> drives): its HPKE keys
/// (<see cref="DeviceEncryptionKeys"/>) are kept sealed in the vault and published in its own chain
/// (<see cref="EncryptionKeyPublished"/>) as soon as the log shows the device enrolled; bundles are sealed for the
/// latest key every other non-revoked replica published — <b>the school connector must publish an encryption key in
/// its chain too, or it receives nothing</b> — plus the peer keys handed over at enrollment
/// (<see cref="AddPeerKeysAsync"/>) for peers whose key event this device cannot read yet. When a replica becomes a
/// recipient for the first time the device re-sends its whole chain once, sealed for every recipient, so a device
/// enrolled later receives the earlier history (duplicates are ignored by the ledger). Cursor and outgoing bundle
/// live in the vault. See docs/vault.md, "DeviceReplica as a sync replica".
/// </para>
/// </summary>
public sealed class DeviceReplica : IDisposable, ISyncReplica
{
    private const string SigningKeyName = "replica-signing-key";
    private const string EncryptionKeysName = "replica-encryption-keys";
    private const string InboxKey = "inbox";
    private const string PeerKeysKey = "relay-peer-keys";
    private const string AnnouncedKey = "relay-announced";
    private const string OutgoingKey = "relay-outgoing";
    private readonly IDeviceStore _store;
    private readonly ReplicaKey _key;
    private readonly SemaphoreSlim _gate = new(1, 1);

    // The newest own event in the vault. Own events above it were recorded in memory but their write failed; the
    // next record stores them first, in the same transaction, so the vault's chain never has a gap.
    private long _storedOwnSeq;
    private Dictionary<ReplicaId, RecipientPublicKey> _peerKeys = [];
    private HashSet<ReplicaId> _announced = [];
    private (HashSet<ReplicaId> Recipients, long Head)? _announcing;

    private DeviceReplica(IDeviceStore store, ReplicaKey key, DeviceEncryptionKeys keys, Replica replica)
    {
        _store = store;
        _key = key;
        Keys = keys;
        Replica = replica;
        _storedOwnSeq = replica.Position.Seq;
    }

    /// <summary>The in-memory replica (ledger and calendar).</summary>
    public Replica Replica { get; }

    /// <summary>This device's replica id (the hash of its signing key).</summary>
    public ReplicaId Id => Replica.Id;

    /// <inheritdoc />
    public ReplicaId? School => Replica.Ledger.SchoolOf(Replica.Account);

    /// <summary>This device's signing public key, for the school's enrollment.</summary>
    public System.Collections.Immutable.ImmutableArray<byte> PublicKey => _key.PublicKey;

    /// <summary>The account.</summary>
    public AccountId Account => Replica.Account;

    /// <summary>This device's HPKE keys (current and previous), kept sealed in the vault.</summary>
    public DeviceEncryptionKeys Keys { get; }

    /// <inheritdoc />
    public IRecipientKeys DecryptionKeys => Keys;

    /// <summary>Whether the log shows this device enrolled by the school (and not revoked).</summary>
    public bool IsEnrolledInLog => IsEnrolled(Replica.Ledger, Replica.Account, Id);

    /// <summary>Whether the log shows this device revoked.</summary>
    public bool IsRevokedInLog => Replica.Ledger.Applied.Any(e => e.Account == Replica.Account && e.Payload is DeviceRevoked r && r.Device == Id);

    /// <summary>
    /// Stores the keys a device generated before its vault existed (enrollment creates them first, to send the
    /// public halves to the school). Call on the new vault's store before the first <see cref="OpenAsync"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The store already holds a signing key.</exception>
    public static async Task ProvisionAsync(IDeviceStore store, ReplicaKey signingKey, EncryptionKeyPair encryptionKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(signingKey);
        ArgumentNullException.ThrowIfNull(encryptionKey);
        var existing = await store.GetDeviceKeyAsync(SigningKeyName, cancellationToken).ConfigureAwait(false);
        if (existing is not null)
        {
            CryptographicOperations.ZeroMemory(existing);
            throw new InvalidOperationException("the store already holds this device's signing key");
        }

        var pkcs8 = signingKey.ExportPkcs8();
        try
        {
            await store.PutDeviceKeyAsync(SigningKeyName, pkcs8, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }

        var encoded = DeviceEncryptionKeys.Encode([(DateTimeOffset.UnixEpoch, encryptionKey)]);
        try
        {
            await store.PutDeviceKeyAsync(EncryptionKeysName, encoded, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(encoded);
        }
    }

    /// <summary>Opens the replica stored in <paramref name="store"/>, creating its signing key on first use.</summary>
    /// <exception cref="InvalidOperationException">The vault holds an event that no longer verifies.</exception>
    public static async Task<DeviceReplica> OpenAsync(IDeviceStore store, LedgerOptions? options = null, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        time ??= TimeProvider.System;
        var key = await LoadOrCreateKeyAsync(store, cancellationToken).ConfigureAwait(false);
        var keys = await LoadOrCreateEncryptionKeysAsync(store, time, cancellationToken).ConfigureAwait(false);
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
            keys.Dispose();
            throw new InvalidOperationException($"the vault holds events that do not verify: {report.Refused.FirstOrDefault()}");
        }

        var own = ledger.Applied.Where(e => e.Replica == key.Replica && e.Account == account).MaxBy(e => e.Seq);
        var position = own is null ? null : new ChainPosition(own.Seq, own.Hash, own.Clock, own.Time);
        var replica = new DeviceReplica(store, key, keys, new Replica(account, key, ledger, time, position));
        await replica.LoadSyncStateAsync(cancellationToken).ConfigureAwait(false);
        await replica.PublishEncryptionKeyIfDueAsync(cancellationToken).ConfigureAwait(false);
        return replica;
    }

    /// <summary>
    /// Records a fact; it is in the vault and the outbox when this returns. When the write fails (cancelled, disk
    /// full) the exception propagates and the fact stays in memory only: it is not sent, and the next successful
    /// record stores it first, so the vault never holds a later own event without an earlier one.
    /// </summary>
    public async Task<RecordResult> RecordAsync(LessonEvent payload, CancellationToken cancellationToken)
    {
        var result = Replica.Record(payload);
        if (result.Succeeded || Replica.Position.Seq > _storedOwnSeq)
        {
            var stored = _storedOwnSeq;
            var mine = Replica.Ledger.Export(Replica.Account).Where(e => e.Event.Replica == Id && e.Event.Seq > stored).ToList();
            await _store.AppendBatchAsync([.. mine.Select(ToRecord)], cancellationToken).ConfigureAwait(false);
            _storedOwnSeq = Math.Max(_storedOwnSeq, mine.Count == 0 ? stored : mine.Max(e => e.Event.Seq));
        }

        return result;
    }

    /// <summary>Verifies and merges events from peers, storing those that were applied.</summary>
    public async Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        IReadOnlyCollection<SignedEvent> received = events as IReadOnlyCollection<SignedEvent> ?? [.. events];
        var report = Replica.Receive(received);

        // Stored: the events applied now, and those of the batch applied earlier (duplicates). A receive whose write
        // failed after the in-memory merge (cancelled, disk full) is retried with the same page, which then holds
        // only duplicates; without them the events would be shown but never stored, and the cursor would move past
        // them. The store skips what it already holds.
        var applied = new List<SignedEvent>();
        var seen = report.Applied.Select(a => a.Hash.Hex).ToHashSet(StringComparer.Ordinal);
        foreach (var e in received)
        {
            // Applied before this call (in chain order, ahead of what this call applied).
            if (Replica.Ledger.Find(e.Event.Account, e.Event.Replica, e.Event.Seq) is { } earlier &&
                earlier.Event.Hash.Hex == e.Event.Hash.Hex && seen.Add(earlier.Event.Hash.Hex))
            {
                applied.Add(earlier);
            }
        }

        applied.AddRange(report.Applied.Select(e => Replica.Ledger.Find(e.Account, e.Replica, e.Seq)!));

        if (applied.Count > 0)
        {
            // Peers' events are not ours to send: stored acknowledged in the append's transaction, so the outbox
            // holds only our own chain.
            await _store.AppendBatchAsync([.. applied.Select(ToRecord)], acknowledged: true, cancellationToken).ConfigureAwait(false);
        }

        var unapplied = Replica.Ledger.Unapplied();
        await _store.PutSnapshotAsync(InboxKey, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', unapplied.Select(e => e.ToLine()))), cancellationToken).ConfigureAwait(false);

        // The school's DeviceEnrolled for this device may just have arrived: publish the encryption key now.
        await PublishEncryptionKeyIfDueAsync(cancellationToken).ConfigureAwait(false);
        return report;
    }

    /// <summary>
    /// This device's events not yet acknowledged by the relay, in chain order — or, when a replica became a recipient
    /// that has not received this device's chain yet, the whole own chain (once).
    /// </summary>
    public async Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken)
    {
        var outbox = await _store.GetOutboxForSyncAsync(int.MaxValue, cancellationToken).ConfigureAwait(false);
        var pending = outbox.Select(o => SignedEvent.ParseLine(o.Event.CanonicalEvent.Span))
            .Where(e => e.Event.Replica == Id).OrderBy(e => e.Event.Seq).ToList();
        var recipients = RecipientReplicas();
        if (recipients.Count == 0)
        {
            // Nobody to seal for yet (the sync agent says so clearly if it tries): the plain outbox.
            _announcing = null;
            return pending;
        }

        var head = Replica.Position.Seq;
        if (head > 0 && !recipients.IsSubsetOf(_announced))
        {
            _announcing = (recipients, head);
            return [.. Replica.Ledger.Export(Replica.Account).Where(e => e.Event.Replica == Id && e.Event.Seq <= head).OrderBy(e => e.Event.Seq)];
        }

        _announcing = null;
        return pending;
    }

    /// <summary>Marks events as acknowledged by the relay: they leave the outbox for good.</summary>
    public async Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        var list = events.ToList();
        await _store.MarkAckedAsync([.. list.Select(e => (ReadOnlyMemory<byte>)e.Event.Hash.ToBytes())], cancellationToken).ConfigureAwait(false);
        if (_announcing is { } announcing && list.Any(e => e.Event.Replica == Id && e.Event.Seq >= announcing.Head))
        {
            _announced = [.. _announced.Union(announcing.Recipients)];
            _announcing = null;
            await _store.PutSnapshotAsync(AnnouncedKey, System.Text.Encoding.UTF8.GetBytes(string.Join('\n', _announced.Select(r => r.Value).Order(StringComparer.Ordinal))), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyCollection<RecipientPublicKey>>([.. RecipientKeys().Values.DistinctBy(k => k.Id)]);

    /// <summary>
    /// The recipients of this device's next bundle, by replica: the latest key each other non-revoked replica published
    /// in the log, and for replicas that have not (as far as this device can read) the peer keys from enrollment.
    /// </summary>
    public IReadOnlyDictionary<ReplicaId, RecipientPublicKey> RecipientKeys()
    {
        var result = new SortedDictionary<ReplicaId, RecipientPublicKey>();
        var revoked = Replica.Ledger.Applied.Where(e => e.Account == Replica.Account).Select(e => e.Payload).OfType<DeviceRevoked>().Select(r => r.Device).ToHashSet();
        foreach (var (replica, key) in _peerKeys)
        {
            if (replica != Id && !revoked.Contains(replica))
            {
                result[replica] = key;
            }
        }

        foreach (var (replica, encoded) in Replica.Ledger.RecipientKeys(Replica.Account))
        {
            if (replica != Id && RecipientPublicKey.TryParse(encoded.AsSpan(), out var key, out _))
            {
                result[replica] = key;
            }
        }

        return result;
    }

    /// <summary>Adds peer encryption keys handed over at enrollment (the school knows them from the peers' enrollment).</summary>
    public async Task AddPeerKeysAsync(IReadOnlyDictionary<ReplicaId, RecipientPublicKey> peers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(peers);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var (replica, key) in peers)
            {
                _peerKeys[replica] = key;
            }

            var text = string.Join('\n', _peerKeys.OrderBy(p => p.Key).Select(p => p.Key.Value + " " + Convert.ToBase64String(p.Value.Encoded.Span)));
            await _store.PutSnapshotAsync(PeerKeysKey, System.Text.Encoding.UTF8.GetBytes(text), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task<long> GetCursorAsync(CancellationToken cancellationToken)
    {
        var bytes = await _store.GetCursorAsync(CursorName, cancellationToken).ConfigureAwait(false);
        return bytes is { Length: 8 } ? System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(bytes) : 0;
    }

    /// <inheritdoc />
    public Task SetCursorAsync(long position, CancellationToken cancellationToken)
    {
        var bytes = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(bytes, position);
        return _store.SetCursorAsync(CursorName, bytes, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken)
    {
        var bytes = await _store.GetSnapshotAsync(OutgoingKey, cancellationToken).ConfigureAwait(false);
        if (bytes is null || bytes.Length == 0)
        {
            return null;
        }

        using var doc = System.Text.Json.JsonDocument.Parse(bytes);
        var root = doc.RootElement;
        return new OutgoingBundle(
            root.GetProperty("id").GetGuid(),
            root.GetProperty("data").GetBytesFromBase64(),
            [.. root.GetProperty("events").EnumerateArray().Select(e => e.GetString()!)]);
    }

    /// <inheritdoc />
    public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken)
    {
        if (bundle is null)
        {
            return _store.PutSnapshotAsync(OutgoingKey, ReadOnlyMemory<byte>.Empty, cancellationToken);
        }

        var stream = new MemoryStream();
        using (var writer = new System.Text.Json.Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteString("id", bundle.BundleId);
            writer.WriteBase64String("data", bundle.Data);
            writer.WriteStartArray("events");
            foreach (var hash in bundle.EventHashes)
            {
                writer.WriteStringValue(hash);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return _store.PutSnapshotAsync(OutgoingKey, stream.ToArray(), cancellationToken);
    }

    /// <summary>
    /// Rotates the encryption key: a new current key is stored in the vault and published in the chain; the previous
    /// keys stay (they open bundles already addressed to them) until <see cref="DeviceEncryptionKeys.PreviousKeyMaxAge"/>.
    /// </summary>
    public async Task<RecordResult> RotateEncryptionKeyAsync(TimeProvider? time, CancellationToken cancellationToken)
    {
        Keys.Rotate((time ?? TimeProvider.System).GetUtcNow());
        await SaveEncryptionKeysAsync(cancellationToken).ConfigureAwait(false);
        return await RecordAsync(new EncryptionKeyPublished([.. Keys.Current.PublicKey.Encoded.Span]), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The signing key as PKCS#8, for the relay request signer (caller id = replica id). The caller zeroes it.</summary>
    public byte[] ExportSigningKeyPkcs8() => _key.ExportPkcs8();

    /// <inheritdoc />
    public void Dispose()
    {
        _key.Dispose();
        Keys.Dispose();
        _gate.Dispose();
    }

    private string CursorName => "relay:" + Replica.Account.Value;

    private HashSet<ReplicaId> RecipientReplicas() => [.. RecipientKeys().Keys];

    private static bool IsEnrolled(Ledger ledger, AccountId account, ReplicaId device)
    {
        var payloads = ledger.Applied.Where(e => e.Account == account).Select(e => e.Payload).ToList();
        return payloads.OfType<DeviceEnrolled>().Any(d => d.Device == device) && !payloads.OfType<DeviceRevoked>().Any(r => r.Device == device);
    }

    private async Task LoadSyncStateAsync(CancellationToken cancellationToken)
    {
        var peers = await _store.GetSnapshotAsync(PeerKeysKey, cancellationToken).ConfigureAwait(false);
        if (peers is not null)
        {
            foreach (var line in System.Text.Encoding.UTF8.GetString(peers).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = line.Split(' ');
                if (parts.Length == 2 && RecipientPublicKey.TryParse(Convert.FromBase64String(parts[1]), out var key, out _))
                {
                    _peerKeys[new ReplicaId(parts[0])] = key;
                }
            }
        }

        var announced = await _store.GetSnapshotAsync(AnnouncedKey, cancellationToken).ConfigureAwait(false);
        if (announced is not null)
        {
            _announced = [.. System.Text.Encoding.UTF8.GetString(announced).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(r => new ReplicaId(r))];
        }
    }

    private async Task PublishEncryptionKeyIfDueAsync(CancellationToken cancellationToken)
    {
        if (_store.IsDemo || !IsEnrolledInLog)
        {
            return;
        }

        var published = Replica.Ledger.Applied
            .Where(e => e.Account == Replica.Account && e.Replica == Id && e.Payload is EncryptionKeyPublished)
            .MaxBy(e => e.Seq)?.Payload as EncryptionKeyPublished;
        if (published is not null && published.PublicKey.AsSpan().SequenceEqual(Keys.Current.PublicKey.Encoded.Span))
        {
            return;
        }

        var result = await RecordAsync(new EncryptionKeyPublished([.. Keys.Current.PublicKey.Encoded.Span]), cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"could not publish this device's encryption key: {result.Error}");
        }
    }

    private async Task SaveEncryptionKeysAsync(CancellationToken cancellationToken)
    {
        var encoded = Keys.Encode();
        try
        {
            await _store.PutDeviceKeyAsync(EncryptionKeysName, encoded, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(encoded);
        }
    }

    private static async Task<DeviceEncryptionKeys> LoadOrCreateEncryptionKeysAsync(IDeviceStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        var stored = await store.GetDeviceKeyAsync(EncryptionKeysName, cancellationToken).ConfigureAwait(false);
        if (stored is not null)
        {
            try
            {
                var loaded = DeviceEncryptionKeys.Decode(stored);
                if (loaded.PruneExpired(time.GetUtcNow()) > 0)
                {
                    var encoded = loaded.Encode();
                    try
                    {
                        await store.PutDeviceKeyAsync(EncryptionKeysName, encoded, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(encoded);
                    }
                }

                return loaded;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(stored);
            }
        }

        var keys = DeviceEncryptionKeys.Create(time.GetUtcNow());
        var bytes = keys.Encode();
        try
        {
            await store.PutDeviceKeyAsync(EncryptionKeysName, bytes, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }

        return keys;
    }

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
