using System.CommandLine;
using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.School.Connector;
using IMikelGo.School.Model;
using IMikelGo.Store.Marten.School;
using IMikelGo.Store.Sqlite.School;
using Spectre.Console;

namespace IMikelGo.Cli;

/// <summary>
/// <c>imikelgo school init|settings|import|publish|sync|serve|license issue|enrollments|device list|wipe|report|relay-registrations</c>:
/// the administration's side of the school connector from a terminal (docs/cli.md, docs/school-connector.md).
/// </summary>
internal static partial class SchoolCommands
{
    /// <summary>No school in the store (run init), a school already there (init twice), or nothing imported to publish.</summary>
    public const int ExitState = 20;

    /// <summary>The import was refused (inconsistent or malformed input; the message names the element); nothing was stored.</summary>
    public const int ExitImport = 21;

    /// <summary>An unknown account or device.</summary>
    public const int ExitUnknown = 22;

    /// <summary>The store file in the data directory.</summary>
    public const string DatabaseFile = "school.db";

    /// <summary>The CLI's persisted settings (relay address and pin, enrollment account) in the connector store.</summary>
    private const string SettingsKey = "cli/settings";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Build(TextWriter output, TextWriter error)
    {
        var school = new Command("school", "The school connector (the school server's replica, outbound only): init, import and publish timetables, sync through the relay, licenses, enrollments, devices, remote wipe, reports.");
        school.Subcommands.Add(Init(output, error));
        school.Subcommands.Add(Settings(output, error));
        school.Subcommands.Add(Import(output, error));
        school.Subcommands.Add(Publish(output, error));
        school.Subcommands.Add(Sync(output, error));
        school.Subcommands.Add(Serve(output, error));
        var license = new Command("license", "Licenses of teachers (license key + school-internal password + QR code).");
        license.Subcommands.Add(IssueLicense(output, error));
        school.Subcommands.Add(license);
        school.Subcommands.Add(Enrollments(output, error));
        var device = new Command("device", "Devices of the school's teachers.");
        device.Subcommands.Add(DeviceList(output, error));
        school.Subcommands.Add(device);
        school.Subcommands.Add(Wipe(output, error));
        school.Subcommands.Add(Report(output, error));
        school.Subcommands.Add(RelayRegistrations(output, error));
        return school;
    }

    /// <summary>The CLI settings kept in the connector store between invocations.</summary>
    /// <param name="Relay">The relay's https base address.</param>
    /// <param name="RelayPin">The SHA-256 of the relay's certificate (64 lowercase hex digits), or null for a CA-trusted relay.</param>
    /// <param name="EnrollmentAccount">The relay account the enrollment caller is registered in, or null for the school id.</param>
    private sealed record CliSettings(string Relay, string? RelayPin, string? EnrollmentAccount);

    private sealed record Common(Option<DirectoryInfo> Data, Option<string?> Postgres, Option<string> Schema, Option<bool> AsJson);

    private static Common AddCommon(Command command)
    {
        var data = new Option<DirectoryInfo>("--data", "--dir") { Description = $"The school's data directory (embedded store: {DatabaseFile}).", DefaultValueFactory = _ => new DirectoryInfo("school-data") };
        var postgres = new Option<string?>("--postgres") { Description = "Use the production store on PostgreSQL (Marten) at this connection string instead of the embedded one in --data (default: env IMIKELGO_SCHOOL_POSTGRES)." };
        var schema = new Option<string>("--schema") { Description = "The PostgreSQL schema of the school's store (with --postgres).", DefaultValueFactory = _ => "imikelgo_school" };
        var json = new Option<bool>("--json") { Description = "Write the result as JSON on stdout (for scripts); no progress display." };
        command.Options.Add(data);
        command.Options.Add(postgres);
        command.Options.Add(schema);
        command.Options.Add(json);
        return new Common(data, postgres, schema, json);
    }

    private static Option<int> RetriesOption()
    {
        var retries = new Option<int>("--retries") { Description = "Retries of one relay request after a transient failure (exponential backoff from 1 s).", DefaultValueFactory = _ => 4 };
        retries.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is var n and < 0)
            {
                r.AddError($"--retries must be 0 or more, got {n}");
            }
        });
        return retries;
    }

    private static Command Init(TextWriter output, TextWriter error)
    {
        var id = new Option<string>("--school") { Description = "The school's id ([A-Za-z0-9._-]; it names the root certificate and the enrollment caller).", Required = true };
        var relay = new Option<string>("--relay") { Description = "The relay's https base address (e.g. https://relay.example:443/).", Required = true };
        var pin = new Option<string?>("--relay-pin") { Description = "The SHA-256 fingerprint of the relay's certificate (printed by 'imikelgo relay serve'); devices get it in the QR code." };
        var enrollment = new Option<string?>("--enrollment-account") { Description = "The relay account the enrollment caller (id = school id) is registered in (default: the school id; 'relay-registrations' always lists it)." };
        var command = new Command("init", "Create the school: root certificate, keys and settings in a new store. Refuses a store that already holds a school.") { id, relay, pin, enrollment };
        var common = AddCommon(command);
        command.SetAction(async (parse, ct) =>
        {
            if (!TryParseSettings(parse.GetValue(relay)!, parse.GetValue(pin), parse.GetValue(enrollment), error, out var settings))
            {
                return LogCheck.ExitUsage;
            }

            return await WithStoreAsync(parse, common, error, create: true, async store =>
            {
                if (await store.GetValueAsync(SettingsKey, ct).ConfigureAwait(false) is not null)
                {
                    await error.WriteLineAsync($"error: {Where(parse, common)} already holds a school; use the other 'school' commands (or a new --data directory)").ConfigureAwait(false);
                    return ExitState;
                }

                await using var school = await SchoolConnector.InitAsync(store, parse.GetValue(id)!, ConnectorSettings(settings, null), ct).ConfigureAwait(false);
                await SaveSettingsAsync(store, settings, ct).ConfigureAwait(false);
                await WriteAsync(output, parse.GetValue(common.AsJson), new { school = school.SchoolId, rootFingerprint = school.RootFingerprint, relay = settings.Relay, relayPin = settings.RelayPin, enrollmentAccount = settings.EnrollmentAccount ?? school.SchoolId, store = Where(parse, common) },
                    $"school {school.SchoolId} created in {Where(parse, common)}; root certificate sha256 {school.RootFingerprint}; relay {settings.Relay}{(settings.RelayPin is null ? " (not pinned: licenses issued before 'school settings --relay-pin' cannot enroll a device)" : " pinned " + settings.RelayPin)}\n" +
                    "next: 'imikelgo school import FILE', then 'imikelgo school publish'").ConfigureAwait(false);
                return 0;
            }, exclusive: true).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Settings(TextWriter output, TextWriter error)
    {
        var relay = new Option<string?>("--relay") { Description = "A new relay address." };
        var pin = new Option<string?>("--relay-pin") { Description = "A new relay certificate fingerprint (e.g. after the relay's certificate changed)." };
        var enrollment = new Option<string?>("--enrollment-account") { Description = "The relay account the enrollment caller is registered in (default: the school id)." };
        var command = new Command("settings", "Show the school's settings; with options, change them (kept in the store).") { relay, pin, enrollment };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, null, ct, async (school, settings, store) =>
        {
            if (Changes(parse))
            {
                if (!TryParseSettings(parse.GetValue(relay) ?? settings.Relay, parse.GetValue(pin) ?? settings.RelayPin, parse.GetValue(enrollment) ?? settings.EnrollmentAccount, error, out var changed))
                {
                    return LogCheck.ExitUsage;
                }

                settings = changed;
                await SaveSettingsAsync(store, settings, ct).ConfigureAwait(false);
            }

            await WriteAsync(output, parse.GetValue(common.AsJson), new { school = school.SchoolId, rootFingerprint = school.RootFingerprint, relay = settings.Relay, relayPin = settings.RelayPin, enrollmentAccount = settings.EnrollmentAccount ?? school.SchoolId, accounts = school.Accounts.Count, pendingImport = school.PendingImport },
                $"school {school.SchoolId}, root sha256 {school.RootFingerprint}\nrelay {settings.Relay}, pin {settings.RelayPin ?? "(none)"}, enrollment account {EnrollmentAccountOf(settings, school)}\n" +
                $"{school.Accounts.Count} account(s); {(school.PendingImport is null ? "no import pending" : "an import is pending: run 'imikelgo school publish'")}").ConfigureAwait(false);
            return 0;
        }, writes: Changes(parse)));
        return command;

        bool Changes(ParseResult parse) => parse.GetValue(relay) is not null || parse.GetValue(pin) is not null || parse.GetValue(enrollment) is not null;
    }

    private static Command RelayRegistrations(TextWriter output, TextWriter error)
    {
        var write = new Option<DirectoryInfo?>("--write") { Description = "Merge them into DIR/schools.json (the relay's data directory; read at the relay's next start)." };
        var command = new Command("relay-registrations", "The school callers the relay operator registers (one per account, plus the enrollment caller): schools.json entries.") { write };
        var common = AddCommon(command);
        command.SetAction((parse, ct) => WithSchoolAsync(parse, common, error, null, ct, async (school, _, _) =>
        {
            var registrations = school.RelayRegistrations(school.Accounts).Select(r => new SchoolRegistration(r.Account, r.Caller, r.SigningKey)).ToList();
            if (parse.GetValue(write) is { } dir)
            {
                // The relay keeps one school caller per caller id; this school's callers (and any other caller of its accounts) are replaced.
                var accounts = registrations.Select(r => r.Account).ToHashSet(StringComparer.Ordinal);
                var merged = RelayHost.ReadSchools(dir.FullName).Where(s => !accounts.Contains(s.Account) && registrations.All(r => r.School != s.School)).Concat(registrations).ToList();
                Directory.CreateDirectory(dir.FullName);
                await File.WriteAllBytesAsync(Path.Combine(dir.FullName, RelayHost.SchoolsFileName), JsonSerializer.SerializeToUtf8Bytes(merged, Json), ct).ConfigureAwait(false);
            }

            if (parse.GetValue(common.AsJson))
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(registrations, Json)).ConfigureAwait(false);
            }
            else
            {
                foreach (var r in registrations)
                {
                    await output.WriteLineAsync($"account {r.Account} caller {r.School} key {r.SigningKey}").ConfigureAwait(false);
                }

                await output.WriteLineAsync(parse.GetValue(write) is { } d
                    ? $"{registrations.Count} registration(s) written to {Path.Combine(d.FullName, RelayHost.SchoolsFileName)}; restart the relay to apply"
                    : $"{registrations.Count} registration(s); write them with --write RELAY_DATA_DIR (or --json > schools.json)").ConfigureAwait(false);
            }

            return 0;
        }, writes: false));
        return command;
    }

    private static bool TryParseSettings(string relay, string? pin, string? enrollmentAccount, TextWriter error, out CliSettings settings)
    {
        settings = null!;
        if (!Uri.TryCreate(relay, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
        {
            error.WriteLine($"error: --relay must be an absolute https:// address, got '{relay}'");
            return false;
        }

        var normalizedPin = pin?.Replace(":", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant();
        if (normalizedPin is not null && (normalizedPin.Length != 64 || !normalizedPin.All(Uri.IsHexDigit)))
        {
            error.WriteLine("error: --relay-pin must be the relay certificate's SHA-256 fingerprint: 64 hex digits");
            return false;
        }

        if (enrollmentAccount is not null && !IMikelGo.Sealing.Identifiers.IsValid(enrollmentAccount))
        {
            error.WriteLine($"error: --enrollment-account must be an account id ([A-Za-z0-9._-]{{1,64}}), got '{enrollmentAccount}'");
            return false;
        }

        settings = new CliSettings(uri.AbsoluteUri, normalizedPin, enrollmentAccount);
        return true;
    }

    private static SchoolConnectorSettings ConnectorSettings(CliSettings settings, int? retries) => new()
    {
        RelayAddress = new Uri(settings.Relay),
        RelayCertificateSha256 = settings.RelayPin,
        EnrollmentAccount = settings.EnrollmentAccount,
        ConfigureRelay = retries is { } n ? o => o.MaxRetries = n : null,
    };

    private static Task SaveSettingsAsync(ISchoolConnectorStore store, CliSettings settings, CancellationToken ct) =>
        store.SetValueAsync(SettingsKey, JsonSerializer.SerializeToUtf8Bytes(settings, Json), ct);

    private static string Where(ParseResult parse, Common common) =>
        PostgresOf(parse, common) is null ? parse.GetValue(common.Data)!.FullName : $"PostgreSQL schema {parse.GetValue(common.Schema)}";

    // An explicit --postgres with an empty value (e.g. an unset shell variable) is refused rather than silently falling
    // back to the embedded store in --data.
    private static string? PostgresOf(ParseResult parse, Common common) =>
        parse.GetResult(common.Postgres) is not null
            ? parse.GetValue(common.Postgres) is { } option && !string.IsNullOrWhiteSpace(option)
                ? Parsable(option)
                : throw new ArgumentException("--postgres needs a connection string (e.g. 'Host=db;Username=school;Password=…;Database=school'); it was empty")
        : Environment.GetEnvironmentVariable("IMIKELGO_SCHOOL_POSTGRES") is { Length: > 0 } env ? env : null;

    // Npgsql answers an empty key ("Host=db;;=x") with a KeyNotFoundException, which read as an unknown account (exit 22).
    private static string Parsable(string connection)
    {
        try
        {
            _ = new Npgsql.NpgsqlConnectionStringBuilder(connection);
            return connection;
        }
        catch (KeyNotFoundException)
        {
            throw new ArgumentException("--postgres is not a valid connection string: a key is empty (e.g. 'Host=db;Username=school;Password=…;Database=school')");
        }
    }

    /// <summary>
    /// Opens the store (creating it only for init) and maps every expected failure to one line on stderr and an exit code.
    /// <paramref name="exclusive"/>: the command changes the school or talks to the relay, so it holds the store's writer
    /// lock (<see cref="ISchoolConnectorStore.TryLockWriterAsync"/>, embedded or PostgreSQL) for its duration and is
    /// refused while another such command or a school server holds it: two writers never extend the same chains (or
    /// approve with a stale personnel list). Read-only commands (settings, device list, report) do not take it.
    /// </summary>
    private static Task<int> WithStoreAsync(ParseResult parse, Common common, TextWriter error, bool create, Func<ISchoolConnectorStore, Task<int>> work, bool exclusive) =>
        GuardAsync(error, async () =>
        {
            var store = await OpenStoreAsync(parse, common, create).ConfigureAwait(false);
            if (store is null)
            {
                await error.WriteLineAsync($"error: no school in {Where(parse, common)}; run 'imikelgo school init' first").ConfigureAwait(false);
                return ExitState;
            }

            await using (store.ConfigureAwait(false))
            {
                var writer = exclusive ? await store.TryLockWriterAsync(CancellationToken.None).ConfigureAwait(false) : null;
                if (exclusive && writer is null)
                {
                    await error.WriteLineAsync($"error: the school in {Where(parse, common)} is in use by another writer ('school serve', a school server, or a running command); " +
                        "stop the school server first (it syncs and approves enrollments itself) or wait for the command to finish").ConfigureAwait(false);
                    return ExitState;
                }

                try
                {
                    return await work(store).ConfigureAwait(false);
                }
                finally
                {
                    if (writer is not null)
                    {
                        await writer.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }
        });

    /// <summary>Runs <paramref name="work"/>, mapping every expected failure to one line on stderr and an exit code.</summary>
    private static async Task<int> GuardAsync(TextWriter error, Func<Task<int>> work)
    {
        try
        {
            return await work().ConfigureAwait(false);
        }
        catch (SchoolImportException e)
        {
            await error.WriteLineAsync($"error: import refused, nothing was imported: {e.Message}").ConfigureAwait(false);
            return ExitImport;
        }
        catch (RelayException e)
        {
            await error.WriteLineAsync($"relay: {e.Message}").ConfigureAwait(false);
            if (e.Problem is { Status: 401, Type: RelayProtocol.UnauthenticatedProblemType })
            {
                // The usual first-run cause: the relay was started before it was given this school's registrations.
                await error.WriteLineAsync("hint: the relay does not accept this school's key; merge them into the relay's data folder with 'imikelgo school relay-registrations --write RELAY_DATA_DIR' and restart the relay (docs/cli.md)").ConfigureAwait(false);
            }

            return DeviceCommands.ExitRelay;
        }
        catch (KeyNotFoundException e)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitUnknown;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            // The user's words, not the API's: no " (Parameter 'x')" suffix.
            var message = e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", string.Empty, StringComparison.Ordinal) : e.Message;
            await error.WriteLineAsync($"error: {message}").ConfigureAwait(false);
            return LogCheck.ExitUsage;
        }
        catch (Exception e) when (e is not InvalidOperationException && DatabaseFailure(e) is { } reason)
        {
            await error.WriteLineAsync($"error: PostgreSQL: {reason}").ConfigureAwait(false);
            return ExitState;
        }
        catch (Exception e) when (e is InvalidOperationException or DbException or System.Security.Cryptography.CryptographicException)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitState;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return LogCheck.ExitUsage;
        }
    }

    /// <summary>
    /// The one-line reason of a failure reaching or using PostgreSQL (unreachable or unknown host, authentication, missing
    /// database, no right to create the schema), wherever Npgsql, Weasel or Marten wrapped it; null for other failures.
    /// Marten's schema errors carry the whole DDL script in their message, so only the server's own message is shown.
    /// </summary>
    private static string? DatabaseFailure(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case Npgsql.PostgresException pg:
                    return $"{pg.SqlState}: {pg.MessageText}";
                case Npgsql.NpgsqlException npgsql when npgsql.InnerException is null or not Npgsql.NpgsqlException:
                    return OneLine(npgsql.InnerException is System.Net.Sockets.SocketException refused ? $"{npgsql.Message} ({refused.Message})" : npgsql.Message);
                case System.Net.Sockets.SocketException socket:
                    return $"cannot reach the server: {socket.Message}";
            }
        }

        return null;

        static string OneLine(string text) => text.ReplaceLineEndings(" ");
    }

    private static async Task<ISchoolConnectorStore?> OpenStoreAsync(ParseResult parse, Common common, bool create)
    {
        if (PostgresOf(parse, common) is { } connection)
        {
            var schema = parse.GetValue(common.Schema)!;
            if (!create && !await HoldsSchoolStoreAsync(connection, schema).ConfigureAwait(false))
            {
                // A mistyped --schema on a command other than init creates nothing.
                return null;
            }

            // Created on demand (init), or brought up to date; a schema without a school has no settings, which WithSchoolAsync reports.
            return await MartenSchoolConnectorStore.OpenAsync(connection, schema, CancellationToken.None).ConfigureAwait(false);
        }

        var dir = parse.GetValue(common.Data)!;
        var path = Path.Combine(dir.FullName, DatabaseFile);
        if (!create && !File.Exists(path))
        {
            return null;
        }

        Directory.CreateDirectory(dir.FullName);
        return await SqliteSchoolConnectorStore.OpenAsync(path, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Whether <paramref name="schema"/> holds the school connector's tables (read-only: creates nothing).</summary>
    private static async Task<bool> HoldsSchoolStoreAsync(string connection, string schema)
    {
        MartenSchoolConnectorStore.CheckSchemaName(schema);
        await using var db = new Npgsql.NpgsqlConnection(connection);
        await db.OpenAsync().ConfigureAwait(false);
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", db);
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = schema + ".school_values" });
        return (bool)(await cmd.ExecuteScalarAsync().ConfigureAwait(false))!;
    }

    /// <summary>Opens the school with its saved settings and runs <paramref name="work"/>.</summary>
    private static Task<int> WithSchoolAsync(ParseResult parse, Common common, TextWriter error, int? retries, CancellationToken ct, Func<SchoolConnector, CliSettings, ISchoolConnectorStore, Task<int>> work, bool writes = true) =>
        WithStoreAsync(parse, common, error, create: false, async store =>
        {
            if (await ReadSettingsAsync(store, ct).ConfigureAwait(false) is not { } settings)
            {
                await error.WriteLineAsync($"error: no school in {Where(parse, common)}; run 'imikelgo school init' first").ConfigureAwait(false);
                return ExitState;
            }

            var school = await SchoolConnector.OpenAsync(store, ConnectorSettings(settings, retries), ct).ConfigureAwait(false);
            await using (school.ConfigureAwait(false))
            {
                return await work(school, settings, store).ConfigureAwait(false);
            }
        }, writes);

    /// <summary>The CLI settings in the store, or null when there is no school.</summary>
    private static async Task<CliSettings?> ReadSettingsAsync(ISchoolConnectorStore store, CancellationToken ct) =>
        await store.GetValueAsync(SettingsKey, ct).ConfigureAwait(false) is { } bytes
            ? JsonSerializer.Deserialize<CliSettings>(bytes, Json) ?? throw new InvalidOperationException("the stored settings are empty; run 'imikelgo school settings --relay …'")
            : null;

    private static string EnrollmentAccountOf(CliSettings settings, SchoolConnector school) =>
        settings.EnrollmentAccount ?? $"{school.SchoolId} (the school id)";

    private static Task WriteAsync(TextWriter output, bool json, object value, string text) =>
        output.WriteLineAsync(json ? JsonSerializer.Serialize(value, Json) : text);

    /// <summary>A progress display only on an interactive stderr, never with --json or when stderr is redirected (or a test's writer).</summary>
    private static IAnsiConsole? ProgressConsole(TextWriter error, bool json) =>
        json || Console.IsErrorRedirected || !ReferenceEquals(error, Console.Error)
            ? null
            : AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(error) });

    private static async Task<T> WithProgressAsync<T>(TextWriter error, bool json, string title, Func<IProgress<SchoolProgress>?, Task<T>> work)
    {
        if (ProgressConsole(error, json) is not { } console)
        {
            return await work(null).ConfigureAwait(false);
        }

        return await console.Progress().AutoClear(true).StartAsync(async context =>
        {
            var task = context.AddTask(title);
            var progress = new Progress<SchoolProgress>(p =>
            {
                task.Description = p.Phase;
                task.MaxValue = Math.Max(1, p.Total);
                task.Value = p.Done;
            });
            return await work(progress).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    private static async Task<T> WithStatusAsync<T>(TextWriter error, bool json, string title, Func<Task<T>> work) =>
        ProgressConsole(error, json) is { } console
            ? await console.Status().StartAsync(title, _ => work()).ConfigureAwait(false)
            : await work().ConfigureAwait(false);

    private static string Minutes(int minute) => string.Create(CultureInfo.InvariantCulture, $"{minute / 60:00}:{minute % 60:00}");
}
