using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Reflection;
using IMikelGo.Engine.Canonical;

namespace IMikelGo.Engine.Events;

/// <summary>
/// Maps event types to and from their wire name, version and payload. Only registered (name, version) pairs are
/// decoded; anything else is refused, never guessed. An old version stays registered with a decoder that
/// upgrades its payload to the current record (see docs/wire-format.md, "Upgrading an event type").
/// </summary>
internal static class EventCodec
{
    private const int MaxText = 500;
    private const int MaxStudents = 200;

    internal static readonly FrozenDictionary<CancellationReason, string> ReasonNames = new Dictionary<CancellationReason, string>
    {
        [CancellationReason.TeacherIll] = "teacher-ill",
        [CancellationReason.StudentIll] = "student-ill",
        [CancellationReason.SchoolClosed] = "school-closed",
        [CancellationReason.Other] = "other",
    }.ToFrozenDictionary();

    private static readonly FrozenDictionary<string, CancellationReason> Reasons =
        ReasonNames.ToFrozenDictionary(p => p.Value, p => p.Key, StringComparer.Ordinal);

    private static readonly FrozenDictionary<(string Name, int Version), Func<MemberReader, LessonEvent>> Decoders =
        new Dictionary<(string, int), Func<MemberReader, LessonEvent>>
        {
            [("account.opened", 1)] = r => new AccountOpened(r.String("school"), r.String("teacher"), Key(r, "schoolKey")),
            [("series.published", 1)] = r => new SeriesPublished(
                r.Parsed("series", s => new SeriesId(s)), r.String("subject"), (int)r.Integer("weekday", 1, 7),
                (int)r.Integer("start", 0, (24 * 60) - 1), (int)r.Integer("duration", 5, 24 * 60), r.Parsed("room", s => new RoomId(s)),
                [.. r.StringArray("students", MaxStudents, s => new StudentId(s))], r.Date("termStart"), r.Date("termEnd")),
            [("series.withdrawn", 1)] = r => new SeriesWithdrawn(r.Parsed("series", s => new SeriesId(s)), r.String("reason", MaxText)),
            [("student.enrolled", 1)] = r => new StudentEnrolled(r.Parsed("student", s => new StudentId(s)), r.String("name")),
            [("student.left", 1)] = r => new StudentLeft(r.Parsed("student", s => new StudentId(s)), r.Date("from")),
            [("holidays.declared", 1)] = r => new HolidaysDeclared(r.String("name"), r.Date("from"), r.Date("to")),
            [("device.enrolled", 1)] = r =>
            {
                var enrolled = new DeviceEnrolled(r.Parsed("device", s => new ReplicaId(s)), r.String("label"), Key(r, "deviceKey"));
                return ReplicaId.FromPublicKey(enrolled.DeviceKey.AsSpan()) == enrolled.Device
                    ? enrolled
                    : throw new WireFormatException($"$.payload.device: {enrolled.Device} is not the id of deviceKey (ids are the hash of the key)");
            },
            [("device.revoked", 1)] = r => new DeviceRevoked(r.Parsed("device", s => new ReplicaId(s)), r.String("reason", MaxText)),
            [("student.absent", 1)] = r => new StudentAbsent(
                Occurrence(r), r.Parsed("student", s => new StudentId(s)), r.Boolean("excused"), r.OptionalString("reason", MaxText)),
            [("absence.withdrawn", 1)] = r => new AbsenceWithdrawn(Occurrence(r), r.Parsed("student", s => new StudentId(s))),
            [("lesson.cancelled", 1)] = r => new LessonCancelled(
                Occurrence(r), r.Enum("reason", Reasons), r.Boolean("makeUpOwed"), r.OptionalString("note", MaxText)),
            [("lesson.rescheduled", 1)] = r => new LessonRescheduled(
                Occurrence(r), r.Date("date"), (int)r.Integer("start", 0, (24 * 60) - 1), (int)r.Integer("duration", 5, 24 * 60),
                r.Parsed("room", s => new RoomId(s))),
            [("lesson.held", 1)] = r => new LessonHeld(Occurrence(r), r.OptionalString("note", MaxText)),
            [("encryption-key.published", 1)] = r => new EncryptionKeyPublished(
                [.. r.Parsed("publicKey", s => StrictBase64.Decode(s, 65) is { Length: 65 } point && point[0] == 4
                    ? point
                    : throw new FormatException("expected an uncompressed P-256 point (65 bytes, 0x04 first)"), 100)]),
            [("conflict.resolved", 1)] = r => new ConflictResolved(Occurrence(r), r.Parsed("keep", s => new EventHash(s))),
        }.ToFrozenDictionary();

    private static readonly FrozenDictionary<Type, (string Name, int Version)> Names =
        typeof(LessonEvent).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(LessonEvent)) && !t.IsAbstract)
            .ToFrozenDictionary(t => t, t =>
            {
                var a = t.GetCustomAttribute<EventTypeAttribute>() ?? throw new InvalidOperationException($"{t.Name} has no wire name");
                return (a.Name, a.Version);
            });

    /// <summary>The wire name and (current) version of <paramref name="e"/>.</summary>
    public static (string Name, int Version) WireName(LessonEvent e) => Names[e.GetType()];

    /// <summary>All registered (name, version) pairs.</summary>
    public static IEnumerable<(string Name, int Version)> Registered => Decoders.Keys;

    /// <summary>Decodes a payload of the given type and version.</summary>
    /// <exception cref="WireFormatException">Unknown type or version, or an invalid payload.</exception>
    public static LessonEvent Decode(string name, int version, CanonicalValue payload)
    {
        if (!Decoders.TryGetValue((name, version), out var decode))
        {
            throw new WireFormatException(Decoders.Keys.Any(k => k.Name == name)
                ? $"event type \"{name}\" has no version {version} known to this engine"
                : $"unknown event type \"{name}\"");
        }

        var reader = new MemberReader(payload, "$.payload");
        var result = decode(reader);
        reader.EnsureNoOthers();
        return result;
    }

    private static OccurrenceId Occurrence(MemberReader r) => r.Parsed("occurrence", OccurrenceId.Parse, 100);

    private static ImmutableArray<byte> Key(MemberReader r, string key) =>
        [.. r.Parsed(key, s => StrictBase64.Decode(s, 512), 700)];
}
