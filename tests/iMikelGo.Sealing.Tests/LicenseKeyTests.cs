using FluentAssertions;
using Xunit;

namespace IMikelGo.Sealing.Tests;

public sealed class LicenseKeyTests
{
    [Fact]
    public void Generated_keys_parse_case_insensitively_and_tolerate_confusable_characters()
    {
        for (var n = 0; n < 200; n++)
        {
            var key = LicenseKey.Generate();
            key.Value.Should().MatchRegex("^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$");
            LicenseKey.TryParse(key.Value.ToLowerInvariant().Replace("-", " ", StringComparison.Ordinal), out var parsed, out var error).Should().BeTrue(error);
            parsed.Should().Be(key);
            var confusable = key.Value.Replace('0', 'O').Replace('1', 'l');
            LicenseKey.TryParse(confusable, out parsed, out error).Should().BeTrue(error);
            parsed.Should().Be(key);
            LicenseKey.TryParse(key.Value.Replace('1', 'I').Replace("-", "", StringComparison.Ordinal), out parsed, out _).Should().BeTrue();
            parsed.Should().Be(key);
        }
    }

    [Fact]
    public void Every_single_substitution_and_adjacent_transposition_is_reported_as_a_typo()
    {
        var detected = 0;
        for (var n = 0; n < 20; n++)
        {
            var compact = LicenseKey.Generate().Value.Replace("-", "", StringComparison.Ordinal);
            for (var i = 0; i < compact.Length; i++)
            {
                foreach (var c in LicenseKey.Alphabet)
                {
                    if (c == compact[i])
                    {
                        continue;
                    }

                    var typo = compact[..i] + c + compact[(i + 1)..];
                    LicenseKey.TryParse(typo, out _, out var error).Should().BeFalse($"{typo} differs from {compact} in one character");
                    error.Should().Contain("typo");
                    detected++;
                }

                if (i + 1 < compact.Length && compact[i] != compact[i + 1])
                {
                    var swapped = compact[..i] + compact[i + 1] + compact[i] + compact[(i + 2)..];
                    LicenseKey.TryParse(swapped, out _, out var error).Should().BeFalse($"{swapped} swaps positions {i} and {i + 1}");
                    error.Should().Contain("typo");
                    detected++;
                }
            }
        }

        detected.Should().BeGreaterThan(20 * 16 * 31);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("ABCD-EFGH-JKMN-PQR", "15 characters")]
    [InlineData("ABCD-EFGH-JKMN-PQRST", "more than 16")]
    [InlineData("ABCD-EFGH-JKMN-PQRU", "'U'")]
    [InlineData("ABCD-EFGH-JKMN-PQR*", "'*'")]
    public void Malformed_keys_get_a_clear_message(string text, string expected)
    {
        LicenseKey.TryParse(text, out var key, out var error).Should().BeFalse();
        key.Should().Be(default(LicenseKey));
        error.Should().Contain(expected);
        var act = () => LicenseKey.Parse(text);
        act.Should().Throw<FormatException>();
    }
}
