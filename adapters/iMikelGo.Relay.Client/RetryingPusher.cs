using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace IMikelGo.Relay.Client;

/// <summary>When the background pusher tries again.</summary>
public sealed class RetryingPusherOptions
{
    /// <summary>Delay before the first retry of a failed push; doubles after each failure.</summary>
    public TimeSpan InitialRetryDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest delay between two push rounds while the outbox is not empty.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>After a success, push again after this interval even without a nudge (null: wait for a nudge).</summary>
    public TimeSpan? IdleInterval { get; set; }
}

/// <summary>
/// Pushes the device's outbox in the background on its own schedule (field report F04): immediately at
/// <see cref="Start"/> and on every <see cref="Nudge"/>, and after a failure again with exponential backoff on the
/// <see cref="TimeProvider"/> — never waiting for the next local change. Stops for good when the relay requires a wipe.
/// </summary>
public sealed partial class RetryingPusher : IAsyncDisposable
{
    private readonly SyncAgent _agent;
    private readonly TimeProvider _time;
    private readonly RetryingPusherOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private TaskCompletionSource _nudge = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;
    private int _rounds;
    private int _failures;

    /// <summary>Creates a pusher for <paramref name="agent"/>; call <see cref="Start"/>.</summary>
    public RetryingPusher(SyncAgent agent, TimeProvider? time = null, RetryingPusherOptions? options = null, ILogger<RetryingPusher>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(agent);
        _agent = agent;
        _time = time ?? TimeProvider.System;
        _options = options ?? new RetryingPusherOptions();
        _logger = logger ?? NullLogger<RetryingPusher>.Instance;
    }

    /// <summary>Raised once when the relay tells this device to wipe; the pusher has stopped.</summary>
    public event EventHandler<RelayWipeRequiredException>? WipeRequired;

    /// <summary>Push rounds started so far.</summary>
    public int Rounds => Volatile.Read(ref _rounds);

    /// <summary>Consecutive failed rounds (0 after a success).</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _failures);

    /// <summary>The last round's failure, or null after a success.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>When the next round is due (null while waiting for a nudge).</summary>
    public DateTimeOffset? NextAttemptAt { get; private set; }

    /// <summary>Starts the background loop; the first round runs at once.</summary>
    public void Start()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
            _loop ??= Task.Run(() => RunAsync(_stop.Token));
        }
    }

    /// <summary>A local change was recorded: push now instead of at the next scheduled round.</summary>
    public void Nudge()
    {
        lock (_lock)
        {
            _nudge.TrySetResult();
        }
    }

    /// <summary>Stops the loop and waits for the current round to end.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Task? loop;
        lock (_lock)
        {
            loop = _loop;
        }

        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken stop)
    {
        TimeSpan? delay = TimeSpan.Zero;
        while (!stop.IsCancellationRequested)
        {
            Task nudge;
            lock (_lock)
            {
                nudge = _nudge.Task;
            }

            if (delay != TimeSpan.Zero)
            {
                NextAttemptAt = delay is { } d ? _time.GetUtcNow() + d : null;
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop);
                var timer = delay is { } due ? Task.Delay(due, _time, wait.Token) : Task.Delay(Timeout.Infinite, wait.Token);
                await Task.WhenAny(timer, nudge).ConfigureAwait(false);
                await wait.CancelAsync().ConfigureAwait(false);
                if (stop.IsCancellationRequested)
                {
                    break;
                }
            }

            lock (_lock)
            {
                if (_nudge.Task.IsCompleted)
                {
                    _nudge = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }

            Interlocked.Increment(ref _rounds);
            NextAttemptAt = null;
            try
            {
                var summary = await _agent.PushAsync(null, stop).ConfigureAwait(false);
                Volatile.Write(ref _failures, 0);
                LastError = null;
                delay = _options.IdleInterval;
                LogPushed(_logger, summary.EventsSent);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (RelayWipeRequiredException ex)
            {
                LastError = ex;
                LogWipe(_logger);
                WipeRequired?.Invoke(this, ex);
                break;
            }
#pragma warning disable CA1031 // any failure is retried on the schedule; it is logged and kept in LastError
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LastError = ex;
                var failures = Interlocked.Increment(ref _failures);
                var backoff = TimeSpan.FromTicks(Math.Min(_options.MaxRetryDelay.Ticks,
                    _options.InitialRetryDelay.Ticks * (long)Math.Pow(2, Math.Min(failures - 1, 30))));
                if (ex is RelayException { RetryAfter: { } after } && after > backoff)
                {
                    backoff = after;
                }

                delay = backoff <= TimeSpan.Zero ? TimeSpan.FromMilliseconds(1) : backoff;
                LogFailed(_logger, failures, delay.Value, ex.Message);
            }
        }
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Debug, Message = "Background push round sent {Count} events")]
    private static partial void LogPushed(ILogger logger, int count);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "Background push failed ({Failures} in a row); retrying in {Delay}: {Reason}")]
    private static partial void LogFailed(ILogger logger, int failures, TimeSpan delay, string reason);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "The relay requires a wipe; background pushing stopped")]
    private static partial void LogWipe(ILogger logger);
}
