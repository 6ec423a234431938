using System.Net;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using Xunit;

namespace IMikelGo.Relay.Client.Tests;

public sealed class RelayClientTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task Every_attempt_is_signed_with_a_fresh_nonce_that_verifies_with_RequestSignature()
    {
        using var w = new World();
        var failures = 1;
        w.Relay.Intercept = (_, _) => Task.FromResult(Interlocked.Decrement(ref failures) >= 0 ? new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) : null);
        var client = w.Client(w.Signer1);
        var e = w.Absent(w.D1.Replica, 0, 0);
        var bundle = EventBundles.Seal(w.D1.Id, [e], w.D1.Recipients);

        var result = await client.PushAsync(w.Account, bundle, None);
        await client.PullAsync(w.Account, 0, 10, TimeSpan.Zero, None);

        result.BundleId.Should().Be(bundle.BundleId);
        w.Relay.Attempts.Should().HaveCount(3, "a 503, its retry, then the pull");
        foreach (var seen in w.Relay.Attempts)
        {
            seen.Headers[RelayProtocol.CallerHeader].Should().Be(w.D1.Id.Value, "the caller id is the replica id");
            var ts = long.Parse(seen.Headers[RelayProtocol.TimestampHeader], System.Globalization.CultureInfo.InvariantCulture);
            ts.Should().Be(w.Time.GetUtcNow().ToUnixTimeMilliseconds(), "the timestamp comes from the TimeProvider");
            Convert.FromBase64String(seen.Headers[RelayProtocol.NonceHeader]).Should().HaveCount(16);
            RequestSignature.Verify(w.Signer1.PublicKey, seen.Method, seen.PathAndQuery, ts, seen.Headers[RelayProtocol.NonceHeader], seen.Body,
                seen.Headers[RelayProtocol.SignatureHeader]).Should().BeTrue();
        }

        w.Relay.Attempts.Select(a => a.Headers[RelayProtocol.NonceHeader]).Should().OnlyHaveUniqueItems("a retry is signed afresh, never a replay");
        w.Relay.Requests.Should().OnlyContain(r => r.Status < 300, "the fake relay verified every signature itself");
    }

    [Fact]
    public async Task A_duplicate_push_is_a_success_with_the_original_position()
    {
        using var w = new World();
        var client = w.Client(w.Signer1);
        var bundle = EventBundles.Seal(w.D1.Id, [w.Absent(w.D1.Replica, 0, 0)], w.D1.Recipients);

        var first = await client.PushAsync(w.Account, bundle, None);
        var again = await client.PushAsync(w.Account, bundle, None);

        first.Duplicate.Should().BeFalse();
        again.Should().Be(first with { Duplicate = true });
        w.Relay.Mailbox(w.Account).Should().ContainSingle();
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    [InlineData(408)]
    [InlineData(429)]
    public async Task Transient_statuses_are_retried(int status)
    {
        using var w = new World();
        var failures = 2;
        w.Relay.Intercept = (_, _) => Task.FromResult(Interlocked.Decrement(ref failures) >= 0 ? new HttpResponseMessage((HttpStatusCode)status) : null);
        var client = w.Client(w.Signer1);

        var page = await client.PullAsync(w.Account, 0, 10, TimeSpan.Zero, None);

        page.Items.Should().BeEmpty();
        w.Relay.Attempts.Should().HaveCount(3);
    }

    [Fact]
    public async Task Network_errors_are_retried()
    {
        using var w = new World();
        var failures = 1;
        w.Relay.Intercept = (_, _) => Interlocked.Decrement(ref failures) >= 0
            ? throw new HttpRequestException(HttpRequestError.ConnectionError, "connection reset")
            : Task.FromResult<HttpResponseMessage?>(null);

        await w.Client(w.Signer1).PullAsync(w.Account, 0, 10, TimeSpan.Zero, None);

        w.Relay.Attempts.Should().HaveCount(2);
    }

    [Theory]
    [InlineData(400)]
    [InlineData(401)]
    [InlineData(403)]
    [InlineData(404)]
    [InlineData(409)]
    [InlineData(413)]
    public async Task Other_4xx_are_not_retried_and_surface_as_a_typed_problem(int status)
    {
        using var w = new World();
        w.Relay.Intercept = (_, _) => Task.FromResult<HttpResponseMessage?>(FakeRelay.Problem((HttpStatusCode)status, RelayProtocol.BadInputProblemType, "the bundle is truncated"));
        var client = w.Client(w.Signer1, World.Options(maxRetries: 5));

        var act = () => client.PullAsync(w.Account, 0, 10, TimeSpan.Zero, None);

        var ex = (await act.Should().ThrowAsync<RelayException>()).Which;
        ex.Should().NotBeOfType<RelayWipeRequiredException>();
        ex.Problem.Should().Be(new RelayProblem(status, RelayProtocol.BadInputProblemType, ((HttpStatusCode)status).ToString(), "the bundle is truncated"));
        ex.IsTransient.Should().BeFalse();
        ex.Message.Should().Contain("the bundle is truncated");
        w.Relay.Attempts.Should().ContainSingle();
    }

    [Fact]
    public async Task An_error_without_a_problem_body_is_still_typed()
    {
        using var w = new World();
        w.Relay.Intercept = (_, _) => Task.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.BadGateway) { Content = new StringContent("<html>bad gateway</html>") });
        var client = w.Client(w.Signer1, World.Options(maxRetries: 1));

        var ex = (await ((Func<Task>)(() => client.AckAsync(w.Account, 3, None))).Should().ThrowAsync<RelayException>()).Which;

        ex.Problem!.Status.Should().Be(502);
        ex.Problem.Type.Should().BeNull();
        ex.Problem.Detail.Should().Contain("bad gateway");
        ex.IsTransient.Should().BeTrue();
        w.Relay.Attempts.Should().HaveCount(2);
    }

    [Fact]
    public async Task Retry_after_is_honored_on_the_time_provider()
    {
        using var w = new World();
        var first = 1;
        w.Relay.Intercept = (_, _) =>
        {
            if (Interlocked.Decrement(ref first) < 0)
            {
                return Task.FromResult<HttpResponseMessage?>(null);
            }

            var busy = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
            busy.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(7));
            return Task.FromResult<HttpResponseMessage?>(busy);
        };
        var client = w.Client(w.Signer1, World.Options(maxRetries: 3, baseDelay: TimeSpan.FromSeconds(1)));

        var pull = client.PullAsync(w.Account, 0, 10, TimeSpan.Zero, None);
        await Eventually.HoldsAsync(() => w.Relay.Attempts.Count == 1);
        await Task.Delay(100);
        w.Time.Advance(TimeSpan.FromSeconds(6.9));
        await Task.Delay(200);

        w.Relay.Attempts.Should().HaveCount(1, "Retry-After: 7 is longer than the 1 s backoff");
        pull.IsCompleted.Should().BeFalse();

        w.Time.Advance(TimeSpan.FromSeconds(0.2));
        var page = await pull.WaitAsync(TimeSpan.FromSeconds(10));

        page.Items.Should().BeEmpty();
        w.Relay.Attempts.Should().HaveCount(2);
    }

    [Fact]
    public async Task A_retry_after_beyond_the_limit_ends_the_call_and_tells_when_to_come_back()
    {
        using var w = new World();
        w.Relay.Intercept = (_, _) =>
        {
            var busy = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
            busy.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromMinutes(10));
            return Task.FromResult<HttpResponseMessage?>(busy);
        };
        var client = w.Client(w.Signer1);

        var ex = (await ((Func<Task>)(() => client.PullAsync(w.Account, 0, 10, TimeSpan.Zero, None))).Should().ThrowAsync<RelayException>()).Which;

        ex.RetryAfter.Should().Be(TimeSpan.FromMinutes(10));
        ex.IsTransient.Should().BeTrue();
        w.Relay.Attempts.Should().ContainSingle();
    }

    [Fact]
    public async Task The_wipe_problem_surfaces_as_its_own_exception_and_is_not_retried()
    {
        using var w = new World();
        w.Relay.Revoked.Add(w.D1.Id.Value);
        var client = w.Client(w.Signer1, World.Options(maxRetries: 5));

        var ex = (await ((Func<Task>)(() => client.PullAsync(w.Account, 0, 10, TimeSpan.Zero, None))).Should().ThrowAsync<RelayWipeRequiredException>()).Which;

        ex.Problem!.IsWipe.Should().BeTrue();
        ex.Problem.Type.Should().Be(RelayProtocol.WipeProblemType);
        w.Relay.Attempts.Should().ContainSingle();

        await client.WipeAckAsync(new WipeAck(w.D1.Id.Value, w.Account), None);
        w.Relay.WipeAcks.Should().ContainSingle().Which.Device.Should().Be(w.D1.Id.Value);
    }

    [Fact]
    public async Task Cancellation_ends_a_long_poll_at_once()
    {
        using var w = new World();
        w.Relay.Intercept = async (_, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return null;
        };
        var client = w.Client(w.Signer1);
        using var cts = new CancellationTokenSource();

        var pull = client.PullAsync(w.Account, 0, 10, TimeSpan.FromSeconds(30), cts.Token);
        await Eventually.HoldsAsync(() => w.Relay.Attempts.Count == 1);
        await cts.CancelAsync();

        await pull.Invoking(p => p.WaitAsync(TimeSpan.FromSeconds(10))).Should().ThrowAsync<OperationCanceledException>();
        w.Relay.Attempts.Should().ContainSingle("a cancelled call is not retried");
    }

    [Fact]
    public async Task A_page_out_of_order_is_a_protocol_error()
    {
        using var w = new World();
        w.Relay.Intercept = (_, _) => Task.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.OK)
        {
            Content = System.Net.Http.Json.JsonContent.Create(new PullPage([new MailboxItem(5, Guid.NewGuid(), "x", [1]), new MailboxItem(3, Guid.NewGuid(), "x", [1])], 5, 5),
                options: new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web)),
        });

        await ((Func<Task>)(() => w.Client(w.Signer1).PullAsync(w.Account, 0, 10, TimeSpan.Zero, None))).Should().ThrowAsync<RelayProtocolException>();
    }

    [Fact]
    public async Task School_calls_register_and_revoke_devices()
    {
        using var w = new World();
        var client = w.Client(w.Signer2);
        using var newcomer = new EcdsaRequestSigner(System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256), ownsKey: true);

        await client.RegisterDeviceAsync(w.Account, new DeviceRegistration(newcomer.CallerId, Convert.ToBase64String(newcomer.PublicKey)), None);
        using var newClient = RelayClient.Create(World.Options(), newcomer, w.Time, primaryHandler: new HttpMessageInvoker2(w.Relay));
        await newClient.PullAsync(w.Account, 0, 1, TimeSpan.Zero, None);
        await client.RevokeAsync(w.Account, new RevocationRequest(newcomer.CallerId, "lost"), None);

        await ((Func<Task>)(() => newClient.PullAsync(w.Account, 0, 1, TimeSpan.Zero, None))).Should().ThrowAsync<RelayWipeRequiredException>();
    }

    private sealed class HttpMessageInvoker2(FakeRelay relay) : HttpMessageHandler
    {
        private readonly HttpMessageInvoker _invoker = new(relay, disposeHandler: false);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            _invoker.SendAsync(request, cancellationToken);
    }
}
