using FluentAssertions;
using Npgsql;
using Xunit;

namespace IMikelGo.Cli.Tests;

/// <summary>
/// <c>imikelgo school … --postgres CONN --schema S</c> and <c>school serve</c> given bad input: an unreachable, unknown or
/// refusing server, a malformed or empty connection string, a bad or reserved schema name, a mistyped schema on a
/// command that only reads, out-of-range options. Each gets one line on stderr (never a stack trace, never a
/// password), its documented exit code, and creates nothing: no schema, no embedded store.
/// </summary>
public sealed class SchoolCliAdversarialTests : IDisposable
{
    private const string Hint = "Run 'imikelgo ";
    private readonly string _root = Directory.CreateTempSubdirectory("imikelgo-school-cli-adv-").FullName;

    private string SchoolDir => Path.Combine(_root, "school");

    private static string[] Init(string connection, string schema) =>
        ["init", "--school", "s1", "--relay", "https://relay.example/", "--postgres", connection, "--schema", schema];

    private static string Variant(Action<NpgsqlConnectionStringBuilder> change)
    {
        var builder = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Timeout = 5 };
        change(builder);
        return builder.ConnectionString;
    }

    private static string NewSchema() => "adv_" + Guid.NewGuid().ToString("N")[..12];

    private static async Task<bool> SchemaExistsAsync(string schema)
    {
        await using var db = new NpgsqlConnection(PostgresServer.ConnectionString);
        await db.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", db);
        cmd.Parameters.Add(new NpgsqlParameter { Value = schema });
        return (long)(await cmd.ExecuteScalarAsync())! > 0;
    }

    private static async Task<long> MartenFunctionsInAsync(string schema)
    {
        await using var db = new NpgsqlConnection(PostgresServer.ConnectionString);
        await db.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname LIKE 'mt\\_%'", db);
        cmd.Parameters.Add(new NpgsqlParameter { Value = schema });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>Runs <c>imikelgo school ARGS --data DIR</c> (bounded, so a command that wrongly keeps running fails the test).</summary>
    private async Task<string> FailsAsync(int expected, params string[] args)
    {
        var run = Task.Run(() => CliTests.Invoke(["school", .. args, "--data", SchoolDir]));
        (await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60)))).Should().BeSameAs(run, $"'school {string.Join(' ', args)}' must stop, not run");
        var (code, output, err) = await run;
        code.Should().Be(expected, $"stdout: {output}\nstderr: {err}");
        err.Should().NotContain("   at ", "errors are one line, never a stack trace");
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith(Hint, StringComparison.Ordinal)).ToList();
        lines.Should().ContainSingle($"one line on stderr, got: {err}").Which.Should().StartWith("error: ");
        output.Should().BeEmpty();
        return lines[0];
    }

    [PostgresFact]
    public async Task An_unreachable_unknown_or_refusing_server_is_one_line_exit_20_naming_the_cause_and_nothing_is_created()
    {
        var password = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString).Password!;
        var cases = new (string Connection, string Reason)[]
        {
            (Variant(b => b.Password = "not-the-password-4711"), "28P01"),
            (Variant(b => b.Port = 1), "Failed to connect"),
            (Variant(b => b.Host = "no-such-host.invalid"), "cannot reach the server"),
            (Variant(b => b.Database = "no_such_database"), "3D000"),
        };

        foreach (var (connection, reason) in cases)
        {
            var schema = NewSchema();
            foreach (var args in new[] { Init(connection, schema), ["report", "--postgres", connection, "--schema", schema], ["serve", "--postgres", connection, "--schema", schema] })
            {
                var line = await FailsAsync(SchoolCommands.ExitState, args);
                line.Should().StartWith("error: PostgreSQL: ").And.Contain(reason);
                line.Should().NotContain(password).And.NotContain("not-the-password-4711", "a connection string's password is never echoed");
            }

            (await SchemaExistsAsync(schema)).Should().BeFalse();
        }

        Directory.Exists(SchoolDir).Should().BeFalse("--postgres never falls back to the embedded store");
    }

    [PostgresFact]
    public async Task A_malformed_or_empty_connection_string_is_a_usage_error_and_nothing_is_created()
    {
        var schema = NewSchema();
        (await FailsAsync(LogCheck.ExitUsage, Init("this is not a connection string", schema))).Should().Contain("initialization string");
        (await FailsAsync(LogCheck.ExitUsage, Init("Host=127.0.0.1;Bogus Key=1;Password=sekret-4711", schema))).Should().Contain("bogus key").And.NotContain("sekret-4711");
        (await FailsAsync(LogCheck.ExitUsage, Init("Host=127.0.0.1;Port=abc;Password=sekret-4711", schema))).Should().Contain("port").And.NotContain("sekret-4711");

        // An explicit empty value (an unset shell variable) is refused, not taken as "use the embedded store".
        (await FailsAsync(LogCheck.ExitUsage, Init("", schema))).Should().Contain("--postgres needs a connection string");
        (await FailsAsync(LogCheck.ExitUsage, Init("  ", schema))).Should().Contain("--postgres needs a connection string");
        (await FailsAsync(LogCheck.ExitUsage, "report", "--postgres", "")).Should().Contain("--postgres needs a connection string");

        (await SchemaExistsAsync(schema)).Should().BeFalse();
        Directory.Exists(SchoolDir).Should().BeFalse("nothing fell back to the embedded store");
    }

    [Fact]
    public async Task A_connection_string_with_an_empty_key_is_a_usage_error_not_an_unknown_account()
    {
        foreach (var connection in new[] { "garbage;;=", "Host;;=" })
        {
            (await FailsAsync(LogCheck.ExitUsage, "report", "--postgres", connection)).Should().Be(
                "error: --postgres is not a valid connection string: a key is empty (e.g. 'Host=db;Username=school;Password=…;Database=school')");
        }

        Directory.Exists(SchoolDir).Should().BeFalse("nothing fell back to the embedded store");
    }

    [PostgresFact]
    public async Task Bad_and_reserved_schema_names_are_refused_before_any_sql()
    {
        foreach (var schema in new[] { "Bad-Schema", "a;drop schema public", "\"x\"", "1abc", "", new string('a', 64) })
        {
            (await FailsAsync(LogCheck.ExitUsage, Init(PostgresServer.ConnectionString, schema))).Should().Contain("not a valid schema name");
            (await FailsAsync(LogCheck.ExitUsage, "report", "--postgres", PostgresServer.ConnectionString, "--schema", schema)).Should().Contain("not a valid schema name");
        }

        // PostgreSQL keeps pg_… and information_schema for itself; a superuser's init there used to dump Marten's whole DDL script.
        var before = await MartenFunctionsInAsync("pg_catalog");
        foreach (var schema in new[] { "pg_catalog", "pg_school", "information_schema" })
        {
            (await FailsAsync(LogCheck.ExitUsage, Init(PostgresServer.ConnectionString, schema))).Should().Contain("reserves");
        }

        (await MartenFunctionsInAsync("pg_catalog")).Should().Be(before);
        (await SchemaExistsAsync("pg_school")).Should().BeFalse();
    }

    [PostgresFact]
    public async Task A_mistyped_schema_on_a_command_that_does_not_create_says_no_school_and_creates_nothing()
    {
        var schema = NewSchema();
        string[] pg = ["--postgres", PostgresServer.ConnectionString, "--schema", schema];
        string[][] commands = [["report", .. pg], ["settings", .. pg], ["device", "list", .. pg], ["publish", .. pg], ["serve", .. pg]];
        foreach (var args in commands)
        {
            (await FailsAsync(SchoolCommands.ExitState, args)).Should().Be($"error: no school in PostgreSQL schema {schema}; run 'imikelgo school init' first");
        }

        (await SchemaExistsAsync(schema)).Should().BeFalse("only init creates a schema");
    }

    [Fact]
    public async Task Serve_and_the_relay_commands_refuse_out_of_range_options_before_starting()
    {
        CliTests.Invoke("school", "init", "--school", "s1", "--relay", "https://127.0.0.1:1/", "--data", SchoolDir).Code.Should().Be(0);

        (await FailsAsync(LogCheck.ExitUsage, "serve", "--pull-seconds", "-1")).Should().Contain("--pull-seconds must be 0 to");
        // Longer than a timer takes: the host used to start, print "running", fail its scheduler and exit 0.
        (await FailsAsync(LogCheck.ExitUsage, "serve", "--pull-seconds", "5000000")).Should().Contain("--pull-seconds must be 0 to 4294967");
        (await FailsAsync(LogCheck.ExitUsage, "serve", "--pull-seconds", "abc")).Should().Contain("abc");
        // Negative retries: serve used to start and run with them.
        (await FailsAsync(LogCheck.ExitUsage, "serve", "--retries", "-3")).Should().Contain("--retries must be 0 or more, got -3");
        foreach (var command in new[] { new[] { "sync" }, ["enrollments"], ["wipe", "--account", "anna"] })
        {
            (await FailsAsync(LogCheck.ExitUsage, [.. command, "--retries", "-1"])).Should().Contain("--retries must be 0 or more");
        }

        // The school is untouched and not locked by any of them.
        CliTests.Invoke("school", "settings", "--data", SchoolDir, "--json").Code.Should().Be(0);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
