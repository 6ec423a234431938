using System.Text;
using FluentAssertions;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.School.Connector;
using Xunit;

namespace IMikelGo.School.Tests;

/// <summary>The school connector end to end: SQLite store, real relay over pinned HTTPS, real teacher devices.</summary>
public sealed class SchoolConnectorTests
{
    private const string Data = "data/xhstt/ES-SS-08-SpainSchool.xml";
    private static readonly DateOnly Monday = new(2026, 9, 21);
    private static CancellationToken None => CancellationToken.None;

    [SharedFileFact(Data)]
    public async Task Import_license_enroll_publish_sync_absence_report_end_to_end()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        var published = await school.PublishAsync(null, None);
        published.Accounts.Should().Be(66);
        await world.StartRelayAsync(school.Accounts);

        var teacher = TeacherWithLessons(school);
        var license = await school.IssueLicenseAsync(teacher, None);
        license.Uri.ToString().Should().StartWith("imikelgo://enroll?relay=");
        license.QrSvg().Should().Contain("<svg");
        var device = await world.EnrolledDeviceAsync("phone", license);

        (await school.SyncAsync(null, null, None)).Failures.Should().BeEmpty();
        var first = await device.SyncAsync(null, None);
        first.Refused.Should().BeEmpty();
        device.Week(Monday).Select(l => l.Occurrence).Should().BeEquivalentTo(SchoolWeek(school, teacher), "the device sees exactly its teacher's lessons");
        device.Week(Monday).Should().NotBeEmpty();

        var lesson = device.Week(Monday).First(l => l.Students.Count > 0);
        (await device.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, false, "ill", None)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, None);
        (await school.SyncAsync(teacher, null, None)).EventsReceived.Should().BeGreaterThanOrEqualTo(1);

        var report = school.Report();
        report.Absences.Should().ContainSingle(a => a.Account == teacher.Value && a.Student == lesson.Students[0].Id.Value && a.Absences == 1);
        school.Devices().Should().ContainSingle(d => d.Account == teacher && d.Device == device.DeviceId && d.HasEncryptionKey && d.LastContact != null);

        // The store survives the connector: reopened, the absence is still in the report, nothing is pending.
        school = await world.ReopenAsync();
        school.Report().Absences.Should().ContainSingle(a => a.Account == teacher.Value);
        (await school.SyncAsync(teacher, null, None)).EventsSent.Should().Be(0);
    }

    [SharedFileFact(Data)]
    public async Task Relay_down_during_a_publish_delays_but_everything_arrives_once()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var teacher = TeacherWithLessons(school);
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(teacher, None));

        await world.StopRelayAsync();
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[1], None);
        var diff = await school.PublishAsync(null, XhsttImportTests.TermStart, None);
        diff.Rescheduled.Should().BeGreaterThan(0);
        var down = await school.SyncAsync(teacher, null, None);
        down.Failures.Should().NotBeEmpty("the relay is down");
        (await school.SyncAsync(teacher, null, None)).Failures.Should().NotBeEmpty();

        await world.StartRelayAsync(school.Accounts);
        var up = await school.SyncAsync(teacher, null, None);
        up.Failures.Should().BeEmpty();
        var result = await device.SyncAsync(null, None);
        result.Refused.Should().BeEmpty();
        result.Details!.DuplicateEvents.Should().Be(0, "every event arrives once");
        device.Week(Monday).Select(l => (l.Occurrence, l.Date, l.Start)).Should().BeEquivalentTo(
            school.ReplicaOf(teacher)!.Calendar.Lessons().Where(l => l.Date >= Monday && l.Date < Monday.AddDays(7))
                .Select(l => (l.Occurrence, l.Date, TimeOnly.FromTimeSpan(TimeSpan.FromMinutes(l.StartMinute)))));
        await AssertDistinctBundlesAsync(world, teacher);
    }

    [SharedFileFact(Data)]
    public async Task Connector_killed_mid_publish_and_restarted_sends_everything_once()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var teacher = TeacherWithLessons(school);
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(teacher, None));

        CrashAfterPush? crash = null;
        var crashing = new SchoolConnectorSettings
        {
            Pbkdf2Iterations = world.Options.Pbkdf2Iterations,
            RelayAddress = world.Options.RelayAddress,
            RelayCertificateSha256 = world.Options.RelayCertificateSha256,
            ConfigureRelay = world.Options.ConfigureRelay,
            WrapRelayClient = c => crash = new CrashAfterPush(c),
        };
        school = await world.ReopenAsync(crashing);
        await ((Func<Task>)(() => school.SyncAsync(teacher, null, None))).Should().ThrowAsync<InvalidOperationException>();
        crash!.Crashed.Should().BeTrue();

        school = await world.ReopenAsync();
        var resumed = await school.SyncAsync(teacher, null, None);
        resumed.Failures.Should().BeEmpty();
        resumed.DuplicatePushes.Should().BeGreaterThanOrEqualTo(1, "the stored outgoing bundle is re-sent under the same id");
        var result = await device.SyncAsync(null, None);
        result.Details!.DuplicateEvents.Should().Be(0);
        device.Week(Monday).Select(l => l.Occurrence).Should().BeEquivalentTo(SchoolWeek(school, teacher));
        await AssertDistinctBundlesAsync(world, teacher);
    }

    [SharedFileFact(Data)]
    public async Task Wipe_revokes_in_the_log_and_at_the_relay_and_the_device_wipes()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var teacher = TeacherWithLessons(school);
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(teacher, None));
        await school.SyncAsync(teacher, null, None);
        await device.SyncAsync(null, None);

        (await school.WipeAsync(teacher, device.DeviceId, "lost phone", None)).Revoked.Should().Equal(device.DeviceId!.Value);
        school.Devices().Should().ContainSingle(d => d.Device == device.DeviceId && d.Revoked && d.RevocationReason == "lost phone");
        (await device.SyncAsync(null, None)).Wiped.Should().BeTrue();
    }

    [SharedFileFact(Data)]
    public async Task Two_devices_of_one_teacher_and_one_of_another_enroll_through_the_relay_and_converge()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        await school.ImportFileAsync(Repo.SpainSchoolPath, XhsttImportTests.Solutions[0], None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        await school.PublishCertificatesAsync(None);
        var withLessons = school.Accounts.Where(a => school.ReplicaOf(a)!.Ledger.Applied.Any(e => e.Account == a && e.Payload is SeriesPublished p && p.Students.Length > 0)).ToList();
        var (anna, ben) = (withLessons[0], withLessons[1]);
        var annaLicense = await school.IssueLicenseAsync(anna, None);
        annaLicense.Uri.RelayPin.Should().Be(world.Options.RelayCertificateSha256, "the enrollment code pins the relay");
        var benLicense = await school.IssueLicenseAsync(ben, None);
        var folder = Directory.CreateTempSubdirectory("imikelgo-school-relay-enroll-").FullName;
        var devices = new List<TeacherDevice>();
        var held = new List<byte[]>();
        try
        {
            var phone = await EnrollThroughRelayAsync(world, school, folder, "phone", annaLicense, devices, held);
            var laptop = await EnrollThroughRelayAsync(world, school, folder, "laptop", annaLicense, devices, held);
            var tablet = await EnrollThroughRelayAsync(world, school, folder, "tablet", benLicense, devices, held);
            phone.Account.Should().Be(anna.Value);
            laptop.Account.Should().Be(anna.Value);
            tablet.Account.Should().Be(ben.Value, "the enrollment caller's answer confirms a device in any account of the school");
            (await world.Mailboxes.GetCallerAsync(tablet.DeviceId!.Value.Value, None))!.Account.Should().Be(ben.Value);
            (await world.Mailboxes.GetCallerAsync(laptop.DeviceId!.Value.Value, None))!.Account.Should().Be(anna.Value);
            school.Devices().Where(d => d.Account == anna).Select(d => d.Device).Should().BeEquivalentTo([phone.DeviceId!.Value, laptop.DeviceId!.Value]);

            // Each device's label travelled sealed with the password: the school lists it, the relay never held it.
            school.Devices().Select(d => (d.Device, d.Label)).Should().BeEquivalentTo(
                [(phone.DeviceId!.Value, "Müller phone"), (laptop.DeviceId!.Value, "Müller laptop"), (tablet.DeviceId!.Value, "Müller tablet")]);
            held.DistinctBy(Convert.ToBase64String).Should().HaveCount(3, "each device's request was seen at the relay");
            held.Should().OnlyContain(r => !Encoding.UTF8.GetString(r).Contains("ller", StringComparison.Ordinal), "the relay holds the requests sealed");
            school.Devices().Should().OnlyContain(d => d.HasEncryptionKey);

            // The laptop learned the phone's key from its answer: its absence reaches the phone, which has never synced.
            (await school.SyncAsync(null, null, None)).Failures.Should().BeEmpty();
            (await laptop.SyncAsync(null, None)).Refused.Should().BeEmpty();
            var lesson = laptop.Week(Monday).First(l => l.Students.Count > 0);
            (await laptop.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, true, "ill", None)).Succeeded.Should().BeTrue();
            await laptop.SyncAsync(null, None);
            (await phone.SyncAsync(null, None)).Refused.Should().BeEmpty();
            phone.Week(Monday).Single(l => l.Occurrence == lesson.Occurrence).Students.Single(s => s.Id == lesson.Students[0].Id).Absent.Should().BeTrue();

            for (var round = 0; round < 3; round++)
            {
                (await school.SyncAsync(null, null, None)).Failures.Should().BeEmpty();
                foreach (var device in devices)
                {
                    (await device.SyncAsync(null, None)).Refused.Should().BeEmpty();
                }
            }

            phone.Digest.Should().NotBeNull().And.Be(laptop.Digest).And.Be(school.ReplicaOf(anna)!.Calendar.Digest());
            tablet.Digest.Should().Be(school.ReplicaOf(ben)!.Calendar.Digest());
            tablet.Week(Monday).Select(l => l.Occurrence).Should().BeEquivalentTo(SchoolWeek(school, ben));

            // The same facts recorded offline on both of anna's devices: the report counts the merged state, once.
            var before = school.Report();
            var other = phone.Week(Monday).First(l => l.Students.Count > 0 && l.Occurrence != lesson.Occurrence);
            var student = other.Students[0].Id;
            foreach (var device in new[] { phone, laptop })
            {
                (await device.CancelAsync(other.Occurrence, CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
                (await device.RecordAbsenceAsync(other.Occurrence, student, false, null, None)).Succeeded.Should().BeTrue();
            }

            for (var round = 0; round < 2; round++)
            {
                foreach (var device in devices)
                {
                    await device.SyncAsync(null, None);
                }

                (await school.SyncAsync(null, null, None)).Failures.Should().BeEmpty();
            }

            phone.Digest.Should().Be(laptop.Digest).And.Be(school.ReplicaOf(anna)!.Calendar.Digest());
            var after = school.Report();
            var month = other.Occurrence.Date.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);
            int Cancelled(SchoolReport r) => r.Cancellations.SingleOrDefault(c => c.Account == anna.Value && c.Month == month)?.Cancellations ?? 0;
            int Absences(SchoolReport r) => r.Absences.SingleOrDefault(a => a.Account == anna.Value && a.Student == student.Value)?.Absences ?? 0;
            Cancelled(after).Should().Be(Cancelled(before) + 1, "two devices cancelling the same lesson is one cancellation to bill");
            Absences(after).Should().Be(Absences(before) + 1, "one absence, recorded twice");
            school.ReplicaOf(anna)!.Ledger.Applied.Count(e => e.Payload is LessonCancelled c && c.Occurrence == other.Occurrence).Should().Be(2, "both events are kept on record");
        }
        finally
        {
            foreach (var device in devices)
            {
                await device.DisposeAsync();
            }

            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_new_timetable_version_leaves_the_past_and_a_teachers_cancellation_as_they_are_so_payroll_keeps_it()
    {
        await using var world = new ConnectorWorld();
        var (school, device, json) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");

        // Anna cancels two Monday piano lessons, one before and one after the new version's effective date.
        var piano = new SeriesId("piano-anna-1");
        var past = new OccurrenceId(piano, new DateOnly(2026, 9, 21));
        var future = new OccurrenceId(piano, new DateOnly(2026, 10, 5));
        (await device.CancelAsync(past, CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
        (await device.CancelAsync(future, CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, None);
        await school.SyncAsync(anna, null, None);
        var before = school.Report().Cancellations.Where(c => c.Account == "anna").ToDictionary(c => c.Month, c => c.Cancellations);
        before.Should().BeEquivalentTo(new Dictionary<string, int> { ["2026-09"] = 1, ["2026-10"] = 1 });

        // Offline, Anna also cancels 19 Oct; the school does not know yet when it moves piano from Monday to Thursday
        // from Tuesday 29 Sep on (concurrent with its reschedule of that lesson: the teacher's cancel wins).
        var concurrent = new OccurrenceId(piano, new DateOnly(2026, 10, 19));
        (await device.CancelAsync(concurrent, CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
        await school.ImportAsync("json", json.Replace("\"weekday\": \"monday\"", "\"weekday\": \"thursday\"", StringComparison.Ordinal), null, None);
        var diff = await school.PublishAsync(null, new DateOnly(2026, 9, 29), None);
        diff.EffectiveFrom.Should().Be(new DateOnly(2026, 9, 29));
        diff.KeptBeforeEffective.Should().Be(3, "Mondays 14, 21 and 28 Sep lie before the effective date");
        diff.KeptDecided.Should().Be(1, "Anna cancelled 5 Oct");
        diff.Rescheduled.Should().Be(9);

        // Payroll and make-ups owed keep the cancellations; the device shows the rest of the term on Thursdays.
        school.Report().Cancellations.Where(c => c.Account == "anna").ToDictionary(c => c.Month, c => c.Cancellations).Should().BeEquivalentTo(before);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await device.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        school.Report().Cancellations.Where(c => c.Account == "anna").ToDictionary(c => c.Month, c => c.Cancellations).Should()
            .BeEquivalentTo(new Dictionary<string, int> { ["2026-09"] = 1, ["2026-10"] = 2 }, "the cancellation concurrent with the reschedule counts too");
        device.Week(new DateOnly(2026, 10, 19)).Should().Contain(l => l.Occurrence == concurrent && l.Status == Engine.Merge.LessonStatus.Cancelled);
        device.Conflicts().Should().Contain(c => c.Occurrence == concurrent && c.Rule == Engine.Merge.MergeRules.CancelBeatsReschedule);
        var week = device.Week(new DateOnly(2026, 10, 12));
        week.Should().Contain(l => l.Occurrence == new OccurrenceId(piano, new DateOnly(2026, 10, 12)) && l.Date == new DateOnly(2026, 10, 15));
        device.Week(new DateOnly(2026, 10, 5)).Should().Contain(l => l.Occurrence == future && l.Status == Engine.Merge.LessonStatus.Cancelled);
        device.Week(new DateOnly(2026, 9, 21)).Should().Contain(l => l.Occurrence == past && l.Date == past.Date && l.Status == Engine.Merge.LessonStatus.Cancelled);
    }

    [Fact]
    public async Task A_teachers_decisions_after_the_effective_date_carry_over_when_a_changed_lesson_continues_as_a_new_series()
    {
        await using var world = new ConnectorWorld();
        var (school, device, json) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");

        // Anna cancels Monday 5 Oct and moves Monday 12 Oct to Tuesday 13 Oct, 18:00 in room 102.
        var piano = new SeriesId("piano-anna-1");
        var cancelled = new OccurrenceId(piano, new DateOnly(2026, 10, 5));
        var moved = new OccurrenceId(piano, new DateOnly(2026, 10, 12));
        (await device.CancelAsync(cancelled, CancellationReason.TeacherIll, true, "fever", None)).Succeeded.Should().BeTrue();
        (await device.MoveAsync(moved, new DateOnly(2026, 10, 13), new TimeOnly(18, 0), 45, new RoomId("r102"), None)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, None);
        await school.SyncAsync(anna, null, None);
        var payroll = school.Report().Cancellations.Where(c => c.Account == "anna").ToDictionary(c => c.Month, c => c.Cancellations);
        payroll.Should().BeEquivalentTo(new Dictionary<string, int> { ["2026-10"] = 1 });

        // Max leaves ensemble A from Tuesday 29 Sep on: piano continues as piano-anna-1.2 with Lea alone.
        await school.ImportAsync("json", WithoutMax(json), null, None);
        var diff = await school.PublishAsync(null, new DateOnly(2026, 9, 29), None);
        diff.ByType.Should().ContainKey("SeriesPublished");
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await device.SyncAsync(null, None);

        school.Report().Cancellations.Where(c => c.Account == "anna").ToDictionary(c => c.Month, c => c.Cancellations).Should()
            .BeEquivalentTo(payroll, "the teacher's cancellation still counts, once");
        var mondayFive = device.Week(new DateOnly(2026, 10, 5)).Where(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).ToList();
        mondayFive.Should().ContainSingle("one piano lesson that week").Which.Should().Match<WeekLesson>(
            l => l.Status == Engine.Merge.LessonStatus.Cancelled && l.CancellationReason == CancellationReason.TeacherIll && l.MakeUpOwed,
            "the new series' lesson of 5 Oct is cancelled as Anna cancelled it");
        var weekTwelve = device.Week(new DateOnly(2026, 10, 12)).Where(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).ToList();
        weekTwelve.Should().ContainSingle("one piano lesson that week").Which.Should().Match<WeekLesson>(
            l => l.Date == new DateOnly(2026, 10, 13) && l.Start == new TimeOnly(18, 0) && l.Room == new RoomId("r102") && l.Occurrence.Series.Value == "piano-anna-1.2",
            "the new series' lesson of 12 Oct is where Anna moved it");
        weekTwelve[0].Students.Select(s => s.Id.Value).Should().Equal(["lea"]);
    }

    [Fact]
    public async Task Records_made_offline_on_lessons_that_continued_as_a_new_series_meanwhile_are_carried_over_when_they_arrive()
    {
        await using var world = new ConnectorWorld();
        var (school, device, json) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");

        // Offline, Anna cancels Monday 12 Oct and records Lea and Max absent on 5 Oct.
        var piano = new SeriesId("piano-anna-1");
        var fifth = new OccurrenceId(piano, new DateOnly(2026, 10, 5));
        (await device.CancelAsync(new OccurrenceId(piano, new DateOnly(2026, 10, 12)), CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
        (await device.RecordAbsenceAsync(fifth, new StudentId("lea"), true, "ill", None)).Succeeded.Should().BeTrue();
        (await device.RecordAbsenceAsync(fifth, new StudentId("max"), false, null, None)).Succeeded.Should().BeTrue();

        // Meanwhile Max leaves ensemble A from 1 Oct: piano continues as piano-anna-1.2; the connector restarts.
        await school.ImportAsync("json", WithoutMax(json), null, None);
        await school.PublishAsync(null, new DateOnly(2026, 10, 1), None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        school = await world.ReopenAsync();

        await device.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).EventsReceived.Should().Be(3);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await device.SyncAsync(null, None);

        school.Report().Cancellations.Should().ContainSingle(c => c.Account == "anna").Which.Should().Match<TeacherMonthLine>(c => c.Month == "2026-10" && c.Cancellations == 1);
        var next = new SeriesId("piano-anna-1.2");
        device.Week(new DateOnly(2026, 10, 12)).Where(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).Should()
            .ContainSingle().Which.Should().Match<WeekLesson>(l => l.Occurrence == new OccurrenceId(next, new DateOnly(2026, 10, 12)) && l.Status == Engine.Merge.LessonStatus.Cancelled);
        device.Week(new DateOnly(2026, 10, 5)).Where(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).Should()
            .ContainSingle().Which.Students.Should().ContainSingle().Which.Should().Be(new LessonStudent(new StudentId("lea"), "Lea M.", true),
                "Lea's absence is carried over; Max no longer belongs to the lesson");

        // Carried once: a further sync sends and receives nothing new.
        (await school.SyncAsync(anna, null, None)).Should().Match<SchoolSyncResult>(r => r.EventsSent == 0 && r.EventsReceived == 0);
    }

    [Fact]
    public async Task A_record_whose_continued_lesson_was_withdrawn_meanwhile_does_not_stop_the_others_from_being_carried_over()
    {
        await using var world = new ConnectorWorld();
        var (school, device, json) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");

        // Offline, Anna cancels piano on Monday 12 Oct and records Lea absent in theory on Tuesday 6 Oct.
        (await device.CancelAsync(new OccurrenceId(new SeriesId("piano-anna-1"), new DateOnly(2026, 10, 12)), CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
        (await device.RecordAbsenceAsync(new OccurrenceId(new SeriesId("theory-1"), new DateOnly(2026, 10, 6)), new StudentId("lea"), true, "ill", None)).Succeeded.Should().BeTrue();

        // Meanwhile Max leaves ensemble A from 1 Oct (piano and theory continue as new series), then a correction with the
        // same effective date drops piano altogether: piano-anna-1.2 is withdrawn.
        var withoutMax = WithoutMax(json);
        await school.ImportAsync("json", withoutMax, null, None);
        await school.PublishAsync(null, new DateOnly(2026, 10, 1), None);
        var withoutPiano = string.Join('\n', withoutMax.Split('\n').Where(l => !l.Contains("\"piano-anna-1\"", StringComparison.Ordinal)));
        await school.ImportAsync("json", withoutPiano, null, None);
        (await school.PublishAsync(null, new DateOnly(2026, 10, 1), None)).ByType.Should().ContainKey("SeriesWithdrawn");
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();

        // The cancellation has no lesson left to land on; Lea's absence is carried to theory-1.2 all the same.
        await device.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await device.SyncAsync(null, None);
        device.Week(new DateOnly(2026, 10, 5)).Should().ContainSingle(l => l.Occurrence.Series.Value.StartsWith("theory-1", StringComparison.Ordinal))
            .Which.Should().Match<WeekLesson>(l => l.Occurrence == new OccurrenceId(new SeriesId("theory-1.2"), new DateOnly(2026, 10, 6)) &&
                l.Students.Any(s => s.Id == new StudentId("lea") && s.Absent == true));
        device.Digest.Should().Be(school.ReplicaOf(anna)!.Calendar.Digest());
    }

    [Fact]
    public async Task A_teachers_cancellation_carried_to_a_continued_lesson_is_carried_on_when_it_continues_again()
    {
        await using var world = new ConnectorWorld();
        var (school, device, json) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");
        (await device.CancelAsync(new OccurrenceId(new SeriesId("piano-anna-1"), new DateOnly(2026, 10, 12)), CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
        await device.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();

        // Max leaves from 1 Oct (piano-anna-1.2 gets Anna's cancellation of 12 Oct), then piano is renamed from 5 Oct.
        var withoutMax = WithoutMax(json);
        await school.ImportAsync("json", withoutMax, null, None);
        await school.PublishAsync(null, new DateOnly(2026, 10, 1), None);
        await school.ImportAsync("json", withoutMax.Replace("\"subject\": \"Klavier\"", "\"subject\": \"Klavierensemble\"", StringComparison.Ordinal), null, None);
        await school.PublishAsync(null, new DateOnly(2026, 10, 5), None);
        school.Report().Cancellations.Should().ContainSingle(c => c.Account == "anna").Which.Cancellations.Should().Be(1, "payroll keeps the cancellation");
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await device.SyncAsync(null, None);
        device.Week(new DateOnly(2026, 10, 12)).Should().ContainSingle(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal))
            .Which.Should().Match<WeekLesson>(l => l.Occurrence.Series.Value == "piano-anna-1.2.2" && l.Status == Engine.Merge.LessonStatus.Cancelled);
    }

    [Fact]
    public async Task A_device_enrolled_after_another_recorded_changes_gets_the_whole_history_and_both_exchange_from_then_on()
    {
        await using var world = new ConnectorWorld();
        var (school, phone, _) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");
        var monday = phone.Week(new DateOnly(2026, 10, 5)).First(l => l.Students.Count > 0);
        var tuesday = phone.Week(new DateOnly(2026, 10, 5)).First(l => l.Students.Count > 0 && l.Date != monday.Date);
        (await phone.RecordAbsenceAsync(monday.Occurrence, monday.Students[0].Id, true, "ill", None)).Succeeded.Should().BeTrue();
        await phone.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();

        // A laptop joins later: it depends on the phone's events (the school's enrollment of it came after them).
        var laptop = await world.EnrolledDeviceAsync("laptop", await school.IssueLicenseAsync(anna, None));
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await laptop.SyncAsync(null, None);
        laptop.Week(monday.Date).Single(l => l.Occurrence == monday.Occurrence).Students.Should().Contain(s => s.Id == monday.Students[0].Id && s.Absent == true,
            "the phone's absence recorded before the laptop existed reaches it");

        // From then on the two devices exchange their own changes.
        (await laptop.RecordAbsenceAsync(tuesday.Occurrence, tuesday.Students[0].Id, false, null, None)).Succeeded.Should().BeTrue();
        await laptop.SyncAsync(null, None);
        await phone.SyncAsync(null, None);
        await phone.SyncAsync(null, None);
        phone.Week(tuesday.Date).Single(l => l.Occurrence == tuesday.Occurrence).Students.Should().Contain(s => s.Id == tuesday.Students[0].Id && s.Absent == false);
        var other = tuesday.Students[^1].Id;
        (await phone.RecordAbsenceAsync(tuesday.Occurrence, other, true, null, None)).Succeeded.Should().BeTrue();
        await phone.SyncAsync(null, None);
        await laptop.SyncAsync(null, None);
        laptop.Week(tuesday.Date).Single(l => l.Occurrence == tuesday.Occurrence).Students.Should().Contain(s => s.Id == other && s.Absent == true);

        // A tablet joins after both recorded changes: the school forwards both chains, and all three converge.
        (await laptop.CancelAsync(monday.Occurrence, CancellationReason.TeacherIll, true, null, None)).Succeeded.Should().BeTrue();
        await laptop.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        var tablet = await world.EnrolledDeviceAsync("tablet", await school.IssueLicenseAsync(anna, None));
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await tablet.SyncAsync(null, None);
        foreach (var device in new[] { phone, laptop, tablet, phone, laptop, tablet })
        {
            await device.SyncAsync(null, None);
        }

        var weeks = new[] { phone, laptop, tablet }.Select(d => d.Week(monday.Date).Select(l => (l.Occurrence, l.Status, Absent: string.Join(",", l.Students.Select(x => $"{x.Id.Value}={x.Absent}")))).ToList()).ToList();
        weeks[1].Should().Equal(weeks[0]);
        weeks[2].Should().Equal(weeks[0], "the tablet that joined last holds what both others recorded");
        weeks[2].Should().Contain(l => l.Occurrence == monday.Occurrence && l.Status == Engine.Merge.LessonStatus.Cancelled);
        tablet.Devices().Should().HaveCount(3);
    }

    [Fact]
    public async Task A_device_enrolled_while_the_last_announcement_bundle_waits_to_be_sent_again_still_gets_the_whole_history()
    {
        await using var world = new ConnectorWorld();
        var relay = new LosePushes.Switch();
        world.Options.WrapRelayClient = c => new LosePushes(c, relay);
        var (school, phone, _) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");
        var lesson = phone.Week(new DateOnly(2026, 10, 5)).First(l => l.Students.Count > 0);
        (await phone.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, true, "ill", None)).Succeeded.Should().BeTrue();
        await phone.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();

        // The announcement to a laptop is lost on the way (its bundle stays the connector's outgoing one) ...
        var laptop = await world.EnrolledDeviceAsync("laptop", await school.IssueLicenseAsync(anna, None));
        relay.Lose = true;
        (await school.SyncAsync(anna, null, None)).Failures.Should().NotBeEmpty();
        relay.Lose = false;

        // ... and a tablet is enrolled before it is sent again: that bundle was sealed without the tablet's key.
        var tablet = await world.EnrolledDeviceAsync("tablet", await school.IssueLicenseAsync(anna, None));
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        foreach (var device in new[] { laptop, tablet, phone, laptop, tablet })
        {
            await device.SyncAsync(null, None);
            (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        }

        tablet.Week(lesson.Date).Single(l => l.Occurrence == lesson.Occurrence).Students.Should().Contain(s => s.Id == lesson.Students[0].Id && s.Absent == true,
            "the school announces the account's log to the tablet too");
        tablet.Devices().Should().HaveCount(3);
    }

    [Fact]
    public async Task The_school_refuses_a_device_bundle_that_forwards_a_revoked_devices_events_behind_a_fake_account_opened()
    {
        await using var world = new ConnectorWorld();
        var (school, phone, _) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");
        var lesson = phone.Week(new DateOnly(2026, 10, 5)).First(l => l.Students.Count > 0);

        // A second device, enrolled, then revoked (stolen): the relay refuses its pushes from now on.
        using var stolenKey = ReplicaKey.Create();
        using var stolenHpke = IMikelGo.Sealing.EncryptionKeyPair.Generate();
        var license = await school.IssueLicenseAsync(anna, None);
        await school.EnrollDirectAsync(new DirectEnrollment(license.License.Value, license.Password, stolenKey.PublicKey, stolenHpke.PublicKey, "stolen"), None);
        var stolen = new Replica(anna, stolenKey);
        stolen.Receive(school.ReplicaOf(anna)!.Ledger.Export(anna)).Refused.Should().BeEmpty();
        await school.WipeAsync(anna, stolenKey.Replica, "stolen", None);
        var written = stolen.Record(new StudentAbsent(lesson.Occurrence, lesson.Students[0].Id, false, "forged"));
        written.Succeeded.Should().BeTrue();

        // Another device of the account (any relay caller; its push is stored under its own id) passes the revoked
        // device's event on, behind an account.opened of its own so that the bundle looks like the school's forwarding.
        using var forwarderKey = ReplicaKey.Create();
        var opened = new Replica(anna, forwarderKey).Record(new AccountOpened("fake", "fake", forwarderKey.PublicKey));
        opened.Succeeded.Should().BeTrue();
        var schoolKey = school.ReplicaOf(anna)!.Ledger.RecipientKeys(anna)[school.ReplicaOf(anna)!.Id];
        IMikelGo.Sealing.RecipientPublicKey.TryParse(schoolKey.AsSpan(), out var recipient, out _).Should().BeTrue();
        var bundle = IMikelGo.Engine.Sync.EventBundles.Seal(forwarderKey.Replica, [opened.Event!, written.Event!], [recipient!]);
        await world.Mailboxes.AppendAsync(anna.Value, bundle.BundleId, forwarderKey.Replica.Value, bundle.Bytes, None);

        await school.SyncAsync(anna, null, None);
        school.ReplicaOf(anna)!.Ledger.Find(anna, stolenKey.Replica, written.Event!.Event.Seq).Should()
            .BeNull("only the school forwards other authors' events; to the school itself, nobody does");
    }

    [Fact]
    public async Task A_new_device_still_takes_the_schools_forwarding_after_a_bundle_with_a_forged_account_opened_came_first()
    {
        await using var world = new ConnectorWorld();
        var (school, phone, _) = await PublishedWithAnnasPhoneAsync(world);
        var anna = new AccountId("anna");
        var lesson = phone.Week(new DateOnly(2026, 10, 5)).First(l => l.Students.Count > 0);
        (await phone.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, true, "ill", None)).Succeeded.Should().BeTrue();
        await phone.SyncAsync(null, None);
        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();

        // Before the school announces the log to a new laptop, another sender seals it a bundle with an account.opened of
        // its own. Its id sorts after the school's, so the laptop's ledger keeps the real school (the ledger's choice is
        // not what this test is about).
        IMikelGo.Sealing.RecipientPublicKey? laptopKey = null;
        var laptop = await world.EnrolledDeviceAsync("laptop", await school.IssueLicenseAsync(anna, None), r => laptopKey = r.EncryptionKey);
        var schoolId = school.ReplicaOf(anna)!.Id;
        ReplicaKey forger;
        while ((forger = ReplicaKey.Create()).Replica.CompareTo(schoolId) < 0)
        {
            forger.Dispose();
        }

        using (forger)
        {
            var opened = new Replica(anna, forger).Record(new AccountOpened("fake", "fake", forger.PublicKey));
            var bundle = IMikelGo.Engine.Sync.EventBundles.Seal(forger.Replica, [opened.Event!], [laptopKey!]);
            await world.Mailboxes.AppendAsync(anna.Value, bundle.BundleId, forger.Replica.Value, bundle.Bytes, None);
        }

        (await school.SyncAsync(anna, null, None)).Failures.Should().BeEmpty();
        await laptop.SyncAsync(null, None);
        await laptop.SyncAsync(null, None);
        laptop.Week(lesson.Date).Single(l => l.Occurrence == lesson.Occurrence).Students.Should().Contain(s => s.Id == lesson.Students[0].Id && s.Absent == true,
            "the school's bundles forwarding the phone's chain are not refused for the forger's sake");
    }

    [Fact]
    public async Task A_term_longer_than_a_school_year_is_refused_at_import_and_nothing_is_kept()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("musikschule");
        var json = Json.DocBlock("json");
        var act = () => school.ImportAsync("json", json.Replace("\"end\": \"2026-12-18\"", "\"end\": \"9999-12-18\"", StringComparison.Ordinal), null, None);
        (await act.Should().ThrowAsync<IMikelGo.School.Model.SchoolImportException>()).Which.Message.Should()
            .Contain("term").And.Contain("2026-09-14 to 9999-12-18").And.Contain("at most one school year (400 days)");
        (await world.Store!.ImportsAsync(None)).Should().BeEmpty("nothing of the refused import is kept");
        school.PendingTimetable.Should().BeNull();

        // A school year of 400 days is accepted.
        await school.ImportAsync("json", json.Replace("\"end\": \"2026-12-18\"", "\"end\": \"2027-10-18\"", StringComparison.Ordinal), null, None);
    }

    [Fact]
    public async Task A_connector_reopened_on_another_day_diffs_against_the_versions_it_published_with_their_effective_dates()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("musikschule");
        var json = Json.DocBlock("json");
        await school.ImportAsync("json", json, null, None);
        await school.PublishAsync(null, None);

        // Max leaves ensemble A from 1 Oct: piano continues as piano-anna-1.2.
        var withoutMax = WithoutMax(json);
        await school.ImportAsync("json", withoutMax, null, None);
        await school.PublishAsync(null, new DateOnly(2026, 10, 1), None);

        // Restarted (the replay of the imports must use the dates they were published with, not the day of the restart),
        // then the piano lesson is renamed from 2 Nov: piano-anna-1.2 ends on 1 Nov and piano-anna-1.2.2 takes over.
        school = await world.ReopenAsync();
        await school.ImportAsync("json", withoutMax.Replace("\"subject\": \"Klavier\"", "\"subject\": \"Klavierensemble\"", StringComparison.Ordinal), null, None);
        await school.PublishAsync(null, new DateOnly(2026, 11, 2), None);

        var anna = new Replica(new AccountId("anna"), ReplicaKey.Create());
        anna.Ledger.IngestLines((await world.Store!.ReadEventsAsync(None)).Where(e => e.Account == "anna").Select(e => e.Line)).Refused.Should().BeEmpty();
        var piano = anna.Calendar.Lessons().Where(l => l.Occurrence.Series.Value.StartsWith("piano-anna-1", StringComparison.Ordinal)).OrderBy(l => l.Date).ToList();
        var mondays = Enumerable.Range(0, 14).Select(w => new DateOnly(2026, 9, 14).AddDays(7 * w)).Where(d => d != new DateOnly(2026, 10, 26)).ToList();
        piano.Select(l => l.Date).Should().Equal(mondays, "every Monday of the term has exactly one piano lesson (26 Oct is a holiday)");
        piano.Should().OnlyContain(l => l.Occurrence.Series.Value == (l.Date < new DateOnly(2026, 10, 1) ? "piano-anna-1" : l.Date < new DateOnly(2026, 11, 2) ? "piano-anna-1.2" : "piano-anna-1.2.2"),
            "each version holds the weeks from its effective date to the next one");
        piano.Should().OnlyContain(l => l.Subject == (l.Date < new DateOnly(2026, 11, 2) ? "Klavier" : "Klavierensemble"));
    }

    /// <summary>The documented JSON school with Max gone from ensemble A (its lessons continue as new series).</summary>
    private static string WithoutMax(string json) => json.Replace(", { \"id\": \"max\", \"name\": \"Max K.\" }", "", StringComparison.Ordinal);

    /// <summary>The documented JSON school published through the relay, and a phone of Anna's enrolled and synced.</summary>
    private static async Task<(SchoolConnector School, TeacherDevice Device, string Json)> PublishedWithAnnasPhoneAsync(ConnectorWorld world)
    {
        var school = await world.InitAsync("musikschule");
        var json = Json.DocBlock("json");
        await school.ImportAsync("json", json, null, None);
        await school.PublishAsync(null, None);
        await world.StartRelayAsync(school.Accounts);
        var device = await world.EnrolledDeviceAsync("phone", await school.IssueLicenseAsync(new AccountId("anna"), None));
        (await school.SyncAsync(null, null, None)).Failures.Should().BeEmpty();
        await device.SyncAsync(null, None);
        return (school, device, json);
    }

    /// <summary>A device on its default channel (the relay hand-off) while the connector answers the enrollment queue.</summary>
    /// <remarks>Collects the requests as the relay holds them into <paramref name="held"/>.</remarks>
    private static async Task<TeacherDevice> EnrollThroughRelayAsync(
        ConnectorWorld world, SchoolConnector school, string folder, string name, IssuedLicense license, List<TeacherDevice> devices, List<byte[]> held)
    {
        var device = await TeacherDevice.OpenAsync(new TeacherDeviceOptions
        {
            DataDirectory = Path.Combine(folder, name),

            // Decomposed "ü" and padding: the device sends the label trimmed and NFC-normalised.
            DeviceLabel = $" Mu\u0308ller {name} ",
            Pbkdf2Iterations = 1000,
            ConfigureRelay = FastRelayRetries.Apply,
            ConfigureRelayEnrollment = o =>
            {
                o.FirstPollDelay = TimeSpan.FromMilliseconds(20);
                o.MaxPollDelay = TimeSpan.FromMilliseconds(200);
                o.Timeout = TimeSpan.FromSeconds(60);
            },
        }, None);
        devices.Add(device);
        var enrolling = device.EnrollAsync(new EnrollmentInput(license.Uri.ToString(), license.License.Value, license.Password, ConnectorWorld.Pin), None);
        var outcomes = new List<EnrollmentOutcome>();
        while (!enrolling.IsCompleted)
        {
            // Answered only once seen: this device's request is the only one submitted meanwhile.
            var pending = await world.Mailboxes.ReadEnrollmentsAsync(school.SchoolId, 0, 100, None);
            held.AddRange(pending.Select(r => r.Request));
            if (pending.Count > 0)
            {
                outcomes.AddRange(await school.ProcessEnrollmentsAsync(None));
            }

            await Task.WhenAny(enrolling, Task.Delay(20));
        }

        var id = await enrolling;
        outcomes.Should().ContainSingle(o => o.Approved && o.Device == id && o.Account == license.Account.Value);
        return device;
    }

    private static AccountId TeacherWithLessons(SchoolConnector school) =>
        school.Accounts.First(a => school.ReplicaOf(a)!.Ledger.Applied.Any(e => e.Account == a && e.Payload is SeriesPublished p && p.Students.Length > 0));

    private static IEnumerable<OccurrenceId> SchoolWeek(SchoolConnector school, AccountId teacher) =>
        school.ReplicaOf(teacher)!.Calendar.Lessons().Where(l => l.Date >= Monday && l.Date < Monday.AddDays(7)).Select(l => l.Occurrence);

    private static async Task AssertDistinctBundlesAsync(ConnectorWorld world, AccountId account)
    {
        var bundles = await world.Mailboxes.ReadAsync(account.Value, 0, 10_000, None);
        bundles.Select(b => b.BundleId).Should().OnlyHaveUniqueItems();
    }
}
