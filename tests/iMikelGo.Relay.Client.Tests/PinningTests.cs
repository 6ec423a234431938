using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace IMikelGo.Relay.Client.Tests;

public sealed class PinningTests
{
    private static X509Certificate2 SelfSigned(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    [Fact]
    public void The_callback_accepts_exactly_the_pinned_certificate_whatever_its_CA_trust()
    {
        using var pinned = SelfSigned("relay");
        using var other = SelfSigned("relay");
        var pin = new CertificatePin(string.Join(":", Convert.ToHexString(SHA256.HashData(pinned.RawData)).Chunk(2).Select(c => new string(c))));

        pin.Validate(null, pinned, null, SslPolicyErrors.RemoteCertificateChainErrors | SslPolicyErrors.RemoteCertificateNameMismatch).Should().BeTrue();
        pin.Validate(null, other, null, SslPolicyErrors.None).Should().BeFalse("a CA-trusted certificate that is not the pinned one is refused");
        pin.LastRefused.Should().Be(CertificatePin.FingerprintOf(other));
        pin.Validate(null, null, null, SslPolicyErrors.RemoteCertificateNotAvailable).Should().BeFalse();
    }

    [Fact]
    public void Bad_pins_and_plain_http_are_refused_at_configuration()
    {
        ((Action)(() => _ = new CertificatePin("abc"))).Should().Throw<FormatException>();
        ((Action)(() => new RelayClientOptions { BaseAddress = new Uri("http://relay/"), PinnedCertificateSha256 = World.Pin }.Validate())).Should().Throw<InvalidOperationException>();
        ((Action)(() => new RelayClientOptions { BaseAddress = new Uri("https://relay/") }.Validate())).Should().Throw<InvalidOperationException>().WithMessage("*PinnedCertificateSha256*");
    }

    [Fact]
    public async Task Over_real_TLS_a_wrong_certificate_is_refused_with_a_clear_error_and_the_pinned_one_accepted()
    {
        using var serverCert = SelfSigned("127.0.0.1");
        using var w = new World();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var connections = 0;
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var tcp = await listener.AcceptTcpClientAsync(stop.Token);
                Interlocked.Increment(ref connections);
                try
                {
                    await using var tls = new SslStream(tcp.GetStream());
                    await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = serverCert }, stop.Token);
                    var buffer = new byte[8192];
                    var read = 0;
                    while (!Encoding.ASCII.GetString(buffer, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var n = await tls.ReadAsync(buffer.AsMemory(read), stop.Token);
                        if (n == 0)
                        {
                            throw new IOException("the client closed the connection");
                        }

                        read += n;
                    }

                    var body = "{\"items\":[],\"next\":0,\"head\":0}";
                    await tls.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}"), stop.Token);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // The client refused our certificate.
                }
            }
        });

        var options = World.Options(maxRetries: 3);
        options.BaseAddress = new Uri($"https://127.0.0.1:{port}/");
        var wrongPin = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes("another certificate")));
        options.PinnedCertificateSha256 = wrongPin;
        using (var refused = RelayClient.Create(options, w.Signer1, TimeProvider.System))
        {
            var ex = (await ((Func<Task>)(() => refused.PullAsync(w.Account, 0, 10, TimeSpan.Zero, CancellationToken.None))).Should().ThrowAsync<RelayCertificatePinningException>()).Which;
            ex.Message.Should().Contain(CertificatePin.FingerprintOf(serverCert)).And.Contain(wrongPin).And.Contain("not the pinned certificate");
            connections.Should().Be(1, "a pinning refusal is never retried");
        }

        options.PinnedCertificateSha256 = CertificatePin.FingerprintOf(serverCert);
        using (var accepted = RelayClient.Create(options, w.Signer1, TimeProvider.System))
        {
            var page = await accepted.PullAsync(w.Account, 0, 10, TimeSpan.Zero, CancellationToken.None);
            page.Items.Should().BeEmpty("a self-signed but pinned certificate is accepted");
        }

        await stop.CancelAsync();
        listener.Stop();
        await server.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact]
    public async Task AddIMikelGoRelayClient_registers_a_signing_retrying_typed_client()
    {
        using var w = new World();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(w.Time);
        services.AddSingleton<IRelayRequestSigner>(w.Signer1);
        var failures = 1;
        w.Relay.Intercept = (_, _) => Task.FromResult(Interlocked.Decrement(ref failures) >= 0 ? new HttpResponseMessage(HttpStatusCode.BadGateway) : null);
        services.AddIMikelGoRelayClient(o =>
        {
            o.BaseAddress = new Uri("https://relay.test/");
            o.PinnedCertificateSha256 = World.Pin;
            o.RetryBaseDelay = TimeSpan.Zero;
        }).ConfigurePrimaryHttpMessageHandler(() => new Shared(w.Relay));
        using var provider = services.BuildServiceProvider();

        var client = provider.GetRequiredService<IRelayClient>();
        await client.AckAsync(w.Account, 0, CancellationToken.None);

        w.Relay.Attempts.Should().HaveCount(2, "a 502 was retried");
        w.Relay.Requests.Should().ContainSingle().Which.Status.Should().Be(204, "the fake relay verified the signature");
        provider.GetRequiredService<CertificatePin>().Fingerprint.Should().Be(World.Pin);
    }

    [Fact]
    public void AddIMikelGoRelayClient_without_a_pin_fails_when_resolved()
    {
        var services = new ServiceCollection();
        services.AddIMikelGoRelayClient(o => o.BaseAddress = new Uri("https://relay.test/"));
        using var provider = services.BuildServiceProvider();

        ((Action)(() => provider.GetRequiredService<IRelayClient>())).Should().Throw<InvalidOperationException>().WithMessage("*PinnedCertificateSha256*");
    }

    private sealed class Shared(FakeRelay relay) : HttpMessageHandler
    {
        private readonly HttpMessageInvoker _invoker = new(relay, disposeHandler: false);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            _invoker.SendAsync(request, cancellationToken);
    }
}
