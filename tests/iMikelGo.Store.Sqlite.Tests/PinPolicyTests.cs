using System.Text;
using System.Text.Json.Nodes;
using IMikelGo.Store.Sqlite.Vault;

namespace IMikelGo.Store.Sqlite.Tests;

public sealed class PinPolicyTests
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    [Fact]
    public async Task Wrong_pins_count_down_and_a_correct_pin_resets_the_counter()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        await using var vault = env.Create();
        (await vault.UnlockAsync("0000", Ct)).Should().Be(new UnlockResult(UnlockStatus.WrongPin, 2));
        (await vault.UnlockAsync("1111", Ct)).Should().Be(new UnlockResult(UnlockStatus.WrongPin, 1));
        env.ReadCounter()!.Value.Failures.Should().Be(2);
        (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        env.ReadCounter()!.Value.Failures.Should().Be(0);
        await vault.LockAsync(Ct);
        (await vault.UnlockAsync("0000", Ct)).RemainingAttempts.Should().Be(2, "only consecutive failures count");
    }

    [Fact]
    public async Task Three_wrong_pins_wipe_everything_once_and_nothing_accepts_input_afterwards()
    {
        var marker = string.Concat("ZZ", "MARKER", Guid.NewGuid().ToString("N")[..8]);
        using var env = new TestVault();
        await using (var first = await env.EnrolledAsync())
        {
            await first.Store.AppendBatchAsync(Enumerable.Range(1, 50).Select(i => TestVault.Event(i, marker)).ToList(), Ct);
        }

        await using var vault = env.Create();
        (await vault.UnlockAsync("0000", Ct)).Status.Should().Be(UnlockStatus.WrongPin);
        (await vault.UnlockAsync("0001", Ct)).Status.Should().Be(UnlockStatus.WrongPin);
        (await vault.UnlockAsync("0002", Ct)).Status.Should().Be(UnlockStatus.Wiped);

        vault.State.Should().Be(VaultState.Wiped);
        vault.IsDemoMode.Should().BeTrue();
        vault.CanSync.Should().BeFalse();
        (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped, "not even the right PIN is accepted");
        (await vault.WipeAsync(WipeReason.User, Ct)).Should().BeFalse("the wipe runs exactly once");
        vault.LastWipe.Should().BeEquivalentTo(new { Reason = WipeReason.WrongPin, Completed = true });

        AssertNoVaultData(env, marker);

        // A restarted app is in demo mode too.
        await using var restarted = env.Create();
        (await restarted.InitializeAsync(Ct)).Should().Be(VaultState.Wiped);
        (await restarted.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped);
        var demo = await restarted.OpenDemoAsync(Ct);
        demo.IsDemo.Should().BeTrue();
    }

    [Fact]
    public async Task F16_a_deleted_counter_counts_as_exhausted_and_wipes()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        await using (var vault = env.Create())
        {
            await vault.UnlockAsync("0000", Ct);
            await vault.UnlockAsync("0000", Ct);
        }

        File.Delete(env.Paths.CounterFile);
        await using var again = env.Create();
        (await again.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped);
        again.LastWipe!.Reason.Should().Be(WipeReason.Tamper);
        AssertNoVaultData(env, null);
    }

    [Fact]
    public async Task F16_a_counter_reset_by_hand_counts_as_exhausted_and_wipes()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        await using (var vault = env.Create())
        {
            await vault.UnlockAsync("0000", Ct);
            await vault.UnlockAsync("0000", Ct);
        }

        var json = JsonNode.Parse(await File.ReadAllTextAsync(env.Paths.CounterFile))!;
        json["fail"] = 0;
        await File.WriteAllTextAsync(env.Paths.CounterFile, json.ToJsonString());
        await using var again = env.Create();
        (await again.UnlockAsync("0000", Ct)).Status.Should().Be(UnlockStatus.Wiped);
        AssertNoVaultData(env, null);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(-100)]
    public async Task F16_a_negative_counter_is_tampering_even_with_a_forged_layout(int failures)
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        var json = JsonNode.Parse(await File.ReadAllTextAsync(env.Paths.CounterFile))!;
        json["fail"] = failures;
        await File.WriteAllTextAsync(env.Paths.CounterFile, json.ToJsonString());
        await using var vault = env.Create();
        (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped);
    }

    [Fact]
    public async Task F16_a_counter_rolled_back_to_an_older_valid_copy_is_detected()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        var old = await File.ReadAllBytesAsync(env.Paths.CounterFile);
        await using (var vault = env.Create())
        {
            (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        }

        // Same process: the vault remembers the generation it wrote.
        await using (var vault = env.Create())
        {
            (await vault.UnlockAsync("0000", Ct)).Status.Should().Be(UnlockStatus.WrongPin);
            await File.WriteAllBytesAsync(env.Paths.CounterFile, old);
            (await vault.UnlockAsync("0000", Ct)).Status.Should().Be(UnlockStatus.Wiped);
        }

        vault_wiped_by_tamper(env);
    }

    [Fact]
    public async Task F16_a_rollback_across_a_restart_is_caught_by_the_database_witness_at_the_next_unlock()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        var old = await File.ReadAllBytesAsync(env.Paths.CounterFile);
        await using (var vault = env.Create())
        {
            (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        }

        await File.WriteAllBytesAsync(env.Paths.CounterFile, old);
        await using var restarted = env.Create();
        (await restarted.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped);
        vault_wiped_by_tamper(env);
    }

    [Fact]
    public async Task A_failure_that_is_not_a_wrong_pin_is_never_counted()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        var db = env.Paths.Database;
        var good = await File.ReadAllBytesAsync(db);
        var noise = new byte[good.Length];
        new Random(7).NextBytes(noise);
        await File.WriteAllBytesAsync(db, noise); // an unreadable (damaged / unknown format) database
        foreach (var f in new[] { db + "-wal", db + "-shm" })
        {
            File.Delete(f);
        }

        for (var i = 0; i < 4; i++)
        {
            await using var vault = env.Create();
            var act = () => vault.UnlockAsync(TestVault.Pin, Ct);
            (await act.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.DatabaseUnreadable);
            vault.State.Should().Be(VaultState.Locked);
        }

        env.ReadCounter()!.Value.Failures.Should().Be(0);
        await File.WriteAllBytesAsync(db, good);
        await using var healed = env.Create();
        (await healed.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
    }

    [Fact]
    public async Task F13_a_SQLCipher3_format_database_migrates_after_the_correct_pin_keeping_7_events_and_a_zero_counter()
    {
        using var env = new TestVault();
        // "v1.0": the database written in the SQLCipher 3 format.
        await using (var v10 = await env.EnrolledAsync(o => { o.Cipher = "sqlcipher"; o.CipherLegacy = 3; }))
        {
            await v10.Store.AppendBatchAsync(Enumerable.Range(1, 7).Select(i => TestVault.Event(i, "unsynced")).ToList(), Ct);
        }

        // "v1.1": default cipher (ChaCha20); the teacher enters the correct PIN.
        await using (var v11 = env.Create())
        {
            (await v11.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
            (await v11.Store.GetOutboxForSyncAsync(100, Ct)).Should().HaveCount(7);
        }

        env.ReadCounter()!.Value.Failures.Should().Be(0);
        var dek = StoreTests.ReadDek(env);
        using var migrated = Store.SqliteConnector.TryOpen(env.Paths.Database, Crypto.KeyHierarchy.DatabaseKey(dek), Store.CipherProfile.ChaCha20, null);
        migrated.Should().NotBeNull("the file was re-encrypted in the current format");
    }

    [Fact]
    public async Task Pin_change_replaces_the_pin_and_keeps_the_data()
    {
        using var env = new TestVault();
        await using (var vault = await env.EnrolledAsync())
        {
            await vault.Store.AppendAsync(TestVault.Event(1, "x"), Ct);
            (await vault.ChangePinAsync(TestVault.Pin, "2468", Ct)).Status.Should().Be(UnlockStatus.Unlocked);
            var tooShort = () => vault.ChangePinAsync("2468", "12", Ct);
            (await tooShort.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.PinPolicy);
        }

        await using var reopened = env.Create();
        (await reopened.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.WrongPin);
        (await reopened.UnlockAsync("2468", Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        (await reopened.Store.ReadEventsAsync(TestVault.Account, "dev-a", 0, 10, Ct)).Should().ContainSingle();
    }

    [Fact]
    public async Task Remote_deactivation_wipes_without_a_pin_and_re_enrollment_brings_sync_back_with_a_new_device_id()
    {
        using var env = new TestVault();
        string firstDevice;
        await using (var vault = await env.EnrolledAsync())
        {
            firstDevice = vault.Store.DeviceId;
            await vault.Store.AppendAsync(TestVault.Event(1, "x"), Ct);
        }

        await using var locked = env.Create();
        (await locked.InitializeAsync(Ct)).Should().Be(VaultState.Locked);
        (await locked.WipeAsync(WipeReason.RemoteDeactivation, Ct)).Should().BeTrue();
        (await locked.WipeAsync(WipeReason.RemoteDeactivation, Ct)).Should().BeFalse();
        locked.LastWipe!.Reason.Should().Be(WipeReason.RemoteDeactivation);
        AssertNoVaultData(env, null);
        var act = () => locked.Store.GetOutboxForSyncAsync(10, Ct);
        await act.Should().ThrowAsync<VaultException>();

        var enrolled = await locked.EnrollAsync(TestVault.Account, "9753", Ct);
        enrolled.DeviceId.Should().NotBe(firstDevice);
        locked.CanSync.Should().BeTrue();
        (await locked.Store.GetOutboxForSyncAsync(10, Ct)).Should().BeEmpty("nothing from before the wipe survives");
        await locked.AcknowledgeWipeAsync(Ct);
        locked.LastWipe.Should().BeNull();
    }

    [Fact]
    public async Task Demo_mode_is_labelled_separate_and_refuses_to_sync()
    {
        using var env = new TestVault();
        await using var vault = env.Create();
        (await vault.InitializeAsync(Ct)).Should().Be(VaultState.NotEnrolled);
        var demo = await vault.OpenDemoAsync(Ct);
        demo.IsDemo.Should().BeTrue();
        var events = await demo.ReadEventsAsync(DemoSchool.Account, DemoSchool.DeviceId, 0, 100, Ct);
        events.Should().NotBeEmpty();
        events.Select(e => Encoding.UTF8.GetString(e.CanonicalEvent.ToArray())).Should().OnlyContain(text => text.Contains("\"demo\":true") && text.Contains("DEMO"));
        await demo.AppendAsync(TestVault.Event(1, "offline demo entry", account: DemoSchool.Account, replica: DemoSchool.DeviceId + "-x"), Ct);

        var sync = () => demo.GetOutboxForSyncAsync(100, Ct);
        (await sync.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.DemoModeCannotSync);
        var sent = () => demo.MarkSentAsync([events[0].EventHash], Ct);
        await sent.Should().ThrowAsync<VaultException>();
        vault.CanSync.Should().BeFalse();
        Directory.Exists(env.Paths.VaultDirectory).Should().BeFalse("demo data lives in its own folder");

        await vault.EnrollAsync(TestVault.Account, TestVault.Pin, Ct);
        (await vault.Store.GetOutboxForSyncAsync(100, Ct)).Should().BeEmpty("demo events never mix with real data");
        var demoAgain = () => vault.OpenDemoAsync(Ct);
        await demoAgain.Should().ThrowAsync<VaultException>();
    }

    [Fact]
    public async Task A_restored_or_cloned_install_without_its_device_secret_is_wiped_and_needs_re_enrollment()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        Directory.Delete(env.SecretDirectory, recursive: true); // the copy has the app folder but not the device key
        await using var clone = env.Create();
        (await clone.InitializeAsync(Ct)).Should().Be(VaultState.Wiped);
        clone.LastWipe!.Reason.Should().Be(WipeReason.CloneOrRestore);
    }

    [Fact]
    public async Task A_device_secret_from_another_install_is_a_clone_too()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        await new FileDeviceSecretStore(env.SecretDirectory).CreateAsync(Ct);
        await using var clone = env.Create();
        (await clone.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped);
    }

    [Fact]
    public async Task Secret_files_are_private_to_the_owner()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        File.GetUnixFileMode(Path.Combine(env.SecretDirectory, "device.secret")).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.GetUnixFileMode(env.SecretDirectory).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.GetUnixFileMode(env.Paths.KeyFile).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.GetUnixFileMode(env.Paths.CounterFile).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    [Fact]
    public async Task Without_the_device_secret_the_wrapped_key_cannot_be_tried_against_pins()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        var envelope = KeyEnvelope.Parse(await File.ReadAllBytesAsync(env.Paths.KeyFile));
        // An attacker with the key file and database but a guessed (here: zero) device secret: even the right PIN fails.
        var kek = Crypto.KeyHierarchy.DeriveKek(TestVault.Pin, new byte[32], envelope.Salt, envelope.Iterations, envelope.InstallId);
        var act = () => Crypto.KeyHierarchy.Open(kek, envelope.WrappedDek, envelope.AssociatedData());
        act.Should().Throw<System.Security.Cryptography.CryptographicException>();
    }

    private static void vault_wiped_by_tamper(TestVault env)
    {
        WipeMarkerFile.TryRead(env.Paths.WipeMarker)!.Reason.Should().Be(WipeReason.Tamper);
        AssertNoVaultData(env, null);
    }

    internal static void AssertNoVaultData(TestVault env, string? marker)
    {
        File.Exists(env.Paths.KeyFile).Should().BeFalse();
        File.Exists(env.Paths.CounterFile).Should().BeFalse();
        File.Exists(Path.Combine(env.SecretDirectory, "device.secret")).Should().BeFalse();
        foreach (var f in env.Paths.DatabaseFiles(env.Paths.Database))
        {
            File.Exists(f).Should().BeFalse(f);
        }

        Directory.Exists(env.Paths.VaultDirectory).Should().BeFalse();
        if (marker is not null)
        {
            TestVault.FilesContaining(env.Root, marker).Should().BeEmpty();
        }
    }
}
