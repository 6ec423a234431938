using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace IMikelGo.Updates;

/// <summary>The persisted, MAC'd memory of the updater: newest trusted manifest and current vendor key.</summary>
internal sealed record UpdateState(long Sequence, string? Version, string? ManifestSha256, string? TrustedKey, int Rotations)
{
    public static UpdateState Empty { get; } = new(0, null, null, null, 0);
}

/// <summary>The pointer file <c>current</c>: which version the launcher starts, and the one to fall back to.</summary>
internal sealed record Pointer(string Version, string? Previous);

/// <summary>
/// Files under the install root:
/// <c>current</c> (pointer, replaced by atomic rename), <c>versions/&lt;v&gt;/</c> (activated, fully verified releases, each with
/// <c>.manifest.json</c>, <c>.manifest.json.p7s</c>, and <c>.started-ok</c> / <c>.starts</c> markers), <c>staging/&lt;v&gt;/</c>
/// (downloads, <c>*.part</c> while incomplete), <c>state/</c> (<c>updates.json</c> MAC'd state, <c>deferral.json</c>,
/// <c>failed.txt</c>, <c>updates.log</c>, <c>state.key</c>).
/// </summary>
internal sealed class InstallLayout
{
    public const string ManifestFile = ".manifest.json";
    public const string SignatureFile = ".manifest.json.p7s";
    public const string StartedOk = ".started-ok";
    public const string Starts = ".starts";

    private readonly byte[]? _stateKey;

    public InstallLayout(string root, byte[]? stateKey)
    {
        Root = Path.GetFullPath(root);
        _stateKey = stateKey;
    }

    public string Root { get; }

    public string Versions => Path.Combine(Root, "versions");

    public string Staging => Path.Combine(Root, "staging");

    public string StateDir => Path.Combine(Root, "state");

    public string PointerPath => Path.Combine(Root, "current");

    public string LogPath => Path.Combine(StateDir, "updates.log");

    public string VersionDir(string version) => Path.Combine(Versions, version);

    public string StagingDir(string version) => Path.Combine(Staging, version);

    public static void WriteAtomic(string path, ReadOnlySpan<byte> bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
    }

    public Pointer? ReadPointer()
    {
        try
        {
            if (!File.Exists(PointerPath))
            {
                return null;
            }

            using var doc = JsonDocument.Parse(File.ReadAllBytes(PointerPath));
            var v = doc.RootElement.GetProperty("version").GetString();
            var p = doc.RootElement.TryGetProperty("previous", out var pe) ? pe.GetString() : null;
            return SemanticVersion.TryParse(v, out _) ? new Pointer(v!, SemanticVersion.TryParse(p, out _) ? p : null) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or KeyNotFoundException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public void WritePointer(Pointer pointer)
        => WriteAtomic(PointerPath, Json.Write(w =>
        {
            w.WriteString("version", pointer.Version);
            if (pointer.Previous is null)
            {
                w.WriteNull("previous");
            }
            else
            {
                w.WriteString("previous", pointer.Previous);
            }
        }));

    public bool TryReadState(out UpdateState state, out UpdateError error)
    {
        state = UpdateState.Empty;
        error = UpdateError.None;
        var path = Path.Combine(StateDir, "updates.json");
        if (!File.Exists(path))
        {
            return true;
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var r = doc.RootElement;
            var body = Convert.FromBase64String(r.GetProperty("body").GetString()!);
            var mac = Convert.FromHexString(r.GetProperty("mac").GetString()!);
            if (!CryptographicOperations.FixedTimeEquals(mac, HMACSHA256.HashData(Key(), body)))
            {
                error = new UpdateError(UpdateErrorCode.StateTampered, "update state: MAC mismatch; the local update state was altered. Updates are refused until it is reset by support.");
                return false;
            }

            using var b = JsonDocument.Parse(body);
            var s = b.RootElement;
            state = new UpdateState(s.GetProperty("sequence").GetInt64(), s.GetProperty("version").GetString(),
                s.GetProperty("manifestSha256").GetString(), s.GetProperty("trustedKey").GetString(), s.GetProperty("rotations").GetInt32());
            return true;
        }
#pragma warning disable CA1031 // fail closed
        catch (Exception e)
#pragma warning restore CA1031
        {
            error = new UpdateError(UpdateErrorCode.StateTampered, $"update state unreadable: {e.GetType().Name}: {e.Message}");
            return false;
        }
    }

    public void WriteState(UpdateState state)
    {
        var body = Json.Write(w =>
        {
            w.WriteNumber("sequence", state.Sequence);
            w.WriteString("version", state.Version);
            w.WriteString("manifestSha256", state.ManifestSha256);
            w.WriteString("trustedKey", state.TrustedKey);
            w.WriteNumber("rotations", state.Rotations);
        });
        var mac = HMACSHA256.HashData(Key(), body);
        WriteAtomic(Path.Combine(StateDir, "updates.json"), Json.Write(w =>
        {
            w.WriteString("body", Convert.ToBase64String(body));
            w.WriteString("mac", Convert.ToHexStringLower(mac));
        }));
    }

    public bool IsFailed(string manifestSha256)
    {
        var path = Path.Combine(StateDir, "failed.txt");
        return File.Exists(path) && File.ReadAllLines(path).Contains(manifestSha256, StringComparer.Ordinal);
    }

    public void MarkFailed(string manifestSha256)
    {
        Directory.CreateDirectory(StateDir);
        File.AppendAllText(Path.Combine(StateDir, "failed.txt"), manifestSha256 + "\n");
    }

    public void Log(DateTimeOffset at, string message)
    {
        try
        {
            Directory.CreateDirectory(StateDir);
            File.AppendAllText(LogPath, string.Create(CultureInfo.InvariantCulture, $"{Time.Format(at)} {message.ReplaceLineEndings(" ")}\n"), Encoding.UTF8);
        }
        catch (IOException)
        {
            // Logging must never turn a refusal into a crash.
        }
    }

    private byte[] Key()
    {
        if (_stateKey is not null)
        {
            return _stateKey;
        }

        var path = Path.Combine(StateDir, "state.key");
        if (!File.Exists(path))
        {
            WriteAtomic(path, RandomNumberGenerator.GetBytes(32));
        }

        return File.ReadAllBytes(path);
    }

    /// <summary>Checks a version folder against its own manifest copy: every file present with the declared size and SHA-256.</summary>
    public static bool VerifyFolder(string dir, bool hashes, out ReleaseManifest? manifest, out string reason)
    {
        manifest = null;
        try
        {
            var mpath = Path.Combine(dir, ManifestFile);
            if (!File.Exists(mpath))
            {
                reason = "no manifest copy";
                return false;
            }

            if (!ReleaseManifest.TryParse(File.ReadAllBytes(mpath), out manifest, out var error))
            {
                reason = error.Message;
                return false;
            }

            foreach (var f in manifest.Files)
            {
                var path = Path.Combine(dir, f.Name);
                var info = new FileInfo(path);
                if (!info.Exists || info.Length != f.Size)
                {
                    reason = $"{f.Name}: missing or size {(info.Exists ? info.Length : -1)} != {f.Size}";
                    return false;
                }

                if (hashes)
                {
                    using var fs = File.OpenRead(path);
                    if (Convert.ToHexStringLower(SHA256.HashData(fs)) != f.Sha256)
                    {
                        reason = $"{f.Name}: SHA-256 mismatch";
                        return false;
                    }
                }
            }

            reason = string.Empty;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = e.Message;
            return false;
        }
    }
}
