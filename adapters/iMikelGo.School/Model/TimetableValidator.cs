using System.Globalization;

namespace IMikelGo.School.Model;

/// <summary>Checks a <see cref="SchoolTimetable"/> for consistency; every adapter's output passes through it.</summary>
public static class TimetableValidator
{
    /// <summary>Throws a <see cref="SchoolImportException"/> naming the first inconsistent element.</summary>
    public static SchoolTimetable Validate(SchoolTimetable timetable)
    {
        ArgumentNullException.ThrowIfNull(timetable);
        if (string.IsNullOrWhiteSpace(timetable.School))
        {
            throw new SchoolImportException("school", "the school has no name");
        }

        var term = timetable.Term ?? throw new SchoolImportException("term", "missing");
        if (term.End < term.Start)
        {
            throw new SchoolImportException("term", $"ends ({term.End:yyyy-MM-dd}) before it starts ({term.Start:yyyy-MM-dd})");
        }

        foreach (var (h, i) in term.Holidays.Select((h, i) => (h, i)))
        {
            if (h.To < h.From || string.IsNullOrWhiteSpace(h.Name))
            {
                throw new SchoolImportException(Inv($"term.holidays[{i}]"), $"\"{h.Name}\" is unnamed or ends before it starts");
            }
        }

        var teachers = Unique(timetable.Teachers, t => t.Account.Value, t => $"teacher {t.SourceId}");
        var groups = Unique(timetable.Groups, g => g.Id.Value, g => $"group {g.SourceId}");
        var rooms = Unique(timetable.Rooms, r => r.Id.Value, r => $"room {r.SourceId}");
        foreach (var g in timetable.Groups)
        {
            Unique(g.Members.IsDefault ? [] : g.Members, m => m.Id.Value, m => $"group {g.SourceId} member {m.Id.Value}");
        }

        var series = new HashSet<(string, string)>();
        foreach (var l in timetable.Lessons)
        {
            var where = $"lesson {l.Series.Value} of {l.Teacher.Value}";
            if (!series.Add((l.Teacher.Value, l.Series.Value)))
            {
                throw new SchoolImportException(where, "duplicate series id for this teacher");
            }

            if (!teachers.Contains(l.Teacher.Value))
            {
                throw new SchoolImportException(where, $"unknown teacher {l.Teacher.Value}");
            }

            if (l.Groups.IsDefaultOrEmpty)
            {
                throw new SchoolImportException(where, "no student group");
            }

            foreach (var g in l.Groups.Where(g => !groups.Contains(g.Value)))
            {
                throw new SchoolImportException(where, $"unknown group {g.Value}");
            }

            if (!rooms.Contains(l.Slot.Room.Value))
            {
                throw new SchoolImportException(where, $"unknown room {l.Slot.Room.Value}");
            }

            if (l.Slot.Weekday is < 1 or > 7 || l.Slot.StartMinute is < 0 or >= 1440 || l.Slot.DurationMinutes <= 0 ||
                l.Slot.StartMinute + l.Slot.DurationMinutes > 1440)
            {
                throw new SchoolImportException(where, $"impossible slot ({l.Slot})");
            }

            if (string.IsNullOrWhiteSpace(l.Subject) || string.IsNullOrWhiteSpace(l.Key))
            {
                throw new SchoolImportException(where, "no subject or key");
            }
        }

        return timetable;
    }

    private static HashSet<string> Unique<T>(IEnumerable<T> items, Func<T, string> id, Func<T, string> describe)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (!seen.Add(id(item)))
            {
                throw new SchoolImportException(describe(item), $"duplicate id {id(item)}");
            }
        }

        return seen;
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
