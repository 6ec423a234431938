using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using IMikelGo.App.Components;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite;
using IMikelGo.Store.Sqlite.Sync;

namespace IMikelGo.App;

/// <summary>
/// <see cref="ITeacherDevice"/> over the engine and the encrypted device vault, in the app's process: the vault
/// decides PIN, three-strike wipe and demo mode; the enrolled replica lives in the vault; sync goes through the
/// relay client's <see cref="SyncAgent"/>. Demo mode is an in-memory generated school (never synced).
/// </summary>
public sealed class EngineTeacherDevice : ITeacherDevice, IDisposable
{
    private const string SigningKeyName = "replica-signing-key";
    private const string EncryptionKeyName = "encryption-seed";
    private const string EnrollmentKey = "app-enrollment";
    private const string OutgoingKey = "relay-outgoing";
    private readonly DeviceVault _vault;
    private readonly ILoggerFactory _loggers;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private DeviceReplica? _device;
    private EnrollmentPayload? _enrollment;
    private EncryptionKeyPair? _encryption;
    private Replica? _demo;
    private int _remaining = DeviceVaultOptions.MaxPinAttempts;
    private bool _wipedByPins;

    /// <summary>Creates the device over a vault.</summary>
    public EngineTeacherDevice(DeviceVault vault, ILoggerFactory loggers)
    {
        _vault = vault;
        _loggers = loggers;
    }

    /// <inheritdoc />
    public event Action? Changed;

    /// <inheritdoc />
    public DeviceMode Mode => _vault.State switch
    {
        VaultState.Locked => DeviceMode.Locked,
        VaultState.Unlocked when _device is not null => DeviceMode.Unlocked,
        VaultState.Unlocked => DeviceMode.Locked,
        _ => DeviceMode.Demo,
    };

    private Replica Active => Mode == DeviceMode.Unlocked ? _device!.Replica : (_demo ??= DemoData.Create());

    /// <inheritdoc />
    public string Account => Active.Account.Value;

    /// <inheritdoc />
    public string School => Payloads().OfType<AccountOpened>().Select(a => a.School).FirstOrDefault() ?? _enrollment?.School ?? "";

    /// <inheritdoc />
    public int RemainingAttempts => _remaining;

    /// <inheritdoc />
    public int MaxAttempts => DeviceVaultOptions.MaxPinAttempts;

    /// <inheritdoc />
    public bool WipedByWrongPins => _wipedByPins || _vault.LastWipe?.Reason == WipeReason.WrongPin;

    /// <inheritdoc />
    public bool CanSync => Mode == DeviceMode.Unlocked && _vault.CanSync && _enrollment is not null;

    /// <summary>Reads the vault's state at start (finishes an interrupted wipe).</summary>
    public Task InitializeAsync(CancellationToken cancellationToken) => _vault.InitializeAsync(cancellationToken);

    /// <inheritdoc />
    public async Task<PinOutcome> UnlockAsync(string pin, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = await _vault.UnlockAsync(pin ?? "", cancellationToken).ConfigureAwait(false);
            _remaining = result.RemainingAttempts;
            switch (result.Status)
            {
                case UnlockStatus.Unlocked:
                    _remaining = MaxAttempts;
                    await OpenAsync(cancellationToken).ConfigureAwait(false);
                    return new PinOutcome(true, false, _remaining);
                case UnlockStatus.Wiped:
                    _wipedByPins = true;
                    CloseReplica();
                    _demo = null;
                    _remaining = MaxAttempts;
                    return new PinOutcome(false, true, 0);
                default:
                    return new PinOutcome(false, false, _remaining);
            }
        }
        finally
        {
            _gate.Release();
            Changed?.Invoke();
        }
    }

    /// <inheritdoc />
    public async Task LockAsync(CancellationToken cancellationToken)
    {
        CloseReplica();
        await _vault.LockAsync(cancellationToken).ConfigureAwait(false);
        Changed?.Invoke();
    }

    /// <inheritdoc />
    public async Task<ChangeResult> EnrollAsync(string enrollmentUri, string licenseKey, string schoolPassword, string newPin, CancellationToken cancellationToken)
    {
        if (!EnrollmentCode.TryOpen(enrollmentUri, schoolPassword, out var payload, out var error))
        {
            return new ChangeResult(false, error);
        }

        if (!string.Equals(payload!.Account, licenseKey?.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            return new ChangeResult(false, "the license key does not match the enrollment code");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _vault.EnrollAsync(payload.Account.ToLowerInvariant(), newPin, cancellationToken).ConfigureAwait(false);
            var store = _vault.Store;
            var signing = Convert.FromBase64String(payload.SigningKey);
            var seed = Convert.FromBase64String(payload.EncryptionSeed);
            try
            {
                await store.PutDeviceKeyAsync(SigningKeyName, signing, cancellationToken).ConfigureAwait(false);
                await store.PutDeviceKeyAsync(EncryptionKeyName, seed, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(signing);
                CryptographicOperations.ZeroMemory(seed);
            }

            var stored = payload with { SigningKey = "", EncryptionSeed = "" };
            await store.PutSnapshotAsync(EnrollmentKey, JsonSerializer.SerializeToUtf8Bytes(stored), cancellationToken).ConfigureAwait(false);
            await _vault.AcknowledgeWipeAsync(cancellationToken).ConfigureAwait(false);
            _wipedByPins = false;
            _remaining = MaxAttempts;
            await OpenAsync(cancellationToken).ConfigureAwait(false);
            return ChangeResult.Success;
        }
        catch (VaultException ex)
        {
            return new ChangeResult(false, ex.Message);
        }
        finally
        {
            _gate.Release();
            Changed?.Invoke();
        }
    }

    /// <inheritdoc />
    public DateOnly DefaultMonday(DateOnly today)
    {
        var lessons = Active.Calendar.Lessons();
        var monday = MondayOf(today);
        if (lessons.Count == 0 || lessons.Any(l => MondayOf(l.Date) == monday))
        {
            return monday;
        }

        var next = lessons.Where(l => l.Date >= today).Select(l => l.Date).DefaultIfEmpty(lessons.Min(l => l.Date)).Min();
        return MondayOf(next);
    }

    /// <inheritdoc />
    public IReadOnlyList<LessonItem> Week(DateOnly monday)
    {
        var names = StudentNames();
        return [.. Active.Calendar.Lessons().Where(l => l.Date >= monday && l.Date < monday.AddDays(7))
            .OrderBy(l => l.Date).ThenBy(l => l.StartMinute).Select(l => ToItem(l, names))];
    }

    /// <inheritdoc />
    public Task<ChangeResult> RecordAbsenceAsync(string lessonId, string studentId, bool excused, string? reason, CancellationToken cancellationToken) =>
        RecordAsync(() => new StudentAbsent(OccurrenceId.Parse(lessonId), new StudentId(studentId), excused, reason), cancellationToken);

    /// <inheritdoc />
    public Task<ChangeResult> CancelAsync(string lessonId, Components.CancelReason reason, bool makeUpOwed, string? note, CancellationToken cancellationToken) =>
        RecordAsync(() => new LessonCancelled(OccurrenceId.Parse(lessonId), (CancellationReason)(int)reason, makeUpOwed, note), cancellationToken);

    /// <inheritdoc />
    public Task<ChangeResult> MoveAsync(string lessonId, DateOnly date, TimeOnly start, int durationMinutes, string room, CancellationToken cancellationToken) =>
        RecordAsync(() => new LessonRescheduled(OccurrenceId.Parse(lessonId), date, (start.Hour * 60) + start.Minute, durationMinutes, new RoomId(room)), cancellationToken);

    /// <inheritdoc />
    public Task<ChangeResult> HeldAsync(string lessonId, string? note, CancellationToken cancellationToken) =>
        RecordAsync(() => new LessonHeld(OccurrenceId.Parse(lessonId), note), cancellationToken);

    /// <inheritdoc />
    public Task<ChangeResult> ResolveAsync(string lessonId, string keepEvent, CancellationToken cancellationToken) =>
        RecordAsync(() => new ConflictResolved(OccurrenceId.Parse(lessonId), new EventHash(keepEvent)), cancellationToken);

    /// <inheritdoc />
    public IReadOnlyList<LessonItem> Clashes(string lessonId, DateOnly date, TimeOnly start, int durationMinutes, string room)
    {
        var from = (start.Hour * 60) + start.Minute;
        var names = StudentNames();
        // The teacher teaches one lesson at a time: any overlapping, not cancelled lesson clashes (in any room).
        return [.. Active.Calendar.Lessons()
            .Where(l => l.Occurrence.ToString() != lessonId && l.Date == date && l.Status != IMikelGo.Engine.Merge.LessonStatus.Cancelled)
            .Where(l => l.StartMinute < from + durationMinutes && from < l.StartMinute + l.DurationMinutes)
            .Select(l => ToItem(l, names))];
    }

    /// <inheritdoc />
    public IReadOnlyList<ConflictItem> Conflicts()
    {
        var lessons = Active.Calendar.Lessons().ToDictionary(l => l.Occurrence);
        return [.. Active.Calendar.Conflicts().Select(c => new ConflictItem(
            c.Occurrence.ToString(),
            lessons.TryGetValue(c.Occurrence, out var l) ? $"{l.Subject} {l.Date.ToString("d", CultureInfo.CurrentCulture)}" : c.Occurrence.ToString(),
            c.Rule, c.Description, c.Winner.Hex, c.Loser.Hex))];
    }

    /// <inheritdoc />
    public IReadOnlyList<DeviceItem> Devices()
    {
        var revoked = Payloads().OfType<DeviceRevoked>().Select(r => r.Device).ToHashSet();
        return [.. Payloads().OfType<DeviceEnrolled>().Select(d => new DeviceItem(d.Device.Value, d.Label, d.Device == Active.Id, revoked.Contains(d.Device)))];
    }

    /// <inheritdoc />
    public async Task<SyncReport> SyncAsync(IProgress<SyncStep>? progress, CancellationToken cancellationToken)
    {
        if (!CanSync || _device is null || _enrollment is null || _encryption is null)
        {
            throw new InvalidOperationException("sync needs an enrolled, unlocked device (demo mode never syncs)");
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var store = _vault.Store;
            var before = _device.Replica.Ledger.Export(_device.Replica.Account).Select(e => e.Event.Hash).ToHashSet();
            var pending = await _device.PendingAsync(cancellationToken).ConfigureAwait(false);
            var pkcs8 = await store.GetDeviceKeyAsync(SigningKeyName, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException("the vault holds no signing key");
            EcdsaRequestSigner signer;
            try
            {
                signer = EcdsaRequestSigner.FromPkcs8(pkcs8);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pkcs8);
            }

            using (signer)
            {
                var options = new RelayClientOptions { BaseAddress = new Uri(_enrollment.Relay), PinnedCertificateSha256 = _enrollment.Fingerprint, MaxRetries = 2 };
                using var client = RelayClient.Create(options, signer, loggerFactory: _loggers);
                using var agent = new SyncAgent(client, new VaultSyncReplica(_device, store, _encryption, _enrollment));
                var relayProgress = progress is null ? null : new SyncProgressAdapter(progress);
                SyncSummary summary;
                try
                {
                    summary = await agent.SyncAsync(relayProgress, cancellationToken).ConfigureAwait(false);
                }
                catch (RelayWipeRequiredException)
                {
                    // Remote wipe (Fernlöschung): erase at once, then confirm to the relay.
                    CloseReplica();
                    await _vault.WipeAsync(WipeReason.RemoteDeactivation, cancellationToken).ConfigureAwait(false);
                    await client.WipeAckAsync(new IMikelGo.Engine.Relay.WipeAck(signer.CallerId, _enrollment.Account.ToLowerInvariant()), cancellationToken).ConfigureAwait(false);
                    throw;
                }

                var received = _device.Replica.Ledger.Export(_device.Replica.Account).Where(e => !before.Contains(e.Event.Hash)).Select(e => Describe(e.Event)).ToList();
                var sent = pending.Take(summary.EventsSent).Select(e => Describe(e.Event)).ToList();
                var refused = summary.RefusedBundles.Select(b => b.ToString()).Concat(summary.RefusedEvents).ToList();
                return new SyncReport(summary.EventsReceived, summary.EventsSent, refused, received, sent);
            }
        }
        finally
        {
            _gate.Release();
            Changed?.Invoke();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        CloseReplica();
        _gate.Dispose();
    }

    private async Task OpenAsync(CancellationToken cancellationToken)
    {
        var store = _vault.Store;
        var enrollment = await store.GetSnapshotAsync(EnrollmentKey, cancellationToken).ConfigureAwait(false);
        _enrollment = enrollment is null ? null : JsonSerializer.Deserialize<EnrollmentPayload>(enrollment);
        var seed = await store.GetDeviceKeyAsync(EncryptionKeyName, cancellationToken).ConfigureAwait(false);
        if (seed is not null)
        {
            _encryption = EncryptionKeyPair.Derive(seed);
            CryptographicOperations.ZeroMemory(seed);
        }

        _device = await DeviceReplica.OpenAsync(store, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private void CloseReplica()
    {
        _device?.Dispose();
        _device = null;
        _encryption?.Dispose();
        _encryption = null;
        _enrollment = null;
    }

    private async Task<ChangeResult> RecordAsync(Func<LessonEvent> create, CancellationToken cancellationToken)
    {
        LessonEvent payload;
        try
        {
            payload = create();
        }
        catch (ArgumentException ex)
        {
            return new ChangeResult(false, ex.Message);
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = Mode == DeviceMode.Unlocked
                ? await _device!.RecordAsync(payload, cancellationToken).ConfigureAwait(false)
                : Active.Record(payload);
            return result.Succeeded ? ChangeResult.Success : new ChangeResult(false, result.Error);
        }
        finally
        {
            _gate.Release();
            Changed?.Invoke();
        }
    }

    private IEnumerable<LessonEvent> Payloads() => Active.Ledger.Export(Active.Account).Select(e => e.Event.Payload);

    private Dictionary<string, string> StudentNames()
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in Payloads().OfType<StudentEnrolled>())
        {
            names[s.Student.Value] = s.Name;
        }

        return names;
    }

    private static LessonItem ToItem(IMikelGo.Engine.Merge.LessonView l, Dictionary<string, string> names) => new(
        l.Occurrence.ToString(), l.Subject, l.Date, new TimeOnly(l.StartMinute / 60, l.StartMinute % 60), l.DurationMinutes, l.Room.Value,
        (LessonState)(int)l.Status, l.CancellationReason is { } r ? (Components.CancelReason)(int)r : null, l.MakeUpOwed, l.Note,
        [.. l.Students.Select(s => new StudentItem(s.Value, names.GetValueOrDefault(s.Value, s.Value), l.Absent.TryGetValue(s.Value, out var excused) ? excused : null))]);

    private static DateOnly MondayOf(DateOnly date) => date.AddDays(-(((int)date.DayOfWeek + 6) % 7));

    private static string Describe(Event e) => e.Payload switch
    {
        StudentAbsent a => $"{a.Occurrence}: {a.Student.Value} {(a.Excused ? "absent (excused)" : "absent (unexcused)")}",
        LessonCancelled c => $"{c.Occurrence}: cancelled ({c.Reason})",
        LessonRescheduled m => $"{m.Occurrence}: moved to {m.Date:yyyy-MM-dd} {m.StartMinute / 60:00}:{m.StartMinute % 60:00} {m.Room.Value}",
        LessonHeld h => $"{h.Occurrence}: held",
        _ => e.Describe(),
    };

    private sealed class SyncProgressAdapter(IProgress<SyncStep> inner) : IProgress<SyncProgress>
    {
        public void Report(SyncProgress value) =>
            inner.Report(new SyncStep(value.Phase.ToString().ToLowerInvariant(), value.EventsReceived, value.EventsSent, value.EventsToSend));
    }

    /// <summary>The <see cref="ISyncReplica"/> port over the vault's replica (docs/relay-client.md).</summary>
    private sealed class VaultSyncReplica(DeviceReplica device, IDeviceStore store, EncryptionKeyPair keys, EnrollmentPayload enrollment) : ISyncReplica
    {
        private string Mailbox => "relay:" + device.Replica.Account.Value;

        public AccountId Account => device.Replica.Account;

        public ReplicaId Id => device.Id;

        public IRecipientKeys DecryptionKeys => keys;

        public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken)
        {
            var result = new Dictionary<string, RecipientPublicKey>(StringComparer.Ordinal);
            var encoded = enrollment.Recipients.Select(Convert.FromBase64String)
                .Concat(device.Replica.Ledger.RecipientKeys(Account).Values.Select(v => v.ToArray()));
            foreach (var bytes in encoded)
            {
                if (RecipientPublicKey.TryParse(bytes, out var key, out _) && key.Id != keys.Id)
                {
                    result[key.Id.ToString()] = key;
                }
            }

            return Task.FromResult<IReadOnlyCollection<RecipientPublicKey>>([.. result.Values]);
        }

        public Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken) => device.PendingAsync(cancellationToken);

        public Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken) => device.ReceiveAsync(events, cancellationToken);

        public Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken) => device.AcknowledgeAsync(events, cancellationToken);

        public async Task<long> GetCursorAsync(CancellationToken cancellationToken)
        {
            var bytes = await store.GetCursorAsync(Mailbox, cancellationToken).ConfigureAwait(false);
            return bytes is { Length: 8 } ? BinaryPrimitives.ReadInt64BigEndian(bytes) : 0;
        }

        public Task SetCursorAsync(long position, CancellationToken cancellationToken)
        {
            var bytes = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(bytes, position);
            return store.SetCursorAsync(Mailbox, bytes, cancellationToken);
        }

        public async Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken)
        {
            var bytes = await store.GetSnapshotAsync(OutgoingKey, cancellationToken).ConfigureAwait(false);
            return bytes is null || bytes.Length == 0 ? null : JsonSerializer.Deserialize<OutgoingBundle>(bytes);
        }

        public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken) =>
            store.PutSnapshotAsync(OutgoingKey, bundle is null ? ReadOnlyMemory<byte>.Empty : JsonSerializer.SerializeToUtf8Bytes(bundle), cancellationToken);
    }
}
