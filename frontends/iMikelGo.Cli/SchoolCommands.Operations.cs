using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using IMikelGo.Engine;

namespace IMikelGo.Cli;

internal static partial class SchoolCommands
{
    private static Command Import(TextWriter output, TextWriter error)
    {
        var file = new Argument<FileInfo>("FILE") { Description = "An XHSTT archive (.xml) or the JSON import format (any other extension; docs/school-import.md)." };
        var solution = new Option<string?>("--solution") { Description = "The XHSTT solution group (default the first)." };
        var command = new Command("import", "Read a timetable and keep it for 'publish' (nothing is published yet). Inconsistent input is refused with the element named; then nothing is stored.") { file, solution };
        var common = AddCommon(command);
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(file)!;
            if (!path.Exists)
            {
                await error.WriteLineAsync($"error: cannot read {path}: file not found").ConfigureAwait(false);
                return LogCheck.ExitUsage;
            }

            var json = parse.GetValue(common.AsJson);
            return await WithSchoolAsync(parse, common, error, null, ct, async (school, _, _) =>
            {
                var timetable = await WithStatusAsync(error, json, $"importing {path.Name}", () => school.ImportFileAsync(path.FullName, parse.GetValue(solution), ct)).ConfigureAwait(false);
                var term = string.Create(CultureInfo.InvariantCulture, $"{timetable.Term.Start:yyyy-MM-dd}..{timetable.Term.End:yyyy-MM-dd}");
                await WriteAsync(output, json, new
                {
                    file = path.FullName, solution = parse.GetValue(solution), school = timetable.School, teachers = timetable.Teachers.Length,
                    groups = timetable.Groups.Length, rooms = timetable.Rooms.Length, lessons = timetable.Lessons.Length, term, import = school.PendingImport,
                },
                    $"imported {path.Name}: {timetable.School}, {timetable.Teachers.Length} teachers (accounts), {timetable.Groups.Length} groups, {timetable.Rooms.Length} rooms, " +
                    $"{timetable.Lessons.Length} weekly lessons, term {term}; nothing is published yet: run 'imikelgo school publish'").ConfigureAwait(false);
                return 0;
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Publish(TextWriter output, TextWriter error)
    {
        var effective = new Option<string?>("--effective-from")
        {
            Description = "The first day (YYYY-MM-DD) a changed lesson slot applies to; default today. Earlier lessons, and lessons a teacher already cancelled, moved or marked held, stay as they are.",
        };
        var command = new Command("publish", "Publish the pending import into the teachers' accounts: the first timetable, or the difference to the published one as school-authored reschedules from the effective date on. Sending is 'sync'.") { effective };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, null, ct, async (school, _, _) =>
        {
            var json = parse.GetValue(common.AsJson);
            DateOnly? from = null;
            if (parse.GetValue(effective) is { } text)
            {
                if (!DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
                {
                    await error.WriteLineAsync($"error: --effective-from '{text}' is not a date (YYYY-MM-DD); nothing was published").ConfigureAwait(false);
                    return LogCheck.ExitUsage;
                }

                from = day;
                if (day < DateOnly.FromDateTime(DateTime.Now))
                {
                    await error.WriteLineAsync($"warning: --effective-from {text} is in the past: lessons from that day until today that already took place are moved too (unless a teacher decided them)").ConfigureAwait(false);
                }
            }

            var result = await WithProgressAsync(error, json, "publishing", progress => school.PublishAsync(progress, from, ct)).ConfigureAwait(false);
            var byType = string.Join(", ", result.ByType.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Value} {t.Key}"));
            await WriteAsync(output, json, new
            {
                accounts = result.Accounts, events = result.Events, rescheduled = result.Rescheduled, byType = result.ByType,
                effectiveFrom = result.EffectiveFrom.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                keptBeforeEffective = result.KeptBeforeEffective, keptDecidedByTeachers = result.KeptDecided,
            },
                $"published {result.Events} events in {result.Accounts} accounts, {result.Rescheduled} reschedules ({byType})" +
                (result.Rescheduled + result.KeptBeforeEffective + result.KeptDecided > 0
                    ? string.Create(CultureInfo.InvariantCulture, $" effective from {result.EffectiveFrom:yyyy-MM-dd}; kept as they are: {result.KeptBeforeEffective} earlier lesson(s), {result.KeptDecided} a teacher cancelled, moved or marked held")
                    : string.Empty) +
                "; run 'imikelgo school sync' to send them").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Sync(TextWriter output, TextWriter error)
    {
        var account = new Option<string?>("--account") { Description = "Sync only this account." };
        var retries = RetriesOption();
        var command = new Command("sync", "Push every account's pending events through the relay (sealed for the enrolled devices) and pull the teachers' changes; pending revocations first. Stops at an unreachable relay (or a wrong certificate). Exit 13 when the relay failed for some account (retried next time).") { account, retries };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, parse.GetValue(retries), ct, async (school, _, _) =>
        {
            AccountId? only = null;
            if (parse.GetValue(account) is { } name)
            {
                if (await UnknownAccountAsync(school, name, error).ConfigureAwait(false) is { } code)
                {
                    return code;
                }

                only = new AccountId(name);
            }

            var json = parse.GetValue(common.AsJson);
            var result = await WithProgressAsync(error, json, "syncing", progress => school.SyncAsync(only, progress, ct)).ConfigureAwait(false);
            await WriteAsync(output, json, new
            {
                accounts = result.Accounts, sent = result.EventsSent, received = result.EventsReceived, duplicatePushes = result.DuplicatePushes, failures = result.Failures,
                notAttempted = result.NotAttempted.Select(a => a.Value),
            },
                $"synced {result.Accounts - result.NotAttempted.Count} of {result.Accounts} accounts: sent {result.EventsSent} events, received {result.EventsReceived}, {result.Failures.Count} failed, {result.NotAttempted.Count} not attempted").ConfigureAwait(false);
            if (!result.Complete)
            {
                // The first failure, then what else is left (all of it in --json); the next sync retries every one.
                var more = result.Failures.Count - 1 + result.NotAttempted.Count;
                await error.WriteLineAsync($"relay: {result.Failures[0]}{(more > 0 ? $" (and {more} more; they are retried by the next sync)" : "")}").ConfigureAwait(false);
            }

            return result.Complete ? 0 : DeviceCommands.ExitRelay;
        }));
        return command;
    }

    private static Command IssueLicense(TextWriter output, TextWriter error)
    {
        var account = new Option<string>("--account") { Description = "The teacher's account (see 'school device list' / 'school report').", Required = true };
        var png = new Option<FileInfo?>("--qr-png") { Description = "Also write the QR code as PNG to this file." };
        var svg = new Option<FileInfo?>("--qr-svg") { Description = "Also write the QR code as SVG to this file." };
        var command = new Command("issue", "Issue a license: a new license key and school-internal password (shown once, only its hash is kept) and the enrollment code (QR).") { account, png, svg };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, null, ct, async (school, _, _) =>
        {
            // The connector refuses an account outside the published timetable (exit 22 with its message).
            var license = await school.IssueLicenseAsync(new AccountId(parse.GetValue(account)!), ct).ConfigureAwait(false);
            var exit = 0;
            if (license.Uri.RelayPin is null)
            {
                await error.WriteLineAsync(
                    "warning: this enrollment code carries no relay certificate fingerprint, so the teacher app and 'imikelgo device enroll' refuse it; " +
                    "set it with 'imikelgo school settings --relay-pin SHA256' (printed by 'imikelgo relay serve') and issue the license again").ConfigureAwait(false);
            }

            foreach (var (file, write) in new (FileInfo?, Action<string>)[]
            {
                (parse.GetValue(png), f => File.WriteAllBytes(f, license.QrPng())),
                (parse.GetValue(svg), f => File.WriteAllText(f, license.QrSvg())),
            })
            {
                try
                {
                    if (file is not null)
                    {
                        write(file.FullName);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // The license is issued either way: its password must still be shown (once).
                    await error.WriteLineAsync($"error: cannot write {file}: {e.Message}").ConfigureAwait(false);
                    exit = LogCheck.ExitUsage;
                }
            }

            var json = parse.GetValue(common.AsJson);
            await WriteAsync(output, json, new
            {
                account = license.Account.Value, license = license.License.Value, password = license.Password, uri = license.Uri.ToString(),
                qrPng = parse.GetValue(png)?.FullName, qrSvg = parse.GetValue(svg)?.FullName,
            },
                $"license for account {license.Account}\n  license key:     {license.License.Value}\n  school password: {license.Password}   (shown once; only its hash is kept)\n  enrollment code: {license.Uri}").ConfigureAwait(false);
            if (!json && !Console.IsOutputRedirected && ReferenceEquals(output, Console.Out))
            {
                await output.WriteLineAsync(license.QrTerminal()).ConfigureAwait(false);
            }

            return exit;
        }));
        return command;
    }

    private static Command Enrollments(TextWriter output, TextWriter error)
    {
        var retries = RetriesOption();
        var command = new Command("enrollments", "Approve pending enrollments (relay hand-off): check each sealed request's license key and school password, record the device in its account and answer through the relay, which registers it. Then run 'sync'.") { retries };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, parse.GetValue(retries), ct, async (school, _, _) =>
        {
            var outcomes = await WithStatusAsync(error, parse.GetValue(common.AsJson), "processing enrollments", () => school.ProcessEnrollmentsAsync(ct)).ConfigureAwait(false);
            var approved = outcomes.Count(o => o.Approved);
            if (parse.GetValue(common.AsJson))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    processed = outcomes.Count, approved, refused = outcomes.Count - approved,
                    outcomes = outcomes.Select(o => new { request = o.RequestId, approved = o.Approved, account = o.Account, device = o.Device?.Value, error = o.Error }),
                }, Json)).ConfigureAwait(false);
                return 0;
            }

            foreach (var o in outcomes)
            {
                await output.WriteLineAsync(o.Approved ? $"approved: device {o.Device} in account {o.Account}" : $"refused: request {o.RequestId}: {o.Error}").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"{outcomes.Count} enrollment request(s): {approved} approved, {outcomes.Count - approved} refused{(approved > 0 ? "; run 'imikelgo school sync' to send the timetable to the new devices" : "")}").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command DeviceList(TextWriter output, TextWriter error)
    {
        var account = new Option<string?>("--account") { Description = "Only this account's devices." };
        var command = new Command("list", "The enrolled devices with their state and last contact (newest event of theirs the school received).") { account };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, null, ct, async (school, _, _) =>
        {
            var only = parse.GetValue(account);
            if (only is not null && await UnknownAccountAsync(school, only, error).ConfigureAwait(false) is { } code)
            {
                return code;
            }

            var devices = school.Devices().Where(d => only is null || d.Account.Value == only).ToList();
            if (parse.GetValue(common.AsJson))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(devices.Select(d => new
                {
                    account = d.Account.Value, device = d.Device.Value, label = d.Label, revoked = d.Revoked, revocationReason = d.RevocationReason,
                    hasEncryptionKey = d.HasEncryptionKey, lastContact = d.LastContact,
                }), Json)).ConfigureAwait(false);
                return 0;
            }

            foreach (var d in devices)
            {
                var state = d.Revoked ? $"revoked ({d.RevocationReason})" : "active";
                var contact = d.LastContact is { } t ? t.ToString("u", CultureInfo.InvariantCulture) : "never";
                await output.WriteLineAsync($"{d.Account} {d.Device} {DeviceCommands.Quoted(d.Label)} {state}, last contact {contact}").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"{devices.Count} device(s)").ConfigureAwait(false);
            return 0;
        }, writes: false));
        return command;
    }

    private static Command Wipe(TextWriter output, TextWriter error)
    {
        var account = new Option<string>("--account") { Description = "The teacher's account.", Required = true };
        var device = new Option<string?>("--device") { Description = "Only this device (its id from 'school device list'); without it every device of the account is wiped and its licenses are deactivated." };
        var reason = new Option<string>("--reason") { Description = "Why (recorded in the account's log).", DefaultValueFactory = _ => "deactivated by the school" };
        var retries = RetriesOption();
        var command = new Command("wipe", "Remote wipe: a school-signed revocation into the account's log and to the relay (re-sent by every sync until the relay has it); the device deletes its data at its next contact.") { account, device, reason, retries };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, parse.GetValue(retries), ct, async (school, _, _) =>
        {
            var name = parse.GetValue(account)!;
            if (await UnknownAccountAsync(school, name, error).ConfigureAwait(false) is { } code)
            {
                return code;
            }

            var id = new AccountId(name);
            ReplicaId? target = null;
            if (parse.GetValue(device) is { } deviceId)
            {
                var known = school.Devices().FirstOrDefault(d => d.Account == id && d.Device.Value == deviceId);
                if (known is null)
                {
                    await error.WriteLineAsync($"error: unknown device '{deviceId}' in account {name} (see 'imikelgo school device list --account {name}')").ConfigureAwait(false);
                    return ExitUnknown;
                }

                if (known.Revoked)
                {
                    await error.WriteLineAsync($"error: device {deviceId} of {name} is already revoked ({known.RevocationReason})").ConfigureAwait(false);
                    return ExitState;
                }

                target = known.Device;
            }

            var wiped = await school.WipeAsync(id, target, parse.GetValue(reason)!, ct).ConfigureAwait(false);
            await WriteAsync(output, parse.GetValue(common.AsJson), new
            {
                account = name, revoked = wiped.Revoked.Select(r => r.Value), licensesDeactivated = target is null, relayReached = wiped.RelayReached, relayError = wiped.RelayError,
            },
                $"wiped: {wiped.Revoked.Count} device(s) of {name} revoked in the log{(target is null ? ", its licenses deactivated" : "")}; " +
                (wiped.RelayReached
                    ? "the relay has the revocation and orders the wipe at the device's next contact"
                    : $"relay not reached ({wiped.RelayError}): the revocation will be sent at the next 'school sync'")).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Report(TextWriter output, TextWriter error)
    {
        var command = new Command("report", "The administration's report: absences per student, cancellations per teacher and month (payroll, fees), the reschedule log (all of it with --json).");
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, null, ct, async (school, _, _) =>
        {
            var report = school.Report();
            if (parse.GetValue(common.AsJson))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(report, Json)).ConfigureAwait(false);
                return 0;
            }

            await output.WriteLineAsync($"absences ({report.Absences.Count} students):").ConfigureAwait(false);
            foreach (var a in report.Absences)
            {
                await output.WriteLineAsync($"  {a.Account} {a.Student}: {a.Absences} absent, {a.Excused} excused").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"cancellations ({report.Cancellations.Count} teacher-months):").ConfigureAwait(false);
            foreach (var c in report.Cancellations)
            {
                await output.WriteLineAsync($"  {c.Account} {c.Month}: {c.Cancellations} cancelled, {c.MakeUpsOwed} make-up(s) owed").ConfigureAwait(false);
            }

            var bySchool = report.Reschedules.Count(r => r.BySchool);
            await output.WriteLineAsync($"reschedules: {report.Reschedules.Count} ({bySchool} by the school, {report.Reschedules.Count - bySchool} by teachers)").ConfigureAwait(false);
            foreach (var r in report.Reschedules.Where(r => !r.BySchool))
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {r.Account} {r.Occurrence} → {r.Date:yyyy-MM-dd} {Minutes(r.StartMinute)} {r.Room} (by {r.Author})")).ConfigureAwait(false);
            }

            return 0;
        }, writes: false));
        return command;
    }

    /// <summary>Null when <paramref name="name"/> is an account of the published timetable; else the exit code, with the message written.</summary>
    private static async Task<int?> UnknownAccountAsync(School.Connector.SchoolConnector school, string name, TextWriter error)
    {
        if (!IMikelGo.Sealing.Identifiers.IsValid(name))
        {
            await error.WriteLineAsync($"error: '{name}' is not an account id ([A-Za-z0-9._-]{{1,64}})").ConfigureAwait(false);
            return LogCheck.ExitUsage;
        }

        if (school.Accounts.Contains(new AccountId(name)))
        {
            return null;
        }

        await error.WriteLineAsync($"error: unknown account '{name}': not in the published timetable ({school.Accounts.Count} accounts; 'imikelgo school publish' creates them)").ConfigureAwait(false);
        return ExitUnknown;
    }
}
