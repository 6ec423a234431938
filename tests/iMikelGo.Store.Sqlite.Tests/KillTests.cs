namespace IMikelGo.Store.Sqlite.Tests;

/// <summary>The app in a child process that SIGKILLs itself at a chosen step (F15, PIN change, wipe).</summary>
public sealed class KillTests
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    [Fact]
    public async Task F15_kill_between_attempts_the_third_wrong_pin_still_wipes()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        for (var i = 0; i < 2; i++)
        {
            var (code, output) = env.RunChild("exit", "unlock", "0000");
            output.Should().Contain("result WrongPin");
            code.Should().NotBe(0, "the child was force-stopped after showing the message");
        }

        await using var vault = env.Create();
        (await vault.UnlockAsync("0000", Ct)).Status.Should().Be(UnlockStatus.Wiped);
        PinPolicyTests.AssertNoVaultData(env, null);
    }

    [Fact]
    public async Task F15_kill_during_an_attempt_after_the_durable_increment_counts_the_attempt()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        for (var i = 0; i < 2; i++)
        {
            var (code, output) = env.RunChild("unlock:after-counter-increment", "unlock", "0000");
            output.Should().NotContain("result");
            code.Should().NotBe(0);
        }

        env.ReadCounter()!.Value.Failures.Should().Be(2);
        await using var vault = env.Create();
        (await vault.UnlockAsync("0000", Ct)).Status.Should().Be(UnlockStatus.Wiped);
    }

    [Fact]
    public async Task F15_three_kills_mid_attempt_exhaust_the_counter_even_for_the_right_pin()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        for (var i = 0; i < 3; i++)
        {
            env.RunChild("unlock:after-counter-increment", "unlock", TestVault.Pin).ExitCode.Should().NotBe(0);
        }

        await using var vault = env.Create();
        (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped);
    }

    [Fact]
    public async Task A_correct_pin_killed_after_the_reset_leaves_the_counter_at_zero()
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        env.RunChild("none", "unlock", "0000").Output.Should().Contain("WrongPin");
        env.RunChild("unlock:after-reset", "unlock", TestVault.Pin).ExitCode.Should().NotBe(0);
        env.ReadCounter()!.Value.Failures.Should().Be(0);
        await using var vault = env.Create();
        (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
    }

    [Theory]
    [InlineData("pinchange:after-verify", false)]
    [InlineData("pinchange:after-temp-write", false)]
    [InlineData("pinchange:after-rename", true)]
    [InlineData("pinchange:after-dir-sync", true)]
    [InlineData("exit", true)]
    public async Task Pin_change_killed_at_any_step_leaves_exactly_one_pin_working(string step, bool newPinExpected)
    {
        const string NewPin = "8642";
        using var env = new TestVault();
        await env.EnrollAndCloseAsync(v => { });
        await using (var seed = env.Create())
        {
            await seed.UnlockAsync(TestVault.Pin, Ct);
            await seed.Store.AppendAsync(TestVault.Event(1, "kept"), Ct);
        }

        env.RunChild(step, "changepin", TestVault.Pin, NewPin).ExitCode.Should().NotBe(0);

        await using var vault = env.Create();
        var oldResult = await vault.UnlockAsync(TestVault.Pin, Ct);
        await vault.LockAsync(Ct);
        var newResult = await vault.UnlockAsync(NewPin, Ct);
        new[] { oldResult.Status, newResult.Status }.Should().ContainSingle(s => s == UnlockStatus.Unlocked, "exactly one PIN works");
        new[] { oldResult.Status, newResult.Status }.Should().ContainSingle(s => s == UnlockStatus.WrongPin);
        (newResult.Status == UnlockStatus.Unlocked).Should().Be(newPinExpected);
        File.Exists(env.Paths.NewKeyFile).Should().BeFalse("a leftover new key file is discarded at start");

        // Whichever works, the data is intact.
        await vault.LockAsync(Ct);
        (await vault.UnlockAsync(newPinExpected ? NewPin : TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Unlocked);
        (await vault.Store.ReadEventsAsync(TestVault.Account, "dev-a", 0, 10, Ct)).Should().ContainSingle();
    }

    [Theory]
    [InlineData("wipe:after-marker")]
    [InlineData("wipe:after-shred")]
    public async Task A_wipe_killed_midway_is_finished_at_the_next_start(string step)
    {
        using var env = new TestVault();
        await env.EnrollAndCloseAsync();
        env.RunChild(step, "wipe", nameof(WipeReason.RemoteDeactivation)).ExitCode.Should().NotBe(0);
        await using var vault = env.Create();
        (await vault.InitializeAsync(Ct)).Should().Be(VaultState.Wiped);
        vault.LastWipe.Should().BeEquivalentTo(new { Reason = WipeReason.RemoteDeactivation, Completed = true });
        PinPolicyTests.AssertNoVaultData(env, null);
        (await vault.UnlockAsync(TestVault.Pin, Ct)).Status.Should().Be(UnlockStatus.Wiped);
    }
}
