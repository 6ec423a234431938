using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using IMikelGo.Engine;
using IMikelGo.School.Model;

namespace IMikelGo.School.Import;

/// <summary>
/// The integrators' CSV import format (docs/school-import.md): one lesson per line with the header
/// <c>series,subject,teacher,teacher_name,groups,room,weekday,start,duration</c> (comma-separated, RFC 4180 quoting,
/// UTF-8; <c>groups</c> separated by <c>;</c>; optional trailing column <c>key</c>). Teachers, groups (one group
/// student each) and rooms are the distinct values named; the term comes from the caller. Errors name the line and
/// column (e.g. <c>line 7, column room</c>).
/// </summary>
public sealed class CsvSchoolDataSource : ISchoolDataSource
{
    private static readonly string[] Required = ["series", "subject", "teacher", "teacher_name", "groups", "room", "weekday", "start", "duration"];
    private readonly Func<string> _read;
    private readonly string _school;
    private readonly SchoolTerm _term;

    private CsvSchoolDataSource(Func<string> read, string school, SchoolTerm term)
    {
        ArgumentNullException.ThrowIfNull(school);
        ArgumentNullException.ThrowIfNull(term);
        _read = read;
        _school = school;
        _term = term;
    }

    /// <summary>Reads the CSV file at <paramref name="path"/>.</summary>
    public static CsvSchoolDataSource FromFile(string path, string school, SchoolTerm term)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new(() => ImportText.Decode(File.ReadAllBytes(path), path, xml: false), school, term);
    }

    /// <summary>Reads CSV text.</summary>
    public static CsvSchoolDataSource FromCsv(string csv, string school, SchoolTerm term)
    {
        ArgumentNullException.ThrowIfNull(csv);
        return new(() => csv, school, term);
    }

    /// <inheritdoc />
    public SchoolTimetable Load()
    {
        var rows = Parse(_read());
        if (rows.Count == 0)
        {
            throw new SchoolImportException("line 1", "no header");
        }

        var header = rows[0].Fields.Select(h => h.Trim().ToLowerInvariant()).ToList();
        foreach (var column in Required.Where(c => !header.Contains(c)))
        {
            throw new SchoolImportException("line 1", $"missing column {column}");
        }

        var teachers = new Dictionary<string, SchoolTeacher>(StringComparer.Ordinal);
        var groups = new Dictionary<string, StudentGroup>(StringComparer.Ordinal);
        var rooms = new Dictionary<string, SchoolRoom>(StringComparer.Ordinal);
        var lessons = ImmutableArray.CreateBuilder<WeeklyLesson>();
        foreach (var (fields, line) in rows.Skip(1))
        {
            if (fields.Count == 1 && fields[0].Length == 0)
            {
                continue;
            }

            if (fields.Count != header.Count)
            {
                throw new SchoolImportException(Where(line), string.Create(CultureInfo.InvariantCulture, $"{fields.Count} fields, the header has {header.Count}"));
            }

            string Field(string column) => fields[header.IndexOf(column)].Trim();
            T Id<T>(string column, string value, Func<string, T> make)
            {
                try
                {
                    return make(value);
                }
                catch (FormatException ex)
                {
                    throw new SchoolImportException($"{Where(line)}, column {column}", ex.Message, ex);
                }
            }

            var teacher = Id("teacher", Field("teacher"), s => new AccountId(s));
            teachers.TryAdd(teacher.Value, new SchoolTeacher(teacher, Field("teacher_name") is { Length: > 0 } n ? n : teacher.Value, teacher.Value));
            var room = Id("room", Field("room"), s => new RoomId(s));
            rooms.TryAdd(room.Value, new SchoolRoom(room, room.Value, room.Value));
            var groupIds = Field("groups").Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(g => Id("groups", g, s => new StudentId(s))).ToImmutableArray();
            foreach (var g in groupIds)
            {
                groups.TryAdd(g.Value, new StudentGroup(g, g.Value, [], g.Value));
            }

            var weekdayText = Field("weekday");
            var weekday = int.TryParse(weekdayText, NumberStyles.None, CultureInfo.InvariantCulture, out var w) && w is >= 1 and <= 7 ? w
                : Array.FindIndex(JsonSchoolDataSource.WeekdayNames, x => x.Equals(weekdayText, StringComparison.OrdinalIgnoreCase)) + 1;
            if (weekday == 0)
            {
                throw new SchoolImportException($"{Where(line)}, column weekday", $"\"{weekdayText}\" is not a weekday (1–7 or monday…sunday)");
            }

            if (!TimeOnly.TryParseExact(Field("start"), "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var start))
            {
                throw new SchoolImportException($"{Where(line)}, column start", $"\"{Field("start")}\" is not a time HH:mm");
            }

            if (!int.TryParse(Field("duration"), NumberStyles.None, CultureInfo.InvariantCulture, out var duration) || duration is < 1 or > 1440)
            {
                throw new SchoolImportException($"{Where(line)}, column duration", $"\"{Field("duration")}\" is not a number of minutes");
            }

            var series = Id("series", Field("series"), s => new SeriesId(s));
            var key = header.Contains("key") && Field("key") is { Length: > 0 } k ? k : series.Value;
            lessons.Add(new WeeklyLesson(series, key, Field("subject"), teacher, groupIds,
                new LessonSlot(weekday, (start.Hour * 60) + start.Minute, duration, room)));
        }

        return TimetableValidator.Validate(new SchoolTimetable(_school, _term, [.. teachers.Values], [.. groups.Values], [.. rooms.Values], lessons.ToImmutable()));
    }

    private static string Where(int line) => string.Create(CultureInfo.InvariantCulture, $"line {line}");

    /// <summary>RFC 4180: fields separated by commas, quoted fields may hold commas, quotes ("") and line breaks.</summary>
    private static List<(List<string> Fields, int Line)> Parse(string text)
    {
        var rows = new List<(List<string>, int)>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var line = 1;
        var rowLine = 1;
        var quoted = false;
        var i = text.Length > 0 && text[0] == '\uFEFF' ? 1 : 0;
        for (; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    line += c == '\n' ? 1 : 0;
                    field.Append(c);
                }
            }
            else if (c == '"' && field.Length == 0)
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else if (c is '\n' or '\r')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
                {
                    i++;
                }

                fields.Add(field.ToString());
                field.Clear();
                rows.Add((fields, rowLine));
                fields = [];
                line++;
                rowLine = line;
            }
            else
            {
                field.Append(c);
            }
        }

        if (quoted)
        {
            throw new SchoolImportException(Where(rowLine), "unterminated quoted field");
        }

        if (field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            rows.Add((fields, rowLine));
        }

        return rows;
    }
}
