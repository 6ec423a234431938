using System.Diagnostics;

namespace IMikelGo.Relay.Tests.Stores;

/// <summary>
/// The PostgreSQL server for tests: <c>IMIKELGO_POSTGRES</c> when set (scripts/test.sh starts one cluster for the
/// whole run), otherwise a throwaway cluster started once per test process with scripts/pg-start.sh (installing
/// PostgreSQL with scripts/setup-postgres.sh when missing) and stopped with scripts/pg-stop.sh at process exit.
/// </summary>
public static class PostgresServer
{
    public const string EnvironmentVariable = "IMIKELGO_POSTGRES";
    private static readonly Lazy<(string? Connection, string? Error)> Server = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The connection string; fails the test with the reason when PostgreSQL is unavailable.</summary>
    public static string ConnectionString
    {
        get
        {
            var (connection, error) = Server.Value;
            if (connection is not null)
            {
                return connection;
            }

            var ci = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
            throw new InvalidOperationException(
                $"PostgreSQL is required for the Marten store tests{(ci ? " in CI" : string.Empty)} and is unavailable: {error} " +
                "Run scripts/setup-postgres.sh (installs postgresql-15 via apt) or set IMIKELGO_POSTGRES to a connection string.");
        }
    }

    /// <summary>The directory holding pg_dump.</summary>
    public static string PgBin => Directory.Exists("/usr/lib/postgresql")
        ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(Directory.Exists)
            .OrderBy(d => Version.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : new Version(0, 0)).LastOrDefault() ?? string.Empty
        : string.Empty;

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")) && File.Exists(Path.Combine(dir.FullName, "scripts", "pg-start.sh")))
            {
                return dir.FullName;
            }
        }

        // Built outside the repository (for example with --artifacts-path in /tmp): use the current directory.
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "pg-start.sh")))
            {
                return dir.FullName;
            }
        }

        // Last resort: where this source file was compiled from.
        for (var dir = new FileInfo(SourcePath()).Directory; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "pg-start.sh")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (scripts/pg-start.sh).");
    }

    private static string SourcePath([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

    private static (string? Connection, string? Error) Start()
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return (fromEnv.Trim(), null);
        }

        try
        {
            var root = RepositoryRoot();
            var state = Path.Combine(Path.GetTempPath(), $"imikelgo-pgstate-{Environment.ProcessId}");
            var (code, output) = Run(Path.Combine(root, "scripts", "pg-start.sh"), state);
            if (code != 0)
            {
                return (null, $"scripts/pg-start.sh exited with {code}: {output.Trim()}");
            }

            AppDomain.CurrentDomain.ProcessExit += (_, _) => Run(Path.Combine(root, "scripts", "pg-stop.sh"), state);
            return (File.ReadAllText(Path.Combine(state, "connection")).Trim(), null);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or System.ComponentModel.Win32Exception)
        {
            return (null, ex.Message);
        }
    }

    private static (int Code, string Output) Run(string script, string argument)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(argument);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
