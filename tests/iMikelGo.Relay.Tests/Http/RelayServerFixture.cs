using Xunit;

namespace IMikelGo.Relay.Tests.Http;

/// <summary>One relay for the HTTP tests (Wolverine compiles its endpoints once per host).</summary>
public sealed class RelayServerFixture : IAsyncLifetime
{
    public RelayServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await RelayServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class RelayCollection : ICollectionFixture<RelayServerFixture>
{
    public const string Name = "relay-http";
}
