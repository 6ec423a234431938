using IMikelGo.Engine.Sync;
using System.Security.Cryptography;
using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Relay.Tests.Http;
using IMikelGo.Sealing;
using IMikelGo.Testing;
using Xunit;

namespace IMikelGo.Relay.Tests.Client;

/// <summary>The relay client (RelayClient + SyncAgent) against the real relay on Kestrel over HTTPS with its pinned certificate.</summary>
public sealed class RelayClientEndToEndTests
{
    [Fact]
    public async Task Devices_sync_through_the_real_relay_with_pinning_signing_and_a_duplicate_resend()
    {
        using var scenario = SchoolScenario.Create(devices: 2);
        var account = scenario.Account.Value;
        using var schoolKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var server = await RelayServer.StartAsync(o =>
            o.Schools.Add(new SchoolRegistration(account, "school-" + account, Convert.ToBase64String(schoolKey.ExportSubjectPublicKeyInfo()))));
        var options = new RelayClientOptions { BaseAddress = server.BaseAddress, PinnedCertificateSha256 = server.Fingerprint, RetryBaseDelay = TimeSpan.FromMilliseconds(50) };

        using var schoolSigner = new EcdsaRequestSigner(schoolKey, callerId: "school-" + account);
        using var school = RelayClient.Create(options, schoolSigner);
        using var k1 = EncryptionKeyPair.Generate();
        using var k2 = EncryptionKeyPair.Generate();
        using var schoolEnc = EncryptionKeyPair.Generate();
        var d1 = new Replica1(scenario.Device(1), k1, [schoolEnc.PublicKey, k2.PublicKey]);
        var d2 = new Replica1(scenario.Device(2), k2, [schoolEnc.PublicKey, k1.PublicKey]);
        using var s1 = Signer("d1");
        using var s2 = Signer("d2");
        await school.RegisterDeviceAsync(account, new DeviceRegistration(s1.CallerId, Convert.ToBase64String(s1.PublicKey)), CancellationToken.None);
        await school.RegisterDeviceAsync(account, new DeviceRegistration(s2.CallerId, Convert.ToBase64String(s2.PublicKey)), CancellationToken.None);
        using var c1 = RelayClient.Create(options, s1);
        using var c2 = RelayClient.Create(options, s2);
        using var a1 = new SyncAgent(c1, d1);
        using var a2 = new SyncAgent(c2, d2);

        var l1 = scenario.Lesson(2);
        scenario.Record(scenario.Device(2), [new LessonCancelled(l1, CancellationReason.TeacherIll, MakeUpOwed: true, Note: null)]);
        scenario.Record(scenario.Device(2), [new StudentAbsent(scenario.Lesson(3), scenario.Students[0], false, null)]);
        (await a2.SyncAsync(null, CancellationToken.None)).EventsSent.Should().Be(2);

        // A resend of the same bundle (crash before the local mark) is a duplicate success.
        var bundle = IMikelGo.Engine.Sync.EventBundles.Seal(scenario.Device(2).Id, [scenario.Device(2).Ledger.Find(scenario.Account, scenario.Device(2).Id, 1)!], d2.Recipients);
        var first = await c2.PushAsync(account, bundle, CancellationToken.None);
        (await c2.PushAsync(account, bundle, CancellationToken.None)).Should().Be(first with { Duplicate = true });

        var summary = await a1.SyncAsync(null, CancellationToken.None);

        summary.EventsReceived.Should().Be(2);
        summary.RefusedBundles.Should().BeEmpty();
        summary.Cursor.Should().Be(first.Position);
        scenario.Device(1).Calendar.Digest().Should().Be(scenario.Device(2).Calendar.Digest());

        await school.RevokeAsync(account, new RevocationRequest(s1.CallerId, "lost tablet"), CancellationToken.None);
        await ((Func<Task>)(() => a1.SyncAsync(null, CancellationToken.None))).Should().ThrowAsync<RelayWipeRequiredException>();
        await c1.WipeAckAsync(new WipeAck(s1.CallerId, account), CancellationToken.None);
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

    private sealed class Replica1(Replica replica, EncryptionKeyPair keys, IReadOnlyCollection<RecipientPublicKey> recipients) : ISyncReplica
    {
        private readonly HashSet<string> _acked = [];
        private long _cursor;
        private OutgoingBundle? _outgoing;

        public IReadOnlyCollection<RecipientPublicKey> Recipients => recipients;

        public AccountId Account => replica.Account;

        public ReplicaId Id => replica.Id;

        public IRecipientKeys DecryptionKeys => keys;

        public Task<IReadOnlyCollection<RecipientPublicKey>> GetRecipientsAsync(CancellationToken cancellationToken) => Task.FromResult(recipients);

        public Task<IReadOnlyList<SignedEvent>> PendingAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<SignedEvent>>([.. replica.Ledger.Export(Account).Where(e => e.Event.Replica == Id && !_acked.Contains(e.Event.Hash.Hex))]);

        public Task<IngestReport> ReceiveAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken) => Task.FromResult(replica.Receive(events));

        public Task AcknowledgeAsync(IEnumerable<SignedEvent> events, CancellationToken cancellationToken)
        {
            _acked.UnionWith(events.Select(e => e.Event.Hash.Hex));
            return Task.CompletedTask;
        }

        public Task<long> GetCursorAsync(CancellationToken cancellationToken) => Task.FromResult(_cursor);

        public Task SetCursorAsync(long position, CancellationToken cancellationToken)
        {
            _cursor = position;
            return Task.CompletedTask;
        }

        public Task<OutgoingBundle?> GetOutgoingAsync(CancellationToken cancellationToken) => Task.FromResult(_outgoing);

        public Task SetOutgoingAsync(OutgoingBundle? bundle, CancellationToken cancellationToken)
        {
            _outgoing = bundle;
            return Task.CompletedTask;
        }
    }
}
