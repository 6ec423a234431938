namespace IMikelGo.Relay;

/// <summary>Entry point of the standalone relay server (the CLI's <c>imikelgo relay serve</c> does the same).</summary>
public static class Program
{
    /// <summary>Runs the relay until Ctrl+C or SIGTERM. Arguments: <c>--urls</c>, <c>--data</c>, <c>--store</c>, <c>--connection</c>, <c>--update-feed</c>.</summary>
    public static async Task<int> Main(string[] args)
    {
        var options = new RelayOptions();
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--urls":
                    foreach (var url in args[i + 1].Split(';', StringSplitOptions.RemoveEmptyEntries))
                    {
                        options.Urls.Add(url);
                    }

                    break;
                case "--data":
                    options.DataDirectory = args[i + 1];
                    break;
                case "--store":
                    options.Store = Enum.Parse<RelayStoreKind>(args[i + 1], ignoreCase: true);
                    break;
                case "--connection":
                    options.ConnectionString = args[i + 1];
                    break;
                case "--update-feed":
                    // The signed update feed folder (imikelgo release publish), served read-only at /updates/.
                    options.UpdateFeedDirectory = Path.GetFullPath(args[i + 1]);
                    break;
                default:
                    await Console.Error.WriteLineAsync($"unknown option {args[i]}");
                    return 2;
            }
        }

        await using var app = RelayHost.Create(options);
        await app.RunAsync();
        return 0;
    }
}
