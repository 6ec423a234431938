using FluentAssertions;
using Marten;
using IMikelGo.Engine.Sync;
using IMikelGo.Store.Marten.School;
using Npgsql;
using Xunit;

namespace IMikelGo.School.Tests.Conformance;

/// <summary>
/// The conformance suite on the production store: real PostgreSQL (IMIKELGO_POSTGRES or a throwaway cluster, see
/// <see cref="PostgresServer"/>; a missing PostgreSQL fails these tests with the reason), a fresh schema per test.
/// </summary>
public sealed class MartenSchoolConnectorStoreTests : SchoolConnectorStoreConformance
{
    private readonly string _schema = "conformance_" + Guid.NewGuid().ToString("N")[..12];

    protected override async Task<ISchoolConnectorStore> OpenStoreAsync() =>
        await MartenSchoolConnectorStore.OpenAsync(PostgresServer.ConnectionString, _schema, CancellationToken.None);

    [Fact]
    public async Task The_database_itself_refuses_a_second_copy_of_a_stored_event()
    {
        await using var store = await MartenSchoolConnectorStore.OpenAsync(PostgresServer.ConnectionString, _schema, CancellationToken.None);
        var publisher = new Publishing.TimetablePublisher(Publishing.DerivedSchoolKeyStore.ForTests());
        publisher.Publish(Json.Example());
        var e = publisher.EventsOf(new Engine.AccountId("anna"))[0];
        await store.AppendEventsAsync([new StoredSchoolEvent(e.Event.Hash.Hex, "anna", e.Event.Replica.Value, e.Event.Seq, e.ToLine())], false, null, CancellationToken.None);

        await using var db = new NpgsqlConnection(PostgresServer.ConnectionString);
        await db.OpenAsync();
        foreach (var sql in new[]
        {
            $"INSERT INTO {_schema}.school_outbox(hash, account, acked) VALUES('{e.Event.Hash.Hex}', 'anna', false)",
            $"INSERT INTO {MartenSchoolEventStore.HashTable(_schema)}(hash, stream, version) VALUES('{e.Event.Hash.Hex}', 'x', 1)",
        })
        {
            await using var cmd = new NpgsqlCommand(sql, db);
            (await FluentActions.Awaiting(() => cmd.ExecuteNonQueryAsync()).Should().ThrowAsync<PostgresException>())
                .Which.SqlState.Should().Be(PostgresErrorCodes.UniqueViolation);
        }
    }

    [Fact]
    public async Task An_invalid_schema_name_or_an_unconfigured_document_store_is_refused()
    {
        await FluentActions.Awaiting(() => MartenSchoolConnectorStore.OpenAsync(PostgresServer.ConnectionString, "bad; drop", CancellationToken.None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*bad; drop*schema*");
        using var plain = Marten.DocumentStore.For(o =>
        {
            o.Connection(PostgresServer.ConnectionString);
            o.DatabaseSchemaName = _schema;
            o.AutoCreateSchemaObjects = JasperFx.AutoCreate.None;
        });
        await FluentActions.Awaiting(() => MartenSchoolConnectorStore.OpenAsync(plain, CancellationToken.None))
            .Should().ThrowAsync<InvalidOperationException>().WithMessage("*MartenSchoolConnectorStore.Configure*");
    }

    [Fact]
    public async Task A_reopened_store_finds_its_schema_objects_up_to_date()
    {
        await (await OpenStoreAsync()).DisposeAsync();
        await using var store = await MartenSchoolConnectorStore.OpenAsync(PostgresServer.ConnectionString, _schema, CancellationToken.None);
        var migration = await store.DocumentStore.Storage.Database.CreateMigrationAsync();
        migration.Difference.Should().Be(Weasel.Core.SchemaPatchDifference.None, "opening again changes nothing (changed: {0})", string.Join(", ", migration.Deltas.Where(d => d.Difference != Weasel.Core.SchemaPatchDifference.None).Select(d => d.SchemaObject.Identifier)));
    }

    [Fact]
    public async Task A_batch_larger_than_one_save_chunk_is_stored_once_in_order_in_one_stream()
    {
        var publisher = new Publishing.TimetablePublisher(Publishing.DerivedSchoolKeyStore.ForTests());
        publisher.Publish(Json.Example());
        var anna = new Engine.AccountId("anna");
        var school = publisher.ReplicaOf(anna);
        for (var day = 0; day < 1_200; day++)
        {
            var date = new DateOnly(2030, 1, 1).AddDays(day);
            school.Record(new Engine.Events.HolidaysDeclared("closed", date, date)).Succeeded.Should().BeTrue();
        }

        var all = publisher.EventsOf(anna).Select(e => new StoredSchoolEvent(e.Event.Hash.Hex, "anna", e.Event.Replica.Value, e.Event.Seq, e.ToLine())).ToList();
        all.Count.Should().BeGreaterThan(1_200);
        await using var store = await MartenSchoolConnectorStore.OpenAsync(PostgresServer.ConnectionString, _schema, CancellationToken.None);
        var import = await store.AddImportAsync("json", null, "{}", CancellationToken.None);

        // Duplicates spread over the chunks (the first events again at the end) are skipped by the earlier chunks' claims.
        (await store.AppendEventsAsync([.. all, .. all.Take(600)], false, import, CancellationToken.None)).Should().Be(all.Count);
        (await store.ReadEventsAsync(CancellationToken.None)).Should().Equal(all);
        (await store.ImportsAsync(CancellationToken.None)).Should().ContainSingle().Which.Published.Should().BeTrue();
        await using var q = store.DocumentStore.QuerySession();
        (await q.Events.FetchStreamStateAsync(MartenSchoolEventStore.StreamKey(anna)))!.Version.Should().Be(all.Count);
        (await MartenSchoolStoreTests.StoredHashesAsync(store.DocumentStore)).Should().Be(all.Count);
    }
}
