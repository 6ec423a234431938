using IMikelGo.School.Connector;

namespace IMikelGo.SchoolServer;

/// <summary>Options of the school server process (see docs/school-server.md).</summary>
public sealed class SchoolServerOptions
{
    /// <summary>
    /// Directory of the embedded store (<c>school.db</c>, SQLite). Used when <see cref="PostgresConnectionString"/> is
    /// not set; messages are then in memory only (the store stays the source of truth; pushes are re-enqueued at start).
    /// </summary>
    public string? DataDirectory { get; set; }

    /// <summary>
    /// PostgreSQL connection string: the connector's state goes to Marten and Wolverine keeps its messages (durable
    /// local queue, scheduled retries) in the same database.
    /// </summary>
    public string? PostgresConnectionString { get; set; }

    /// <summary>PostgreSQL schema of the school's store and Wolverine's message tables (default <c>imikelgo_school</c>).</summary>
    public string Schema { get; set; } = "imikelgo_school";

    /// <summary>The school id used to create the school when the store is empty; null means the store must already hold one.</summary>
    public string? SchoolId { get; set; }

    /// <summary>The relay's https base address.</summary>
    public Uri? RelayAddress { get; set; }

    /// <summary>The SHA-256 of the relay's certificate (pinned).</summary>
    public string? RelayCertificateSha256 { get; set; }

    /// <summary>How often every account is pulled from the relay; <see cref="TimeSpan.Zero"/> turns scheduled pulls off (default 1 minute, at most <see cref="MaxPullInterval"/>).</summary>
    public TimeSpan PullInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The longest <see cref="PullInterval"/>: what a <see cref="PeriodicTimer"/> accepts (2^32 − 2 ms, about 49.7 days, whole seconds).</summary>
    public static TimeSpan MaxPullInterval { get; } = TimeSpan.FromSeconds((uint.MaxValue - 1L) / 1000);

    /// <summary>Delays of the in-place retries after a relay failure (the message keeps its place; default 1 s, 5 s).</summary>
    public IList<TimeSpan> RetryCooldowns { get; } = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)];

    /// <summary>
    /// Delays of the scheduled retries that follow the cooldowns; the last one repeats for as long as the relay fails,
    /// so a message is never dropped (default 30 s, 2 min, 10 min).
    /// </summary>
    public IList<TimeSpan> RetrySchedule { get; } = [TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2), TimeSpan.FromMinutes(10)];

    /// <summary>Adjusts the connector's settings after the relay address and pin are set (PBKDF2 iterations, relay client retries…).</summary>
    public Action<SchoolConnectorSettings>? ConfigureConnector { get; set; }

    /// <summary>The clock.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>Whether messages are kept durably in PostgreSQL.</summary>
    internal bool Durable => !string.IsNullOrWhiteSpace(PostgresConnectionString);

    /// <summary>Checks the options; the message names what is wrong.</summary>
    /// <exception cref="ArgumentException">Missing or inconsistent options.</exception>
    internal void Validate()
    {
        if (!Durable && string.IsNullOrWhiteSpace(DataDirectory))
        {
            throw new ArgumentException("the school server needs a data directory (embedded store) or a PostgreSQL connection string");
        }

        if (string.IsNullOrWhiteSpace(Schema) || !Schema.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_') || char.IsAsciiDigit(Schema[0]))
        {
            throw new ArgumentException($"schema '{Schema}' is not a valid PostgreSQL schema name (lower-case letters, digits, '_'; not starting with a digit)");
        }

        if (RelayAddress is null || RelayAddress.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException("the school server needs the relay's https address");
        }

        if (PullInterval < TimeSpan.Zero || PullInterval > MaxPullInterval)
        {
            // A longer period makes the scheduler's PeriodicTimer throw once the host runs, which stops the host.
            throw new ArgumentException($"pull interval {PullInterval} is {(PullInterval < TimeSpan.Zero ? "negative" : $"longer than {MaxPullInterval} (the most a timer takes)")}");
        }

        if (RetryCooldowns.Concat(RetrySchedule).Any(d => d < TimeSpan.Zero) || RetrySchedule.Count == 0)
        {
            throw new ArgumentException("the retry delays must not be negative and the retry schedule needs at least one delay");
        }
    }
}
