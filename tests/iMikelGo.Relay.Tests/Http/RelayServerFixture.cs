using Xunit;

namespace IMikelGo.Relay.Tests.Http;

/// <summary>One relay for the HTTP tests (Wolverine compiles its endpoints once per host); in-memory unless a subclass picks a real store.</summary>
public class RelayServerFixture : IAsyncLifetime
{
    public RelayServer Server { get; private set; } = null!;

    protected virtual RelayStoreKind Kind => RelayStoreKind.InMemory;

    public async Task InitializeAsync() => Server = await RelayServer.StartAsync(kind: Kind);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class RelayCollection : ICollectionFixture<RelayServerFixture>
{
    public const string Name = "relay-http";
}
