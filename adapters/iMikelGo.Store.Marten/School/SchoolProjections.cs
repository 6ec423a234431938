using System.Globalization;
using IMikelGo.Engine;
using JasperFx.Events;
using Marten.Events.Projections;

namespace IMikelGo.Store.Marten.School;

/// <summary>Absences per student (per account): <see cref="StudentAbsences"/>.</summary>
public sealed class StudentAbsencesProjection : MultiStreamProjection<StudentAbsences, string>
{
    /// <summary>Groups absences and their withdrawals by account and student.</summary>
    public StudentAbsencesProjection()
    {
        Identities<SchoolLogEvent>(e => e.Type is "student.absent" or "absence.withdrawn" && e.Student is { } s ? [$"{e.Account}/{s}"] : []);
    }

    /// <inheritdoc />
    public override StudentAbsences? Evolve(StudentAbsences? snapshot, string id, IEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Data is not SchoolLogEvent { Occurrence: { } occurrence, Student: { } student } ev)
        {
            return snapshot;
        }

        snapshot ??= new StudentAbsences { Id = id, Account = ev.Account, Student = student };
        if (ev.Type == "student.absent")
        {
            snapshot.Absences[occurrence] = new AbsenceEntry(occurrence, ev.Excused ?? false, ev.Reason, ev.Replica);
        }
        else
        {
            snapshot.Absences.Remove(occurrence);
        }

        return snapshot;
    }
}

/// <summary>
/// Cancellations per teacher per month: <see cref="TeacherMonthCancellations"/>. A series version that ends earlier
/// (a timetable change continues the lesson as a new series, and the school records the teacher's later cancellations
/// again on it) drops the series' cancellations after its new last day, so payroll counts each lesson once.
/// </summary>
public sealed class TeacherMonthCancellationsProjection : MultiStreamProjection<TeacherMonthCancellations, string>
{
    // A term is at most a school year: the months after a series' new last day that can hold its cancellations.
    private const int MonthsOfATerm = 12;

    /// <summary>Groups cancellations by account and the month of the cancelled occurrence.</summary>
    public TeacherMonthCancellationsProjection()
    {
        Identities<SchoolLogEvent>(e => e switch
        {
            { Type: "lesson.cancelled", Occurrence: { } o } => [$"{e.Account}/{Month(o)}"],
            { Type: "series.published", TermEnd: { } end } =>
                [.. Enumerable.Range(0, MonthsOfATerm + 1).Select(k => $"{e.Account}/{end.AddMonths(k).ToString("yyyy-MM", CultureInfo.InvariantCulture)}")],
            _ => [],
        });
    }

    /// <inheritdoc />
    public override TeacherMonthCancellations? Evolve(TeacherMonthCancellations? snapshot, string id, IEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        switch (e.Data)
        {
            case SchoolLogEvent { Type: "series.published", Series: { } series, TermEnd: { } end } when snapshot is not null:
                foreach (var ended in snapshot.Cancelled.Keys.Where(k => OccurrenceId.Parse(k) is var o && o.Series.Value == series && o.Date > end).ToList())
                {
                    snapshot.Cancelled.Remove(ended);
                }

                return snapshot;
            case SchoolLogEvent { Type: "lesson.cancelled", Occurrence: { } occurrence } ev:
                snapshot ??= new TeacherMonthCancellations { Id = id, Account = ev.Account, Month = Month(occurrence) };
                snapshot.Cancelled[occurrence] = ev.Reason ?? string.Empty;
                return snapshot;
            default:
                return snapshot;
        }
    }

    private static string Month(string occurrence) =>
        OccurrenceId.Parse(occurrence).Date.ToString("yyyy-MM", CultureInfo.InvariantCulture);
}

/// <summary>The reschedule log: one <see cref="RescheduleLogEntry"/> per reschedule event.</summary>
public sealed class RescheduleLogProjection : MultiStreamProjection<RescheduleLogEntry, string>
{
    /// <summary>One document per reschedule event, keyed by its hash.</summary>
    public RescheduleLogProjection()
    {
        Identities<SchoolLogEvent>(e => e.Type == "lesson.rescheduled" ? [e.Hash] : []);
    }

    /// <inheritdoc />
    public override RescheduleLogEntry? Evolve(RescheduleLogEntry? snapshot, string id, IEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e.Data is SchoolLogEvent ev
            ? new RescheduleLogEntry
            {
                Id = id, Account = ev.Account, Occurrence = ev.Occurrence ?? string.Empty, Date = ev.NewDate ?? default,
                StartMinute = ev.NewStart ?? 0, DurationMinutes = ev.NewDuration ?? 0, Room = ev.NewRoom ?? string.Empty,
                BySchool = ev.BySchool, Replica = ev.Replica, At = ev.AuthorTime,
            }
            : snapshot;
    }
}

/// <summary>Devices with their last contact: <see cref="DeviceContact"/>.</summary>
public sealed class DeviceContactProjection : MultiStreamProjection<DeviceContact, string>
{
    /// <summary>Groups enrollments and revocations by the device named, and every device-authored event by its author.</summary>
    public DeviceContactProjection()
    {
        Identities<SchoolLogEvent>(e => e.Type is "device.enrolled" or "device.revoked" && e.Device is { } d ? [d] : e.BySchool ? [] : [e.Replica]);
    }

    /// <inheritdoc />
    public override DeviceContact? Evolve(DeviceContact? snapshot, string id, IEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.Data is not SchoolLogEvent ev)
        {
            return snapshot;
        }

        snapshot ??= new DeviceContact { Id = id, Account = ev.Account };
        switch (ev.Type)
        {
            case "device.enrolled" when ev.Device == id:
                snapshot.Enrolled = true;
                snapshot.Label = ev.Label;
                break;
            case "device.revoked" when ev.Device == id:
                snapshot.Revoked = true;
                break;
            default:
                if (ev.Replica == id && (snapshot.LastContact is null || ev.AuthorTime > snapshot.LastContact))
                {
                    snapshot.LastContact = ev.AuthorTime;
                    snapshot.LastSeq = Math.Max(snapshot.LastSeq, ev.Seq);
                }

                break;
        }

        return snapshot;
    }
}
