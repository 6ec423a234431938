namespace IMikelGo.Relay.Client;

/// <summary>How the relay client connects, retries and syncs (see docs/relay-client.md).</summary>
public sealed class RelayClientOptions
{
    /// <summary>The relay's HTTPS base address, e.g. <c>https://relay.example:443/</c>.</summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>
    /// The SHA-256 fingerprint (hex, colons or spaces allowed) of the relay's certificate (its DER encoding), as
    /// carried in the enrollment QR payload. The client accepts exactly this certificate, whatever its CA trust.
    /// </summary>
    public string? PinnedCertificateSha256 { get; set; }

    /// <summary>
    /// When no pin is configured, fall back to ordinary CA validation instead of refusing to start. Off by
    /// default: a device always has the pin from its enrollment.
    /// </summary>
    public bool AllowUnpinnedCertificate { get; set; }

    /// <summary>Retries of one request after a transient failure (5xx, 408, 429, network error, attempt timeout).</summary>
    public int MaxRetries { get; set; } = 4;

    /// <summary>First retry delay; doubles on each retry (exponential backoff).</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest backoff delay between two attempts of one request.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Adds random jitter to backoff delays (on by default so devices do not retry in lockstep).</summary>
    public bool UseJitter { get; set; } = true;

    /// <summary>
    /// The longest <c>Retry-After</c> waited inside one call; a longer one ends the call with a
    /// <see cref="RelayException"/> whose <see cref="RelayException.RetryAfter"/> tells the scheduler when to come back.
    /// </summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Timeout of one attempt (a long-poll pull adds its wait to it).</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>TCP+TLS connect timeout.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Checks the options; throws <see cref="InvalidOperationException"/> naming what is wrong.</summary>
    public void Validate()
    {
        if (BaseAddress is null || !BaseAddress.IsAbsoluteUri)
        {
            throw new InvalidOperationException("RelayClientOptions.BaseAddress must be an absolute https URI");
        }

        if (!string.Equals(BaseAddress.Scheme, Uri.UriSchemeHttps, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"the relay is reached over HTTPS only, not {BaseAddress.Scheme}");
        }

        if (string.IsNullOrWhiteSpace(PinnedCertificateSha256))
        {
            if (!AllowUnpinnedCertificate)
            {
                throw new InvalidOperationException("RelayClientOptions.PinnedCertificateSha256 is required (set AllowUnpinnedCertificate to use CA validation)");
            }
        }
        else
        {
            _ = CertificatePin.Normalize(PinnedCertificateSha256);
        }

        if (MaxRetries < 0 || RetryBaseDelay < TimeSpan.Zero || MaxRetryDelay < TimeSpan.Zero || MaxRetryAfter < TimeSpan.Zero)
        {
            throw new InvalidOperationException("retry counts and delays must not be negative");
        }

        if (AttemptTimeout <= TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero)
        {
            throw new InvalidOperationException("timeouts must be positive");
        }
    }
}
