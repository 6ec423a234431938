using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace IMikelGo.Updates.Tests;

/// <summary>A vendor, a feed folder and a device install root in a temp folder.</summary>
public sealed class Fx : IDisposable
{
    public Fx()
    {
        Dir = Directory.CreateTempSubdirectory("imikelgo-updates-").FullName;
        Key = VendorKey.Create("CN=iMikelGo Releases, O=iMikelGo", Time.GetUtcNow().AddDays(-1), TimeSpan.FromDays(3650));
    }

    public string Dir { get; }

    public string Feed => Path.Combine(Dir, "feed");

    public string Install => Path.Combine(Dir, "install");

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 3, 2, 7, 0, 0, TimeSpan.Zero));

    public VendorKey Key { get; set; }

    public string Pin { get; set; } = string.Empty;

    public static byte[] Content(string version, string name, int size = 3000)
    {
        var seed = Encoding.UTF8.GetBytes($"{name}@{version};");
        return [.. Enumerable.Range(0, size).Select(i => seed[i % seed.Length])];
    }

    public string Package(string version, int dllSize = 3000)
    {
        var dir = Path.Combine(Dir, "pkg-" + version + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        File.WriteAllBytes(Path.Combine(dir, "imikelgo.dll"), Content(version, "imikelgo.dll", dllSize));
        File.WriteAllBytes(Path.Combine(dir, "imikelgo.exe"), Content(version, "imikelgo.exe", 1200));
        File.WriteAllBytes(Path.Combine(dir, "data", "sounds.bin"), Content(version, "sounds.bin", 5000));
        return dir;
    }

    public ReleaseManifest Publish(string version, long? sequence = null, bool security = false, int graceHours = 0, TimeSpan? validity = null,
        string minimum = "1.0.0", VendorKey? key = null, string channel = "stable", int dllSize = 3000, DateTimeOffset? issuedAt = null)
    {
        var m = ReleasePublisher.CreateManifest(Package(version, dllSize), SemanticVersion.Parse(version), channel,
            sequence ?? ReleasePublisher.NextSequence(Feed, channel), SemanticVersion.Parse(minimum), security, TimeSpan.FromHours(graceHours),
            issuedAt ?? Time.GetUtcNow(), validity ?? TimeSpan.FromDays(30));
        ReleasePublisher.Publish(Feed, m, LastPackage!, key ?? Key);
        return m;
    }

    private string? LastPackage => Directory.EnumerateDirectories(Dir, "pkg-*").OrderBy(d => new DirectoryInfo(d).CreationTimeUtc).LastOrDefault();

    public Updater Updater(string current, IUpdateSource? source = null, Action<string>? hook = null, TimeSpan? readTimeout = null, string channel = "stable",
        TimeProvider? time = null)
        => new(new UpdaterOptions
        {
            InstallRoot = Install,
            Channel = channel,
            PinnedVendorCertificate = string.IsNullOrEmpty(Pin) ? Key.Fingerprint : Pin,
            CurrentVersion = SemanticVersion.Parse(current),
            StepHook = hook,
            ReadTimeout = readTimeout ?? TimeSpan.FromSeconds(30),
        }, source ?? new FolderUpdateSource(Feed), time ?? Time);

    public UpdateLauncher Launcher() => new(Install, Time);

    /// <summary>Installs and confirms 1.4.0 as the running version (as the installer would).</summary>
    public async Task<string> Bootstrap(string version = "1.4.0")
    {
        Pin = Key.Fingerprint;
        Publish(version);
        var r = await Updater("0.0.1").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.None, r.Error.Message);
        var launch = Launcher().Resolve();
        launch!.Version.Text.Should().Be(version);
        Launcher().ConfirmStarted(launch.Version);
        return version;
    }

    public string Running()
    {
        var d = Launcher().Resolve();
        d.Should().NotBeNull("a working version must always remain");
        File.ReadAllBytes(Path.Combine(d!.Directory, "imikelgo.dll")).Should().Equal(Content(d.Version.Text, "imikelgo.dll", (int)new FileInfo(Path.Combine(d.Directory, "imikelgo.dll")).Length));
        return d.Version.Text;
    }

    public string FeedFile(string version, string name) => Path.Combine(Feed, "files", version, name);

    public string Log => File.Exists(Path.Combine(Install, "state", "updates.log")) ? File.ReadAllText(Path.Combine(Install, "state", "updates.log")) : string.Empty;

    public void Dispose()
    {
        Key.Dispose();
        try
        {
            Directory.Delete(Dir, true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Wraps a folder feed to misbehave.</summary>
public sealed class FaultySource(string feed, Func<string, long, Stream, Stream?> transform) : IUpdateSource
{
    private readonly FolderUpdateSource _inner = new(feed);

    public List<(string Path, long Offset)> Requests { get; } = [];

    public async Task<Stream?> OpenAsync(string path, long offset, CancellationToken cancellationToken)
    {
        lock (Requests)
        {
            Requests.Add((path, offset));
        }

        var s = await _inner.OpenAsync(path, offset, cancellationToken);
        return s is null ? null : transform(path, offset, s);
    }
}

/// <summary>Endless stream of 'A'; counts bytes served.</summary>
public sealed class EndlessStream : Stream
{
    public long Served { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => Served; set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        buffer.AsSpan(offset, count).Fill((byte)'A');
        Served += count;
        return count;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Serves the first <c>limit</c> bytes of the inner stream, then fails like a dropped connection.</summary>
public sealed class BreakingStream(Stream inner, long limit) : Stream
{
    private long _served;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _served; set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_served >= limit)
        {
            throw new IOException("connection reset");
        }

        var n = inner.Read(buffer, offset, (int)Math.Min(count, limit - _served));
        _served += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        inner.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Never returns data.</summary>
public sealed class HangingStream : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => 0; set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return 0;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
