namespace IMikelGo.Engine.Sync;

/// <summary>One stored event of a school account log: the canonical signed line, unique by hash.</summary>
/// <param name="Hash">The event hash (hex); the database enforces its uniqueness.</param>
/// <param name="Account">The account.</param>
/// <param name="Replica">The author replica.</param>
/// <param name="Seq">The author's sequence number.</param>
/// <param name="Line">The canonical signed line (re-verified on load).</param>
public sealed record StoredSchoolEvent(string Hash, string Account, string Replica, long Seq, string Line);

/// <summary>An imported timetable source, kept so the publisher's baseline can be rebuilt after a restart.</summary>
/// <param name="Version">Store-assigned, increasing.</param>
/// <param name="Format">"xhstt", "json" or "csv".</param>
/// <param name="Solution">The XHSTT solution group, or null.</param>
/// <param name="Content">The source text.</param>
/// <param name="Published">Whether it was published (its events are stored).</param>
public sealed record StoredImport(long Version, string Format, string? Solution, string Content, bool Published);

/// <summary>
/// The school connector's durable state (port): settings and keys (name → bytes), the account logs (unique by
/// event hash, enforced by the database), the outbox (per-event acknowledged flag) and the imported timetables.
/// Implementations: SqliteSchoolConnectorStore (iMikelGo.Store.Sqlite, embedded default) and MartenSchoolConnectorStore (iMikelGo.Store.Marten). Every write is durable on return.
/// </summary>
public interface ISchoolConnectorStore : IAsyncDisposable
{
    /// <summary>A stored value, or null.</summary>
    Task<byte[]?> GetValueAsync(string name, CancellationToken cancellationToken);

    /// <summary>Stores (or deletes, with null) a value.</summary>
    Task SetValueAsync(string name, byte[]? value, CancellationToken cancellationToken);

    /// <summary>All values whose name starts with <paramref name="prefix"/>, by name.</summary>
    Task<IReadOnlyList<KeyValuePair<string, byte[]>>> ListValuesAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>
    /// Appends events in one transaction; an event whose hash is stored is skipped (the primary key decides). When
    /// <paramref name="publishedImport"/> is given, that import is marked published in the same transaction.
    /// </summary>
    /// <returns>How many were new.</returns>
    Task<int> AppendEventsAsync(IReadOnlyList<StoredSchoolEvent> events, bool acknowledged, long? publishedImport, CancellationToken cancellationToken);

    /// <summary>Every stored event in append order.</summary>
    Task<IReadOnlyList<StoredSchoolEvent>> ReadEventsAsync(CancellationToken cancellationToken);

    /// <summary>Marks events as acknowledged by the relay.</summary>
    Task MarkAcknowledgedAsync(IEnumerable<string> hashes, CancellationToken cancellationToken);

    /// <summary>The hashes of an account's events not yet acknowledged.</summary>
    Task<IReadOnlySet<string>> UnacknowledgedAsync(string account, CancellationToken cancellationToken);

    /// <summary>Stores an imported source (not yet published).</summary>
    Task<long> AddImportAsync(string format, string? solution, string content, CancellationToken cancellationToken);

    /// <summary>Every import, by version.</summary>
    Task<IReadOnlyList<StoredImport>> ImportsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Takes the store's writer lock, held until the returned handle is disposed: one connector writes a store at a
    /// time, whatever process or machine it runs on (two writers, each with its own in-memory account replicas, would
    /// append different school events at the same position and fork an account's log). Null when it is held elsewhere.
    /// </summary>
    Task<IAsyncDisposable?> TryLockWriterAsync(CancellationToken cancellationToken);
}
