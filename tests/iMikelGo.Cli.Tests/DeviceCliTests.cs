using System.Text.Json;
using FluentAssertions;
using IMikelGo.Sealing;
using Xunit;

namespace IMikelGo.Cli.Tests;

/// <summary>
/// <c>imikelgo device …</c> end to end, as a teacher at a terminal: the school set up with <c>imikelgo school …</c> on
/// the documented JSON timetable, a real relay on Kestrel (pinned HTTPS), a real encrypted vault in the device folder;
/// passwords and PINs on standard input (<c>--password-stdin</c>, <c>--pin-stdin</c>).
/// </summary>
public sealed class DeviceCliTests : IDisposable
{
    private const string Pin = "4711";
    private readonly string _root = Directory.CreateTempSubdirectory("imikelgo-device-cli-").FullName;

    private string SchoolDir => Path.Combine(_root, "school");

    private string DeviceDir => Path.Combine(_root, "laptop");

    [Fact]
    public async Task A_teacher_enrolls_records_syncs_and_three_wrong_pins_wipe_the_device()
    {
        await using var relay = new SchoolCliTests.TestRelay(Path.Combine(_root, "relay"));
        await relay.StartAsync();
        School("init", "--school", "musikschule", "--relay", relay.Address.AbsoluteUri, "--relay-pin", relay.Pin);
        var timetable = Path.Combine(_root, "school.json");
        await File.WriteAllTextAsync(timetable, SchoolCliTests.DocumentedJsonSchool());
        School("import", timetable);
        School("publish");
        School("relay-registrations", "--write", relay.DataDirectory);
        await relay.RestartAsync();
        var license = School("license", "issue", "--account", "anna");
        School("enrollments");

        // Refused before anything is sent: a label no school could show.
        var longLabel = Device(LogCheck.ExitUsage, $"{license.GetProperty("password").GetString()}\n{Pin}\n",
            "enroll", "--uri", license.GetProperty("uri").GetString()!, "--license", license.GetProperty("license").GetString()!,
            "--password-stdin", "--pin-stdin", "--label", new string('x', DeviceEnrollment.MaxLabelLength + 1));
        longLabel.Err.Should().Contain("--label").And.Contain($"longer than {DeviceEnrollment.MaxLabelLength}");

        // A typo in the license key: said plainly (no parameter names), nothing sent.
        var key = license.GetProperty("license").GetString()!;
        var typo = Device(LogCheck.ExitUsage, $"{license.GetProperty("password").GetString()}\n{Pin}\n",
            "enroll", "--uri", license.GetProperty("uri").GetString()!, "--license", key[..^1] + (key[^1] == 'X' ? 'Y' : 'X'), "--password-stdin", "--pin-stdin");
        typo.Err.Should().StartWith("error: the license key").And.NotContain("(Parameter");

        // Enroll (the device polls the relay for the school's answer while the school processes its queue).
        var enrolling = Task.Run(() => Device(0, $"{license.GetProperty("password").GetString()}\n{Pin}\n",
            "enroll", "--uri", license.GetProperty("uri").GetString()!, "--license", license.GetProperty("license").GetString()!,
            "--password-stdin", "--pin-stdin", "--label", "Annas Laptop", "--json"));
        for (var attempt = 0; attempt < 240 && !enrolling.IsCompleted; attempt++)
        {
            School("enrollments");
            await Task.WhenAny(enrolling, Task.Delay(250));
        }

        var enrollment = await enrolling;
        enrollment.Err.Should().Contain("waiting for the school's answer (up to 10 minutes)", "a silent wait of up to 10 minutes looks hung");
        var enrolled = Json(enrollment);
        enrolled.GetProperty("account").GetString().Should().Be("anna");
        var deviceId = enrolled.GetProperty("device").GetString()!;
        School("sync", "--retries", "0");

        Json(Device(0, Pin + "\n", "unlock", "--pin-stdin", "--json")).GetProperty("device").GetString().Should().Be(deviceId);
        Json(Device(0, Pin + "\n", "sync", "--pin-stdin", "--json")).GetProperty("received").GetInt32().Should().BePositive();
        var status = Json(Device(0, Pin + "\n", "status", "--week", "2026-09-21", "--pin-stdin", "--json"));
        status.GetProperty("devices").EnumerateArray().Should().ContainSingle(d => d.GetProperty("id").GetString() == deviceId
            && d.GetProperty("label").GetString() == "Annas Laptop" && d.GetProperty("thisDevice").GetBoolean());
        var lessons = status.GetProperty("lessons").EnumerateArray().ToList();
        var piano = lessons.Single(l => l.GetProperty("subject").GetString() == "Klavier");
        piano.GetProperty("date").GetString().Should().Be("2026-09-21");
        piano.GetProperty("students").EnumerateArray().Select(s => s.GetProperty("id").GetString()).Should().BeEquivalentTo(["lea", "max"]);
        var text = Device(0, Pin + "\n", "status", "--week", "2026-09-21", "--pin-stdin").Out;
        text.Should().Contain($"[{piano.GetProperty("lesson").GetString()}]", "the text output names the --lesson handle").And.Contain("<lea>", "and the --student id");
        var theory = lessons.Single(l => l.GetProperty("subject").GetString() == "Musiktheorie").GetProperty("lesson").GetString()!;
        var pianoLesson = piano.GetProperty("lesson").GetString()!;
        var nextPiano = pianoLesson.Replace("2026-09-21", "2026-09-28", StringComparison.Ordinal);

        // Offline changes: an absence, a cancellation, a move onto the theory lesson's room and time (warned), a held lesson.
        Device(0, Pin + "\n", "absent", "--lesson", pianoLesson, "--student", "lea", "--excused", "--reason", "ill", "--pin-stdin");
        Device(0, Pin + "\n", "cancel", "--lesson", theory, "--reason", "teacher-ill", "--make-up", "--pin-stdin");
        Device(0, Pin + "\n", "move", "--lesson", nextPiano, "--date", "2026-09-29", "--start", "17:00", "--room", "r102", "--pin-stdin")
            .Err.Should().Contain("warning: clash").And.Contain("Musiktheorie");
        Device(0, Pin + "\n", "held", "--lesson", pianoLesson.Replace("2026-09-21", "2026-10-05", StringComparison.Ordinal), "--note", "Tonleitern", "--pin-stdin");
        Json(Device(0, Pin + "\n", "status", "--pin-stdin", "--json")).GetProperty("pending").GetInt32().Should().Be(4);

        // Bad input: one line, exit 2 or 15, nothing recorded.
        Device(LogCheck.ExitUsage, Pin + "\n", "absent", "--lesson", "not-an-occurrence", "--student", "lea", "--pin-stdin").Err.Should().StartWith("error: ");
        Device(DeviceCommands.ExitRefused, Pin + "\n", "absent", "--lesson", pianoLesson, "--student", "nobody", "--pin-stdin").Err.Should().Contain("refused: ");
        Device(LogCheck.ExitUsage, Pin + "\n", "move", "--lesson", nextPiano, "--date", "29.09.2026", "--start", "17:00", "--room", "r102", "--pin-stdin")
            .Err.Should().Contain("--date '29.09.2026' is not a date (YYYY-MM-DD)");
        Device(LogCheck.ExitUsage, Pin + "\n", "move", "--lesson", nextPiano, "--date", "2026-09-29", "--start", "5pm", "--room", "r102", "--pin-stdin")
            .Err.Should().Contain("--start '5pm' is not a time of day (HH:MM)");
        Device(LogCheck.ExitUsage, Pin + "\n", "status", "--week", "2026-13-01", "--pin-stdin").Err.Should().Contain("--week '2026-13-01' is not a date");
        Device(DeviceCommands.ExitRefused, Pin + "\n", "move", "--lesson", nextPiano, "--date", "2026-09-29", "--start", "17:30", "--duration", "0", "--room", "r102", "--pin-stdin")
            .Err.Should().Contain("refused: ").And.NotContain("warning: clash", "a move that was not recorded clashes with nothing");

        var sent = Json(Device(0, Pin + "\n", "sync", "--pin-stdin", "--json"));
        sent.GetProperty("sent").GetInt32().Should().Be(4);
        Json(Device(0, Pin + "\n", "status", "--pin-stdin", "--json")).GetProperty("pending").GetInt32().Should().Be(0);

        // The school receives them: the report counts the absence, the device list shows the label.
        School("sync", "--retries", "0").GetProperty("received").GetInt32().Should().BePositive();
        var report = School("report");
        report.GetProperty("absences").EnumerateArray().Should().ContainSingle(a =>
            a.GetProperty("account").GetString() == "anna" && a.GetProperty("student").GetString() == "lea" && a.GetProperty("excused").GetInt32() == 1);
        School("device", "list").EnumerateArray().Should().ContainSingle(d => d.GetProperty("device").GetString() == deviceId
            && d.GetProperty("label").GetString() == "Annas Laptop");
        var listed = CliTests.Invoke("school", "device", "list", "--data", SchoolDir).Out;
        listed.Should().Contain($"anna {deviceId} \"Annas Laptop\" active", "the label is quoted in the text output");

        // No PIN at all (closed or empty stdin, e.g. a cron job): a usage error, never an attempt.
        for (var i = 0; i < 3; i++)
        {
            Device(LogCheck.ExitUsage, string.Empty, "sync", "--pin-stdin").Err.Should().Contain("no PIN given");
            Device(LogCheck.ExitUsage, "\n", "status", "--pin-stdin");
        }

        Json(Device(0, Pin + "\n", "unlock", "--pin-stdin", "--json")).GetProperty("device").GetString().Should().Be(deviceId, "no attempt was counted");

        // Three wrong PINs in a row: two warnings, then the vault is deleted and the device says so.
        Device(DeviceCommands.ExitWrongPin, "0000\n", "unlock", "--pin-stdin").Err.Should().Contain("2 attempt(s) left");
        Device(DeviceCommands.ExitWrongPin, "0000\n", "unlock", "--pin-stdin").Err.Should().Contain("1 attempt(s) left");
        Device(DeviceCommands.ExitWiped, "0000\n", "unlock", "--pin-stdin").Err.Should().Contain("all iMikelGo data on this device was deleted");
        Device(DeviceCommands.ExitState, Pin + "\n", "status", "--pin-stdin").Err.Should().Contain("this device was wiped");
        Directory.EnumerateFiles(DeviceDir, "*", SearchOption.AllDirectories)
            .Should().NotContain(f => File.ReadAllText(f).Contains("Tonleitern", StringComparison.Ordinal), "the note was never stored in plaintext and the vault is gone");
    }

    [Fact]
    public void A_mistyped_device_folder_is_named_and_not_created()
    {
        var status = Device(DeviceCommands.ExitState, string.Empty, "status");

        status.Err.Should().Contain($"there is no device folder at {DeviceDir}").And.Contain("device enroll");
        Directory.Exists(DeviceDir).Should().BeFalse("only 'enroll' makes a device folder");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private (int Code, string Out, string Err) Device(int expected, string stdin, params string[] args)
    {
        using var input = new StringReader(stdin);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = Cli.RunAsync(["device", .. args, "--data", DeviceDir], input, output, error).GetAwaiter().GetResult();
        code.Should().Be(expected, $"imikelgo device {string.Join(' ', args)}\nstdout: {output}\nstderr: {error}");
        if (expected != 0)
        {
            error.ToString().Should().NotContain("   at ", "errors are one line, never a stack trace");
        }

        return (code, output.ToString(), error.ToString());
    }

    private JsonElement School(params string[] args)
    {
        var (code, output, error) = CliTests.Invoke(["school", .. args, "--data", SchoolDir, "--json"]);
        code.Should().Be(0, $"imikelgo school {string.Join(' ', args)}\nstdout: {output}\nstderr: {error}");
        return Json((code, output, error));
    }

    private static JsonElement Json((int Code, string Out, string Err) result)
    {
        using var doc = JsonDocument.Parse(result.Out);
        return doc.RootElement.Clone();
    }
}
