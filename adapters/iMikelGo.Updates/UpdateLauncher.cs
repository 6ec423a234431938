using System.Security.Cryptography;

namespace IMikelGo.Updates;

/// <summary>Which version the launcher starts, and why.</summary>
/// <param name="Version">The version to start.</param>
/// <param name="Directory">Its folder (<c>versions/&lt;v&gt;</c>).</param>
/// <param name="Confirmed">True when this version has started cleanly before.</param>
/// <param name="Notes">Versions skipped and why (incomplete, failed to start); empty normally.</param>
public sealed record LaunchDecision(SemanticVersion Version, string Directory, bool Confirmed, IReadOnlyList<string> Notes);

/// <summary>
/// Launcher logic (run it before loading the app): starts <c>current</c> only if its files verify against its manifest copy and it
/// has not failed to confirm a clean start <see cref="MaxStartAttempts"/> times; otherwise falls back to the previous version.
/// Incomplete versions are deleted (so the updater fetches them again); versions that never started cleanly are marked bad.
/// </summary>
public sealed class UpdateLauncher
{
    private readonly InstallLayout _layout;
    private readonly TimeProvider _time;

    /// <summary>Initializes a new instance of the <see cref="UpdateLauncher"/> class.</summary>
    /// <param name="installRoot">The install root.</param>
    /// <param name="time">The clock (for the log).</param>
    public UpdateLauncher(string installRoot, TimeProvider? time = null)
    {
        _layout = new InstallLayout(installRoot, null);
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Gets how many unconfirmed starts a new version gets before the launcher falls back (default 3).</summary>
    public int MaxStartAttempts { get; init; } = 3;

    /// <summary>Gets a value indicating whether every file's SHA-256 is checked at each start (default true; sizes are always checked).</summary>
    public bool VerifyHashes { get; init; } = true;

    /// <summary>Chooses the version to start and records the start attempt.</summary>
    /// <returns>The decision, or null when no working version is installed (reinstall needed).</returns>
    public LaunchDecision? Resolve()
    {
        var notes = new List<string>();
        var pointer = _layout.ReadPointer();
        var candidates = new List<string>();
        if (pointer is not null)
        {
            candidates.Add(pointer.Version);
            if (pointer.Previous is not null)
            {
                candidates.Add(pointer.Previous);
            }
        }
        else
        {
            notes.Add("no valid 'current' pointer");
        }

        if (Directory.Exists(_layout.Versions))
        {
            candidates.AddRange(Directory.EnumerateDirectories(_layout.Versions)
                .Select(Path.GetFileName)
                .Select(n => SemanticVersion.TryParse(n, out var v) ? v : null)
                .OfType<SemanticVersion>()
                .Where(v => File.Exists(Path.Combine(_layout.VersionDir(v.Text), InstallLayout.StartedOk)))
                .OrderByDescending(v => v)
                .Select(v => v.Text));
        }

        foreach (var candidate in candidates.Distinct(StringComparer.Ordinal))
        {
            var dir = _layout.VersionDir(candidate);
            if (!Directory.Exists(dir))
            {
                notes.Add($"{candidate}: not installed");
                continue;
            }

            if (!InstallLayout.VerifyFolder(dir, VerifyHashes, out _, out var reason))
            {
                notes.Add($"{candidate}: incomplete ({reason}); removed, it will be downloaded again");
                _layout.Log(_time.GetUtcNow(), $"launch: {candidate} incomplete ({reason}); removed");
                TryDelete(dir);
                continue;
            }

            var confirmed = File.Exists(Path.Combine(dir, InstallLayout.StartedOk));
            var starts = Path.Combine(dir, InstallLayout.Starts);
            if (!confirmed && File.Exists(starts) && new FileInfo(starts).Length >= MaxStartAttempts)
            {
                notes.Add($"{candidate}: did not confirm a clean start after {MaxStartAttempts} attempts; marked bad");
                _layout.Log(_time.GetUtcNow(), $"launch: {candidate} failed to start {MaxStartAttempts} times; marked bad");
                _layout.MarkFailed(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, InstallLayout.ManifestFile)))));
                TryDelete(dir);
                continue;
            }

            if (pointer?.Version != candidate)
            {
                _layout.WritePointer(new Pointer(candidate, null));
                _layout.Log(_time.GetUtcNow(), $"launch: fell back to {candidate}");
            }

            if (!confirmed)
            {
                File.AppendAllText(starts, "x");
            }

            return new LaunchDecision(SemanticVersion.Parse(candidate), dir, confirmed, notes);
        }

        _layout.Log(_time.GetUtcNow(), "launch: no working version installed: " + string.Join("; ", notes));
        return null;
    }

    /// <summary>Called by the new version once it has started cleanly (window shown, store opened): marks it good and removes
    /// versions other than it and its predecessor.</summary>
    /// <param name="version">The running version.</param>
    public void ConfirmStarted(SemanticVersion version)
    {
        ArgumentNullException.ThrowIfNull(version);
        var dir = _layout.VersionDir(version.Text);
        if (!Directory.Exists(dir))
        {
            throw new InvalidOperationException($"{version} is not installed under {_layout.Versions}.");
        }

        InstallLayout.WriteAtomic(Path.Combine(dir, InstallLayout.StartedOk), "ok"u8);
        var keep = new HashSet<string>(StringComparer.Ordinal) { version.Text };
        if (_layout.ReadPointer() is { } p && p.Version == version.Text && p.Previous is not null)
        {
            keep.Add(p.Previous);
        }

        foreach (var other in Directory.EnumerateDirectories(_layout.Versions))
        {
            if (!keep.Contains(Path.GetFileName(other)))
            {
                TryDelete(other);
            }
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A locked folder is retried at the next start.
        }
    }
}
