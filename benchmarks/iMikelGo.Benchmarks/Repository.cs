namespace IMikelGo.Benchmarks;

/// <summary>The repository root (holding <c>scripts/pg-start.sh</c>) and the shared read-only inputs beside it (<c>../shared</c>).</summary>
internal static class Repository
{
    /// <summary>Found upwards from the binaries, else from the working directory.</summary>
    public static string Root { get; } = FindRoot(AppContext.BaseDirectory) ?? FindRoot(Environment.CurrentDirectory) ?? Environment.CurrentDirectory;

    /// <summary>A file under <c>../shared</c> (relative to the repository root), or null when it is absent.</summary>
    public static string? Shared(string relative)
    {
        var path = Path.GetFullPath(Path.Combine(Root, "..", "shared", relative));
        return File.Exists(path) ? path : null;
    }

    private static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "pg-start.sh")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
