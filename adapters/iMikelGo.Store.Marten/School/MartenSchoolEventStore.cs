using System.Globalization;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using JasperFx;
using JasperFx.Events;
using JasperFx.Events.Projections;
using Marten;
using Marten.Exceptions;

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
/// <item>Exactly once (F05): each event's hash is the primary key of an <see cref="EventHashClaim"/> inserted in the
/// same transaction as the append; the database refuses a second copy, whatever the caller's memory. An append whose
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
    private readonly IDocumentStore _store;
    private readonly bool _owns;

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

    /// <summary>Adds the school event store (string streams, Quick append, hash claims, projections) to a Marten configuration.</summary>
    public static void Configure(StoreOptions marten, SchoolEventStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(marten);
        ArgumentNullException.ThrowIfNull(options);
        marten.DatabaseSchemaName = options.SchemaName;
        marten.AutoCreateSchemaObjects = options.AutoCreateSchema ? AutoCreate.CreateOrUpdate : AutoCreate.None;
        marten.Events.StreamIdentity = StreamIdentity.AsString;
        marten.Events.AppendMode = EventAppendMode.Quick;
        marten.Events.AddEventType<SchoolLogEvent>();
        marten.Schema.For<EventHashClaim>().Identity(x => x.Id);
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
    public async Task<SchoolAppendResult> AppendAsync(
        AccountId account, IReadOnlyList<SignedEvent> events, ReplicaId school, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Any(e => e.Event.Account != account))
        {
            throw new ArgumentException($"every event must belong to account {account}", nameof(events));
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await TryAppendAsync(account, events, school, expectedVersion, cancellationToken).ConfigureAwait(false);
            }
            catch (DocumentAlreadyExistsException) when (attempt < 3)
            {
                // A concurrent writer stored one of these events first: re-read the claims and append the rest.
            }
        }
    }

    private async Task<SchoolAppendResult> TryAppendAsync(
        AccountId account, IReadOnlyList<SignedEvent> events, ReplicaId school, long? expectedVersion, CancellationToken cancellationToken)
    {
        var key = StreamKey(account);
        await using var session = _store.LightweightSession();
        var hashes = events.Select(e => e.Event.Hash.Hex).Distinct(StringComparer.Ordinal).ToList();
        var claims = (await session.LoadManyAsync<EventHashClaim>(cancellationToken, hashes).ConfigureAwait(false))
            .ToDictionary(c => c.Id, c => c.Version, StringComparer.Ordinal);
        var state = await session.Events.FetchStreamStateAsync(key, cancellationToken).ConfigureAwait(false);
        var current = state?.Version ?? 0;
        var fresh = events.Where(e => !claims.ContainsKey(e.Event.Hash.Hex)).DistinctBy(e => e.Event.Hash).ToList();
        if (fresh.Count == 0)
        {
            return new SchoolAppendResult([.. events.Select(e => claims[e.Event.Hash.Hex])], 0, events.Count, current);
        }

        if (expectedVersion is { } expected && expected != current)
        {
            throw new ConcurrencyException(string.Create(CultureInfo.InvariantCulture,
                $"stream {key} is at version {current}{(state is null ? " (it does not exist)" : string.Empty)}, not at the expected version {expected}; nothing was stored"), null);
        }

        var versions = new Dictionary<string, long>(claims, StringComparer.Ordinal);
        var data = new List<object>(fresh.Count);
        for (var i = 0; i < fresh.Count; i++)
        {
            var e = fresh[i];
            var version = current + i + 1;
            versions[e.Event.Hash.Hex] = version;
            session.Insert(new EventHashClaim { Id = e.Event.Hash.Hex, Stream = key, Version = version });
            data.Add(SchoolLogEvent.From(e, e.Event.Replica == school));
        }

        if (state is null)
        {
            session.Events.StartStream(key, [.. data]);
        }
        else
        {
            session.Events.Append(key, current + fresh.Count, [.. data]);
        }

        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return new SchoolAppendResult([.. events.Select(e => versions[e.Event.Hash.Hex])], fresh.Count, events.Count - fresh.Count, current + fresh.Count);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_owns)
        {
            _store.Dispose();
        }
    }
}
