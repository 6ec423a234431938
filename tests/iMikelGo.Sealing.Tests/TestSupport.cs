using System.Diagnostics;
using FluentAssertions;
using Xunit;

namespace IMikelGo.Sealing.Tests;

/// <summary>Locates the shared test vectors: walk up to the folder holding iMikelGo.sln, then ../shared/vectors.</summary>
internal static class Vectors
{
    private static readonly Lazy<string?> Root = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")))
        {
            dir = dir.Parent;
        }

        if (dir is null)
        {
            // Built with a private artifacts path outside the repository: fall back to the source location.
            dir = new DirectoryInfo(SourceDir());
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")))
            {
                dir = dir.Parent;
            }
        }

        return dir is null ? null : Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "vectors"));
    });

    private static string SourceDir([System.Runtime.CompilerServices.CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    public static string? Folder => Root.Value;

    public static string PathOf(string relative) => Path.Combine(Folder ?? "(repository not found)", relative);

    public static bool Exists(string relative) => Folder is not null && File.Exists(PathOf(relative));
}

/// <summary>A fact that is skipped, with a clear message, when a vector file is absent.</summary>
public sealed class VectorFactAttribute : FactAttribute
{
    public VectorFactAttribute(string relativePath)
    {
        if (!Vectors.Exists(relativePath))
        {
            Skip = $"Test vectors '{relativePath}' not found at {Vectors.PathOf(relativePath)} " +
                   "(../shared/vectors next to the repository is only present in the team workspace).";
        }
    }
}

/// <summary>A fact that needs the openssl command.</summary>
public sealed class OpensslFactAttribute : FactAttribute
{
    public const string Path = "/usr/bin/openssl";

    public OpensslFactAttribute()
    {
        if (!File.Exists(Path))
        {
            Skip = "The openssl command is missing at /usr/bin/openssl; run scripts/setup.sh to install it.";
        }
    }
}

internal static class Hex
{
    public static byte[] Decode(string? hex) => string.IsNullOrEmpty(hex) ? [] : Convert.FromHexString(hex);

    public static string Encode(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}

internal static class Openssl
{
    public static (int ExitCode, string Output) Run(string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo(OpensslFactAttribute.Path)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit(30_000);
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}

internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateTempSubdirectory("imikelgo-sealing-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public sealed class TestSupportTests
{
    [Fact]
    public void Vector_facts_skip_with_a_clear_message_when_the_file_is_missing()
    {
        new VectorFactAttribute("no-such-vectors.txt").Skip.Should().Contain("not found").And.Contain("no-such-vectors.txt");
        Vectors.Folder.Should().NotBeNull("the repository root is found from the test binaries or the source path");
    }
}
