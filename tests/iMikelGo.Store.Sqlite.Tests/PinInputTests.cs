using FluentAssertions;
using Xunit;

namespace IMikelGo.Store.Sqlite.Tests;

public sealed class PinInputTests
{
    [Fact]
    public async Task A_pin_typed_in_another_unicode_composition_unlocks_and_costs_no_attempt()
    {
        using var test = new TestVault();
        await using (var vault = test.Create())
        {
            await vault.EnrollAsync(TestVault.Account, "caf\u00e9", CancellationToken.None);
        }

        await using var again = test.Create();
        await again.InitializeAsync(CancellationToken.None);
        (await again.UnlockAsync("cafe\u0301", CancellationToken.None)).Status.Should().Be(UnlockStatus.Unlocked);
    }

    [Theory]
    [InlineData("    ")]
    [InlineData("12\u000034")]
    [InlineData("12\t345")]
    public async Task Blank_or_control_character_pins_are_refused_when_set(string pin)
    {
        using var test = new TestVault();
        await using var vault = test.Create();
        var act = () => vault.EnrollAsync(TestVault.Account, pin, CancellationToken.None);
        (await act.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.PinPolicy);
    }

    [Fact]
    public async Task An_overlong_pin_is_refused_when_set()
    {
        using var test = new TestVault();
        await using var vault = test.Create();
        var act = () => vault.EnrollAsync(TestVault.Account, new string('7', 129), CancellationToken.None);
        (await act.Should().ThrowAsync<VaultException>()).Which.Kind.Should().Be(VaultErrorKind.PinPolicy);
    }
}
