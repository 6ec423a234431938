using System.Diagnostics;
using Xunit;

namespace IMikelGo.TestSupport;

/// <summary>
/// The PostgreSQL server for tests: <c>IMIKELGO_POSTGRES</c> when set (scripts/test.sh starts one cluster for the
/// whole run), otherwise a throwaway cluster started once per test process with scripts/pg-start.sh (installing
/// PostgreSQL with scripts/setup-postgres.sh when missing) and stopped with scripts/pg-stop.sh at process exit.
/// Linked into every test project that needs PostgreSQL (tests/Support).
/// </summary>
internal static class PostgresServer
{
    public const string EnvironmentVariable = "IMIKELGO_POSTGRES";
    private static readonly Lazy<(string? Connection, string? Error)> Server = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Running in CI (<c>CI=true</c>), where a missing PostgreSQL fails a test instead of skipping it.</summary>
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>IMIKELGO_POSTGRES is set or a PostgreSQL installation (initdb) is present.</summary>
    public static bool LooksAvailable =>
        !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(EnvironmentVariable)) ||
        (Directory.Exists("/usr/lib/postgresql") && Directory.GetDirectories("/usr/lib/postgresql").Any(d => File.Exists(Path.Combine(d, "bin", "initdb"))));

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

            throw new InvalidOperationException(
                $"PostgreSQL is required for the Marten store tests{(IsCi ? " in CI" : string.Empty)} and is unavailable: {error} " +
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
            var (code, output) = Run("bash", Path.Combine(root, "scripts", "pg-start.sh"), state);
            if (code != 0)
            {
                return (null, $"scripts/pg-start.sh exited with {code}: {output.Trim()}");
            }

            AppDomain.CurrentDomain.ProcessExit += (_, _) => Run("bash", Path.Combine(root, "scripts", "pg-stop.sh"), state);
            return (File.ReadAllText(Path.Combine(state, "connection")).Trim(), null);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or System.ComponentModel.Win32Exception)
        {
            return (null, ex.Message);
        }
    }

    /// <summary>Runs a command (scripts/pg-*.sh, pg_ctl, …) and returns its exit code and output (stdout, then stderr).</summary>
    public static (int Code, string Output) Run(params string[] command)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in command.Skip(1))
        {
            psi.ArgumentList.Add(argument);
        }

        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}

/// <summary>
/// A fact that needs PostgreSQL. In CI (<c>CI=true</c>) it always runs, so a missing PostgreSQL fails it with a
/// clear message; elsewhere it is skipped when neither IMIKELGO_POSTGRES nor an installed PostgreSQL is found.
/// </summary>
internal sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (!PostgresServer.IsCi && !PostgresServer.LooksAvailable)
        {
            Skip = "PostgreSQL is not installed and IMIKELGO_POSTGRES is not set: run scripts/setup-postgres.sh " +
                   "(in CI, with CI=true, this test fails instead of skipping).";
        }
    }
}
