using System.CommandLine;
using IMikelGo.SchoolServer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IMikelGo.Cli;

internal static partial class SchoolCommands
{
    private static Command Serve(TextWriter output, TextWriter error)
    {
        var pull = new Option<int>("--pull-seconds") { Description = "Seconds between the scheduled pulls of every account and enrollment runs (0: none; start-up pushes and retries still run).", DefaultValueFactory = _ => 60 };
        var retries = RetriesOption();
        var command = new Command("serve", "Run the school server in the foreground until Ctrl+C / SIGTERM: pushes what is not at the relay yet (retried with backoff), pulls every account and approves enrollments on a schedule. Logs on stderr. Commands that change the school are refused while it runs on the same --data.") { pull, retries };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => GuardAsync(error, async () =>
        {
            var seconds = parse.GetValue(pull);
            if (seconds < 0 || TimeSpan.FromSeconds(seconds) > IMikelGo.SchoolServer.SchoolServerOptions.MaxPullInterval)
            {
                await error.WriteLineAsync($"error: --pull-seconds must be 0 to {(long)IMikelGo.SchoolServer.SchoolServerOptions.MaxPullInterval.TotalSeconds} (about 49 days), got {seconds}").ConfigureAwait(false);
                return LogCheck.ExitUsage;
            }

            // The settings the other commands saved; the server then opens the store and takes its writer lock itself.
            CliSettings? settings = null;
            var read = await WithStoreAsync(parse, common, error, create: false, async store =>
            {
                settings = await ReadSettingsAsync(store, ct).ConfigureAwait(false);
                return 0;
            }, exclusive: false).ConfigureAwait(false);
            if (read != 0)
            {
                return read;
            }

            if (settings is null)
            {
                await error.WriteLineAsync($"error: no school in {Where(parse, common)}; run 'imikelgo school init' first").ConfigureAwait(false);
                return ExitState;
            }

            return await RunServerAsync(parse, common, settings, TimeSpan.FromSeconds(seconds), parse.GetValue(retries), output, error, ct).ConfigureAwait(false);
        }));
        return command;
    }

    private static async Task<int> RunServerAsync(ParseResult parse, Common common, CliSettings settings, TimeSpan pull, int retries, TextWriter output, TextWriter error, CancellationToken ct)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new WriterLoggerProvider(error));
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        foreach (var noisy in new[] { "Wolverine", "JasperFx", "Marten", "Npgsql", "Microsoft", "Weasel" })
        {
            builder.Logging.AddFilter(noisy, LogLevel.Warning);
        }

        var postgres = PostgresOf(parse, common);
        builder.Services.AddIMikelGoSchoolServer(o =>
        {
            o.PostgresConnectionString = postgres;
            o.Schema = parse.GetValue(common.Schema)!;
            o.DataDirectory = parse.GetValue(common.Data)!.FullName;
            o.RelayAddress = new Uri(settings.Relay);
            o.RelayCertificateSha256 = settings.RelayPin;
            o.PullInterval = pull;
            o.ConfigureConnector = s =>
            {
                s.EnrollmentAccount = settings.EnrollmentAccount;
                s.ConfigureRelay = r => r.MaxRetries = retries;
            };
        });

        using var host = builder.Build();
        await host.StartAsync(ct).ConfigureAwait(false);
        var school = await host.Services.GetRequiredService<IMikelGo.SchoolServer.SchoolServer>().ConnectorAsync(ct).ConfigureAwait(false);
        await WriteAsync(output, parse.GetValue(common.AsJson), new { school = school.SchoolId, store = Where(parse, common), relay = settings.Relay, pullSeconds = (int)pull.TotalSeconds, durable = postgres is not null },
            $"school server {school.SchoolId} running on {Where(parse, common)}; relay {settings.Relay}; " +
            (pull == TimeSpan.Zero ? "no scheduled pulls" : $"pulls and enrollments every {(int)pull.TotalSeconds} s") + "; Ctrl+C stops it").ConfigureAwait(false);
        await output.FlushAsync(ct).ConfigureAwait(false);
        await host.WaitForShutdownAsync(ct).ConfigureAwait(false);
        return 0;
    }

    /// <summary>Log lines on the CLI's error writer (stderr), one per entry, no secrets (the server's messages name accounts, never keys).</summary>
    private sealed class WriterLoggerProvider(TextWriter writer) : ILoggerProvider
    {
        private readonly TextWriter _writer = TextWriter.Synchronized(writer);

        public ILogger CreateLogger(string categoryName) => new WriterLogger(_writer, categoryName);

        public void Dispose()
        {
        }

        private sealed class WriterLogger(TextWriter writer, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var level = logLevel switch
                {
                    LogLevel.Warning => "warn",
                    LogLevel.Error or LogLevel.Critical => "fail",
                    LogLevel.Information => "info",
                    _ => "dbug",
                };
                writer.WriteLine($"{level}: {category}: {formatter(state, exception)}{(exception is null ? "" : " (" + exception.Message + ")")}");
            }
        }
    }
}
