using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace IMikelGo.Cli;

/// <summary>The command tree of <c>imikelgo</c>. Exit codes: 0 ok, 2 usage or unreadable file, 3 invalid log, 4 incomplete log.</summary>
internal static class Cli
{
    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default) =>
        RunAsync(args, Console.In, output, error, cancellationToken);

    /// <summary>Runs with <paramref name="input"/> as standard input (what <c>--password-stdin</c> and <c>--pin-stdin</c> read).</summary>
    public static async Task<int> RunAsync(string[] args, TextReader input, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = Build(input, output, error);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
            {
                await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            }

            // The help of the command that was being parsed ("imikelgo school init --help"), not always the root's.
            var path = new List<string>();
            for (var result = parsed.CommandResult; result is not null; result = result.Parent as CommandResult)
            {
                if (result.Command is not RootCommand)
                {
                    path.Insert(0, result.Command.Name);
                }
            }

            await error.WriteLineAsync($"Run 'imikelgo {string.Join(' ', [.. path, "--help"])}' for usage.").ConfigureAwait(false);
            return LogCheck.ExitUsage;
        }

        var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        return await parsed.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs synchronously (tests).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error) => RunAsync(args, output, error).GetAwaiter().GetResult();

    private static RootCommand Build(TextReader input, TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "imikelgo: the iMikelGo sync engine from a terminal — event logs (log), the relay (relay), the school connector (school), " +
            "the teacher device (device) and signed updates (release, update).\n" +
            "Exit codes: 0 ok, 2 usage error or unreadable file, 3 invalid log (malformed, tampered, forged, forked), " +
            "4 incomplete log (a chain has a gap or an unauthenticated tail). See docs/cli.md.");
        var log = new Command("log", "Work with event logs: generate a demo log, verify one, replay it into the teacher calendar.");
        log.Subcommands.Add(DemoCommand(output, error));
        log.Subcommands.Add(VerifyCommand(output, error));
        log.Subcommands.Add(ReplayCommand(output, error));
        root.Subcommands.Add(log);
        root.Subcommands.Add(UpdateCommands.Release(output, error));
        root.Subcommands.Add(UpdateCommands.Update(output, error));
        root.Subcommands.Add(RelayCommands.Build(output, error));
        root.Subcommands.Add(DeviceCommands.Build(input, output, error));
        root.Subcommands.Add(SchoolCommands.Build(output, error));
        return root;
    }

    private static Command DemoCommand(TextWriter output, TextWriter error)
    {
        var seed = new Option<long>("--seed") { Description = "Seed for keys, clock and choices; the same seed gives a byte-identical log.", DefaultValueFactory = _ => 42 };
        var replicas = new Option<int>("--replicas") { Description = $"Number of replicas: 1 school + (R-1) teacher devices (2..{DemoLog.MaxReplicas}).", DefaultValueFactory = _ => 4 };
        var events = new Option<int>("--events") { Description = $"Total number of events in the log (>= {DemoLog.MinEvents}).", DefaultValueFactory = _ => 2000 };
        var outFile = new Option<FileInfo>("--out") { Description = "The log file to write (JSON Lines).", Required = true };
        var command = new Command("demo", "Write a realistic signed demo log: a school publishing terms of weekly lessons and teacher devices recording absences, cancellations, moves and held lessons, with syncs, concurrent edits and conflicts.")
        {
            seed, replicas, events, outFile,
        };
        command.SetAction(parseResult =>
        {
            var r = parseResult.GetValue(replicas);
            var n = parseResult.GetValue(events);
            var file = parseResult.GetValue(outFile)!;
            if (r < 2 || r > DemoLog.MaxReplicas)
            {
                error.WriteLine($"error: --replicas must be between 2 and {DemoLog.MaxReplicas} (one school and at least one device), got {r}");
                return LogCheck.ExitUsage;
            }

            if (n < DemoLog.MinEvents || n > 5_000_000)
            {
                error.WriteLine($"error: --events must be between {DemoLog.MinEvents} and 5000000, got {n}");
                return LogCheck.ExitUsage;
            }

            var watch = Stopwatch.StartNew();
            var demo = DemoLog.Generate(parseResult.GetValue(seed), r, n);
            try
            {
                if (file.Directory is { Exists: false } dir)
                {
                    dir.Create();
                }

                using var writer = new StreamWriter(file.FullName, append: false, new UTF8Encoding(false)) { NewLine = "\n" };
                foreach (var line in demo.Lines)
                {
                    writer.WriteLine(line);
                }
            }
            catch (Exception ex) when (LogCheck.IsReadError(ex))
            {
                error.WriteLine($"error: cannot write {file}: {ex.Message}");
                return LogCheck.ExitUsage;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {demo.Lines.Count} events to {file}: {demo.Replicas} replicas (1 school, {demo.Replicas - 1} devices), account {demo.Account} ({demo.Teacher}, {demo.School}), {demo.Terms} term(s), {demo.Lessons} lessons, {demo.Syncs} syncs, {demo.Conflicts} conflicts, {demo.Resolutions} resolved by a teacher ({watch.Elapsed.TotalSeconds:F1} s)"));
            return LogCheck.ExitOk;
        });
        return command;
    }

    private static Argument<FileInfo> FileArgument() => new("FILE") { Description = "A log file (JSON Lines; one signed event per line; order and duplicates do not matter)." };

    private static Command VerifyCommand(TextWriter output, TextWriter error)
    {
        var file = FileArgument();
        var command = new Command("verify", "Verify every event (structure, hash, chain link, checkpoint signature, clock, authorization) and that every chain is complete. Exit 0 valid and complete, 3 invalid (prints the first bad line), 4 incomplete (gap), 2 unreadable.")
        {
            file,
        };
        command.SetAction((parseResult, cancellationToken) =>
        {
            var path = parseResult.GetValue(file)!;
            var check = Load(path, error, cancellationToken);
            if (check is null)
            {
                return Task.FromResult(LogCheck.ExitUsage);
            }

            check.Print(path.ToString(), output, error);
            return Task.FromResult(check.ExitCode);
        });
        return command;
    }

    private static Command ReplayCommand(TextWriter output, TextWriter error)
    {
        var file = FileArgument();
        var json = new Option<bool>("--json") { Description = "Print one JSON object: {\"digest\": \"…\", \"lessons\": […], \"conflicts\": […], …}." };
        var command = new Command("replay", "Verify and merge the log, then print the teacher calendar (date, time, subject, room, status, absences, note), the conflicts (rule, both events) and the state digest. The digest is the same for any order and duplication of the same lines. Exit codes as verify; an invalid log prints nothing on stdout.")
        {
            file, json,
        };
        command.SetAction((parseResult, cancellationToken) =>
        {
            var path = parseResult.GetValue(file)!;
            var check = Load(path, error, cancellationToken);
            if (check is null)
            {
                return Task.FromResult(LogCheck.ExitUsage);
            }

            if (check.ExitCode == LogCheck.ExitInvalid)
            {
                error.WriteLine($"INVALID: {check.InvalidSorted[0]}");
                error.WriteLine("refusing to replay an invalid log; run 'imikelgo log verify' for details");
                return Task.FromResult(LogCheck.ExitInvalid);
            }

            if (check.ExitCode == LogCheck.ExitIncomplete)
            {
                error.WriteLine($"INCOMPLETE: {check.Incomplete.Count} event(s) held back (first: {check.Incomplete[0]}); showing the state of the applied events");
            }

            if (parseResult.GetValue(json))
            {
                using var buffer = new MemoryStream();
                Replay.WriteJson(check.Ledger, buffer);
                output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
            }
            else
            {
                Replay.PrintText(check.Ledger, output);
            }

            return Task.FromResult(check.ExitCode);
        });
        return command;
    }

    private static LogCheck? Load(FileInfo file, TextWriter error, CancellationToken cancellationToken)
    {
        // Reading a directory fails with "Access … is denied", which sends the user after permissions.
        if (Directory.Exists(file.FullName))
        {
            error.WriteLine($"error: cannot read {file}: it is a directory, not a log file");
            return null;
        }

        try
        {
            return LogCheck.Run(file.FullName, cancellationToken);
        }
        catch (Exception ex) when (LogCheck.IsReadError(ex))
        {
            error.WriteLine($"error: cannot read {file}: {ex.Message}");
            return null;
        }
    }
}
