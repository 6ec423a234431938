using System.Diagnostics;
using Xunit;

namespace IMikelGo.School.Tests;

/// <summary>Locates the repository root (the folder holding iMikelGo.sln) and ../shared next to it.</summary>
internal static class Repo
{
    private static readonly Lazy<string?> RootDir = new(() =>
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory, SourceDir() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    });

    public static string? Root => RootDir.Value;

    public static string? Shared(string relative) => Root is null ? null : Path.GetFullPath(Path.Combine(Root, "..", "shared", relative));

    public const string SpainSchool = "data/xhstt/ES-SS-08-SpainSchool.xml";

    public static string SpainSchoolPath => Shared(SpainSchool) ?? throw new InvalidOperationException("repository root not found");

    private static string SourceDir([System.Runtime.CompilerServices.CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}

/// <summary>A fact skipped, with a clear message, when a file under ../shared is absent.</summary>
public sealed class SharedFileFactAttribute : FactAttribute
{
    public SharedFileFactAttribute(string relativePath)
    {
        var path = Repo.Shared(relativePath);
        if (path is null || !File.Exists(path))
        {
            Skip = $"'{relativePath}' not found at {path ?? "(repository root not found)"}: the real input data next to the " +
                   "repository (../shared/data) is only present in the team workspace.";
        }
    }
}

/// <summary>
/// A fact that needs PostgreSQL. In CI (<c>CI=true</c>) it always runs, so a missing PostgreSQL fails it with a
/// clear message; elsewhere it is skipped when neither IMIKELGO_POSTGRES nor an installed PostgreSQL is found.
/// </summary>
public sealed class PostgresFactAttribute : FactAttribute
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

/// <summary>
/// The PostgreSQL server for the tests: IMIKELGO_POSTGRES when set (scripts/test.sh starts one cluster for the run),
/// otherwise a throwaway cluster started once per test process with scripts/pg-start.sh and stopped with
/// scripts/pg-stop.sh at exit.
/// </summary>
internal static class PostgresServer
{
    private static readonly Lazy<(string? Connection, string? Error)> Server = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static bool LooksAvailable =>
        !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("IMIKELGO_POSTGRES")) ||
        (Directory.Exists("/usr/lib/postgresql") && Directory.GetDirectories("/usr/lib/postgresql").Any(d => File.Exists(Path.Combine(d, "bin", "initdb"))));

    public static string ConnectionString
    {
        get
        {
            var (connection, error) = Server.Value;
            return connection ?? throw new InvalidOperationException(
                $"PostgreSQL is required for the school event store tests{(IsCi ? " in CI" : string.Empty)} and is unavailable: {error} " +
                "Run scripts/setup-postgres.sh (installs PostgreSQL via apt) or set IMIKELGO_POSTGRES to a connection string.");
        }
    }

    private static (string? Connection, string? Error) Start()
    {
        var fromEnv = Environment.GetEnvironmentVariable("IMIKELGO_POSTGRES");
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return (fromEnv.Trim(), null);
        }

        if (Repo.Root is not { } root || !File.Exists(Path.Combine(root, "scripts", "pg-start.sh")))
        {
            return (null, "scripts/pg-start.sh not found.");
        }

        var state = Path.Combine(Path.GetTempPath(), $"imikelgo-school-pg-{Environment.ProcessId}");
        var (code, output) = Run(Path.Combine(root, "scripts", "pg-start.sh"), state);
        if (code != 0)
        {
            return (null, $"scripts/pg-start.sh exited with {code}: {output.Trim()}");
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) => Run(Path.Combine(root, "scripts", "pg-stop.sh"), state);
        return (File.ReadAllText(Path.Combine(state, "connection")).Trim(), null);
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
