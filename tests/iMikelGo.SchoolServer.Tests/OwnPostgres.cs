using System.Globalization;
using System.Text.RegularExpressions;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>
/// A throwaway PostgreSQL cluster of one test (scripts/pg-start.sh in its own state directory), which the test may stop
/// — abruptly, like a crash or a network cut — and start again on the same data directory and port. Never the shared
/// cluster: the outage tests must not disturb other tests. Durable settings (fsync, synchronous commit), so a crash
/// loses no committed transaction. Deleted with scripts/pg-stop.sh.
/// </summary>
internal sealed partial class OwnPostgres : IDisposable
{
    private readonly string _state;
    private readonly string _root;
    private readonly string _pgRoot;
    private readonly string _pgBin;
    private readonly int _port;

    private OwnPostgres(string root, string state)
    {
        _root = root;
        _state = state;
        ConnectionString = File.ReadAllText(Path.Combine(state, "connection")).Trim();
        _pgRoot = File.ReadAllText(Path.Combine(state, "pgroot")).Trim();
        _pgBin = File.ReadAllText(Path.Combine(state, "pgbin")).Trim();
        _port = int.Parse(PortPattern().Match(ConnectionString).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>The Npgsql connection string (same after a restart).</summary>
    public string ConnectionString { get; }

    /// <summary>Whether the cluster is up (as far as this helper started or stopped it).</summary>
    public bool Running { get; private set; } = true;

    /// <summary>Starts a new cluster (installing PostgreSQL with scripts/setup-postgres.sh when missing).</summary>
    public static OwnPostgres Start()
    {
        var root = PostgresServer.RepositoryRoot();
        var state = Path.Combine(Path.GetTempPath(), "imikelgo-pg-outage-" + Guid.NewGuid().ToString("N")[..12]);
        // Durable settings (IMIKELGO_PG_DURABLE=1): with the scripts' test speed-ups (synchronous_commit off) an immediate
        // stop loses the last commits, which a real server does not.
        var (code, output) = PostgresServer.Run(["env", "IMIKELGO_PG_DURABLE=1", "bash", Path.Combine(root, "scripts", "pg-start.sh"), state]);
        if (code != 0)
        {
            throw new InvalidOperationException($"scripts/pg-start.sh exited with {code}: {output}");
        }

        return new OwnPostgres(root, state);
    }

    /// <summary>Stops the server at once (immediate mode: no checkpoint, every connection dropped — like a crash).</summary>
    public void Crash()
    {
        var (code, output) = AsPostgres(Path.Combine(_pgBin, "pg_ctl"), "-D", Path.Combine(_pgRoot, "data"), "-m", "immediate", "-w", "stop");
        code.Should().Be(0, "pg_ctl stop: {0}", output);
        Running = false;
    }

    /// <summary>Starts the server again on the same data directory and port (crash recovery replays the WAL).</summary>
    public void Restart()
    {
        var options = string.Create(CultureInfo.InvariantCulture,
            $"-c listen_addresses=127.0.0.1 -p {_port} -k {_pgRoot}/sock -c max_connections=300");
        var (code, output) = AsPostgres(Path.Combine(_pgBin, "pg_ctl"), "-D", Path.Combine(_pgRoot, "data"), "-l", Path.Combine(_pgRoot, "server.log"), "-w", "-t", "30", "-o", options, "start");
        code.Should().Be(0, "pg_ctl start: {0}", output);
        Running = true;
    }

    public void Dispose() => PostgresServer.Run("bash", Path.Combine(_root, "scripts", "pg-stop.sh"), _state);

    private static (int Code, string Output) AsPostgres(params string[] command) =>
        Environment.UserName == "root" ? PostgresServer.Run(["runuser", "-u", "postgres", "--", .. command]) : PostgresServer.Run(command);

    [GeneratedRegex(@"Port=(\d+)")]
    private static partial Regex PortPattern();
}
