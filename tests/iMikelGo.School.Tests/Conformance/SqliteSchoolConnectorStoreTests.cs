using IMikelGo.Engine.Sync;
using IMikelGo.Store.Sqlite.School;

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
}
