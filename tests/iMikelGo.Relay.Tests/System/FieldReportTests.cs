using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Text.Json;
using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay.Client;
using IMikelGo.Relay.Tests.Http;
using IMikelGo.Sealing;
using IMikelGo.Testing;
using Xunit;

namespace IMikelGo.Relay.Tests.SystemTests;

/// <summary>F04 and F05 (../shared/cases/field-reports.md) end to end against the real relay.</summary>
public sealed class FieldReportTests
{
    /// <summary>
    /// F04: the device has 3 queued events and the relay is down (its child process stopped) for 20 s. Nobody
    /// touches the device; the RetryingPusher keeps trying on its own schedule, and after the restart the events
    /// arrive once and the outbox is empty.
    /// </summary>
    [Fact]
    public async Task F04_a_failed_push_is_retried_on_its_own_until_the_relay_is_back()
    {
        using var scenario = SchoolScenario.Create(devices: 1);
        var account = scenario.Account.Value;
        using var schoolKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var relay = await RelayProcess.StartAsync(new Dictionary<string, ECDsa> { [account] = schoolKey });
        using var signer = Signer("d1");
        var school = relay.Caller("school-" + account, schoolKey, account);
        (await school.PostJsonAsync(RelayProtocol.Devices(account), new DeviceRegistration(signer.CallerId, Convert.ToBase64String(signer.PublicKey))))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);

        using var deviceKeys = EncryptionKeyPair.Generate();
        using var schoolEnc = EncryptionKeyPair.Generate();
        var replica = new TestReplica(scenario.Device(1), deviceKeys, [schoolEnc.PublicKey]);
        scenario.Record(scenario.Device(1), [new LessonCancelled(scenario.Lesson(1), CancellationReason.TeacherIll, MakeUpOwed: true, Note: null)]);
        scenario.Record(scenario.Device(1), [new StudentAbsent(scenario.Lesson(2), scenario.Students[0], false, null)]);
        scenario.Record(scenario.Device(1), [new LessonCancelled(scenario.Lesson(3), CancellationReason.TeacherIll, MakeUpOwed: false, Note: null)]);
        (await replica.PendingAsync(CancellationToken.None)).Should().HaveCount(3);

        await relay.KillAsync();
        using var client = RelayClient.Create(
            new RelayClientOptions { BaseAddress = relay.BaseAddress, PinnedCertificateSha256 = relay.Fingerprint, MaxRetries = 0, ConnectTimeout = TimeSpan.FromSeconds(2) },
            signer);
        using var agent = new SyncAgent(client, replica);
        await using var pusher = new RetryingPusher(agent, options: new RetryingPusherOptions { InitialRetryDelay = TimeSpan.FromSeconds(1), MaxRetryDelay = TimeSpan.FromSeconds(4) });
        pusher.Start();
        await Task.Delay(TimeSpan.FromSeconds(20));
        pusher.Rounds.Should().BeGreaterThanOrEqualTo(3, "the pusher retries on its own schedule while the relay is down");
        pusher.ConsecutiveFailures.Should().BeGreaterThan(0);
        (await replica.PendingAsync(CancellationToken.None)).Should().HaveCount(3);

        await relay.StartAsync();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await replica.PendingAsync(CancellationToken.None)).Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        (await replica.PendingAsync(CancellationToken.None)).Should().BeEmpty("the outbox empties with no new local event and no restart of the device");
        (await replica.GetOutgoingAsync(CancellationToken.None)).Should().BeNull();
        await pusher.StopAsync();

        // The school's view: the 3 events, each exactly once.
        var page = await Caller.PageOf(await school.PullAsync(0));
        var received = new List<SignedEvent>();
        foreach (var item in page.Items)
        {
            EventBundles.TryOpen(item.Data, scenario.Account, schoolEnc, null, out var events, out var error).Should().BeTrue(error);
            received.AddRange(events!);
        }

        received.Select(e => e.Event.Hash.Hex).Should().OnlyHaveUniqueItems().And.HaveCount(3);
        page.Items.Select(i => i.BundleId).Should().OnlyHaveUniqueItems();
    }

    /// <summary>
    /// F05: the relay stores the bundle but its response is lost (a handler drops it after the server wrote it).
    /// The client retries plainly (its resilience pipeline), then again after refreshing its view of the mailbox:
    /// the mailbox holds the bundle once and both retries report the original position.
    /// </summary>
    [Theory]
    [InlineData(RelayStoreKind.Embedded)]
    [InlineData(RelayStoreKind.Postgres)]
    public async Task F05_a_lost_push_response_retried_twice_stores_the_bundle_once_at_its_original_position(RelayStoreKind kind)
    {
        await using var server = await RelayServer.StartAsync(kind: kind);
        var device = await server.RegisterDeviceAsync("dev-f05-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        await Caller.PushResultOf(await device.PushAsync(RelayServer.SealBundle(device.Id, 1)));
        var dropper = new DropFirstPushResponse(server.Fingerprint);
        using var signer = new EcdsaRequestSigner(device.Key, callerId: device.Id);
        using var client = RelayClient.Create(
            new RelayClientOptions { BaseAddress = server.BaseAddress, PinnedCertificateSha256 = server.Fingerprint, MaxRetries = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(50) },
            signer, primaryHandler: dropper);

        var e5 = RelayServer.SealBundle(device.Id, 5);
        var retried = await client.PushAsync(RelayServer.Account, e5, CancellationToken.None);
        dropper.Dropped.Should().NotBeNull("the first response was written by the relay and lost on the way");
        var original = dropper.Dropped!;
        original.Duplicate.Should().BeFalse();
        retried.Should().Be(original with { Duplicate = true }, "the plain retry reports the original position");

        // Refresh the view of the mailbox (its head), then retry again.
        var head = (await client.PullAsync(RelayServer.Account, original.Position - 1, 10, TimeSpan.Zero, CancellationToken.None)).Head;
        head.Should().BeGreaterThanOrEqualTo(original.Position);
        (await client.PushAsync(RelayServer.Account, e5, CancellationToken.None)).Should().Be(original with { Duplicate = true });

        var stored = await server.Store.ReadAsync(RelayServer.Account, 0, 500, CancellationToken.None);
        stored.Where(b => b.BundleId == original.BundleId).Should().ContainSingle().Which.Position.Should().Be(original.Position);
        (await server.Store.HeadAsync(RelayServer.Account, CancellationToken.None)).Should().Be(original.Position);
    }

    private static EcdsaRequestSigner Signer(string name)
    {
        using var key = TestKeys.For(name, 0);
        var pkcs8 = key.ExportPkcs8();
        try
        {
            return EcdsaRequestSigner.FromPkcs8(pkcs8);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    /// <summary>The pinned transport, except that the first push's response is read and then lost (as on a timeout).</summary>
    private sealed class DropFirstPushResponse : DelegatingHandler
    {
        private int _pushes;

        public DropFirstPushResponse(string fingerprint)
            : base(new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                        certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), fingerprint, StringComparison.OrdinalIgnoreCase),
                },
            })
        {
        }

        public PushResult? Dropped { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (request.Method == HttpMethod.Post && request.RequestUri!.AbsolutePath.EndsWith("/bundles", StringComparison.Ordinal) && Interlocked.Increment(ref _pushes) == 1)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken);
                response.Dispose();
                Dropped = JsonSerializer.Deserialize<PushResult>(text, new JsonSerializerOptions(JsonSerializerDefaults.Web));
                throw new HttpRequestException("the response was lost on the way back");
            }

            return response;
        }
    }

    /// <summary>An in-memory device: its ledger, outbox marks, cursor and unconfirmed bundle.</summary>
    private sealed class TestReplica(Replica replica, EncryptionKeyPair keys, IReadOnlyCollection<RecipientPublicKey> recipients) : ISyncReplica
    {
        private readonly HashSet<string> _acked = [];
        private long _cursor;
        private OutgoingBundle? _outgoing;

        public AccountId Account => replica.Account;

        public ReplicaId Id => replica.Id;

        public IRecipientKeys DecryptionKeys => keys;

        public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken) => Task.FromResult(recipients);

        public Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken)
        {
            lock (_acked)
            {
                return Task.FromResult<IReadOnlyList<SignedEvent>>([.. replica.Ledger.Export(Account).Where(e => e.Event.Replica == Id && !_acked.Contains(e.Event.Hash.Hex))]);
            }
        }

        public Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken) => Task.FromResult(replica.Receive(events));

        public Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
        {
            lock (_acked)
            {
                _acked.UnionWith(events.Select(e => e.Event.Hash.Hex));
            }

            return Task.CompletedTask;
        }

        public Task<long> GetCursorAsync(CancellationToken cancellationToken) => Task.FromResult(Volatile.Read(ref _cursor));

        public Task SetCursorAsync(long position, CancellationToken cancellationToken)
        {
            Volatile.Write(ref _cursor, position);
            return Task.CompletedTask;
        }

        public Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken) => Task.FromResult(Volatile.Read(ref _outgoing));

        public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken)
        {
            Volatile.Write(ref _outgoing, bundle);
            return Task.CompletedTask;
        }
    }
}
