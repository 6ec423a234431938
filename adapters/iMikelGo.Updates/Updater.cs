using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace IMikelGo.Updates;

/// <summary>Configuration of the updater and the launcher.</summary>
public sealed class UpdaterOptions
{
    /// <summary>Gets the install root (holds <c>current</c>, <c>versions/</c>, <c>staging/</c>, <c>state/</c>).</summary>
    public required string InstallRoot { get; init; }

    /// <summary>Gets the channel this device follows.</summary>
    public string Channel { get; init; } = "stable";

    /// <summary>Gets the SHA-256 (hex) of the vendor certificate pinned in this build (the first trust anchor; rotations move it).</summary>
    public required string PinnedVendorCertificate { get; init; }

    /// <summary>Gets the version that is running now.</summary>
    public required SemanticVersion CurrentVersion { get; init; }

    /// <summary>Gets the HMAC key of the persisted update state (pass a key from the device vault); null keeps a key file in <c>state/</c>.</summary>
    public IReadOnlyList<byte>? StateKey { get; init; }

    /// <summary>Gets the longest wait for any single read from the feed.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets the longest a whole check or download may take.</summary>
    public TimeSpan OverallTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Gets the tolerated clock skew for a manifest's issue time.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Test hook: called with a step name during activation ("staged", "moved", "pointer"); throwing simulates a kill.</summary>
    internal Action<string>? StepHook { get; init; }
}

/// <summary>A verified, newer release that can be downloaded and activated.</summary>
public sealed class AvailableUpdate
{
    internal AvailableUpdate(ReleaseManifest manifest, byte[] manifestBytes, byte[] signature, SemanticVersion running, bool downgrade)
    {
        Manifest = manifest;
        ManifestBytes = manifestBytes;
        Signature = signature;
        Running = running;
        IsAuthorizedDowngrade = downgrade;
    }

    /// <summary>Gets the verified manifest.</summary>
    public ReleaseManifest Manifest { get; }

    /// <summary>Gets the running version.</summary>
    public SemanticVersion Running { get; }

    /// <summary>Gets a value indicating whether this is an older version authorized by a signed downgrade statement.</summary>
    public bool IsAuthorizedDowngrade { get; }

    /// <summary>Gets a value indicating whether the running version is below the minimum supported version (no deferral).</summary>
    public bool Required => Running < Manifest.MinimumVersion;

    /// <summary>Gets the end of the security grace period, or null for a non-security update.</summary>
    public DateTimeOffset? SecurityDeadline => Manifest.Security ? Manifest.IssuedAt + Manifest.GracePeriod : null;

    internal byte[] ManifestBytes { get; }

    internal byte[] Signature { get; }

    internal string ManifestSha256 => Convert.ToHexStringLower(SHA256.HashData(ManifestBytes));
}

/// <summary>The outcome of a check, download or activation: either an update or a refusal with its reason.</summary>
/// <param name="Update">The update (null when refused or up to date).</param>
/// <param name="Error">Why not (<see cref="UpdateErrorCode.None"/> on success).</param>
public sealed record UpdateResult(AvailableUpdate? Update, UpdateError Error)
{
    /// <summary>Gets a value indicating whether the step succeeded.</summary>
    public bool Succeeded => Error.Code == UpdateErrorCode.None;
}

/// <summary>
/// Checks the feed, verifies and stages a release, and activates it atomically. Every failure keeps the running version and is
/// returned (and appended to <c>state/updates.log</c>) with its reason; nothing is thrown for feed, network or file problems.
/// </summary>
public sealed class Updater
{
    private readonly UpdaterOptions _options;
    private readonly IUpdateSource _source;
    private readonly TimeProvider _time;
    private readonly InstallLayout _layout;

    /// <summary>Initializes a new instance of the <see cref="Updater"/> class.</summary>
    /// <param name="options">The options.</param>
    /// <param name="source">The feed.</param>
    /// <param name="time">The clock (expiry, timeouts).</param>
    public Updater(UpdaterOptions options, IUpdateSource source, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        if (options.PinnedVendorCertificate is not { Length: 64 } pin || !pin.All(Uri.IsHexDigit))
        {
            throw new ArgumentException("PinnedVendorCertificate must be 64 hex digits (SHA-256 of the vendor certificate).", nameof(options));
        }

        _options = options;
        _source = source;
        _time = time ?? TimeProvider.System;
        _layout = new InstallLayout(options.InstallRoot, options.StateKey?.ToArray());
    }

    /// <summary>Gets the path of the update log (refusals and activations).</summary>
    public string LogPath => _layout.LogPath;

    /// <summary>Checks the feed: key rotations, manifest signature, expiry, channel, sequence and version.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The verified update, or the refusal.</returns>
    public Task<UpdateResult> CheckAsync(CancellationToken cancellationToken = default) => GuardAsync("check", ct => CheckCoreAsync(ct), cancellationToken);

    /// <summary>Downloads every file of <paramref name="update"/> into the staging folder (resuming partial files) and verifies size and hash.</summary>
    /// <param name="update">A result of <see cref="CheckAsync"/>.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>Success or the refusal.</returns>
    public Task<UpdateResult> DownloadAsync(AvailableUpdate update, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        return GuardAsync("download", async ct =>
        {
            var e = await DownloadCoreAsync(update, ct).ConfigureAwait(false);
            return new UpdateResult(e.Code == UpdateErrorCode.None ? update : null, e);
        }, cancellationToken);
    }

    /// <summary>Verifies the staged files once more and switches <c>current</c> to the new version by atomic rename. The app must
    /// restart (through <see cref="UpdateLauncher"/>) and the new version must call <see cref="UpdateLauncher.ConfirmStarted"/>.</summary>
    /// <param name="update">A downloaded update.</param>
    /// <returns>Success or the refusal.</returns>
    public UpdateResult Activate(AvailableUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        try
        {
            var e = ActivateCore(update);
            Record("activate", e, update);
            return new UpdateResult(e.Code == UpdateErrorCode.None ? update : null, e);
        }
#pragma warning disable CA1031 // fail closed: the pointer is only replaced as the very last step
        catch (Exception ex)
#pragma warning restore CA1031
        {
            var e = new UpdateError(UpdateErrorCode.InstallFailed, $"activation failed, still on {_options.CurrentVersion}: {ex.GetType().Name}: {ex.Message}");
            Record("activate", e, update);
            return new UpdateResult(null, e);
        }
    }

    /// <summary>Check, download and activate in one go (the "install now" button).</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The activated update, or the refusal.</returns>
    public async Task<UpdateResult> InstallAsync(CancellationToken cancellationToken = default)
    {
        var check = await CheckAsync(cancellationToken).ConfigureAwait(false);
        if (!check.Succeeded)
        {
            return check;
        }

        var download = await DownloadAsync(check.Update!, cancellationToken).ConfigureAwait(false);
        return download.Succeeded ? Activate(check.Update!) : download;
    }

    private async Task<UpdateResult> GuardAsync(string step, Func<CancellationToken, Task<UpdateResult>> body, CancellationToken cancellationToken)
    {
        using var overall = new CancellationTokenSource(_options.OverallTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, overall.Token);
        UpdateResult result;
        try
        {
            result = await body(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            result = new UpdateResult(null, new UpdateError(UpdateErrorCode.Unavailable, $"{step}: timed out; still on {_options.CurrentVersion}."));
        }
#pragma warning disable CA1031 // fail closed: any exception is a refusal
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            result = new UpdateResult(null, new UpdateError(e is HttpRequestException or IOException or TimeoutException ? UpdateErrorCode.Unavailable : UpdateErrorCode.Malformed,
                $"{step}: {Describe(e)}; still on {_options.CurrentVersion}."));
        }

        Record(step, result.Error, result.Update);
        return result;
    }

    // The exception and its causes: HttpClient's own message for a refused TLS certificate is "see inner exception".
    private static string Describe(Exception e)
    {
        var text = $"{e.GetType().Name}: {e.Message}";
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            text += $" ({inner.GetType().Name}: {inner.Message})";
        }

        return text;
    }

    private void Record(string step, UpdateError error, AvailableUpdate? update)
    {
        var what = update is null ? string.Empty : $" {update.Manifest.Channel} {update.Manifest.Version} seq {update.Manifest.Sequence}";
        _layout.Log(_time.GetUtcNow(), error.Code == UpdateErrorCode.None
            ? $"{step} ok{what} (running {_options.CurrentVersion})"
            : $"{step} REFUSED{what} (running {_options.CurrentVersion}) {error}");
    }

    private async Task<UpdateResult> CheckCoreAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        if (!_layout.TryReadState(out var state, out var error))
        {
            return new UpdateResult(null, error);
        }

        var trusted = (state.TrustedKey ?? _options.PinnedVendorCertificate).ToLowerInvariant();

        // 1. Key rotations, in order, each signed by the key it replaces and cross-signed by the new key.
        for (var index = state.Rotations + 1; index <= state.Rotations + 16; index++)
        {
            var path = FeedLayout.Rotation(index);
            var body = await ReadSmallAsync(path, 256 * 1024, ct).ConfigureAwait(false);
            if (body is null)
            {
                break;
            }

            var oldSig = await ReadSmallAsync(FeedLayout.Signature(path), VendorSignatures.MaxSignatureBytes, ct).ConfigureAwait(false);
            var newSig = await ReadSmallAsync(FeedLayout.NextSignature(path), VendorSignatures.MaxSignatureBytes, ct).ConfigureAwait(false);
            if (oldSig is null || newSig is null)
            {
                return Fail(UpdateErrorCode.UntrustedSignature, $"rotation {index}: both signatures (old and new key) are required.");
            }

            if (!VendorSignatures.TryVerify(oldSig, body, trusted, now, $"rotation {index} (old key)", out error))
            {
                return new UpdateResult(null, error);
            }

            if (!KeyRotation.TryParse(body, out var rotation, out error))
            {
                return new UpdateResult(null, error);
            }

            if (rotation.Index != index || rotation.Previous != trusted)
            {
                return Fail(UpdateErrorCode.UntrustedSignature, $"rotation {index}: names index {rotation.Index} and previous key {rotation.Previous[..16]}…, expected {index} and {trusted[..16]}….");
            }

            if (!VendorSignatures.TryVerify(newSig, body, rotation.Next, now, $"rotation {index} (new key)", out error))
            {
                return new UpdateResult(null, error);
            }

            trusted = rotation.Next;
            state = state with { TrustedKey = trusted, Rotations = index };
            _layout.WriteState(state);
            _layout.Log(now, $"vendor key rotated to {trusted} (rotation {index})");
        }

        // 2. Manifest and its detached signature.
        var manifestPath = FeedLayout.Manifest(_options.Channel);
        var bytes = await ReadSmallAsync(manifestPath, ReleaseManifest.MaxBytes, ct).ConfigureAwait(false);
        var signature = await ReadSmallAsync(FeedLayout.Signature(manifestPath), VendorSignatures.MaxSignatureBytes, ct).ConfigureAwait(false);
        if (bytes is null || signature is null)
        {
            return Fail(UpdateErrorCode.Unavailable, $"feed has no {manifestPath} with signature.");
        }

        if (!VendorSignatures.TryVerify(signature, bytes, trusted, now, "manifest", out error))
        {
            return new UpdateResult(null, error);
        }

        if (!ReleaseManifest.TryParse(bytes, out var manifest, out error))
        {
            return new UpdateResult(null, error);
        }

        if (manifest.Channel != _options.Channel)
        {
            return Fail(UpdateErrorCode.WrongChannel, $"manifest is for channel '{manifest.Channel}', this device follows '{_options.Channel}'.");
        }

        if (now >= manifest.ExpiresAt)
        {
            return Fail(UpdateErrorCode.Expired, $"manifest {manifest.Version} seq {manifest.Sequence} expired at {Time.Format(manifest.ExpiresAt)} (stale or frozen feed).");
        }

        if (manifest.IssuedAt > now + _options.ClockSkew)
        {
            return Fail(UpdateErrorCode.Expired, $"manifest is issued in the future ({Time.Format(manifest.IssuedAt)}); check the device clock.");
        }

        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (manifest.Sequence < state.Sequence || (manifest.Sequence == state.Sequence && sha != state.ManifestSha256))
        {
            return Fail(UpdateErrorCode.Rollback, $"manifest sequence {manifest.Sequence} is older than the newest trusted {state.Sequence} (or the same sequence with other content).");
        }

        // 3. Version: strictly newer than running and not below the newest trusted manifest, unless a signed downgrade statement says so.
        var running = _options.CurrentVersion;
        var newest = state.Version is not null && SemanticVersion.TryParse(state.Version, out var n) ? n : null;
        var downgrade = false;
        if (manifest.Version <= running || (newest is not null && manifest.Version < newest))
        {
            if (manifest.Version == running && (newest is null || manifest.Version >= newest))
            {
                return new UpdateResult(null, new UpdateError(UpdateErrorCode.UpToDate, $"{running} is the newest version on '{_options.Channel}'."));
            }

            var authorized = await TryDowngradeAsync(manifest, trusted, now, ct).ConfigureAwait(false);
            if (authorized is not null)
            {
                return Fail(UpdateErrorCode.Rollback,
                    $"manifest version {manifest.Version} is not newer than running {running} (newest trusted {newest?.Text ?? "none"}); a downgrade needs a signed downgrade statement ({authorized}).");
            }

            downgrade = true;
        }

        if (_layout.IsFailed(sha))
        {
            return Fail(UpdateErrorCode.KnownBad, $"{manifest.Version} seq {manifest.Sequence} failed to start before; waiting for a newer release.");
        }

        // 4. Persist the newest trusted manifest before acting on it (rollback floor).
        if (manifest.Sequence > state.Sequence)
        {
            _layout.WriteState(state with { Sequence = manifest.Sequence, Version = newest is null || manifest.Version > newest || downgrade ? manifest.Version.Text : newest.Text, ManifestSha256 = sha });
        }

        return new UpdateResult(new AvailableUpdate(manifest, bytes, signature, running, downgrade), UpdateError.None);
    }

    /// <summary>Returns null when the manifest is authorized by a signed downgrade statement, else why not.</summary>
    private async Task<string?> TryDowngradeAsync(ReleaseManifest manifest, string trusted, DateTimeOffset now, CancellationToken ct)
    {
        var path = FeedLayout.Downgrade(_options.Channel);
        var body = await ReadSmallAsync(path, 256 * 1024, ct).ConfigureAwait(false);
        var sig = await ReadSmallAsync(FeedLayout.Signature(path), VendorSignatures.MaxSignatureBytes, ct).ConfigureAwait(false);
        if (body is null || sig is null)
        {
            return "none published";
        }

        if (!VendorSignatures.TryVerify(sig, body, trusted, now, "downgrade statement", out var error) || !DowngradeStatement.TryParse(body, out var s, out error))
        {
            return error.Message;
        }

        if (now >= s.ExpiresAt || s.Channel != manifest.Channel || s.Target != manifest.Version.Text || s.ManifestSequence != manifest.Sequence
            || !s.Withdrawn.Contains(_options.CurrentVersion.Text, StringComparer.Ordinal))
        {
            return "the published statement does not cover this manifest, channel and running version, or has expired";
        }

        return null;
    }

    private UpdateResult Fail(UpdateErrorCode code, string message) => new(null, new UpdateError(code, message));

    private async Task<byte[]?> ReadSmallAsync(string path, int max, CancellationToken ct)
    {
        var stream = await WithReadTimeout(t => _source.OpenAsync(path, 0, t), ct).ConfigureAwait(false);
        if (stream is null)
        {
            return null;
        }

        await using (stream.ConfigureAwait(false))
        {
            using var ms = new MemoryStream();
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var read = await WithReadTimeout(t => stream.ReadAsync(buffer, t).AsTask(), ct).ConfigureAwait(false);
                if (read == 0)
                {
                    return ms.ToArray();
                }

                if (ms.Length + read > max)
                {
                    throw new InvalidDataException($"{path} is larger than {max} bytes.");
                }

                ms.Write(buffer, 0, read);
            }
        }
    }

    private async Task<T> WithReadTimeout<T>(Func<CancellationToken, Task<T>> read, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(_options.ReadTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            return await read(linked.Token).WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new TimeoutException($"no data from the feed for {_options.ReadTimeout.TotalSeconds:0.#} s.");
        }
    }

    private async Task<UpdateError> DownloadCoreAsync(AvailableUpdate update, CancellationToken ct)
    {
        var m = update.Manifest;
        var dir = _layout.StagingDir(m.Version.Text);
        var owner = Path.Combine(dir, ".for-manifest");
        if (Directory.Exists(dir) && (!File.Exists(owner) || await File.ReadAllTextAsync(owner, ct).ConfigureAwait(false) != update.ManifestSha256))
        {
            Directory.Delete(dir, recursive: true); // partial files of another manifest are never mixed in
        }

        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(owner, update.ManifestSha256, ct).ConfigureAwait(false);
        foreach (var file in m.Files)
        {
            var target = Path.Combine(dir, file.Name);
            if (!Path.GetFullPath(target).StartsWith(dir + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                return new UpdateError(UpdateErrorCode.Malformed, $"file name '{ReleaseManifest.Sanitize(file.Name)}' escapes the staging folder.");
            }

            if (File.Exists(target) && new FileInfo(target).Length == file.Size && HashFile(target) == file.Sha256)
            {
                continue;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var e = await DownloadFileAsync(update, file, target, ct).ConfigureAwait(false);
            if (e.Code != UpdateErrorCode.None)
            {
                return e;
            }
        }

        return UpdateError.None;
    }

    private async Task<UpdateError> DownloadFileAsync(AvailableUpdate update, PackageFile file, string target, CancellationToken ct)
    {
        var part = target + ".part";
        if (File.Exists(part) && new FileInfo(part).Length > file.Size)
        {
            File.Delete(part);
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long offset = 0;
        var buffer = new byte[64 * 1024];
        var fs = new FileStream(part, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 64 * 1024, useAsync: true);
        await using (fs.ConfigureAwait(false))
        {
            int n;
            while ((n = await fs.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                offset += n;
            }

            var path = FeedLayout.File(update.Manifest.Version, file.Name);

            // A part that is already complete (killed before the rename) is only re-hashed: an HTTP range starting at the
            // file's end is unsatisfiable (416) and would block the resume forever.
            var source = offset == file.Size ? Stream.Null : await WithReadTimeout(t => _source.OpenAsync(path, offset, t), ct).ConfigureAwait(false);
            if (source is null)
            {
                return new UpdateError(UpdateErrorCode.Unavailable, $"feed has no {path}.");
            }

            await using (source.ConfigureAwait(false))
            {
                while (true)
                {
                    // Never ask for more than one byte past the declared size: endless data stops right there.
                    var want = (int)Math.Min(buffer.Length, file.Size - offset + 1);
                    var read = await WithReadTimeout(t => source.ReadAsync(buffer.AsMemory(0, want), t).AsTask(), ct).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    if (offset + read > file.Size)
                    {
                        await fs.DisposeAsync().ConfigureAwait(false);
                        File.Delete(part);
                        return new UpdateError(UpdateErrorCode.PackageMismatch, $"{file.Name}: the feed sends more than the declared {file.Size} bytes (endless data); download stopped.");
                    }

                    await fs.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                    hash.AppendData(buffer, 0, read);
                    offset += read;
                }
            }

            if (offset < file.Size)
            {
                await fs.FlushAsync(ct).ConfigureAwait(false);
                return new UpdateError(UpdateErrorCode.Unavailable, $"{file.Name}: the feed ended after {offset} of {file.Size} bytes; the download resumes next time.");
            }

            fs.Flush(flushToDisk: true);
        }

        if (Convert.ToHexStringLower(hash.GetHashAndReset()) != file.Sha256)
        {
            File.Delete(part);
            return new UpdateError(UpdateErrorCode.PackageMismatch, $"{file.Name}: SHA-256 does not match the signed manifest (arbitrary, tampered or mixed-in package).");
        }

        File.Move(part, target, overwrite: true);
        return UpdateError.None;
    }

    private static string HashFile(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    private UpdateError ActivateCore(AvailableUpdate update)
    {
        var m = update.Manifest;
        var version = m.Version.Text;
        var staged = _layout.StagingDir(version);
        if (!Directory.Exists(staged))
        {
            return new UpdateError(UpdateErrorCode.InstallFailed, $"{version} is not downloaded.");
        }

        // Only the manifest's files (plus our copy of the manifest) go into the version folder.
        var expected = new HashSet<string>(m.Files.Select(f => Path.GetFullPath(Path.Combine(staged, f.Name))), StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(staged, "*", SearchOption.AllDirectories))
        {
            if (!expected.Contains(Path.GetFullPath(f)))
            {
                File.Delete(f);
            }
        }

        File.WriteAllBytes(Path.Combine(staged, InstallLayout.ManifestFile), update.ManifestBytes);
        File.WriteAllBytes(Path.Combine(staged, InstallLayout.SignatureFile), update.Signature);
        if (!InstallLayout.VerifyFolder(staged, hashes: true, out var copy, out var reason) || copy is null || copy.Sequence != m.Sequence)
        {
            return new UpdateError(UpdateErrorCode.PackageMismatch, $"staged {version} failed final verification: {reason}");
        }

        _options.StepHook?.Invoke("staged");
        var pointer = _layout.ReadPointer();
        var target = _layout.VersionDir(version);
        if (Directory.Exists(target))
        {
            if (pointer?.Version == version)
            {
                return new UpdateError(UpdateErrorCode.InstallFailed, $"{version} is already the current version.");
            }

            Directory.Delete(target, recursive: true);
        }

        Directory.CreateDirectory(_layout.Versions);
        Directory.Move(staged, target); // atomic: the version folder appears only complete
        _options.StepHook?.Invoke("moved");
        var previous = pointer?.Version ?? _options.CurrentVersion.Text;
        _layout.WritePointer(new Pointer(version, previous)); // atomic rename: the switch
        _options.StepHook?.Invoke("pointer");
        return UpdateError.None;
    }
}
