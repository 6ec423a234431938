using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.School.Import;
using IMikelGo.School.Model;
using IMikelGo.School.Publishing;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite;
using IMikelGo.Store.Sqlite.Sync;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IMikelGo.Samples.QuickStart;

/// <summary>An expectation of the QuickStart did not hold (it is also a smoke test).</summary>
public sealed class ExpectationFailedException(string message) : Exception(message);

/// <summary>
/// The whole system on one machine: relay, school connector with a real timetable, three teacher devices, sync,
/// conflict, convergence, tamper refusal, wrong-PIN wipe and remote wipe. Exit 0 when every expectation holds.
/// </summary>
public static class QuickStart
{
    /// <summary>PBKDF2 iterations for the demo vaults (the production default is ≈500,000, ≈250 ms per unlock).</summary>
    public const int DemoPbkdf2Iterations = 1_000;

    /// <summary>Runs the QuickStart. Arguments: <c>[--postgres] [--data DIR] [--timetable FILE.xml] [--generated]</c>.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="output">Where the narrative goes.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>0 when every expectation held; 1 when one failed; 2 on bad arguments or an unexpected error.</returns>
    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        var root = RepositoryRoot();
        var options = new RunOptions(
            Postgres: args.Contains("--postgres"),
            DataDirectory: Path.GetFullPath(ValueOf(args, "--data") ?? Path.Combine(root, ".cache", "quickstart")),
            Timetable: ValueOf(args, "--timetable") ?? Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "xhstt", "ES-SS-08-SpainSchool.xml")),
            ForceGenerated: args.Contains("--generated"),
            RepositoryRoot: root);
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await output.WriteLineAsync("usage: QuickStart [--postgres] [--data DIR] [--timetable FILE.xml] [--generated]").ConfigureAwait(false);
            return 0;
        }

        var clock = Stopwatch.StartNew();
        try
        {
            await using var run = new Run(options, output);
            await run.ExecuteAsync(cancellationToken).ConfigureAwait(false);
            await output.WriteLineAsync($"\nQuickStart OK: every expectation held ({clock.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s). Exit 0.").ConfigureAwait(false);
            return 0;
        }
        catch (ExpectationFailedException e)
        {
            await output.WriteLineAsync($"\nQuickStart FAILED: {e.Message}").ConfigureAwait(false);
            return 1;
        }
#pragma warning disable CA1031 // the smoke test reports any error as a clear message and a non-zero exit code
        catch (Exception e)
#pragma warning restore CA1031
        {
            await output.WriteLineAsync($"\nQuickStart FAILED with an unexpected error: {e}").ConfigureAwait(false);
            return 2;
        }
    }

    private static string? ValueOf(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>The directory holding iMikelGo.sln, searched upwards from the working directory, then from the binary.</summary>
    private static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return Directory.GetCurrentDirectory();
    }

    internal sealed record RunOptions(bool Postgres, string DataDirectory, string Timetable, bool ForceGenerated, string RepositoryRoot);

    /// <summary>One teacher account on the school side: its replica, relay identity, sync agent, license.</summary>
    private sealed class SchoolAccount(AccountId account, SchoolTeacher teacher) : IDisposable
    {
        public AccountId Account { get; } = account;

        public SchoolTeacher Teacher { get; } = teacher;

        public required Replica Replica { get; init; }

        public required EncryptionKeyPair Encryption { get; init; }

        public Dictionary<ReplicaId, RecipientPublicKey> DeviceKeys { get; } = [];

        public EcdsaRequestSigner? Signer { get; set; }

        public RelayClient? Relay { get; set; }

        public SchoolSyncReplica? Sync { get; set; }

        public SyncAgent? Agent { get; set; }

        public LicenseKey License { get; set; }

        public string Password { get; set; } = "";

        public string EnrollmentUri { get; set; } = "";

        public void Dispose()
        {
            Agent?.Dispose();
            Relay?.Dispose();
            Signer?.Dispose();
            Encryption.Dispose();
        }
    }

    private sealed class Run(RunOptions options, TextWriter output) : IAsyncDisposable
    {
        private const string Pin = "4711";
        private static readonly FieldInfo? ReplicaField = typeof(TeacherDevice).GetField("_replica", BindingFlags.Instance | BindingFlags.NonPublic);
        private readonly InMemorySchoolKeyStore _keys = new();
        private readonly List<SchoolAccount> _accounts = [];
        private readonly List<TeacherDevice> _devices = [];
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimetablePublisher? _publisher;
        private WebApplication? _relay;
        private IMailboxStore? _store;
        private Uri? _relayAddress;
        private string _fingerprint = "";
        private int _step;

        public async Task ExecuteAsync(CancellationToken ct)
        {
            if (Directory.Exists(options.DataDirectory))
            {
                Directory.Delete(options.DataDirectory, recursive: true);
            }

            Directory.CreateDirectory(options.DataDirectory);
            Say($"iMikelGo QuickStart — relay, school connector and three teacher devices on this machine (data: {Relative(options.DataDirectory)})");

            // 1. School connector: import and publish.
            Step("the school connector imports the timetable and publishes one signed log per teacher");
            var (timetable, source) = LoadTimetable();
            Line(source);
            Line($"{timetable.School}: {timetable.Teachers.Length} teachers, {timetable.Groups.Length} classes, {timetable.Rooms.Length} rooms, {timetable.Lessons.Length} weekly lessons, term {timetable.Term.Start:yyyy-MM-dd}…{timetable.Term.End:yyyy-MM-dd}");
            _publisher = new TimetablePublisher(_keys);
            var published = _publisher.Publish(timetable);
            Line($"published {published.EventsRecorded} school-signed events into {published.AccountsOpened} teacher accounts: {string.Join(", ", published.ByType.Select(t => $"{t.Value} {t.Key}"))}");
            var chosen = timetable.Teachers
                .Select(t => (Teacher: t, Lessons: timetable.LessonsOf(t.Account).Count()))
                .OrderByDescending(t => t.Lessons).ThenBy(t => t.Teacher.Account.Value, StringComparer.Ordinal)
                .Take(2).ToList();
            Expect(chosen.Count == 2 && chosen.All(c => c.Lessons >= 3), "the timetable has two teachers with at least 3 weekly lessons");
            foreach (var (teacher, count) in chosen)
            {
                var account = new SchoolAccount(teacher.Account, teacher)
                {
                    Replica = _publisher.ReplicaOf(teacher.Account),
                    Encryption = EncryptionKeyPair.Generate(),
                };
                _accounts.Add(account);
                var recorded = account.Replica.Record(new EncryptionKeyPublished([.. account.Encryption.PublicKey.Encoded.Span]));
                Expect(recorded.Succeeded, $"the school publishes its encryption key in {teacher.Account}'s log ({recorded.Error})");
                Line($"teacher {teacher.Name} (account {teacher.Account}): {count} weekly lessons, log of {account.Replica.Ledger.Applied.Count()} events");
            }

            var (a, b) = (_accounts[0], _accounts[1]);

            // 2. Relay.
            Step(options.Postgres
                ? "the relay starts in-process: HTTPS on a free 127.0.0.1 port, generated pinned certificate, PostgreSQL (Marten) mailbox store"
                : "the relay starts in-process: HTTPS on a free 127.0.0.1 port, generated pinned certificate, embedded SQLite mailbox store");
            await StartRelayAsync(ct).ConfigureAwait(false);
            Line($"relay {_relayAddress}, certificate SHA-256 {_fingerprint[..16]}… (pinned by every client)");
            Line($"store: {(options.Postgres ? "PostgreSQL via Marten" : Relative(Path.Combine(options.DataDirectory, "relay", "relay.db")))}; schools registered for accounts {a.Account}, {b.Account}");
            foreach (var account in _accounts)
            {
                ConnectSchool(account);
            }

            // 3. Licenses.
            Step("the school issues licenses: a license key, a school password and an enrollment QR code per teacher");
            foreach (var account in _accounts)
            {
                account.License = LicenseKey.Generate();
                account.Password = "Schule-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(4));
                account.EnrollmentUri = new EnrollmentUri(_relayAddress!, "es-ss-08", Convert.ToHexStringLower(SHA256.HashData(account.Replica.Ledger.Applied.First().Payload is AccountOpened opened ? opened.SchoolKey.AsSpan() : [])), account.License).ToString();
                Line($"{account.Teacher.Name}: license {account.License.Value}, password {account.Password}");
            }

            Line($"enrollment QR code of {a.Teacher.Name} ({a.EnrollmentUri}):");
            Expect(Sealing.EnrollmentUri.TryParse(a.EnrollmentUri, out var parsedUri, out var uriError), $"the enrollment URI parses ({uriError})");
            foreach (var qrLine in EnrollmentQrCode.ToTerminalText(parsedUri!).Split('\n'))
            {
                output.WriteLine("    " + qrLine.TrimEnd('\r'));
            }

            // 4. Enrollment.
            Step($"three devices enroll (license + school password + new PIN); vault PBKDF2 lowered to {DemoPbkdf2Iterations:N0} iterations for the demo (default ≈500,000)");
            var phone = await EnrollAsync(a, "phone", ct).ConfigureAwait(false);
            var laptop = await EnrollAsync(a, "laptop", ct).ConfigureAwait(false);
            var tablet = await EnrollAsync(b, "tablet", ct).ConfigureAwait(false);
            var wrong = await OpenDeviceAsync(b, "stranger", ct).ConfigureAwait(false);
            try
            {
                await wrong.EnrollAsync(new EnrollmentInput(b.EnrollmentUri, b.License.Value, "wrong-password", Pin), ct).ConfigureAwait(false);
                throw new ExpectationFailedException("an enrollment with a wrong school password was accepted");
            }
            catch (EnrollmentRefusedException e)
            {
                Line($"a fourth device with the wrong school password is refused: {e.Message}");
            }

            // 5. First sync.
            Step("first sync: every device receives its teacher's timetable through the relay (sealed per device, HPKE)");
            await ConvergeAsync(a, [phone, laptop], ct).ConfigureAwait(false);
            await ConvergeAsync(b, [tablet], ct).ConfigureAwait(false);
            var week = FirstFullWeek(timetable.Term);
            foreach (var (device, name) in new[] { (phone, "phone"), (laptop, "laptop"), (tablet, "tablet") })
            {
                Line($"{name,-7} week of {week:yyyy-MM-dd}: {device.Week(week).Count} lessons");
            }

            var lessons = phone.Week(week).OrderBy(l => l.Date).ThenBy(l => l.Start).ToList();
            Expect(lessons.Count >= 3 && lessons.Count == laptop.Week(week).Count, $"both devices of {a.Teacher.Name} show the same week with ≥3 lessons");
            foreach (var lesson in lessons.Take(4))
            {
                Line($"  {lesson.Date:ddd yyyy-MM-dd} {lesson.Start:HH\\:mm} {lesson.DurationMinutes}′ {lesson.Subject,-24} {lesson.Room,-10} {string.Join(", ", lesson.Students.Select(s => s.Name))}");
            }

            // 6. Offline changes.
            Step($"offline on both devices of {a.Teacher.Name} (no sync): an absence, a held note, and a conflicting pair — cancel vs move of the same lesson");
            var (first, contested, third) = (lessons[0], lessons[1], lessons[2]);
            var student = first.Students[0];
            Changed(await phone.RecordAbsenceAsync(first.Occurrence, student.Id, excused: true, "krank", ct).ConfigureAwait(false),
                $"phone : {student.Name} absent (excused) at {Describe(first)}");
            Changed(await phone.CancelAsync(contested.Occurrence, CancellationReason.TeacherIll, makeUpOwed: true, "Lehrkraft krank", ct).ConfigureAwait(false),
                $"phone : CANCEL {Describe(contested)} (teacher ill, make-up owed)");
            var (moveDate, moveStart) = FreeSlot(laptop, contested);
            Changed(await laptop.MoveAsync(contested.Occurrence, moveDate, moveStart, contested.DurationMinutes, contested.Room, ct).ConfigureAwait(false),
                $"laptop: MOVE   {Describe(contested)} → {moveDate:ddd yyyy-MM-dd} {moveStart:HH\\:mm}");
            Changed(await laptop.MarkHeldAsync(third.Occurrence, "Tema 3 repasado", ct).ConfigureAwait(false),
                $"laptop: held   {Describe(third)} with a note");
            Line($"pending: phone {await phone.PendingCountAsync(ct).ConfigureAwait(false)}, laptop {await laptop.PendingCountAsync(ct).ConfigureAwait(false)} events");

            // 7. Sync everyone.
            Step("everyone syncs: the school and the devices exchange sealed bundles through the relay");
            foreach (var (device, name) in new[] { (phone, "phone"), (laptop, "laptop") })
            {
                var r = await device.SyncAsync(null, ct).ConfigureAwait(false);
                Expect(r.Refused.Count == 0, $"{name} sync refused nothing ({string.Join("; ", r.Refused)})");
                Line($"{name,-7} sent {r.Sent}, received {r.Received}, new conflicts {r.NewConflicts}");
            }

            await ConvergeAsync(a, [phone, laptop], ct).ConfigureAwait(false);
            await ConvergeAsync(b, [tablet], ct).ConfigureAwait(false);
            var onPhone = phone.Conflicts();
            var onLaptop = laptop.Conflicts();
            Expect(onPhone.Count == 1 && onLaptop.Count == 1 && onPhone[0] == onLaptop[0], $"both devices show the same single conflict (phone {onPhone.Count}, laptop {onLaptop.Count})");
            var conflict = onPhone[0];
            Line($"conflict on {conflict.Occurrence.Series}@{conflict.Occurrence.Date:yyyy-MM-dd}, rule {conflict.Rule}:");
            Line($"  kept:      {conflict.WinnerSummary}");
            Line($"  overruled: {conflict.LoserSummary}");
            var p = phone.Week(week).Single(l => l.Occurrence == contested.Occurrence);
            var l2 = laptop.Week(week).Single(l => l.Occurrence == contested.Occurrence);
            Expect(p.Status == l2.Status && p.HasConflict && l2.HasConflict, "the contested lesson has the same status on both devices");
            Line($"the contested lesson on both devices: {p.Status}{(p.MakeUpOwed ? " (make-up owed)" : "")}");
            var absent = laptop.Week(week).Single(l => l.Occurrence == first.Occurrence).Students.Single(s => s.Id == student.Id);
            Expect(absent.Absent == true, "the laptop shows the absence recorded on the phone");
            Line($"the laptop shows the phone's absence: {absent.Name} excused");
            var schoolLesson = a.Replica.Calendar.Lessons().Single(l => l.Occurrence == first.Occurrence);
            Expect(schoolLesson.Absent.ContainsKey(student.Id.Value), "the school's replica has the absence too");
            Line("the school's replica has the absence too (for payroll and reports)");

            // 8. Convergence.
            Step("convergence: every replica of an account computes the same calendar digest");
            foreach (var (account, devices) in new[] { (a, new[] { (phone, "phone"), (laptop, "laptop") }), (b, new[] { (tablet, "tablet") }) })
            {
                var school = account.Replica.Calendar.Digest();
                Line($"{account.Account}: school  {school}");
                foreach (var (device, name) in devices)
                {
                    var digest = DigestOf(device);
                    Line($"{account.Account}: {name,-7} {digest}");
                    Expect(digest == school, $"{name} of {account.Account} converged with the school (digest {digest[..12]} vs {school[..12]})");
                }
            }

            Line("all replicas converged.");

            // 9. Tamper.
            Step("tamper: one flipped byte in a sealed bundle is refused, locally and through the relay");
            await TamperAsync(a, phone, ct).ConfigureAwait(false);

            // 10. Wrong PIN.
            Step($"three wrong PINs on {b.Teacher.Name}'s tablet: the vault is wiped and the app falls back to demo mode");
            await tablet.LockAsync(ct).ConfigureAwait(false);
            Expect(tablet.State == DeviceState.Locked, "the tablet is locked");
            foreach (var pin in new[] { "0000", "1234", "9999" })
            {
                var outcome = await tablet.UnlockAsync(pin, ct).ConfigureAwait(false);
                Line($"PIN {pin}: {outcome.Status}, {outcome.RemainingAttempts} attempts left, state {outcome.State}");
            }

            Expect(tablet.State == DeviceState.Demo && tablet.LastWipe?.Reason == WipeReason.WrongPin, $"the tablet is wiped into demo mode (state {tablet.State}, wipe {tablet.LastWipe?.Reason})");
            Expect(VaultFiles("tablet").Count == 0, "no vault file is left in the tablet's folder");
            Line($"wipe reason {tablet.LastWipe!.Reason}; vault files left: 0; demo week shows {tablet.Week(DateOnly.FromDateTime(DateTime.Today)).Count} demo lessons");
            Expect((await tablet.UnlockAsync(Pin, ct).ConfigureAwait(false)).Status != UnlockStatus.Unlocked, "the right PIN no longer unlocks anything");
            Line("the right PIN no longer unlocks anything; sync needs a new enrollment");

            // 11. Remote wipe.
            Step($"remote wipe: the school deactivates {a.Teacher.Name}'s laptop; at its next sync it erases its data and acknowledges");
            var laptopId = laptop.DeviceId!.Value;
            Expect(a.Replica.Record(new DeviceRevoked(laptopId, "lost on the train")).Succeeded, "the school records the revocation");
            await a.Relay!.RevokeAsync(a.Account.Value, new RevocationRequest(laptopId.Value, "lost on the train"), ct).ConfigureAwait(false);
            Line($"school: revoked {laptopId.Value[..12]}… in the signed log and at the relay");
            var wiped = await laptop.SyncAsync(null, ct).ConfigureAwait(false);
            Expect(wiped.Wiped && laptop.State == DeviceState.Demo && laptop.LastWipe?.Reason == WipeReason.RemoteDeactivation, $"the laptop wiped itself (wiped {wiped.Wiped}, state {laptop.State})");
            Expect(VaultFiles("laptop").Count == 0, "no vault file is left in the laptop's folder");
            var acknowledged = await _store!.HasWipedAsync(a.Account.Value, laptopId.Value, ct).ConfigureAwait(false);
            Expect(acknowledged, "the relay has the laptop's signed wipe acknowledgement");
            Line($"laptop: wiped ({laptop.LastWipe!.Reason}), state {laptop.State}, vault files left: 0; relay has its signed wipe acknowledgement: {acknowledged}");
            await ConvergeAsync(a, [phone], ct).ConfigureAwait(false);
            var seen = phone.Devices().Single(d => d.Id == laptopId);
            Expect(seen.Revoked, "the phone sees the laptop revoked");
            Line($"phone: sees the laptop revoked (\"{seen.RevocationReason}\") and keeps working; digest {DigestOf(phone)[..12]} = school {a.Replica.Calendar.Digest()[..12]}");
            Expect(DigestOf(phone) == a.Replica.Calendar.Digest(), "the phone and the school still converge after the wipe");
        }

        private (SchoolTimetable Timetable, string Source) LoadTimetable()
        {
            if (!options.ForceGenerated && File.Exists(options.Timetable))
            {
                var loaded = new XhsttSchoolDataSource(options.Timetable).Load();
                return (loaded, $"real timetable: {Relative(options.Timetable)} (XHSTT, first solution group)");
            }

            var why = options.ForceGenerated ? "--generated was given" : $"{Relative(options.Timetable)} was NOT found";
            return (GeneratedSchool.Create(),
                $"NOTE: {why}: using a GENERATED school of the same shape as ES-SS-08 (66 teachers, 21 classes, 4 rooms, 5 days × 7 periods of 55′), not the real timetable");
        }

        private async Task StartRelayAsync(CancellationToken ct)
        {
            var relayOptions = new RelayOptions
            {
                DataDirectory = Path.Combine(options.DataDirectory, "relay"),
                Store = options.Postgres ? RelayStoreKind.Postgres : RelayStoreKind.Embedded,
                ConnectionString = options.Postgres ? await PostgresConnectionAsync(ct).ConfigureAwait(false) : null,
                RateLimitBurst = 10_000,
                RateLimitPerSecond = 10_000,
            };
            relayOptions.Urls.Add("https://127.0.0.1:0");
            foreach (var account in _accounts)
            {
                var key = _keys.KeyFor(account.Account);
                relayOptions.Schools.Add(new SchoolRegistration(account.Account.Value, key.Replica.Value, Convert.ToBase64String(key.PublicKey.AsSpan())));
            }

            _store = RelayHost.CreateStore(relayOptions);
            var store = _store;
            relayOptions.StoreFactory = _ => store;
            var builder = RelayHost.CreateBuilder(relayOptions);
            builder.Logging.ClearProviders();
            _relay = RelayHost.Build(builder);
            await _relay.StartAsync(ct).ConfigureAwait(false);
            _relayAddress = new Uri(_relay.Urls.First());
            _fingerprint = _relay.Services.GetRequiredService<RelayCertificate>().Fingerprint;
        }

        private async Task<string> PostgresConnectionAsync(CancellationToken ct)
        {
            var fromEnv = Environment.GetEnvironmentVariable("IMIKELGO_POSTGRES");
            if (!string.IsNullOrWhiteSpace(fromEnv))
            {
                Line("PostgreSQL: connection from IMIKELGO_POSTGRES");
                return fromEnv;
            }

            Line("PostgreSQL: IMIKELGO_POSTGRES is not set, starting a throwaway cluster with scripts/pg-start.sh");
            var start = new ProcessStartInfo(Path.Combine(options.RepositoryRoot, "scripts", "pg-start.sh"))
            {
                RedirectStandardOutput = true,
                WorkingDirectory = options.RepositoryRoot,
            };
            using var process = Process.Start(start) ?? throw new ExpectationFailedException("scripts/pg-start.sh could not be started");
            var text = await process.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false);
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
            var last = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
            if (process.ExitCode != 0 || string.IsNullOrWhiteSpace(last))
            {
                throw new ExpectationFailedException($"scripts/pg-start.sh failed (exit {process.ExitCode}); set IMIKELGO_POSTGRES to a PostgreSQL connection string");
            }

            return last.Trim();
        }

        private void ConnectSchool(SchoolAccount account)
        {
            var pkcs8 = _keys.KeyFor(account.Account).ExportPkcs8();
            try
            {
                account.Signer = EcdsaRequestSigner.FromPkcs8(pkcs8);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pkcs8);
            }

            account.Relay = RelayClient.Create(RelayClientOptions(), account.Signer);
            account.Sync = new SchoolSyncReplica(account.Replica, account.Encryption, account.DeviceKeys);
            account.Agent = new SyncAgent(account.Relay, account.Sync);
        }

        private RelayClientOptions RelayClientOptions() => new()
        {
            BaseAddress = _relayAddress!,
            PinnedCertificateSha256 = _fingerprint,
            RetryBaseDelay = TimeSpan.FromMilliseconds(20),
            MaxRetries = 1,
        };

        private async Task<TeacherDevice> OpenDeviceAsync(SchoolAccount account, string label, CancellationToken ct)
        {
            var device = await TeacherDevice.OpenAsync(new TeacherDeviceOptions
            {
                DataDirectory = DeviceFolder(label),
                Pbkdf2Iterations = DemoPbkdf2Iterations,
                DeviceLabel = $"{account.Teacher.Name} {label}",
                Enrollment = new DelegateEnrollmentChannel(SchoolEnrollAsync),
                ConfigureRelay = o =>
                {
                    o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                    o.MaxRetries = 1;
                },
            }, ct).ConfigureAwait(false);
            _devices.Add(device);
            return device;
        }

        private async Task<TeacherDevice> EnrollAsync(SchoolAccount account, string label, CancellationToken ct)
        {
            var device = await OpenDeviceAsync(account, label, ct).ConfigureAwait(false);
            var id = await device.EnrollAsync(new EnrollmentInput(account.EnrollmentUri, account.License.Value, account.Password, Pin), ct).ConfigureAwait(false);
            Expect(device.State == DeviceState.Unlocked, $"{label} is enrolled and unlocked");
            Line($"{label,-7} of {account.Teacher.Name}: device {id.Value[..12]}…, encrypted vault {Relative(VaultFiles(label).OrderBy(f => f.Length).FirstOrDefault() ?? DeviceFolder(label))}");
            return device;
        }

        /// <summary>
        /// The school's enrollment decision, in-process (simplified: the relay hand-off of the sealed request is not used
        /// yet): checks license and password, registers the device at the relay, enrolls it in the account's signed log.
        /// </summary>
        private async Task<EnrollmentGrant> SchoolEnrollAsync(EnrollmentRequest request, CancellationToken ct)
        {
            var account = _accounts.FirstOrDefault(x => x.License.Value == request.LicenseKey);
            if (account is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(request.SchoolPassword), Encoding.UTF8.GetBytes(account.Password)))
            {
                throw new EnrollmentRefusedException("wrong license key or school password");
            }

            await account.Relay!.RegisterDeviceAsync(account.Account.Value, new DeviceRegistration(request.Device.Value, Convert.ToBase64String(request.SigningKey.AsSpan())), ct).ConfigureAwait(false);
            var recorded = _publisher!.EnrollDevice(account.Account, request.Device, request.Label, request.SigningKey);
            Expect(recorded.Succeeded, $"the school enrolls the device in the log ({recorded.Error})");
            var peers = account.Sync!.Recipients();
            account.DeviceKeys[request.Device] = request.EncryptionKey;
            return new EnrollmentGrant(account.Account.Value, _relayAddress!, _fingerprint, peers);
        }

        /// <summary>Rounds of school → devices until nothing moves.</summary>
        private static async Task ConvergeAsync(SchoolAccount account, TeacherDevice[] devices, CancellationToken ct)
        {
            for (var round = 0; round < 6; round++)
            {
                var moved = (await account.Agent!.SyncAsync(null, ct).ConfigureAwait(false)).EventsReceived;
                foreach (var device in devices)
                {
                    var result = await device.SyncAsync(null, ct).ConfigureAwait(false);
                    Expect(result.Refused.Count == 0, $"sync refused nothing ({string.Join("; ", result.Refused)})");
                    moved += result.Received + result.Sent;
                }

                if (moved == 0 && round > 0)
                {
                    return;
                }
            }
        }

        private async Task TamperAsync(SchoolAccount account, TeacherDevice phone, CancellationToken ct)
        {
            var events = account.Replica.Ledger.Export(account.Account).Where(e => e.Event.Replica == account.Replica.Id).TakeLast(3).ToList();
            using var auditor = EncryptionKeyPair.Generate();
            var sealedBundle = EventBundles.Seal(account.Replica.Id, events, [auditor.PublicKey]);
            var bytes = sealedBundle.Bytes.ToArray();
            Expect(EventBundles.TryOpen(bytes, account.Account, auditor, seen: null, out var opened, out var error), $"the intact bundle opens ({error})");
            Line($"intact bundle: {bytes.Length} bytes, opens to {opened!.Count} signed events");
            var at = bytes.Length / 2;
            bytes[at] ^= 0x01;
            Line($"flip one bit of byte {at}: 0x{bytes[at] ^ 0x01:x2} → 0x{bytes[at]:x2}");
            Expect(!EventBundles.TryOpen(bytes, account.Account, auditor, seen: null, out _, out error), "the tampered bundle is refused");
            Line($"refused locally: {error}");

            // The same through the relay: the school pushes a tampered bundle sealed for the phone.
            var recipients = account.Sync!.Recipients();
            var forPhone = EventBundles.Seal(account.Replica.Id, events, [recipients[phone.DeviceId!.Value]]).Bytes.ToArray();
            forPhone[forPhone.Length / 2] ^= 0x01;
            var pushed = await account.Relay!.PushAsync(account.Account.Value, forPhone, ct).ConfigureAwait(false);
            Line($"school pushes a tampered bundle sealed for the phone through the relay ({forPhone.Length} bytes, relay position {pushed.Position})");
            var result = await phone.SyncAsync(null, ct).ConfigureAwait(false);
            Expect(result.Refused.Count >= 1 && result.Received == 0, $"the phone refuses the tampered bundle (refused {result.Refused.Count}, received {result.Received})");
            Line($"phone refuses it, nothing applied: {result.Refused[0]}");
            var after = await phone.SyncAsync(null, ct).ConfigureAwait(false);
            Expect(after.Refused.Count == 0, "the next sync carries on past the refused bundle");
            Expect(DigestOf(phone) == account.Replica.Calendar.Digest(), "the phone's calendar is unchanged by the tampered bundle");
            Line($"next sync is clean; phone digest unchanged ({DigestOf(phone)[..12]})");
        }

        private static (DateOnly Date, TimeOnly Start) FreeSlot(TeacherDevice device, WeekLesson lesson)
        {
            var monday = lesson.Date.AddDays(-((int)lesson.Date.DayOfWeek + 6) % 7);
            foreach (var offset in new[] { 4, 3, 2, 1, 0 })
            {
                foreach (var start in new[] { new TimeOnly(16, 0), new TimeOnly(17, 0), new TimeOnly(18, 0) })
                {
                    var date = monday.AddDays(offset);
                    if (date != lesson.Date && device.CheckMove(lesson.Occurrence, date, start, lesson.DurationMinutes, lesson.Room).Count == 0)
                    {
                        return (date, start);
                    }
                }
            }

            throw new ExpectationFailedException($"no free slot to move {lesson.Occurrence} to");
        }

        private static DateOnly FirstFullWeek(SchoolTerm term)
        {
            var monday = term.Start.AddDays((8 - (int)term.Start.DayOfWeek) % 7);
            return monday == term.Start ? monday.AddDays(7) : monday;
        }

        /// <summary>
        /// The engine's calendar digest of a device's replica. <see cref="TeacherDevice"/> does not expose it yet, so
        /// the QuickStart reads it by reflection (simplification; to be replaced by a public property).
        /// </summary>
        private static string DigestOf(TeacherDevice device) =>
            ReplicaField?.GetValue(device) is DeviceReplica replica
                ? replica.Replica.Calendar.Digest()
                : throw new ExpectationFailedException("the device's replica is not readable (TeacherDevice._replica changed?)");

        private string DeviceFolder(string label) => Path.Combine(options.DataDirectory, "devices", label);

        private List<string> VaultFiles(string label) =>
            Directory.Exists(DeviceFolder(label)) ? [.. Directory.EnumerateFiles(DeviceFolder(label), "vault.db*", SearchOption.AllDirectories)] : [];

        private static string Describe(WeekLesson lesson) => $"{lesson.Subject} {lesson.Date:ddd yyyy-MM-dd} {lesson.Start:HH\\:mm}";

        private void Changed(ChangeResult result, string what)
        {
            Expect(result.Succeeded, $"{what}: {result.Error}");
            Line(what + (result.Clashes.Count > 0 ? $" (warns of {result.Clashes.Count} clash(es))" : ""));
        }

        private string Relative(string path)
        {
            var relative = Path.GetRelativePath(options.RepositoryRoot, path);
            return relative.StartsWith("..", StringComparison.Ordinal) && !relative.StartsWith("../shared", StringComparison.Ordinal) ? path : relative;
        }

        private static void Expect(bool condition, string what)
        {
            if (!condition)
            {
                throw new ExpectationFailedException(what);
            }
        }

        private void Step(string title)
        {
            _step++;
            output.WriteLine();
            output.WriteLine($"== {_step}. {title}  [{_clock.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s]");
        }

        private void Line(string text) => output.WriteLine("   " + text);

        private void Say(string text) => output.WriteLine(text);

        public async ValueTask DisposeAsync()
        {
            foreach (var device in _devices)
            {
                await device.DisposeAsync().ConfigureAwait(false);
            }

            foreach (var account in _accounts)
            {
                account.Dispose();
            }

            if (_relay is not null)
            {
                await _relay.StopAsync().ConfigureAwait(false);
                await _relay.DisposeAsync().ConfigureAwait(false);
            }

            if (_store is IAsyncDisposable asyncStore)
            {
                await asyncStore.DisposeAsync().ConfigureAwait(false);
            }
            else if (_store is IDisposable store)
            {
                store.Dispose();
            }

            _keys.Dispose();
        }
    }
}
