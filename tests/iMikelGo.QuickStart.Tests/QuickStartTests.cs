using IMikelGo.Samples.QuickStart;

namespace IMikelGo.QuickStart.Tests;

/// <summary>
/// The README's first command, in-process: the QuickStart must run every step on the real parts (relay, school connector,
/// relay enrollment, devices) and return 0.
/// </summary>
public sealed class QuickStartTests
{
    [Fact]
    public async Task The_QuickStart_runs_every_step_on_the_real_timetable_and_exits_0() =>
        await RunAsync([]);

    [Fact]
    public async Task The_QuickStart_runs_on_a_generated_school_of_the_same_shape_and_says_so() =>
        (await RunAsync(["--generated"])).Should().Contain("using a GENERATED school of the same shape as ES-SS-08");

    [PostgresFact]
    public async Task With_postgres_the_relay_and_the_school_connector_run_on_PostgreSQL_and_Marten()
    {
        // The QuickStart takes its database from IMIKELGO_POSTGRES (the project's own throwaway cluster here).
        Environment.SetEnvironmentVariable("IMIKELGO_POSTGRES", PostgresServer.ConnectionString);
        (await RunAsync(["--postgres"])).Should()
            .Contain("the school connector (store: PostgreSQL via Marten)")
            .And.Contain("school store: PostgreSQL schema imikelgo_quickstart_school")
            .And.Contain("store: PostgreSQL schema imikelgo_quickstart_relay");
    }

    [Theory]
    [InlineData("--postgress", "unknown argument '--postgress'")]
    [InlineData("--data", "--data needs a value")]
    [InlineData("--timetable --generated", "--timetable needs a value")]
    public async Task A_mistyped_argument_is_refused_before_anything_runs(string args, string problem)
    {
        using var output = new StringWriter();
        var code = await Samples.QuickStart.QuickStart.RunAsync(args.Split(' '), output, CancellationToken.None);
        code.Should().Be(2);
        output.ToString().Should().StartWith($"error: {problem}").And.Contain("usage: QuickStart").And.NotContain("== 1.");
    }

    private static async Task<string> RunAsync(string[] extra)
    {
        var data = Directory.CreateTempSubdirectory("imikelgo-quickstart-").FullName;
        try
        {
            using var output = new StringWriter();
            var code = await Samples.QuickStart.QuickStart.RunAsync(["--data", data, .. extra], output, CancellationToken.None);
            var text = output.ToString();
            code.Should().Be(0, text);
            text.Should().Contain("QuickStart OK").And.Contain("all replicas converged").And.Contain("AuthenticationFailed")
                .And.Contain("RemoteDeactivation").And.Contain("wipe reason WrongPin");

            // The real parts: the connector's relay registrations, certificates at the relay, the pinned QR code,
            // enrollment through the relay hand-off (the second device gets the first one's key), the connector's sync and report.
            text.Should().Contain("67 school callers registered from connector.RelayRegistrations")
                .And.Contain("publishes the school root and enrollment certificates at the relay")
                .And.Contain("&relayPin=")
                .And.MatchRegex(@"phone +of [^:]+: device r[0-9a-f]+… approved by the connector \(0 peer key")
                .And.MatchRegex(@"laptop +of [^:]+: device r[0-9a-f]+… approved by the connector \(1 peer key")
                .And.Contain("refused (WrongPassword)")
                .And.Contain("school: 3 devices in the signed logs")
                .And.MatchRegex(@"school +received [4-9] teacher events")
                .And.Contain("1 absence, 1 cancellation with make-up owed")
                .And.Contain("in the signed log (DeviceRevoked) and at the relay");
            text.Should().NotContain("FAILED");
            return text;
        }
        finally
        {
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
