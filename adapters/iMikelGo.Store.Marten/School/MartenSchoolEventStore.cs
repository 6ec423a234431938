using System.Globalization;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using JasperFx;
using JasperFx.Events;
using JasperFx.Events.Projections;
using Marten;
using Npgsql;
using NpgsqlTypes;
using Weasel.Postgresql;
using Weasel.Postgresql.Tables;

namespace IMikelGo.Store.Marten.School;

/// <summary>Options of the school connector's Marten event store.</summary>
public sealed class SchoolEventStoreOptions
{
    /// <summary>The Npgsql connection string.</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>The PostgreSQL schema (default <c>imikelgo_school</c>).</summary>
    public string SchemaName { get; set; } = "imikelgo_school";

    /// <summary>Create and update the schema at first use (development and tests; default true).</summary>
    public bool AutoCreateSchema { get; set; } = true;
}

/// <summary>The outcome of an append: where each given event is stored (new or already there).</summary>
/// <param name="Versions">Per given event, in order, its version in the account's stream.</param>
/// <param name="Appended">Events newly stored.</param>
/// <param name="Duplicates">Events that were already stored (a no-op, F05).</param>
/// <param name="StreamVersion">The stream's version after the append.</param>
public sealed record SchoolAppendResult(IReadOnlyList<long> Versions, int Appended, int Duplicates, long StreamVersion);

/// <summary>
/// The school's authoritative event store on PostgreSQL through Marten: one stream per teacher account (string key
/// <c>account-&lt;id&gt;</c>, Quick append mode) of verified events stored as their canonical log lines with metadata.
/// <list type="bullet">
/// <item>Exactly once (F05): each event's hash is the primary key of a row of <c>school_event_hashes</c> (hash, stream,
/// version), inserted by one bulk statement in the same transaction as the append; the database refuses a second copy,
/// whatever the caller's memory. Appends to one
/// stream take a transaction-scoped advisory lock, so a concurrent duplicate waits and then finds the claims. An append whose
/// events are all stored already is a no-op that returns their original versions, whatever expected version it names.</item>
/// <item>Expected version (F09): <c>expectedVersion</c> is the stream version before the append. A stream that does not
/// exist has version 0, so an append expecting 3 to a missing stream throws <see cref="ConcurrencyException"/> and creates
/// nothing (checked here and, for existing streams, by Marten's own version check in the same transaction).</item>
/// <item>Inline projections, updated in the append's transaction: <see cref="StudentAbsences"/>,
/// <see cref="TeacherMonthCancellations"/>, <see cref="RescheduleLogEntry"/>, <see cref="DeviceContact"/>.</item>
/// </list>
/// </summary>
public sealed class MartenSchoolEventStore : IDisposable
{
    // Advisory lock class of an account stream ("iMik" + kind, beside the mailbox store's classes).
    private const int StreamLockClass = 0x694D6B10;
    private const string HashTableName = "school_event_hashes";

    private readonly IDocumentStore _store;
    private readonly bool _owns;
    private readonly SemaphoreSlim _schemaGate = new(1, 1);
    private bool _schemaReady;

    /// <summary>Uses <paramref name="store"/>, configured with <see cref="Configure"/>.</summary>
    public MartenSchoolEventStore(IDocumentStore store)
        : this(store, owns: false)
    {
    }

    private MartenSchoolEventStore(IDocumentStore store, bool owns)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _owns = owns;
    }

    /// <summary>The underlying Marten store.</summary>
    public IDocumentStore DocumentStore => _store;

    /// <summary>Creates a store with its own Marten document store (disposed with this object).</summary>
    public static MartenSchoolEventStore Create(SchoolEventStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new ArgumentException("SchoolEventStoreOptions.ConnectionString is required.", nameof(options));
        }

        return new MartenSchoolEventStore(global::Marten.DocumentStore.For(o =>
        {
            o.Connection(options.ConnectionString);
            Configure(o, options);
        }), owns: true);
    }

    /// <summary>The name of the table of stored event hashes (primary key: the hash) in <paramref name="schema"/>.</summary>
    public static string HashTable(string schema) => schema + "." + HashTableName;

    /// <summary>Adds the school event store (string streams, Quick append, hash claims, projections) to a Marten configuration.</summary>
    public static void Configure(StoreOptions marten, SchoolEventStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(marten);
        ArgumentNullException.ThrowIfNull(options);
        MartenSchoolConnectorStore.CheckSchema(options.SchemaName, nameof(options));
        var hashes = new Table(new PostgresqlObjectName(options.SchemaName, HashTableName, SchemaUtils.IdentifierUsage.General));
        hashes.AddColumn<string>("hash").AsPrimaryKey();
        hashes.AddColumn<string>("stream").NotNull();
        hashes.AddColumn<long>("version").NotNull();
        marten.Storage.ExtendedSchemaObjects.Add(hashes);
        marten.DatabaseSchemaName = options.SchemaName;
        marten.AutoCreateSchemaObjects = options.AutoCreateSchema ? AutoCreate.CreateOrUpdate : AutoCreate.None;
        marten.Events.StreamIdentity = StreamIdentity.AsString;
        marten.Events.AppendMode = EventAppendMode.Quick;
        marten.Events.AddEventType<SchoolLogEvent>();
        marten.Projections.Add(new StudentAbsencesProjection(), ProjectionLifecycle.Inline);
        marten.Projections.Add(new TeacherMonthCancellationsProjection(), ProjectionLifecycle.Inline);
        marten.Projections.Add(new RescheduleLogProjection(), ProjectionLifecycle.Inline);
        marten.Projections.Add(new DeviceContactProjection(), ProjectionLifecycle.Inline);
    }

    /// <summary>The stream key of <paramref name="account"/>.</summary>
    public static string StreamKey(AccountId account) => "account-" + account.Value;

    /// <summary>The version of <paramref name="account"/>'s stream (0 when it does not exist).</summary>
    public async Task<long> StreamVersionAsync(AccountId account, CancellationToken cancellationToken = default)
    {
        await using var session = _store.QuerySession();
        var state = await session.Events.FetchStreamStateAsync(StreamKey(account), cancellationToken).ConfigureAwait(false);
        return state?.Version ?? 0;
    }

    /// <summary>The canonical log lines of <paramref name="account"/>'s stream, in stream order.</summary>
    public async Task<IReadOnlyList<string>> ReadLinesAsync(AccountId account, CancellationToken cancellationToken = default)
    {
        await using var session = _store.QuerySession();
        var events = await session.Events.FetchStreamAsync(StreamKey(account), token: cancellationToken).ConfigureAwait(false);
        return [.. events.Select(e => ((SchoolLogEvent)e.Data).Line)];
    }

    /// <summary>
    /// Stores verified events of <paramref name="account"/>; events already stored are skipped (their original version
    /// is returned). <paramref name="school"/> is the school replica of the account (for <see cref="SchoolLogEvent.BySchool"/>).
    /// </summary>
    /// <exception cref="ConcurrencyException">The stream is not at <paramref name="expectedVersion"/>; nothing was stored.</exception>
    /// <exception cref="InvalidOperationException">The schema is managed outside (AutoCreateSchema false) and lacks the hash table; nothing was stored.</exception>
    public async Task<SchoolAppendResult> AppendAsync(
        AccountId account, IReadOnlyList<SignedEvent> events, ReplicaId school, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Any(e => e.Event.Account != account))
        {
            throw new ArgumentException($"every event must belong to account {account}", nameof(events));
        }

        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        await using var session = _store.LightweightSession();
        await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var staged = await StageAppendAsync(session, account, events, school, expectedVersion, cancellationToken).ConfigureAwait(false);
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return staged.Result;
    }

    // Marten creates document and event tables on first use, but not the hash table (an extended schema object): it is
    // applied once per store before the first append, unless the schema is managed outside (AutoCreate.None). Under the
    // schema's advisory lock (the one MartenSchoolConnectorStore takes to open), so that independent stores starting
    // on a fresh schema together do not race on the DDL (Weasel's CREATE statements fail with "already exists").
    private async Task EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        if (_schemaReady || _store.Options is StoreOptions { AutoCreateSchemaObjects: AutoCreate.None })
        {
            return;
        }

        await _schemaGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_schemaReady)
            {
                await using var session = _store.LightweightSession();
                await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await AdvisoryLock.LockAsync(session, MartenSchoolConnectorStore.SchemaLockClass, _store.Options.DatabaseSchemaName, cancellationToken).ConfigureAwait(false);
                await _store.Storage.ApplyAllConfiguredChangesToDatabaseAsync().ConfigureAwait(false);
                _schemaReady = true;
            }
        }
        finally
        {
            _schemaGate.Release();
        }
    }

    /// <summary>
    /// The one append path (also used by <see cref="MartenSchoolConnectorStore"/>): on <paramref name="session"/>'s open
    /// transaction, locks the account's stream until commit (so concurrent writers, on any instance, append one after
    /// the other and the second sees the first's claims), skips events whose hash is claimed, checks the expected
    /// version and stages the hash claims and the stream append. The caller saves the session (the database refuses a
    /// second claim of a hash even from a writer that bypassed the lock).
    /// </summary>
    /// <param name="session">A session with an open transaction.</param>
    /// <param name="account">The account; every event belongs to it.</param>
    /// <param name="events">The events, in append order.</param>
    /// <param name="school">The account's school replica, or null to take it from the account's <c>account.opened</c> event.</param>
    /// <param name="expectedVersion">The stream version the caller expects before the append, if any.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    internal static async Task<StagedAppend> StageAppendAsync(
        IDocumentSession session, AccountId account, IReadOnlyList<SignedEvent> events, ReplicaId? school, long? expectedVersion, CancellationToken cancellationToken)
    {
        var key = StreamKey(account);
        await AdvisoryLock.LockAsync(session, StreamLockClass, key, cancellationToken).ConfigureAwait(false);
        var table = HashTable(session.DocumentStore.Options.DatabaseSchemaName);
        Dictionary<string, long> claims;
        try
        {
            claims = await ClaimedAsync(session, table, [.. events.Select(e => e.Event.Hash.Hex).Distinct(StringComparer.Ordinal)], cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            throw new InvalidOperationException(
                $"the school event store's table {table} does not exist: create the schema (SchoolEventStoreOptions.AutoCreateSchema = true, " +
                $"or apply the objects of MartenSchoolEventStore.Configure with Marten's schema tools); nothing was stored ({e.MessageText})", e);
        }

        var state = await session.Events.FetchStreamStateAsync(key, cancellationToken).ConfigureAwait(false);
        var current = state?.Version ?? 0;
        var fresh = events.Where(e => !claims.ContainsKey(e.Event.Hash.Hex)).DistinctBy(e => e.Event.Hash).ToList();
        if (fresh.Count == 0)
        {
            return new StagedAppend(new SchoolAppendResult([.. events.Select(e => claims[e.Event.Hash.Hex])], 0, events.Count, current), []);
        }

        if (expectedVersion is { } expected && expected != current)
        {
            throw new ConcurrencyException(string.Create(CultureInfo.InvariantCulture,
                $"stream {key} is at version {current}{(state is null ? " (it does not exist)" : string.Empty)}, not at the expected version {expected}; nothing was stored"), null);
        }

        school ??= events.FirstOrDefault(e => e.Event.Seq == 1 && e.Event.Payload is AccountOpened)?.Event.Replica
            ?? (state is null ? null : await OpenedByAsync(session, key, cancellationToken).ConfigureAwait(false));
        var versions = new Dictionary<string, long>(claims, StringComparer.Ordinal);
        var data = new List<object>(fresh.Count);
        var freshHashes = new string[fresh.Count];
        var freshVersions = new long[fresh.Count];
        for (var i = 0; i < fresh.Count; i++)
        {
            var e = fresh[i];
            freshHashes[i] = e.Event.Hash.Hex;
            freshVersions[i] = versions[freshHashes[i]] = current + i + 1;
            data.Add(SchoolLogEvent.From(e, e.Event.Replica == school));
        }

        // One statement for the whole batch, on the session's transaction: the primary key refuses a hash claimed by
        // any writer (also one that bypassed the stream lock), which rolls the whole append back.
#pragma warning disable CA2100 // the table name comes from the store's validated schema name; values are parameters
        await using (var claim = new NpgsqlCommand($"INSERT INTO {table}(hash, stream, version) SELECT h, $2, v FROM unnest($1::text[], $3::bigint[]) AS t(h, v)", session.Connection))
#pragma warning restore CA2100
        {
            claim.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = freshHashes });
            claim.Parameters.Add(new NpgsqlParameter { Value = key });
            claim.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, Value = freshVersions });
            await claim.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        if (state is null)
        {
            session.Events.StartStream(key, [.. data]);
        }
        else
        {
            session.Events.Append(key, current + fresh.Count, [.. data]);
        }

        return new StagedAppend(
            new SchoolAppendResult([.. events.Select(e => versions[e.Event.Hash.Hex])], fresh.Count, events.Count - fresh.Count, current + fresh.Count), fresh);
    }

    // The stored versions of those of hashes already claimed (one query for the batch).
    private static async Task<Dictionary<string, long>> ClaimedAsync(IDocumentSession session, string table, string[] hashes, CancellationToken cancellationToken)
    {
#pragma warning disable CA2100 // the table name comes from the store's validated schema name; values are parameters
        await using var cmd = new NpgsqlCommand($"SELECT hash, version FROM {table} WHERE hash = ANY($1)", session.Connection);
#pragma warning restore CA2100
        cmd.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = hashes });
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var claimed = new Dictionary<string, long>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            claimed[reader.GetString(0)] = reader.GetInt64(1);
        }

        return claimed;
    }

    // The school replica of an account is the author of its first event, account.opened (as the engine's ledger decides).
    private static async Task<ReplicaId?> OpenedByAsync(IDocumentSession session, string key, CancellationToken cancellationToken)
    {
        var first = await session.Events.FetchStreamAsync(key, version: 1, token: cancellationToken).ConfigureAwait(false);
        return first.Count > 0 && first[0].Data is SchoolLogEvent { Type: "account.opened" } opened ? new ReplicaId(opened.Replica) : null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _schemaGate.Dispose();
        if (_owns)
        {
            _store.Dispose();
        }
    }
}

/// <summary>An append staged in a session: its result and the events it will store.</summary>
/// <param name="Result">The outcome once saved.</param>
/// <param name="Fresh">The events newly staged, in append order (duplicates removed).</param>
internal sealed record StagedAppend(SchoolAppendResult Result, IReadOnlyList<SignedEvent> Fresh);
