using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace IMikelGo.Updates.Tests.Http;

/// <summary>The relay's <c>GET /updates/{**path}</c> route: static, cacheable, resumable, and never anything outside the feed folder.</summary>
[Collection(FeedRelayCollection.Name)]
public sealed class RelayFeedRouteTests : IDisposable
{
    private const string Secret = "TOP-SECRET-not-part-of-the-feed";
    private readonly Fx _fx = new();
    private readonly FeedRelay _relay;
    private readonly HttpClient _http;

    public RelayFeedRouteTests(FeedRelay relay)
    {
        _relay = relay;
        _http = relay.Client();
        _http.BaseAddress = relay.BaseAddress;
        _fx.Publish("1.5.0");
        relay.FeedDirectory = _fx.Feed;
    }

    public void Dispose()
    {
        _http.Dispose();
        _fx.Dispose();
    }

    [Fact]
    public async Task Files_are_served_with_length_ranges_etag_and_cache_headers()
    {
        var manifest = File.ReadAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json"));
        using var whole = await _http.GetAsync("/updates/stable/manifest.json");
        whole.StatusCode.Should().Be(HttpStatusCode.OK);
        (await whole.Content.ReadAsByteArrayAsync()).Should().Equal(manifest);
        whole.Content.Headers.ContentLength.Should().Be(manifest.Length);
        whole.Content.Headers.ContentType!.MediaType.Should().Be("application/json");
        whole.Headers.CacheControl!.NoCache.Should().BeTrue("a manifest changes with every release");
        whole.Headers.ETag.Should().NotBeNull();

        using var again = new HttpRequestMessage(HttpMethod.Get, "/updates/stable/manifest.json");
        again.Headers.IfNoneMatch.Add(whole.Headers.ETag!);
        using var notModified = await _http.SendAsync(again);
        notModified.StatusCode.Should().Be(HttpStatusCode.NotModified);

        var sounds = File.ReadAllBytes(_fx.FeedFile("1.5.0", "data/sounds.bin"));
        using var ranged = new HttpRequestMessage(HttpMethod.Get, "/updates/files/1.5.0/data/sounds.bin");
        ranged.Headers.Range = new RangeHeaderValue(100, 199);
        using var partial = await _http.SendAsync(ranged);
        partial.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        partial.Content.Headers.ContentRange!.ToString().Should().Be("bytes 100-199/5000");
        (await partial.Content.ReadAsByteArrayAsync()).Should().Equal(sounds[100..200]);
        partial.Headers.CacheControl!.ToString().Should().Contain("immutable", "a release's files never change");

        using var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/updates/files/1.5.0/data/sounds.bin"));
        head.StatusCode.Should().Be(HttpStatusCode.OK);
        head.Content.Headers.ContentLength.Should().Be(5000);
        (await head.Content.ReadAsByteArrayAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task A_missing_file_is_a_404_problem_naming_the_path()
    {
        using var response = await _http.GetAsync("/updates/files/9.9.9/imikelgo.dll");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        problem.GetProperty("reason").GetString().Should().Be("not-found");
        problem.GetProperty("detail").GetString().Should().Contain("files/9.9.9/imikelgo.dll");
    }

    [Fact]
    public async Task Without_a_configured_feed_the_route_answers_a_clear_404_problem()
    {
        _relay.FeedDirectory = null;

        using var response = await _http.GetAsync("/updates/stable/manifest.json");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        problem.GetProperty("reason").GetString().Should().Be("update-feed-not-configured");
        problem.GetProperty("detail").GetString().Should().Contain("--update-feed");
    }

    [Theory]
    [InlineData("/updates/../secret.txt")]
    [InlineData("/updates/%2e%2e/secret.txt")]
    [InlineData("/updates/%2E%2E/%2E%2E/secret.txt")]
    [InlineData("/updates/stable/..%2f..%2fsecret.txt")]
    [InlineData("/updates/stable/%2e%2e%2F%2e%2e%2Fsecret.txt")]
    [InlineData("/updates/%252e%252e/secret.txt")]
    [InlineData("/updates/stable/..%5c..%5csecret.txt")]
    [InlineData("/updates/stable\\..\\..\\secret.txt")]
    [InlineData("/updates//{secret}")]
    [InlineData("/updates/%2f{secret}")]
    [InlineData("/updates/C:%5csecret.txt")]
    [InlineData("/updates/stable/manifest.json%00.txt")]
    [InlineData("/updates/.hidden")]
    [InlineData("/updates/stable/.hidden")]
    [InlineData("/updates/link/secret.txt")]
    [InlineData("/updates/stable/linked.json")]
    [InlineData("/updates/")]
    [InlineData("/updates/stable")]
    [InlineData("/updates/files/1.5.0")]
    public async Task Traversal_hidden_files_links_and_listings_are_refused(string target)
    {
        var secret = Path.Combine(_fx.Dir, "secret.txt");
        File.WriteAllText(secret, Secret);
        File.WriteAllText(Path.Combine(_fx.Feed, ".hidden"), Secret);
        File.WriteAllText(Path.Combine(_fx.Feed, "stable", ".hidden"), Secret);
        Directory.CreateSymbolicLink(Path.Combine(_fx.Feed, "link"), _fx.Dir);
        File.CreateSymbolicLink(Path.Combine(_fx.Feed, "stable", "linked.json"), secret);

        var (status, _, body) = await _relay.RawGetAsync(target.Replace("{secret}", secret.TrimStart('/'), StringComparison.Ordinal));

        status.Should().BeOneOf([400, 404], target);
        body.Should().NotContain(Secret);
        var (ok, _, manifest) = await _relay.RawGetAsync("/updates/stable/manifest.json");
        ok.Should().Be(200, "the same raw client does get feed files");
        manifest.Should().Contain("imikelgo.update.manifest");
    }
}
