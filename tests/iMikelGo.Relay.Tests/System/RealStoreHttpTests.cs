using IMikelGo.Relay.Tests.Http;
using Xunit;

namespace IMikelGo.Relay.Tests.SystemTests;

/// <summary>The relay for the HTTP tests on the embedded SQLite store (a file in the relay's data directory).</summary>
public sealed class SqliteRelayServerFixture : RelayServerFixture
{
    protected override RelayStoreKind Kind => RelayStoreKind.Embedded;
}

/// <summary>The relay for the HTTP tests on PostgreSQL through Marten (a fresh schema).</summary>
public sealed class MartenRelayServerFixture : RelayServerFixture
{
    protected override RelayStoreKind Kind => RelayStoreKind.Postgres;
}

[CollectionDefinition(Name)]
public sealed class SqliteRelayCollection : ICollectionFixture<SqliteRelayServerFixture>
{
    public const string Name = "relay-http-sqlite";
}

[CollectionDefinition(Name)]
public sealed class MartenRelayCollection : ICollectionFixture<MartenRelayServerFixture>
{
    public const string Name = "relay-http-marten";
}

/// <summary>Every HTTP scenario of <see cref="RelayHttpTests"/> (round trip, idempotency, F01 paging, F02, long-poll, acks, revocation and wipe, quota) on the embedded SQLite store.</summary>
[Collection(SqliteRelayCollection.Name)]
public sealed class SqliteRelayHttpTests(SqliteRelayServerFixture fixture) : RelayHttpTests(fixture);

/// <summary>Every HTTP scenario of <see cref="RelayHttpTests"/> on PostgreSQL through Marten.</summary>
[Collection(MartenRelayCollection.Name)]
public sealed class MartenRelayHttpTests(MartenRelayServerFixture fixture) : RelayHttpTests(fixture);

/// <summary>Malformed, oversized, truncated, tampered and replayed requests on the embedded SQLite store: 4xx, nothing written.</summary>
[Collection(SqliteRelayCollection.Name)]
public sealed class SqliteBadInputTests(SqliteRelayServerFixture fixture) : BadInputTests(fixture);

/// <summary>Malformed, oversized, truncated, tampered and replayed requests on Marten: 4xx, nothing written.</summary>
[Collection(MartenRelayCollection.Name)]
public sealed class MartenBadInputTests(MartenRelayServerFixture fixture) : BadInputTests(fixture);
