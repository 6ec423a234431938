namespace IMikelGo.Relay;

/// <summary>Entry point of the relay server (see docs/relay.md).</summary>
public static class Program
{
    /// <summary>Runs the relay until Ctrl+C or SIGTERM.</summary>
    public static Task<int> Main(string[] args) => Task.FromResult(0);
}
