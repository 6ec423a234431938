using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly.Timeout;

namespace IMikelGo.Relay.Client;

/// <summary>
/// The typed HttpClient for the relay. Its handler chain (built by <see cref="Create"/> or by
/// <c>AddIMikelGoRelayClient</c>) is: retries with backoff → request signing (fresh nonce and timestamp per
/// attempt) → <see cref="SocketsHttpHandler"/> with certificate pinning, HTTP/2 preferred.
/// </summary>
public sealed partial class RelayClient : IRelayClient, IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly HttpClient _http;
    private readonly ILogger _logger;
    private readonly CertificatePin? _pin;
    private readonly bool _ownsHttp;

    /// <summary>Wraps an <see cref="HttpClient"/> whose handlers already sign, retry and pin (see <c>AddIMikelGoRelayClient</c>).</summary>
    public RelayClient(HttpClient httpClient, ILogger<RelayClient>? logger = null, CertificatePin? pin = null)
        : this(httpClient, logger, pin, ownsHttp: false)
    {
    }

    private RelayClient(HttpClient httpClient, ILogger? logger, CertificatePin? pin, bool ownsHttp)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        _http = httpClient;
        _logger = logger ?? NullLogger.Instance;
        _pin = pin;
        _ownsHttp = ownsHttp;
    }

    /// <summary>
    /// Builds a client without dependency injection. <paramref name="primaryHandler"/> replaces the pinned
    /// <see cref="SocketsHttpHandler"/> (tests use an in-memory relay); it is disposed with the client.
    /// </summary>
    public static RelayClient Create(RelayClientOptions options, IRelayRequestSigner signer, TimeProvider? time = null,
        ILoggerFactory? loggerFactory = null, HttpMessageHandler? primaryHandler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(signer);
        options.Validate();
        time ??= TimeProvider.System;
        loggerFactory ??= NullLoggerFactory.Instance;
        var pin = CreatePin(options);
        var primary = primaryHandler ?? CreatePrimaryHandler(options, pin);
        var signing = new RelaySigningHandler(signer, time) { InnerHandler = primary };
        var resilience = new ResilienceHandler(RelayResilience.CreatePipeline(options, time, loggerFactory.CreateLogger<RelayClient>())) { InnerHandler = signing };
        var http = new HttpClient(resilience, disposeHandler: true);
        Configure(http, options);
        return new RelayClient(http, loggerFactory.CreateLogger<RelayClient>(), pin, ownsHttp: true);
    }

    /// <summary>The pin for <paramref name="options"/>, or null when CA validation is allowed and no pin is set.</summary>
    internal static CertificatePin? CreatePin(RelayClientOptions options) =>
        string.IsNullOrWhiteSpace(options.PinnedCertificateSha256) ? null : new CertificatePin(options.PinnedCertificateSha256);

    /// <summary>The transport: HTTP/2-capable sockets handler whose TLS accepts exactly the pinned certificate.</summary>
    internal static SocketsHttpHandler CreatePrimaryHandler(RelayClientOptions options, CertificatePin? pin)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            EnableMultipleHttp2Connections = true,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            AllowAutoRedirect = false,
        };
        if (pin is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = pin.Validate;
        }

        return handler;
    }

    /// <summary>Base address, HTTP/2 preference, and no whole-call timeout (each attempt has its own).</summary>
    internal static void Configure(HttpClient http, RelayClientOptions options)
    {
        http.BaseAddress = options.BaseAddress;
        http.DefaultRequestVersion = HttpVersion.Version20;
        http.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        http.Timeout = Timeout.InfiniteTimeSpan;
    }

    /// <inheritdoc />
    public async Task<PushResult> PushAsync(string account, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        if (bundle.Length == 0 || bundle.Length > RelayProtocol.MaxBundleBytes)
        {
            throw new ArgumentException($"a bundle has 1 to {RelayProtocol.MaxBundleBytes} bytes, not {bundle.Length}", nameof(bundle));
        }

        Guid? expected = Bundle.TryReadHeader(bundle.Span, out var header, out _) ? header.BundleId : null;
        using var content = new ReadOnlyMemoryContent(bundle);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var result = await SendAsync<PushResult>("push", HttpMethod.Post, RelayProtocol.Bundles(account), content, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        if (expected is { } id && result.BundleId != id)
        {
            throw new RelayProtocolException($"the relay confirmed bundle {result.BundleId}, not the pushed bundle {id}");
        }

        RelayClientDiagnostics.BundlesPushed.Add(1);
        LogPushed(_logger, result.BundleId, result.Position, result.Duplicate);
        return result;
    }

    /// <inheritdoc />
    public async Task<PullPage> PullAsync(string account, long after, int limit, TimeSpan wait, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, RelayProtocol.MaxPageSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(wait, TimeSpan.Zero);
        var page = await SendAsync<PullPage>("pull", HttpMethod.Get, RelayProtocol.Pull(account, after, limit, (int)Math.Ceiling(wait.TotalSeconds)), null, wait, cancellationToken).ConfigureAwait(false);
        var previous = after;
        foreach (var item in page.Items ?? [])
        {
            if (item is null || item.Data is null || item.Position <= previous)
            {
                throw new RelayProtocolException($"the relay's page after {after} is not in strictly increasing position order (item at {item?.Position}, previous {previous})");
            }

            previous = item.Position;
        }

        if (page.Items is null || page.Items.Count > limit)
        {
            throw new RelayProtocolException($"the relay returned {page.Items?.Count} items for a page of at most {limit}");
        }

        RelayClientDiagnostics.BundlesPulled.Add(page.Items.Count);
        return page;
    }

    /// <inheritdoc />
    public Task AckAsync(string account, long position, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        return SendJsonAsync("ack", RelayProtocol.Acks(account), new AckRequest(position), cancellationToken);
    }

    /// <inheritdoc />
    public Task RegisterDeviceAsync(string account, DeviceRegistration registration, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentNullException.ThrowIfNull(registration);
        return SendJsonAsync("register", RelayProtocol.Devices(account), registration, cancellationToken);
    }

    /// <inheritdoc />
    public Task RevokeAsync(string account, RevocationRequest revocation, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentNullException.ThrowIfNull(revocation);
        return SendJsonAsync("revoke", RelayProtocol.Revocations(account), revocation, cancellationToken);
    }

    /// <inheritdoc />
    public Task WipeAckAsync(WipeAck acknowledgement, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(acknowledgement);
        return SendJsonAsync("wipe-ack", RelayProtocol.WipeAcks, acknowledgement, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<string> SubmitEnrollmentAsync(string school, LicenseKey license, ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(school);
        if (request.Length == 0 || request.Length > RelayProtocol.MaxEnrollmentRequestBytes)
        {
            throw new ArgumentException($"an enrollment request has 1 to {RelayProtocol.MaxEnrollmentRequestBytes} bytes, not {request.Length}", nameof(request));
        }

        using var content = new ReadOnlyMemoryContent(request);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.Add(RelayProtocol.LicenseHashHeader, RelayProtocol.LicenseHash(license.Value));
        var submitted = await SendAsync<EnrollmentSubmitted>("enroll", HttpMethod.Post, RelayProtocol.Enrollments(school), content, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        if (!RelayProtocol.IsEnrollmentId(submitted.Id))
        {
            throw new RelayProtocolException("relay enroll: the answer carries no valid enrollment id");
        }

        return submitted.Id;
    }

    /// <inheritdoc />
    public async Task<EnrollmentStatus> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken)
    {
        if (!RelayProtocol.IsEnrollmentId(id))
        {
            throw new ArgumentException("an enrollment id is 32 lowercase hex digits", nameof(id));
        }

        var status = await SendAsync<EnrollmentStatus>("enrollment-status", HttpMethod.Get, RelayProtocol.Enrollment(id), null, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        if (status.Status is not (EnrollmentStatus.Pending or EnrollmentStatus.Approved or EnrollmentStatus.Refused)
            || (status.Status != EnrollmentStatus.Pending && status.Answer is null))
        {
            throw new RelayProtocolException($"relay enrollment-status: unexpected status '{status.Status}'");
        }

        return status;
    }

    /// <inheritdoc />
    public async Task<EnrollmentPage> PullEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(school);
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, RelayProtocol.MaxEnrollmentPageSize);
        var page = await SendAsync<EnrollmentPage>("pull-enrollments", HttpMethod.Get, RelayProtocol.PullEnrollments(school, after, limit), null, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        var previous = after;
        foreach (var item in page.Items ?? [])
        {
            if (item is null || item.Request is null || item.Position <= previous || !RelayProtocol.IsEnrollmentId(item.Id))
            {
                throw new RelayProtocolException($"relay pull-enrollments: the page after {after} is malformed or out of order");
            }

            previous = item.Position;
        }

        return page;
    }

    /// <inheritdoc />
    public Task AnswerEnrollmentAsync(string school, string id, EnrollmentAnswerRequest answer, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(school);
        ArgumentNullException.ThrowIfNull(answer);
        if (!RelayProtocol.IsEnrollmentId(id))
        {
            throw new ArgumentException("an enrollment id is 32 lowercase hex digits", nameof(id));
        }

        return SendJsonAsync("answer-enrollment", RelayProtocol.EnrollmentAnswer(school, id), answer, cancellationToken);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    private async Task SendJsonAsync<T>(string operation, string path, T body, CancellationToken cancellationToken)
    {
        using var content = JsonContent.Create(body, options: Json);
        await content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(false);
        await SendAsync<object>(operation, HttpMethod.Post, path, content, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
    }

    private async Task<T> SendAsync<T>(string operation, HttpMethod method, string path, HttpContent? content, TimeSpan wait, CancellationToken cancellationToken)
        where T : class
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var activity = RelayClientDiagnostics.ActivitySource.StartActivity($"relay {operation}", ActivityKind.Client);
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative)) { Content = content };
        request.Options.Set(RelayResilience.WaitKey, wait);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Count(operation, "cancelled");
            throw;
        }
        catch (HttpRequestException ex) when (_pin?.LastRefused is not null && ex.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            Count(operation, "pin-refused");
            var message = _pin.RefusalMessage(_http.BaseAddress);
            LogPinRefused(_logger, message);
            throw new RelayCertificatePinningException(message, ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or TimeoutRejectedException or TaskCanceledException)
        {
            Count(operation, "unreachable");
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw new RelayException($"relay {operation} failed: the relay is unreachable ({ex.Message})", null, isTransient: true, innerException: ex);
        }

        using (response)
        {
            activity?.SetTag("http.response.status_code", (int)response.StatusCode);
            if (response.IsSuccessStatusCode)
            {
                Count(operation, "ok");
                if (typeof(T) == typeof(object))
                {
                    return null!;
                }

                try
                {
                    return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken).ConfigureAwait(false)
                        ?? throw new RelayProtocolException($"relay {operation}: empty answer");
                }
                catch (JsonException ex)
                {
                    throw new RelayProtocolException($"relay {operation}: the answer is not a valid {typeof(T).Name}: {ex.Message}", ex);
                }
            }

            var problem = await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
            Count(operation, ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
            activity?.SetStatus(ActivityStatusCode.Error, problem.ToString());
            if (problem.IsWipe)
            {
                LogWipe(_logger, problem.Detail ?? problem.Title ?? string.Empty);
                throw new RelayWipeRequiredException(problem);
            }

            LogProblem(_logger, operation, problem.Status, problem.Type ?? "about:blank", problem.Detail ?? problem.Title ?? string.Empty);
            throw new RelayException($"relay {operation} failed: {problem}", problem, problem.IsTransient,
                RelayResilience.RetryAfterOf(response.Headers.RetryAfter, TimeProvider.System));
        }
    }

    private static async Task<RelayProblem> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        string text;
        try
        {
            text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            text = string.Empty;
        }

        if (text.Length > 0 && response.Content.Headers.ContentType?.MediaType is { } media && media.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.ValueKind == JsonValueKind.Object)
                {
                    string? Get(string name) =>
                        doc.RootElement.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                    return new RelayProblem(status, Get("type"), Get("title"), Get("detail"));
                }
            }
            catch (JsonException)
            {
                // Not a problem document: fall through to the plain answer.
            }
        }

        var detail = text.Length > 200 ? text[..200] : text;
        return new RelayProblem(status, null, response.ReasonPhrase, detail.Length == 0 ? null : detail);
    }

    private static void Count(string operation, string outcome) =>
        RelayClientDiagnostics.Requests.Add(1, new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("outcome", outcome));

    [LoggerMessage(EventId = 10, Level = LogLevel.Debug, Message = "Pushed bundle {BundleId} at position {Position} (duplicate: {Duplicate})")]
    private static partial void LogPushed(ILogger logger, Guid bundleId, long position, bool duplicate);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Relay {Operation} refused: {Status} {Type}: {Detail}")]
    private static partial void LogProblem(ILogger logger, string operation, int status, string type, string detail);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "The relay requires this device to wipe: {Detail}")]
    private static partial void LogWipe(ILogger logger, string detail);

    [LoggerMessage(EventId = 13, Level = LogLevel.Error, Message = "Certificate pinning refused the relay: {Message}")]
    private static partial void LogPinRefused(ILogger logger, string message);
}
