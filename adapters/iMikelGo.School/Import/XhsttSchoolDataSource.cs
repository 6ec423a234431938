using System.Collections.Immutable;
using System.Globalization;
using System.Xml;
using System.Xml.Linq;
using IMikelGo.Engine;
using IMikelGo.School.Model;

namespace IMikelGo.School.Import;

/// <summary>How an XHSTT archive becomes a <see cref="SchoolTimetable"/> (see docs/school-connector.md).</summary>
public sealed class XhsttImportOptions
{
    /// <summary>The instance to import; null takes the archive's only instance (several are an error).</summary>
    public string? Instance { get; set; }

    /// <summary>The <c>SolutionGroup</c> whose solution gives the times; null takes the first in the file.</summary>
    public string? SolutionGroup { get; set; }

    /// <summary>Start of period 1 of every day (default 08:00).</summary>
    public TimeOnly FirstPeriodStart { get; set; } = new(8, 0);

    /// <summary>Length of one period in minutes (default 55); period n starts at FirstPeriodStart + (n−1)·PeriodMinutes.</summary>
    public int PeriodMinutes { get; set; } = 55;

    /// <summary>Explicit start times of periods 1, 2, … (overrides the regular grid, e.g. to leave a break).</summary>
    public IReadOnlyList<TimeOnly>? PeriodStarts { get; set; }

    /// <summary>ISO weekday of the first <c>Day</c> time group (default 1, Monday); the next days follow in document order.</summary>
    public int FirstWeekday { get; set; } = 1;

    /// <summary>The term the weekly lessons run in (XHSTT has no calendar).</summary>
    public SchoolTerm Term { get; set; } = DefaultTerm;

    /// <summary>The school name; null takes the instance's <c>MetaData/Name</c>.</summary>
    public string? SchoolName { get; set; }

    /// <summary>Prepended to every teacher resource id before it is mapped to an account id (default none).</summary>
    public string AccountPrefix { get; set; } = string.Empty;

    /// <summary>The default term: 14 Sep 2026 to 18 Dec 2026 with an autumn break 26–30 Oct 2026.</summary>
    public static SchoolTerm DefaultTerm { get; } = new(new DateOnly(2026, 9, 14), new DateOnly(2026, 12, 18),
        [new SchoolHoliday("Autumn break", new DateOnly(2026, 10, 26), new DateOnly(2026, 10, 30))]);
}

/// <summary>
/// Imports a High School Timetable Archive (XHSTT) instance and one of its solutions:
/// <list type="bullet">
/// <item>Times: the k-th <c>Day</c> time group (document order) is ISO weekday <c>FirstWeekday + k − 1</c>; the n-th
/// <c>Time</c> of a day (document order) is period n, starting at <see cref="XhsttImportOptions.FirstPeriodStart"/> +
/// (n−1)·<see cref="XhsttImportOptions.PeriodMinutes"/> (or <see cref="XhsttImportOptions.PeriodStarts"/>).</item>
/// <item>Resources: the types named Teacher, Class (or Group/Student) and Room (by id or name, any case). Teachers →
/// accounts, classes → student groups (one group student each), rooms → rooms. Other types are ignored.</item>
/// <item>Events: each solution sub-event (a <c>Solution/Events/Event</c> with a Time and a Duration in periods) is one
/// weekly lesson per teacher of the event, series id <c>&lt;event&gt;-&lt;k&gt;</c> (k-th sub-event of that event in the
/// solution). The room is the first room the event names or the solution assigns; an event without one takes place
/// in its first class's home room <c>aula-&lt;class&gt;</c>.</item>
/// </list>
/// Any dangling reference, missing time, duplicate id, unknown instance/solution or missing Teacher/Class type is a
/// <see cref="SchoolImportException"/> naming the element (XPath-like, with the line number).
/// </summary>
public sealed class XhsttSchoolDataSource : ISchoolDataSource
{
    private readonly Func<XDocument> _open;
    private readonly XhsttImportOptions _options;

    /// <summary>Reads the archive at <paramref name="path"/>.</summary>
    public XhsttSchoolDataSource(string path, XhsttImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        _open = () => LoadXml(() => XDocument.Load(path, LoadOptions.SetLineInfo), path);
        _options = options ?? new XhsttImportOptions();
    }

    /// <summary>Reads the archive given as XML text.</summary>
    public static XhsttSchoolDataSource FromXml(string xml, XhsttImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(xml);
        return new XhsttSchoolDataSource(() => LoadXml(() => XDocument.Parse(xml, LoadOptions.SetLineInfo), "xml"), options ?? new XhsttImportOptions());
    }

    private XhsttSchoolDataSource(Func<XDocument> open, XhsttImportOptions options)
    {
        _open = open;
        _options = options;
    }

    /// <summary>The ids of the archive's solution groups, in document order.</summary>
    public IReadOnlyList<string> SolutionGroups() =>
        [.. _open().Root!.Elements("SolutionGroups").Elements("SolutionGroup").Select(g => (string?)g.Attribute("Id") ?? string.Empty)];

    /// <inheritdoc />
    public SchoolTimetable Load() => TimetableValidator.Validate(new Reader(_open(), _options).Read());

    private static XDocument LoadXml(Func<XDocument> load, string what)
    {
        try
        {
            return load();
        }
        catch (XmlException ex)
        {
            throw new SchoolImportException(what, $"not well-formed XML: {ex.Message}", ex);
        }
    }

    private sealed class Reader(XDocument doc, XhsttImportOptions options)
    {
        private readonly Dictionary<string, (int Weekday, int Period)> _times = new(StringComparer.Ordinal);
        private readonly Dictionary<int, int> _periodsPerDay = [];
        private readonly Dictionary<string, Kind> _resources = new(StringComparer.Ordinal);
        private readonly Dictionary<string, XElement> _resourceElements = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _resourceTypes = new(StringComparer.Ordinal);
        private readonly IdMapper _accounts = new(options.AccountPrefix);
        private readonly IdMapper _students = new();
        private readonly IdMapper _rooms = new();
        private readonly IdMapper _events = new();

        private enum Kind
        {
            Other,
            Teacher,
            Class,
            Room,
        }

        public SchoolTimetable Read()
        {
            var root = doc.Root;
            if (root is null || root.Name.LocalName != "HighSchoolTimetableArchive")
            {
                throw Error(root ?? (XObject)doc, "the root element is not HighSchoolTimetableArchive");
            }

            var instances = root.Elements("Instances").Elements("Instance").ToList();
            Unique(instances, "Instance");
            var instance = options.Instance is { } wanted
                ? instances.FirstOrDefault(i => Id(i) == wanted) ?? throw Error(root, $"no Instance with Id \"{wanted}\" (found: {string.Join(", ", instances.Select(Id))})")
                : instances.Count == 1 ? instances[0] : throw Error(root, $"{instances.Count} instances; choose one with XhsttImportOptions.Instance");
            var instanceId = Id(instance);

            ReadTimes(instance);
            ReadResources(instance);
            var events = ReadEvents(instance);
            var solution = FindSolution(root, instanceId);

            var teachers = _resources.Where(r => r.Value == Kind.Teacher).Select(r => r.Key).ToList();
            var classes = _resources.Where(r => r.Value == Kind.Class).Select(r => r.Key).ToList();
            var rooms = _resources.Where(r => r.Value == Kind.Room).Select(r => r.Key).ToList();
            var teacherList = teachers.Select(t => new SchoolTeacher(new AccountId(_accounts.Map(t)), NameOf(t), t)).ToImmutableArray();
            var groupList = classes.Select(c => new StudentGroup(new StudentId(_students.Map(c)), NameOf(c), [], c)).ToImmutableArray();
            var roomList = rooms.Select(r => new SchoolRoom(new RoomId(_rooms.Map(r)), NameOf(r), r)).ToList();
            foreach (var e in events.Values)
            {
                _events.Map(e.Id);
            }

            var lessons = ImmutableArray.CreateBuilder<WeeklyLesson>();
            var used = new Dictionary<string, int>(StringComparer.Ordinal);
            var subs = solution.Elements("Events").Elements("Event").ToList();
            for (var i = 0; i < subs.Count; i++)
            {
                var sub = subs[i];
                var reference = (string?)sub.Attribute("Reference") ?? throw Error(sub, "a solution event without Reference");
                if (!events.TryGetValue(reference, out var ev))
                {
                    throw Error(sub, $"refers to unknown event \"{reference}\"");
                }

                var duration = sub.Element("Duration") is { } d ? Int(d, 1) : ev.Duration;
                var timeRef = (string?)sub.Element("Time")?.Attribute("Reference") ?? throw Error(sub, $"event \"{reference}\" has no Time in this solution");
                if (!_times.TryGetValue(timeRef, out var time))
                {
                    throw Error(sub.Element("Time")!, $"refers to unknown time \"{timeRef}\"");
                }

                if (time.Period + duration - 1 > _periodsPerDay[time.Weekday])
                {
                    throw Error(sub, $"event \"{reference}\" at {timeRef} for {duration} periods runs past the end of the day");
                }

                var assigned = new List<string>();
                foreach (var r in sub.Elements("Resources").Elements("Resource"))
                {
                    var rid = (string?)r.Attribute("Reference") ?? throw Error(r, "an assigned resource without Reference");
                    if (!_resources.ContainsKey(rid))
                    {
                        throw Error(r, $"refers to unknown resource \"{rid}\"");
                    }

                    assigned.Add(rid);
                }

                ev.Assigned += duration;
                var k = used[reference] = used.GetValueOrDefault(reference) + 1;
                var roomSource = ev.Resources.Concat(assigned).FirstOrDefault(r => _resources[r] == Kind.Room);
                RoomId room;
                if (roomSource is not null)
                {
                    room = new RoomId(_rooms.Map(roomSource));
                }
                else
                {
                    var home = "aula " + ev.Classes[0];
                    room = new RoomId(_rooms.Map(home));
                    if (!roomList.Exists(x => x.Id == room))
                    {
                        roomList.Add(new SchoolRoom(room, "Aula " + NameOf(ev.Classes[0]), home));
                    }
                }

                var start = StartOf(time.Period);
                var slot = new LessonSlot(time.Weekday, start, StartOf(time.Period + duration - 1) + options.PeriodMinutes - start, room);
                var series = new SeriesId(string.Create(CultureInfo.InvariantCulture, $"{_events.Map(reference)}-{k}"));
                var groups = ev.Classes.Select(c => new StudentId(_students.Map(c))).ToImmutableArray();
                foreach (var teacher in ev.Teachers)
                {
                    lessons.Add(new WeeklyLesson(series, ev.Id, ev.Name, new AccountId(_accounts.Map(teacher)), groups, slot));
                }
            }

            foreach (var ev in events.Values.Where(e => e.Assigned != e.Duration))
            {
                throw Error(ev.Element, $"event \"{ev.Id}\" has duration {ev.Duration} but the solution assigns times to {ev.Assigned} periods");
            }

            var school = options.SchoolName ?? (string?)instance.Element("MetaData")?.Element("Name") ?? instanceId;
            return new SchoolTimetable(school, options.Term, teacherList, groupList, [.. roomList], lessons.ToImmutable());
        }

        private int StartOf(int period)
        {
            if (options.PeriodStarts is { } starts)
            {
                return period <= starts.Count
                    ? (starts[period - 1].Hour * 60) + starts[period - 1].Minute
                    : throw new SchoolImportException("XhsttImportOptions.PeriodStarts", $"no start time for period {period}");
            }

            return (options.FirstPeriodStart.Hour * 60) + options.FirstPeriodStart.Minute + ((period - 1) * options.PeriodMinutes);
        }

        private string NameOf(string resource) =>
            _resourceElements[resource].Element("Name")?.Value is { Length: > 0 } name ? name : resource;

        private void ReadTimes(XElement instance)
        {
            var times = instance.Element("Times") ?? throw Error(instance, "no Times");
            var days = times.Elements("TimeGroups").Elements("Day").ToList();
            Unique(days, "Day");
            if (days.Count == 0 || days.Count + options.FirstWeekday - 1 > 7)
            {
                throw Error(times, $"{days.Count} Day time groups; expected 1 to {8 - options.FirstWeekday}");
            }

            var weekdays = days.Select((d, i) => (Id(d), options.FirstWeekday + i)).ToDictionary(x => x.Item1, x => x.Item2, StringComparer.Ordinal);
            var all = times.Elements("Time").ToList();
            Unique(all, "Time");
            foreach (var t in all)
            {
                var dayRef = (string?)t.Element("Day")?.Attribute("Reference") ?? throw Error(t, $"time \"{Id(t)}\" has no Day");
                if (!weekdays.TryGetValue(dayRef, out var weekday))
                {
                    throw Error(t.Element("Day")!, $"refers to unknown day \"{dayRef}\"");
                }

                var period = _periodsPerDay[weekday] = _periodsPerDay.GetValueOrDefault(weekday) + 1;
                _times[Id(t)] = (weekday, period);
            }
        }

        private void ReadResources(XElement instance)
        {
            var resources = instance.Element("Resources") ?? throw Error(instance, "no Resources");
            var types = resources.Elements("ResourceTypes").Elements("ResourceType").ToList();
            Unique(types, "ResourceType");
            foreach (var t in types)
            {
                var names = new[] { Id(t), t.Element("Name")?.Value ?? string.Empty };
                var kind = names.Any(n => n.Equals("Teacher", StringComparison.OrdinalIgnoreCase) || n.Equals("Teachers", StringComparison.OrdinalIgnoreCase)) ? Kind.Teacher
                    : names.Any(n => n is { } x && (x.Equals("Class", StringComparison.OrdinalIgnoreCase) || x.Equals("Group", StringComparison.OrdinalIgnoreCase) ||
                        x.Equals("Student", StringComparison.OrdinalIgnoreCase) || x.Equals("Students", StringComparison.OrdinalIgnoreCase) || x.Equals("Classes", StringComparison.OrdinalIgnoreCase))) ? Kind.Class
                    : names.Any(n => n.Equals("Room", StringComparison.OrdinalIgnoreCase) || n.Equals("Rooms", StringComparison.OrdinalIgnoreCase)) ? Kind.Room
                    : Kind.Other;
                _resourceTypes[Id(t)] = kind.ToString();
            }

            if (!_resourceTypes.ContainsValue(nameof(Kind.Teacher)) || !_resourceTypes.ContainsValue(nameof(Kind.Class)))
            {
                throw Error(resources.Element("ResourceTypes") ?? resources, "the importer needs a Teacher and a Class (or Group/Student) resource type");
            }

            var all = resources.Elements("Resource").ToList();
            Unique(all, "Resource");
            foreach (var r in all)
            {
                var typeRef = (string?)r.Element("ResourceType")?.Attribute("Reference") ?? throw Error(r, $"resource \"{Id(r)}\" has no ResourceType");
                if (!_resourceTypes.TryGetValue(typeRef, out var kind))
                {
                    throw Error(r.Element("ResourceType")!, $"refers to unknown resource type \"{typeRef}\"");
                }

                _resources[Id(r)] = Enum.Parse<Kind>(kind);
                _resourceElements[Id(r)] = r;
            }
        }

        private Dictionary<string, EventInfo> ReadEvents(XElement instance)
        {
            var all = (instance.Element("Events") ?? throw Error(instance, "no Events")).Elements("Event").ToList();
            Unique(all, "Event");
            var events = new Dictionary<string, EventInfo>(StringComparer.Ordinal);
            foreach (var e in all)
            {
                var duration = Int(e.Element("Duration") ?? throw Error(e, $"event \"{Id(e)}\" has no Duration"), 1);
                var refs = new List<string>();
                foreach (var r in e.Elements("Resources").Elements("Resource"))
                {
                    if ((string?)r.Attribute("Reference") is { } rid)
                    {
                        if (!_resources.ContainsKey(rid))
                        {
                            throw Error(r, $"refers to unknown resource \"{rid}\"");
                        }

                        refs.Add(rid);
                    }
                    else if ((string?)r.Element("ResourceType")?.Attribute("Reference") is { } type && !_resourceTypes.ContainsKey(type))
                    {
                        throw Error(r, $"requires a resource of unknown type \"{type}\"");
                    }
                }

                var info = new EventInfo(e, Id(e), e.Element("Name")?.Value is { Length: > 0 } n ? n : Id(e), duration, refs,
                    [.. refs.Where(r => _resources[r] == Kind.Teacher).Distinct(StringComparer.Ordinal)],
                    [.. refs.Where(r => _resources[r] == Kind.Class).Distinct(StringComparer.Ordinal)]);
                if (info.Teachers.Count == 0)
                {
                    throw Error(e, $"event \"{info.Id}\" has no teacher");
                }

                if (info.Classes.Count == 0)
                {
                    throw Error(e, $"event \"{info.Id}\" has no class");
                }

                events[info.Id] = info;
            }

            return events;
        }

        private XElement FindSolution(XElement root, string instanceId)
        {
            var groups = root.Elements("SolutionGroups").Elements("SolutionGroup").ToList();
            Unique(groups, "SolutionGroup");
            var group = options.SolutionGroup is { } wanted
                ? groups.FirstOrDefault(g => Id(g) == wanted) ?? throw Error(root, $"no SolutionGroup with Id \"{wanted}\" (found: {string.Join(", ", groups.Select(Id))})")
                : groups.FirstOrDefault() ?? throw Error(root, "no SolutionGroups: the archive has no times to import");
            var solutions = group.Elements("Solution").Where(s => (string?)s.Attribute("Reference") == instanceId).ToList();
            return solutions.Count == 1
                ? solutions[0]
                : throw Error(group, $"{solutions.Count} solutions of instance \"{instanceId}\"; expected exactly one");
        }

        private static int Int(XElement e, int min) =>
            int.TryParse(e.Value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min
                ? v
                : throw Error(e, $"\"{e.Value}\" is not an integer ≥ {min}");

        private static string Id(XElement e) => (string?)e.Attribute("Id") is { Length: > 0 } id ? id : throw Error(e, "missing Id");

        private static void Unique(IEnumerable<XElement> elements, string what)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var e in elements.Where(e => !seen.Add(Id(e))))
            {
                throw Error(e, $"duplicate {what} id \"{Id(e)}\"");
            }
        }

        private static SchoolImportException Error(XObject at, string problem) => new(Path(at), Clip(problem, 300));

        // Ids and references are echoed into errors: a 50 MB attribute must not become a 50 MB error line.
        private static string Clip(string text, int max) => text.Length <= max ? text : string.Concat(text.AsSpan(0, max), "…");

        /// <summary>An XPath-like location: element names with their Id or Reference, or their position, and the line.</summary>
        private static string Path(XObject at)
        {
            var parts = new List<string>();
            for (var e = at as XElement ?? at.Parent; e is not null; e = e.Parent)
            {
                var key = ((string?)e.Attribute("Id") ?? (string?)e.Attribute("Reference")) is { } k ? Clip(k, 64) : null;
                var part = key is not null
                    ? $"{e.Name.LocalName}[@{(e.Attribute("Id") is null ? "Reference" : "Id")}='{key}']"
                    : e.Name.LocalName;
                if (key is null && e.Parent is { } parent && parent.Elements(e.Name).Skip(1).Any())
                {
                    part += string.Create(CultureInfo.InvariantCulture, $"[{parent.Elements(e.Name).TakeWhile(x => x != e).Count() + 1}]");
                }

                parts.Add(part);
            }

            parts.Reverse();
            var line = at is IXmlLineInfo info && info.HasLineInfo() ? string.Create(CultureInfo.InvariantCulture, $" (line {info.LineNumber})") : string.Empty;
            return "/" + string.Join('/', parts) + line;
        }

        private sealed record EventInfo(XElement Element, string Id, string Name, int Duration, List<string> Resources, List<string> Teachers, List<string> Classes)
        {
            public int Assigned { get; set; }
        }
    }
}
