using CsCheck;
using FluentAssertions;
using Xunit;

namespace IMikelGo.Engine.Tests.Identifiers;

/// <summary>The hand-written id and hash checks accept exactly the language of the documented regexes.</summary>
public sealed class IdRulesTests
{
    // A regex "$" also matches before a final "\n"; the hand-written checks refuse that, which is the intent.
    private static bool RegexId(string s) => IdRules.Id().IsMatch(s) && !s.EndsWith('\n');

    private static bool RegexHash(string s) => IdRules.Sha256Hex().IsMatch(s) && !s.EndsWith('\n');

    [Fact]
    public void Id_check_equals_the_regex_on_random_strings() =>
        Gen.String[Gen.Char["az09._-AZ \n\u00e9@"], 0, 70].Sample(s => IdRules.IsId(s) == RegexId(s), iter: 20_000, seed: "0N0XIa0E0oQ4");

    [Fact]
    public void Hash_check_equals_the_regex_on_random_strings() =>
        Gen.String[Gen.Char["0123456789abcdefABCDEFg\n"], 62, 66].Sample(s => IdRules.IsSha256Hex(s) == RegexHash(s), iter: 20_000, seed: "0N0XIa0E0oQ4");

    [Theory]
    [InlineData("a", true)]
    [InlineData("0", true)]
    [InlineData("-a", false)]
    [InlineData(".a", false)]
    [InlineData("a\n", false)]
    [InlineData("", false)]
    [InlineData("A", false)]
    public void Edge_cases(string id, bool valid)
    {
        IdRules.IsId(id).Should().Be(valid);
        IdRules.IsId(new string('a', 64)).Should().BeTrue();
        IdRules.IsId(new string('a', 65)).Should().BeFalse();
    }
}
