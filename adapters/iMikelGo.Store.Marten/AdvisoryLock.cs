using Marten;
using Npgsql;

namespace IMikelGo.Store.Marten;

/// <summary>Transaction-scoped PostgreSQL advisory locks, shared by the stores of this package.</summary>
internal static class AdvisoryLock
{
    /// <summary>
    /// Takes <c>pg_advisory_xact_lock(lockClass, hashtext(key))</c> on the session's open transaction; it is released at
    /// commit or rollback. A hash collision only serializes two keys' writes, it never merges their data.
    /// </summary>
    public static async Task LockAsync(IDocumentSession session, int lockClass, string key, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1, hashtext($2))", session.Connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = lockClass });
        cmd.Parameters.Add(new NpgsqlParameter { Value = key });
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
