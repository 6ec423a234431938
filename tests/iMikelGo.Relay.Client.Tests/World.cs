using System.Security.Cryptography;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Sealing;
using IMikelGo.Testing;
using Microsoft.Extensions.Time.Testing;

namespace IMikelGo.Relay.Client.Tests;

/// <summary>A school scenario (school, D1, D2) wired to an in-memory relay through real <see cref="RelayClient"/>s.</summary>
internal sealed class World : IDisposable
{
    public const string Pin = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    private readonly List<IDisposable> _owned = [];

    public World(int weeks = 12, int students = 2)
    {
        Scenario = SchoolScenario.Create(new ScenarioOptions { Devices = 2, Weeks = weeks, Students = students });
        Time = new FakeTimeProvider(new DateTimeOffset(2025, 9, 1, 8, 0, 0, TimeSpan.Zero));
        Relay = new FakeRelay(Time);
        SchoolKeys = Own(EncryptionKeyPair.Generate());
        D1 = new MemorySyncReplica(Scenario.Device(1), Own(EncryptionKeyPair.Generate()));
        D2 = new MemorySyncReplica(Scenario.Device(2), Own(EncryptionKeyPair.Generate()));
        D1.Recipients.AddRange([SchoolKeys.PublicKey, D2.Keys.PublicKey]);
        D2.Recipients.AddRange([SchoolKeys.PublicKey, D1.Keys.PublicKey]);
        Signer1 = NewSigner(D1, "d1");
        Signer2 = NewSigner(D2, "d2");
    }

    public SchoolScenario Scenario { get; }

    public FakeTimeProvider Time { get; }

    public FakeRelay Relay { get; }

    public EncryptionKeyPair SchoolKeys { get; }

    public MemorySyncReplica D1 { get; }

    public MemorySyncReplica D2 { get; }

    public EcdsaRequestSigner Signer1 { get; }

    public EcdsaRequestSigner Signer2 { get; }

    public string Account => Scenario.Account.Value;

    public static RelayClientOptions Options(int maxRetries = 3, TimeSpan? baseDelay = null) => new()
    {
        BaseAddress = new Uri("https://relay.test/"),
        PinnedCertificateSha256 = Pin,
        MaxRetries = maxRetries,
        RetryBaseDelay = baseDelay ?? TimeSpan.Zero,
        UseJitter = false,
    };

    public RelayClient Client(EcdsaRequestSigner signer, RelayClientOptions? options = null) =>
        Own(RelayClient.Create(options ?? Options(), signer, Time, primaryHandler: new Forwarder(Relay)));

    public SyncAgent Agent(MemorySyncReplica replica, RelayClientOptions? options = null, SyncAgentOptions? agentOptions = null) =>
        Own(new SyncAgent(Client(replica == D1 ? Signer1 : Signer2, options), replica, agentOptions));

    public SignedEvent Absent(Replica author, int week, int student) =>
        Scenario.Record(author, [new StudentAbsent(Scenario.Lesson(week), Scenario.Students[student], false, null)]);

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned))
        {
            d.Dispose();
        }

        Scenario.Dispose();
        Relay.Dispose();
    }

    private EcdsaRequestSigner NewSigner(MemorySyncReplica replica, string name)
    {
        // A device signs its relay requests with its replica key: the caller id is its replica id.
        using var key = TestKeys.For(name, 0);
        var pkcs8 = key.ExportPkcs8();
        var signer = Own(EcdsaRequestSigner.FromPkcs8(pkcs8));
        CryptographicOperations.ZeroMemory(pkcs8);
        if (signer.CallerId != replica.Id.Value)
        {
            throw new InvalidOperationException("the signer's caller id must be the replica id");
        }

        Relay.Register(Account, signer.CallerId, signer.PublicKey);
        return signer;
    }

    private T Own<T>(T d)
        where T : IDisposable
    {
        _owned.Add(d);
        return d;
    }

    /// <summary>Lets several clients share one fake relay without disposing it with the first client.</summary>
    private sealed class Forwarder(FakeRelay relay) : DelegatingHandler(new NonDisposing(relay));

    private sealed class NonDisposing(FakeRelay relay) : HttpMessageHandler
    {
        private readonly HttpMessageInvoker _invoker = new(relay, disposeHandler: false);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            _invoker.SendAsync(request, cancellationToken);
    }
}
