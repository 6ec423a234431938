using BenchmarkDotNet.Running;

namespace IMikelGo.Benchmarks;

internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "profile")
        {
            return Profile.Run();
        }

        if (args.Length > 0 && args[0] == "relay-longpoll")
        {
            return RelayLongPollMemory.Run(args.Length > 1 ? args[1] : "embedded");
        }

        if (args.Length > 0 && args[0] == "ingest-splits")
        {
            return IngestSplits.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 30);
        }

        if (args.Length > 0 && args[0] == "publish")
        {
            return PublishSplits.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3);
        }

        if (args.Length > 0 && args[0] == "sync-latency")
        {
            return SyncLatency.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200);
        }

        if (args.Length > 0 && args[0] == "latency")
        {
            return Latency.Run();
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
