using System.Net;
using System.Net.Http.Headers;

namespace IMikelGo.Updates;

/// <summary>Where the updater reads the static feed (see docs/updates.md for the layout). Nothing read from it is trusted before verification.</summary>
public interface IUpdateSource
{
    /// <summary>Opens a feed file for reading from <paramref name="offset"/>.</summary>
    /// <param name="path">Feed-relative path with '/' separators (built by the updater from validated names).</param>
    /// <param name="offset">First byte wanted (for resumed downloads); the returned stream must start there.</param>
    /// <param name="cancellationToken">Cancellation (the updater's timeouts).</param>
    /// <returns>The stream, or null when the file does not exist.</returns>
    Task<Stream?> OpenAsync(string path, long offset, CancellationToken cancellationToken);
}

/// <summary>A feed in a local or mounted folder (USB stick, network share, tests).</summary>
/// <param name="folder">The feed root.</param>
public sealed class FolderUpdateSource(string folder) : IUpdateSource
{
    private readonly string _root = Path.GetFullPath(folder);

    /// <inheritdoc />
    public Task<Stream?> OpenAsync(string path, long offset, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(Path.Combine(_root, path));
        if (!full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(full))
        {
            return Task.FromResult<Stream?>(null);
        }

        var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, useAsync: true);
        fs.Seek(offset, SeekOrigin.Begin);
        return Task.FromResult<Stream?>(fs);
    }
}

/// <summary>A feed on any static HTTPS host (or the relay's <c>/updates/</c> route). Uses HTTP Range requests to resume.</summary>
public sealed class HttpUpdateSource : IUpdateSource
{
    private readonly HttpClient _client;
    private readonly Uri _base;

    /// <summary>Initializes a new instance of the <see cref="HttpUpdateSource"/> class.</summary>
    /// <param name="client">The HTTP client (its handler may pin the host's certificate).</param>
    /// <param name="baseUri">The feed root; must be https (http only for loopback, e.g. tests).</param>
    public HttpUpdateSource(HttpClient client, Uri baseUri)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(baseUri);
        if (baseUri.Scheme != Uri.UriSchemeHttps && !(baseUri.Scheme == Uri.UriSchemeHttp && baseUri.IsLoopback))
        {
            throw new ArgumentException("The update feed must be served over https.", nameof(baseUri));
        }

        _client = client;
        _base = baseUri.AbsoluteUri.EndsWith('/') ? baseUri : new Uri(baseUri.AbsoluteUri + "/");
    }

    /// <inheritdoc />
    public async Task<Stream?> OpenAsync(string path, long offset, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_base, path));
        if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
        }

        var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            response.Dispose();
            return null;
        }

        if (!response.IsSuccessStatusCode || (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From != offset))
        {
            var status = (int)response.StatusCode;
            var range = response.Content.Headers.ContentRange;
            response.Dispose();
            throw new HttpRequestException(status == 206
                ? $"{path}: asked for bytes from {offset}, the feed answered the range '{range}'."
                : $"{path}: the feed answered HTTP {status}.");
        }

        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        if (offset > 0 && response.StatusCode != HttpStatusCode.PartialContent)
        {
            // The server ignored the range: skip to the offset.
            var skip = new byte[64 * 1024];
            var left = offset;
            while (left > 0)
            {
                var n = await stream.ReadAsync(skip.AsMemory(0, (int)Math.Min(skip.Length, left)), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                left -= n;
            }
        }

        return stream;
    }
}

/// <summary>Paths of the static feed layout.</summary>
internal static class FeedLayout
{
    public static string Manifest(string channel) => $"{channel}/manifest.json";

    public static string Signature(string path) => path + ".p7s";

    public static string NextSignature(string path) => path + ".next.p7s";

    public static string Downgrade(string channel) => $"{channel}/downgrade.json";

    public static string Info(string channel) => $"{channel}/feed.json";

    public static string File(SemanticVersion version, string name) => $"files/{version.Text}/{name}";

    public static string Rotation(int index) => $"keys/rotation-{index:D4}.json";
}
