using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Store.Sqlite;

namespace IMikelGo.Device.Tests;

/// <summary>The device facade end to end: two devices of one teacher, the school connector, the real relay over pinned HTTPS.</summary>
public sealed class TeacherDeviceTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task An_absence_recorded_on_device_1_shows_up_on_device_2_after_both_sync()
    {
        await using var world = await World.StartAsync();
        var phone = await world.EnrolledDeviceAsync("phone");
        var laptop = await world.EnrolledDeviceAsync("laptop");
        phone.State.Should().Be(DeviceState.Unlocked);
        await world.ConvergeAsync(phone, laptop);

        phone.Week(World.Thursday(2).Date).Should().HaveCount(2);
        var absent = await phone.RecordAbsenceAsync(World.Thursday(2), World.Lena, excused: true, "krank", None);
        absent.Succeeded.Should().BeTrue(absent.Error);
        (await phone.PendingCountAsync(None)).Should().Be(1);

        var sent = await phone.SyncAsync(null, None);
        sent.Sent.Should().BeGreaterThanOrEqualTo(1);
        (await phone.PendingCountAsync(None)).Should().Be(0);
        var received = await laptop.SyncAsync(null, None);
        received.Received.Should().Be(1);

        var lesson = laptop.Week(World.Thursday(2).Date).Single(l => l.Occurrence == World.Thursday(2));
        lesson.Students.Single().Should().Be(new LessonStudent(World.Lena, "Lena Vogel", true));
        laptop.Devices().Select(d => d.Id).Should().BeEquivalentTo([phone.DeviceId!.Value, laptop.DeviceId!.Value]);
        laptop.Devices().Should().OnlyContain(d => !d.Revoked && d.HasEncryptionKey);
        (await world.SchoolSyncAsync()).EventsReceived.Should().Be(1, "the school receives the absence too");
        world.School.Calendar.Lessons().Single(l => l.Occurrence == World.Thursday(2)).Absent.Should().ContainKey(World.Lena.Value);
    }

    [Fact]
    public async Task Conflicting_edits_on_two_devices_show_the_same_conflict_on_both_and_can_be_resolved()
    {
        await using var world = await World.StartAsync();
        var phone = await world.EnrolledDeviceAsync("phone");
        var laptop = await world.EnrolledDeviceAsync("laptop");
        await world.ConvergeAsync(phone, laptop);

        var thursday = World.Thursday(5);
        (await phone.CancelAsync(thursday, CancellationReason.TeacherIll, makeUpOwed: true, null, None)).Succeeded.Should().BeTrue();
        var move = await laptop.MoveAsync(thursday, thursday.Date.AddDays(1), new TimeOnly(16, 0), 45, new RoomId("raum-103"), None);
        move.Succeeded.Should().BeTrue(move.Error);
        move.Clashes.Should().BeEmpty();

        await phone.SyncAsync(null, None);
        var laptopSync = await laptop.SyncAsync(null, None);
        laptopSync.NewConflicts.Should().Be(1);
        var phoneSync = await phone.SyncAsync(null, None);
        phoneSync.NewConflicts.Should().Be(1);

        var onPhone = phone.Conflicts().Should().ContainSingle().Subject;
        var onLaptop = laptop.Conflicts().Should().ContainSingle().Subject;
        onLaptop.Should().Be(onPhone);
        onPhone.Rule.Should().NotBeNullOrEmpty();
        phone.Week(thursday.Date).Single(l => l.Occurrence == thursday).HasConflict.Should().BeTrue();

        (await phone.ResolveAsync(onPhone, onPhone.Loser, None)).Succeeded.Should().BeTrue();
        await world.ConvergeAsync(phone, laptop);
        var a = phone.Week(thursday.Date).Single(l => l.Occurrence == thursday);
        var b = laptop.Week(thursday.Date).Single(l => l.Occurrence == thursday);
        b.Should().BeEquivalentTo(a);
    }

    [Fact]
    public async Task A_revoked_device_is_wiped_at_its_next_sync_switches_to_demo_mode_and_acknowledges()
    {
        await using var world = await World.StartAsync();
        var phone = await world.EnrolledDeviceAsync("phone");
        var laptop = await world.EnrolledDeviceAsync("laptop");
        await world.ConvergeAsync(phone, laptop);
        var laptopId = laptop.DeviceId!.Value;

        await world.RevokeAsync(laptopId, "device lost");
        var result = await laptop.SyncAsync(null, None);

        result.Wiped.Should().BeTrue();
        laptop.State.Should().Be(DeviceState.Demo);
        laptop.IsDemoMode.Should().BeTrue();
        laptop.LastWipe!.Reason.Should().Be(WipeReason.RemoteDeactivation);
        laptop.Week(DateOnly.FromDateTime(DateTime.Today)).Should().NotBeEmpty("the demo school is shown");
        (await world.Store.HasWipedAsync(World.Account, laptopId.Value, None)).Should().BeTrue("the wipe was acknowledged to the relay");
        await ((Func<Task>)(() => laptop.SyncAsync(null, None))).Should().ThrowAsync<InvalidOperationException>("demo mode never syncs");
        Directory.EnumerateFiles(world.DeviceOptions("laptop").DataDirectory, "vault.db*", SearchOption.AllDirectories).Should().BeEmpty();

        // The other device carries on and sees the revocation in the log.
        await world.SchoolSyncAsync();
        (await phone.SyncAsync(null, None)).Wiped.Should().BeFalse();
        phone.Devices().Single(d => d.Id == laptopId).Revoked.Should().BeTrue();
    }

    [Fact]
    public async Task Three_wrong_PINs_wipe_the_device_into_demo_mode_and_sync_needs_a_new_enrollment()
    {
        await using var world = await World.StartAsync();
        var phone = await world.EnrolledDeviceAsync("phone");
        await world.ConvergeAsync(phone);
        await phone.LockAsync(None);
        phone.State.Should().Be(DeviceState.Locked);

        (await phone.UnlockAsync("0000", None)).Should().Be(new UnlockOutcome(UnlockStatus.WrongPin, 2, DeviceState.Locked));
        (await phone.UnlockAsync("0001", None)).Should().Be(new UnlockOutcome(UnlockStatus.WrongPin, 1, DeviceState.Locked));
        var third = await phone.UnlockAsync("0002", None);

        third.Status.Should().Be(UnlockStatus.Wiped);
        third.State.Should().Be(DeviceState.Demo);
        phone.LastWipe!.Reason.Should().Be(WipeReason.WrongPin);
        (await phone.UnlockAsync(World.Pin, None)).Status.Should().NotBe(UnlockStatus.Unlocked);
        await ((Func<Task>)(() => phone.SyncAsync(null, None))).Should().ThrowAsync<InvalidOperationException>();

        // Re-enrollment with the school credentials brings sync back, under a new device id.
        await ((Func<Task>)(() => world.EnrollAsync(phone, new EnrollmentInput(world.EnrollmentUri, world.License.Value, "wrong", World.Pin))))
            .Should().ThrowAsync<EnrollmentRefusedException>();
        await world.EnrollAsync(phone, new EnrollmentInput(world.EnrollmentUri, world.License.Value, world.Password, World.Pin));
        phone.State.Should().Be(DeviceState.Unlocked);
        await world.ConvergeAsync(phone);
        phone.Week(World.Thursday(1).Date).Should().HaveCount(2);
    }

    [Fact]
    public async Task A_restarted_device_unlocks_with_its_PIN_and_keeps_relay_settings_data_and_sync_position()
    {
        await using var world = await World.StartAsync();
        var phone = await world.EnrolledDeviceAsync("phone");
        await world.ConvergeAsync(phone);
        (await phone.MarkHeldAsync(World.Thursday(0), "Tonleitern", None)).Succeeded.Should().BeTrue();
        await phone.DisposeAsync();

        await using var again = await TeacherDevice.OpenAsync(world.DeviceOptions("phone"), None);
        again.State.Should().Be(DeviceState.Locked);
        (await again.UnlockAsync(World.Pin, None)).Status.Should().Be(UnlockStatus.Unlocked);
        again.Relay.Should().Be(new RelaySettings(world.RelayAddress, world.Fingerprint));
        again.Week(World.Thursday(0).Date).Single(l => l.Occurrence == World.Thursday(0)).Status.Should().Be(LessonStatus.Held);
        var sync = await again.SyncAsync(null, None);
        sync.Received.Should().Be(0);
        sync.Sent.Should().Be(1);
    }

    [Fact]
    public async Task Moving_a_lesson_onto_another_lesson_warns_of_the_clash()
    {
        await using var world = await World.StartAsync();
        var phone = await world.EnrolledDeviceAsync("phone");
        await world.ConvergeAsync(phone);
        var piano = World.Thursday(3);
        var clashes = phone.CheckMove(piano, piano.Date, new TimeOnly(17, 15), 45, new RoomId("raum-102"));
        clashes.Should().ContainSingle().Which.Should().Match<MoveClash>(c => c.Kind == ClashKind.Room && c.Occurrence == World.Thursday(3, World.Violin));
        phone.CheckMove(piano, piano.Date, new TimeOnly(17, 15), 45, new RoomId("raum-109")).Single().Kind.Should().Be(ClashKind.Teacher);
        phone.CheckMove(piano, piano.Date, new TimeOnly(18, 0), 45, new RoomId("raum-102")).Should().BeEmpty();
        var moved = await phone.MoveAsync(piano, piano.Date, new TimeOnly(17, 15), 45, new RoomId("raum-102"), None);
        moved.Succeeded.Should().BeTrue();
        moved.Clashes.Should().HaveCount(1);
    }

    [Fact]
    public async Task Demo_mode_shows_a_demo_school_records_in_memory_and_never_syncs()
    {
        await using var world = await World.StartAsync();
        await using var device = await TeacherDevice.OpenAsync(world.DeviceOptions("fresh"), None);
        device.State.Should().Be(DeviceState.NotEnrolled);
        await device.OpenDemoAsync(None);
        device.State.Should().Be(DeviceState.Demo);
        var lesson = device.Week(DateOnly.FromDateTime(DateTime.Today)).First();
        (await device.MarkHeldAsync(lesson.Occurrence, "Demo", None)).Succeeded.Should().BeTrue();
        await ((Func<Task>)(() => device.SyncAsync(null, None))).Should().ThrowAsync<InvalidOperationException>();
        await ((Func<Task>)(() => device.EnrollAsync(new EnrollmentInput("imikelgo://nope", world.License.Value, world.Password, World.Pin), None)))
            .Should().ThrowAsync<ArgumentException>();
    }
}
