using System.Diagnostics;
using FluentAssertions;
using IMikelGo.School.Import;
using IMikelGo.School.Model;
using Xunit;
using Xunit.Abstractions;

namespace IMikelGo.School.Tests;

public sealed class XhsttImportTests(ITestOutputHelper output)
{
    /// <summary>The importer's default term starts here: a diff effective from it moves every occurrence (not just those from today on).</summary>
    public static readonly DateOnly TermStart = IMikelGo.School.Import.XhsttImportOptions.DefaultTerm.Start;

    public static readonly string[] Solutions = ["FET5.16.0_2012-03-09", "LectioIntegerProgramming", "LectioIntegerProgramming_2014-08-27"];

    public static SchoolTimetable Import(string solution) =>
        new XhsttSchoolDataSource(Repo.SpainSchoolPath, new XhsttImportOptions { SolutionGroup = solution }).Load();

    [SharedFileFact(Repo.SpainSchool)]
    public void Each_solution_of_ES_SS_08_imports_66_teachers_21_classes_and_every_sub_event()
    {
        new XhsttSchoolDataSource(Repo.SpainSchoolPath).SolutionGroups().Should().Equal(Solutions);
        foreach (var solution in Solutions)
        {
            var sw = Stopwatch.StartNew();
            var t = Import(solution);
            sw.Stop();
            output.WriteLine($"{solution}: imported in {sw.ElapsedMilliseconds} ms: {t.Teachers.Length} teachers, {t.Groups.Length} groups, {t.Rooms.Length} rooms, {t.Lessons.Length} weekly lessons");
            t.School.Should().Be("Spanish school");
            t.Teachers.Should().HaveCount(66);
            t.Groups.Should().HaveCount(21);
            t.Rooms.Select(r => r.Id.Value).Should().Contain(["gim1", "gim2", "pista1", "pista2"]);
            t.Lessons.Select(l => (l.Key, l.Series)).Distinct().Should().HaveCount(439, "439 sub-events of one period each");
            t.Lessons.Should().OnlyContain(l => l.Slot.Weekday >= 1 && l.Slot.Weekday <= 5 && l.Slot.DurationMinutes == 55);
            t.Lessons.Select(l => l.Slot.StartMinute).Distinct().Order().Should().BeSubsetOf(Enumerable.Range(0, 7).Select(p => 480 + (55 * p)));
        }
    }

    [SharedFileFact(Repo.SpainSchool)]
    public void Times_map_Catalan_days_and_periods_to_weekday_and_clock_time()
    {
        var t = Import(Solutions[0]);
        // FET solution: Event1 sub-events at Divendres_4, Dimecres_6, Dijous_3 (document order) with teachers AM, MO, ID.
        var event1 = t.Lessons.Where(l => l.Key == "Event1" && l.Teacher.Value == "am").OrderBy(l => l.Series.Value).ToList();
        event1.Select(l => (l.Series.Value, l.Slot.Weekday, l.Slot.StartMinute)).Should().Equal(
            ("event1-1", 5, 480 + (3 * 55)), ("event1-2", 3, 480 + (5 * 55)), ("event1-3", 4, 480 + (2 * 55)));
        t.Lessons.Where(l => l.Key == "Event1").Select(l => l.Teacher.Value).Distinct().Should().BeEquivalentTo("am", "mo", "id");
        event1[0].Groups.Select(g => g.Value).Should().Equal("2-eso-a", "2-eso-b");
        event1[0].Slot.Room.Value.Should().Be("aula-2-eso-a", "an event without a room takes place in its first class's home room");
        // Event329 needs a GIM and a PISTA room; the solution assigns PISTA2 first, then GIM2.
        t.Lessons.Where(l => l.Key == "Event329").Select(l => l.Slot.Room.Value).Distinct().Should().Equal("pista2");
    }

    [Fact]
    public void Period_grid_is_configurable()
    {
        var t = XhsttSchoolDataSource.FromXml(MiniArchive(), new XhsttImportOptions { PeriodStarts = [new(9, 0), new(10, 30)], PeriodMinutes = 45 }).Load();
        t.Lessons.Select(l => (l.Slot.Weekday, l.Slot.StartMinute, l.Slot.DurationMinutes)).Should().Equal((2, 630, 45));
    }

    [Theory]
    [InlineData("<Time Reference=\"Dimarts_2\"/>", "<Time Reference=\"Dimarts_9\"/>", "Time[@Reference='Dimarts_9']", "unknown time")]
    [InlineData("<Time Reference=\"Dimarts_2\"/>", "", "Event[@Reference='E1']", "has no Time")]
    [InlineData("<Resource Reference=\"T1\"/>", "<Resource Reference=\"T9\"/>", "Resource[@Reference='T9']", "unknown resource \"T9\"")]
    [InlineData("<Resource Id=\"R1\">", "<Resource Id=\"T1\">", "Resource[@Id='T1']", "duplicate Resource id")]
    [InlineData("<ResourceType Id=\"Teacher\"><Name>Teacher</Name>", "<ResourceType Id=\"Lehrer\"><Name>Lehrer</Name>", "ResourceTypes", "needs a Teacher")]
    [InlineData("<Event Reference=\"E1\">", "<Event Reference=\"E7\">", "Event[@Reference='E7']", "unknown event")]
    [InlineData("SolutionGroup Id=\"S1\"", "SolutionGroup Id=\"S2\"", "HighSchoolTimetableArchive", "no SolutionGroup with Id \"S1\"")]
    [InlineData("<Day Reference=\"gr_Dimarts\"/>", "<Day Reference=\"gr_Dijous\"/>", "Day[@Reference='gr_Dijous']", "unknown day")]
    public void Inconsistent_input_names_the_element(string from, string to, string element, string problem)
    {
        var xml = MiniArchive().Replace(from, to, StringComparison.Ordinal);
        var act = () => XhsttSchoolDataSource.FromXml(xml, new XhsttImportOptions { SolutionGroup = "S1" }).Load();
        var ex = act.Should().Throw<SchoolImportException>().Which;
        ex.Element.Should().Contain(element);
        ex.Message.Should().Contain(problem);
        ex.Element.Should().Contain("(line ");
    }

    [Fact]
    public void A_huge_id_is_clipped_in_the_error_instead_of_echoed_whole()
    {
        var huge = new string('X', 1_000_000);
        var xml = MiniArchive().Replace("<Event Reference=\"E1\">", $"<Event Reference=\"{huge}\">", StringComparison.Ordinal);
        var act = () => XhsttSchoolDataSource.FromXml(xml, new XhsttImportOptions { SolutionGroup = "S1" }).Load();
        var ex = act.Should().Throw<SchoolImportException>().Which;
        ex.Element.Should().Contain($"Event[@Reference='{huge[..64]}…']").And.Contain("(line ");
        ex.Message.Should().Contain("refers to unknown event");
        ex.Message.Length.Should().BeLessThan(1000);
    }

    [Fact]
    public void Ids_are_mapped_deterministically_and_collision_safe()
    {
        IdMapper.Slug("Ñoño Müller-Lüdenscheidt, Straße 5").Should().Be("nono-muller-ludenscheidt-strasse-5");
        IdMapper.Slug("  --  ").Should().Be("x");
        IdMapper.Slug(new string('a', 100)).Should().HaveLength(56);
        var m = new IdMapper();
        m.Map("AM").Should().Be("am");
        m.Map("am").Should().Be("am-2");
        m.Map("A M").Should().Be("a-m");
        m.Map("AM").Should().Be("am");
    }

    /// <summary>A minimal XHSTT archive in ES-SS-08's shape: 2 days × 2 periods, a teacher, a class, a room, one event.</summary>
    internal static string MiniArchive() => """
        <HighSchoolTimetableArchive>
          <Instances>
            <Instance Id="MINI">
              <MetaData><Name>Mini school</Name></MetaData>
              <Times>
                <TimeGroups>
                  <Day Id="gr_Dilluns"><Name>Dilluns</Name></Day>
                  <Day Id="gr_Dimarts"><Name>Dimarts</Name></Day>
                </TimeGroups>
                <Time Id="Dilluns_1"><Name>Dilluns_1</Name><Day Reference="gr_Dilluns"/></Time>
                <Time Id="Dilluns_2"><Name>Dilluns_2</Name><Day Reference="gr_Dilluns"/></Time>
                <Time Id="Dimarts_1"><Name>Dimarts_1</Name><Day Reference="gr_Dimarts"/></Time>
                <Time Id="Dimarts_2"><Name>Dimarts_2</Name><Day Reference="gr_Dimarts"/></Time>
              </Times>
              <Resources>
                <ResourceTypes>
                  <ResourceType Id="Teacher"><Name>Teacher</Name></ResourceType>
                  <ResourceType Id="Class"><Name>Class</Name></ResourceType>
                  <ResourceType Id="Room"><Name>Room</Name></ResourceType>
                </ResourceTypes>
                <Resource Id="T1"><Name>T1</Name><ResourceType Reference="Teacher"/></Resource>
                <Resource Id="C1"><Name>1-A</Name><ResourceType Reference="Class"/></Resource>
                <Resource Id="R1"><Name>Room 1</Name><ResourceType Reference="Room"/></Resource>
              </Resources>
              <Events>
                <Event Id="E1"><Name>Piano</Name><Duration>1</Duration>
                  <Resources><Resource Reference="C1"/><Resource Reference="T1"/><Resource Reference="R1"/></Resources>
                </Event>
              </Events>
            </Instance>
          </Instances>
          <SolutionGroups>
            <SolutionGroup Id="S1">
              <Solution Reference="MINI">
                <Events>
                  <Event Reference="E1"><Duration>1</Duration><Time Reference="Dimarts_2"/></Event>
                </Events>
              </Solution>
            </SolutionGroup>
          </SolutionGroups>
        </HighSchoolTimetableArchive>
        """;
}
