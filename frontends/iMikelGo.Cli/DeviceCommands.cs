using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite;
using Spectre.Console;

namespace IMikelGo.Cli;

/// <summary><c>imikelgo device enroll|unlock|absent|cancel|move|held|sync|status</c>: the teacher device from a terminal (docs/cli.md).</summary>
internal static class DeviceCommands
{
    public const int ExitWrongPin = 10;
    public const int ExitWiped = 11;
    public const int ExitState = 12;
    public const int ExitRelay = 13;
    public const int ExitEnrollment = 14;
    public const int ExitRefused = 15;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    // Text from elsewhere (a device label) in text output: quoted and escaped, so it cannot pose as a state or a second line.
    private static readonly JsonSerializerOptions QuotedText = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.Default };

    /// <summary><paramref name="text"/> quoted and escaped for text output.</summary>
    internal static string Quoted(string text) => JsonSerializer.Serialize(text, QuotedText);

    public static Command Build(TextReader input, TextWriter output, TextWriter error)
    {
        var device = new Command("device", "The teacher device: enroll, unlock, record absences/cancellations/moves/held lessons, sync, status.");
        device.Subcommands.Add(Enroll(input, output, error));
        device.Subcommands.Add(Unlock(input, output, error));
        device.Subcommands.Add(Absent(input, output, error));
        device.Subcommands.Add(Cancel(input, output, error));
        device.Subcommands.Add(Move(input, output, error));
        device.Subcommands.Add(Held(input, output, error));
        device.Subcommands.Add(Sync(input, output, error));
        device.Subcommands.Add(Status(input, output, error));
        return device;
    }

    private sealed record Common(Option<DirectoryInfo> Data, Option<bool> PinStdin, Option<bool> AsJson);

    private static Common AddCommon(Command command)
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "The device folder (vault, device secret).", DefaultValueFactory = _ => new DirectoryInfo("device-data") };
        var pinStdin = new Option<bool>("--pin-stdin") { Description = "Read the PIN from the next line of stdin instead of prompting." };
        var json = new Option<bool>("--json") { Description = "Write the result as JSON (for scripts)." };
        command.Options.Add(data);
        command.Options.Add(pinStdin);
        command.Options.Add(json);
        return new Common(data, pinStdin, json);
    }

    private static Command Enroll(TextReader input, TextWriter output, TextWriter error)
    {
        var uri = new Option<string>("--uri") { Description = "The enrollment code (imikelgo://enroll?… from the QR code).", Required = true };
        var license = new Option<string>("--license") { Description = "The license key (Kennung).", Required = true };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the school-internal password from the first line of stdin (else prompt)." };
        var label = new Option<string>("--label")
        {
            Description = $"How the school lists this device (\"Anna's laptop\"; at most {DeviceEnrollment.MaxLabelLength} characters; sealed, the relay never sees it). Default: the machine name.",
        };
        var command = new Command("enroll", "Enroll this device with the school (license key + school password), then set the PIN.") { uri, license, passwordStdin, label };
        var common = AddCommon(command);
        command.SetAction(async (parse, ct) =>
        {
            var password = parse.GetValue(passwordStdin) ? await input.ReadLineAsync(ct).ConfigureAwait(false) : Prompt("School password", input);
            var pin = parse.GetValue(common.PinStdin) ? await input.ReadLineAsync(ct).ConfigureAwait(false) : Prompt("New PIN", input);
            if (string.IsNullOrEmpty(password) || string.IsNullOrEmpty(pin))
            {
                await error.WriteLineAsync("error: the school password and the PIN are required").ConfigureAwait(false);
                return LogCheck.ExitUsage;
            }

            var deviceLabel = parse.GetValue(label);
            if (DeviceEnrollment.LabelProblem(deviceLabel) is { } labelProblem)
            {
                await error.WriteLineAsync($"error: --label: {labelProblem}").ConfigureAwait(false);
                return LogCheck.ExitUsage;
            }

            // The hand-off polls until the school processes its queue: without a word the command looks hung.
            void Waiting(TimeSpan timeout) => error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"waiting for the school's answer (up to {timeout.TotalMinutes:0.#} minutes): the school approves with 'imikelgo school enrollments' or a running 'imikelgo school serve'"));

            return await WithDeviceAsync(parse.GetValue(common.Data)!, error, deviceLabel, Waiting, async device =>
            {
                var id = await device.EnrollAsync(new EnrollmentInput(parse.GetValue(uri)!, parse.GetValue(license)!, password, pin), ct).ConfigureAwait(false);
                await WriteAsync(output, parse.GetValue(common.AsJson), new { enrolled = true, device = id.Value, account = device.Account, relay = device.Relay?.Relay },
                    $"enrolled: device {id.Value} in account {device.Account}; run 'imikelgo device sync' to receive the timetable").ConfigureAwait(false);
                return 0;
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Unlock(TextReader input, TextWriter output, TextWriter error)
    {
        var command = new Command("unlock", "Check the PIN (three wrong entries in a row wipe all data and switch to demo mode).");
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithUnlockedAsync(parse, common, input, output, error, ct, async device =>
        {
            await WriteAsync(output, parse.GetValue(common.AsJson), new { state = device.State.ToString(), device = device.DeviceId?.Value, account = device.Account },
                $"unlocked: device {device.DeviceId?.Value} (account {device.Account})").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Option<string> LessonOption() =>
        new("--lesson") { Description = "The lesson occurrence: SERIES@YYYY-MM-DD (see 'status --week').", Required = true };

    private static Command Absent(TextReader input, TextWriter output, TextWriter error)
    {
        var lesson = LessonOption();
        var student = new Option<string>("--student") { Description = "The student id.", Required = true };
        var excused = new Option<bool>("--excused") { Description = "The absence is excused." };
        var reason = new Option<string?>("--reason") { Description = "An optional reason." };
        var command = new Command("absent", "Record that a student was absent.") { lesson, student, excused, reason };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithUnlockedAsync(parse, common, input, output, error, ct, device =>
            ChangeAsync(output, error, parse.GetValue(common.AsJson), () => device.RecordAbsenceAsync(
                OccurrenceId.Parse(parse.GetValue(lesson)!), new StudentId(parse.GetValue(student)!), parse.GetValue(excused), parse.GetValue(reason), ct))));
        return command;
    }

    private static Command Cancel(TextReader input, TextWriter output, TextWriter error)
    {
        var lesson = LessonOption();
        var reason = new Option<string>("--reason") { Description = "teacher-ill, student-ill, school-closed or other.", DefaultValueFactory = _ => "other" };
        reason.AcceptOnlyFromAmong("teacher-ill", "student-ill", "school-closed", "other");
        var makeUp = new Option<bool>("--make-up") { Description = "A make-up lesson is owed." };
        var note = new Option<string?>("--note") { Description = "An optional note." };
        var command = new Command("cancel", "Cancel a lesson.") { lesson, reason, makeUp, note };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithUnlockedAsync(parse, common, input, output, error, ct, device =>
            ChangeAsync(output, error, parse.GetValue(common.AsJson), () => device.CancelAsync(
                OccurrenceId.Parse(parse.GetValue(lesson)!), parse.GetValue(reason) switch
                {
                    "teacher-ill" => CancellationReason.TeacherIll,
                    "student-ill" => CancellationReason.StudentIll,
                    "school-closed" => CancellationReason.SchoolClosed,
                    _ => CancellationReason.Other,
                }, parse.GetValue(makeUp), parse.GetValue(note), ct))));
        return command;
    }

    private static Command Move(TextReader input, TextWriter output, TextWriter error)
    {
        var lesson = LessonOption();
        var date = new Option<string>("--date") { Description = "The new date (YYYY-MM-DD).", Required = true };
        var start = new Option<string>("--start") { Description = "The new start (HH:MM).", Required = true };
        var duration = new Option<int>("--duration") { Description = "Length in minutes.", DefaultValueFactory = _ => 45 };
        var room = new Option<string>("--room") { Description = "The new room.", Required = true };
        var command = new Command("move", "Move a lesson to another date, time or room; clashes with the known timetable are warned about.") { lesson, date, start, duration, room };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithUnlockedAsync(parse, common, input, output, error, ct, device =>
            ChangeAsync(output, error, parse.GetValue(common.AsJson), () => device.MoveAsync(
                OccurrenceId.Parse(parse.GetValue(lesson)!),
                DateOption(parse.GetValue(date)!, "--date"),
                TimeOnly.TryParseExact(parse.GetValue(start), "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time)
                    ? time : throw new ArgumentException($"--start '{parse.GetValue(start)}' is not a time of day (HH:MM)"),
                parse.GetValue(duration), new RoomId(parse.GetValue(room)!), ct))));
        return command;
    }

    // Said in the option's terms (exit 2): .NET's own message names the type, not what the teacher typed where.
    private static DateOnly DateOption(string text, string option) =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            ? day : throw new ArgumentException($"{option} '{text}' is not a date (YYYY-MM-DD)");

    private static Command Held(TextReader input, TextWriter output, TextWriter error)
    {
        var lesson = LessonOption();
        var note = new Option<string?>("--note") { Description = "A short note." };
        var command = new Command("held", "Record that a lesson took place.") { lesson, note };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithUnlockedAsync(parse, common, input, output, error, ct, device =>
            ChangeAsync(output, error, parse.GetValue(common.AsJson), () => device.MarkHeldAsync(OccurrenceId.Parse(parse.GetValue(lesson)!), parse.GetValue(note), ct))));
        return command;
    }

    private static Command Sync(TextReader input, TextWriter output, TextWriter error)
    {
        var command = new Command("sync", "Receive everything new and send all own changes (the Sync button).");
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithUnlockedAsync(parse, common, input, output, error, ct, async device =>
        {
            var json = parse.GetValue(common.AsJson);
            DeviceSyncResult result;
            if (json || Console.IsOutputRedirected)
            {
                result = await device.SyncAsync(null, ct).ConfigureAwait(false);
            }
            else
            {
                result = await AnsiConsole.Progress().AutoClear(true).StartAsync(async context =>
                {
                    var receive = context.AddTask("receive");
                    var send = context.AddTask("send");
                    var progress = new Progress<SyncProgress>(p =>
                    {
                        receive.MaxValue = Math.Max(1, p.Head);
                        receive.Value = p.Head == 0 ? 1 : p.Cursor;
                        send.MaxValue = Math.Max(1, p.EventsToSend);
                        send.Value = p.EventsToSend == 0 ? 1 : p.EventsSent;
                    });
                    return await device.SyncAsync(progress, ct).ConfigureAwait(false);
                }).ConfigureAwait(false);
            }

            if (result.Wiped)
            {
                await WriteAsync(output, json, new { wiped = true, reason = "remote-deactivation" },
                    "the school deactivated this device: all iMikelGo data on it was deleted (demo mode). Enroll again to sync.").ConfigureAwait(false);
                return ExitWiped;
            }

            await WriteAsync(output, json, new { received = result.Received, sent = result.Sent, refused = result.Refused, newConflicts = result.NewConflicts },
                $"received {result.Received}, sent {result.Sent}, refused {result.Refused.Count}, new conflicts {result.NewConflicts}").ConfigureAwait(false);
            foreach (var refused in result.Refused)
            {
                await error.WriteLineAsync($"refused: {refused}").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static Command Status(TextReader input, TextWriter output, TextWriter error)
    {
        var week = new Option<string?>("--week") { Description = "Also list the lessons of the week containing this date (YYYY-MM-DD, or 'today')." };
        var command = new Command("status", "State, account, relay, pending changes, conflicts and devices (asks for the PIN when locked).") { week };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithUnlockedAsync(parse, common, input, output, error, ct, async device =>
        {
            var weekText = parse.GetValue(week);
            var day = weekText is null ? (DateOnly?)null : weekText == "today" ? DateOnly.FromDateTime(DateTime.Today) : DateOption(weekText, "--week");
            var lessons = day is { } d ? device.Week(d) : [];
            var conflicts = device.Conflicts();
            var devices = device.Devices();
            var status = new
            {
                state = device.State.ToString(),
                account = device.Account,
                device = device.DeviceId?.Value,
                relay = device.Relay?.Relay,
                pending = await device.PendingCountAsync(ct).ConfigureAwait(false),
                conflicts = conflicts.Select(c => new { lesson = c.Occurrence.ToString(), kept = c.WinnerSummary, other = c.LoserSummary, rule = c.Rule }),
                devices = devices.Select(x => new { id = x.Id.Value, label = x.Label, revoked = x.Revoked, thisDevice = x.IsThisDevice }),
                lessons = lessons.Select(l => new
                {
                    lesson = l.Occurrence.ToString(), subject = l.Subject, date = l.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                    start = l.Start.ToString("HH:mm", CultureInfo.InvariantCulture), room = l.Room.Value, status = l.Status.ToString(),
                    students = l.Students.Select(s => new { id = s.Id.Value, name = s.Name, absent = s.Absent }),
                }),
            };
            if (parse.GetValue(common.AsJson))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(status, Json)).ConfigureAwait(false);
                return 0;
            }

            await output.WriteLineAsync($"state: {status.state}, account {status.account}, device {status.device}").ConfigureAwait(false);
            await output.WriteLineAsync($"relay: {status.relay}; pending changes: {status.pending}; conflicts: {conflicts.Count}").ConfigureAwait(false);
            foreach (var x in devices)
            {
                await output.WriteLineAsync($"device {x.Id.Value[..12]} {Quoted(x.Label)}{(x.Revoked ? " (revoked)" : "")}{(x.IsThisDevice ? " (this device)" : "")}").ConfigureAwait(false);
            }

            foreach (var c in conflicts)
            {
                await output.WriteLineAsync($"conflict {c.Occurrence}: kept {c.WinnerSummary}; not {c.LoserSummary} ({c.Rule})").ConfigureAwait(false);
            }

            foreach (var l in lessons)
            {
                // Each student with the id that --student takes.
                var students = string.Join(", ", l.Students.Select(s => $"{s.Name} <{s.Id.Value}>" + (s.Absent is null ? "" : s.Absent.Value ? " (absent, excused)" : " (absent)")));
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{l.Date:ddd yyyy-MM-dd} {l.Start:HH\\:mm} {l.Subject} {l.Room.Value} {l.Status} [{l.Occurrence}] {students}")).ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static async Task<int> ChangeAsync(TextWriter output, TextWriter error, bool json, Func<Task<ChangeResult>> change)
    {
        var result = await change().ConfigureAwait(false);
        if (!result.Succeeded)
        {
            await error.WriteLineAsync($"refused: {result.Error}").ConfigureAwait(false);
            if (json)
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new { recorded = false, error = result.Error }, Json)).ConfigureAwait(false);
            }

            return ExitRefused;
        }

        // Only for a recorded move: a refused one clashes with nothing.
        foreach (var clash in result.Clashes)
        {
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"warning: clash ({clash.Kind}) with {clash.Subject} {clash.Date:yyyy-MM-dd} {clash.Start:HH\\:mm} in {clash.Room.Value} [{clash.Occurrence}]")).ConfigureAwait(false);
        }

        await WriteAsync(output, json, new { recorded = true, clashes = result.Clashes.Select(c => new { kind = c.Kind.ToString(), lesson = c.Occurrence.ToString() }) },
            "recorded (pending until the next sync)").ConfigureAwait(false);
        return 0;
    }

    private static async Task<int> WithUnlockedAsync(ParseResult parse, Common common, TextReader input, TextWriter output, TextWriter error, CancellationToken ct, Func<TeacherDevice, Task<int>> work)
    {
        // Only 'enroll' makes a device folder: opening a mistyped --data would leave an empty folder behind.
        var data = parse.GetValue(common.Data)!;
        if (!data.Exists)
        {
            await error.WriteLineAsync($"error: there is no device folder at {data.FullName}; check --data, or run 'imikelgo device enroll --data {data.FullName}'").ConfigureAwait(false);
            return ExitState;
        }

        return await WithDeviceAsync(data, error, async device =>
        {
            if (device.State is DeviceState.NotEnrolled or DeviceState.Wiped)
            {
                var wipe = device.LastWipe;
                await error.WriteLineAsync(wipe is null
                    ? "error: this device is not enrolled (demo mode); run 'imikelgo device enroll'"
                    : $"error: this device was wiped ({wipe.Reason}, {wipe.WipedAt:u}); run 'imikelgo device enroll' with your license key and school password").ConfigureAwait(false);
                return ExitState;
            }

            var pin = parse.GetValue(common.PinStdin) ? await input.ReadLineAsync(ct).ConfigureAwait(false) : Prompt("PIN", input);
            if (string.IsNullOrEmpty(pin))
            {
                // A closed or empty stdin (a cron job, a broken pipe) is not a guess: it must never count towards the wipe.
                await error.WriteLineAsync("error: no PIN given (empty input); nothing was tried, no attempt counted").ConfigureAwait(false);
                return LogCheck.ExitUsage;
            }

            var unlocked = await device.UnlockAsync(pin, ct).ConfigureAwait(false);
            switch (unlocked.Status)
            {
                case UnlockStatus.Unlocked:
                    return await work(device).ConfigureAwait(false);
                case UnlockStatus.WrongPin:
                    await error.WriteLineAsync($"wrong PIN: {unlocked.RemainingAttempts} attempt(s) left before all data on this device is deleted").ConfigureAwait(false);
                    return ExitWrongPin;
                default:
                    await error.WriteLineAsync("wrong PIN three times in a row: all iMikelGo data on this device was deleted (demo mode). Enroll again to sync.").ConfigureAwait(false);
                    return ExitWiped;
            }
        }).ConfigureAwait(false);
    }

    private static Task<int> WithDeviceAsync(DirectoryInfo data, TextWriter error, Func<TeacherDevice, Task<int>> work) =>
        WithDeviceAsync(data, error, null, null, work);

    private static async Task<int> WithDeviceAsync(DirectoryInfo data, TextWriter error, string? deviceLabel, Action<TimeSpan>? enrollmentWaiting,
        Func<TeacherDevice, Task<int>> work)
    {
        try
        {
            var options = new TeacherDeviceOptions
            {
                DataDirectory = data.FullName,
                DeviceLabel = deviceLabel,
                ConfigureRelayEnrollment = enrollment => enrollment.Waiting = enrollmentWaiting,
            };
            var device = await TeacherDevice.OpenAsync(options, CancellationToken.None).ConfigureAwait(false);
            await using (device.ConfigureAwait(false))
            {
                return await work(device).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return LogCheck.ExitUsage;
        }
        catch (EnrollmentRefusedException e)
        {
            await error.WriteLineAsync($"enrollment refused: {e.Message}").ConfigureAwait(false);
            return ExitEnrollment;
        }
        catch (RelayException e)
        {
            await error.WriteLineAsync($"relay: {e.Message}").ConfigureAwait(false);
            return ExitRelay;
        }
        catch (Exception e) when (e is InvalidOperationException or VaultException)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitState;
        }
    }

    private static string Prompt(string label, TextReader input) =>
        Console.IsInputRedirected || input != Console.In ? input.ReadLine() ?? "" : AnsiConsole.Prompt(new TextPrompt<string>(label + ":").Secret());

    private static Task WriteAsync(TextWriter output, bool json, object value, string text) =>
        output.WriteLineAsync(json ? JsonSerializer.Serialize(value, Json) : text);
}
