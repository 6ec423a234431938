using System.Collections.Immutable;
using IMikelGo.Engine.Canonical;

namespace IMikelGo.Engine.Events;

/// <summary>School: opens a teacher account's log; the first event of the school's chain for that account.</summary>
/// <param name="School">The school.</param>
/// <param name="Teacher">The teacher's display name.</param>
/// <param name="SchoolKey">The school replica's signing key (SubjectPublicKeyInfo); its hash is the replica id.</param>
[EventType("account.opened", 1)]
public sealed record AccountOpened(string School, string Teacher, ImmutableArray<byte> SchoolKey) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("school", School).Add("teacher", Teacher)
        .Add("schoolKey", Convert.ToBase64String(SchoolKey.AsSpan())).Build();
}

/// <summary>School: a weekly lesson series is published, or replaced by a changed version.</summary>
/// <param name="Series">The series.</param>
/// <param name="Subject">What is taught (instrument, ensemble…).</param>
/// <param name="Weekday">ISO weekday, 1 = Monday … 7 = Sunday.</param>
/// <param name="StartMinute">Local start time as minutes after midnight.</param>
/// <param name="DurationMinutes">Length of one lesson.</param>
/// <param name="Room">The room.</param>
/// <param name="Students">The students taught (a group is listed by its members).</param>
/// <param name="TermStart">First day of the term.</param>
/// <param name="TermEnd">Last day of the term.</param>
[EventType("series.published", 1)]
public sealed record SeriesPublished(
    SeriesId Series, string Subject, int Weekday, int StartMinute, int DurationMinutes, RoomId Room,
    ImmutableArray<StudentId> Students, DateOnly TermStart, DateOnly TermEnd) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("series", Series.Value).Add("subject", Subject).Add("weekday", Weekday).Add("start", StartMinute)
        .Add("duration", DurationMinutes).Add("room", Room.Value).Add("students", Students.Select(s => s.Value))
        .Add("termStart", TermStart).Add("termEnd", TermEnd).Build();

    /// <summary>The dates of this series' lessons, skipping <paramref name="holidays"/>.</summary>
    public IEnumerable<DateOnly> Dates(Func<DateOnly, bool> holidays)
    {
        ArgumentNullException.ThrowIfNull(holidays);
        var first = TermStart.AddDays(((Weekday % 7) - (int)TermStart.DayOfWeek + 7) % 7);
        for (var date = first; date <= TermEnd; date = date.AddDays(7))
        {
            if (!holidays(date))
            {
                yield return date;
            }
        }
    }
}

/// <summary>School: a series ends; its future lessons are withdrawn.</summary>
[EventType("series.withdrawn", 1)]
public sealed record SeriesWithdrawn(SeriesId Series, string Reason) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder().Add("series", Series.Value).Add("reason", Reason).Build();
}

/// <summary>School: a student joins the account's teaching (known by name to the teacher).</summary>
[EventType("student.enrolled", 1)]
public sealed record StudentEnrolled(StudentId Student, string Name) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder().Add("student", Student.Value).Add("name", Name).Build();
}

/// <summary>School: a student leaves.</summary>
[EventType("student.left", 1)]
public sealed record StudentLeft(StudentId Student, DateOnly From) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder().Add("student", Student.Value).Add("from", From).Build();
}

/// <summary>School: holidays; no lesson takes place from <see cref="From"/> to <see cref="To"/> inclusive.</summary>
[EventType("holidays.declared", 1)]
public sealed record HolidaysDeclared(string Name, DateOnly From, DateOnly To) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder().Add("name", Name).Add("from", From).Add("to", To).Build();
}

/// <summary>School: a device joins the account and may author events with the given key.</summary>
[EventType("device.enrolled", 1)]
public sealed record DeviceEnrolled(ReplicaId Device, string Label, ImmutableArray<byte> DeviceKey) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("device", Device.Value).Add("label", Label).Add("deviceKey", Convert.ToBase64String(DeviceKey.AsSpan())).Build();
}

/// <summary>School: a device is revoked (remote wipe); events it writes after seeing this are refused.</summary>
[EventType("device.revoked", 1)]
public sealed record DeviceRevoked(ReplicaId Device, string Reason) : LessonEvent
{
    internal override AuthorRole AllowedAuthors => AuthorRole.School;

    internal override CanonicalObject ToPayload() => new ObjectBuilder().Add("device", Device.Value).Add("reason", Reason).Build();
}

/// <summary>A student was absent from one lesson.</summary>
[EventType("student.absent", 1)]
public sealed record StudentAbsent(OccurrenceId Occurrence, StudentId Student, bool Excused, string? Reason) : LessonEvent
{
    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("occurrence", Occurrence.ToString()).Add("student", Student.Value).Add("excused", Excused)
        .AddIfPresent("reason", Reason).Build();
}

/// <summary>An absence recorded earlier is withdrawn (the student was there after all).</summary>
[EventType("absence.withdrawn", 1)]
public sealed record AbsenceWithdrawn(OccurrenceId Occurrence, StudentId Student) : LessonEvent
{
    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("occurrence", Occurrence.ToString()).Add("student", Student.Value).Build();
}

/// <summary>A lesson is cancelled (Unterrichtsausfall).</summary>
[EventType("lesson.cancelled", 1)]
public sealed record LessonCancelled(OccurrenceId Occurrence, CancellationReason Reason, bool MakeUpOwed, string? Note) : LessonEvent
{
    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("occurrence", Occurrence.ToString()).Add("reason", EventCodec.ReasonNames[Reason])
        .Add("makeUpOwed", MakeUpOwed).AddIfPresent("note", Note).Build();
}

/// <summary>A lesson is moved to another date, time or room (Terminverschiebung).</summary>
[EventType("lesson.rescheduled", 1)]
public sealed record LessonRescheduled(OccurrenceId Occurrence, DateOnly Date, int StartMinute, int DurationMinutes, RoomId Room) : LessonEvent
{
    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("occurrence", Occurrence.ToString()).Add("date", Date).Add("start", StartMinute)
        .Add("duration", DurationMinutes).Add("room", Room.Value).Build();
}

/// <summary>A lesson took place, with a short note.</summary>
[EventType("lesson.held", 1)]
public sealed record LessonHeld(OccurrenceId Occurrence, string? Note) : LessonEvent
{
    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("occurrence", Occurrence.ToString()).AddIfPresent("note", Note).Build();
}

/// <summary>
/// A person resolves a conflict on an occurrence by keeping one of the colliding events. The resolution has
/// seen both, so it supersedes them causally; the kept event's intent becomes the occurrence's state.
/// </summary>
[EventType("conflict.resolved", 1)]
public sealed record ConflictResolved(OccurrenceId Occurrence, EventHash Keep) : LessonEvent
{
    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("occurrence", Occurrence.ToString()).Add("keep", Keep.Hex).Build();
}

/// <summary>
/// A replica publishes its next encryption (HPKE) public key in its own signed chain; peers seal new bundles to
/// the latest key each enrolled replica published. Rotation schedule and forward secrecy: docs/sealing.md.
/// </summary>
/// <param name="PublicKey">The P-256 public key as an uncompressed point (65 bytes).</param>
[EventType("encryption-key.published", 1)]
public sealed record EncryptionKeyPublished(ImmutableArray<byte> PublicKey) : LessonEvent
{
    internal override CanonicalObject ToPayload() => new ObjectBuilder()
        .Add("publicKey", Convert.ToBase64String(PublicKey.AsSpan())).Build();
}
