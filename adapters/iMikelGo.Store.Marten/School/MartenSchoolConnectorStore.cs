using System.Text.RegularExpressions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Sync;
using JasperFx;
using Marten;
using Marten.Services;
using Npgsql;
using NpgsqlTypes;
using Weasel.Postgresql;
using Weasel.Postgresql.Tables;

namespace IMikelGo.Store.Marten.School;

/// <summary>
/// The production <see cref="ISchoolConnectorStore"/>: the school connector's state in PostgreSQL, beside the school's
/// Marten event store (<see cref="MartenSchoolEventStore"/>) in the same schema.
/// <list type="bullet">
/// <item>Events go through <see cref="MartenSchoolEventStore"/>'s one append path into the account streams, so the
/// admin projections are fed in the same transaction; the primary key of its <c>school_event_hashes</c> table makes an
/// event stored once, whatever instance or retry.</item>
/// <item><c>school_outbox</c> (ordinal, event hash unique, account, acknowledged) keeps the connector's append order
/// and the per-event acknowledgement; it is written in the append's transaction, with the import's published mark.</item>
/// <item><c>school_values</c> (name → bytea) and <c>school_imports</c> (version bigserial) hold settings, keys and
/// imported sources.</item>
/// </list>
/// Every write is committed (durable) before the call returns. See docs/stores.md.
/// </summary>
public sealed partial class MartenSchoolConnectorStore : ISchoolConnectorStore
{
    // Advisory lock class of a schema's DDL (key: the schema name), shared with MartenSchoolEventStore's first append.
    internal const int SchemaLockClass = 0x694D6B11;

    // Advisory lock class of the connector's writer lock (session-level, one per schema).
    private const int WriterLockClass = 0x694D6B12;
    private const int SaveChunk = 1000;
    private readonly IDocumentStore _store;
    private readonly bool _owns;
    private readonly string _values;
    private readonly string _imports;
    private readonly string _outbox;
    private readonly string _schema;

    private MartenSchoolConnectorStore(IDocumentStore store, string schema, bool owns)
    {
        _store = store;
        _owns = owns;
        _schema = schema;
        _values = $"{schema}.school_values";
        _imports = $"{schema}.school_imports";
        _outbox = $"{schema}.school_outbox";
    }

    /// <summary>The underlying Marten store (its projections are the administration's read models).</summary>
    public IDocumentStore DocumentStore => _store;

    /// <summary>
    /// Opens the store in <paramref name="schema"/> of the database at <paramref name="connectionString"/> with its own
    /// Marten document store (disposed with this object), creating or updating the schema objects as needed.
    /// </summary>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <param name="schema">The PostgreSQL schema: lower-case letters, digits and '_', starting with a letter or '_'.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="ArgumentException">An empty connection string or an invalid schema name.</exception>
    public static async Task<MartenSchoolConnectorStore> OpenAsync(string connectionString, string schema, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var options = new SchoolEventStoreOptions { ConnectionString = connectionString, SchemaName = CheckSchema(schema, nameof(schema)) };
        var store = global::Marten.DocumentStore.For(o =>
        {
            o.Connection(connectionString);
            Configure(o, options);
        });
        try
        {
            return await OpenAsync(store, owns: true, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the store on an existing Marten store configured with <see cref="Configure"/> (for example the one a host
    /// shares with Wolverine); the caller keeps owning <paramref name="store"/>. Creates or updates the schema objects
    /// unless the store's AutoCreate is None, in which case they must exist.
    /// </summary>
    /// <exception cref="InvalidOperationException">The store was not configured with <see cref="Configure"/> or its tables do not exist.</exception>
    public static Task<MartenSchoolConnectorStore> OpenAsync(IDocumentStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        return OpenAsync(store, owns: false, cancellationToken);
    }

    /// <summary>Adds the school event store and the connector's tables to a Marten configuration.</summary>
    public static void Configure(StoreOptions marten, SchoolEventStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(marten);
        ArgumentNullException.ThrowIfNull(options);
        var schema = CheckSchema(options.SchemaName, nameof(options));
        MartenSchoolEventStore.Configure(marten, options);

        var values = new Table(new PostgresqlObjectName(schema, "school_values", SchemaUtils.IdentifierUsage.General));
        values.AddColumn<string>("name").AsPrimaryKey();
        values.AddColumn("value", "bytea").NotNull();

        var imports = new Table(new PostgresqlObjectName(schema, "school_imports", SchemaUtils.IdentifierUsage.General));
        imports.AddColumn<long>("version").AsPrimaryKey().BigAutoIncrement();
        imports.AddColumn<string>("format").NotNull();
        imports.AddColumn<string>("solution").AllowNulls();
        imports.AddColumn<string>("content").NotNull();
        imports.AddColumn<bool>("published").NotNull().DefaultValueByExpression("false");

        var outbox = new Table(new PostgresqlObjectName(schema, "school_outbox", SchemaUtils.IdentifierUsage.General));
        outbox.AddColumn<long>("n").AsPrimaryKey().BigAutoIncrement();
        outbox.AddColumn<string>("hash").NotNull();
        outbox.AddColumn<string>("account").NotNull();
        outbox.AddColumn<bool>("acked").NotNull();
        outbox.Indexes.Add(new IndexDefinition("ux_school_outbox_hash") { Columns = ["hash"], IsUnique = true });
        outbox.Indexes.Add(new IndexDefinition("ix_school_outbox_unacked") { Columns = ["account"], Predicate = "acked = false" });

        marten.Storage.ExtendedSchemaObjects.Add(values);
        marten.Storage.ExtendedSchemaObjects.Add(imports);
        marten.Storage.ExtendedSchemaObjects.Add(outbox);
    }

    /// <inheritdoc />
    public async Task<byte[]?> GetValueAsync(string name, CancellationToken cancellationToken)
    {
        CheckName(name);
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Command(db, $"SELECT value FROM {_values} WHERE name = $1", name);
        return await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as byte[];
    }

    /// <inheritdoc />
    public async Task SetValueAsync(string name, byte[]? value, CancellationToken cancellationToken)
    {
        CheckName(name);
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = value is null
            ? Command(db, $"DELETE FROM {_values} WHERE name = $1", name)
            : Command(db, $"INSERT INTO {_values}(name, value) VALUES($1, $2) ON CONFLICT(name) DO UPDATE SET value = excluded.value", name, value);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<KeyValuePair<string, byte[]>>> ListValuesAsync(string prefix, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

        // Ordinal (byte) order, as SQLite's BINARY collation, whatever the database's collation.
        await using var cmd = Command(db, $"SELECT name, value FROM {_values} WHERE starts_with(name, $1) ORDER BY name COLLATE \"C\"", prefix);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<KeyValuePair<string, byte[]>>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new(reader.GetString(0), (byte[])reader.GetValue(1)));
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<int> AppendEventsAsync(IReadOnlyList<StoredSchoolEvent> events, bool acknowledged, long? publishedImport, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        var parsed = events.Select(StoredSchoolEvents.Parse).ToList();
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var tx = await db.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (publishedImport is { } version)
        {
            await using var mark = Command(db, $"UPDATE {_imports} SET published = true WHERE version = $1", version);
            if (await mark.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw new ArgumentException($"there is no import with version {version}; nothing was stored", nameof(publishedImport));
            }
        }

        await using var session = _store.LightweightSession(SessionOptions.ForTransaction(tx, shouldAutoCommit: false));

        // Accounts in a fixed order, so two writers of the same accounts take the stream locks in the same order.
        var fresh = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in parsed.GroupBy(e => e.Event.Account).OrderBy(g => g.Key.Value, StringComparer.Ordinal))
        {
            // Saved in chunks inside the one transaction: Marten's unit of work slows down sharply with its size (12,450
            // events in one SaveChanges took 3x as long as per account). A later chunk sees the earlier chunks' claims (same transaction).
            foreach (var chunk in group.Chunk(SaveChunk))
            {
                var staged = await MartenSchoolEventStore.StageAppendAsync(session, group.Key, chunk, null, null, cancellationToken).ConfigureAwait(false);
                fresh.UnionWith(staged.Fresh.Select(e => e.Event.Hash.Hex));
                await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        // The outbox rows in the caller's order (each new event once): their ordinal is the append order.
        var added = parsed.Where(e => fresh.Remove(e.Event.Hash.Hex)).ToList();
        if (added.Count > 0)
        {
            await using var outbox = Command(db,
                $"INSERT INTO {_outbox}(hash, account, acked) SELECT h, a, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(h, a, o) ORDER BY o",
                added.Select(e => e.Event.Hash.Hex).ToArray(), added.Select(e => e.Event.Account.Value).ToArray(), acknowledged);
            await outbox.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return added.Count;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredSchoolEvent>> ReadEventsAsync(CancellationToken cancellationToken)
    {
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

        // One snapshot for both reads, so an append committing in between is either wholly in or wholly out.
        await using var tx = await db.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        var order = new List<string>();
        await using (var cmd = Command(db, $"SELECT hash FROM {_outbox} ORDER BY n"))
        await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                order.Add(reader.GetString(0));
            }
        }

        await using var session = _store.QuerySession(SessionOptions.ForTransaction(tx, shouldAutoCommit: false));
        var stored = (await session.Events.QueryRawEventDataOnly<SchoolLogEvent>().ToListAsync(cancellationToken).ConfigureAwait(false))
            .ToDictionary(e => e.Hash, StringComparer.Ordinal);
        return [.. order.Select(h => stored[h]).Select(e => new StoredSchoolEvent(e.Hash, e.Account, e.Replica, e.Seq, e.Line))];
    }

    /// <inheritdoc />
    public async Task MarkAcknowledgedAsync(IEnumerable<string> hashes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hashes);
        var list = hashes.ToArray();
        if (list.Any(h => h is null))
        {
            throw new ArgumentException("a hash is null", nameof(hashes));
        }

        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Command(db, $"UPDATE {_outbox} SET acked = true WHERE hash = ANY($1) AND NOT acked", (object)list);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlySet<string>> UnacknowledgedAsync(string account, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(account);
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Command(db, $"SELECT hash FROM {_outbox} WHERE account = $1 AND acked = false", account);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            set.Add(reader.GetString(0));
        }

        return set;
    }

    /// <inheritdoc />
    public async Task<long> AddImportAsync(string format, string? solution, string content, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(format);
        ArgumentNullException.ThrowIfNull(content);
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Command(db, $"INSERT INTO {_imports}(format, solution, content) VALUES($1, $2, $3) RETURNING version",
            format, (object?)solution ?? DBNull.Value, content);
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredImport>> ImportsAsync(CancellationToken cancellationToken)
    {
        await using var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Command(db, $"SELECT version, format, solution, content, published FROM {_imports} ORDER BY version");
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<StoredImport>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new(reader.GetInt64(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetBoolean(4)));
        }

        return list;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (_owns)
        {
            _store.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private static async Task<MartenSchoolConnectorStore> OpenAsync(IDocumentStore store, bool owns, CancellationToken cancellationToken)
    {
        var schema = CheckSchema(store.Options.DatabaseSchemaName, nameof(store));
        var opened = new MartenSchoolConnectorStore(store, schema, owns);
        if (store.Options is not StoreOptions { AutoCreateSchemaObjects: AutoCreate.None })
        {
            // Under an advisory lock, so that a school server and a CLI starting together do not race on the DDL.
            await using var session = store.LightweightSession();
            await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await AdvisoryLock.LockAsync(session, SchemaLockClass, schema, cancellationToken).ConfigureAwait(false);
            await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync().ConfigureAwait(false);
        }

        try
        {
            await opened.ImportsAsync(cancellationToken).ConfigureAwait(false);
            await opened.UnacknowledgedAsync("-", cancellationToken).ConfigureAwait(false);
            await opened.GetValueAsync("-", cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            throw new InvalidOperationException(
                $"the school connector tables do not exist in schema '{schema}': configure the Marten store with MartenSchoolConnectorStore.Configure and create its schema ({e.MessageText})", e);
        }

        return opened;
    }

    /// <inheritdoc />
    /// <remarks>
    /// A session-level <c>pg_try_advisory_lock</c> on the schema, held on a connection of its own until the handle is
    /// disposed; PostgreSQL releases it when that connection ends, so a crashed writer never leaves it behind.
    /// </remarks>
    public async Task<IAsyncDisposable?> TryLockWriterAsync(CancellationToken cancellationToken)
    {
        var db = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var cmd = Command(db, "SELECT pg_try_advisory_lock($1, hashtext($2))", WriterLockClass, _schema);
            if (await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
            {
                return new WriterLock(db, _schema);
            }
        }
        catch
        {
            await db.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        await db.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    // Unlocks explicitly: a pooled connection returned to the pool keeps its session (and the lock) until reused.
    private sealed class WriterLock(NpgsqlConnection db, string schema) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var cmd = Command(db, "SELECT pg_advisory_unlock($1, hashtext($2))", WriterLockClass, schema);
                await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            catch (NpgsqlException)
            {
                // The connection is gone, and the lock with its session.
                NpgsqlConnection.ClearPool(db);
            }
            finally
            {
                await db.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var db = _store.Storage.Database.CreateConnection();
        try
        {
            await db.OpenAsync(cancellationToken).ConfigureAwait(false);
            return db;
        }
        catch
        {
            await db.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static NpgsqlCommand Command(NpgsqlConnection db, string sql, params object[] parameters)
    {
#pragma warning disable CA2100 // table names come from a validated schema name; values are parameters
        var cmd = new NpgsqlCommand(sql, db);
#pragma warning restore CA2100
        foreach (var value in parameters)
        {
            cmd.Parameters.Add(value is string[] texts
                ? new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = texts }
                : new NpgsqlParameter { Value = value });
        }

        return cmd;
    }

    private static void CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("a value name must not contain NUL", nameof(name));
        }
    }

    /// <summary>Checks a schema name as <see cref="OpenAsync(string, string, CancellationToken)"/> does.</summary>
    /// <exception cref="ArgumentException">Not a valid schema name, or one PostgreSQL reserves (pg_…, information_schema).</exception>
    public static string CheckSchemaName(string? schema) => CheckSchema(schema, nameof(schema));

    internal static string CheckSchema(string? schema, string parameter) =>
        schema is null || !SchemaName().IsMatch(schema)
            ? throw new ArgumentException($"'{schema}' is not a valid schema name (lower-case letters, digits and '_', starting with a letter or '_', at most 63)", parameter)
            : schema.StartsWith("pg_", StringComparison.Ordinal) || schema == "information_schema"
                ? throw new ArgumentException($"'{schema}' is a schema name PostgreSQL reserves for its system schemas (pg_…, information_schema); choose another", parameter)
                : schema;

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex SchemaName();
}
