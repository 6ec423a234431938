using System.Globalization;
using IMikelGo.Engine.Relay;
using JasperFx;
using Marten;
using Marten.Exceptions;
using Marten.Schema;
using Npgsql;

namespace IMikelGo.Store.Marten;

/// <summary>
/// The relay's production mailbox store: Marten documents in PostgreSQL, safe for several relay instances sharing
/// one database.
/// <list type="bullet">
/// <item>Idempotency (F05): a bundle's document id is its (account, bundle id) pair and a unique index on
/// (account, bundleId) backs it, so the database refuses a second copy whatever the instance or its memory.</item>
/// <item>Positions: an append takes a transaction-scoped advisory lock on its account
/// (<c>pg_advisory_xact_lock</c>), reads the mailbox head, inserts the bundle at head+1 and moves the head, then
/// commits, which releases the lock. Appends to one account are therefore serialized across instances and commit in
/// position order: a reader can never see N+1 committed while N is still open, so a cursor never skips a position
/// that commits later (F01/F03). A unique index on (account, position) is the backstop.</item>
/// <item>Nonces: the (caller, nonce) pair is a document id inserted with <c>Insert</c>; a second use is a
/// primary-key violation in the database.</item>
/// </list>
/// </summary>
public sealed class MartenMailboxStore : IMailboxStore, IDisposable
{
    // Advisory lock class ids ("iMik" + kind); the object id is hashtext(account ...). A hash collision only
    // serializes two accounts' writes, it never merges their data.
    private const int AppendLockClass = 0x694D6B01;
    private const int AckLockClass = 0x694D6B02;
    private const int SchemaLockClass = 0x694D6B03;
    private const int EnrollmentLockClass = 0x694D6B04;

    private readonly IDocumentStore store;
    private readonly bool ownsStore;
    private readonly MartenMailboxOptions options;
    private readonly Lazy<Task> schemaReady;
    private long nextPruneTicks;

    /// <summary>Uses <paramref name="store"/>, which must have been configured with <see cref="Configure"/>.</summary>
    public MartenMailboxStore(IDocumentStore store, MartenMailboxOptions? options = null)
        : this(store, options ?? new MartenMailboxOptions(), ownsStore: false)
    {
    }

    private MartenMailboxStore(IDocumentStore store, MartenMailboxOptions options, bool ownsStore)
    {
        ArgumentNullException.ThrowIfNull(store);
        this.store = store;
        this.options = options;
        this.ownsStore = ownsStore;
        schemaReady = new Lazy<Task>(EnsureSchemaAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The underlying Marten store.</summary>
    public IDocumentStore DocumentStore => store;

    /// <summary>Creates a store with its own Marten <see cref="IDocumentStore"/> (disposed with this object).</summary>
    public static MartenMailboxStore Create(MartenMailboxOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new ArgumentException("MartenMailboxOptions.ConnectionString is required.", nameof(options));
        }

        var documentStore = global::Marten.DocumentStore.For(o =>
        {
            o.Connection(options.ConnectionString);
            Configure(o, options);
        });
        return new MartenMailboxStore(documentStore, options, ownsStore: true);
    }

    /// <summary>Adds the mailbox documents, their indexes and the schema policy to a Marten configuration.</summary>
    public static void Configure(StoreOptions marten, MartenMailboxOptions options)
    {
        ArgumentNullException.ThrowIfNull(marten);
        ArgumentNullException.ThrowIfNull(options);
        marten.DatabaseSchemaName = options.SchemaName;
        marten.AutoCreateSchemaObjects = options.AutoCreateSchema ? AutoCreate.CreateOrUpdate : AutoCreate.None;
        marten.Schema.For<MailboxBundleDocument>()
            .Duplicate(x => x.Account, notNull: true)
            .Duplicate(x => x.Position, notNull: true)
            .Duplicate(x => x.BundleId, notNull: true)
            .UniqueIndex(UniqueIndexType.DuplicatedField, "ux_mailbox_bundle_id", x => x.Account, x => x.BundleId)
            .UniqueIndex(UniqueIndexType.DuplicatedField, "ux_mailbox_position", x => x.Account, x => x.Position);
        marten.Schema.For<MailboxHeadDocument>();
        marten.Schema.For<MailboxAckDocument>();
        marten.Schema.For<RelayCallerDocument>();
        marten.Schema.For<RevocationDocument>();
        marten.Schema.For<WipeAckDocument>();
        marten.Schema.For<UsedNonceDocument>().Duplicate(x => x.Expires, notNull: true);
        marten.Schema.For<EnrollmentDocument>()
            .Duplicate(x => x.School, notNull: true)
            .Duplicate(x => x.Position, notNull: true)
            .Duplicate(x => x.Answered, notNull: true)
            .UniqueIndex(UniqueIndexType.DuplicatedField, "ux_enrollment_position", x => x.School, x => x.Position);
    }

    /// <inheritdoc />
    public async Task<PushResult> AppendAsync(string account, Guid bundleId, string sender, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentException.ThrowIfNullOrEmpty(sender);
        var id = BundleDocId(account, bundleId);
        try
        {
            await using var session = store.LightweightSession();
            await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await LockAsync(session, AppendLockClass, account, cancellationToken).ConfigureAwait(false);
            var existing = await PositionOfAsync(session, id, cancellationToken).ConfigureAwait(false);
            if (existing is long original)
            {
                return new PushResult(original, bundleId, Duplicate: true);
            }

            var head = await session.LoadAsync<MailboxHeadDocument>(account, cancellationToken).ConfigureAwait(false)
                ?? new MailboxHeadDocument { Id = account };
            head.Head++;
            head.Size += data.Length;
            session.Insert(new MailboxBundleDocument
            {
                Id = id,
                Account = account,
                BundleId = bundleId,
                Position = head.Head,
                Sender = sender,
                Data = data.ToArray(),
                Size = data.Length,
                StoredAt = options.TimeProvider.GetUtcNow(),
            });
            session.Store(head);
            await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return new PushResult(head.Head, bundleId, Duplicate: false);
        }
        catch (Exception ex) when (IsUniqueViolation(ex))
        {
            // The database refused a second copy (a writer that did not take the lock): answer with the original.
            await using var query = store.QuerySession();
            var original = await PositionOfAsync(query, id, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"Bundle {bundleId} was refused as a duplicate but is not in mailbox '{account}'.", ex);
            return new PushResult(original, bundleId, Duplicate: true);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredBundle>> ReadAsync(string account, long after, int limit, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        await using var session = store.QuerySession();
        var docs = await session.Query<MailboxBundleDocument>()
            .Where(x => x.Account == account && x.Position > after)
            .OrderBy(x => x.Position)
            .Take(limit)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return docs.Select(d => new StoredBundle(d.Position, d.BundleId, d.Sender, d.Data, d.StoredAt)).ToList();
    }

    /// <inheritdoc />
    public async Task<long> HeadAsync(string account, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        await using var session = store.QuerySession();
        var head = await session.LoadAsync<MailboxHeadDocument>(account, cancellationToken).ConfigureAwait(false);
        return head?.Head ?? 0;
    }

    /// <inheritdoc />
    public async Task<long> SizeAsync(string account, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        await using var session = store.QuerySession();
        var head = await session.LoadAsync<MailboxHeadDocument>(account, cancellationToken).ConfigureAwait(false);
        return head?.Size ?? 0;
    }

    /// <inheritdoc />
    public async Task AckAsync(string account, string caller, long position, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentException.ThrowIfNullOrEmpty(caller);
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        var id = Pair(account, caller);
        await using var session = store.LightweightSession();
        await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await LockAsync(session, AckLockClass, id, cancellationToken).ConfigureAwait(false);
        var ack = await session.LoadAsync<MailboxAckDocument>(id, cancellationToken).ConfigureAwait(false)
            ?? new MailboxAckDocument { Id = id, Account = account, Caller = caller };
        if (position > ack.Position || ack.Position == 0)
        {
            ack.Position = Math.Max(ack.Position, position);
            session.Store(ack);
        }

        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The highest position <paramref name="caller"/> acknowledged (0 when none); for tests and operations.</summary>
    public async Task<long> AckedAsync(string account, string caller, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        await using var session = store.QuerySession();
        var ack = await session.LoadAsync<MailboxAckDocument>(Pair(account, caller), cancellationToken).ConfigureAwait(false);
        return ack?.Position ?? 0;
    }

    /// <inheritdoc />
    public async Task PutCallerAsync(RelayCaller caller, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentException.ThrowIfNullOrEmpty(caller.Id);
        ArgumentException.ThrowIfNullOrEmpty(caller.Account);
        ArgumentNullException.ThrowIfNull(caller.SigningKey);
        await using var session = store.LightweightSession();
        session.Store(new RelayCallerDocument { Id = caller.Id, Account = caller.Account, SigningKey = caller.SigningKey, IsSchool = caller.IsSchool });
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<RelayCaller?> GetCallerAsync(string id, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var session = store.QuerySession();
        var doc = await session.LoadAsync<RelayCallerDocument>(id, cancellationToken).ConfigureAwait(false);
        return doc is null ? null : new RelayCaller(doc.Id, doc.Account, doc.SigningKey, doc.IsSchool);
    }

    /// <inheritdoc />
    public async Task DeleteCallerAsync(string id, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var session = store.LightweightSession();
        session.Delete<RelayCallerDocument>(id);
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task RevokeAsync(string account, string? device, string reason, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        if (device is not null)
        {
            ArgumentException.ThrowIfNullOrEmpty(device);
        }

        ArgumentNullException.ThrowIfNull(reason);
        try
        {
            await using var session = store.LightweightSession();
            session.Insert(new RevocationDocument
            {
                Id = Pair(account, device ?? string.Empty),
                Account = account,
                Device = device,
                Reason = reason,
                RevokedAt = options.TimeProvider.GetUtcNow(),
            });
            await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsUniqueViolation(ex))
        {
            // Already revoked: the first revocation (and its reason) stands.
        }
    }

    /// <inheritdoc />
    public async Task<bool> IsRevokedAsync(string account, string device, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentException.ThrowIfNullOrEmpty(device);
        await using var session = store.QuerySession();
        var docs = await session.LoadManyAsync<RevocationDocument>(cancellationToken, Pair(account, device), Pair(account, string.Empty)).ConfigureAwait(false);
        return docs.Count > 0;
    }

    /// <inheritdoc />
    public async Task AcknowledgeWipeAsync(string account, string device, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentException.ThrowIfNullOrEmpty(device);
        await using var session = store.LightweightSession();
        session.Store(new WipeAckDocument { Id = Pair(account, device), Account = account, Device = device, AckedAt = options.TimeProvider.GetUtcNow() });
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<bool> HasWipedAsync(string account, string device, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(account);
        ArgumentException.ThrowIfNullOrEmpty(device);
        await using var session = store.QuerySession();
        return await session.LoadAsync<WipeAckDocument>(Pair(account, device), cancellationToken).ConfigureAwait(false) is not null;
    }

    /// <inheritdoc />
    public async Task<bool> TryUseNonceAsync(string caller, string nonce, DateTimeOffset expires, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(caller);
        ArgumentException.ThrowIfNullOrEmpty(nonce);
        var now = options.TimeProvider.GetUtcNow();
        var due = Interlocked.Read(ref nextPruneTicks);
        if (now.UtcTicks >= due && Interlocked.CompareExchange(ref nextPruneTicks, (now + options.NoncePruneInterval).UtcTicks, due) == due)
        {
            await using var prune = store.LightweightSession();
            prune.DeleteWhere<UsedNonceDocument>(x => x.Expires < now);
            await prune.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            await using var session = store.LightweightSession();
            session.Insert(new UsedNonceDocument { Id = Pair(caller, nonce), Expires = expires });
            await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (IsUniqueViolation(ex))
        {
            return false;
        }
    }

    /// <inheritdoc />
    public async Task<long> EnqueueEnrollmentAsync(string school, string id, ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(school);
        ArgumentException.ThrowIfNullOrEmpty(id);
        try
        {
            await using var session = store.LightweightSession();
            await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await LockAsync(session, EnrollmentLockClass, school, cancellationToken).ConfigureAwait(false);
            var positions = await session.Query<EnrollmentDocument>()
                .Where(x => x.School == school)
                .OrderByDescending(x => x.Position)
                .Select(x => x.Position)
                .Take(1)
                .ToListAsync(cancellationToken).ConfigureAwait(false);
            var position = (positions.Count == 0 ? 0 : positions[0]) + 1;
            session.Insert(new EnrollmentDocument
            {
                Id = id,
                School = school,
                Position = position,
                Request = request.ToArray(),
                ReceivedAt = options.TimeProvider.GetUtcNow(),
            });
            await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            return position;
        }
        catch (Exception ex) when (IsUniqueViolation(ex))
        {
            throw new InvalidOperationException($"Enrollment id '{id}' is already in use.", ex);
        }
    }

    /// <inheritdoc />
    public async Task<int> PendingEnrollmentCountAsync(string school, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(school);
        await using var session = store.QuerySession();
        return await session.Query<EnrollmentDocument>().CountAsync(x => x.School == school && !x.Answered, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoredEnrollment>> ReadEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(school);
        ArgumentOutOfRangeException.ThrowIfNegative(after);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        await using var session = store.QuerySession();
        var docs = await session.Query<EnrollmentDocument>()
            .Where(x => x.School == school && !x.Answered && x.Position > after)
            .OrderBy(x => x.Position)
            .Take(limit)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return docs.Select(d => new StoredEnrollment(d.Position, d.Id, d.School, d.Request, d.ReceivedAt)).ToList();
    }

    /// <inheritdoc />
    public async Task<EnrollmentAnswerOutcome> AnswerEnrollmentAsync(string school, string id, bool approved, ReadOnlyMemory<byte> answer, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(school);
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var session = store.LightweightSession();
        await session.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await LockAsync(session, EnrollmentLockClass, school, cancellationToken).ConfigureAwait(false);
        var doc = await session.LoadAsync<EnrollmentDocument>(id, cancellationToken).ConfigureAwait(false);
        if (doc is null || !string.Equals(doc.School, school, StringComparison.Ordinal))
        {
            return EnrollmentAnswerOutcome.Unknown;
        }

        if (doc.Answered)
        {
            return EnrollmentAnswerOutcome.AlreadyAnswered;
        }

        doc.Answered = true;
        doc.Approved = approved;
        doc.Answer = answer.ToArray();
        doc.AnsweredAt = options.TimeProvider.GetUtcNow();
        session.Store(doc);
        await session.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return EnrollmentAnswerOutcome.Stored;
    }

    /// <inheritdoc />
    public async Task<StoredEnrollmentAnswer?> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken)
    {
        await ReadyAsync().ConfigureAwait(false);
        ArgumentException.ThrowIfNullOrEmpty(id);
        await using var session = store.QuerySession();
        var doc = await session.LoadAsync<EnrollmentDocument>(id, cancellationToken).ConfigureAwait(false);
        return doc is null ? null : new StoredEnrollmentAnswer(doc.Id, doc.School, doc.Answered, doc.Approved, doc.Answer, doc.AnsweredAt);
    }

    /// <summary>Disposes the Marten store when this object created it.</summary>
    public void Dispose()
    {
        if (ownsStore)
        {
            store.Dispose();
        }
    }

    internal static string Pair(string first, string second) =>
        string.Create(CultureInfo.InvariantCulture, $"{first.Length}:{first}/{second}");

    private static string BundleDocId(string account, Guid bundleId) => Pair(account, bundleId.ToString("D"));

    private static async Task<long?> PositionOfAsync(IQuerySession session, string id, CancellationToken cancellationToken)
    {
        var positions = await session.Query<MailboxBundleDocument>()
            .Where(x => x.Id == id)
            .Select(x => x.Position)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        return positions.Count == 0 ? null : positions[0];
    }

    /// <summary>
    /// With <see cref="MartenMailboxOptions.AutoCreateSchema"/>, creates or updates the tables once per instance, under
    /// a PostgreSQL advisory lock so that relay instances starting together do not race on the DDL.
    /// </summary>
    private async Task EnsureSchemaAsync()
    {
        if (!options.AutoCreateSchema)
        {
            return;
        }

        await using var session = store.LightweightSession();
        await session.BeginTransactionAsync(CancellationToken.None).ConfigureAwait(false);
        await LockAsync(session, SchemaLockClass, options.SchemaName, CancellationToken.None).ConfigureAwait(false);
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync().ConfigureAwait(false);
        await session.SaveChangesAsync(CancellationToken.None).ConfigureAwait(false);
    }

    private Task ReadyAsync() => schemaReady.Value;

    private static Task LockAsync(IDocumentSession session, int lockClass, string key, CancellationToken cancellationToken) =>
        AdvisoryLock.LockAsync(session, lockClass, key, cancellationToken);

    private static bool IsUniqueViolation(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is DocumentAlreadyExistsException || e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
            {
                return true;
            }
        }

        return false;
    }
}
