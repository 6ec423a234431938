using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using IMikelGo.Engine;
using IMikelGo.School.Model;

namespace IMikelGo.School.Import;

/// <summary>
/// The integrators' JSON import format (docs/school-import.md): school, term with holidays, teachers, groups with
/// optional members, rooms and weekly lessons. Ids must already be valid iMikelGo ids. Every error names its JSON
/// path (e.g. <c>$.lessons[3].teacher</c>).
/// </summary>
public sealed class JsonSchoolDataSource : ISchoolDataSource
{
    private readonly Func<string> _read;
    private readonly bool _allowDuplicateProperties;

    private JsonSchoolDataSource(Func<string> read, bool allowDuplicateProperties = false)
    {
        _read = read;
        _allowDuplicateProperties = allowDuplicateProperties;
    }

    /// <summary>Reads the file at <paramref name="path"/>.</summary>
    public static JsonSchoolDataSource FromFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new(() => ImportText.Decode(File.ReadAllBytes(path), path, xml: false));
    }

    /// <summary>Reads <paramref name="json"/>.</summary>
    public static JsonSchoolDataSource FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return new(() => json);
    }

    /// <summary>
    /// Reads an import the connector stored before duplicate properties were refused: it was accepted (and may be
    /// published), so replaying it must not fail.
    /// </summary>
    internal static JsonSchoolDataSource FromStoredJson(string json) => new(() => json, allowDuplicateProperties: true);

    /// <inheritdoc />
    public SchoolTimetable Load()
    {
        JsonDocument doc;
        try
        {
            // A property given twice ("teacher": "anna", "teacher": "ben") is ambiguous: one of them would be dropped silently.
            doc = JsonDocument.Parse(_read(), new JsonDocumentOptions
            {
                AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow, AllowDuplicateProperties = _allowDuplicateProperties,
            });
        }
        catch (JsonException ex)
        {
            throw new SchoolImportException("$", $"not valid JSON: {ex.Message}", ex);
        }

        using (doc)
        {
            var root = new Node(doc.RootElement, "$");
            var school = root.String("school");
            var termNode = root.Object("term");
            var holidays = termNode.OptionalArray("holidays").Select(h => new SchoolHoliday(h.String("name"), h.Date("from"), h.Date("to"))).ToImmutableArray();
            var term = new SchoolTerm(termNode.Date("start"), termNode.Date("end"), holidays);
            var teachers = root.Array("teachers").Select(t => new SchoolTeacher(t.Id("id", s => new AccountId(s)), t.String("name"), t.String("id"))).ToImmutableArray();
            var groups = root.Array("groups").Select(g => new StudentGroup(
                g.Id("id", s => new StudentId(s)), g.String("name"),
                [.. g.OptionalArray("members").Select(m => new SchoolStudent(m.Id("id", s => new StudentId(s)), m.String("name")))], g.String("id"))).ToImmutableArray();
            var rooms = root.Array("rooms").Select(r => new SchoolRoom(r.Id("id", s => new RoomId(s)), r.String("name"), r.String("id"))).ToImmutableArray();
            var lessons = ImmutableArray.CreateBuilder<WeeklyLesson>();
            foreach (var l in root.Array("lessons"))
            {
                var series = l.Id("id", s => new SeriesId(s));
                var slot = new LessonSlot(l.Weekday("weekday"), l.Clock("start"), l.Int("duration", 1, 1440), l.Id("room", s => new RoomId(s)));
                var groupIds = l.Array("groups").Select(g => g.AsId(s => new StudentId(s))).ToImmutableArray();
                var teacherIds = l.Element.TryGetProperty("teachers", out _)
                    ? l.Array("teachers").Select(t => t.AsId(s => new AccountId(s))).ToList()
                    : [l.Id("teacher", s => new AccountId(s))];
                foreach (var teacher in teacherIds)
                {
                    lessons.Add(new WeeklyLesson(series, l.OptionalString("key") ?? series.Value, l.String("subject"), teacher, groupIds, slot));
                }
            }

            try
            {
                return TimetableValidator.Validate(new SchoolTimetable(school, term, teachers, groups, rooms, lessons.ToImmutable()));
            }
            catch (SchoolImportException ex)
            {
                throw new SchoolImportException("$." + ex.Element, ex.Message[(ex.Element.Length + 2)..], ex);
            }
        }
    }

    private readonly record struct Node(JsonElement Element, string Path)
    {
        public Node Get(string name) =>
            Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
                ? new Node(v, $"{Path}.{name}")
                : throw new SchoolImportException($"{Path}.{name}", "missing");

        public Node Object(string name) => Get(name) is { Element.ValueKind: JsonValueKind.Object } n ? n : throw new SchoolImportException($"{Path}.{name}", "not an object");

        public IEnumerable<Node> Array(string name)
        {
            var n = Get(name);
            if (n.Element.ValueKind != JsonValueKind.Array)
            {
                throw new SchoolImportException(n.Path, "not an array");
            }

            var path = n.Path;
            return n.Element.EnumerateArray().Select((e, i) => new Node(e, string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]"))).ToList();
        }

        public IEnumerable<Node> OptionalArray(string name) =>
            Element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? Array(name) : [];

        public string String(string name) => Get(name).AsString();

        public string? OptionalString(string name) =>
            Element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? Get(name).AsString() : null;

        public string AsString() =>
            Element.ValueKind == JsonValueKind.String && Element.GetString() is { Length: > 0 } s ? s : throw new SchoolImportException(Path, "not a non-empty string");

        public T Id<T>(string name, Func<string, T> make) => Get(name).AsId(make);

        public T AsId<T>(Func<string, T> make)
        {
            var s = AsString();
            try
            {
                return make(s);
            }
            catch (FormatException ex)
            {
                throw new SchoolImportException(Path, ex.Message, ex);
            }
        }

        public DateOnly Date(string name)
        {
            var n = Get(name);
            return DateOnly.TryParseExact(n.AsString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)
                ? d
                : throw new SchoolImportException(n.Path, "not a date yyyy-MM-dd");
        }

        public int Int(string name, int min, int max)
        {
            var n = Get(name);
            return n.Element.ValueKind == JsonValueKind.Number && n.Element.TryGetInt32(out var v) && v >= min && v <= max
                ? v
                : throw new SchoolImportException(n.Path, string.Create(CultureInfo.InvariantCulture, $"not an integer from {min} to {max}"));
        }

        public int Weekday(string name)
        {
            var n = Get(name);
            if (n.Element.ValueKind == JsonValueKind.Number)
            {
                return Int(name, 1, 7);
            }

            var i = System.Array.FindIndex(WeekdayNames, w => w.Equals(n.AsString(), StringComparison.OrdinalIgnoreCase));
            return i >= 0 ? i + 1 : throw new SchoolImportException(n.Path, "not a weekday (1–7 or monday…sunday)");
        }

        public int Clock(string name)
        {
            var n = Get(name);
            return TimeOnly.TryParseExact(n.AsString(), "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var t)
                ? (t.Hour * 60) + t.Minute
                : throw new SchoolImportException(n.Path, "not a time HH:mm");
        }
    }

    internal static readonly string[] WeekdayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
}
