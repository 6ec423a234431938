using System.Diagnostics;
using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Store.Marten;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;

namespace IMikelGo.Relay.Tests.Stores;

/// <summary>Shares one PostgreSQL schema between the tests of this class (each test uses its own accounts).</summary>
public sealed class MartenSchemaFixture
{
    public string Schema { get; } = "mbx_" + Guid.NewGuid().ToString("N")[..12];
}

/// <summary>
/// The conformance suite on PostgreSQL through Marten. A "second instance" is a separate Marten DocumentStore (its
/// own connection pool), which is what a second relay instance is.
/// </summary>
public sealed class MartenMailboxStoreTests(MartenSchemaFixture fixture) : MailboxStoreConformance, IClassFixture<MartenSchemaFixture>
{
    private readonly List<MartenMailboxStore> opened = [];
    private TimeProvider clock = TimeProvider.System;

    protected override Task<IMailboxStore> CreateStoreAsync(TimeProvider clock)
    {
        this.clock = clock;
        return Task.FromResult<IMailboxStore>(Open());
    }

    protected override Task<IMailboxStore> CreateSecondInstanceAsync() => Task.FromResult<IMailboxStore>(Open());

    protected override async Task<string> DumpAsync()
    {
        var csb = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString);
        var pgDump = Path.Combine(PostgresServer.PgBin, "pg_dump");
        var psi = new ProcessStartInfo(File.Exists(pgDump) ? pgDump : "pg_dump")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.Latin1,
        };
        foreach (var arg in new[] { "-h", csb.Host!, "-p", csb.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", csb.Username!, "-d", csb.Database!, "--no-owner" })
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["PGPASSWORD"] = csb.Password;
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var dump = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.Should().Be(0, await stderr);
        dump.Should().Contain(fixture.Schema, "the dump covers the mailbox schema");
        return dump;
    }

    // Marten stores byte[] as base64 inside the JSON document.
    protected override string AsDumped(byte[] data) => Convert.ToBase64String(data);

    protected override Task<long> AckedAsync(string account, string caller) =>
        ((MartenMailboxStore)Store).AckedAsync(account, caller, CancellationToken.None);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var s in opened)
        {
            s.Dispose();
        }
    }

    [Fact]
    public async Task The_database_refuses_a_second_copy_even_when_a_writer_bypasses_the_store()
    {
        var id = Guid.NewGuid();
        await Store.AppendAsync(Account, id, Device, new byte[] { 1, 2 }, CancellationToken.None);
        await using var conn = new NpgsqlConnection(PostgresServer.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            $"INSERT INTO {fixture.Schema}.mt_doc_mailboxbundledocument (id, data, mt_dotnet_type, mt_version, account, position, bundle_id) " +
            "VALUES ('bypass', '{}'::jsonb, 'x', gen_random_uuid(), @a, 2, @b)", conn);
        cmd.Parameters.AddWithValue("a", Account);
        cmd.Parameters.AddWithValue("b", id);
        var act = () => cmd.ExecuteNonQueryAsync();
        (await act.Should().ThrowAsync<PostgresException>()).Which.SqlState.Should().Be(PostgresErrorCodes.UniqueViolation);
    }

    [Fact]
    public async Task AddIMikelGoMartenMailboxes_registers_the_store()
    {
        var services = new ServiceCollection();
        services.AddIMikelGoMartenMailboxes(o =>
        {
            o.ConnectionString = PostgresServer.ConnectionString;
            o.SchemaName = fixture.Schema;
        });
        await using var provider = services.BuildServiceProvider();
        var store = provider.GetRequiredService<IMailboxStore>();
        store.Should().BeOfType<MartenMailboxStore>();
        (await store.AppendAsync(Account, Guid.NewGuid(), Device, new byte[] { 5 }, CancellationToken.None)).Position.Should().Be(1);
        (await Store.HeadAsync(Account, CancellationToken.None)).Should().Be(1);
    }

    private MartenMailboxStore Open()
    {
        var store = MartenMailboxStore.Create(new MartenMailboxOptions
        {
            ConnectionString = PostgresServer.ConnectionString,
            SchemaName = fixture.Schema,
            TimeProvider = clock,
            NoncePruneInterval = TimeSpan.FromMinutes(1),
        });
        opened.Add(store);
        return store;
    }
}
