using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;

namespace IMikelGo.Store.Marten.School;

/// <summary>
/// A verified event as the school's Marten event store keeps it: the canonical log line (verbatim, so hashes and
/// checkpoint signatures re-verify from the store) and the metadata the projections read.
/// </summary>
public sealed record SchoolLogEvent
{
    /// <summary>The event hash (its identity; unique in the store).</summary>
    public required string Hash { get; init; }

    /// <summary>The account.</summary>
    public required string Account { get; init; }

    /// <summary>The author replica.</summary>
    public required string Replica { get; init; }

    /// <summary>Position in the author's chain.</summary>
    public long Seq { get; init; }

    /// <summary>Wire type name (e.g. <c>student.absent</c>).</summary>
    public required string Type { get; init; }

    /// <summary>Whether the school replica authored it.</summary>
    public bool BySchool { get; init; }

    /// <summary>The author's wall time (display only).</summary>
    public DateTimeOffset AuthorTime { get; init; }

    /// <summary>The canonical log line (<see cref="SignedEvent.ToLine"/>).</summary>
    public required string Line { get; init; }

    /// <summary>The occurrence the event is about, if any.</summary>
    public string? Occurrence { get; init; }

    /// <summary>The student, for absences.</summary>
    public string? Student { get; init; }

    /// <summary>Whether an absence is excused.</summary>
    public bool? Excused { get; init; }

    /// <summary>The reason (absence reason or cancellation reason).</summary>
    public string? Reason { get; init; }

    /// <summary>The device enrolled or revoked.</summary>
    public string? Device { get; init; }

    /// <summary>The device label at enrollment.</summary>
    public string? Label { get; init; }

    /// <summary>A reschedule's new date.</summary>
    public DateOnly? NewDate { get; init; }

    /// <summary>A reschedule's new start (minutes after midnight).</summary>
    public int? NewStart { get; init; }

    /// <summary>A reschedule's new duration.</summary>
    public int? NewDuration { get; init; }

    /// <summary>A reschedule's new room.</summary>
    public string? NewRoom { get; init; }

    /// <summary>For <c>series.published</c>: the series.</summary>
    public string? Series { get; init; }

    /// <summary>For <c>series.published</c>: the last day of the version's term.</summary>
    public DateOnly? TermEnd { get; init; }

    /// <summary>Builds the stored form of <paramref name="e"/>.</summary>
    public static SchoolLogEvent From(SignedEvent e, bool bySchool)
    {
        ArgumentNullException.ThrowIfNull(e);
        var ev = e.Event;
        var stored = new SchoolLogEvent
        {
            Hash = ev.Hash.Hex, Account = ev.Account.Value, Replica = ev.Replica.Value, Seq = ev.Seq, Type = ev.TypeName,
            BySchool = bySchool, AuthorTime = ev.Time.Wall, Line = e.ToLine(),
        };
        return ev.Payload switch
        {
            StudentAbsent a => stored with { Occurrence = a.Occurrence.ToString(), Student = a.Student.Value, Excused = a.Excused, Reason = a.Reason },
            AbsenceWithdrawn w => stored with { Occurrence = w.Occurrence.ToString(), Student = w.Student.Value },
            LessonCancelled c => stored with { Occurrence = c.Occurrence.ToString(), Reason = c.Reason.ToString() },
            LessonRescheduled r => stored with { Occurrence = r.Occurrence.ToString(), NewDate = r.Date, NewStart = r.StartMinute, NewDuration = r.DurationMinutes, NewRoom = r.Room.Value },
            LessonHeld h => stored with { Occurrence = h.Occurrence.ToString() },
            DeviceEnrolled d => stored with { Device = d.Device.Value, Label = d.Label },
            DeviceRevoked d => stored with { Device = d.Device.Value, Reason = d.Reason },
            SeriesPublished p => stored with { Series = p.Series.Value, TermEnd = p.TermEnd },
            _ => stored,
        };
    }
}

/// <summary>Projection: a student's absences.</summary>
public sealed class StudentAbsences
{
    /// <summary>"account/student".</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The student.</summary>
    public string Student { get; set; } = string.Empty;

    /// <summary>Current absences by occurrence (withdrawn ones removed).</summary>
    public Dictionary<string, AbsenceEntry> Absences { get; set; } = [];
}

/// <summary>One absence.</summary>
/// <param name="Occurrence">The lesson occurrence.</param>
/// <param name="Excused">Whether excused.</param>
/// <param name="Reason">The reason, if given.</param>
/// <param name="RecordedBy">The replica that recorded it.</param>
public sealed record AbsenceEntry(string Occurrence, bool Excused, string? Reason, string RecordedBy);

/// <summary>Projection: a teacher's cancellations in one month (for payroll and fees).</summary>
public sealed class TeacherMonthCancellations
{
    /// <summary>"account/yyyy-MM".</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The month (yyyy-MM) of the cancelled occurrences.</summary>
    public string Month { get; set; } = string.Empty;

    /// <summary>Cancelled occurrences with their reason.</summary>
    public SortedDictionary<string, string> Cancelled { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The number of cancelled occurrences.</summary>
    public int Count => Cancelled.Count;
}

/// <summary>Projection: one entry of the reschedule log.</summary>
public sealed class RescheduleLogEntry
{
    /// <summary>The event hash.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The occurrence moved.</summary>
    public string Occurrence { get; set; } = string.Empty;

    /// <summary>New date.</summary>
    public DateOnly Date { get; set; }

    /// <summary>New start, minutes after midnight.</summary>
    public int StartMinute { get; set; }

    /// <summary>New duration.</summary>
    public int DurationMinutes { get; set; }

    /// <summary>New room.</summary>
    public string Room { get; set; } = string.Empty;

    /// <summary>Whether the school (timetable change) or a teacher's device moved it.</summary>
    public bool BySchool { get; set; }

    /// <summary>The author.</summary>
    public string Replica { get; set; } = string.Empty;

    /// <summary>The author's wall time.</summary>
    public DateTimeOffset At { get; set; }
}

/// <summary>Projection: a device and its last contact (the newest event it authored that reached the school).</summary>
public sealed class DeviceContact
{
    /// <summary>The device's replica id.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>The account.</summary>
    public string Account { get; set; } = string.Empty;

    /// <summary>The label given at enrollment.</summary>
    public string? Label { get; set; }

    /// <summary>Whether the school enrolled it.</summary>
    public bool Enrolled { get; set; }

    /// <summary>Whether the school revoked it.</summary>
    public bool Revoked { get; set; }

    /// <summary>The author time of its newest event, or null if none arrived yet.</summary>
    public DateTimeOffset? LastContact { get; set; }

    /// <summary>The chain position of its newest event.</summary>
    public long LastSeq { get; set; }
}
