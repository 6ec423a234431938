using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Store.Sqlite.Relay;
using Xunit;

namespace IMikelGo.Relay.Tests.Stores;

/// <summary>The conformance suite on the embedded store: one SQLite file per test in a temp dir.</summary>
public sealed class SqliteMailboxStoreTests : MailboxStoreConformance
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), "imikelgo-mbx-" + Guid.NewGuid().ToString("N"));
    private readonly List<SqliteMailboxStore> opened = [];
    private TimeProvider clock = TimeProvider.System;

    private string DbPath => Path.Combine(dir, "relay.db");

    protected override Task<IMailboxStore> CreateStoreAsync(TimeProvider clock)
    {
        this.clock = clock;
        return Task.FromResult<IMailboxStore>(Open());
    }

    protected override Task<IMailboxStore> CreateSecondInstanceAsync() => Task.FromResult<IMailboxStore>(Open());

    protected override Task<string> DumpAsync()
    {
        var text = new StringBuilder();
        foreach (var file in Directory.GetFiles(dir))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.Latin1);
            text.Append(reader.ReadToEnd());
        }

        return Task.FromResult(text.ToString());
    }

    protected override string AsDumped(byte[] data) => Encoding.Latin1.GetString(data);

    protected override Task<long> AckedAsync(string account, string caller) =>
        ((SqliteMailboxStore)Store).AckedAsync(account, caller, CancellationToken.None);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var s in opened)
        {
            s.Dispose();
        }

        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task The_file_is_in_WAL_mode_with_a_database_enforced_unique_bundle_id()
    {
        await Store.AppendAsync(Account, Guid.NewGuid(), Device, new byte[] { 1 }, CancellationToken.None);
        File.Exists(DbPath + "-wal").Should().BeTrue("the store runs in WAL mode");
        var schema = await DumpAsync();
        schema.Should().Contain("UNIQUE (account, bundle_id)");
        schema.Should().Contain("PRIMARY KEY (caller, nonce)");
    }

    [Fact]
    public async Task A_passphrase_encrypts_the_whole_file()
    {
        var path = Path.Combine(dir, "keyed.db");
        var marker = "CONTROL-" + Guid.NewGuid().ToString("N");
        using (var keyed = new SqliteMailboxStore(new SqliteMailboxStoreOptions { Path = path, Passphrase = "relay-local-random-key" }))
        {
            await keyed.AppendAsync(Account, Guid.NewGuid(), Device, Encoding.UTF8.GetBytes(marker), CancellationToken.None);
            await keyed.PutCallerAsync(new RelayCaller(Device, Account, [1], false), CancellationToken.None);
        }

        var bytes = Encoding.Latin1.GetString(File.ReadAllBytes(path)) +
            (File.Exists(path + "-wal") ? Encoding.Latin1.GetString(File.ReadAllBytes(path + "-wal")) : string.Empty);
        bytes.Should().NotContain("SQLite format 3").And.NotContain(marker).And.NotContain(Device);
        using var again = new SqliteMailboxStore(new SqliteMailboxStoreOptions { Path = path, Passphrase = "relay-local-random-key" });
        (await again.ReadAsync(Account, 0, 10, CancellationToken.None)).Single().Data.Should().Equal(Encoding.UTF8.GetBytes(marker));
    }

    private SqliteMailboxStore Open()
    {
        var store = new SqliteMailboxStore(new SqliteMailboxStoreOptions { Path = DbPath, TimeProvider = clock, NoncePruneInterval = TimeSpan.FromMinutes(1) });
        opened.Add(store);
        return store;
    }
}
