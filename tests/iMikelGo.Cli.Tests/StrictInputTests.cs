using FluentAssertions;
using Xunit;

namespace IMikelGo.Cli.Tests;

public sealed class StrictInputTests
{
    private static (int Code, string Out, string Err) Verify(byte[] content)
    {
        var path = Path.Combine(Path.GetTempPath(), $"imikelgo-strict-{Guid.NewGuid():N}.jsonl");
        File.WriteAllBytes(path, content);
        try
        {
            var output = new StringWriter();
            var error = new StringWriter();
            var code = LogCheck.Run(path) is var check ? check.ExitCode : -1;
            check.Print(path, output, error);
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] DemoLine()
    {
        var path = Path.Combine(Path.GetTempPath(), $"imikelgo-demo-{Guid.NewGuid():N}.jsonl");
        try
        {
            Program.Main(["log", "demo", "--seed", "3", "--replicas", "2", "--events", "100", "--out", path]).GetAwaiter().GetResult().Should().Be(0);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void An_empty_log_is_incomplete_not_valid()
    {
        var result = Verify([]);
        result.Code.Should().Be(LogCheck.ExitIncomplete);
        result.Err.Trim().Should().Be("INCOMPLETE: Empty: the log: holds no events", "no event is 'held back' from a log without events");
    }

    [Fact]
    public void A_byte_order_mark_crlf_or_invalid_utf8_is_reported_for_its_line_not_repaired()
    {
        var log = DemoLine();
        Verify(log).Code.Should().Be(LogCheck.ExitOk);
        Verify([0xEF, 0xBB, 0xBF, .. log]).Err.Should().Contain("byte-order mark");
        var crlf = System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(log).Replace("\n", "\r\n", StringComparison.Ordinal));
        Verify(crlf).Code.Should().Be(LogCheck.ExitInvalid);
        var broken = (byte[])log.Clone();
        broken[Array.IndexOf(broken, (byte)'"', 10)] = 0xFF;
        var result = Verify(broken);
        result.Code.Should().Be(LogCheck.ExitInvalid);
        result.Err.Should().Contain("not valid UTF-8");
    }
}
