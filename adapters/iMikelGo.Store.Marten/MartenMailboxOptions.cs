namespace IMikelGo.Store.Marten;

/// <summary>Options of the PostgreSQL (Marten) mailbox store.</summary>
public sealed class MartenMailboxOptions
{
    /// <summary>Npgsql connection string.</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>PostgreSQL schema holding the mailbox tables.</summary>
    public string SchemaName { get; set; } = "imikelgo_relay";

    /// <summary>
    /// Create or update the tables and indexes at first use (development and tests). In production set false and
    /// apply the schema deliberately (Marten's <c>db-apply</c> / <c>ApplyAllConfiguredChangesToDatabaseAsync</c>).
    /// </summary>
    public bool AutoCreateSchema { get; set; } = true;

    /// <summary>How often expired nonces are deleted.</summary>
    public TimeSpan NoncePruneInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The clock for stored times and nonce expiry.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
