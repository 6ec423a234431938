using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;
using IMikelGo.Testing;

using Xunit;

namespace IMikelGo.Relay.Tests.Http;

[Collection(RelayCollection.Name)]
/// <summary>The relay over HTTPS; runs on the in-memory store here and on SQLite and Marten in System/RelayHttpOnRealStoresTests.</summary>
public class RelayHttpTests(RelayServerFixture fixture)
{
    private RelayServer Server => fixture.Server;

    private static string NewId(string prefix) => prefix + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    [Fact]
    public async Task Health_is_ok_and_needs_no_signature()
    {
        using var http = Server.NewHttpClient();
        var response = await http.GetAsync(new Uri("/health", UriKind.Relative));
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).Should().Be("Healthy");
    }

    [Fact]
    public async Task OpenApi_document_is_served_and_lists_the_endpoints()
    {
        using var http = Server.NewHttpClient();
        var response = await http.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var text = await response.Content.ReadAsStringAsync();
        text.Should().Contain("/v1/accounts/{account}/bundles").And.Contain("/v1/accounts/{account}/devices").And.Contain("/v1/wipe-acks");
    }

    [Fact]
    public async Task Certificate_is_pinned_a_wrong_pin_fails_the_handshake()
    {
        using var http = Server.NewHttpClient(pin: new string('0', 64));
        var act = () => http.GetAsync(new Uri("/health", UriKind.Relative));
        await act.Should().ThrowAsync<HttpRequestException>();
    }

    [Fact]
    public async Task Generated_certificate_is_P256_and_its_files_are_private()
    {
        var certificate = ((RelayCertificate)Server.App.Services.GetService(typeof(RelayCertificate))!).Certificate;
        certificate.GetECDsaPublicKey()!.KeySize.Should().Be(256);
        var pfx = Path.Combine(Server.DataDirectory, RelayCertificate.FileName);
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(pfx).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.GetUnixFileMode(pfx + ".password").Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [Fact]
    public async Task Responses_use_http2()
    {
        using var http = Server.NewHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var response = await http.SendAsync(request);
        response.Version.Should().Be(HttpVersion.Version20);
    }

    [Fact]
    public async Task Real_sealed_event_bundle_round_trips()
    {
        using var scenario = SchoolScenario.Create(devices: 1);
        using var schoolKey = ECDsa.Create();
        schoolKey.ImportPkcs8PrivateKey(TestKeys.For("school").ExportPkcs8(), out _);
        using var deviceKey = ECDsa.Create();
        deviceKey.ImportPkcs8PrivateKey(TestKeys.For("d1").ExportPkcs8(), out _);
        var account = scenario.Account.Value;
        await using var server = await RelayServer.StartAsync(kind: Server.Kind, configure: o =>
        {
            o.Schools.Clear();
            o.Schools.Add(new SchoolRegistration(account, scenario.School.Id.Value, Convert.ToBase64String(schoolKey.ExportSubjectPublicKeyInfo())));
        });
        var school = new Caller(server, scenario.School.Id.Value, schoolKey, account);
        (await school.PostJsonAsync(RelayProtocol.Devices(account), new DeviceRegistration(scenario.Device(1).Id.Value, Convert.ToBase64String(deviceKey.ExportSubjectPublicKeyInfo()))))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);

        using var recipient = EncryptionKeyPair.Generate();
        var events = scenario.Recorded.Where(e => e.Event.Replica == scenario.School.Id).ToList();
        var sealedBundle = EventBundles.Seal(scenario.School.Id, events, [recipient.PublicKey]);
        var pushed = await Caller.PushResultOf(await school.PushAsync(sealedBundle.Bytes));
        pushed.Should().Be(new PushResult(1, sealedBundle.BundleId, Duplicate: false));

        var device = new Caller(server, scenario.Device(1).Id.Value, deviceKey, account);
        var page = await Caller.PageOf(await device.PullAsync(0));
        page.Items.Should().ContainSingle();
        page.Items[0].Data.Should().Equal(sealedBundle.Bytes);
        page.Items[0].Sender.Should().Be(scenario.School.Id.Value);
        page.Items[0].BundleId.Should().Be(sealedBundle.BundleId);
        page.Next.Should().Be(1);
        EventBundles.TryOpen(page.Items[0].Data, scenario.Account, recipient, null, out var opened, out var error).Should().BeTrue(error);
        opened!.Select(e => e.Event.Seq).Should().Equal(events.OrderBy(e => e.Event.Seq).Select(e => e.Event.Seq));
    }

    [Fact]
    public async Task Push_is_idempotent_by_bundle_id_a_retry_returns_the_original_position()
    {
        var device = await Server.RegisterDeviceAsync(NewId("dev"));
        var bundle = RelayServer.SealBundle(device.Id, 1);
        var first = await device.PushAsync(bundle);
        first.StatusCode.Should().Be(HttpStatusCode.Created);
        var original = await Caller.PushResultOf(first);
        var retry = await device.PushAsync(bundle);
        retry.StatusCode.Should().Be(HttpStatusCode.OK);
        (await Caller.PushResultOf(retry)).Should().Be(original with { Duplicate = true });
    }

    [Fact]
    public async Task F01_pages_of_50_over_120_bundles_next_is_the_last_returned_never_the_head()
    {
        const string account = "acct-pages";
        var device = await Server.RegisterDeviceAsync(NewId("dev"), account);
        for (ulong i = 1; i <= 120; i++)
        {
            (await device.PushAsync(RelayServer.SealBundle(device.Id, i, account))).StatusCode.Should().Be(HttpStatusCode.Created);
        }

        var reader = await Server.RegisterDeviceAsync(NewId("reader"), account);
        var page1 = await Caller.PageOf(await reader.PullAsync(0, 50));
        page1.Items.Should().HaveCount(50);
        page1.Next.Should().Be(50);
        page1.Head.Should().Be(120);
        var page2 = await Caller.PageOf(await reader.PullAsync(page1.Next, 50));
        page2.Next.Should().Be(100);
        var page3 = await Caller.PageOf(await reader.PullAsync(page2.Next, 50));
        page3.Items.Should().HaveCount(20);
        page3.Next.Should().Be(120);
        var empty = await Caller.PageOf(await reader.PullAsync(page3.Next, 50));
        empty.Items.Should().BeEmpty();
        empty.Next.Should().Be(120);
        page1.Items.Concat(page2.Items).Concat(page3.Items).Select(i => i.Position).Should().Equal(Enumerable.Range(1, 120).Select(i => (long)i));
    }

    [Fact]
    public async Task F02_a_resent_duplicate_is_a_success_the_next_new_bundle_is_accepted_and_each_is_held_once()
    {
        const string account = "acct-f02";
        var device = await Server.RegisterDeviceAsync(NewId("dev"), account);
        var head0 = await Server.Store.HeadAsync(account, default);
        var a = RelayServer.SealBundle(device.Id, 1, account);
        var b = RelayServer.SealBundle(device.Id, 2, account);
        var pa = await Caller.PushResultOf(await device.PushAsync(a));
        var again = await device.PushAsync(a);
        again.IsSuccessStatusCode.Should().BeTrue();
        (await Caller.PushResultOf(again)).Position.Should().Be(pa.Position);
        var pb = await Caller.PushResultOf(await device.PushAsync(b));
        pb.Duplicate.Should().BeFalse();
        pb.Position.Should().Be(pa.Position + 1);
        var items = await Server.Store.ReadAsync(account, head0, 100, default);
        items.Select(i => i.Data).Should().HaveCount(2);
        items.Select(i => i.BundleId).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task Long_poll_returns_as_soon_as_a_bundle_arrives()
    {
        const string account = "acct-poll";
        var device = await Server.RegisterDeviceAsync(NewId("dev"), account);
        var reader = await Server.RegisterDeviceAsync(NewId("reader"), account);
        var head = await Server.Store.HeadAsync(account, default);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var poll = reader.PullAsync(head, 10, wait: 20);
        await Task.Delay(500);
        poll.IsCompleted.Should().BeFalse();
        await device.PushAsync(RelayServer.SealBundle(device.Id, 1, account));
        var page = await Caller.PageOf(await poll);
        started.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
        page.Items.Should().ContainSingle();
        page.Next.Should().Be(head + 1);
    }

    [Fact]
    public async Task Long_poll_sees_a_bundle_written_by_another_instance_through_the_store()
    {
        const string account = "acct-poll";
        var reader = await Server.RegisterDeviceAsync(NewId("reader"), account);
        var head = await Server.Store.HeadAsync(account, default);
        var poll = reader.PullAsync(head, 10, wait: 20);
        await Task.Delay(300);
        // Appended behind this instance's back (as another relay instance sharing the store would).
        await Server.Store.AppendAsync(account, Guid.NewGuid(), "other", RelayServer.SealBundle("other", 1, account), default);
        var page = await Caller.PageOf(await poll.WaitAsync(TimeSpan.FromSeconds(10)));
        page.Items.Should().ContainSingle();
    }

    [Fact]
    public async Task Long_poll_times_out_with_an_empty_page_at_the_cursor()
    {
        const string account = "acct-poll";
        var reader = await Server.RegisterDeviceAsync(NewId("reader"), account);
        var head = await Server.Store.HeadAsync(account, default);
        var page = await Caller.PageOf(await reader.PullAsync(head, 10, wait: 1));
        page.Items.Should().BeEmpty();
        page.Next.Should().Be(head);
    }

    [Fact]
    public async Task Ack_is_accepted_up_to_the_head()
    {
        var device = await Server.RegisterDeviceAsync(NewId("dev"));
        await device.PushAsync(RelayServer.SealBundle(device.Id, 1));
        var head = await Server.Store.HeadAsync(RelayServer.Account, default);
        (await device.PostJsonAsync(RelayProtocol.Acks(RelayServer.Account), new AckRequest(head))).StatusCode.Should().Be(HttpStatusCode.NoContent);
        var beyond = await device.PostJsonAsync(RelayProtocol.Acks(RelayServer.Account), new AckRequest(head + 1000));
        beyond.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Stale_timestamp_is_401_with_reason()
    {
        var device = await Server.RegisterDeviceAsync(NewId("dev"));
        var old = DateTimeOffset.UtcNow.AddMinutes(-6).ToUnixTimeMilliseconds();
        var response = await device.Http.SendAsync(device.Build(HttpMethod.Get, RelayProtocol.Pull(RelayServer.Account, 0, 10), null, timestamp: old));
        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await Caller.ProblemOf(response)).GetProperty("reason").GetString().Should().Be("stale");
        var future = DateTimeOffset.UtcNow.AddMinutes(6).ToUnixTimeMilliseconds();
        (await device.Http.SendAsync(device.Build(HttpMethod.Get, RelayProtocol.Pull(RelayServer.Account, 0, 10), null, timestamp: future)))
            .StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Unknown_device_is_401()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var stranger = new Caller(Server, NewId("stranger"), key, RelayServer.Account);
        var response = await stranger.PullAsync(0);
        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        var problem = await Caller.ProblemOf(response);
        problem.GetProperty("type").GetString().Should().Be(RelayProtocol.UnauthenticatedProblemType);
        problem.GetProperty("reason").GetString().Should().Be("unknown-caller");
    }

    [Fact]
    public async Task Device_of_another_account_is_403_and_cannot_push_there()
    {
        var device = await Server.RegisterDeviceAsync(NewId("dev"), "acct-real");
        var head = await Server.Store.HeadAsync(RelayServer.Account, default);
        var response = await device.SendAsync(HttpMethod.Post, RelayProtocol.Bundles(RelayServer.Account), RelayServer.SealBundle(device.Id, 1), "application/octet-stream");
        response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Server.Store.HeadAsync(RelayServer.Account, default)).Should().Be(head);
    }

    [Fact]
    public async Task Only_the_school_registers_and_revokes_devices()
    {
        var device = await Server.RegisterDeviceAsync(NewId("dev"));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var other = NewId("dev");
        (await device.PostJsonAsync(RelayProtocol.Devices(RelayServer.Account), new DeviceRegistration(other, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()))))
            .StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Server.Store.GetCallerAsync(other, default)).Should().BeNull();
        (await device.PostJsonAsync(RelayProtocol.Revocations(RelayServer.Account), new RevocationRequest(null, "x")))
            .StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Server.Store.IsRevokedAsync(RelayServer.Account, device.Id, default)).Should().BeFalse();
    }

    [Fact]
    public async Task Revoked_device_is_told_to_wipe_then_acknowledges_its_wipe()
    {
        const string account = "acct-wipe";
        var device = await Server.RegisterDeviceAsync(NewId("dev"), account);
        (await Server.School(account).PostJsonAsync(RelayProtocol.Revocations(account), new RevocationRequest(device.Id, "stolen")))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);

        var pull = await device.PullAsync(0);
        pull.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Caller.ProblemOf(pull)).GetProperty("type").GetString().Should().Be(RelayProtocol.WipeProblemType);
        var head = await Server.Store.HeadAsync(account, default);
        var push = await device.PushAsync(RelayServer.SealBundle(device.Id, 1, account));
        (await Caller.ProblemOf(push)).GetProperty("type").GetString().Should().Be(RelayProtocol.WipeProblemType);
        (await Server.Store.HeadAsync(account, default)).Should().Be(head);

        var ack = await device.PostJsonAsync(RelayProtocol.WipeAcks, new WipeAck(device.Id, account));
        ack.StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await Server.Store.HasWipedAsync(account, device.Id, default)).Should().BeTrue();
    }

    [Fact]
    public async Task Deleted_device_record_still_gets_the_wipe()
    {
        const string account = "acct-wipe";
        var device = await Server.RegisterDeviceAsync(NewId("dev"), account);
        await Server.School(account).PostJsonAsync(RelayProtocol.Revocations(account), new RevocationRequest(device.Id, "lost"));
        await Server.Store.DeleteCallerAsync(device.Id, default);
        var response = await device.PullAsync(0);
        response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Caller.ProblemOf(response)).GetProperty("type").GetString().Should().Be(RelayProtocol.WipeProblemType);
    }

    [Fact]
    public async Task Whole_account_revocation_tells_every_device_to_wipe()
    {
        const string account = "acct-quota";
        await using var server = await RelayServer.StartAsync(kind: Server.Kind);
        var device = await server.RegisterDeviceAsync(NewId("dev"), account);
        (await server.School(account).PostJsonAsync(RelayProtocol.Revocations(account), new RevocationRequest(null, "contract ended")))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);
        (await Caller.ProblemOf(await device.PullAsync(0))).GetProperty("type").GetString().Should().Be(RelayProtocol.WipeProblemType);
    }

    [Fact]
    public async Task Wipe_ack_of_a_device_that_is_not_revoked_or_of_another_device_is_refused()
    {
        var device = await Server.RegisterDeviceAsync(NewId("dev"));
        (await device.PostJsonAsync(RelayProtocol.WipeAcks, new WipeAck(device.Id, RelayServer.Account))).StatusCode.Should().Be(HttpStatusCode.Conflict);
        (await device.PostJsonAsync(RelayProtocol.WipeAcks, new WipeAck("someone-else", RelayServer.Account))).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Server.Store.HasWipedAsync(RelayServer.Account, device.Id, default)).Should().BeFalse();
    }

    [Fact]
    public async Task Push_with_header_of_another_account_or_sender_is_refused_and_writes_nothing()
    {
        var device = await Server.RegisterDeviceAsync(NewId("dev"));
        var head = await Server.Store.HeadAsync(RelayServer.Account, default);
        var wrongAccount = await device.PushAsync(RelayServer.SealBundle(device.Id, 1, "acct-real"));
        wrongAccount.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await Caller.ProblemOf(wrongAccount)).GetProperty("reason").GetString().Should().Be("account-mismatch");
        var wrongSender = await device.PushAsync(RelayServer.SealBundle("somebody", 1));
        wrongSender.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await Server.Store.HeadAsync(RelayServer.Account, default)).Should().Be(head);
    }

    [Fact]
    public async Task Mailbox_quota_is_enforced_with_413()
    {
        const string account = "acct-quota";
        await using var server = await RelayServer.StartAsync(o => o.MailboxQuotaBytes = 3000, Server.Kind);
        var device = await server.RegisterDeviceAsync(NewId("dev"), account);
        (await device.PushAsync(RelayServer.SealBundle(device.Id, 1, account, 1000))).StatusCode.Should().Be(HttpStatusCode.Created);
        (await device.PushAsync(RelayServer.SealBundle(device.Id, 2, account, 1000))).StatusCode.Should().Be(HttpStatusCode.Created);
        var full = await device.PushAsync(RelayServer.SealBundle(device.Id, 3, account, 1000));
        full.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        (await Caller.ProblemOf(full)).GetProperty("type").GetString().Should().Be(RelayProtocol.QuotaProblemType);
        (await server.Store.HeadAsync(account, default)).Should().Be(2);
    }

    [Fact]
    public async Task Per_caller_rate_limit_answers_429_with_retry_after()
    {
        await using var server = await RelayServer.StartAsync(o => { o.RateLimitBurst = 3; o.RateLimitPerSecond = 1; });
        var school = server.School();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            statuses.Add((await school.PullAsync(0)).StatusCode);
        }

        statuses.Should().Contain(HttpStatusCode.TooManyRequests);
        var limited = await school.PullAsync(0);
        if (limited.StatusCode == HttpStatusCode.TooManyRequests)
        {
            limited.Headers.RetryAfter.Should().NotBeNull();
            (await Caller.ProblemOf(limited)).GetProperty("type").GetString().Should().Be(RelayProtocol.RateLimitedProblemType);
        }
    }
}
