using IMikelGo.Updates;

namespace IMikelGo.App.Tests;

/// <summary>
/// A vendor key and a static feed folder written with the Updates library's publisher, as
/// tests/iMikelGo.Updates.Tests/Fixture.cs does it (the app consumes it through <c>--update-feed</c>).
/// </summary>
internal sealed class UpdateFeed : IDisposable
{
    internal UpdateFeed()
    {
        Dir = Directory.CreateTempSubdirectory("imikelgo-app-feed-").FullName;
        Key = VendorKey.Create("CN=iMikelGo Releases, O=iMikelGo", DateTimeOffset.UtcNow.AddDays(-1), TimeSpan.FromDays(365));
        CertificatePem = Path.Combine(Dir, "vendor.crt.pem");
        File.WriteAllText(CertificatePem, Key.Certificate.ExportCertificatePem());
    }

    internal string Dir { get; }

    internal string Feed => Path.Combine(Dir, "feed");

    internal VendorKey Key { get; }

    internal string CertificatePem { get; }

    internal string Manifest => Path.Combine(Feed, "stable", "manifest.json");

    /// <summary>Signs and publishes a release of two files.</summary>
    internal ReleaseManifest Publish(string version, bool security = false, TimeSpan? grace = null, DateTimeOffset? issuedAt = null)
    {
        var package = Directory.CreateDirectory(Path.Combine(Dir, "pkg-" + Guid.NewGuid().ToString("N"))).FullName;
        File.WriteAllText(Path.Combine(package, "iMikelGo.App.dll"), $"app {version}");
        File.WriteAllText(Path.Combine(package, "readme.txt"), $"release notes {version}");
        var manifest = ReleasePublisher.CreateManifest(package, SemanticVersion.Parse(version), "stable", ReleasePublisher.NextSequence(Feed, "stable"),
            SemanticVersion.Parse("1.0.0"), security, grace ?? TimeSpan.Zero, issuedAt ?? DateTimeOffset.UtcNow.AddMinutes(-5), TimeSpan.FromDays(30));
        ReleasePublisher.Publish(Feed, manifest, package, Key);
        return manifest;
    }

    /// <summary>Checks, downloads and activates the feed's release into <paramref name="installRoot"/> (as "Install now" does).</summary>
    internal async Task<UpdateResult> InstallAsync(string installRoot, string running) =>
        await new Updater(new UpdaterOptions
        {
            InstallRoot = installRoot,
            Channel = "stable",
            PinnedVendorCertificate = Key.Fingerprint,
            CurrentVersion = SemanticVersion.Parse(running),
        }, new FolderUpdateSource(Feed)).InstallAsync();

    public void Dispose()
    {
        Key.Dispose();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
