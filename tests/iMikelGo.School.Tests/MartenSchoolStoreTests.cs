using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.School.Connector;
using IMikelGo.School.Publishing;
using IMikelGo.Store.Marten.School;
using JasperFx;
using Marten;
using Xunit;

namespace IMikelGo.School.Tests;

public sealed class MartenSchoolStoreTests
{
    /// <summary>The number of event hashes the database holds claimed (rows of the unique hash table).</summary>
    internal static async Task<long> StoredHashesAsync(IDocumentStore store)
    {
        await using var db = store.Storage.Database.CreateConnection();
        await db.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand($"SELECT count(*) FROM {MartenSchoolEventStore.HashTable(store.Options.DatabaseSchemaName)}", db);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    private static MartenSchoolEventStore NewStore() => MartenSchoolEventStore.Create(new SchoolEventStoreOptions
    {
        ConnectionString = PostgresServer.ConnectionString,
        SchemaName = "school_" + Guid.NewGuid().ToString("N")[..12],
    });

    /// <summary>The documented JSON school published, a device of anna enrolled, and a few device facts.</summary>
    private static (TimetablePublisher Publisher, AccountId Anna, Replica Device, IReadOnlyList<SignedEvent> All) Scenario()
    {
        var publisher = new TimetablePublisher(DerivedSchoolKeyStore.ForTests());
        publisher.Publish(Json.Example());
        var anna = new AccountId("anna");
        var key = ReplicaKey.Create();
        publisher.EnrollDevice(anna, key.Replica, "anna's phone", key.PublicKey);
        var device = new Replica(anna, key);
        device.Receive(publisher.EventsOf(anna));
        var lessons = device.Calendar.Lessons().Where(l => l.Occurrence.Series.Value == "piano-anna-1").ToList();
        device.Record(new StudentAbsent(lessons[0].Occurrence, new StudentId("lea"), true, "ill")).Succeeded.Should().BeTrue();
        device.Record(new StudentAbsent(lessons[1].Occurrence, new StudentId("lea"), false, null)).Succeeded.Should().BeTrue();
        device.Record(new AbsenceWithdrawn(lessons[1].Occurrence, new StudentId("lea"))).Succeeded.Should().BeTrue();
        device.Record(new LessonCancelled(lessons[2].Occurrence, CancellationReason.TeacherIll, true, null)).Succeeded.Should().BeTrue();
        device.Record(new LessonCancelled(lessons[3].Occurrence, CancellationReason.StudentIll, false, null)).Succeeded.Should().BeTrue();
        device.Record(new LessonRescheduled(lessons[4].Occurrence, lessons[4].Date.AddDays(1), 17 * 60, 45, new RoomId("r102"))).Succeeded.Should().BeTrue();
        publisher.ReplicaOf(anna).Receive(device.Ledger.Export(anna)).Refused.Should().BeEmpty();
        return (publisher, anna, device, publisher.EventsOf(anna));
    }

    [PostgresFact]
    public async Task A_cancellation_carried_over_to_a_new_series_counts_once_for_payroll()
    {
        using var store = NewStore();
        var t = Json.Example();
        var publisher = new TimetablePublisher(DerivedSchoolKeyStore.ForTests());
        publisher.Publish(t);
        var anna = new AccountId("anna");
        var key = ReplicaKey.Create();
        publisher.EnrollDevice(anna, key.Replica, "anna's phone", key.PublicKey);
        var device = new Replica(anna, key);
        device.Receive(publisher.EventsOf(anna));
        var cancelled = new OccurrenceId(new SeriesId("piano-anna-1"), new DateOnly(2026, 10, 5));
        device.Record(new LessonCancelled(cancelled, CancellationReason.TeacherIll, true, null)).Succeeded.Should().BeTrue();
        var school = publisher.ReplicaOf(anna);
        school.Receive(device.Ledger.Export(anna)).Refused.Should().BeEmpty();
        (await store.AppendAsync(anna, publisher.EventsOf(anna), school.Id)).Appended.Should().BeGreaterThan(0);

        // Max leaves ensemble A from 1 Oct: piano continues as piano-anna-1.2, which gets Anna's cancellation again.
        var group = t.Groups.Single(g => g.Id.Value == "ensemble-a");
        var recorded = school.Calendar.Lessons().Where(l => l.Status != Engine.Merge.LessonStatus.Scheduled).ToDictionary(l => l.Occurrence);
        publisher.Publish(t with { Groups = [.. t.Groups.Select(g => g == group ? g with { Members = [.. g.Members.Where(m => m.Id.Value != "max")] } : g)] },
            new PublishOptions { EffectiveFrom = new DateOnly(2026, 10, 1), TeacherRecord = (_, o) => recorded.GetValueOrDefault(o) });
        (await store.AppendAsync(anna, publisher.EventsOf(anna), school.Id)).Appended.Should().BeGreaterThan(0);

        await using var q = store.DocumentStore.QuerySession();
        var october = await q.LoadAsync<TeacherMonthCancellations>("anna/2026-10");
        october!.Cancelled.Keys.Should().Equal([new OccurrenceId(new SeriesId("piano-anna-1.2"), cancelled.Date).ToString()],
            "the old series ends on 30 Sep, so only the new series' lesson of 5 Oct is cancelled");
    }

    [PostgresFact]
    public async Task Verified_events_are_stored_as_canonical_lines_in_the_account_stream_with_projections()
    {
        using var store = NewStore();
        var (publisher, anna, device, all) = Scenario();
        var school = publisher.ReplicaOf(anna).Id;
        var result = await store.AppendAsync(anna, all, school);
        result.Appended.Should().Be(all.Count);
        (await store.StreamVersionAsync(anna)).Should().Be(all.Count);
        var lines = await store.ReadLinesAsync(anna);
        lines.Should().Equal(all.Select(e => e.ToLine()));
        var replay = new Replica(anna, ReplicaKey.Create());
        replay.Ledger.IngestLines(lines).Refused.Should().BeEmpty("the stored lines re-verify byte for byte");

        await using var q = store.DocumentStore.QuerySession();
        var lea = await q.LoadAsync<StudentAbsences>("anna/lea");
        lea!.Absences.Should().ContainSingle().Which.Value.Excused.Should().BeTrue();
        var months = await q.Query<TeacherMonthCancellations>().ToListAsync();
        months.Sum(m => m.Count).Should().Be(2);
        months.Should().OnlyContain(m => m.Account == "anna");
        var moves = await q.Query<RescheduleLogEntry>().ToListAsync();
        moves.Should().ContainSingle().Which.Should().Match<RescheduleLogEntry>(r => !r.BySchool && r.Room == "r102" && r.StartMinute == 17 * 60);
        var contact = await q.LoadAsync<DeviceContact>(device.Id.Value);
        contact!.Enrolled.Should().BeTrue();
        contact.Label.Should().Be("anna's phone");
        contact.LastSeq.Should().Be(device.Position.Seq);
        contact.LastContact.Should().NotBeNull();
    }

    [PostgresFact]
    public async Task F05_a_retried_append_never_stores_a_second_copy_and_returns_the_original_versions()
    {
        using var store = NewStore();
        var (publisher, anna, _, all) = Scenario();
        var school = publisher.ReplicaOf(anna).Id;
        var first = await store.AppendAsync(anna, all, school);

        // The response was lost: retry plainly, then after refreshing the expected version, then with the stale one.
        var plain = await store.AppendAsync(anna, all, school);
        var refreshed = await store.AppendAsync(anna, all, school, expectedVersion: await store.StreamVersionAsync(anna));
        var stale = await store.AppendAsync(anna, all, school, expectedVersion: 0);
        foreach (var retry in new[] { plain, refreshed, stale })
        {
            retry.Appended.Should().Be(0);
            retry.Duplicates.Should().Be(all.Count);
            retry.Versions.Should().Equal(first.Versions);
        }

        // Concurrent retries: the database, not a cache, keeps one copy.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => store.AppendAsync(anna, all, school)));
        (await store.StreamVersionAsync(anna)).Should().Be(all.Count);
        (await StoredHashesAsync(store.DocumentStore)).Should().Be(all.Count);

        // The unique claim is enforced by PostgreSQL: inserting a claim for a stored hash fails.
        await using (var db = store.DocumentStore.Storage.Database.CreateConnection())
        {
            await db.OpenAsync();
            await using var claim = new Npgsql.NpgsqlCommand(
                $"INSERT INTO {MartenSchoolEventStore.HashTable(store.DocumentStore.Options.DatabaseSchemaName)}(hash, stream, version) VALUES ($1, 'x', 1)", db);
            claim.Parameters.Add(new Npgsql.NpgsqlParameter { Value = all[0].Event.Hash.Hex });
            (await FluentActions.Awaiting(() => claim.ExecuteNonQueryAsync()).Should().ThrowAsync<Npgsql.PostgresException>())
                .Which.SqlState.Should().Be(Npgsql.PostgresErrorCodes.UniqueViolation);
        }

        // A batch mixing stored and new events appends only the new ones.
        publisher.ReplicaOf(anna).Record(new HolidaysDeclared("Feiertag", new DateOnly(2026, 12, 8), new DateOnly(2026, 12, 8))).Succeeded.Should().BeTrue();
        var more = publisher.EventsOf(anna);
        var mixed = await store.AppendAsync(anna, more, school);
        mixed.Appended.Should().Be(more.Count - all.Count);
        // Matched by event hash: the stored events keep their original versions, whatever order the batch lists them in.
        var original = all.Select((e, i) => (e.Event.Hash, Version: first.Versions[i])).ToDictionary(p => p.Hash, p => p.Version);
        var again = more.Select((e, i) => (e.Event.Hash, Version: mixed.Versions[i])).Where(p => original.ContainsKey(p.Hash)).ToList();
        again.Should().HaveCount(all.Count);
        again.Should().OnlyContain(p => p.Version == original[p.Hash]);
    }

    [PostgresFact]
    public async Task F09_expected_version_3_on_a_missing_stream_throws_and_creates_nothing()
    {
        using var store = NewStore();
        var (publisher, anna, _, all) = Scenario();
        var school = publisher.ReplicaOf(anna).Id;
        var l9 = new AccountId("l9");
        var foreign = all.Take(3).ToList();

        // Our own account: the stream does not exist yet (version 0).
        var act = () => store.AppendAsync(anna, foreign, school, expectedVersion: 3);
        await act.Should().ThrowAsync<ConcurrencyException>().WithMessage("*does not exist*expected version 3*");
        (await store.StreamVersionAsync(anna)).Should().Be(0);
        (await store.ReadLinesAsync(anna)).Should().BeEmpty();
        await using (var q = store.DocumentStore.QuerySession())
        {
            (await q.Events.FetchStreamStateAsync(MartenSchoolEventStore.StreamKey(anna))).Should().BeNull();
            (await StoredHashesAsync(store.DocumentStore)).Should().Be(0, "no claim survives the refused append");
            (await q.Query<StudentAbsences>().CountAsync()).Should().Be(0);
        }

        (await store.StreamVersionAsync(l9)).Should().Be(0);

        // An existing stream at the wrong version is refused too, and the right version succeeds.
        await store.AppendAsync(anna, all.Take(2).ToList(), school, expectedVersion: 0);
        await FluentActions.Awaiting(() => store.AppendAsync(anna, all.Skip(2).ToList(), school, expectedVersion: 5)).Should().ThrowAsync<ConcurrencyException>();
        (await store.StreamVersionAsync(anna)).Should().Be(2);
        (await store.AppendAsync(anna, all.Skip(2).ToList(), school, expectedVersion: 2)).StreamVersion.Should().Be(all.Count);
    }

    // Needs PostgreSQL (a missing one fails the test with the reason) and ../shared's ES-SS-08 (skipped without it).
    [SharedFileFact(Repo.SpainSchool)]
    public async Task The_connector_runs_on_the_Marten_store_end_to_end_and_the_admin_projections_show_its_data()
    {
        var path = Repo.SpainSchoolPath;
        var none = CancellationToken.None;
        await using var world = new ConnectorWorld(SchoolStoreKind.Marten);
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(path, XhsttImportTests.Solutions[0], none);
        (await school.PublishAsync(null, none)).Accounts.Should().Be(66);
        await world.StartRelayAsync(school.Accounts);
        var teacher = school.Accounts.First(a => school.ReplicaOf(a)!.Ledger.Applied.Any(e => e.Account == a && e.Payload is SeriesPublished p && p.Students.Length > 0));
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(teacher, none));
        (await school.SyncAsync(teacher, null, none)).Failures.Should().BeEmpty();
        (await device.SyncAsync(null, none)).Refused.Should().BeEmpty();
        var lessons = device.Week(new DateOnly(2026, 9, 21)).Where(l => l.Students.Count > 0).ToList();
        var absent = lessons[0].Students[0].Id;
        (await device.RecordAbsenceAsync(lessons[0].Occurrence, absent, true, "ill", none)).Succeeded.Should().BeTrue();
        (await device.CancelAsync(lessons[1].Occurrence, CancellationReason.TeacherIll, true, null, none)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, none);
        (await school.SyncAsync(teacher, null, none)).EventsReceived.Should().BeGreaterThanOrEqualTo(2);

        // The second solution's difference is published as school-authored reschedules.
        await school.ImportFileAsync(path, XhsttImportTests.Solutions[1], none);
        var diff = await school.PublishAsync(null, XhsttImportTests.TermStart, none);
        diff.Rescheduled.Should().BeGreaterThan(0);
        var report = school.Report();

        // Reopened from the same schema: OpenAsync re-verifies every stored event and rebuilds the same state.
        school = await world.ReopenAsync();
        school.Accounts.Should().HaveCount(66);
        school.PendingTimetable.Should().BeNull("both imports are marked published");
        school.Report().Should().BeEquivalentTo(report);
        (await school.SyncAsync(teacher, null, none)).Failures.Should().BeEmpty();

        var store = (MartenSchoolConnectorStore)world.Store!;
        var stored = await store.ReadEventsAsync(none);
        await using var q = store.DocumentStore.QuerySession();
        (await StoredHashesAsync(store.DocumentStore)).Should().Be(stored.Count, "every connector event went through the event store's append path");
        (await q.Events.FetchStreamStateAsync(MartenSchoolEventStore.StreamKey(teacher)))!.Version.Should().Be(stored.Count(e => e.Account == teacher.Value));
        var absences = await q.LoadAsync<StudentAbsences>($"{teacher.Value}/{absent.Value}");
        absences!.Absences.Should().ContainSingle().Which.Value.Should().Be(new AbsenceEntry(lessons[0].Occurrence.ToString(), true, "ill", device.DeviceId!.Value.Value));
        (await q.Query<TeacherMonthCancellations>().Where(m => m.Account == teacher.Value).ToListAsync())
            .Should().ContainSingle().Which.Cancelled.Keys.Should().Equal(lessons[1].Occurrence.ToString());
        var moves = await q.Query<RescheduleLogEntry>().ToListAsync();
        moves.Should().HaveCount(diff.Rescheduled).And.OnlyContain(m => m.BySchool, "the school replica authored the timetable difference");
        var contact = await q.LoadAsync<DeviceContact>(device.DeviceId!.Value.Value);
        contact!.Account.Should().Be(teacher.Value);
        contact.Enrolled.Should().BeTrue();
        contact.LastContact.Should().NotBeNull();
    }
}
