using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Signing;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite;
using IMikelGo.Store.Sqlite.Sync;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace IMikelGo.Device;

public sealed partial class TeacherDevice
{
    private const string SettingsKey = "device-settings";
    private readonly TeacherDeviceOptions _options;
    private readonly DeviceVault _vault;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private DeviceReplica? _replica;
    private Settings? _settings;
    private EcdsaRequestSigner? _signer;
    private RelayClient? _relay;
    private SyncAgent? _agent;
    private DemoSchool? _demo;

    private TeacherDevice(TeacherDeviceOptions options, DeviceVault vault)
    {
        _options = options;
        _vault = vault;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        CloseSession();
        _demo = null;
        await _vault.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    private static async Task<TeacherDevice> OpenCoreAsync(TeacherDeviceOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
        {
            throw new ArgumentException("DataDirectory is required", nameof(options));
        }

        Directory.CreateDirectory(options.DataDirectory);
        var vaultOptions = new DeviceVaultOptions
        {
            RootDirectory = options.DataDirectory,
            DeviceSecretDirectory = options.DeviceSecretDirectory ?? Path.Combine(options.DataDirectory, "device"),
        };
        if (options.Pbkdf2Iterations is { } iterations)
        {
            vaultOptions.Pbkdf2Iterations = iterations;
        }

        IDeviceSecretStore secrets = OperatingSystem.IsWindows()
            ? new DpapiDeviceSecretStore(vaultOptions.DeviceSecretDirectory)
            : new FileDeviceSecretStore(vaultOptions.DeviceSecretDirectory);
        var vault = new DeviceVault(Options.Create(vaultOptions), secrets, options.Time, NullLogger<DeviceVault>.Instance);
        try
        {
            await vault.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await vault.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new TeacherDevice(options, vault);
    }

    private DeviceState CurrentState() => _demo is not null && _vault.State is VaultState.NotEnrolled or VaultState.Wiped
        ? DeviceState.Demo
        : _vault.State switch
        {
            VaultState.NotEnrolled => DeviceState.NotEnrolled,
            VaultState.Locked => DeviceState.Locked,
            VaultState.Unlocked => DeviceState.Unlocked,
            _ => DeviceState.Wiped,
        };

    private async Task<UnlockOutcome> UnlockCoreAsync(string pin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pin);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = await _vault.UnlockAsync(pin, cancellationToken).ConfigureAwait(false);
            if (result.Status == UnlockStatus.Unlocked && _replica is null)
            {
                await OpenSessionAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (result.Status == UnlockStatus.Wiped)
            {
                // The third wrong PIN: everything is gone; the app continues in demo mode.
                CloseSession();
                _demo = DemoSchool.Create(_options.Time);
            }

            return new UnlockOutcome(result.Status, result.RemainingAttempts, CurrentState());
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task LockCoreAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            CloseSession();
            if (_vault.State == VaultState.Unlocked)
            {
                await _vault.LockAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<ReplicaId> EnrollCoreAsync(EnrollmentInput input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!EnrollmentUri.TryParse(input.EnrollmentUri?.Trim(), out var uri, out var uriError))
        {
            throw new ArgumentException($"the enrollment URI is not valid: {uriError}");
        }

        if (!LicenseKey.TryParse(input.LicenseKey, out var license, out var licenseError))
        {
            throw new ArgumentException($"the license key is not valid: {licenseError}");
        }

        if (license != uri.License)
        {
            throw new ArgumentException("the license key does not match the one in the enrollment code");
        }

        if (string.IsNullOrEmpty(input.SchoolPassword))
        {
            throw new ArgumentException("the school password is required");
        }

        var channel = _options.Enrollment ?? DefaultEnrollmentChannel();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_vault.State is not (VaultState.NotEnrolled or VaultState.Wiped))
            {
                throw new InvalidOperationException($"this device is already enrolled ({_vault.State}); to enroll it again, the school wipes it remotely or its data folder is deleted (changes not yet synced are lost)");
            }

            using var signing = ReplicaKey.Create();
            using var encryption = EncryptionKeyPair.Generate();
            // The first label given (blank counts as none), else the machine name.
            var label = new[] { input.DeviceLabel, _options.DeviceLabel }.FirstOrDefault(l => !string.IsNullOrWhiteSpace(l))
                ?? Environment.MachineName[..Math.Min(Environment.MachineName.Length, DeviceEnrollment.MaxLabelLength)];
            if (DeviceEnrollment.LabelProblem(label, out var normalizedLabel) is { } labelProblem)
            {
                throw new ArgumentException(labelProblem + " Nothing was sent.");
            }

            // Every channel gets the label as the relay hand-off seals it (trimmed, NFC), the direct one included.
            label = normalizedLabel;

            var grant = await channel.EnrollAsync(
                new EnrollmentRequest(uri, license.Value, input.SchoolPassword, signing.Replica, signing.PublicKey, encryption.PublicKey, label)
                {
                    DeviceSigningKey = signing,
                    DeviceEncryptionKey = encryption,
                },
                cancellationToken).ConfigureAwait(false);
            if (!grant.Relay.Scheme.Equals(Uri.UriSchemeHttps, StringComparison.OrdinalIgnoreCase))
            {
                throw new EnrollmentRefusedException("the school's answer names a relay that is not https");
            }

            _demo = null;
            await _vault.EnrollAsync(grant.Account, input.Pin, cancellationToken).ConfigureAwait(false);
            var store = _vault.Store;
            await DeviceReplica.ProvisionAsync(store, signing, encryption, cancellationToken).ConfigureAwait(false);
            var settings = new Settings(grant.Relay.ToString(), grant.RelayCertificateSha256, label, uri.SchoolId);
            await store.PutSnapshotAsync(SettingsKey, JsonSerializer.SerializeToUtf8Bytes(settings), cancellationToken).ConfigureAwait(false);
            await OpenSessionAsync(cancellationToken).ConfigureAwait(false);
            await _replica!.AddPeerKeysAsync(grant.PeerKeys, cancellationToken).ConfigureAwait(false);
            return _replica.Id;
        }
        finally
        {
            _gate.Release();
        }
    }

    private RelayEnrollmentChannel DefaultEnrollmentChannel()
    {
        var options = new RelayEnrollmentOptions { Time = _options.Time, ConfigureRelay = _options.ConfigureRelay };
        _options.ConfigureRelayEnrollment?.Invoke(options);
        return new RelayEnrollmentChannel(options);
    }

    private async Task OpenDemoCoreAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_vault.State is not (VaultState.NotEnrolled or VaultState.Wiped))
            {
                throw new InvalidOperationException("demo mode is available only before enrollment or after a wipe");
            }

            _demo ??= DemoSchool.Create(_options.Time);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task OpenSessionAsync(CancellationToken cancellationToken)
    {
        var store = _vault.Store;
        var replica = await DeviceReplica.OpenAsync(store, null, _options.Time, cancellationToken).ConfigureAwait(false);
        try
        {
            var bytes = await store.GetSnapshotAsync(SettingsKey, cancellationToken).ConfigureAwait(false)
                ?? throw new VaultException(VaultErrorKind.CorruptFile, "the vault holds no relay settings");
            var settings = JsonSerializer.Deserialize<Settings>(bytes) ?? throw new VaultException(VaultErrorKind.CorruptFile, "the relay settings are malformed");
            var pkcs8 = replica.ExportSigningKeyPkcs8();
            EcdsaRequestSigner signer;
            try
            {
                signer = EcdsaRequestSigner.FromPkcs8(pkcs8);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pkcs8);
            }

            var relayOptions = new RelayClientOptions();
            _options.ConfigureRelay?.Invoke(relayOptions);
            relayOptions.BaseAddress = new Uri(settings.Relay);
            relayOptions.PinnedCertificateSha256 = settings.CertificateSha256;
            relayOptions.AllowUnpinnedCertificate = false;
            _replica = replica;
            _settings = settings;
            _signer = signer;
            _relay = RelayClient.Create(relayOptions, signer, _options.Time);
            _agent = new SyncAgent(_relay, replica);
        }
        catch
        {
            replica.Dispose();
            CloseSession();
            throw;
        }
    }

    private void CloseSession()
    {
        _agent?.Dispose();
        _relay?.Dispose();
        _signer?.Dispose();
        _replica?.Dispose();
        _agent = null;
        _relay = null;
        _signer = null;
        _replica = null;
        _settings = null;
    }

    private Replica? View => _replica?.Replica ?? _demo?.Device;

    private IReadOnlyList<WeekLesson> WeekCore(DateOnly anyDay)
    {
        var replica = View;
        if (replica is null)
        {
            return [];
        }

        var monday = anyDay.AddDays(-(((int)anyDay.DayOfWeek + 6) % 7));
        var sunday = monday.AddDays(6);
        var names = StudentNames(replica);
        var conflicts = replica.Calendar.Conflicts().Select(c => c.Occurrence).ToHashSet();
        return [.. replica.Calendar.Lessons()
            .Where(l => l.Date >= monday && l.Date <= sunday)
            .OrderBy(l => l.Date).ThenBy(l => l.StartMinute).ThenBy(l => l.Occurrence)
            .Select(l => new WeekLesson(l.Occurrence, l.Subject, l.Date, Time(l.StartMinute), l.DurationMinutes, l.Room, l.Status,
                l.CancellationReason, l.MakeUpOwed, l.Note,
                [.. l.Students.Select(s => new LessonStudent(s, names.GetValueOrDefault(s, s.Value), l.Absent.TryGetValue(s.Value, out var excused) ? excused : null))],
                conflicts.Contains(l.Occurrence)))];
    }

    private IReadOnlyList<MoveClash> CheckMoveCore(OccurrenceId occurrence, DateOnly date, TimeOnly start, int durationMinutes, RoomId room)
    {
        var replica = View;
        if (replica is null)
        {
            return [];
        }

        var from = (start.Hour * 60) + start.Minute;
        var to = from + durationMinutes;
        return [.. replica.Calendar.Lessons()
            .Where(l => l.Occurrence != occurrence && l.Status != LessonStatus.Cancelled && l.Date == date
                && l.StartMinute < to && from < l.StartMinute + l.DurationMinutes)
            .OrderBy(l => l.StartMinute)
            .Select(l => new MoveClash(l.Room == room ? ClashKind.Room : ClashKind.Teacher, l.Occurrence, l.Subject, l.Date, Time(l.StartMinute), l.DurationMinutes, l.Room))];
    }

    private async Task<ChangeResult> RecordAsync(LessonEvent payload, IReadOnlyList<MoveClash> clashes, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RecordResult result;
            if (_replica is not null)
            {
                result = await _replica.RecordAsync(payload, cancellationToken).ConfigureAwait(false);
            }
            else if (_demo is not null)
            {
                result = _demo.Device.Record(payload);
            }
            else
            {
                return ChangeResult.Failed(_vault.State == VaultState.Locked ? "the device is locked: enter the PIN" : "not enrolled: open the demo or enroll");
            }

            return result.Succeeded ? new ChangeResult(true, null, clashes) : new ChangeResult(false, result.Error, clashes);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<DeviceSyncResult> SyncCoreAsync(IProgress<SyncProgress>? progress, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_agent is null || _replica is null)
            {
                throw new InvalidOperationException(_demo is not null || _vault.IsDemoMode
                    ? "demo mode never syncs: enroll this device with the school first"
                    : "the device is locked: enter the PIN");
            }

            var before = _replica.Replica.Calendar.Conflicts().Select(c => (c.Winner, c.Loser)).ToHashSet();
            SyncSummary summary;
            try
            {
                summary = await _agent.SyncAsync(progress, cancellationToken).ConfigureAwait(false);
            }
            catch (RelayWipeRequiredException)
            {
                await RemoteWipeAsync(acknowledge: true, cancellationToken).ConfigureAwait(false);
                return new DeviceSyncResult(0, 0, [], Wiped: true, 0, null);
            }

            if (_replica.IsRevokedInLog)
            {
                // The school's signed revocation arrived through the log before the relay's order: wipe all the same.
                await RemoteWipeAsync(acknowledge: true, cancellationToken).ConfigureAwait(false);
                return new DeviceSyncResult(summary.EventsReceived, summary.EventsSent, [], Wiped: true, 0, summary);
            }

            var after = _replica.Replica.Calendar.Conflicts().Count(c => !before.Contains((c.Winner, c.Loser)));
            IReadOnlyList<string> refused = [.. summary.RefusedBundles.Select(r => $"bundle {r.BundleId} from {r.Sender} at {r.Position}: {r.Reason}"), .. summary.RefusedEvents];
            return new DeviceSyncResult(summary.EventsReceived, summary.EventsSent, refused, Wiped: false, after, summary);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RemoteWipeAsync(bool acknowledge, CancellationToken cancellationToken)
    {
        // The relay client and its signer outlive the session: the acknowledgement is signed with the device key.
        var relay = _relay;
        var signer = _signer;
        var device = _replica!.Id.Value;
        var account = _replica.Replica.Account.Value;
        _relay = null;
        _signer = null;
        CloseSession();
        try
        {
            await _vault.WipeAsync(WipeReason.RemoteDeactivation, cancellationToken).ConfigureAwait(false);
            if (acknowledge && relay is not null)
            {
                try
                {
                    await relay.WipeAckAsync(new WipeAck(device, account), cancellationToken).ConfigureAwait(false);
                }
                catch (RelayException)
                {
                    // Bookkeeping for the school only: the device wiped regardless (docs/relay.md, "Wipe").
                }
            }
        }
        finally
        {
            relay?.Dispose();
            signer?.Dispose();
        }

        _demo = DemoSchool.Create(_options.Time);
    }

    private async Task WipeCoreAsync(WipeReason reason, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            CloseSession();
            await _vault.WipeAsync(reason, cancellationToken).ConfigureAwait(false);
            _demo = DemoSchool.Create(_options.Time);
        }
        finally
        {
            _gate.Release();
        }
    }

    private IReadOnlyList<DeviceConflict> ConflictsCore()
    {
        var replica = View;
        if (replica is null)
        {
            return [];
        }

        var byHash = replica.Ledger.Applied.Where(e => e.Account == replica.Account).ToDictionary(e => e.Hash);
        return [.. replica.Calendar.Conflicts().Select(c => new DeviceConflict(c.Occurrence, c.Winner, c.Loser,
            Describe(byHash.GetValueOrDefault(c.Winner)), Describe(byHash.GetValueOrDefault(c.Loser)), c.Rule, c.Description))];
    }

    private IReadOnlyList<DeviceInfo> DevicesCore()
    {
        var replica = View;
        if (replica is null)
        {
            return [];
        }

        var events = replica.Ledger.Applied.Where(e => e.Account == replica.Account).ToList();
        var revoked = events.Select(e => e.Payload).OfType<DeviceRevoked>().GroupBy(r => r.Device).ToDictionary(g => g.Key, g => g.Last().Reason);
        var keys = events.Where(e => e.Payload is EncryptionKeyPublished).Select(e => e.Replica).ToHashSet();
        return [.. events.Select(e => e.Payload).OfType<DeviceEnrolled>().GroupBy(d => d.Device).Select(g => g.Last())
            .Select(d => new DeviceInfo(d.Device, d.Label, revoked.ContainsKey(d.Device), revoked.GetValueOrDefault(d.Device), d.Device == replica.Id, keys.Contains(d.Device)))];
    }

    private async Task<int> PendingCountCoreAsync(CancellationToken cancellationToken)
    {
        if (_replica is null || _vault.State != VaultState.Unlocked)
        {
            return 0;
        }

        var outbox = await _vault.Store.GetOutboxForSyncAsync(int.MaxValue, cancellationToken).ConfigureAwait(false);
        return outbox.Count(o => string.Equals(o.Event.ReplicaId, _replica.Id.Value, StringComparison.Ordinal));
    }

    private static Dictionary<StudentId, string> StudentNames(Replica replica)
    {
        var names = new Dictionary<StudentId, string>();
        foreach (var e in replica.Ledger.Applied.Where(e => e.Account == replica.Account))
        {
            if (e.Payload is StudentEnrolled s)
            {
                names[s.Student] = s.Name;
            }
        }

        return names;
    }

    private static TimeOnly Time(int minute) => new(minute / 60 % 24, minute % 60);

    private static string Describe(Event? e) => e?.Payload switch
    {
        null => "unknown event",
        StudentAbsent a => $"{a.Student.Value} absent ({(a.Excused ? "excused" : "unexcused")}) by {e.Replica.Value[..8]}",
        LessonCancelled c => $"cancelled ({c.Reason}) by {e.Replica.Value[..8]}",
        LessonRescheduled m => string.Create(CultureInfo.InvariantCulture, $"moved to {m.Date:yyyy-MM-dd} {Time(m.StartMinute):HH\\:mm} in {m.Room.Value} by {e.Replica.Value[..8]}"),
        LessonHeld h => $"held{(h.Note is null ? "" : ": " + h.Note)} by {e.Replica.Value[..8]}",
        _ => $"{e.TypeName} by {e.Replica.Value[..8]}",
    };

    private sealed record Settings(string Relay, string CertificateSha256, string Label, string School)
    {
        public RelaySettings RelaySettings => new(new Uri(Relay), CertificateSha256);
    }
}
