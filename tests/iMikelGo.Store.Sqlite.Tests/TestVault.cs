using System.Diagnostics;
using System.Text;
using IMikelGo.Store.Sqlite.Vault;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace IMikelGo.Store.Sqlite.Tests;

/// <summary>A vault in its own temp folder with a fast KDF; deletes the folder at the end.</summary>
internal sealed class TestVault : IDisposable
{
    internal const string Pin = "4711";
    internal const string Account = "KENNUNG-TEST-1";

    internal TestVault(string? root = null, Action<DeviceVaultOptions>? configure = null)
    {
        Root = root ?? Path.Combine(Path.GetTempPath(), "imikelgo-vault-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
        Configure = configure;
    }

    internal string Root { get; }

    internal Action<DeviceVaultOptions>? Configure { get; }

    internal string SecretDirectory => Path.Combine(Root, "device");

    internal VaultPaths Paths => new(Root, SecretDirectory);

    internal DeviceVault Create(Action<DeviceVaultOptions>? configure = null)
    {
        var options = Options(Root);
        Configure?.Invoke(options);
        configure?.Invoke(options);
        return new DeviceVault(Microsoft.Extensions.Options.Options.Create(options), new FileDeviceSecretStore(options.ResolveDeviceSecretDirectory()),
            TimeProvider.System, NullLogger<DeviceVault>.Instance);
    }

    internal static DeviceVaultOptions Options(string root) => new()
    {
        RootDirectory = root,
        Pbkdf2Iterations = 1000,
    };

    internal async Task<DeviceVault> EnrolledAsync(Action<DeviceVaultOptions>? configure = null)
    {
        var vault = Create(configure);
        await vault.EnrollAsync(Account, Pin, CancellationToken.None);
        return vault;
    }

    /// <summary>Enrolls, then closes: the state a restarted app finds.</summary>
    internal async Task EnrollAndCloseAsync(Action<DeviceVault>? work = null)
    {
        await using var vault = await EnrolledAsync();
        work?.Invoke(vault);
    }

    internal static EventRecord Event(long seq, string text, string replica = "dev-a", string account = Account)
    {
        var payload = Encoding.UTF8.GetBytes($"{{\"type\":\"AbsenceRecorded\",\"seq\":{seq},\"student\":\"{text}\"}}");
        var hash = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"{account}|{replica}|{seq}|{text}"));
        return new EventRecord(account, replica, seq, hash, payload);
    }

    internal PinCounter? ReadCounter()
    {
        var env = KeyEnvelope.Parse(File.ReadAllBytes(Paths.KeyFile));
        var secret = File.ReadAllBytes(Path.Combine(SecretDirectory, "device.secret"));
        return PinCounter.TryRead(Paths.CounterFile, Crypto.KeyHierarchy.CounterMacKey(secret, env.InstallId));
    }

    /// <summary>
    /// Every regular file under <paramref name="dir"/> (optionally only those newer than <paramref name="newerThan"/>)
    /// that contains <paramref name="marker"/> in UTF-8 or UTF-16. Uses find(1) -type f so FIFOs and sockets in a
    /// shared temp folder are never opened.
    /// </summary>
    internal static List<string> FilesContaining(string dir, string marker, string? newerThan = null)
    {
        var hits = new List<string>();
        if (!Directory.Exists(dir))
        {
            return hits;
        }

        var psi = new ProcessStartInfo("find") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dir);
        psi.ArgumentList.Add("-xdev");
        psi.ArgumentList.Add("-type");
        psi.ArgumentList.Add("f");
        if (newerThan is not null)
        {
            psi.ArgumentList.Add("-newer");
            psi.ArgumentList.Add(newerThan);
        }

        using var p = Process.Start(psi)!;
        _ = p.StandardError.ReadToEndAsync();
        var files = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        p.WaitForExit();

        var utf8 = Encoding.UTF8.GetBytes(marker);
        var utf16 = Encoding.Unicode.GetBytes(marker);
        foreach (var f in files)
        {
            try
            {
                if (new FileInfo(f).Length > 256L * 1024 * 1024)
                {
                    continue;
                }

                var bytes = File.ReadAllBytes(f);
                if (bytes.AsSpan().IndexOf(utf8) >= 0 || bytes.AsSpan().IndexOf(utf16) >= 0)
                {
                    hits.Add(f);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // vanished or unreadable: not ours
            }
        }

        return hits;
    }

    /// <summary>Runs the test assembly as a child vault process (see ChildProgram); returns exit code and output.</summary>
    internal (int ExitCode, string Output) RunChild(string crashAt, string command, params string[] args)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(dotnet) || !File.Exists(dotnet))
        {
            dotnet = "dotnet";
        }

        var psi = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(typeof(ChildProgram).Assembly.Location);
        psi.ArgumentList.Add(ChildProgram.Verb);
        psi.ArgumentList.Add(Root);
        psi.ArgumentList.Add(crashAt);
        psi.ArgumentList.Add(command);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("child vault process hung");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
