using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace IMikelGo.Relay.Client;

/// <summary>
/// The retry pipeline (Microsoft.Extensions.Http.Resilience / Polly on the caller's <see cref="TimeProvider"/>):
/// exponential backoff on 5xx, 408, 429 (honoring <c>Retry-After</c>), network errors and attempt timeouts; never
/// on other 4xx, on a certificate refusal or on the caller's cancellation. Every request is safe to repeat:
/// pushes are idempotent by bundle id, acks by position, and each attempt is signed afresh.
/// </summary>
internal static partial class RelayResilience
{
    /// <summary>Long-poll wait of a request, added to its attempt timeout.</summary>
    internal static readonly HttpRequestOptionsKey<TimeSpan> WaitKey = new("imikelgo.relay.wait");

    internal static ResiliencePipeline<HttpResponseMessage> CreatePipeline(RelayClientOptions options, TimeProvider time, ILogger logger)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time };
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.MaxRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = options.UseJitter,
                ShouldRetryAfterHeader = true,
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome, options.MaxRetryAfter)),
                OnRetry = args =>
                {
                    RelayClientDiagnostics.Retries.Add(1);
                    LogRetry(logger, args.AttemptNumber + 1, args.RetryDelay,
                        args.Outcome.Result is { } r ? ((int)r.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture) : args.Outcome.Exception?.GetType().Name ?? "?");
                    return default;
                },
            });
        }

        builder.AddTimeout(new HttpTimeoutStrategyOptions
        {
            TimeoutGenerator = args =>
            {
                var wait = args.Context.GetRequestMessage()?.Options.TryGetValue(WaitKey, out var w) == true ? w : TimeSpan.Zero;
                return ValueTask.FromResult(options.AttemptTimeout + wait);
            },
        });
        return builder.Build();
    }

    /// <summary>Whether an outcome is transient and worth another attempt inside the same call.</summary>
    internal static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, TimeSpan maxRetryAfter)
    {
        if (outcome.Exception is { } ex)
        {
            return ex switch
            {
                TimeoutRejectedException => true,
                HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } => false,
                HttpRequestException => true,
                _ => false,
            };
        }

        if (outcome.Result is not { } response)
        {
            return false;
        }

        var status = (int)response.StatusCode;
        var transient = status >= 500 || response.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;
        return transient && (RetryAfterOf(response.Headers.RetryAfter, TimeProvider.System) is not { } after || after <= maxRetryAfter);
    }

    /// <summary>The delay a <c>Retry-After</c> header asks for, or null.</summary>
    internal static TimeSpan? RetryAfterOf(RetryConditionHeaderValue? header, TimeProvider time)
    {
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        if (header?.Date is { } date)
        {
            var d = date - time.GetUtcNow();
            return d > TimeSpan.Zero ? d : TimeSpan.Zero;
        }

        return null;
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Relay call failed transiently ({Outcome}); attempt {Attempt} in {Delay}")]
    private static partial void LogRetry(ILogger logger, int attempt, TimeSpan delay, string outcome);
}
