using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using IMikelGo.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IMikelGo.Updates.Tests.Http;

/// <summary>
/// The real relay on Kestrel (127.0.0.1, random port, HTTPS with its generated certificate) serving an update feed at
/// <c>/updates/</c>. The feed folder is read per request, so each test points <see cref="FeedDirectory"/> at its own feed.
/// </summary>
public sealed class FeedRelay : IAsyncLifetime
{
    private WebApplication? _app;

    public string DataDirectory { get; } = Directory.CreateTempSubdirectory("imikelgo-feed-relay-").FullName;

    public RelayOptions Options { get; } = new();

    public Uri BaseAddress { get; private set; } = null!;

    public Uri Feed => new(BaseAddress, "/updates/");

    public string Fingerprint { get; private set; } = string.Empty;

    public string? FeedDirectory
    {
        get => Options.UpdateFeedDirectory;
        set => Options.UpdateFeedDirectory = value;
    }

    public async Task InitializeAsync()
    {
        Options.DataDirectory = DataDirectory;
        Options.Store = RelayStoreKind.InMemory;
        Options.RateLimitBurst = 10_000;
        Options.RateLimitPerSecond = 10_000;
        Options.Urls.Add("https://127.0.0.1:0");
        var builder = RelayHost.CreateBuilder(Options);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        _app = RelayHost.Build(builder);
        await _app.StartAsync();
        BaseAddress = new Uri(_app.Urls.First());
        Fingerprint = _app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
    }

    /// <summary>An HTTP client that accepts exactly the relay's certificate (as a device pins it).</summary>
    public HttpClient Client() => Pinned(Fingerprint);

    public static HttpClient Pinned(string fingerprint) => new(new SocketsHttpHandler
    {
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), fingerprint, StringComparison.OrdinalIgnoreCase),
        },
    });

    /// <summary>Sends <paramref name="target"/> byte for byte (HttpClient would normalize dot segments and escapes first).</summary>
    public Task<(int Status, string Headers, string Body)> RawGetAsync(string target) => RawHttps.GetAsync(BaseAddress, Fingerprint, target);

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

[CollectionDefinition(Name)]
public sealed class FeedRelayCollection : ICollectionFixture<FeedRelay>
{
    public const string Name = "feed-relay";
}

/// <summary>HTTP/1.1 over TLS with the exact request target given.</summary>
public static class RawHttps
{
    public static async Task<(int Status, string Headers, string Body)> GetAsync(Uri server, string fingerprint, string target)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        await using var tls = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) =>
            certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), fingerprint, StringComparison.OrdinalIgnoreCase));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: {server.Authority}\r\nConnection: close\r\n\r\n"));
        using var ms = new MemoryStream();
        await tls.CopyToAsync(ms);
        var text = Encoding.UTF8.GetString(ms.ToArray());
        var split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var head = split < 0 ? text : text[..split];
        return (int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), head, split < 0 ? string.Empty : text[(split + 4)..]);
    }
}

/// <summary>
/// A tiny HTTPS static host of a feed folder that can misbehave per request (endless body, dropped connection, stall):
/// what a hostile or broken CDN does. Range requests are honoured like any static host's.
/// </summary>
public sealed class ScriptedFeedServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _certDir;
    private readonly RelayCertificate _certificate;

    private ScriptedFeedServer(WebApplication app, string certDir, RelayCertificate certificate)
    {
        _app = app;
        _certDir = certDir;
        _certificate = certificate;
        Fingerprint = certificate.Fingerprint;
        Feed = new Uri(new Uri(app.Urls.First()), "/feed/");
    }

    public Uri Feed { get; }

    public string Fingerprint { get; }

    /// <summary>Requests seen: path and Range header.</summary>
    public List<(string Path, string? Range)> Requests { get; } = [];

    /// <summary>Set when a misbehaving response noticed the client hung up.</summary>
    public TaskCompletionSource ClientGone { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Serves <paramref name="feed"/>; <paramref name="script"/> may take over a request (return true when it did).</summary>
    public static async Task<ScriptedFeedServer> StartAsync(string feed, Func<ScriptedFeedServer, HttpContext, string, Task<bool>> script)
    {
        var certDir = Directory.CreateTempSubdirectory("imikelgo-feed-cert-").FullName;
        var certificate = RelayCertificate.Load(new RelayOptions { DataDirectory = certDir });
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.UseUrls("https://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(h => h.ServerCertificate = certificate.Certificate));
        var app = builder.Build();
        ScriptedFeedServer? self = null;
        app.MapGet("/feed/{**path}", async (string path, HttpContext context) =>
        {
            lock (self!.Requests)
            {
                self.Requests.Add((path, context.Request.Headers.Range.ToString() is { Length: > 0 } r ? r : null));
            }

            if (await script(self, context, path))
            {
                return;
            }

            var file = Path.Combine(feed, path);
            await (File.Exists(file) ? Results.File(file, "application/octet-stream", enableRangeProcessing: true) : Results.NotFound()).ExecuteAsync(context);
        });
        await app.StartAsync();
        self = new ScriptedFeedServer(app, certDir, certificate);
        return self;
    }

    public HttpUpdateSource Source(HttpClient client) => new(client, Feed);

    /// <summary>Writes <paramref name="bytes"/> in chunks until the client goes away; then signals <see cref="ClientGone"/>.</summary>
    public async Task StreamUntilClientLeavesAsync(HttpContext context, long? contentLength, Func<long, byte[]?> chunk)
    {
        context.Response.ContentLength = contentLength;
        long sent = 0;
        try
        {
            while (chunk(sent) is { } bytes)
            {
                await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                sent += bytes.Length;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            ClientGone.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _certificate.Dispose();
        Directory.Delete(_certDir, recursive: true);
    }
}
