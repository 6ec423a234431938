using IMikelGo.Samples.QuickStart;

namespace IMikelGo.QuickStart.Tests;

/// <summary>The README's first command, in-process: the QuickStart must run every step and return 0.</summary>
public sealed class QuickStartTests
{
    [Fact]
    public async Task The_QuickStart_runs_every_step_on_the_real_timetable_and_exits_0() =>
        await RunAsync([]);

    [Fact]
    public async Task The_QuickStart_runs_on_a_generated_school_of_the_same_shape_and_says_so() =>
        (await RunAsync(["--generated"])).Should().Contain("using a GENERATED school of the same shape as ES-SS-08");

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
