using System.Collections.Immutable;
using System.Globalization;
using IMikelGo.Engine;

namespace IMikelGo.School.Model;

/// <summary>
/// The neutral model every admin-system adapter produces: a school's term, teachers (accounts), student groups,
/// rooms and weekly lessons. Validated by <see cref="TimetableValidator"/> before anything is published.
/// </summary>
/// <param name="School">The school's name (written into each account's <c>account.opened</c>).</param>
/// <param name="Term">The term the weekly lessons run in, with its holidays.</param>
/// <param name="Teachers">The teachers; each becomes one account.</param>
/// <param name="Groups">The student groups (classes).</param>
/// <param name="Rooms">The rooms.</param>
/// <param name="Lessons">The weekly lessons, one per teacher and slot.</param>
public sealed record SchoolTimetable(
    string School,
    SchoolTerm Term,
    ImmutableArray<SchoolTeacher> Teachers,
    ImmutableArray<StudentGroup> Groups,
    ImmutableArray<SchoolRoom> Rooms,
    ImmutableArray<WeeklyLesson> Lessons)
{
    /// <summary>The lessons of <paramref name="teacher"/>, in series id order.</summary>
    public IEnumerable<WeeklyLesson> LessonsOf(AccountId teacher) =>
        Lessons.Where(l => l.Teacher == teacher).OrderBy(l => l.Series.Value, StringComparer.Ordinal);
}

/// <summary>A term: lessons take place weekly from <see cref="Start"/> to <see cref="End"/>, except on holidays.</summary>
/// <param name="Start">First day.</param>
/// <param name="End">Last day (inclusive).</param>
/// <param name="Holidays">Holidays inside the term.</param>
public sealed record SchoolTerm(DateOnly Start, DateOnly End, ImmutableArray<SchoolHoliday> Holidays)
{
    /// <summary>Whether <paramref name="date"/> falls in a holiday.</summary>
    public bool IsHoliday(DateOnly date) => Holidays.Any(h => date >= h.From && date <= h.To);

    /// <summary>Whether <paramref name="date"/> is a school day of the term (inside it and not a holiday).</summary>
    public bool IsTermDay(DateOnly date) => date >= Start && date <= End && !IsHoliday(date);
}

/// <summary>Holidays: no lesson from <see cref="From"/> to <see cref="To"/> inclusive.</summary>
/// <param name="Name">What the holidays are called.</param>
/// <param name="From">First day.</param>
/// <param name="To">Last day (inclusive).</param>
public sealed record SchoolHoliday(string Name, DateOnly From, DateOnly To);

/// <summary>A teacher and the account (license key) they get.</summary>
/// <param name="Account">The account id.</param>
/// <param name="Name">The display name.</param>
/// <param name="SourceId">The id in the admin system (e.g. the XHSTT resource id), for error messages.</param>
public sealed record SchoolTeacher(AccountId Account, string Name, string SourceId);

/// <summary>A student.</summary>
/// <param name="Id">The student id.</param>
/// <param name="Name">The name the teacher sees.</param>
public sealed record SchoolStudent(StudentId Id, string Name);

/// <summary>
/// A student group (class). When the admin system lists no members, the group is taught as one "group student"
/// whose id is the group's id.
/// </summary>
/// <param name="Id">The group id (a valid student id).</param>
/// <param name="Name">The display name.</param>
/// <param name="Members">The members, or empty.</param>
/// <param name="SourceId">The id in the admin system, for error messages.</param>
public sealed record StudentGroup(StudentId Id, string Name, ImmutableArray<SchoolStudent> Members, string SourceId)
{
    /// <summary>The students a lesson of this group lists: its members, or the group student.</summary>
    public IEnumerable<SchoolStudent> Students => Members.IsDefaultOrEmpty ? [new SchoolStudent(Id, Name)] : Members;
}

/// <summary>A room.</summary>
/// <param name="Id">The room id.</param>
/// <param name="Name">The display name.</param>
/// <param name="SourceId">The id in the admin system, for error messages.</param>
public sealed record SchoolRoom(RoomId Id, string Name, string SourceId);

/// <summary>Where and when a weekly lesson takes place.</summary>
/// <param name="Weekday">ISO weekday, 1 = Monday … 7 = Sunday.</param>
/// <param name="StartMinute">Local start time in minutes after midnight.</param>
/// <param name="DurationMinutes">Length.</param>
/// <param name="Room">The room.</param>
public readonly record struct LessonSlot(int Weekday, int StartMinute, int DurationMinutes, RoomId Room) : IComparable<LessonSlot>
{
    /// <inheritdoc />
    public int CompareTo(LessonSlot other)
    {
        var c = Weekday.CompareTo(other.Weekday);
        c = c != 0 ? c : StartMinute.CompareTo(other.StartMinute);
        c = c != 0 ? c : DurationMinutes.CompareTo(other.DurationMinutes);
        return c != 0 ? c : string.CompareOrdinal(Room.Value, other.Room.Value);
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"day {Weekday} {StartMinute / 60:00}:{StartMinute % 60:00}+{DurationMinutes}min in {Room.Value}");

    /// <summary>Less-than by <see cref="CompareTo"/>.</summary>
    public static bool operator <(LessonSlot left, LessonSlot right) => left.CompareTo(right) < 0;

    /// <summary>Greater-than by <see cref="CompareTo"/>.</summary>
    public static bool operator >(LessonSlot left, LessonSlot right) => left.CompareTo(right) > 0;

    /// <summary>Less-or-equal by <see cref="CompareTo"/>.</summary>
    public static bool operator <=(LessonSlot left, LessonSlot right) => left.CompareTo(right) <= 0;

    /// <summary>Greater-or-equal by <see cref="CompareTo"/>.</summary>
    public static bool operator >=(LessonSlot left, LessonSlot right) => left.CompareTo(right) >= 0;
}

/// <summary>One teacher's weekly lesson (a lesson series in the teacher's account).</summary>
/// <param name="Series">The series id, unique within the teacher's account.</param>
/// <param name="Key">
/// The admin system's identity of the lesson (e.g. the XHSTT event id). When another version of the timetable is
/// imported, lessons with the same teacher and key are matched to compute reschedules.
/// </param>
/// <param name="Subject">What is taught.</param>
/// <param name="Teacher">The teacher's account.</param>
/// <param name="Groups">The student groups taught.</param>
/// <param name="Slot">Weekday, start, duration and room.</param>
public sealed record WeeklyLesson(SeriesId Series, string Key, string Subject, AccountId Teacher, ImmutableArray<StudentId> Groups, LessonSlot Slot);
