using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Signing;
using IMikelGo.Store.Sqlite.Sync;
using Xunit;

namespace IMikelGo.Store.Sqlite.Tests;

public sealed class DeviceReplicaTests
{
    private const string Marker = "ZZMARKERSTUDENT";

    [Fact]
    public async Task Recorded_facts_survive_a_restart_in_the_vault_and_leave_the_outbox_only_when_acknowledged()
    {
        using var test = new TestVault();
        var account = new AccountId(TestVault.Account.ToLowerInvariant());
        using var schoolKey = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        var series = new SeriesId("violin");
        var occurrence = new OccurrenceId(series, new DateOnly(2026, 12, 7));

        string digest;
        ReplicaId deviceId;
        await using (var vault = await test.EnrolledAsync())
        {
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            deviceId = device.Id;
            school.RecordBatch([
                new AccountOpened("ms", "Anna", schoolKey.PublicKey),
                new StudentEnrolled(new StudentId("s1"), Marker),
                new SeriesPublished(series, "Violin", 1, 900, 45, new RoomId("r1"), [new StudentId("s1")], new DateOnly(2026, 9, 1), new DateOnly(2026, 12, 31)),
                new DeviceEnrolled(device.Id, "laptop", device.PublicKey),
            ]).Error.Should().BeNull();
            (await device.ReceiveAsync(school.Ledger.Export(account), CancellationToken.None)).IsClean.Should().BeTrue();
            (await device.RecordAsync(new StudentAbsent(occurrence, new StudentId("s1"), false, "no word"), CancellationToken.None)).Error.Should().BeNull();
            digest = device.Replica.Calendar.Digest();
            // Seq 1 is the device's own EncryptionKeyPublished (recorded once the log shows it enrolled), seq 2 the absence.
            (await device.PendingAsync(CancellationToken.None)).Select(e => e.Event.Payload.GetType()).Should().Equal(typeof(EncryptionKeyPublished), typeof(StudentAbsent));
            (await vault.Store.GetOutboxForSyncAsync(100, CancellationToken.None)).Should().HaveCount(2)
                .And.OnlyContain(o => o.Event.ReplicaId == device.Id.Value, "the school's events were stored acknowledged when received");
        }

        TestVault.FilesContaining(test.Root, Marker).Should().BeEmpty("lesson content never reaches the disk in plaintext");

        await using (var vault = test.Create())
        {
            await vault.InitializeAsync(CancellationToken.None);
            (await vault.UnlockAsync(TestVault.Pin, CancellationToken.None)).Status.Should().Be(UnlockStatus.Unlocked);
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            device.Id.Should().Be(deviceId, "the signing key is kept in the vault");
            device.Replica.Calendar.Digest().Should().Be(digest);
            device.Replica.Calendar.Lessons().Single(l => l.Occurrence == occurrence).Absent.Should().ContainKey("s1");

            var pending = await device.PendingAsync(CancellationToken.None);
            pending.Should().HaveCount(2);
            (await device.RecordAsync(new LessonHeld(occurrence, "scales"), CancellationToken.None)).Event!.Event.Seq.Should().Be(3, "the chain continues after a restart");
            await device.AcknowledgeAsync(pending, CancellationToken.None);
            (await device.PendingAsync(CancellationToken.None)).Select(e => e.Event.Seq).Should().Equal(3);

            school.Receive(device.Replica.Ledger.Export(account)).IsClean.Should().BeTrue();
            school.Calendar.Digest().Should().Be(device.Replica.Calendar.Digest());
        }
    }

    [Fact]
    public async Task Events_held_back_for_a_gap_survive_a_restart_and_apply_once_the_gap_is_filled()
    {
        using var test = new TestVault();
        var account = new AccountId(TestVault.Account.ToLowerInvariant());
        using var schoolKey = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        var series = new SeriesId("cello");
        await using (var vault = await test.EnrolledAsync())
        {
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            school.RecordBatch([new AccountOpened("ms", "Anna", schoolKey.PublicKey), new DeviceEnrolled(device.Id, "laptop", device.PublicKey)]).Error.Should().BeNull();
            school.Record(new StudentEnrolled(new StudentId("s1"), "Ben")).Error.Should().BeNull();
            school.Record(new SeriesPublished(series, "Cello", 2, 900, 45, new RoomId("r1"), [new StudentId("s1")], new DateOnly(2026, 9, 1), new DateOnly(2026, 12, 31))).Error.Should().BeNull();
            var all = school.Ledger.Export(account);
            (await device.ReceiveAsync(all.Where(e => e.Event.Seq != 3), CancellationToken.None)).Applied.Should().HaveCount(2, "seq 4 waits for seq 3");
        }

        await using (var vault = test.Create())
        {
            await vault.InitializeAsync(CancellationToken.None);
            (await vault.UnlockAsync(TestVault.Pin, CancellationToken.None)).Status.Should().Be(UnlockStatus.Unlocked);
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            device.Replica.Ledger.Unapplied().Should().ContainSingle().Which.Event.Seq.Should().Be(4);
            var report = await device.ReceiveAsync(school.Ledger.Export(account).Where(e => e.Event.Seq == 3), CancellationToken.None);
            report.Applied.Select(e => e.Seq).Should().Equal(3, 4);
            school.Receive(device.Replica.Ledger.Export(account)); // the device's own EncryptionKeyPublished
            device.Replica.Calendar.Digest().Should().Be(school.Calendar.Digest());
        }
    }
}
