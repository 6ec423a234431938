using System.Diagnostics;
using System.Globalization;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay;
using IMikelGo.School.Connector;
using IMikelGo.School.Model;
using IMikelGo.Sealing;
using IMikelGo.Store.Marten;
using IMikelGo.Store.Marten.School;
using IMikelGo.Store.Sqlite;
using IMikelGo.Store.Sqlite.School;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace IMikelGo.Samples.QuickStart;

/// <summary>An expectation of the QuickStart did not hold (it is also a smoke test).</summary>
public sealed class ExpectationFailedException(string message) : Exception(message);

/// <summary>
/// The whole system on one machine: relay, school connector with a real timetable, three teacher devices enrolled
/// through the relay, sync, conflict, convergence, tamper refusal, wrong-PIN wipe and remote wipe. Exit 0 when every
/// expectation holds.
/// </summary>
public static class QuickStart
{
    /// <summary>
    /// PBKDF2 iterations for the demo vaults and the school passwords (the production defaults are ≈500,000 and 600,000,
    /// ≈250 ms per unlock or check).
    /// </summary>
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
        if (UsageProblem(args) is { } problem)
        {
            await output.WriteLineAsync($"error: {problem}\n{Usage}").ConfigureAwait(false);
            return 2;
        }

        var root = RepositoryRoot();
        var options = new RunOptions(
            Postgres: args.Contains("--postgres"),
            DataDirectory: Path.GetFullPath(ValueOf(args, "--data") ?? Path.Combine(root, ".cache", "quickstart")),
            Timetable: ValueOf(args, "--timetable") ?? Path.GetFullPath(Path.Combine(root, "..", "shared", "data", "xhstt", "ES-SS-08-SpainSchool.xml")),
            ForceGenerated: args.Contains("--generated"),
            RepositoryRoot: root);
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await output.WriteLineAsync(Usage).ConfigureAwait(false);
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

    private const string Usage = "usage: QuickStart [--postgres] [--data DIR] [--timetable FILE.xml] [--generated]";

    // A mistyped flag ("--postgress") must not quietly run the default demo.
    private static string? UsageProblem(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--postgres" or "--generated" or "--help" or "-h":
                    break;
                case "--data" or "--timetable":
                    if (i + 1 >= args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                    {
                        return $"{args[i]} needs a value";
                    }

                    i++;
                    break;
                default:
                    return $"unknown argument '{args[i]}'";
            }
        }

        return null;
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

    /// <summary>A teacher the QuickStart follows: the account and the license the school issued.</summary>
    private sealed record Teacher(AccountId Account, string Name, IssuedLicense License);

    private sealed class Run(RunOptions options, TextWriter output) : IAsyncDisposable
    {
        private const string Pin = "4711";
        private const string RelaySchema = "imikelgo_quickstart_relay";
        private const string SchoolSchema = "imikelgo_quickstart_school";
        private readonly List<TeacherDevice> _devices = [];
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly SchoolConnectorSettings _settings = new()
        {
            Pbkdf2Iterations = DemoPbkdf2Iterations,
            ConfigureRelay = o =>
            {
                o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                o.MaxRetries = 1;
            },
        };

        private ISchoolConnectorStore? _schoolStore;
        private SchoolConnector? _school;
        private WebApplication? _relay;
        private IMailboxStore? _store;
        private string? _postgres;
        private int _step;

        private SchoolConnector School => _school!;

        public async Task ExecuteAsync(CancellationToken ct)
        {
            if (Directory.Exists(options.DataDirectory))
            {
                Directory.Delete(options.DataDirectory, recursive: true);
            }

            Directory.CreateDirectory(options.DataDirectory);
            Say($"iMikelGo QuickStart — relay, school connector and three teacher devices on this machine (data: {Relative(options.DataDirectory)})");

            // 1. School connector: a new school, the import, the publish.
            Step(options.Postgres
                ? "the school connector (store: PostgreSQL via Marten) imports the timetable and publishes one signed log per teacher"
                : "the school connector (store: embedded SQLite) imports the timetable and publishes one signed log per teacher");
            if (options.Postgres)
            {
                _postgres = await PostgresConnectionAsync(ct).ConfigureAwait(false);
                await DropSchemasAsync(_postgres, ct).ConfigureAwait(false);
                _schoolStore = await MartenSchoolConnectorStore.OpenAsync(_postgres, SchoolSchema, ct).ConfigureAwait(false);
                Line($"school store: PostgreSQL schema {SchoolSchema} (emptied for this run)");
            }
            else
            {
                var path = Path.Combine(options.DataDirectory, "school", "school.db");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                _schoolStore = await SqliteSchoolConnectorStore.OpenAsync(path, ct).ConfigureAwait(false);
                Line($"school store: {Relative(path)}");
            }

            var (timetable, source) = await ImportAsync(ct).ConfigureAwait(false);
            Line(source);
            Line($"{timetable.School}: {timetable.Teachers.Length} teachers, {timetable.Groups.Length} classes, {timetable.Rooms.Length} rooms, {timetable.Lessons.Length} weekly lessons, term {timetable.Term.Start:yyyy-MM-dd}…{timetable.Term.End:yyyy-MM-dd}");
            var published = await School.PublishAsync(null, ct).ConfigureAwait(false);
            Expect(published.Accounts == timetable.Teachers.Length, $"the publish opened one account per teacher ({published.Accounts} of {timetable.Teachers.Length})");
            Line($"school {School.SchoolId} (root certificate {School.RootFingerprint[..16]}…): published {published.Events} school-signed events into {published.Accounts} teacher accounts: {string.Join(", ", published.ByType.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Value} {t.Key}"))}");
            var chosen = timetable.Teachers
                .Select(t => (Teacher: t, Lessons: timetable.LessonsOf(t.Account).Count()))
                .OrderByDescending(t => t.Lessons).ThenBy(t => t.Teacher.Account.Value, StringComparer.Ordinal)
                .Take(2).ToList();
            Expect(chosen.Count == 2 && chosen.All(c => c.Lessons >= 3), "the timetable has two teachers with at least 3 weekly lessons");
            foreach (var (teacher, count) in chosen)
            {
                Line($"teacher {teacher.Name} (account {teacher.Account}): {count} weekly lessons, log of {School.ReplicaOf(teacher.Account)!.Ledger.Applied.Count()} events");
            }

            // 2. Relay.
            Step(options.Postgres
                ? "the relay starts in-process: HTTPS on a free 127.0.0.1 port, generated pinned certificate, PostgreSQL (Marten) mailbox store"
                : "the relay starts in-process: HTTPS on a free 127.0.0.1 port, generated pinned certificate, embedded SQLite mailbox store");
            var registrations = School.RelayRegistrations(School.Accounts);
            await StartRelayAsync(registrations, ct).ConfigureAwait(false);
            Line($"relay {_settings.RelayAddress}, certificate SHA-256 {_settings.RelayCertificateSha256![..16]}… (pinned by the connector and every device)");
            Line($"store: {(options.Postgres ? $"PostgreSQL schema {RelaySchema}" : Relative(Path.Combine(options.DataDirectory, "relay", "relay.db")))}; {registrations.Count} school callers registered from connector.RelayRegistrations: one per account + the enrollment caller '{School.SchoolId}'");
            await School.PublishCertificatesAsync(ct).ConfigureAwait(false);
            Line("the connector publishes the school root and enrollment certificates at the relay (signed by its enrollment caller)");

            // 3. Licenses.
            Step("the school issues licenses: a license key, a school password and an enrollment QR code per teacher");
            var teachers = new List<Teacher>();
            foreach (var (teacher, _) in chosen)
            {
                var license = await School.IssueLicenseAsync(teacher.Account, ct).ConfigureAwait(false);
                Expect(license.Uri.RelayPin == _settings.RelayCertificateSha256, "the enrollment code pins the relay certificate");
                teachers.Add(new Teacher(teacher.Account, teacher.Name, license));
                Line($"{teacher.Name}: license {license.License.Value}, password {license.Password} (only its hash is stored)");
            }

            var (a, b) = (teachers[0], teachers[1]);
            Line($"enrollment QR code of {a.Name} (school root and relay certificate pinned):");
            Line($"  {a.License.Uri}");
            foreach (var qrLine in a.License.QrTerminal().Split('\n'))
            {
                output.WriteLine("    " + qrLine.TrimEnd('\r'));
            }

            // 4. Enrollment through the relay hand-off.
            Step($"three devices enroll through the relay hand-off (license + school password + new PIN); PBKDF2 lowered to {DemoPbkdf2Iterations:N0} iterations for the demo vaults and school passwords");
            Line("each device fetches the school's certificates from the relay, checks the root against the QR code, seals its request to the school; the connector pulls, checks the password, answers");
            var phone = await EnrollAsync(a, "phone", ct).ConfigureAwait(false);
            var laptop = await EnrollAsync(a, "laptop", ct).ConfigureAwait(false);
            var tablet = await EnrollAsync(b, "tablet", ct).ConfigureAwait(false);
            var stranger = await OpenDeviceAsync(b, "stranger", ct).ConfigureAwait(false);
            try
            {
                await WhileSchoolAnswersAsync(stranger.EnrollAsync(new EnrollmentInput(b.License.Uri.ToString(), b.License.License.Value, "wrong-password", Pin), ct), ct).ConfigureAwait(false);
                throw new ExpectationFailedException("an enrollment with a wrong school password was accepted");
            }
            catch (EnrollmentRefusedException e)
            {
                Expect(e.Reason == EnrollmentRefusalReason.WrongPassword, $"the wrong password is named as the reason ({e.Reason})");
                Line($"a fourth device with the wrong school password is refused ({e.Reason}): {e.Message}");
            }

            var enrolled = School.Devices().Where(d => d.Account == a.Account || d.Account == b.Account).ToList();
            Expect(enrolled.Count == 3 && enrolled.All(d => d.HasEncryptionKey), $"the school lists the three devices with their keys ({enrolled.Count})");
            Expect(enrolled.All(d => d.Label.EndsWith(" phone", StringComparison.Ordinal) || d.Label.EndsWith(" laptop", StringComparison.Ordinal) || d.Label.EndsWith(" tablet", StringComparison.Ordinal)),
                $"the school lists each device under the name it sealed with the password ({string.Join(", ", enrolled.Select(d => d.Label))})");
            Line($"school: {enrolled.Count} devices in the signed logs (DeviceEnrolled), each registered at the relay in its own account, listed by the names they sealed with the password (the relay saw none): {string.Join(", ", enrolled.Select(d => $"\"{d.Label}\""))}");

            // 5. First sync.
            Step("first sync: the connector seals each account's log for its devices' keys (HPKE) and every device receives its teacher's timetable");
            var first = await School.SyncAsync(null, null, ct).ConfigureAwait(false);
            Expect(first.Failures.Count == 0, $"the school's sync had no failures ({string.Join("; ", first.Failures)})");
            Line($"school: synced {first.Accounts} accounts, sent {first.EventsSent} events (only accounts with enrolled devices have recipients)");
            await ConvergeAsync(a, [phone, laptop], ct).ConfigureAwait(false);
            await ConvergeAsync(b, [tablet], ct).ConfigureAwait(false);
            var week = FirstFullWeek(timetable.Term);
            foreach (var (device, name) in new[] { (phone, "phone"), (laptop, "laptop"), (tablet, "tablet") })
            {
                Line($"{name,-7} week of {week:yyyy-MM-dd}: {device.Week(week).Count} lessons");
            }

            var lessons = phone.Week(week).OrderBy(l => l.Date).ThenBy(l => l.Start).ToList();
            Expect(lessons.Count >= 3 && lessons.Count == laptop.Week(week).Count, $"both devices of {a.Name} show the same week with ≥3 lessons");
            Expect(tablet.Week(week).Count > 0, $"the tablet shows {b.Name}'s week");
            foreach (var lesson in lessons.Take(4))
            {
                Line($"  {lesson.Date:ddd yyyy-MM-dd} {lesson.Start:HH\\:mm} {lesson.DurationMinutes}′ {lesson.Subject,-24} {lesson.Room,-10} {string.Join(", ", lesson.Students.Select(s => s.Name))}");
            }

            // 6. Offline changes.
            Step($"offline on both devices of {a.Name} (no sync): an absence, a held note, and a conflicting pair — cancel vs move of the same lesson");
            var withStudents = lessons.Where(l => l.Students.Count > 0).ToList();
            Expect(withStudents.Count > 0, "a lesson of the week has students");
            var firstLesson = withStudents[0];
            var others = lessons.Where(l => l.Occurrence != firstLesson.Occurrence).ToList();
            var (contested, third) = (others[0], others[1]);
            var student = firstLesson.Students[0];
            Changed(await phone.RecordAbsenceAsync(firstLesson.Occurrence, student.Id, excused: true, "krank", ct).ConfigureAwait(false),
                $"phone : {student.Name} absent (excused) at {Describe(firstLesson)}");
            Changed(await phone.CancelAsync(contested.Occurrence, CancellationReason.TeacherIll, makeUpOwed: true, "Lehrkraft krank", ct).ConfigureAwait(false),
                $"phone : CANCEL {Describe(contested)} (teacher ill, make-up owed)");
            var (moveDate, moveStart) = FreeSlot(laptop, contested);
            Changed(await laptop.MoveAsync(contested.Occurrence, moveDate, moveStart, contested.DurationMinutes, contested.Room, ct).ConfigureAwait(false),
                $"laptop: MOVE   {Describe(contested)} → {moveDate:ddd yyyy-MM-dd} {moveStart:HH\\:mm}");
            Changed(await laptop.MarkHeldAsync(third.Occurrence, "Tema 3 repasado", ct).ConfigureAwait(false),
                $"laptop: held   {Describe(third)} with a note");
            Line($"pending: phone {await phone.PendingCountAsync(ct).ConfigureAwait(false)}, laptop {await laptop.PendingCountAsync(ct).ConfigureAwait(false)} events");

            // 7. Sync everyone.
            Step("everyone syncs: the school connector and the devices exchange sealed bundles through the relay");
            foreach (var (device, name) in new[] { (phone, "phone"), (laptop, "laptop") })
            {
                var r = await device.SyncAsync(null, ct).ConfigureAwait(false);
                Expect(r.Refused.Count == 0, $"{name} sync refused nothing ({string.Join("; ", r.Refused)})");
                Line($"{name,-7} sent {r.Sent}, received {r.Received}, new conflicts {r.NewConflicts}");
            }

            var schoolSync = await School.SyncAsync(a.Account, null, ct).ConfigureAwait(false);
            Expect(schoolSync.Failures.Count == 0 && schoolSync.EventsReceived >= 4, $"the school received the four teacher events ({schoolSync.EventsReceived}; {string.Join("; ", schoolSync.Failures)})");
            Line($"school  received {schoolSync.EventsReceived} teacher events, stored exactly once");
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
            var absent = laptop.Week(week).Single(l => l.Occurrence == firstLesson.Occurrence).Students.Single(s => s.Id == student.Id);
            Expect(absent.Absent == true, "the laptop shows the absence recorded on the phone");
            Line($"the laptop shows the phone's absence: {absent.Name} excused");
            var report = School.Report();
            var absences = report.Absences.Where(x => x.Account == a.Account.Value).Sum(x => x.Absences);
            var cancellations = report.Cancellations.Where(x => x.Account == a.Account.Value).Sum(x => x.Cancellations);
            Expect(absences == 1 && cancellations == 1, $"the school's report has the absence and the cancellation (absences {absences}, cancellations {cancellations})");
            Line($"the school's report (payroll and fees): {a.Account} 1 absence, 1 cancellation with make-up owed; {report.Reschedules.Count(x => x.Account == a.Account.Value && !x.BySchool)} reschedule by a teacher (overruled, still logged)");

            // 8. Convergence.
            Step("convergence: every replica of an account computes the same calendar digest");
            foreach (var (teacher, devices) in new[] { (a, new[] { (phone, "phone"), (laptop, "laptop") }), (b, new[] { (tablet, "tablet") }) })
            {
                var school = SchoolDigest(teacher);
                Line($"{teacher.Account}: school  {school}");
                foreach (var (device, name) in devices)
                {
                    var digest = device.Digest ?? "";
                    Line($"{teacher.Account}: {name,-7} {digest}");
                    Expect(digest == school, $"{name} of {teacher.Account} converged with the school (digest {digest[..Math.Min(12, digest.Length)]} vs {school[..12]})");
                }
            }

            Line("all replicas converged.");

            // 9. Tamper.
            Step("tamper: one flipped bit in a sealed bundle is refused, locally and when a compromised relay serves it");
            await TamperAsync(a, phone, ct).ConfigureAwait(false);

            // 10. Wrong PIN.
            Step($"three wrong PINs on {b.Name}'s tablet: the vault is wiped and the app falls back to demo mode");
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
            Step($"remote wipe: the school deactivates {a.Name}'s laptop (connector.WipeAsync); at its next sync it erases its data and acknowledges");
            var laptopId = laptop.DeviceId!.Value;
            var revoked = (await School.WipeAsync(a.Account, laptopId, "lost on the train", ct).ConfigureAwait(false)).Revoked;
            Expect(revoked.Count == 1 && revoked[0] == laptopId, "the connector revoked exactly the laptop");
            Line($"school: revoked {laptopId.Value[..12]}… in the signed log (DeviceRevoked) and at the relay");
            var wiped = await laptop.SyncAsync(null, ct).ConfigureAwait(false);
            Expect(wiped.Wiped && laptop.State == DeviceState.Demo && laptop.LastWipe?.Reason == WipeReason.RemoteDeactivation, $"the laptop wiped itself (wiped {wiped.Wiped}, state {laptop.State})");
            Expect(VaultFiles("laptop").Count == 0, "no vault file is left in the laptop's folder");
            var acknowledged = await _store!.HasWipedAsync(a.Account.Value, laptopId.Value, ct).ConfigureAwait(false);
            Expect(acknowledged, "the relay has the laptop's signed wipe acknowledgement");
            Line($"laptop: wiped ({laptop.LastWipe!.Reason}), state {laptop.State}, vault files left: 0; relay has its signed wipe acknowledgement: {acknowledged}");
            await ConvergeAsync(a, [phone], ct).ConfigureAwait(false);
            var seen = phone.Devices().Single(d => d.Id == laptopId);
            Expect(seen.Revoked, "the phone sees the laptop revoked");
            Expect(School.Devices().Single(d => d.Device == laptopId).Revoked, "the school lists the laptop as revoked");
            Line($"phone: sees the laptop revoked (\"{seen.RevocationReason}\") and keeps working; digest {phone.Digest![..12]} = school {SchoolDigest(a)[..12]}");
            Expect(phone.Digest == SchoolDigest(a), "the phone and the school still converge after the wipe");
        }

        private async Task<(SchoolTimetable Timetable, string Source)> ImportAsync(CancellationToken ct)
        {
            if (!options.ForceGenerated && File.Exists(options.Timetable))
            {
                _school = await SchoolConnector.InitAsync(_schoolStore!, "es-ss-08", _settings, ct).ConfigureAwait(false);
                var imported = await School.ImportFileAsync(options.Timetable, null, ct).ConfigureAwait(false);
                return (imported, $"real timetable: {Relative(options.Timetable)} (XHSTT, first solution group), imported with connector.ImportFileAsync");
            }

            var why = options.ForceGenerated ? "--generated was given" : $"{Relative(options.Timetable)} was NOT found";
            _school = await SchoolConnector.InitAsync(_schoolStore!, "generated-school", _settings, ct).ConfigureAwait(false);
            var generated = await School.ImportAsync("json", GeneratedSchool.Json(), null, ct).ConfigureAwait(false);
            return (generated,
                $"NOTE: {why}: using a GENERATED school of the same shape as ES-SS-08 (66 teachers, 21 classes, 4 special rooms plus a home room per class, 5 days × 7 periods of 55′), not the real timetable; imported as JSON");
        }

        private async Task StartRelayAsync(IReadOnlyList<(string Account, string Caller, string SigningKey)> registrations, CancellationToken ct)
        {
            var relayOptions = new RelayOptions
            {
                DataDirectory = Path.Combine(options.DataDirectory, "relay"),
                Store = options.Postgres ? RelayStoreKind.Postgres : RelayStoreKind.Embedded,
                ConnectionString = _postgres,
                RateLimitBurst = 10_000,
                RateLimitPerSecond = 10_000,
            };
            relayOptions.Urls.Add("https://127.0.0.1:0");
            foreach (var (account, caller, key) in registrations)
            {
                relayOptions.Schools.Add(new SchoolRegistration(account, caller, key));
            }

            _store = options.Postgres
                ? MartenMailboxStore.Create(new MartenMailboxOptions { ConnectionString = _postgres!, SchemaName = RelaySchema })
                : RelayHost.CreateStore(relayOptions);
            var store = _store;
            relayOptions.StoreFactory = _ => store;
            var builder = RelayHost.CreateBuilder(relayOptions);
            builder.Logging.ClearProviders();
            _relay = RelayHost.Build(builder);
            await _relay.StartAsync(ct).ConfigureAwait(false);
            _settings.RelayAddress = new Uri(_relay.Urls.First());
            _settings.RelayCertificateSha256 = _relay.Services.GetRequiredService<RelayCertificate>().Fingerprint;
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

        /// <summary>Every run starts from empty QuickStart schemas (the embedded stores start from an emptied folder).</summary>
        private static async Task DropSchemasAsync(string connectionString, CancellationToken ct)
        {
            await using var data = NpgsqlDataSource.Create(connectionString);
            await using var command = data.CreateCommand($"DROP SCHEMA IF EXISTS {RelaySchema} CASCADE; DROP SCHEMA IF EXISTS {SchoolSchema} CASCADE;");
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        private async Task<TeacherDevice> OpenDeviceAsync(Teacher teacher, string label, CancellationToken ct)
        {
            var device = await TeacherDevice.OpenAsync(new TeacherDeviceOptions
            {
                DataDirectory = DeviceFolder(label),
                Pbkdf2Iterations = DemoPbkdf2Iterations,
                DeviceLabel = $"{teacher.Name} {label}",
                ConfigureRelay = o =>
                {
                    o.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
                    o.MaxRetries = 1;
                },
                ConfigureRelayEnrollment = o =>
                {
                    o.FirstPollDelay = TimeSpan.FromMilliseconds(25);
                    o.MaxPollDelay = TimeSpan.FromMilliseconds(200);
                    o.Timeout = TimeSpan.FromSeconds(60);
                },
            }, ct).ConfigureAwait(false);
            _devices.Add(device);
            return device;
        }

        private async Task<TeacherDevice> EnrollAsync(Teacher teacher, string label, CancellationToken ct)
        {
            var device = await OpenDeviceAsync(teacher, label, ct).ConfigureAwait(false);
            var enrolling = device.EnrollAsync(new EnrollmentInput(teacher.License.Uri.ToString(), teacher.License.License.Value, teacher.License.Password, Pin), ct);
            var outcomes = await WhileSchoolAnswersAsync(enrolling, ct).ConfigureAwait(false);
            var id = await enrolling.ConfigureAwait(false);
            Expect(device.State == DeviceState.Unlocked && device.Account == teacher.Account.Value, $"{label} is enrolled in {teacher.Account} and unlocked");
            var approved = outcomes.SingleOrDefault(o => o.Approved && o.Device == id);
            Expect(approved is not null, $"the connector approved {label}");
            var peers = School.Devices().Count(d => d.Account == teacher.Account && d.Device != id);
            Line($"{label,-7} of {teacher.Name}: device {id.Value[..12]}… approved by the connector ({peers} peer key(s) in the answer), encrypted vault {Relative(VaultFiles(label).OrderBy(f => f.Length).FirstOrDefault() ?? DeviceFolder(label))}");
            return device;
        }

        /// <summary>The school connector's enrollment loop (as its host runs it) while a device waits for its answer.</summary>
        private async Task<List<EnrollmentOutcome>> WhileSchoolAnswersAsync(Task deviceWaiting, CancellationToken ct)
        {
            var outcomes = new List<EnrollmentOutcome>();
            while (!deviceWaiting.IsCompleted)
            {
                outcomes.AddRange(await School.ProcessEnrollmentsAsync(ct).ConfigureAwait(false));
                await Task.WhenAny(deviceWaiting, Task.Delay(25, ct)).ConfigureAwait(false);
            }

            await deviceWaiting.ConfigureAwait(false);
            return outcomes;
        }

        /// <summary>Rounds of school → devices until nothing moves.</summary>
        private async Task ConvergeAsync(Teacher teacher, TeacherDevice[] devices, CancellationToken ct)
        {
            for (var round = 0; round < 6; round++)
            {
                var school = await School.SyncAsync(teacher.Account, null, ct).ConfigureAwait(false);
                Expect(school.Failures.Count == 0, $"the school's sync of {teacher.Account} failed: {string.Join("; ", school.Failures)}");
                var moved = school.EventsReceived;
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

        private string SchoolDigest(Teacher teacher) => School.ReplicaOf(teacher.Account)!.Calendar.Digest();

        private async Task TamperAsync(Teacher teacher, TeacherDevice phone, CancellationToken ct)
        {
            var replica = School.ReplicaOf(teacher.Account)!;
            var events = replica.Ledger.Export(teacher.Account).Where(e => e.Event.Replica == replica.Id).TakeLast(3).ToList();
            using var auditor = EncryptionKeyPair.Generate();
            var bytes = EventBundles.Seal(replica.Id, events, [auditor.PublicKey]).Bytes.ToArray();
            Expect(EventBundles.TryOpen(bytes, teacher.Account, auditor, seen: null, out var opened, out var error), $"the intact bundle opens ({error})");
            Line($"intact bundle: {bytes.Length} bytes, opens to {opened!.Count} school-signed events");
            var at = bytes.Length / 2;
            bytes[at] ^= 0x01;
            Line($"flip one bit of byte {at}: 0x{bytes[at] ^ 0x01:x2} → 0x{bytes[at]:x2}");
            Expect(!EventBundles.TryOpen(bytes, teacher.Account, auditor, seen: null, out _, out error), "the tampered bundle is refused");
            Line($"refused locally: {error}");

            // A compromised relay writes a tampered bundle into the mailbox: school events sealed for the phone's published key.
            var keys = replica.Ledger.RecipientKeys(teacher.Account);
            RecipientPublicKey? phoneKey = null;
            Expect(keys.TryGetValue(phone.DeviceId!.Value, out var encoded) && RecipientPublicKey.TryParse(encoded.AsSpan(), out phoneKey, out _),
                "the school knows the phone's published encryption key");
            var forPhone = EventBundles.Seal(replica.Id, events, [phoneKey!]);
            var tampered = forPhone.Bytes.ToArray();
            tampered[tampered.Length / 2] ^= 0x01;
            var stored = await _store!.AppendAsync(teacher.Account.Value, forPhone.BundleId, replica.Id.Value, tampered, ct).ConfigureAwait(false);
            Line($"the relay's store now serves a tampered bundle sealed for the phone ({tampered.Length} bytes, mailbox position {stored.Position})");
            var before = phone.Digest;
            var result = await phone.SyncAsync(null, ct).ConfigureAwait(false);
            Expect(result.Refused.Count >= 1 && result.Received == 0, $"the phone refuses the tampered bundle (refused {result.Refused.Count}, received {result.Received})");
            Line($"phone refuses it, nothing applied: {result.Refused[0]}");
            var after = await phone.SyncAsync(null, ct).ConfigureAwait(false);
            Expect(after.Refused.Count == 0, "the next sync carries on past the refused bundle");
            Expect(phone.Digest == before && phone.Digest == SchoolDigest(teacher), "the phone's calendar is unchanged by the tampered bundle");
            Line($"next sync is clean; phone digest unchanged ({phone.Digest![..12]})");
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

            if (_school is not null)
            {
                await _school.DisposeAsync().ConfigureAwait(false);
            }

            if (_schoolStore is not null)
            {
                await _schoolStore.DisposeAsync().ConfigureAwait(false);
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
        }
    }
}
