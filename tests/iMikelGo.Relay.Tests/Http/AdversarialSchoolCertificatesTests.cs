using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;
using Xunit;

namespace IMikelGo.Relay.Tests.Http;

/// <summary>
/// Attacks on <c>POST|GET /v1/schools/{school}/certificates</c> (docs/relay.md, "School certificates"): replayed,
/// oversized, foreign and malformed publications are refused with a 4xx problem and store nothing; odd school ids on the
/// anonymous fetch never reach another mailbox nor fail with a 5xx.
/// </summary>
[Collection(RelayCollection.Name)]
public sealed class AdversarialSchoolCertificatesTests(RelayServerFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private RelayServer Server => fixture.Server;

    [Fact]
    public async Task A_replayed_publication_is_refused_as_a_replay()
    {
        var school = Server.School("acct-real");
        using var root = SchoolRoot.Create(school.Id);
        var body = Body(root, out var enrollment);
        using (enrollment)
        {
            var ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            var route = SchoolCertificates.Route(school.Id);
            using var first = await school.Http.SendAsync(school.Build(HttpMethod.Post, route, body, "application/json", ts, nonce));
            first.StatusCode.Should().Be(HttpStatusCode.NoContent);

            using var replay = await school.Http.SendAsync(school.Build(HttpMethod.Post, route, body, "application/json", ts, nonce));
            replay.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
            (await Caller.ProblemOf(replay)).GetProperty("reason").GetString().Should().Be("replayed");
        }
    }

    [Fact]
    public async Task Oversized_bodies_and_certificates_are_refused_and_store_nothing()
    {
        var school = Server.School("acct-pages");
        var mailbox = SchoolCertificates.Mailbox(school.Id);
        var before = await Server.Store.HeadAsync(mailbox, None);
        var route = SchoolCertificates.Route(school.Id);

        var huge = Encoding.UTF8.GetBytes($"{{\"root\":\"{new string('A', 80 * 1024)}\",\"enrollment\":\"AAAA\"}}");
        using var tooLarge = await school.SendAsync(HttpMethod.Post, route, huge, "application/json");
        tooLarge.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);

        var bigDer = Convert.ToBase64String(new byte[SchoolCertificates.MaxCertificateBytes + 1]);
        using var bigCertificate = await school.SendAsync(HttpMethod.Post, route,
            Encoding.UTF8.GetBytes($"{{\"root\":\"{bigDer}\",\"enrollment\":\"{bigDer}\"}}"), "application/json");
        bigCertificate.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await Caller.ProblemOf(bigCertificate)).GetProperty("detail").GetString().Should().Contain(SchoolCertificates.MaxCertificateBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));

        (await Server.Store.HeadAsync(mailbox, None)).Should().Be(before);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("{\"root\":1,\"enrollment\":2}")]
    [InlineData("{\"root\":null,\"enrollment\":null}")]
    [InlineData("{\"root\":\"not base64!\",\"enrollment\":\"AAAA\"}")]
    [InlineData("{\"root\":\"\",\"enrollment\":\"\"}")]
    [InlineData("{\"root\":\"MAMCAQE=\",\"enrollment\":\"MAMCAQE=\"}")]
    [InlineData("{\"root\":\"AAAA\"")]
    [InlineData("\"root\"")]
    public async Task Malformed_publications_get_a_400_problem_and_store_nothing(string json)
    {
        var school = Server.School("acct-f02");
        var mailbox = SchoolCertificates.Mailbox(school.Id);
        var before = await Server.Store.HeadAsync(mailbox, None);

        using var response = await school.SendAsync(HttpMethod.Post, SchoolCertificates.Route(school.Id), Encoding.UTF8.GetBytes(json), "application/json");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, json);
        (await Caller.ProblemOf(response)).GetProperty("reason").GetString().Should().Be("malformed-certificates");
        (await Server.Store.HeadAsync(mailbox, None)).Should().Be(before);
    }

    [Fact]
    public async Task Another_school_s_certificates_an_expired_enrollment_certificate_or_the_root_twice_are_refused()
    {
        var school = Server.School("acct-poll");
        var mailbox = SchoolCertificates.Mailbox(school.Id);
        var before = await Server.Store.HeadAsync(mailbox, None);
        var route = SchoolCertificates.Route(school.Id);

        // A valid pair, but of another school: the enrollment certificate names that school, not this caller's.
        using var foreign = SchoolRoot.Create("some-other-school");
        var foreignBody = Body(foreign, out var foreignEnrollment);
        foreignEnrollment.Dispose();
        using var other = await school.SendAsync(HttpMethod.Post, route, foreignBody, "application/json");
        other.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await Caller.ProblemOf(other)).GetProperty("reason").GetString().Should().Be("certificates-mismatch");

        // This school's root, but an enrollment certificate that expired.
        using var own = SchoolRoot.Create(school.Id);
        using var key = EncryptionKeyPair.Generate();
        using var expired = own.IssueEnrollmentCertificate(key.PublicKey, DateTimeOffset.UtcNow.AddDays(-60), TimeSpan.FromDays(30));
        using var stale = await school.SendAsync(HttpMethod.Post, route, Json(own.Certificate.RawData, expired.RawData), "application/json");
        stale.StatusCode.Should().Be(HttpStatusCode.BadRequest);

        // The root sent as both (no enrollment key in it), and the enrollment certificate posing as its own root.
        using var fresh = own.IssueEnrollmentCertificate(key.PublicKey, DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        using var rootTwice = await school.SendAsync(HttpMethod.Post, route, Json(own.Certificate.RawData, own.Certificate.RawData), "application/json");
        rootTwice.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        using var selfRooted = await school.SendAsync(HttpMethod.Post, route, Json(fresh.RawData, fresh.RawData), "application/json");
        selfRooted.StatusCode.Should().Be(HttpStatusCode.BadRequest, "the enrollment certificate is not a root");

        (await Server.Store.HeadAsync(mailbox, None)).Should().Be(before);
    }

    [Fact]
    public async Task A_device_of_the_account_and_another_school_cannot_publish_for_a_school()
    {
        var school = Server.School("acct-quota");
        var route = SchoolCertificates.Route(school.Id);
        using var root = SchoolRoot.Create(school.Id);
        var body = Body(root, out var enrollment);
        enrollment.Dispose();

        var device = await Server.RegisterDeviceAsync("adv-cert-device", "acct-quota");
        using var byDevice = await device.SendAsync(HttpMethod.Post, route, body, "application/json");
        byDevice.StatusCode.Should().Be(HttpStatusCode.Forbidden);

        var otherSchool = Server.School("acct-wipe");
        using var byOtherSchool = await otherSchool.SendAsync(HttpMethod.Post, route, body, "application/json");
        byOtherSchool.StatusCode.Should().Be(HttpStatusCode.Forbidden);

        // Signed for another path (the caller's own school route) but sent here: the signature covers the target.
        using var retargeted = await otherSchool.Http.SendAsync(otherSchool.Build(HttpMethod.Post, route, body, "application/json",
            signedPath: SchoolCertificates.Route(otherSchool.Id)));
        retargeted.StatusCode.Should().Be(HttpStatusCode.Unauthorized);

        (await Server.Store.HeadAsync(SchoolCertificates.Mailbox(school.Id), None)).Should().Be(0);
    }

    [Theory]
    [InlineData("/v1/schools/../certificates")]
    [InlineData("/v1/schools/%2e%2e/certificates")]
    [InlineData("/v1/schools/a%2Fb/certificates")]
    [InlineData("/v1/schools/%7Eschool-certificates%7Eschool-acct-1/certificates")]
    [InlineData("/v1/schools/school-acct-1%00/certificates")]
    [InlineData("/v1/schools/SCHOOL-ACCT-1/certificates")]
    [InlineData("/v1/schools/%C3%A4/certificates")]
    [InlineData("/v1/schools/acct-1/certificates")]
    public async Task Odd_school_ids_on_the_anonymous_fetch_are_a_4xx_and_never_another_mailbox(string target)
    {
        var school = Server.School(RelayServer.Account);
        using var root = SchoolRoot.Create(school.Id);
        var body = Body(root, out var enrollment);
        enrollment.Dispose();
        using (var published = await school.SendAsync(HttpMethod.Post, SchoolCertificates.Route(school.Id), body, "application/json"))
        {
            published.StatusCode.Should().Be(HttpStatusCode.NoContent);
        }

        var (status, _, text) = await RawGetAsync(target);

        status.Should().BeInRange(400, 499, target);
        text.Should().NotContain(Convert.ToBase64String(root.Certificate.RawData)[..40]);
    }

    [Fact]
    public async Task The_anonymous_fetch_refuses_a_body_and_a_very_long_school_id()
    {
        using var http = Server.NewHttpClient();
        using var withBody = new HttpRequestMessage(HttpMethod.Get, SchoolCertificates.Route(RelayServer.SchoolId)) { Content = new ByteArrayContent(new byte[1024]) };
        using var refused = await http.SendAsync(withBody);
        refused.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);

        using var longId = await http.GetAsync(SchoolCertificates.Route(new string('a', 4000)));
        ((int)longId.StatusCode).Should().BeInRange(400, 499);
    }

    private static byte[] Body(SchoolRoot root, out System.Security.Cryptography.X509Certificates.X509Certificate2 enrollment)
    {
        using var key = EncryptionKeyPair.Generate();
        enrollment = root.IssueEnrollmentCertificate(key.PublicKey, DateTimeOffset.UtcNow, TimeSpan.FromDays(30));
        return Json(root.Certificate.RawData, enrollment.RawData);
    }

    private static byte[] Json(byte[] root, byte[] enrollment) => JsonSerializer.SerializeToUtf8Bytes(new { root, enrollment });

    private Task<(int Status, string Headers, string Body)> RawGetAsync(string target) => RawHttp.GetAsync(Server.BaseAddress, Server.Fingerprint, target);

    /// <summary>One HTTP/1.1 GET over pinned TLS with the target sent exactly as written (HttpClient would normalize dot segments).</summary>
    private static class RawHttp
    {
        public static async Task<(int Status, string Headers, string Body)> GetAsync(Uri server, string fingerprint, string target)
        {
            using var tcp = new System.Net.Sockets.TcpClient();
            await tcp.ConnectAsync(server.Host, server.Port);
            await using var tls = new System.Net.Security.SslStream(tcp.GetStream(), false,
                (_, certificate, _, _) => certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), fingerprint, StringComparison.OrdinalIgnoreCase));
            await tls.AuthenticateAsClientAsync(server.Host);
            await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: {server.Authority}\r\nConnection: close\r\n\r\n"));
            using var reader = new StreamReader(tls, Encoding.UTF8);
            var all = await reader.ReadToEndAsync();
            var split = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var status = int.Parse(all.AsSpan(9, 3), provider: System.Globalization.CultureInfo.InvariantCulture);
            return (status, all[..split], all[(split + 4)..]);
        }
    }
}
