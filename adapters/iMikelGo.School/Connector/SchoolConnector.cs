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
using IMikelGo.School.Import;
using IMikelGo.School.Model;
using IMikelGo.School.Publishing;
using IMikelGo.Sealing;
using Microsoft.Extensions.Options;

namespace IMikelGo.School.Connector;

/// <summary>
/// The school server's replica (one school, many teacher accounts), outbound only. State lives in an
/// <see cref="ISchoolConnectorStore"/>; a connector dropped at any point is recreated with <see cref="OpenAsync"/>
/// from its store and continues (nothing lost, nothing sent twice: outgoing bundles are sealed once and re-pushed
/// under the same bundle id until the relay acknowledges). See docs/school-connector.md.
/// </summary>
public sealed partial class SchoolConnector : IAsyncDisposable
{
    private const string RootKey = "school/root.p12";
    private const string SecretKey = "school/secret";
    private const string HpkeKey = "school/hpke";
    private const string EnrollmentHpkeKey = "school/enrollment-hpke";
    private const string EnrollmentCertificateKey = "school/enrollment-certificate";
    private const string EnrollmentCursorKey = "relay/enrollment-cursor";
    private const string PersonnelPrefix = "personnel/";
    private const string RosterPrefix = "roster/";
    private const string DeviceKeyPrefix = "device-key/";
    private const string EffectiveFromPrefix = "import-effective-from/";

    /// <summary>The longest term an import may have: a school year with room for an early start.</summary>
    public const int MaxTermDays = 400;

    private readonly ISchoolConnectorStore _store;
    private readonly SchoolConnectorSettings _options;
    private readonly SchoolRoot _root;
    private readonly DerivedSchoolKeyStore _keys;
    private readonly EncryptionKeyPair _hpke;
    private readonly EncryptionKeyPair _enrollmentHpke;
    private readonly InMemoryPersonnelStore _personnel = new();
    private readonly InMemorySchoolRosterStore _rosters = new();
    private readonly Dictionary<AccountId, Replica> _replicas = [];
    private readonly Dictionary<AccountId, Dictionary<ReplicaId, RecipientPublicKey>> _enrolledKeys = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private TimetablePublisher _publisher;
    private EnrollmentAuthority? _authority;
    private byte[] _enrollmentCertificate = [];

    private SchoolConnector(ISchoolConnectorStore store, SchoolConnectorSettings options, SchoolRoot root, byte[] secret, EncryptionKeyPair hpke, EncryptionKeyPair enrollmentHpke)
    {
        _store = store;
        _options = options;
        _root = root;
        _keys = new DerivedSchoolKeyStore(secret);
        _hpke = hpke;
        _enrollmentHpke = enrollmentHpke;
        _publisher = new TimetablePublisher(_keys, options.Time);
    }

    /// <summary>The school id (from the root certificate).</summary>
    public string SchoolId => _root.SchoolId;

    /// <summary>The root certificate's SHA-256 fingerprint (devices pin it from the QR code).</summary>
    public string RootFingerprint => _root.Fingerprint;

    /// <summary>The root certificate (public).</summary>
    public X509Certificate2 RootCertificate => _root.Certificate;

    /// <summary>The school's HPKE public key, published in every account's school chain.</summary>
    public RecipientPublicKey EncryptionKey => _hpke.PublicKey;

    /// <summary>The accounts with a school replica, by id.</summary>
    public IReadOnlyList<AccountId> Accounts => [.. _replicas.Keys.OrderBy(a => a.Value, StringComparer.Ordinal)];

    /// <summary>The timetable imported but not yet published, or null.</summary>
    public SchoolTimetable? PendingTimetable { get; private set; }

    /// <summary>The version of <see cref="PendingTimetable"/> in the store.</summary>
    public long? PendingImport { get; private set; }

    /// <summary>Creates a new school in an empty store: root, school secret (account replica keys), HPKE keys.</summary>
    /// <exception cref="InvalidOperationException">The store already holds a school.</exception>
    public static async Task<SchoolConnector> InitAsync(ISchoolConnectorStore store, string schoolId, SchoolConnectorSettings options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        if (await store.GetValueAsync(RootKey, cancellationToken).ConfigureAwait(false) is not null)
        {
            throw new InvalidOperationException("this store already holds a school; open it instead");
        }

        using (var root = SchoolRoot.Create(schoolId, options.Time))
        {
            await store.SetValueAsync(SecretKey, RandomNumberGenerator.GetBytes(32), cancellationToken).ConfigureAwait(false);
            await store.SetValueAsync(HpkeKey, RandomNumberGenerator.GetBytes(32), cancellationToken).ConfigureAwait(false);
            await store.SetValueAsync(EnrollmentHpkeKey, RandomNumberGenerator.GetBytes(32), cancellationToken).ConfigureAwait(false);
            await store.SetValueAsync(RootKey, root.Certificate.Export(X509ContentType.Pkcs12), cancellationToken).ConfigureAwait(false);
        }

        return await OpenAsync(store, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Opens the school in <paramref name="store"/>: re-verifies every stored event and rebuilds the publisher's baseline.</summary>
    /// <exception cref="InvalidOperationException">No school in the store, or a stored event no longer verifies.</exception>
    public static async Task<SchoolConnector> OpenAsync(ISchoolConnectorStore store, SchoolConnectorSettings options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        var p12 = await store.GetValueAsync(RootKey, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException("this store holds no school; run init first");
        var cert = X509CertificateLoader.LoadPkcs12(p12, null, X509KeyStorageFlags.Exportable);
        var secret = (await store.GetValueAsync(SecretKey, cancellationToken).ConfigureAwait(false))!;
        var hpke = Derive((await store.GetValueAsync(HpkeKey, cancellationToken).ConfigureAwait(false))!, "hpke");
        var enrollment = Derive((await store.GetValueAsync(EnrollmentHpkeKey, cancellationToken).ConfigureAwait(false))!, "enrollment");
        var connector = new SchoolConnector(store, options, SchoolRoot.FromCertificate(cert), secret, hpke, enrollment);
        CryptographicOperations.ZeroMemory(secret);
        await connector.LoadAsync(cancellationToken).ConfigureAwait(false);
        await connector.EnsureEnrollmentCertificateAsync(cancellationToken).ConfigureAwait(false);
        return connector;
    }

    /// <summary>Reads a timetable and keeps it (durably) for <see cref="PublishAsync(IProgress{SchoolProgress}?, DateOnly?, CancellationToken)"/>; nothing is published.</summary>
    /// <param name="format">"xhstt", "json" or "csv" (csv needs a term: use json for integrators).</param>
    /// <param name="content">The source text.</param>
    /// <param name="solution">The XHSTT solution group (default the first).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="SchoolImportException">The input is inconsistent (the message names the element).</exception>
    public async Task<SchoolTimetable> ImportAsync(string format, string content, string? solution, CancellationToken cancellationToken)
    {
        var timetable = Load(format, content, solution);
        TimetableValidator.Validate(timetable);

        // Every publish plans each lesson's occurrences day by day: a term typed a millennium long would publish hundreds
        // of thousands of events (and take gigabytes) before anyone noticed. Checked here, on new input only, so that
        // imports a store accepted before still replay when it opens.
        var days = timetable.Term.End.DayNumber - timetable.Term.Start.DayNumber + 1;
        if (days > MaxTermDays)
        {
            throw new SchoolImportException("term",
                $"spans {days} days ({timetable.Term.Start:yyyy-MM-dd} to {timetable.Term.End:yyyy-MM-dd}); a term is at most one school year ({MaxTermDays} days)");
        }

        var version = await _store.AddImportAsync(format, solution, content, cancellationToken).ConfigureAwait(false);
        PendingTimetable = timetable;
        PendingImport = version;
        return timetable;
    }

    /// <summary>Imports a file (format by extension: .xml → xhstt, .json → json).</summary>
    /// <exception cref="SchoolImportException">The file is not valid text in its encoding, or its timetable is inconsistent.</exception>
    public async Task<SchoolTimetable> ImportFileAsync(string path, string? solution, CancellationToken cancellationToken)
    {
        var format = Path.GetExtension(path).Equals(".xml", StringComparison.OrdinalIgnoreCase) ? "xhstt" : "json";
        var content = ImportText.Decode(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false), path, xml: format == "xhstt");
        return await ImportAsync(format, content, solution, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Publishes the pending import, effective today on the school's clock (see
    /// <see cref="PublishAsync(IProgress{SchoolProgress}?, DateOnly?, CancellationToken)"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">Nothing imported.</exception>
    public Task<SchoolPublishResult> PublishAsync(IProgress<SchoolProgress>? progress, CancellationToken cancellationToken) =>
        PublishAsync(progress, null, cancellationToken);

    /// <summary>
    /// Publishes the pending import into the account replicas (first publish, or the difference as reschedules) and
    /// stores the new events in one transaction with the import's published mark. Sending is <see cref="SyncAsync"/>.
    /// A changed slot moves only the occurrences from <paramref name="effectiveFrom"/> on (default today): past lessons,
    /// and lessons a teacher already cancelled, moved or marked held, stay as they are — a new timetable version never
    /// rewrites what was recorded (payroll, make-ups owed).
    /// </summary>
    /// <exception cref="InvalidOperationException">Nothing imported.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="effectiveFrom"/> is after the imported term's last day; nothing was published.</exception>
    public async Task<SchoolPublishResult> PublishAsync(IProgress<SchoolProgress>? progress, DateOnly? effectiveFrom, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var timetable = PendingTimetable ?? throw new InvalidOperationException("nothing imported to publish");
            if (effectiveFrom is { } from && from > timetable.Term.End)
            {
                // Nothing would move, yet the new slots would become the published ones: a date typed a year off could not be corrected.
                throw new ArgumentOutOfRangeException(nameof(effectiveFrom),
                    $"the effective date {from:yyyy-MM-dd} is after the term's last day {timetable.Term.End:yyyy-MM-dd}: no lesson of this timetable would change; nothing was published");
            }

            progress?.Report(new SchoolProgress("planning", 0, 1));
            var records = new Dictionary<AccountId, Dictionary<OccurrenceId, LessonView>>();
            var result = _publisher.Publish(timetable, new PublishOptions
            {
                EffectiveFrom = effectiveFrom,
                TeacherRecord = (account, occurrence) =>
                {
                    if (!records.TryGetValue(account, out var byOccurrence))
                    {
                        records[account] = byOccurrence = _replicas.TryGetValue(account, out var replica) ? RecordedByTeachers(replica) : [];
                    }

                    return byOccurrence.GetValueOrDefault(occurrence);
                },
            });
            var stored = new List<StoredSchoolEvent>();
            var byAccount = result.Facts.GroupBy(f => f.Account).ToList();
            var done = 0;
            foreach (var group in byAccount)
            {
                var replica = ReplicaFor(group.Key);
                var before = replica.Position.Seq;
                foreach (var batch in group.GroupBy(f => f.Batch).OrderBy(b => b.Key))
                {
                    var payloads = new List<LessonEvent>();
                    foreach (var fact in batch)
                    {
                        payloads.Add(fact.Payload);
                        if (fact.Payload is AccountOpened)
                        {
                            payloads.Add(new EncryptionKeyPublished([.. _hpke.PublicKey.Encoded.Span]));
                        }
                    }

                    var recorded = replica.RecordBatch(payloads);
                    if (!recorded.Succeeded)
                    {
                        throw new InvalidOperationException($"the engine refused the publish of account {group.Key}: {recorded.Error}");
                    }
                }

                stored.AddRange(OwnSince(replica, before));
                progress?.Report(new SchoolProgress("publishing", ++done, byAccount.Count));
            }

            // The publisher's baseline is rebuilt from the published imports after a restart, each with the date it took
            // effect (replayed with the day of the restart instead, it would plan the next version against series terms
            // that were never published). Written first: an import not marked published is published again anyway.
            if (PendingImport is { } import)
            {
                await _store.SetValueAsync(EffectiveFromPrefix + import.ToString(CultureInfo.InvariantCulture),
                    Encoding.UTF8.GetBytes(result.EffectiveFrom.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), cancellationToken).ConfigureAwait(false);
            }

            await _store.AppendEventsAsync(stored, acknowledged: false, PendingImport, cancellationToken).ConfigureAwait(false);
            PendingTimetable = null;
            PendingImport = null;
            return new SchoolPublishResult(byAccount.Count, stored.Count, result.Facts.Count(f => f.Payload is LessonRescheduled),
                result.ByType, result.EffectiveFrom, result.Moves.Sum(m => m.KeptBeforeEffective), result.Moves.Sum(m => m.KeptDecided));
        }
        finally
        {
            _gate.Release();
        }
    }

    // The lessons of the merged calendar that a teacher decided (the deciding event is a device's, or the school's copy of
    // it on a continued series) or recorded absences on. The copy counts as the teacher's: else a lesson continued a second
    // time (X → X.2 → X.2.2) would lose the cancellation, move or held carried to X.2.
    private Dictionary<OccurrenceId, LessonView> RecordedByTeachers(Replica replica)
    {
        var teachers = replica.Ledger.Applied.Where(e => e.Replica != replica.Id).ToList();
        if (teachers.Count == 0)
        {
            return [];
        }

        var byTeachers = teachers.Select(e => e.Hash).ToHashSet();
        var carried = _publisher.CarryOver(replica.Account, teachers.Select(e => e.Payload))
            .Where(p => p is LessonCancelled or LessonRescheduled or LessonHeld)
            .Select(Engine.Merge.Calendar.OccurrenceOf).OfType<OccurrenceId>().ToHashSet();
        return replica.Calendar.Lessons()
            .Where(l => (l.Status != LessonStatus.Scheduled && l.DecidedBy is { } by && (byTeachers.Contains(by) || carried.Contains(l.Occurrence))) || !l.Absent.IsEmpty)
            .ToDictionary(l => l.Occurrence);
    }

    /// <summary>
    /// Issues a license for <paramref name="account"/>: a new license key and school password (only its hash is kept)
    /// and the enrollment URI, which carries the relay certificate pin (<see cref="SchoolConnectorSettings.RelayCertificateSha256"/>)
    /// so the device trusts exactly this relay for its enrollment (without a configured pin the code has none, and a
    /// device enrolling through the relay refuses it unless it was given the fingerprint otherwise).
    /// </summary>
    /// <exception cref="InvalidOperationException">No relay address configured.</exception>
    /// <exception cref="KeyNotFoundException">The account is not in the published timetable (a license for it could never sync).</exception>
    public async Task<IssuedLicense> IssueLicenseAsync(AccountId account, CancellationToken cancellationToken)
    {
        if (!_replicas.ContainsKey(account))
        {
            throw new KeyNotFoundException($"unknown account '{account}': not in the published timetable ({_replicas.Count} accounts; publishing a timetable with this teacher creates it)");
        }

        var relay = _options.RelayAddress ?? throw new InvalidOperationException("no relay address configured");
        var pin = _options.RelayCertificateSha256;
        var license = LicenseKey.Generate();
        var password = NewPassword();
        var record = new PersonnelRecord(license, account.Value, PasswordHash.Create(password, _options.Pbkdf2Iterations));
        await SavePersonnelAsync(record, cancellationToken).ConfigureAwait(false);
        return new IssuedLicense(account, license, password, new EnrollmentUri(relay, SchoolId, RootFingerprint, license, pin));
    }

    /// <summary>Deactivates every license of an account (new enrollments are refused).</summary>
    public async Task DeactivateLicensesAsync(AccountId account, CancellationToken cancellationToken)
    {
        foreach (var (_, value) in await _store.ListValuesAsync(PersonnelPrefix, cancellationToken).ConfigureAwait(false))
        {
            var record = DecodePersonnel(value);
            if (record.AccountId == account.Value && record.Active)
            {
                await SavePersonnelAsync(record with { Active = false }, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The school's enrollment certificate (chains to the root; carries the enrollment HPKE key), for devices. Issued
    /// once and kept in the store (so the copy published at the relay stays valid); renewed 30 days before it expires.
    /// </summary>
    public X509Certificate2 EnrollmentCertificate() => X509CertificateLoader.LoadCertificate(_enrollmentCertificate);

    /// <summary>The root and enrollment certificates (DER) a device needs to seal its enrollment request.</summary>
    public SchoolCertificates Certificates() => new(_root.Certificate.RawData, [.. _enrollmentCertificate]);

    /// <summary>
    /// The relay registrations the relay operator configures (docs/relay.md, schools.json): one school caller per
    /// account (the account's school replica) and the enrollment caller (id = school id) in
    /// <see cref="SchoolConnectorSettings.EnrollmentAccount"/> (default: a relay account named after the school id, which
    /// no teacher uses). Devices of every account enroll through the one enrollment caller.
    /// </summary>
    public IReadOnlyList<(string Account, string Caller, string SigningKey)> RelayRegistrations(IEnumerable<AccountId> accounts)
    {
        ArgumentNullException.ThrowIfNull(accounts);
        var list = accounts.Distinct().Select(a => (a.Value, _keys.KeyFor(a).Replica.Value, Convert.ToBase64String(_keys.KeyFor(a).PublicKey.AsSpan()))).ToList();
        list.Add((_options.EnrollmentAccount ?? SchoolId, SchoolId, Convert.ToBase64String(EnrollmentCallerKey().PublicKey.AsSpan())));
        return list;
    }

    /// <summary>The school replica of an account (its ledger and calendar), or null.</summary>
    public Replica? ReplicaOf(AccountId account) => _replicas.GetValueOrDefault(account);

    /// <summary>Disposes keys (the store is the caller's).</summary>
    public ValueTask DisposeAsync()
    {
        _keys.Dispose();
        _hpke.Dispose();
        _enrollmentHpke.Dispose();
        _root.Dispose();
        _gate.Dispose();
        foreach (var disposable in _clients.Values.OfType<IDisposable>().Concat(_unwrapped.Values).Distinct().Concat(_signers.Values))
        {
            disposable.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    internal static EncryptionKeyPair Derive(byte[] seed, string purpose)
    {
        var ikm = HMACSHA256.HashData(seed, Encoding.UTF8.GetBytes("imikelgo.school-hpke/1\0" + purpose));
        try
        {
            return EncryptionKeyPair.Derive(ikm);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ikm);
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    private static SchoolTimetable Load(string format, string content, string? solution, bool stored = false) => format switch
    {
        "xhstt" => XhsttSchoolDataSource.FromXml(content, new XhsttImportOptions { SolutionGroup = solution }).Load(),
        "json" => (stored ? JsonSchoolDataSource.FromStoredJson(content) : JsonSchoolDataSource.FromJson(content)).Load(),
        _ => throw new ArgumentException($"unknown import format '{format}' (xhstt or json)", nameof(format)),
    };

    private static string NewPassword()
    {
        const string alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
        var chars = new char[12];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = alphabet[RandomNumberGenerator.GetInt32(alphabet.Length)];
        }

        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{new string(chars, 0, 4)}-{new string(chars, 4, 4)}-{new string(chars, 8, 4)}");
    }

    private static IEnumerable<StoredSchoolEvent> OwnSince(Replica replica, long before) =>
        replica.Ledger.Export(replica.Account).Where(e => e.Event.Replica == replica.Id && e.Event.Seq > before).Select(ToStored);

    private static StoredSchoolEvent ToStored(SignedEvent e) =>
        new(e.Event.Hash.Hex, e.Event.Account.Value, e.Event.Replica.Value, e.Event.Seq, e.ToLine());

    private Replica ReplicaFor(AccountId account)
    {
        if (!_replicas.TryGetValue(account, out var replica))
        {
            replica = new Replica(account, _keys.KeyFor(account), null, _options.Time);
            _replicas[account] = replica;
        }

        return replica;
    }

    private Engine.Signing.ReplicaKey EnrollmentCallerKey() => _keys.KeyFor(new AccountId("enrollment-caller"));

    private async Task EnsureEnrollmentCertificateAsync(CancellationToken cancellationToken)
    {
        var now = _options.Time.GetUtcNow();
        if (await _store.GetValueAsync(EnrollmentCertificateKey, cancellationToken).ConfigureAwait(false) is { Length: > 0 } stored)
        {
            using var certificate = X509CertificateLoader.LoadCertificate(stored);
            if (certificate.NotAfter.ToUniversalTime() - now.UtcDateTime > TimeSpan.FromDays(30))
            {
                _enrollmentCertificate = stored;
                return;
            }
        }

        using var issued = _root.IssueEnrollmentCertificate(_enrollmentHpke.PublicKey, now, TimeSpan.FromDays(365));
        _enrollmentCertificate = issued.RawData;
        await _store.SetValueAsync(EnrollmentCertificateKey, _enrollmentCertificate, cancellationToken).ConfigureAwait(false);
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        foreach (var (_, value) in await _store.ListValuesAsync(PersonnelPrefix, cancellationToken).ConfigureAwait(false))
        {
            _personnel.Upsert(DecodePersonnel(value));
        }

        foreach (var (_, value) in await _store.ListValuesAsync(RosterPrefix, cancellationToken).ConfigureAwait(false))
        {
            using var doc = JsonDocument.Parse(value);
            if (DeviceRoster.TryParse(doc.RootElement.GetProperty("roster").GetBytesFromBase64(), out var roster, out _))
            {
                _rosters.Save(roster, doc.RootElement.GetProperty("signed").GetBytesFromBase64());
            }
        }

        foreach (var (name, value) in await _store.ListValuesAsync(DeviceKeyPrefix, cancellationToken).ConfigureAwait(false))
        {
            var parts = name[DeviceKeyPrefix.Length..].Split('/');
            if (parts.Length == 2 && RecipientPublicKey.TryParse(value, out var key, out _))
            {
                KeysOf(new AccountId(parts[0]))[new ReplicaId(parts[1])] = key;
            }
        }

        // The account logs, re-verified; each school replica continues its own chain where it stopped.
        var events = await _store.ReadEventsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var group in events.GroupBy(e => e.Account))
        {
            var account = new AccountId(group.Key);
            var key = _keys.KeyFor(account);
            var ledger = new Ledger(null, _options.Time);
            var report = ledger.Ingest(group.Select(e => SignedEvent.ParseLine(e.Line)));
            if (!report.Refused.IsEmpty)
            {
                throw new InvalidOperationException($"the store holds events of {account} that do not verify: {report.Refused[0]}");
            }

            var own = ledger.Applied.Where(e => e.Replica == key.Replica && e.Account == account).MaxBy(e => e.Seq);
            var position = own is null ? null : new ChainPosition(own.Seq, own.Hash, own.Clock, own.Time);
            _replicas[account] = new Replica(account, key, ledger, _options.Time, position);
        }

        // The publisher's baseline: replay the published imports into a scratch publisher (its replicas are never exported).
        foreach (var import in await _store.ImportsAsync(cancellationToken).ConfigureAwait(false))
        {
            var timetable = Load(import.Format, import.Content, import.Solution, stored: true);
            if (import.Published)
            {
                var effective = await _store.GetValueAsync(EffectiveFromPrefix + import.Version.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
                _publisher.Publish(timetable, new PublishOptions
                {
                    EffectiveFrom = effective is null ? null : DateOnly.ParseExact(Encoding.UTF8.GetString(effective), "yyyy-MM-dd", CultureInfo.InvariantCulture),
                });
                PendingTimetable = null;
                PendingImport = null;
            }
            else
            {
                PendingTimetable = timetable;
                PendingImport = import.Version;
            }
        }
    }

    private Dictionary<ReplicaId, RecipientPublicKey> KeysOf(AccountId account)
    {
        if (!_enrolledKeys.TryGetValue(account, out var keys))
        {
            keys = [];
            _enrolledKeys[account] = keys;
        }

        return keys;
    }

    private async Task SavePersonnelAsync(PersonnelRecord record, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["license"] = record.License.Value,
            ["account"] = record.AccountId,
            ["password"] = record.Password.ToString(),
            ["active"] = record.Active,
        });
        await _store.SetValueAsync(PersonnelPrefix + record.License.Value, json, cancellationToken).ConfigureAwait(false);
        _personnel.Upsert(record);
    }

    private static PersonnelRecord DecodePersonnel(byte[] value)
    {
        using var doc = JsonDocument.Parse(value);
        var o = doc.RootElement;
        if (!LicenseKey.TryParse(o.GetProperty("license").GetString(), out var license, out var error)
            || !PasswordHash.TryParse(o.GetProperty("password").GetString(), out var hash))
        {
            throw new InvalidOperationException("a stored personnel record is malformed: " + error);
        }

        return new PersonnelRecord(license, o.GetProperty("account").GetString()!, hash, o.GetProperty("active").GetBoolean());
    }

    private EnrollmentAuthority Authority() => _authority ??= new EnrollmentAuthority(_root, _enrollmentHpke, _personnel, _rosters,
        Options.Create(new SealingOptions { Pbkdf2Iterations = _options.Pbkdf2Iterations }), _options.Time);
}
