namespace IMikelGo.Relay.Client.Tests;

/// <summary>A synchronous progress sink (<see cref="Progress{T}"/> would post to the thread pool).</summary>
internal sealed class ListProgress<T> : IProgress<T>
{
    private readonly object _lock = new();

    public List<T> Reports { get; } = [];

    public void Report(T value)
    {
        lock (_lock)
        {
            Reports.Add(value);
        }
    }
}

internal static class Eventually
{
    /// <summary>Waits (real time, bounded) until <paramref name="condition"/> holds.</summary>
    public static async Task HoldsAsync(Func<bool> condition, int timeoutMs = 10_000)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.ElapsedMilliseconds > timeoutMs)
            {
                throw new TimeoutException("condition did not hold in time");
            }

            await Task.Delay(5);
        }
    }
}
