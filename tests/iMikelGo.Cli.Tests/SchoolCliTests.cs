using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using FluentAssertions;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Relay;
using IMikelGo.School.Connector;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite.School;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace IMikelGo.Cli.Tests;

/// <summary>
/// <c>imikelgo school …</c> end to end: real files, the real SQLite store, a real relay on Kestrel (pinned HTTPS,
/// schools.json written by the CLI) and a real <see cref="TeacherDevice"/> enrolling through the relay hand-off.
/// </summary>
public sealed class SchoolCliTests : IDisposable
{
    private const string Data = "data/xhstt/ES-SS-08-SpainSchool.xml";
    private const string Fet = "FET5.16.0_2012-03-09";
    private const string Lectio = "LectioIntegerProgramming";
    private static readonly DateOnly Monday = new(2026, 9, 21);
    private readonly string _root = Directory.CreateTempSubdirectory("imikelgo-school-cli-").FullName;

    private string SchoolDir => Path.Combine(_root, "school");

    private static string SpainSchool => SharedDataFactAttribute.PathOf(Data)!;

    [Fact]
    public async Task A_relay_not_given_the_schools_registrations_refuses_with_a_hint_naming_the_command_that_fixes_it()
    {
        await using var relay = new TestRelay(Path.Combine(_root, "relay"));
        await relay.StartAsync();
        School(0, "init", "--school", "s1", "--relay", relay.Address.AbsoluteUri, "--relay-pin", relay.Pin);

        var enrollments = School(DeviceCommands.ExitRelay, "enrollments");

        enrollments.Err.Should().Contain("401").And.Contain("hint:").And.Contain("school relay-registrations --write RELAY_DATA_DIR");
    }

    [SharedDataFact(Data)]
    public async Task A_whole_session_init_import_publish_diff_license_enroll_sync_wipe_report()
    {
        await using var relay = new TestRelay(Path.Combine(_root, "relay"));
        await relay.StartAsync();
        var url = relay.Address.AbsoluteUri;

        var init = Json(School(0, "init", "--school", "es-ss-08", "--relay", url, "--relay-pin", relay.Pin));
        init.GetProperty("school").GetString().Should().Be("es-ss-08");
        init.GetProperty("relayPin").GetString().Should().Be(relay.Pin);
        School(SchoolCommands.ExitState, "init", "--school", "other", "--relay", url).Err.Should().Contain("already holds a school");

        var imported = Json(School(0, "import", SpainSchool, "--solution", Fet));
        imported.GetProperty("teachers").GetInt32().Should().Be(66);
        var first = Json(School(0, "publish"));
        first.GetProperty("accounts").GetInt32().Should().Be(66);
        first.GetProperty("rescheduled").GetInt32().Should().Be(0);
        var firstEvents = first.GetProperty("events").GetInt32();
        first.GetProperty("byType").EnumerateObject().Sum(p => p.Value.GetInt32()).Should().Be(firstEvents - 66, "plus one encryption key per account");
        (await StoredEventsAsync()).Should().Be(firstEvents, "the published count is what the store holds");

        Json(School(0, "import", SpainSchool, "--solution", Lectio));
        School(LogCheck.ExitUsage, "publish", "--effective-from", "2027-09-14").Err.Should()
            .Be("error: the effective date 2027-09-14 is after the term's last day 2026-12-18: no lesson of this timetable would change; nothing was published" + Environment.NewLine);
        var diff = Json(School(0, "publish", "--effective-from", "2026-09-14"));
        var rescheduled = diff.GetProperty("rescheduled").GetInt32();
        rescheduled.Should().BePositive().And.Be(diff.GetProperty("byType").GetProperty("LessonRescheduled").GetInt32());
        (await StoredEventsAsync()).Should().Be(firstEvents + diff.GetProperty("events").GetInt32());
        School(SchoolCommands.ExitState, "publish").Err.Should().Contain("nothing imported");

        // The relay operator's registrations: 66 account callers and the enrollment caller, read back by the relay itself.
        var registrations = Json(School(0, "relay-registrations", "--write", relay.DataDirectory));
        registrations.GetArrayLength().Should().Be(67);
        RelayHost.ReadSchools(relay.DataDirectory).Select(s => s.School).Should().BeEquivalentTo(registrations.EnumerateArray().Select(r => r.GetProperty("school").GetString()));
        await relay.RestartAsync();

        var teacher = await TeacherWithStudentsAsync();
        var qr = Path.Combine(_root, "qr.png");
        var license = Json(School(0, "license", "issue", "--account", teacher, "--qr-png", qr));
        var password = license.GetProperty("password").GetString()!;
        EnrollmentUri.TryParse(license.GetProperty("uri").GetString(), out var uri, out var uriError).Should().BeTrue(uriError);
        uri!.RelayPin.Should().Be(relay.Pin, "the device pins the relay from the QR code");
        uri.License.Value.Should().Be(license.GetProperty("license").GetString());
        File.ReadAllBytes(qr).Take(8).Should().Equal(0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A);

        // Enrollment through the relay: the first 'enrollments' publishes the school's certificates, a later one approves.
        Json(School(0, "enrollments")).GetProperty("processed").GetInt32().Should().Be(0);
        await using var device = await TeacherDevice.OpenAsync(new TeacherDeviceOptions
        {
            DataDirectory = Path.Combine(_root, "phone"),
            Pbkdf2Iterations = 1000,
            DeviceLabel = "phone",
            ConfigureRelayEnrollment = o =>
            {
                o.FirstPollDelay = TimeSpan.FromMilliseconds(100);
                o.MaxPollDelay = TimeSpan.FromMilliseconds(300);
                o.Timeout = TimeSpan.FromMinutes(2);
            },
        }, CancellationToken.None);
        var enrolling = device.EnrollAsync(new EnrollmentInput(uri.ToString(), uri.License.Value, password, "4711"), CancellationToken.None);
        JsonElement approved = default;
        for (var attempt = 0; attempt < 120 && !enrolling.IsCompleted; attempt++)
        {
            approved = Json(School(0, "enrollments"));
            if (approved.GetProperty("approved").GetInt32() > 0)
            {
                break;
            }

            await Task.Delay(250);
        }

        await enrolling;
        approved.GetProperty("outcomes")[0].GetProperty("account").GetString().Should().Be(teacher);
        approved.GetProperty("outcomes")[0].GetProperty("device").GetString().Should().Be(device.DeviceId!.Value.Value);

        var sync = Json(School(0, "sync", "--retries", "0"));
        sync.GetProperty("sent").GetInt32().Should().BePositive();
        sync.GetProperty("failures").GetArrayLength().Should().Be(0);
        (await device.SyncAsync(null, CancellationToken.None)).Refused.Should().BeEmpty();
        var lesson = device.Week(Monday).First(l => l.Students.Count > 0);
        (await device.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, true, "ill", CancellationToken.None)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, CancellationToken.None);
        Json(School(0, "sync", "--account", teacher, "--retries", "0")).GetProperty("received").GetInt32().Should().BePositive();

        var devices = Json(School(0, "device", "list"));
        devices.GetArrayLength().Should().Be(1);
        devices[0].GetProperty("account").GetString().Should().Be(teacher);
        devices[0].GetProperty("revoked").GetBoolean().Should().BeFalse();
        devices[0].GetProperty("lastContact").ValueKind.Should().Be(JsonValueKind.String);

        var report = Json(School(0, "report"));
        report.GetProperty("absences").EnumerateArray().Should().ContainSingle(a =>
            a.GetProperty("account").GetString() == teacher && a.GetProperty("student").GetString() == lesson.Students[0].Id.Value && a.GetProperty("excused").GetInt32() == 1);
        report.GetProperty("reschedules").EnumerateArray().Count(r => r.GetProperty("bySchool").GetBoolean()).Should().Be(rescheduled);

        // Unknown accounts and devices: one line, exit 22, nothing done.
        School(SchoolCommands.ExitUnknown, "license", "issue", "--account", "nobody").Err.Should().Contain("unknown account 'nobody'");
        School(SchoolCommands.ExitUnknown, "wipe", "--account", "nobody").Err.Should().Contain("unknown account 'nobody'");
        School(SchoolCommands.ExitUnknown, "wipe", "--account", teacher, "--device", "no-such-device").Err.Should().Contain("unknown device");

        var wipe = Json(School(0, "wipe", "--account", teacher, "--device", device.DeviceId!.Value.Value, "--reason", "lost phone", "--retries", "0"));
        wipe.GetProperty("revoked")[0].GetString().Should().Be(device.DeviceId!.Value.Value);
        Json(School(0, "device", "list", "--account", teacher))[0].GetProperty("revocationReason").GetString().Should().Be("lost phone");
        (await device.SyncAsync(null, CancellationToken.None)).Wiped.Should().BeTrue();

        // The relay down: one line on stderr (the first failure and how many more), exit 13, quickly (the circuit stops after the first).
        await relay.StopAsync();
        var down = School(DeviceCommands.ExitRelay, "sync", "--retries", "0");
        down.Err.Should().StartWith("relay: ").And.Contain("and 65 more");
        down.Err.TrimEnd().Should().NotContain("\n", "one line");
        Json(down).GetProperty("failures").GetArrayLength().Should().Be(1, "the sync stops at the first unreachable relay");
        Json(down).GetProperty("notAttempted").GetArrayLength().Should().Be(65);
    }

    [SharedDataFact(Data)]
    public async Task An_inconsistent_import_names_the_element_and_stores_nothing()
    {
        School(0, "init", "--school", "es-ss-08", "--relay", "https://relay.invalid/");
        var xml = await File.ReadAllTextAsync(SpainSchool);
        var solutions = xml.IndexOf("<SolutionGroups>", StringComparison.Ordinal);
        var time = xml.IndexOf("<Time Reference=\"", solutions, StringComparison.Ordinal);
        var end = xml.IndexOf("\"/>", time, StringComparison.Ordinal);
        var bad = Path.Combine(_root, "inconsistent.xml");
        await File.WriteAllTextAsync(bad, xml[..time] + "<Time Reference=\"NoSuchTime" + xml[end..]);

        var refused = School(SchoolCommands.ExitImport, "import", bad);
        refused.Err.Should().Contain("Time[@Reference='NoSuchTime']").And.Contain("(line ").And.Contain("nothing was imported");
        refused.Err.TrimEnd().Should().NotContain("\n", "one line, no stack trace");

        var truncated = Path.Combine(_root, "truncated.xml");
        await File.WriteAllTextAsync(truncated, xml[..(xml.Length / 2)]);
        School(SchoolCommands.ExitImport, "import", truncated).Err.Should().Contain("nothing was imported");

        School(SchoolCommands.ExitState, "publish").Err.Should().Contain("nothing imported to publish");
        await using var store = await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(SchoolDir, SchoolCommands.DatabaseFile), CancellationToken.None);
        (await store.ReadEventsAsync(CancellationToken.None)).Should().BeEmpty();
        (await store.ImportsAsync(CancellationToken.None)).Should().BeEmpty();
    }

    [PostgresFact]
    public async Task With_postgres_the_school_lives_in_Marten_between_invocations_and_nothing_touches_the_data_directory()
    {
        var schema = "cli_" + Guid.NewGuid().ToString("N")[..12];
        string[] pg = ["--postgres", PostgresServer.ConnectionString, "--schema", schema];
        School(SchoolCommands.ExitState, ["publish", .. pg]).Err.Should().Contain($"no school in PostgreSQL schema {schema}");
        School(LogCheck.ExitUsage, ["init", "--school", "s1", "--relay", "https://relay.example/", "--postgres", PostgresServer.ConnectionString, "--schema", "Bad-Schema"])
            .Err.Should().Contain("not a valid schema name");

        Json(School(0, ["init", "--school", "musikschule", "--relay", "https://relay.example/", .. pg])).GetProperty("school").GetString().Should().Be("musikschule");
        School(SchoolCommands.ExitState, ["init", "--school", "other", "--relay", "https://relay.example/", .. pg]).Err.Should().Contain("already holds a school");
        var file = Path.Combine(_root, "school.json");
        await File.WriteAllTextAsync(file, DocumentedJsonSchool());
        Json(School(0, ["import", file, .. pg])).GetProperty("teachers").GetInt32().Should().Be(2);
        var published = Json(School(0, ["publish", .. pg]));
        published.GetProperty("accounts").GetInt32().Should().Be(2);
        School(SchoolCommands.ExitState, ["publish", .. pg]).Err.Should().Contain("nothing imported");

        var issued = School(0, ["license", "issue", "--account", "anna", .. pg]);
        issued.Err.Should().StartWith("warning: this enrollment code carries no relay certificate fingerprint", "init had no --relay-pin: no device would accept the code");
        var license = Json(issued);
        license.GetProperty("password").GetString().Should().NotBeNullOrEmpty();
        Json(School(0, ["device", "list", .. pg])).GetArrayLength().Should().Be(0);
        Json(School(0, ["report", .. pg])).GetProperty("absences").GetArrayLength().Should().Be(0);

        // What the CLI wrote is in PostgreSQL, read back through the Marten store itself; the data directory stays empty.
        await using (var store = await IMikelGo.Store.Marten.School.MartenSchoolConnectorStore.OpenAsync(PostgresServer.ConnectionString, schema, CancellationToken.None))
        {
            (await store.ReadEventsAsync(CancellationToken.None)).Should().HaveCount(published.GetProperty("events").GetInt32());
            (await store.ImportsAsync(CancellationToken.None)).Should().ContainSingle().Which.Published.Should().BeTrue();
        }

        File.Exists(Path.Combine(SchoolDir, SchoolCommands.DatabaseFile)).Should().BeFalse("--postgres never creates the embedded store");
    }

    [Fact]
    public async Task A_writing_command_is_refused_while_another_writer_holds_the_school_and_reading_ones_are_not()
    {
        Json(School(0, "init", "--school", "s1", "--relay", "https://relay.example/"));
        await using (var store = await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(SchoolDir, SchoolCommands.DatabaseFile), CancellationToken.None))
        {
            // What a running 'school serve' (or a school server host) holds.
            await using var writer = await store.TryLockWriterAsync(CancellationToken.None);
            writer.Should().NotBeNull();
            School(SchoolCommands.ExitState, "sync", "--retries", "0").Err.Should().Contain("in use by another writer");
            School(SchoolCommands.ExitState, "settings", "--relay-pin", new string('b', 64)).Err.Should().Contain("in use by another writer");
            Json(School(0, "settings")).GetProperty("relayPin").ValueKind.Should().Be(JsonValueKind.Null, "reading needs no lock, and the refused change did nothing");
        }

        Json(School(0, "settings", "--relay-pin", new string('b', 64))).GetProperty("relayPin").GetString().Should().Be(new string('b', 64), "free again once the writer is gone");
    }

    [Fact]
    public void Bad_inputs_get_one_line_and_their_exit_code()
    {
        School(SchoolCommands.ExitState, "publish").Err.Should().Contain("no school in").And.Contain("school init");
        File.Exists(Path.Combine(SchoolDir, SchoolCommands.DatabaseFile)).Should().BeFalse("a command other than init creates nothing");
        School(LogCheck.ExitUsage, "init", "--school", "s1", "--relay", "http://relay.example/").Err.Should().Contain("https://");
        School(LogCheck.ExitUsage, "init", "--school", "s1", "--relay", "https://relay.example/", "--relay-pin", "abc").Err.Should().Contain("64 hex digits");

        var init = Json(School(0, "init", "--school", "s1", "--relay", "https://relay.example/"));
        init.GetProperty("relayPin").ValueKind.Should().Be(JsonValueKind.Null);
        School(SchoolCommands.ExitState, "init", "--school", "s1", "--relay", "https://relay.example/").Err.Should().Contain("already holds a school");
        School(LogCheck.ExitUsage, "import", Path.Combine(_root, "missing.xml")).Err.Should().Contain("file not found");
        School(SchoolCommands.ExitUnknown, "license", "issue", "--account", "am").Err.Should().Contain("unknown account 'am'");
        School(LogCheck.ExitUsage, "license", "issue", "--account", "not an id").Err.Should().Contain("is not a valid account id");

        var pin = new string('a', 64);
        var settings = Json(School(0, "settings", "--relay-pin", pin.ToUpperInvariant()));
        settings.GetProperty("relayPin").GetString().Should().Be(pin);
        settings.GetProperty("relay").GetString().Should().Be("https://relay.example/");
        Json(School(0, "settings")).GetProperty("relayPin").GetString().Should().Be(pin, "settings persist between invocations");
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

    /// <summary>The JSON import example of docs/school-import.md (anna and ben), as an integrator would write it.</summary>
    internal static string DocumentedJsonSchool()
    {
        var root = PostgresServer.RepositoryRoot();
        var doc = File.ReadAllText(Path.Combine(root, "docs", "school-import.md"));
        return System.Text.RegularExpressions.Regex.Match(doc, "```json\\n(.*?)```", System.Text.RegularExpressions.RegexOptions.Singleline).Groups[1].Value;
    }

    /// <summary>Runs <c>imikelgo school ARGS --data DIR --json</c> (no --json for a failure), asserting the exit code.</summary>
    private (int Code, string Out, string Err) School(int expected, params string[] args)
    {
        var withJson = expected is 0 or DeviceCommands.ExitRelay;
        var result = CliTests.Invoke(["school", .. args, "--data", SchoolDir, .. withJson ? new[] { "--json" } : []]);
        result.Code.Should().Be(expected, $"stdout: {result.Out}\nstderr: {result.Err}");
        if (expected != 0)
        {
            result.Err.Should().NotContain("   at ", "errors are one line, never a stack trace");
        }

        return result;
    }

    private static JsonElement Json((int Code, string Out, string Err) result)
    {
        using var doc = JsonDocument.Parse(result.Out);
        return doc.RootElement.Clone();
    }

    private async Task<int> StoredEventsAsync()
    {
        await using var store = await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(SchoolDir, SchoolCommands.DatabaseFile), CancellationToken.None);
        return (await store.ReadEventsAsync(CancellationToken.None)).Count;
    }

    /// <summary>A teacher whose published lessons have students (read from the store the CLI wrote).</summary>
    private async Task<string> TeacherWithStudentsAsync()
    {
        await using var store = await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(SchoolDir, SchoolCommands.DatabaseFile), CancellationToken.None);
        await using var school = await SchoolConnector.OpenAsync(store, new SchoolConnectorSettings(), CancellationToken.None);
        return school.Accounts.First(a => school.ReplicaOf(a)!.Ledger.Applied.Any(e => e.Account == a && e.Payload is SeriesPublished p && p.Students.Length > 0)).Value;
    }

    /// <summary>
    /// The relay as an operator runs it: its data directory (generated certificate, schools.json) on a fixed loopback
    /// port, so the address and pin the school saved stay valid across restarts; in-memory mailboxes kept across restarts.
    /// </summary>
    internal sealed class TestRelay(string dataDirectory) : IAsyncDisposable
    {
        private readonly InMemoryMailboxStore _mailboxes = new();
        private readonly int _port = FreePort();
        private WebApplication? _app;

        public string DataDirectory => dataDirectory;

        public Uri Address => new($"https://127.0.0.1:{_port}/");

        public string Pin { get; private set; } = "";

        public async Task StartAsync()
        {
            var options = new RelayOptions { DataDirectory = dataDirectory, StoreFactory = _ => _mailboxes, RateLimitBurst = 100_000, RateLimitPerSecond = 100_000 };
            options.Urls.Add($"https://127.0.0.1:{_port}");
            _app = RelayHost.Create(options);
            await _app.StartAsync();
            Pin = _app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
        }

        public async Task RestartAsync()
        {
            await StopAsync();
            await StartAsync();
        }

        public async Task StopAsync()
        {
            if (_app is not null)
            {
                await _app.StopAsync();
                await _app.DisposeAsync();
                _app = null;
            }
        }

        public ValueTask DisposeAsync() => new(StopAsync());

        private static int FreePort()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }
    }
}

/// <summary>A fact skipped, with a clear message, when a file under ../shared (next to the repository) is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(string relativePath)
    {
        if (PathOf(relativePath) is not { } path || !File.Exists(path))
        {
            Skip = $"'{relativePath}' not found next to the repository (../shared/{relativePath}): the real input data is only present in the team workspace.";
        }
    }

    /// <summary>The file under ../shared, from the repository root (the folder holding iMikelGo.sln above the binaries, the working directory or this source file), or null.</summary>
    public static string? PathOf(string relativePath, [System.Runtime.CompilerServices.CallerFilePath] string source = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory, Path.GetDirectoryName(source) ?? "" })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")))
                {
                    return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", relativePath));
                }
            }
        }

        return null;
    }
}
