using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using Xunit;

namespace IMikelGo.Relay.Tests.Http;

/// <summary>Every endpoint with malformed, oversized, truncated, tampered and replayed requests: a 4xx, never a 5xx, nothing written.</summary>
[Collection(RelayCollection.Name)]
public class BadInputTests(RelayServerFixture fixture)
{
    public static TheoryData<string> Endpoints => ["push", "pull", "ack", "devices", "revocations", "wipe-acks"];

    private RelayServer Server => fixture.Server;

    private sealed record Target(Caller Caller, HttpMethod Method, string Path, byte[] ValidBody, string ContentType);

    private async Task<Target> TargetFor(string endpoint)
    {
        var device = await Server.RegisterDeviceAsync("bad-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        var school = Server.School();
        static byte[] Json(string s) => Encoding.UTF8.GetBytes(s);
        return endpoint switch
        {
            "push" => new(device, HttpMethod.Post, RelayProtocol.Bundles(RelayServer.Account), RelayServer.SealBundle(device.Id, 1), "application/octet-stream"),
            "pull" => new(device, HttpMethod.Get, RelayProtocol.Pull(RelayServer.Account, 0, 10), [], "application/octet-stream"),
            "ack" => new(device, HttpMethod.Post, RelayProtocol.Acks(RelayServer.Account), Json("{\"position\":0}"), "application/json"),
            "devices" => new(school, HttpMethod.Post, RelayProtocol.Devices(RelayServer.Account),
                Json($"{{\"device\":\"probe-{Guid.NewGuid():N}\",\"signingKey\":\"{Convert.ToBase64String(ECDsa.Create(ECCurve.NamedCurves.nistP256).ExportSubjectPublicKeyInfo())}\"}}"), "application/json"),
            "revocations" => new(school, HttpMethod.Post, RelayProtocol.Revocations(RelayServer.Account), Json($"{{\"device\":\"{device.Id}\",\"reason\":\"test\"}}"), "application/json"),
            "wipe-acks" => new(device, HttpMethod.Post, RelayProtocol.WipeAcks, Json($"{{\"device\":\"{device.Id}\",\"account\":\"{RelayServer.Account}\"}}"), "application/json"),
            _ => throw new ArgumentOutOfRangeException(nameof(endpoint)),
        };
    }

    private async Task<(long Head, long Size, int Callers)> SnapshotAsync() =>
        (await Server.Store.HeadAsync(RelayServer.Account, default), await Server.Store.SizeAsync(RelayServer.Account, default), 0);

    private static async Task ShouldBeClientError(HttpResponseMessage response)
    {
        ((int)response.StatusCode).Should().BeInRange(400, 499, await response.Content.ReadAsStringAsync());
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/problem+json");
    }

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Malformed_bodies_get_4xx_and_write_nothing(string endpoint)
    {
        var target = await TargetFor(endpoint);
        if (target.Method == HttpMethod.Get)
        {
            foreach (var query in new[] { "?after=-1&limit=10", "?after=x", "?limit=0", "?limit=100000", "?wait=999", "?after=1&after=2" })
            {
                await ShouldBeClientError(await target.Caller.SendAsync(HttpMethod.Get, RelayProtocol.Bundles(RelayServer.Account) + query, null));
            }

            return;
        }

        var before = await SnapshotAsync();
        var junk = new List<byte[]>
        {
            Array.Empty<byte>(),
            RandomNumberGenerator.GetBytes(300),
            Encoding.UTF8.GetBytes("{not json"),
            Encoding.UTF8.GetBytes("[]"),
            Encoding.UTF8.GetBytes("{\"position\":\"x\",\"device\":17,\"signingKey\":\"!!\",\"account\":null}"),
            target.ValidBody[..(target.ValidBody.Length / 2)],
        };
        foreach (var body in junk)
        {
            await ShouldBeClientError(await target.Caller.SendAsync(target.Method, target.Path, body, target.ContentType));
        }

        (await SnapshotAsync()).Should().Be(before);
        (await Server.Store.IsRevokedAsync(RelayServer.Account, target.Caller.Id, default)).Should().BeFalse();
    }

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Oversized_bodies_get_413_and_write_nothing(string endpoint)
    {
        var target = await TargetFor(endpoint);
        var before = await SnapshotAsync();
        var size = endpoint == "push" ? RelayProtocol.MaxBundleBytes + 1 : RequestAuthentication.MaxJsonBytes + 1;
        var response = await target.Caller.SendAsync(target.Method == HttpMethod.Get ? HttpMethod.Get : target.Method, target.Path, new byte[size], target.ContentType);
        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        await ShouldBeClientError(response);
        (await SnapshotAsync()).Should().Be(before);
    }

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Replayed_requests_get_401_and_are_applied_once(string endpoint)
    {
        var target = await TargetFor(endpoint);
        var first = target.Caller.Build(target.Method, target.Path, target.Method == HttpMethod.Get ? null : target.ValidBody, target.ContentType);
        var replay = Clone(first, target.Method == HttpMethod.Get ? null : target.ValidBody, target.ContentType);
        var ok = await target.Caller.Http.SendAsync(first);
        var after = await SnapshotAsync();
        if (endpoint != "wipe-acks")
        {
            ok.IsSuccessStatusCode.Should().BeTrue(await ok.Content.ReadAsStringAsync());
        }

        var again = await target.Caller.Http.SendAsync(replay);
        again.StatusCode.Should().BeOneOf(HttpStatusCode.Unauthorized, HttpStatusCode.Forbidden);
        if (again.StatusCode == HttpStatusCode.Unauthorized)
        {
            (await Caller.ProblemOf(again)).GetProperty("reason").GetString().Should().Be("replayed");
        }

        (await SnapshotAsync()).Should().Be(after);
    }

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Tampered_requests_get_401_and_write_nothing(string endpoint)
    {
        var target = await TargetFor(endpoint);
        var before = await SnapshotAsync();
        var body = target.Method == HttpMethod.Get ? null : target.ValidBody;
        // Signed for another body, another path, and with a garbage signature.
        var requests = new[]
        {
            target.Caller.Build(target.Method, target.Path, body, target.ContentType, signedBody: Encoding.UTF8.GetBytes("other")),
            target.Caller.Build(target.Method, target.Path, body, target.ContentType, signedPath: target.Path + "x"),
            target.Caller.Build(target.Method, target.Path, body, target.ContentType, signature: "not base64!"),
            target.Caller.Build(target.Method, target.Path, body, target.ContentType, nonce: "short"),
            target.Caller.Build(target.Method, target.Path, body, target.ContentType, timestamp: -5),
        };
        foreach (var request in requests)
        {
            var response = await target.Caller.Http.SendAsync(request);
            response.StatusCode.Should().Be(HttpStatusCode.Unauthorized, await response.Content.ReadAsStringAsync());
        }

        var unsigned = new HttpRequestMessage(target.Method, target.Path);
        (await target.Caller.Http.SendAsync(unsigned)).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await SnapshotAsync()).Should().Be(before);
        (await Server.Store.IsRevokedAsync(RelayServer.Account, target.Caller.Id, default)).Should().BeFalse();
    }

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Truncated_bodies_write_nothing_and_the_relay_stays_up(string endpoint)
    {
        var target = await TargetFor(endpoint);
        var before = await SnapshotAsync();
        var body = target.ValidBody.Length > 0 ? target.ValidBody : Encoding.UTF8.GetBytes("{}");
        var request = target.Caller.Build(target.Method, target.Path, body, target.ContentType);
        var head = new StringBuilder();
        head.Append(CultureInfo($"{target.Method.Method} {target.Path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
        foreach (var h in request.Headers)
        {
            head.Append(CultureInfo($"{h.Key}: {string.Join(",", h.Value)}\r\n"));
        }

        head.Append(CultureInfo($"Content-Type: {target.ContentType}\r\nContent-Length: {body.Length}\r\n\r\n"));
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(Server.BaseAddress.Host, Server.BaseAddress.Port);
            await using var tls = new SslStream(tcp.GetStream(), false, (_, c, _, _) => c is not null && RelayCertificate.FingerprintOf(c) == Server.Fingerprint);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", ApplicationProtocols = [SslApplicationProtocol.Http11] });
            await tls.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()));
            await tls.WriteAsync(body.AsMemory(0, body.Length / 2));
            await tls.FlushAsync();
        }

        await Task.Delay(300);
        (await SnapshotAsync()).Should().Be(before);
        (await Server.Store.IsRevokedAsync(RelayServer.Account, target.Caller.Id, default)).Should().BeFalse();
        using var http = Server.NewHttpClient();
        (await http.GetAsync(new Uri("/health", UriKind.Relative))).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Unknown_routes_and_methods_are_4xx_problems()
    {
        var device = await Server.RegisterDeviceAsync("bad-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        var notFound = await device.SendAsync(HttpMethod.Get, "/v1/nothing-here", null);
        ((int)notFound.StatusCode).Should().BeInRange(400, 499);
        var wrongMethod = await device.SendAsync(HttpMethod.Delete, RelayProtocol.Bundles(RelayServer.Account), null);
        ((int)wrongMethod.StatusCode).Should().BeInRange(400, 499);
    }

    private static string CultureInfo(FormattableString s) => s.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static HttpRequestMessage Clone(HttpRequestMessage original, byte[]? body, string contentType)
    {
        var copy = new HttpRequestMessage(original.Method, original.RequestUri) { Version = original.Version };
        foreach (var h in original.Headers)
        {
            copy.Headers.TryAddWithoutValidation(h.Key, h.Value);
        }

        if (body is not null)
        {
            copy.Content = new ByteArrayContent(body);
            copy.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        return copy;
    }
}
