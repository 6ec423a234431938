namespace IMikelGo.Cli;

/// <summary>Entry point of the <c>imikelgo</c> tool.</summary>
public static class Program
{
    /// <summary>Runs the CLI; the exit codes are documented in docs/cli.md.</summary>
    public static Task<int> Main(string[] args) => Cli.RunAsync(args, Console.Out, Console.Error);
}
