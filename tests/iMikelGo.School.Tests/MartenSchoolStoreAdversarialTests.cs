using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.School.Publishing;
using IMikelGo.Store.Marten.School;
using Marten;
using Xunit;

namespace IMikelGo.School.Tests;

/// <summary>
/// Attacks on the Marten school event store's hash claims (<c>school_event_hashes</c>): several independent stores on
/// one schema racing their first and overlapping appends, duplicates inside one batch, a schema managed outside
/// without the table, and schema names that must be refused before any SQL is built from them.
/// </summary>
public sealed class MartenSchoolStoreAdversarialTests
{
    private static string NewSchema() => "adv_" + Guid.NewGuid().ToString("N")[..12];

    private static MartenSchoolEventStore NewStore(string schema, bool autoCreate = true) => MartenSchoolEventStore.Create(new SchoolEventStoreOptions
    {
        ConnectionString = PostgresServer.ConnectionString,
        SchemaName = schema,
        AutoCreateSchema = autoCreate,
    });

    /// <summary>The documented JSON school published: every teacher account with its school-signed events.</summary>
    private static (TimetablePublisher Publisher, AccountId Account, ReplicaId School, IReadOnlyList<SignedEvent> All) Published()
    {
        var publisher = new TimetablePublisher(DerivedSchoolKeyStore.ForTests());
        publisher.Publish(Json.Example());
        var account = publisher.Accounts.OrderByDescending(a => publisher.EventsOf(a).Count).First();
        var all = publisher.EventsOf(account);
        all.Count.Should().BeGreaterThanOrEqualTo(4, "the attacks need a few events to overlap");
        return (publisher, account, publisher.ReplicaOf(account).Id, all);
    }

    [PostgresFact]
    public async Task Independent_stores_on_one_fresh_schema_racing_the_same_and_overlapping_batches_store_each_event_once()
    {
        var schema = NewSchema();
        var (_, account, school, all) = Published();
        var half = all.Count / 2;
        var batches = new[]
        {
            all,                                  // everything
            all,                                  // the same batch again
            all.Take(half + 1).ToList(),          // a prefix overlapping the rest by one event
            all.Skip(half).ToList(),              // a suffix (its start is only valid after the prefix)
            all.Reverse().ToList(),               // everything, listed backwards
        };

        // One DocumentStore per writer, as a school server and a CLI would have; nobody has created the schema yet.
        var stores = batches.Select(_ => NewStore(schema)).ToList();
        try
        {
            var results = await Task.WhenAll(batches.Select((b, i) => Task.Run(() => stores[i].AppendAsync(account, b, school))));

            results.Sum(r => r.Appended).Should().Be(all.Count, "every event is stored by exactly one of the writers");
            (await stores[0].StreamVersionAsync(account)).Should().Be(all.Count);
            (await MartenSchoolStoreTests.StoredHashesAsync(stores[0].DocumentStore)).Should().Be(all.Count);
            var lines = await stores[0].ReadLinesAsync(account);
            lines.Should().OnlyHaveUniqueItems().And.HaveCount(all.Count).And.BeEquivalentTo(all.Select(e => e.ToLine()));

            // Every writer was told the same version for the same event, whoever stored it.
            var version = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var (batch, result) in batches.Zip(results))
            {
                result.Versions.Should().HaveCount(batch.Count);
                foreach (var (e, v) in batch.Zip(result.Versions))
                {
                    if (!version.TryAdd(e.Event.Hash.Hex, v))
                    {
                        v.Should().Be(version[e.Event.Hash.Hex], "event {0} has one version", e.Event.Seq);
                    }
                }
            }
        }
        finally
        {
            stores.ForEach(s => s.Dispose());
        }
    }

    [PostgresFact]
    public async Task A_batch_naming_the_same_event_twice_stores_it_once_and_reports_both_copies_at_its_version()
    {
        using var store = NewStore(NewSchema());
        var (_, account, school, all) = Published();
        var batch = all.Take(3).Concat([all[1], all[2], all[1]]).ToList();

        var result = await store.AppendAsync(account, batch, school);

        result.Appended.Should().Be(3);
        result.Duplicates.Should().Be(3);
        result.StreamVersion.Should().Be(3);
        result.Versions.Should().Equal(1, 2, 3, 2, 3, 2);
        (await store.ReadLinesAsync(account)).Should().Equal(all.Take(3).Select(e => e.ToLine()));
        (await MartenSchoolStoreTests.StoredHashesAsync(store.DocumentStore)).Should().Be(3);

        // The same again, all stored already: a no-op with the same versions.
        var again = await store.AppendAsync(account, batch, school);
        again.Appended.Should().Be(0);
        again.Versions.Should().Equal(result.Versions);
    }

    [PostgresFact]
    public async Task A_store_that_does_not_create_its_schema_says_which_table_is_missing_and_stores_nothing()
    {
        var schema = NewSchema();
        var (_, account, school, all) = Published();
        using var store = NewStore(schema, autoCreate: false);

        var act = () => store.AppendAsync(account, all, school);

        var error = (await act.Should().ThrowAsync<InvalidOperationException>()).Which;
        error.Message.Should().Contain(MartenSchoolEventStore.HashTable(schema)).And.Contain("does not exist").And.Contain("AutoCreateSchema").And.Contain("nothing was stored");

        // The same schema, now created by a store that may: the account's stream is empty, and the append goes through.
        using var creating = NewStore(schema);
        (await creating.StreamVersionAsync(account)).Should().Be(0);
        (await creating.AppendAsync(account, all, school)).Appended.Should().Be(all.Count);
        (await store.AppendAsync(account, all, school)).Duplicates.Should().Be(all.Count, "once the table exists the non-creating store works");
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("School")]
    [InlineData("a-b")]
    [InlineData("a b")]
    [InlineData("a;drop table x")]
    [InlineData("1abc")]
    [InlineData("\"quoted\"")]
    [InlineData("schulé")]
    [InlineData("public.x")]
    public void Configure_and_Create_refuse_a_schema_name_with_bad_characters_before_any_sql(string schema)
    {
        var options = new SchoolEventStoreOptions { ConnectionString = "Host=127.0.0.1;Port=1", SchemaName = schema };

        var configure = () => MartenSchoolEventStore.Configure(new StoreOptions(), options);
        configure.Should().Throw<ArgumentException>().WithMessage($"*'{schema}' is not a valid schema name*");
        var create = () => MartenSchoolEventStore.Create(options);
        create.Should().Throw<ArgumentException>().WithMessage($"*'{schema}' is not a valid schema name*");
    }

    [Fact]
    public void A_schema_name_longer_than_PostgreSQL_keeps_is_refused_and_63_characters_are_accepted()
    {
        Action Configure(string name) => () => MartenSchoolEventStore.Configure(new StoreOptions(), new SchoolEventStoreOptions { SchemaName = name });
        Configure(new string('a', 64)).Should().Throw<ArgumentException>().WithMessage("*at most 63*");
        Configure(new string('a', 63)).Should().NotThrow();
    }
}
