using Microsoft.Extensions.Time.Testing;

namespace IMikelGo.Testing;

/// <summary>
/// Fake clocks for tests (<see cref="FakeTimeProvider"/> from Microsoft.Extensions.TimeProvider.Testing). Wall time
/// in iMikelGo is for display only, so tests can set any replica's clock anywhere — even to 2099.
/// </summary>
public static class TestTime
{
    /// <summary>The default "now" of scenarios: 2026-09-01T08:00:00Z, the start of the school year.</summary>
    public static DateTimeOffset SchoolYearStart { get; } = new(2026, 9, 1, 8, 0, 0, TimeSpan.Zero);

    /// <summary>A fake clock standing at <paramref name="now"/> (default <see cref="SchoolYearStart"/>).</summary>
    public static FakeTimeProvider At(DateTimeOffset? now = null) => new(now ?? SchoolYearStart);
}
