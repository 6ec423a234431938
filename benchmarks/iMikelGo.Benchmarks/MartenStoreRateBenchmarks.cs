using BenchmarkDotNet.Attributes;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Sync;
using IMikelGo.Store.Marten.School;
using JasperFx;
using JasperFx.Events;
using Marten;
using Npgsql;

namespace IMikelGo.Benchmarks;

/// <summary>
/// Issue #6: ingest of the 100,000-event <see cref="EngineData"/> log into Marten/PostgreSQL (the
/// <c>scripts/pg-start.sh</c> cluster; connection from <c>IMIKELGO_POSTGRES</c>) in batches of 1,000 events, per event
/// (OperationsPerInvoke = 100,000, so events/s = 1 / mean):
/// <list type="bullet">
/// <item><see cref="MartenQuickAppend"/> (baseline): Marten's own <c>session.Events.Append</c> of the same
/// <see cref="SchoolLogEvent"/> payloads (prepared), <see cref="EventAppendMode.Quick"/>, one string stream, no
/// projections, one <c>SaveChangesAsync</c> per batch.</item>
/// <item><see cref="ConnectorStoreAppend"/>: <see cref="MartenSchoolConnectorStore.AppendEventsAsync"/> of the stored
/// lines (line check, stream advisory lock, hash claims (one bulk insert), Quick append, the four inline admin projections, outbox rows;
/// one transaction per batch).</item>
/// <item><see cref="ConnectorVerifyAndStore"/>: what the connector does with a pulled page — verify and merge into the
/// account's school replica (<see cref="Replica.Receive"/>), then store the applied events as above.</item>
/// </list>
/// Each iteration starts from empty tables (events, streams, documents, the hash claims and the outbox are deleted in the iteration
/// setup; the Marten stores and their generated code are reused across iterations).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(LongSingleShotInProcessConfig))]
public class MartenStoreRateBenchmarks : IDisposable
{
    private const int Batch = 1_000;
    private const int Events = EngineData.EventCount;
    private string _connection = "";
    private string _connectorSchema = "";
    private string _quickSchema = "";
    private EngineData _data = null!;
    private StoredSchoolEvent[][] _stored = [];
    private SignedEvent[][] _signed = [];
    private SchoolLogEvent[][] _payloads = [];
    private MartenSchoolConnectorStore _connector = null!;
    private DocumentStore _quick = null!;

    [GlobalSetup]
    public void Setup()
    {
        _data = EngineData.Shared;
        var school = _data.Keys[0].Replica;
        _signed = [.. _data.Events.Chunk(Batch)];
        _stored = [.. _signed.Select(b => b.Select(e => new StoredSchoolEvent(e.Event.Hash.Hex, e.Event.Account.Value, e.Event.Replica.Value, e.Event.Seq, e.ToLine())).ToArray())];
        _payloads = [.. _signed.Select(b => b.Select(e => SchoolLogEvent.From(e, e.Event.Replica == school)).ToArray())];
        _connection = RelayWorld.PostgresConnection();
        var id = Guid.NewGuid().ToString("N")[..8];
        _connectorSchema = "bench_school_" + id;
        _quickSchema = "bench_quick_" + id;
        _connector = MartenSchoolConnectorStore.OpenAsync(_connection, _connectorSchema, CancellationToken.None).GetAwaiter().GetResult();
        _quick = DocumentStore.For(o =>
        {
            o.Connection(_connection);
            o.DatabaseSchemaName = _quickSchema;
            o.AutoCreateSchemaObjects = AutoCreate.CreateOrUpdate;
            o.Events.StreamIdentity = StreamIdentity.AsString;
            o.Events.AppendMode = EventAppendMode.Quick;
            o.Events.AddEventType<SchoolLogEvent>();
        });
        _quick.Storage.ApplyAllConfiguredChangesToDatabaseAsync().GetAwaiter().GetResult();
    }

    [IterationSetup]
    public void Empty()
    {
        _quick.Advanced.Clean.DeleteAllEventDataAsync().GetAwaiter().GetResult();
        _connector.DocumentStore.Advanced.Clean.DeleteAllEventDataAsync().GetAwaiter().GetResult();
        _connector.DocumentStore.Advanced.Clean.DeleteAllDocumentsAsync().GetAwaiter().GetResult();
        Sql($"TRUNCATE {_connectorSchema}.school_outbox, {MartenSchoolEventStore.HashTable(_connectorSchema)}");
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Events)]
    public async Task MartenQuickAppend()
    {
        var stream = MartenSchoolEventStore.StreamKey(_data.Account);
        foreach (var batch in _payloads)
        {
            await using var session = _quick.LightweightSession();
            session.Events.Append(stream, batch);
            await session.SaveChangesAsync();
        }
    }

    [Benchmark(OperationsPerInvoke = Events)]
    public async Task<int> ConnectorStoreAppend()
    {
        var stored = 0;
        foreach (var batch in _stored)
        {
            stored += await _connector.AppendEventsAsync(batch, acknowledged: true, null, CancellationToken.None);
        }

        return stored == Events ? stored : throw new InvalidOperationException($"stored {stored} of {Events} events");
    }

    [Benchmark(OperationsPerInvoke = Events)]
    public async Task<int> ConnectorVerifyAndStore()
    {
        var replica = new Replica(_data.Account, EngineData.Key("connector"));
        var stored = 0;
        foreach (var batch in _signed)
        {
            var report = replica.Receive(batch);
            var applied = report.Applied.Select(e => replica.Ledger.Find(e.Account, e.Replica, e.Seq)!)
                .Select(e => new StoredSchoolEvent(e.Event.Hash.Hex, e.Event.Account.Value, e.Event.Replica.Value, e.Event.Seq, e.ToLine())).ToList();
            stored += applied.Count == 0 ? 0 : await _connector.AppendEventsAsync(applied, acknowledged: true, null, CancellationToken.None);
        }

        return stored == Events ? stored : throw new InvalidOperationException($"stored {stored} of {Events} events");
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _connector?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _quick?.Dispose();
        if (_connection.Length > 0)
        {
            Sql($"DROP SCHEMA IF EXISTS {_connectorSchema} CASCADE; DROP SCHEMA IF EXISTS {_quickSchema} CASCADE");
        }

        GC.SuppressFinalize(this);
    }

    private void Sql(string sql)
    {
        using var db = new NpgsqlConnection(_connection);
        db.Open();
        using var cmd = new NpgsqlCommand(sql, db);
        cmd.ExecuteNonQuery();
    }
}

/// <summary>
/// <c>ingest-splits [batches]</c>: where the connector's ingest time goes, per 1,000-event batch of the same data, on
/// fresh schemas: Marten's Quick append alone; the same append on a store configured like the school event store
/// (<see cref="MartenSchoolEventStore.Configure"/>: the four inline admin projections, no hash claims, no lock); and
/// <see cref="MartenSchoolConnectorStore.AppendEventsAsync"/>. Prints the time of selected batches, so growth with the
/// stream's length shows.
/// </summary>
internal static class IngestSplits
{
    private const int Batch = 1_000;

    public static int Run(int batches = 30)
    {
        var data = EngineData.Shared;
        var school = data.Keys[0].Replica;
        var signed = data.Events.Chunk(Batch).Take(batches).ToArray();
        var payloads = signed.Select(b => b.Select(e => SchoolLogEvent.From(e, e.Event.Replica == school)).ToArray()).ToArray();
        var stored = signed.Select(b => b.Select(e => new StoredSchoolEvent(e.Event.Hash.Hex, e.Event.Account.Value, e.Event.Replica.Value, e.Event.Seq, e.ToLine())).ToArray()).ToArray();
        var connection = RelayWorld.PostgresConnection();
        var id = Guid.NewGuid().ToString("N")[..8];
        var stream = MartenSchoolEventStore.StreamKey(data.Account);
        var schemas = new[] { "splits_quick_" + id, "splits_proj_" + id, "splits_conn_" + id };
        using var quick = DocumentStore.For(o =>
        {
            o.Connection(connection);
            o.DatabaseSchemaName = schemas[0];
            o.Events.StreamIdentity = StreamIdentity.AsString;
            o.Events.AppendMode = EventAppendMode.Quick;
            o.Events.AddEventType<SchoolLogEvent>();
        });
        using var projected = DocumentStore.For(o =>
        {
            o.Connection(connection);
            MartenSchoolEventStore.Configure(o, new SchoolEventStoreOptions { ConnectionString = connection, SchemaName = schemas[1] });
        });
        var connector = MartenSchoolConnectorStore.OpenAsync(connection, schemas[2], CancellationToken.None).GetAwaiter().GetResult();
        try
        {
            quick.Storage.ApplyAllConfiguredChangesToDatabaseAsync().GetAwaiter().GetResult();
            projected.Storage.ApplyAllConfiguredChangesToDatabaseAsync().GetAwaiter().GetResult();
            var times = new double[4][];
            times[0] = Time(batches, i => Append(quick, stream, payloads[i]));
            times[1] = Time(batches, i => Append(projected, stream, payloads[i]));
            times[2] = Time(batches, async i => await connector.AppendEventsAsync(stored[i], acknowledged: true, null, CancellationToken.None));
            times[3] = Time(batches, i =>
            {
                // The connector's CPU work before the database: line check and the event payloads.
                _ = stored[i].Select(StoredSchoolEvents.Parse).Select(e => SchoolLogEvent.From(e, e.Event.Replica == school)).ToList();
                return Task.CompletedTask;
            });
            Console.WriteLine("batch  quick-append  +projections  connector-store  (of which parse)   (ms per 1,000 events)");
            foreach (var i in new[] { 0, 1, 2, 4, 9, 19, 29, 49, 74, 99 }.Where(i => i < batches))
            {
                Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{i + 1,5}  {times[0][i],12:F0}  {times[1][i],12:F0}  {times[2][i],15:F0}  {times[3][i],16:F0}"));
            }

            Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"total  {times[0].Sum(),12:F0}  {times[1].Sum(),12:F0}  {times[2].Sum(),15:F0}  {times[3].Sum(),16:F0}   ({batches * Batch} events; events/s {batches * Batch / times[0].Sum() * 1000:F0} / {batches * Batch / times[1].Sum() * 1000:F0} / {batches * Batch / times[2].Sum() * 1000:F0})"));
            return 0;
        }
        finally
        {
            connector.DisposeAsync().AsTask().GetAwaiter().GetResult();
            using var db = new NpgsqlConnection(connection);
            db.Open();
            foreach (var schema in schemas)
            {
                using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", db);
                drop.ExecuteNonQuery();
            }
        }
    }

    private static async Task Append(DocumentStore store, string stream, SchoolLogEvent[] batch)
    {
        await using var session = store.LightweightSession();
        session.Events.Append(stream, batch);
        await session.SaveChangesAsync();
    }

    private static double[] Time(int batches, Func<int, Task> append)
    {
        var times = new double[batches];
        for (var i = 0; i < batches; i++)
        {
            var t = System.Diagnostics.Stopwatch.StartNew();
            append(i).GetAwaiter().GetResult();
            times[i] = t.Elapsed.TotalMilliseconds;
        }

        return times;
    }
}
