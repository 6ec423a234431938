using System.Text;
using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Sync;
using IMikelGo.School.Publishing;
using Xunit;

namespace IMikelGo.School.Tests.Conformance;

/// <summary>
/// The contract of <see cref="ISchoolConnectorStore"/> (engine/iMikelGo.Engine/Sync/ISchoolConnectorStore.cs), run
/// against every implementation. Each test gets a fresh, empty store location; <see cref="OpenAsync"/> opens one more
/// instance on it (a second writer, or the store again after a dispose).
/// </summary>
public abstract class SchoolConnectorStoreConformance : IAsyncLifetime
{
    private readonly List<ISchoolConnectorStore> _open = [];

    /// <summary>Two accounts of the documented JSON school, published: real signed events with canonical lines.</summary>
    private static readonly Lazy<(IReadOnlyList<StoredSchoolEvent> Anna, IReadOnlyList<StoredSchoolEvent> Ben)> Events = new(() =>
    {
        var publisher = new TimetablePublisher(DerivedSchoolKeyStore.ForTests());
        publisher.Publish(Json.Example());
        return (Stored(publisher.EventsOf(new AccountId("anna"))), Stored(publisher.EventsOf(new AccountId("ben"))));
    });

    private static CancellationToken None => CancellationToken.None;

    private static IReadOnlyList<StoredSchoolEvent> Anna => Events.Value.Anna;

    private static IReadOnlyList<StoredSchoolEvent> Ben => Events.Value.Ben;

    /// <summary>Opens an instance of the store at this test's location (created empty on first use).</summary>
    protected abstract Task<ISchoolConnectorStore> OpenStoreAsync();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _open)
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task One_writer_at_a_time_holds_the_lock_whatever_instance_and_it_is_free_again_once_released()
    {
        var first = await OpenAsync();
        var second = await OpenAsync();
        var held = await first.TryLockWriterAsync(None);
        held.Should().NotBeNull("nobody holds the lock yet");
        (await second.TryLockWriterAsync(None)).Should().BeNull("another instance of the same store holds it");
        (await first.TryLockWriterAsync(None)).Should().BeNull("not even the holder's own store takes it twice");

        await held!.DisposeAsync();
        var again = await second.TryLockWriterAsync(None);
        again.Should().NotBeNull("released with its handle");
        await again!.DisposeAsync();
    }

    [Fact]
    public async Task Values_are_stored_overwritten_and_deleted()
    {
        var store = await OpenAsync();
        (await store.GetValueAsync("school/secret", None)).Should().BeNull();
        await store.SetValueAsync("school/secret", [1, 2, 3], None);
        (await store.GetValueAsync("school/secret", None)).Should().Equal(1, 2, 3);
        await store.SetValueAsync("school/secret", [9], None);
        (await store.GetValueAsync("school/secret", None)).Should().Equal(9);
        await store.SetValueAsync("empty", [], None);
        (await store.GetValueAsync("empty", None)).Should().NotBeNull().And.BeEmpty("an empty value is a value, not a deletion");
        var big = Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray();
        await store.SetValueAsync("big", big, None);
        (await store.GetValueAsync("big", None)).Should().Equal(big);

        await store.SetValueAsync("school/secret", null, None);
        (await store.GetValueAsync("school/secret", None)).Should().BeNull();
        await store.SetValueAsync("never-stored", null, None);
        (await store.ListValuesAsync("", None)).Select(v => v.Key).Should().Equal("big", "empty");
    }

    [Fact]
    public async Task Values_are_listed_by_a_literal_case_sensitive_prefix_in_ordinal_order()
    {
        var store = await OpenAsync();
        string[] names = ["roster/b", "roster/a", "roster", "rosters/x", "Roster/z", "r%ster/1", "r_ster/2", "roster/é", "roster/\u00e9t\u00e9", "a"];
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            await store.SetValueAsync(name, [(byte)i], None);
        }

        async Task<IEnumerable<string>> List(string prefix) => (await store.ListValuesAsync(prefix, None)).Select(v => v.Key);

        (await List("")).Should().Equal(names.Order(StringComparer.Ordinal));
        (await List("roster/")).Should().Equal("roster/a", "roster/b", "roster/é", "roster/été");
        (await List("roster")).Should().Equal("roster", "roster/a", "roster/b", "roster/é", "roster/été", "rosters/x");
        (await List("Roster")).Should().Equal("Roster/z");
        (await List("r%")).Should().Equal(["r%ster/1"], "% is no wildcard");
        (await List("r_")).Should().Equal(["r_ster/2"], "_ is no wildcard");
        (await List("roster/é")).Should().Equal("roster/é", "roster/été");
        (await List("roster/a/longer-than-any-name")).Should().BeEmpty();
        (await List("x")).Should().BeEmpty();
        var listed = await store.ListValuesAsync("roster/b", None);
        listed.Should().ContainSingle().Which.Value.Should().Equal((byte)0);
    }

    [Fact]
    public async Task Bad_input_is_refused_with_an_error_naming_it_and_nothing_is_stored()
    {
        var store = await OpenAsync();
        await FluentActions.Awaiting(() => store.GetValueAsync(null!, None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => store.SetValueAsync("", [1], None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => store.ListValuesAsync(null!, None)).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => store.AppendEventsAsync(null!, false, null, None)).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => store.MarkAcknowledgedAsync(null!, None)).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => store.AddImportAsync("", null, "x", None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => store.AddImportAsync("json", null, null!, None)).Should().ThrowAsync<ArgumentNullException>();

        var e = Anna[1];
        var bad = new (StoredSchoolEvent Event, string Names)[]
        {
            (e with { Hash = Anna[2].Hash }, "events[1].Hash"),
            (e with { Account = "ben" }, "events[1].Account"),
            (e with { Replica = Ben[0].Replica + "x" }, "events[1].Replica"),
            (e with { Seq = e.Seq + 1 }, "events[1].Seq"),
            (e with { Line = e.Line.Replace("\"seq\":", "\"seq\" :", StringComparison.Ordinal) }, "events[1].Line"),
            (e with { Line = e.Line[..^2] }, "events[1].Line"),
        };
        foreach (var (wrong, names) in bad)
        {
            await FluentActions.Awaiting(() => store.AppendEventsAsync([Anna[0], wrong], false, null, None))
                .Should().ThrowAsync<ArgumentException>().WithMessage($"*{names}*");
        }

        await FluentActions.Awaiting(() => store.AppendEventsAsync([Anna[0], null!], false, null, None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*events[1]*");
        await FluentActions.Awaiting(() => store.AppendEventsAsync([Anna[0]], false, 42, None))
            .Should().ThrowAsync<ArgumentException>().WithMessage("*42*");
        (await store.ReadEventsAsync(None)).Should().BeEmpty("a refused batch stores nothing, not even its good events");
        (await store.UnacknowledgedAsync("anna", None)).Should().BeEmpty();
        (await store.ListValuesAsync("", None)).Should().BeEmpty();
        (await store.ImportsAsync(None)).Should().BeEmpty();
    }

    [Fact]
    public async Task A_retried_append_stores_nothing_twice_and_counts_only_new_events()
    {
        var store = await OpenAsync();
        var half = Anna.Take(Anna.Count / 2).ToList();
        (await store.AppendEventsAsync(half, false, null, None)).Should().Be(half.Count);
        (await store.AppendEventsAsync(half, false, null, None)).Should().Be(0, "the retry finds every event stored");
        (await store.AppendEventsAsync([.. Anna, .. Anna], false, null, None)).Should().Be(Anna.Count - half.Count, "a batch mixing stored, new and repeated events adds each new one once");
        (await store.AppendEventsAsync([], false, null, None)).Should().Be(0);
        (await store.ReadEventsAsync(None)).Should().Equal(Anna);
    }

    [Fact]
    public async Task Concurrent_duplicate_appends_from_two_store_instances_store_each_event_once()
    {
        var first = await OpenAsync();
        var second = await OpenAsync();
        var batch = Anna.Concat(Ben).ToList();
        for (var round = 0; round < 3; round++)
        {
            var added = await Task.WhenAll(
                Task.Run(() => first.AppendEventsAsync(batch, false, null, None)),
                Task.Run(() => second.AppendEventsAsync(batch, false, null, None)),
                Task.Run(() => first.AppendEventsAsync(batch.AsEnumerable().Reverse().ToList(), false, null, None)));
            added.Sum().Should().Be(round == 0 ? batch.Count : 0);
        }

        (await first.ReadEventsAsync(None)).Select(e => e.Hash).Should().OnlyHaveUniqueItems().And.BeEquivalentTo(batch.Select(e => e.Hash));
        (await second.ReadEventsAsync(None)).Should().HaveCount(batch.Count);
    }

    [Fact]
    public async Task Events_are_read_in_append_order_across_accounts_and_calls()
    {
        var store = await OpenAsync();
        var interleaved = Anna.Take(4).Zip(Ben.Take(4)).SelectMany(p => new[] { p.Second, p.First }).ToList();
        await store.AppendEventsAsync(interleaved, false, null, None);
        var rest = Anna.Skip(4).Concat(Ben.Skip(4)).ToList();
        await store.AppendEventsAsync(rest, true, null, None);
        (await store.ReadEventsAsync(None)).Should().Equal([.. interleaved, .. rest], "events come back in append order, with every field");
    }

    [Fact]
    public async Task Acknowledgement_is_per_event_and_per_account()
    {
        var store = await OpenAsync();
        await store.AppendEventsAsync([.. Anna, .. Ben.Take(3)], acknowledged: false, null, None);
        await store.AppendEventsAsync(Ben.Skip(3).ToList(), acknowledged: true, null, None);
        (await store.UnacknowledgedAsync("anna", None)).Should().BeEquivalentTo(Anna.Select(e => e.Hash));
        (await store.UnacknowledgedAsync("ben", None)).Should().BeEquivalentTo(Ben.Take(3).Select(e => e.Hash), "events stored acknowledged are not pending");
        (await store.UnacknowledgedAsync("nobody", None)).Should().BeEmpty();

        await store.MarkAcknowledgedAsync([Anna[0].Hash, Anna[1].Hash, "0000-not-a-stored-hash", Anna[0].Hash], None);
        (await store.UnacknowledgedAsync("anna", None)).Should().BeEquivalentTo(Anna.Skip(2).Select(e => e.Hash));
        await store.MarkAcknowledgedAsync([], None);

        // A duplicate append keeps the stored flag, whatever flag the retry names.
        (await store.AppendEventsAsync(Anna, acknowledged: true, null, None)).Should().Be(0);
        (await store.AppendEventsAsync(Ben, acknowledged: false, null, None)).Should().Be(0);
        (await store.UnacknowledgedAsync("anna", None)).Should().HaveCount(Anna.Count - 2);
        (await store.UnacknowledgedAsync("ben", None)).Should().HaveCount(3);

        await store.MarkAcknowledgedAsync(Anna.Concat(Ben).Select(e => e.Hash), None);
        (await store.UnacknowledgedAsync("anna", None)).Should().BeEmpty();
        (await store.UnacknowledgedAsync("ben", None)).Should().BeEmpty();
    }

    [Fact]
    public async Task Imports_get_increasing_versions_and_the_published_mark_commits_with_the_events()
    {
        var store = await OpenAsync();
        var v1 = await store.AddImportAsync("xhstt", "solution-a", "<xml/>", None);
        var v2 = await store.AddImportAsync("json", null, "{ \"ü\": 1 }", None);
        v2.Should().BeGreaterThan(v1);
        (await store.ImportsAsync(None)).Should().Equal(
            new StoredImport(v1, "xhstt", "solution-a", "<xml/>", false),
            new StoredImport(v2, "json", null, "{ \"ü\": 1 }", false));

        (await store.AppendEventsAsync(Anna, false, v1, None)).Should().Be(Anna.Count);
        (await store.ImportsAsync(None)).Select(i => i.Published).Should().Equal(true, false);

        // A failing append leaves the import unpublished and stores none of its events.
        var failing = Ben.Select((e, i) => i == Ben.Count - 1 ? e with { Seq = 999 } : e).ToList();
        await FluentActions.Awaiting(() => store.AppendEventsAsync(failing, false, v2, None)).Should().ThrowAsync<ArgumentException>();
        (await store.ImportsAsync(None)).Select(i => i.Published).Should().Equal(true, false);
        (await store.ReadEventsAsync(None)).Should().Equal(Anna);

        // A publish whose events are all stored already (a retry after a crash) still marks its import.
        (await store.AppendEventsAsync(Anna, false, v2, None)).Should().Be(0);
        (await store.ImportsAsync(None)).Select(i => i.Published).Should().Equal(true, true);
        var v3 = await store.AddImportAsync("json", null, "{}", None);
        v3.Should().BeGreaterThan(v2);
        (await store.AppendEventsAsync([], false, v3, None)).Should().Be(0);
        (await store.ImportsAsync(None)).Should().OnlyContain(i => i.Published);
    }

    [Fact]
    public async Task Everything_survives_a_dispose_and_reopen()
    {
        var store = await OpenAsync();
        await store.SetValueAsync("school/root.p12", Encoding.UTF8.GetBytes("root"), None);
        await store.SetValueAsync("personnel/x", [7], None);
        var v1 = await store.AddImportAsync("xhstt", "s1", "<a/>", None);
        await store.AddImportAsync("xhstt", "s2", "<b/>", None);
        await store.AppendEventsAsync([.. Anna, .. Ben], false, v1, None);
        await store.MarkAcknowledgedAsync(Ben.Select(e => e.Hash), None);
        await store.DisposeAsync();
        _open.Remove(store);

        var reopened = await OpenAsync();
        (await reopened.GetValueAsync("school/root.p12", None)).Should().Equal(Encoding.UTF8.GetBytes("root"));
        (await reopened.ListValuesAsync("personnel/", None)).Should().ContainSingle().Which.Value.Should().Equal((byte)7);
        (await reopened.ReadEventsAsync(None)).Should().Equal([.. Anna, .. Ben]);
        (await reopened.UnacknowledgedAsync("anna", None)).Should().HaveCount(Anna.Count);
        (await reopened.UnacknowledgedAsync("ben", None)).Should().BeEmpty();
        (await reopened.ImportsAsync(None)).Select(i => (i.Solution, i.Published)).Should().Equal(("s1", true), ("s2", false));
        (await reopened.AppendEventsAsync(Anna, false, null, None)).Should().Be(0, "the reopened store still knows every hash");
    }

    private static List<StoredSchoolEvent> Stored(IEnumerable<SignedEvent> events) =>
        [.. events.Select(e => new StoredSchoolEvent(e.Event.Hash.Hex, e.Event.Account.Value, e.Event.Replica.Value, e.Event.Seq, e.ToLine()))];

    private async Task<ISchoolConnectorStore> OpenAsync()
    {
        var store = await OpenStoreAsync();
        _open.Add(store);
        return store;
    }
}
