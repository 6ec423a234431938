namespace IMikelGo.Cli;

/// <summary>A clock that only moves when told to: demo logs must not depend on the machine's time.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; private set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public void Advance(TimeSpan by) => Now += by > TimeSpan.Zero ? by : TimeSpan.FromSeconds(1);

    public void SetAtLeast(DateTimeOffset when)
    {
        if (when > Now)
        {
            Now = when;
        }
    }
}
