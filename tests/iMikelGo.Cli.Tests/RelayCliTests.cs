using System.Net;
using System.Net.Sockets;
using FluentAssertions;
using Xunit;

namespace IMikelGo.Cli.Tests;

/// <summary><c>imikelgo relay serve</c> refusals: one line on stderr and exit 2, never a stack trace.</summary>
public sealed class RelayCliTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("imikelgo-relay-cli-").FullName;

    [Fact]
    public void A_port_already_in_use_is_a_one_line_error()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var (code, output, error) = CliTests.Invoke("relay", "serve", "--urls", $"https://127.0.0.1:{port}", "--data", _data, "--store", "memory");

        code.Should().Be(LogCheck.ExitUsage, $"stdout: {output}\nstderr: {error}");
        error.Should().StartWith("error: ").And.Contain("address already in use").And.Contain("--urls").And.NotContain("   at ");
        error.TrimEnd().Should().NotContain("\n", "one line");
        output.Should().NotContain("relay listening");
    }

    public void Dispose() => Directory.Delete(_data, recursive: true);
}
