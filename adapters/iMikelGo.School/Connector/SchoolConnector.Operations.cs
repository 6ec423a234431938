using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;

namespace IMikelGo.School.Connector;

public sealed partial class SchoolConnector
{
    private const string ApprovalPrefix = "approval/";
    private const string RevocationPrefix = "pending-revocation/";
    private readonly Dictionary<string, IRelayClient> _clients = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IDisposable> _signers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RelayClient> _unwrapped = new(StringComparer.Ordinal);
    private byte[]? _publishedCertificates;

    /// <summary>
    /// Publishes the school's root and enrollment certificates (<see cref="Certificates"/>) at the relay, signed by the
    /// enrollment caller, so devices can seal their enrollment requests; <see cref="ProcessEnrollmentsAsync"/> does it
    /// once per connector instance. Republishing the same certificates changes nothing at the relay.
    /// </summary>
    /// <exception cref="RelayException">The relay could not be reached or refused.</exception>
    public async Task PublishCertificatesAsync(CancellationToken cancellationToken)
    {
        RelayClient relay;
        lock (_clients)
        {
            Client(SchoolId, EnrollmentCallerKey());
            relay = _unwrapped[SchoolId];
        }

        var certificates = Certificates();
        await relay.PublishSchoolCertificatesAsync(SchoolId, certificates, cancellationToken).ConfigureAwait(false);
        _publishedCertificates = certificates.Enrollment;
    }

    /// <summary>
    /// Pulls sealed enrollment requests from the relay, decides each with <see cref="EnrollmentAuthority.TryApprove"/>,
    /// records <see cref="DeviceEnrolled"/> in the account's log (durably), registers the device in its account at the
    /// relay (signed by the account's school caller) and answers through the relay with the account's other devices'
    /// encryption keys, so the new device can seal for them at once. Safe to repeat after a crash: a stored approval is
    /// answered again, never re-decided. Publishes the school's certificates first (<see cref="PublishCertificatesAsync"/>)
    /// when this instance has not yet.
    /// </summary>
    public async Task<IReadOnlyList<EnrollmentOutcome>> ProcessEnrollmentsAsync(CancellationToken cancellationToken)
    {
        var relay = Client(SchoolId, EnrollmentCallerKey());
        if (_publishedCertificates is null || !_publishedCertificates.AsSpan().SequenceEqual(_enrollmentCertificate))
        {
            await PublishCertificatesAsync(cancellationToken).ConfigureAwait(false);
        }

        var outcomes = new List<EnrollmentOutcome>();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var after = await GetLongAsync(EnrollmentCursorKey, cancellationToken).ConfigureAwait(false);
            while (true)
            {
                var page = await relay.PullEnrollmentsAsync(SchoolId, after, 100, cancellationToken).ConfigureAwait(false);
                if (page.Items.Count == 0)
                {
                    break;
                }

                foreach (var item in page.Items)
                {
                    outcomes.Add(await DecideAsync(relay, item, cancellationToken).ConfigureAwait(false));
                    after = item.Position;
                    await SetLongAsync(EnrollmentCursorKey, after, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }

        return outcomes;
    }

    /// <summary>
    /// Enrolls a device that reached the school directly (in-process channel, e.g. the one-machine demo): checks the
    /// license and school password against the personnel store, registers the device at the relay (school-signed),
    /// records <see cref="DeviceEnrolled"/>. Returns the account and the encryption keys of the account's other devices.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException">Unknown or inactive license, or wrong password.</exception>
    public async Task<(AccountId Account, ReplicaId Device, IReadOnlyDictionary<ReplicaId, RecipientPublicKey> Peers)> EnrollDirectAsync(DirectEnrollment request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!LicenseKey.TryParse(request.License, out var license, out var error))
        {
            throw new UnauthorizedAccessException("the license key is not valid: " + error);
        }

        var record = _personnel.Find(license);
        if (record is null || !record.Active || !record.Password.Verify(Encoding.UTF8.GetBytes(request.Password)))
        {
            throw new UnauthorizedAccessException("unknown or inactive license key, or wrong school password");
        }

        var account = new AccountId(record.AccountId);
        var device = ReplicaId.FromPublicKey(request.SigningKey.AsSpan());
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var peers = PeersOf(account, device);
            await EnrollInLogAsync(account, device, request.Label, request.SigningKey, request.EncryptionKey, cancellationToken).ConfigureAwait(false);
            await AccountClient(account).RegisterDeviceAsync(account.Value, new DeviceRegistration(device.Value, Convert.ToBase64String(request.SigningKey.AsSpan())), cancellationToken).ConfigureAwait(false);
            return (account, device, peers);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Syncs every account (or one): pushes the school replica's pending events sealed for every enrolled device's
    /// published key (outgoing bundles sealed once, re-pushed under the same id until acknowledged), pulls the mailbox
    /// and stores verified teacher events exactly once, cursor stored only after the events are durable. Pending
    /// revocations are sent first. A relay failure is reported in <see cref="SchoolSyncResult.Failures"/> and retried on
    /// the next call; once the relay is unreachable (after the client's own retries) or presents the wrong certificate,
    /// the remaining accounts are not tried (<see cref="SchoolSyncResult.NotAttempted"/>).
    /// </summary>
    public async Task<SchoolSyncResult> SyncAsync(AccountId? only, IProgress<SchoolProgress>? progress, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var failures = new List<string>();
            var down = await SendRevocationsAsync(failures, cancellationToken).ConfigureAwait(false);
            var accounts = only is { } one ? [one] : Accounts;
            var notAttempted = new List<AccountId>();
            int sent = 0, received = 0, duplicates = 0, done = 0;
            foreach (var account in accounts)
            {
                if (down)
                {
                    notAttempted.Add(account);
                    continue;
                }

                var replica = new SchoolSyncReplica(this, ReplicaFor(account));
                using var agent = new SyncAgent(AccountClient(account), replica);
                try
                {
                    var summary = await agent.SyncAsync(null, cancellationToken).ConfigureAwait(false);
                    sent += summary.EventsSent;
                    received += replica.NewEvents;
                    duplicates += summary.DuplicatePushes;
                }
                catch (RelayException e)
                {
                    failures.Add($"{account}: {e.Message}");
                    down = Unreachable(e);
                }

                progress?.Report(new SchoolProgress("syncing", ++done, accounts.Count));
            }

            return new SchoolSyncResult(accounts.Count, sent, received, duplicates, failures, notAttempted);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The devices of every account, from the logs, with the last contact (newest event they authored that reached the school).</summary>
    public IReadOnlyList<SchoolDevice> Devices()
    {
        var result = new List<SchoolDevice>();
        foreach (var account in Accounts)
        {
            var replica = _replicas[account];
            var applied = replica.Ledger.Applied.Where(e => e.Account == account).ToList();
            var keys = replica.Ledger.RecipientKeys(account);
            foreach (var enrolled in applied.Select(e => e.Payload).OfType<DeviceEnrolled>())
            {
                var revoked = applied.Select(e => e.Payload).OfType<DeviceRevoked>().FirstOrDefault(r => r.Device == enrolled.Device);
                var last = applied.Where(e => e.Replica == enrolled.Device).Select(e => (DateTimeOffset?)e.Time.Wall).Max();
                result.Add(new SchoolDevice(account, enrolled.Device, enrolled.Label, revoked is not null, revoked?.Reason,
                    keys.ContainsKey(enrolled.Device) || KeysOf(account).ContainsKey(enrolled.Device), last));
            }
        }

        return result;
    }

    /// <summary>
    /// Remote wipe of one device (or, with <paramref name="device"/> null, every device of the account and its
    /// licenses): a school-signed <see cref="DeviceRevoked"/> in the account's log (durable first), then the
    /// revocation to the relay — kept pending and retried by <see cref="SyncAsync"/> while the relay is down.
    /// </summary>
    /// <returns>The devices revoked and whether the relay took the revocations now.</returns>
    public async Task<SchoolWipeResult> WipeAsync(AccountId account, ReplicaId? device, string reason, CancellationToken cancellationToken)
    {
        var revoked = new List<ReplicaId>();
        var failures = new List<string>();
        bool reached;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var targets = Devices().Where(d => d.Account == account && !d.Revoked && (device is null || d.Device == device)).Select(d => d.Device).ToList();
            if (device is { } d0 && targets.Count == 0)
            {
                throw new InvalidOperationException($"device {d0} is not an enrolled device of {account}");
            }

            var replica = ReplicaFor(account);
            foreach (var target in targets)
            {
                var before = replica.Position.Seq;
                var result = replica.Record(new DeviceRevoked(target, reason));
                if (!result.Succeeded)
                {
                    throw new InvalidOperationException($"could not revoke {target}: {result.Error}");
                }

                await _store.AppendEventsAsync([.. OwnSince(replica, before)], false, null, cancellationToken).ConfigureAwait(false);
                await _store.SetValueAsync($"{RevocationPrefix}{account.Value}/{target.Value}", Encoding.UTF8.GetBytes(reason), cancellationToken).ConfigureAwait(false);
                revoked.Add(target);
            }

            if (device is null)
            {
                await _store.SetValueAsync($"{RevocationPrefix}{account.Value}/*", Encoding.UTF8.GetBytes(reason), cancellationToken).ConfigureAwait(false);

                // Before the relay is asked: a relay request that throws (e.g. no certificate pin configured) left the
                // devices revoked but the licenses active, and a repeated wipe found nothing to revoke and threw again.
                await DeactivateLicensesAsync(account, cancellationToken).ConfigureAwait(false);
            }

            // The wipe is recorded either way; without relay settings it waits, like after an outage, for a sync that can send it.
            if (RelayNotConfigured() is { } notConfigured)
            {
                failures.Add(notConfigured);
            }
            else
            {
                await SendRevocationsAsync(failures, cancellationToken).ConfigureAwait(false);
            }

            reached = (await _store.ListValuesAsync($"{RevocationPrefix}{account.Value}/", cancellationToken).ConfigureAwait(false)).Count == 0;
        }
        finally
        {
            _gate.Release();
        }

        return new SchoolWipeResult(revoked, reached, reached ? null : failures.FirstOrDefault() ?? "the relay was not reached");
    }

    /// <summary>Finds the account of a device.</summary>
    public AccountId? AccountOfDevice(ReplicaId device) => Devices().FirstOrDefault(d => d.Device == device)?.Account;

    /// <summary>
    /// The administration's report: absences per student and cancellations per teacher per month from each account's
    /// merged calendar (the state every replica converges on: a fact recorded on two devices counts once, a withdrawn
    /// absence not at all, a cancellation that lost to a concurrent change is not billed), and the reschedule log (every
    /// reschedule event, with its author).
    /// </summary>
    public SchoolReport Report()
    {
        var absences = new List<StudentAbsenceLine>();
        var months = new List<TeacherMonthLine>();
        var reschedules = new List<RescheduleLine>();
        foreach (var account in Accounts)
        {
            var replica = _replicas[account];
            var lessons = replica.Calendar.Lessons();
            absences.AddRange(lessons.SelectMany(l => l.Absent).GroupBy(a => a.Key, StringComparer.Ordinal)
                .Select(g => new StudentAbsenceLine(account.Value, g.Key, g.Count(), g.Count(a => a.Value))));
            months.AddRange(lessons.Where(l => l.Status == LessonStatus.Cancelled)
                .GroupBy(l => l.Occurrence.Date.ToString("yyyy-MM", CultureInfo.InvariantCulture), StringComparer.Ordinal)
                .Select(g => new TeacherMonthLine(account.Value, g.Key, g.Count(), g.Count(l => l.MakeUpOwed))));
            reschedules.AddRange(replica.Ledger.Applied.Where(e => e.Account == account && e.Payload is LessonRescheduled).Select(e =>
            {
                var r = (LessonRescheduled)e.Payload;
                return new RescheduleLine(account.Value, r.Occurrence.ToString(), r.Date, r.StartMinute, r.DurationMinutes, r.Room.Value, e.Replica.Value, e.Replica == replica.Id);
            }));
        }

        return new SchoolReport(
            [.. absences.OrderBy(a => a.Account, StringComparer.Ordinal).ThenBy(a => a.Student, StringComparer.Ordinal)],
            [.. months.OrderBy(a => a.Account, StringComparer.Ordinal).ThenBy(a => a.Month, StringComparer.Ordinal)],
            reschedules);
    }

    private async Task<EnrollmentOutcome> DecideAsync(IRelayClient relay, PendingEnrollment item, CancellationToken cancellationToken)
    {
        var stored = await _store.GetValueAsync(ApprovalPrefix + item.Id, cancellationToken).ConfigureAwait(false);
        EnrollmentApproval approval;
        if (stored is not null)
        {
            using var doc = JsonDocument.Parse(stored);
            var o = doc.RootElement;
            approval = new EnrollmentApproval(o.GetProperty("account").GetString()!, o.GetProperty("device").GetString()!,
                o.GetProperty("certificate").GetBytesFromBase64(), o.GetProperty("roster").GetBytesFromBase64(),
                o.TryGetProperty("label", out var label) ? label.GetString() : null);
        }
        else if (!Authority().TryApprove(item.Request, out var approved, out var error))
        {
            await relay.AnswerEnrollmentAsync(SchoolId, item.Id, new EnrollmentAnswerRequest(false, EnrollmentAnswers.Refusal(error), null, null), cancellationToken).ConfigureAwait(false);
            return new EnrollmentOutcome(item.Id, false, null, null, error.ToString());
        }
        else
        {
            approval = approved;
            var roster = _rosters.Get(approval.AccountId)!;
            await _store.SetValueAsync(RosterPrefix + approval.AccountId, JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string>
            {
                ["roster"] = Convert.ToBase64String(roster.ToBytes()),
                ["signed"] = Convert.ToBase64String(_rosters.GetSigned(approval.AccountId)!),
            }), cancellationToken).ConfigureAwait(false);
            var record = new Dictionary<string, string>
            {
                ["account"] = approval.AccountId,
                ["device"] = approval.DeviceId,
                ["certificate"] = Convert.ToBase64String(approval.DeviceCertificate),
                ["roster"] = Convert.ToBase64String(approval.SignedRoster),
            };
            if (approval.DeviceLabel is { } deviceLabel)
            {
                record["label"] = deviceLabel;
            }

            await _store.SetValueAsync(ApprovalPrefix + item.Id, JsonSerializer.SerializeToUtf8Bytes(record), cancellationToken).ConfigureAwait(false);
        }

        using var cert = X509CertificateLoader.LoadCertificate(approval.DeviceCertificate);
        using var key = cert.GetECDsaPublicKey()!;
        var spki = key.ExportSubjectPublicKeyInfo();
        var device = ReplicaId.FromPublicKey(spki);
        if (!DeviceCertificates.TryVerify(cert, _root.Certificate, _options.Time.GetUtcNow(), out var identity, out var keyError))
        {
            throw new InvalidOperationException("the issued certificate does not verify: " + keyError.Message);
        }

        var encryptionKey = identity.EncryptionKey;

        var account = new AccountId(approval.AccountId);
        var peers = PeersOf(account, device).ToDictionary(p => p.Key.Value, p => p.Value, StringComparer.Ordinal);
        await EnrollInLogAsync(account, device, approval.DeviceLabel ?? "device " + approval.DeviceId, [.. spki], encryptionKey, cancellationToken).ConfigureAwait(false);

        // Registered in its own account by that account's school caller; the enrollment caller (in another relay account)
        // then only confirms the registration with its answer.
        var registration = new DeviceRegistration(device.Value, Convert.ToBase64String(spki));
        await AccountClient(account).RegisterDeviceAsync(account.Value, registration, cancellationToken).ConfigureAwait(false);
        var answer = new EnrollmentAnswerRequest(true, EnrollmentAnswers.Approval(approval, peers), approval.AccountId, registration);
        await relay.AnswerEnrollmentAsync(SchoolId, item.Id, answer, cancellationToken).ConfigureAwait(false);
        return new EnrollmentOutcome(item.Id, true, approval.AccountId, device, null);
    }

    /// <summary>The encryption keys of the account's enrolled, non-revoked devices other than <paramref name="self"/>.</summary>
    private Dictionary<ReplicaId, RecipientPublicKey> PeersOf(AccountId account, ReplicaId self)
    {
        var revoked = _replicas.TryGetValue(account, out var replica)
            ? replica.Ledger.Applied.Where(e => e.Account == account).Select(e => e.Payload).OfType<DeviceRevoked>().Select(r => r.Device).ToHashSet()
            : [];
        return KeysOf(account).Where(k => k.Key != self && !revoked.Contains(k.Key)).ToDictionary();
    }

    private async Task EnrollInLogAsync(AccountId account, ReplicaId device, string label, ImmutableArray<byte> signingKey, RecipientPublicKey encryptionKey, CancellationToken cancellationToken)
    {
        var replica = ReplicaFor(account);
        if (!replica.Ledger.Applied.Any(e => e.Account == account && e.Payload is DeviceEnrolled d && d.Device == device))
        {
            var before = replica.Position.Seq;
            var result = replica.Record(new DeviceEnrolled(device, label, signingKey));
            if (!result.Succeeded)
            {
                throw new InvalidOperationException($"could not enroll {device} in {account}: {result.Error}");
            }

            await _store.AppendEventsAsync([.. OwnSince(replica, before)], false, null, cancellationToken).ConfigureAwait(false);
        }

        await _store.SetValueAsync($"{DeviceKeyPrefix}{account.Value}/{device.Value}", encryptionKey.Encoded.ToArray(), cancellationToken).ConfigureAwait(false);
        KeysOf(account)[device] = encryptionKey;
    }

    /// <summary>Sends the pending revocations; true when the relay turned out unreachable (the rest stay pending).</summary>
    private async Task<bool> SendRevocationsAsync(List<string> failures, CancellationToken cancellationToken)
    {
        foreach (var (name, value) in await _store.ListValuesAsync(RevocationPrefix, cancellationToken).ConfigureAwait(false))
        {
            var parts = name[RevocationPrefix.Length..].Split('/');
            var account = new AccountId(parts[0]);
            try
            {
                await AccountClient(account).RevokeAsync(account.Value, new RevocationRequest(parts[1] == "*" ? null : parts[1], Encoding.UTF8.GetString(value)), cancellationToken).ConfigureAwait(false);
                await _store.SetValueAsync(name, null, cancellationToken).ConfigureAwait(false);
            }
            catch (RelayException e)
            {
                failures.Add($"revocation {parts[0]}/{parts[1]}: {e.Message}");
                if (Unreachable(e))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>An outage (after the client's own retries) or an impostor certificate: every further request of this call would fail the same way.</summary>
    private static bool Unreachable(RelayException e) => e.IsTransient || e is RelayCertificatePinningException;

    private IRelayClient AccountClient(AccountId account) => Client(ReplicaFor(account).Id.Value, _keys.KeyFor(account));

    private IRelayClient Client(string caller, Engine.Signing.ReplicaKey key)
    {
        // The enrollment loop and a sync may run at the same time (the gate covers only their store work).
        lock (_clients)
        {
            return _clients.TryGetValue(caller, out var existing) ? existing : CreateClient(caller, key);
        }
    }

    private IRelayClient CreateClient(string caller, Engine.Signing.ReplicaKey key)
    {
        var options = RelayOptions();
        var pkcs8 = key.ExportPkcs8();
        EcdsaRequestSigner signer;
        try
        {
            var ecdsa = ECDsa.Create();
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
            signer = new EcdsaRequestSigner(ecdsa, ownsKey: true, callerId: caller);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }

        var unwrapped = RelayClient.Create(options, signer, _options.Time);
        var client = _options.WrapRelayClient?.Invoke(unwrapped) ?? unwrapped;
        _unwrapped[caller] = unwrapped;
        _signers[caller] = signer;
        _clients[caller] = client;
        return client;
    }

    // The relay client options from the settings; throws InvalidOperationException naming what is missing.
    private RelayClientOptions RelayOptions()
    {
        var options = new RelayClientOptions
        {
            BaseAddress = _options.RelayAddress ?? throw new InvalidOperationException("no relay address configured"),
            PinnedCertificateSha256 = _options.RelayCertificateSha256,
        };
        _options.ConfigureRelay?.Invoke(options);
        options.Validate();
        return options;
    }

    // Why the relay cannot be contacted with the present settings (no address, no certificate pin), or null.
    private string? RelayNotConfigured()
    {
        try
        {
            _ = RelayOptions();
            return null;
        }
        catch (InvalidOperationException e)
        {
            return "the relay is not configured: " + e.Message;
        }
    }

    private async Task<long> GetLongAsync(string name, CancellationToken cancellationToken) =>
        await _store.GetValueAsync(name, cancellationToken).ConfigureAwait(false) is { Length: 8 } b ? System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(b) : 0;

    private Task SetLongAsync(string name, long value, CancellationToken cancellationToken)
    {
        var b = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(b, value);
        return _store.SetValueAsync(name, b, cancellationToken);
    }

    /// <summary>The school replica of one account as the relay client's sync port, over the connector's store.</summary>
    private sealed class SchoolSyncReplica(SchoolConnector connector, Replica replica) : ISyncReplica
    {
        private (HashSet<ReplicaId> Recipients, EventHash Last)? _announcing;

        public int NewEvents { get; private set; }

        public AccountId Account => replica.Account;

        public ReplicaId Id => replica.Id;

        // The school is the only forwarder, and it forwards to nobody but devices: every bundle it opens must hold only
        // its sender's events. Left null, a device bundle holding an account.opened of the device's own passed as the
        // school's, and could carry a revoked device's events the relay refuses from that device.
        public ReplicaId? School => replica.Id;

        public IRecipientKeys DecryptionKeys => connector._hpke;

        private string Name(string kind) => $"{kind}/{Account.Value}";

        public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyCollection<RecipientPublicKey>>([.. Recipients().Values.DistinctBy(k => k.Id)]);

        public async Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken)
        {
            var current = Recipients();
            var recipients = current.Keys.ToHashSet();
            _announcing = null;
            if (recipients.Count == 0)
            {
                return [];
            }

            var all = replica.Ledger.Export(Account);
            var own = all.Where(e => e.Event.Replica == Id).OrderBy(e => e.Event.Seq).ToList();
            var announcedBytes = await connector._store.GetValueAsync(Name("announced"), cancellationToken).ConfigureAwait(false);
            var announced = announcedBytes is null ? [] : Encoding.UTF8.GetString(announcedBytes).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(r => new ReplicaId(r)).ToHashSet();
            if (!recipients.IsSubsetOf(announced))
            {
                // A recipient that has not received this chain yet: the whole account log once (duplicates are ignored by the
                // ledger). The devices' chains are forwarded too: a device enrolled later cannot apply its own enrollment
                // before the devices' events the school had seen when it wrote it, and the other devices seal for it only
                // once it has published its key — which it does after applying its enrollment. The school's own chain
                // comes first (its account.opened tells a new device who may forward); the announcement is complete once
                // the bundle holding its last event is acknowledged.
                List<SignedEvent> announcement = [.. own, .. all.Where(e => e.Event.Replica != Id).OrderBy(e => e.Event.Replica.Value, StringComparer.Ordinal).ThenBy(e => e.Event.Seq)];

                // An outgoing bundle left by an earlier run is sent again first, sealed for the recipients of then: when
                // it holds the last event it completes the announcement only if it reaches every current recipient (a
                // device enrolled since would otherwise count as announced without having received anything). If not,
                // the next call announces again.
                var outgoing = await GetOutgoingAsync(cancellationToken).ConfigureAwait(false);
                var stale = outgoing is not null &&
                    (!Bundle.TryReadHeader(outgoing.Data, out var header, out _) || !current.Values.All(k => header.RecipientKeyIds.Contains(k.Id)));
                _announcing = stale ? null : (recipients, announcement[^1].Event.Hash);
                return announcement;
            }

            var unacked = await connector._store.UnacknowledgedAsync(Account.Value, cancellationToken).ConfigureAwait(false);
            return [.. own.Where(e => unacked.Contains(e.Event.Hash.Hex))];
        }

        public async Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
        {
            IReadOnlyCollection<SignedEvent> received = events as IReadOnlyCollection<SignedEvent> ?? [.. events];
            var report = replica.Receive(received);

            // Stored: the batch's events the replica applied earlier (duplicates), those applied now and the held ones. A
            // receive whose store write failed after the in-memory merge (PostgreSQL down) is retried with the same page,
            // which then holds only duplicates; without them the events would be in the report but never stored, and the
            // cursor would move past them (lost at the next start). The store keeps each event once (hash key).
            var earlier = received.Where(e => e.Event.Replica != Id)
                .Select(e => replica.Ledger.Find(e.Event.Account, e.Event.Replica, e.Event.Seq) is { } found && found.Event.Hash.Hex == e.Event.Hash.Hex ? found : null)
                .OfType<SignedEvent>();
            var store = earlier
                .Concat(report.Applied.Select(e => replica.Ledger.Find(e.Account, e.Replica, e.Seq)!))
                .Concat(replica.Ledger.Unapplied().Where(e => e.Event.Account == Account))
                .DistinctBy(e => e.Event.Hash.Hex, StringComparer.Ordinal)
                .Select(ToStored).ToList();
            // Teachers' records on lessons that continued as a new series while they were offline are recorded again by
            // the school on the new series (sent with the next push). Stored before the received events: after a crash
            // in between, the page is pulled again and carried again, which changes nothing in the calendar.
            var before = replica.Position.Seq;
            // A record the calendar rejected for its author (it names a lesson its author could not have seen) gets no
            // effect through the school either.
            var rejected = replica.Calendar.Rejected.Select(r => r.Event).ToHashSet();
            var carried = connector._publisher.CarryOver(Account,
                report.Applied.Where(e => e.Replica != Id && !rejected.Contains(e.Hash)).Select(e => e.Payload));
            if (carried.Count > 0)
            {
                // A record may have no lesson left to land on (its new series was withdrawn by a later version): then each
                // is carried on its own and that one is left out. Refusing the batch would throw after the merge above,
                // and the retry of the page (now duplicates) would carry none of the others.
                if (!replica.RecordBatch(carried).Succeeded)
                {
                    foreach (var record in carried)
                    {
                        replica.Record(record);
                    }
                }

                await connector._store.AppendEventsAsync([.. OwnSince(replica, before)], acknowledged: false, null, cancellationToken).ConfigureAwait(false);
            }

            if (store.Count > 0)
            {
                NewEvents += await connector._store.AppendEventsAsync(store, acknowledged: true, null, cancellationToken).ConfigureAwait(false);
            }

            return report;
        }

        public async Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
        {
            var list = events.ToList();
            await connector._store.MarkAcknowledgedAsync(list.Select(e => e.Event.Hash.Hex), cancellationToken).ConfigureAwait(false);
            if (_announcing is { } a && list.Any(e => e.Event.Hash == a.Last))
            {
                var announcedBytes = await connector._store.GetValueAsync(Name("announced"), cancellationToken).ConfigureAwait(false);
                var announced = announcedBytes is null ? [] : Encoding.UTF8.GetString(announcedBytes).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
                announced.UnionWith(a.Recipients.Select(r => r.Value));
                await connector._store.SetValueAsync(Name("announced"), Encoding.UTF8.GetBytes(string.Join('\n', announced.Order(StringComparer.Ordinal))), cancellationToken).ConfigureAwait(false);
                _announcing = null;
            }
        }

        public Task<long> GetCursorAsync(CancellationToken cancellationToken) => connector.GetLongAsync(Name("cursor"), cancellationToken);

        public Task SetCursorAsync(long position, CancellationToken cancellationToken) => connector.SetLongAsync(Name("cursor"), position, cancellationToken);

        public async Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken)
        {
            var bytes = await connector._store.GetValueAsync(Name("outgoing"), cancellationToken).ConfigureAwait(false);
            if (bytes is null)
            {
                return null;
            }

            using var doc = JsonDocument.Parse(bytes);
            var o = doc.RootElement;
            return new OutgoingBundle(o.GetProperty("id").GetGuid(), o.GetProperty("data").GetBytesFromBase64(),
                [.. o.GetProperty("events").EnumerateArray().Select(e => e.GetString()!)]);
        }

        public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken)
        {
            if (bundle is null)
            {
                return connector._store.SetValueAsync(Name("outgoing"), null, cancellationToken);
            }

            var json = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
            {
                ["id"] = bundle.BundleId,
                ["data"] = Convert.ToBase64String(bundle.Data),
                ["events"] = bundle.EventHashes,
            });
            return connector._store.SetValueAsync(Name("outgoing"), json, cancellationToken);
        }

        private Dictionary<ReplicaId, RecipientPublicKey> Recipients()
        {
            var revoked = replica.Ledger.Applied.Where(e => e.Account == Account).Select(e => e.Payload).OfType<DeviceRevoked>().Select(r => r.Device).ToHashSet();
            var result = connector.KeysOf(Account).Where(k => !revoked.Contains(k.Key)).ToDictionary();
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
}
