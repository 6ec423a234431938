using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>Enrollment requests are processed on the pull schedule; a relay that refuses them costs one log line per interval.</summary>
public sealed class ScheduledEnrollmentTests
{
    [Fact]
    public async Task A_relay_that_does_not_know_the_enrollment_caller_is_logged_once_per_interval_without_a_retry_loop()
    {
        await using var world = new ServerWorld(durable: false);
        await world.StartRelayAsync();

        // The relay operator has not registered the school's enrollment caller (nor anything else): every run is refused.
        var logs = new CapturedLogs();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Information);
        var interval = TimeSpan.FromMilliseconds(500);
        builder.Services.AddIMikelGoSchoolServer(o => ServerWorld.Configure(o, world.Root, null, world.Schema, world.Port, world.Fingerprint, interval, world.Faults));
        using var host = builder.Build();
        await host.StartAsync();
        await ServerWorld.EventuallyAsync(() => Task.FromResult(logs.Count(4) >= 3), "three scheduled enrollment runs failed and were logged");
        var started = DateTime.UtcNow;
        var before = logs.Count(4);
        await Task.Delay(TimeSpan.FromSeconds(3));
        var during = logs.Count(4) - before;
        var elapsed = DateTime.UtcNow - started;
        await host.StopAsync();

        var ticks = (int)(elapsed / interval);
        // At most one run (and one line) per interval, no retries in between; a tick is skipped while a run is still
        // outstanding, so a loaded machine sees fewer, never a burst.
        during.Should().BeInRange(1, ticks + 1, "at most one failed run (and one line) per interval, no retries in between");
        logs.Entries.Where(e => e.EventId == 4).Should().OnlyContain(e => e.Level == LogLevel.Warning && e.Message.Contains("the next scheduled run retries", StringComparison.Ordinal));
        logs.Entries.Should().NotContain(e => e.Level >= LogLevel.Error, "a scheduled enrollment failure is not a handler failure for Wolverine to retry or dead-letter");
    }

    [Fact]
    public void A_scheduled_run_is_not_sent_again_while_the_previous_one_is_outstanding_unless_it_was_lost()
    {
        var run = new ScheduledRun();
        var interval = TimeSpan.FromSeconds(60);
        var t0 = new DateTimeOffset(2026, 12, 4, 8, 0, 0, TimeSpan.Zero);
        run.TryStart(t0, interval).Should().BeTrue();
        run.TryStart(t0 + interval, interval).Should().BeFalse("the first run is still queued or running");
        run.Finish();
        run.TryStart(t0 + (2 * interval), interval).Should().BeTrue();
        run.TryStart(t0 + (11 * interval), interval).Should().BeFalse();
        run.TryStart(t0 + (12 * interval), interval).Should().BeTrue("outstanding for ten intervals: taken as lost, the schedule goes on");
    }

    private sealed class CapturedLogs : ILoggerProvider
    {
        private readonly ConcurrentQueue<(LogLevel Level, int EventId, string Message)> _entries = new();

        public IReadOnlyList<(LogLevel Level, int EventId, string Message)> Entries => [.. _entries];

        public int Count(int eventId) => _entries.Count(e => e.EventId == eventId);

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLogs owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                // Only the school server's own events count (Wolverine's categories log their own ids).
                owner._entries.Enqueue((logLevel, category.StartsWith("IMikelGo", StringComparison.Ordinal) ? eventId.Id : -1, formatter(state, exception)));
            }
        }
    }
}
