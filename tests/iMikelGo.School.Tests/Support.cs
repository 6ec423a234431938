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
