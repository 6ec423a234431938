using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using Xunit;

namespace IMikelGo.Engine.Tests.WireFormat;

/// <summary>A clock that says what it is told: deterministic hybrid times.</summary>
internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now.ToUniversalTime();

    public void Advance(TimeSpan by) => Now += by;
}

/// <summary>Deterministic keys: the private scalar is SHA-256 of a label (always below the P-256 order here).</summary>
internal static class Keys
{
    public static ReplicaKey For(string label) => ReplicaKey.FromPrivateScalar(SHA256.HashData(Encoding.UTF8.GetBytes("imikelgo-test-key:" + label)));
}

/// <summary>
/// A small account: a school replica that opens the account, publishes a series and enrolls two devices, and
/// writers for both devices. Events are built with <see cref="ReplicaWriter"/> directly (no intent checks), so
/// tests can also build events an honest replica would refuse to write.
/// </summary>
internal sealed class World : IDisposable
{
    public static readonly AccountId Account = new("k-anna");
    public static readonly SeriesId Series = new("piano-1");
    public static readonly DateTimeOffset Start = new(2026, 9, 3, 16, 0, 0, TimeSpan.Zero);

    public World()
    {
        Time = new FixedTime(Start.AddTicks(1_234_567));
        SchoolKey = Keys.For("school");
        D1Key = Keys.For("d1");
        D2Key = Keys.For("d2");
        School = new ReplicaWriter(Account, SchoolKey, Time);
        D1 = new ReplicaWriter(Account, D1Key, Time);
        D2 = new ReplicaWriter(Account, D2Key, Time);
    }

    public FixedTime Time { get; }

    public ReplicaKey SchoolKey { get; }

    public ReplicaKey D1Key { get; }

    public ReplicaKey D2Key { get; }

    public ReplicaWriter School { get; }

    public ReplicaWriter D1 { get; }

    public ReplicaWriter D2 { get; }

    public static OccurrenceId Occurrence(int day) => new(Series, new DateOnly(2026, 9, day));

    public AccountOpened Opened() => new("musikschule-x", "Anna", SchoolKey.PublicKey);

    public static SeriesPublished Published() => new(
        Series, "Piano", 4, 16 * 60, 45, new RoomId("r1"), [new StudentId("s1"), new StudentId("s2")],
        new DateOnly(2026, 9, 1), new DateOnly(2027, 1, 31));

    public DeviceEnrolled Enroll(ReplicaKey key, string label) => new(key.Replica, label, key.PublicKey);

    /// <summary>School seq 1..4: opened, published, d1 enrolled, d2 enrolled; one checkpoint on seq 4.</summary>
    public IReadOnlyList<SignedEvent> SchoolSetup() =>
        Write(School, [Opened(), Published(), Enroll(D1Key, "tablet"), Enroll(D2Key, "laptop")]);

    /// <summary>Appends a batch one second later; the last event carries the checkpoint.</summary>
    public IReadOnlyList<SignedEvent> Write(ReplicaWriter writer, IReadOnlyList<LessonEvent> payloads)
    {
        Time.Advance(TimeSpan.FromSeconds(1));
        return writer.AppendBatch(payloads);
    }

    /// <summary>Appends one event per call, each with its own checkpoint.</summary>
    public IReadOnlyList<SignedEvent> WriteEach(ReplicaWriter writer, IReadOnlyList<LessonEvent> payloads) =>
        [.. payloads.Select(p => Write(writer, [p])[0])];

    public static LessonEvent Held(int day, string note) => new LessonHeld(Occurrence(day), note);

    public void Dispose()
    {
        SchoolKey.Dispose();
        D1Key.Dispose();
        D2Key.Dispose();
    }
}

internal static class Lines
{
    public static byte[] Bytes(SignedEvent e) => e.ToLineBytes();

    public static ImmutableArray<byte> Body(SignedEvent e) => e.Event.Body;

    public static string Text(ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);
}

/// <summary>Locates the repository root (the folder holding iMikelGo.sln).</summary>
internal static class Repo
{
    private static readonly Lazy<string?> RootDir = new(() =>
    {
        foreach (var start in new[] { AppContext.BaseDirectory, SourceDir() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    });

    public static string? Root => RootDir.Value;

    public static string? Shared(string relative) => Root is null ? null : Path.GetFullPath(Path.Combine(Root, "..", "shared", relative));

    private static string SourceDir([System.Runtime.CompilerServices.CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}

/// <summary>A fact that is skipped, with a clear message, when a file under ../shared is absent.</summary>
public sealed class SharedFileFactAttribute : FactAttribute
{
    public SharedFileFactAttribute(string relativePath)
    {
        var path = Repo.Shared(relativePath);
        if (path is null || !File.Exists(path))
        {
            Skip = $"'{relativePath}' not found at {path ?? "(repository root not found)"}: the shared vectors next to the " +
                   "repository are only present in the team workspace.";
        }
    }
}
