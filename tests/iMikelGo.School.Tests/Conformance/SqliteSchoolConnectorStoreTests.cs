using FluentAssertions;
using IMikelGo.Engine.Sync;
using IMikelGo.Store.Sqlite.School;
using Xunit;

namespace IMikelGo.School.Tests.Conformance;

/// <summary>The conformance suite on the embedded store: a real SQLite file in a fresh temporary directory per test.</summary>
public sealed class SqliteSchoolConnectorStoreTests : SchoolConnectorStoreConformance, IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("imikelgo-school-store-");

    public void Dispose()
    {
        try
        {
            _dir.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }

    protected override async Task<ISchoolConnectorStore> OpenStoreAsync() =>
        await SqliteSchoolConnectorStore.OpenAsync(Path.Combine(_dir.FullName, "school.db"), CancellationToken.None);

    [Fact]
    public async Task The_database_and_its_wal_are_readable_by_their_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        await using (var store = await OpenStoreAsync())
        {
            await store.SetValueAsync("secret", [1, 2, 3], CancellationToken.None);
            const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            File.GetUnixFileMode(Path.Combine(_dir.FullName, "school.db")).Should().Be(ownerOnly, "it holds the school root's private key");
            File.GetUnixFileMode(Path.Combine(_dir.FullName, "school.db-wal")).Should().Be(ownerOnly);
        }
    }
}
