using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace IMikelGo.SchoolServer;

/// <summary>Entry point of the school server process.</summary>
public static class Program
{
    /// <summary>
    /// Runs the school server until Ctrl+C or SIGTERM. Arguments: <c>--relay URL --pin SHA256</c> and either
    /// <c>--data DIR</c> (embedded) or <c>--postgres CONNECTION [--schema NAME]</c>; optional <c>--school ID</c>
    /// (creates the school in an empty store) and <c>--pull-seconds N</c>.
    /// </summary>
    public static async Task<int> Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var builder = Host.CreateApplicationBuilder();
        try
        {
            builder.Services.AddIMikelGoSchoolServer(o => Parse(args, o));
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 2;
        }

        using var host = builder.Build();
        await host.RunAsync().ConfigureAwait(false);
        return 0;
    }

    private static void Parse(string[] args, SchoolServerOptions o)
    {
        if (args.Length % 2 != 0)
        {
            throw new ArgumentException($"option {args[^1]} has no value");
        }

        for (var i = 0; i < args.Length; i += 2)
        {
            var value = args[i + 1];
            switch (args[i])
            {
                case "--data": o.DataDirectory = value; break;
                case "--postgres": o.PostgresConnectionString = value; break;
                case "--schema": o.Schema = value; break;
                case "--school": o.SchoolId = value; break;
                case "--relay": o.RelayAddress = Uri.TryCreate(value, UriKind.Absolute, out var uri) ? uri : throw new ArgumentException($"--relay '{value}' is not an absolute URL"); break;
                case "--pin": o.RelayCertificateSha256 = value; break;
                case "--pull-seconds":
                    o.PullInterval = TimeSpan.FromSeconds(int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : throw new ArgumentException($"--pull-seconds '{value}' is not a whole number of seconds"));
                    break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
    }
}
