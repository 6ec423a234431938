using System.Security.Cryptography;
using System.Text.Json;

namespace IMikelGo.Updates;

/// <summary>Vendor side: builds manifests and writes the static feed folder (any HTTPS host, or the relay, serves it as is).</summary>
public static class ReleasePublisher
{
    /// <summary>Builds a manifest for every file under <paramref name="packageDir"/> (relative names, '/' separators, sorted).</summary>
    /// <param name="packageDir">The release's files.</param>
    /// <param name="version">The version.</param>
    /// <param name="channel">The channel.</param>
    /// <param name="sequence">The manifest sequence (greater than every earlier manifest of the channel).</param>
    /// <param name="minimumVersion">The minimum supported version.</param>
    /// <param name="security">Whether this is a security update.</param>
    /// <param name="gracePeriod">The security grace period (whole hours).</param>
    /// <param name="issuedAt">Issue time (truncated to seconds).</param>
    /// <param name="validity">How long the manifest is valid; re-sign before it expires.</param>
    /// <returns>The manifest.</returns>
    public static ReleaseManifest CreateManifest(string packageDir, SemanticVersion version, string channel, long sequence,
        SemanticVersion minimumVersion, bool security, TimeSpan gracePeriod, DateTimeOffset issuedAt, TimeSpan validity)
    {
        var root = Path.GetFullPath(packageDir);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Order(StringComparer.Ordinal)
            .Select(name =>
            {
                using var fs = File.OpenRead(Path.Combine(root, name));
                return new PackageFile(name, Convert.ToHexStringLower(SHA256.HashData(fs)), fs.Length);
            })
            .ToList();
        var issued = new DateTimeOffset(issuedAt.UtcTicks - (issuedAt.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
        return new ReleaseManifest
        {
            Version = version,
            Channel = channel,
            Sequence = sequence,
            MinimumVersion = minimumVersion,
            Security = security,
            GracePeriod = gracePeriod,
            IssuedAt = issued,
            ExpiresAt = issued + TimeSpan.FromSeconds(Math.Floor(validity.TotalSeconds)),
            Files = files,
        };
    }

    /// <summary>The next free sequence for <paramref name="channel"/> in a feed folder (1 for a new feed).</summary>
    /// <param name="feedDir">The feed folder.</param>
    /// <param name="channel">The channel.</param>
    /// <returns>The sequence to use.</returns>
    public static long NextSequence(string feedDir, string channel)
    {
        var path = Path.Combine(feedDir, FeedLayout.Manifest(channel));
        return File.Exists(path) && ReleaseManifest.TryParse(File.ReadAllBytes(path), out var m, out _) ? m.Sequence + 1 : 1;
    }

    /// <summary>Copies the package files to <c>files/&lt;version&gt;/</c>, then writes <c>&lt;channel&gt;/manifest.json</c> and its
    /// detached signature <c>manifest.json.p7s</c> (last, each by atomic rename) and an informational <c>feed.json</c>.</summary>
    /// <param name="feedDir">The feed folder.</param>
    /// <param name="manifest">The manifest.</param>
    /// <param name="packageDir">Where the files are.</param>
    /// <param name="key">The vendor key.</param>
    /// <returns>The manifest bytes that were signed.</returns>
    public static byte[] Publish(string feedDir, ReleaseManifest manifest, string packageDir, VendorKey key)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(key);
        var bytes = manifest.ToBytes();
        foreach (var f in manifest.Files)
        {
            var target = Path.Combine(feedDir, FeedLayout.File(manifest.Version, f.Name));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.Combine(packageDir, f.Name), target, overwrite: true);
            using var fs = File.OpenRead(target);
            if (fs.Length != f.Size || Convert.ToHexStringLower(SHA256.HashData(fs)) != f.Sha256)
            {
                throw new InvalidOperationException($"{f.Name} changed since the manifest was built.");
            }
        }

        var path = Path.Combine(feedDir, FeedLayout.Manifest(manifest.Channel));
        // Signature first, then manifest: a reader in between sees a mismatch (refused, retried later), never unsigned content.
        InstallLayout.WriteAtomic(Path.Combine(feedDir, FeedLayout.Signature(FeedLayout.Manifest(manifest.Channel))), key.Sign(bytes));
        InstallLayout.WriteAtomic(path, bytes);
        InstallLayout.WriteAtomic(Path.Combine(feedDir, FeedLayout.Info(manifest.Channel)), Json.Write(w =>
        {
            w.WriteString("note", "informational only; clients trust manifest.json + manifest.json.p7s, never this file");
            w.WriteString("channel", manifest.Channel);
            w.WriteString("version", manifest.Version.Text);
            w.WriteNumber("sequence", manifest.Sequence);
            w.WriteString("vendorCertificate", key.Fingerprint);
        }));
        return bytes;
    }

    /// <summary>Publishes the next key rotation statement: signed by <paramref name="current"/> and cross-signed by <paramref name="next"/>.</summary>
    /// <param name="feedDir">The feed folder.</param>
    /// <param name="current">The key now pinned by devices.</param>
    /// <param name="next">The new key.</param>
    /// <param name="issuedAt">Issue time.</param>
    /// <returns>The rotation index.</returns>
    public static int PublishRotation(string feedDir, VendorKey current, VendorKey next, DateTimeOffset issuedAt)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        var index = 1;
        while (File.Exists(Path.Combine(feedDir, FeedLayout.Rotation(index))))
        {
            index++;
        }

        var issued = new DateTimeOffset(issuedAt.UtcTicks - (issuedAt.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
        var body = new KeyRotation(index, current.Fingerprint, next.Fingerprint, next.Certificate.RawData, issued).ToBytes();
        var path = FeedLayout.Rotation(index);
        InstallLayout.WriteAtomic(Path.Combine(feedDir, FeedLayout.Signature(path)), current.Sign(body));
        InstallLayout.WriteAtomic(Path.Combine(feedDir, FeedLayout.NextSignature(path)), next.Sign(body));
        InstallLayout.WriteAtomic(Path.Combine(feedDir, path), body);
        return index;
    }

    /// <summary>Publishes a signed downgrade statement: devices running a withdrawn version may install the (re-signed) manifest
    /// with <paramref name="manifestSequence"/> whose version is <paramref name="target"/>.</summary>
    /// <param name="feedDir">The feed folder.</param>
    /// <param name="key">The vendor key.</param>
    /// <param name="channel">The channel.</param>
    /// <param name="withdrawn">The withdrawn versions.</param>
    /// <param name="target">The version to go back to.</param>
    /// <param name="manifestSequence">The sequence of the new manifest for <paramref name="target"/>.</param>
    /// <param name="issuedAt">Issue time.</param>
    /// <param name="validity">Validity.</param>
    public static void PublishDowngrade(string feedDir, VendorKey key, string channel, IEnumerable<SemanticVersion> withdrawn, SemanticVersion target,
        long manifestSequence, DateTimeOffset issuedAt, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(target);
        var issued = new DateTimeOffset(issuedAt.UtcTicks - (issuedAt.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
        var body = new DowngradeStatement(channel, [.. withdrawn.Select(v => v.Text)], target.Text, manifestSequence, issued,
            issued + TimeSpan.FromSeconds(Math.Floor(validity.TotalSeconds))).ToBytes();
        var path = FeedLayout.Downgrade(channel);
        InstallLayout.WriteAtomic(Path.Combine(feedDir, FeedLayout.Signature(path)), key.Sign(body));
        InstallLayout.WriteAtomic(Path.Combine(feedDir, path), body);
    }

    /// <summary>Reads the informational <c>feed.json</c> version (never trusted by clients; for dashboards).</summary>
    /// <param name="feedDir">The feed folder.</param>
    /// <param name="channel">The channel.</param>
    /// <returns>The advertised version, or null.</returns>
    internal static string? Advertised(string feedDir, string channel)
    {
        var path = Path.Combine(feedDir, FeedLayout.Info(channel));
        if (!File.Exists(path))
        {
            return null;
        }

        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.GetProperty("version").GetString();
    }
}
