using IMikelGo.School.Model;

namespace IMikelGo.School.Import;

/// <summary>The port to a school's admin system: reads its timetable into the neutral model.</summary>
public interface ISchoolDataSource
{
    /// <summary>Reads and validates the timetable.</summary>
    /// <exception cref="SchoolImportException">The input is unknown or inconsistent; the message names the element.</exception>
    SchoolTimetable Load();
}
