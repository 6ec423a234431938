using IMikelGo.Engine.Relay;

namespace IMikelGo.Relay;

/// <summary>Which mailbox store the relay runs on.</summary>
public enum RelayStoreKind
{
    /// <summary>The embedded SQLite store in the data directory (single machine; the default).</summary>
    Embedded,

    /// <summary>PostgreSQL through Marten (several instances may share it).</summary>
    Postgres,

    /// <summary>An in-process, non-durable store: a fast path for tests and demos only; everything is lost at stop.</summary>
    InMemory,
}

/// <summary>A school known to the relay: the account it owns and the key its requests are signed with.</summary>
/// <param name="Account">The account (mailbox) id.</param>
/// <param name="School">The school's replica id.</param>
/// <param name="SigningKey">The school's SubjectPublicKeyInfo, base64.</param>
public sealed record SchoolRegistration(string Account, string School, string SigningKey);

/// <summary>Settings of one relay instance (docs/relay.md).</summary>
public sealed class RelayOptions
{
    /// <summary>HTTPS URLs to listen on; only <c>https://</c> is accepted. Default: <c>https://0.0.0.0:443</c>.</summary>
    public IList<string> Urls { get; } = [];

    /// <summary>Directory for the embedded store, the generated certificate and <c>schools.json</c>.</summary>
    public string DataDirectory { get; set; } = "relay-data";

    /// <summary>The mailbox store.</summary>
    public RelayStoreKind Store { get; set; } = RelayStoreKind.Embedded;

    /// <summary>PostgreSQL connection string (for <see cref="RelayStoreKind.Postgres"/>).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Overrides <see cref="Store"/>: builds the store from the service provider (tests, embedding hosts).</summary>
    public Func<IServiceProvider, IMailboxStore>? StoreFactory { get; set; }

    /// <summary>A PFX certificate to serve (production); when null a self-signed one is generated in <see cref="DataDirectory"/>.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The password of <see cref="CertificatePath"/>.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>The signed update feed served read-only at <c>/updates/</c> (docs/updates.md); null serves none.</summary>
    public string? UpdateFeedDirectory { get; set; }

    /// <summary>Schools seeded into the store at start, in addition to <c>DataDirectory/schools.json</c>.</summary>
    public IList<SchoolRegistration> Schools { get; } = [];

    /// <summary>Most bytes of sealed bundles one account's mailbox may hold.</summary>
    public long MailboxQuotaBytes { get; set; } = 1L << 30;

    /// <summary>Token-bucket size of the per-caller rate limit (requests).</summary>
    public int RateLimitBurst { get; set; } = 100;

    /// <summary>Requests per second refilled into each caller's bucket.</summary>
    public int RateLimitPerSecond { get; set; } = 50;

    /// <summary>Token-bucket size of the enrollment-submission limit, per source IP and per license-key hash.</summary>
    public int EnrollmentRateLimitBurst { get; set; } = 10;

    /// <summary>Enrollment submissions per minute refilled into each source IP's and license-key hash's bucket.</summary>
    public int EnrollmentRateLimitPerMinute { get; set; } = 10;

    /// <summary>Most unanswered enrollment requests queued per school (further submissions get 429 <c>queue-full</c>).</summary>
    public int MaxPendingEnrollments { get; set; } = 1000;

    /// <summary>How often a long-poll re-reads the store (catches bundles pushed through other instances).</summary>
    public TimeSpan LongPollStoreInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest long-poll wait a client may ask for.</summary>
    public TimeSpan MaxLongPoll { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The relay's clock (tests may fake it).</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}
