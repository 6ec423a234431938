using System.Diagnostics;
using System.Globalization;
using IMikelGo.Engine;
using Microsoft.Extensions.DependencyInjection;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>
/// The test assembly run as the school server process (<c>dotnet exec iMikelGo.SchoolServer.Tests.dll school-server …</c>):
/// <c>publish FILE</c> imports and publishes FILE and is SIGKILLed by its relay client right after the relay stored the
/// first push (before the server learns it); <c>drain ACCOUNT</c> runs until the relay acknowledged every event of ACCOUNT and no push message waits in Wolverine's inbox.
/// </summary>
public static class ChildProgram
{
    internal const string Verb = "school-server";

    public static async Task<int> Main(string[] args)
    {
        if (args.Length != 8 || args[0] != Verb)
        {
            await Console.Error.WriteLineAsync("usage: school-server ROOT POSTGRES SCHEMA PORT FINGERPRINT (publish FILE | drain ACCOUNT)");
            return 2;
        }

        var faults = new RelayFaults { KillAfterPush = args[6] == "publish" };
        using var host = ServerWorld.Build(o => ServerWorld.Configure(o, args[1], args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture), args[5], TimeSpan.Zero, faults));
        await host.StartAsync();
        var server = host.Services.GetRequiredService<SchoolServer>();
        var school = await server.ConnectorAsync(CancellationToken.None);
        if (args[6] == "publish")
        {
            await school.ImportAsync("json", await File.ReadAllTextAsync(args[7]), null, CancellationToken.None);
            var published = await server.PublishAsync(null, TestSchool.TermStart, CancellationToken.None);
            Console.WriteLine($"published {published.Events} events");
            await Task.Delay(TimeSpan.FromSeconds(60));
            Console.WriteLine("no push happened within 60 s");
            return 3;
        }

        var store = await server.StoreAsync(CancellationToken.None);
        var clock = Stopwatch.StartNew();
        // Done when the relay acknowledged everything and the message recovered from the killed process was handled.
        while ((await store.UnacknowledgedAsync(new AccountId(args[7]).Value, CancellationToken.None)).Count > 0
               || await ServerWorld.PendingPushEnvelopesAsync(args[2], args[3]) > 0)
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                Console.WriteLine("events unacknowledged or push messages unhandled after 60 s");
                return 4;
            }

            await Task.Delay(100);
        }

        Console.WriteLine("drained");
        await host.StopAsync();
        return 0;
    }
}
