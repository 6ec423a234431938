using System.Text;
using System.Text.RegularExpressions;
using FluentAssertions;
using IMikelGo.School.Import;
using IMikelGo.School.Model;
using Xunit;

namespace IMikelGo.School.Tests;

internal static partial class Json
{
    /// <summary>The example of docs/school-import.md (the first ```json block), imported.</summary>
    public static SchoolTimetable Example() => JsonSchoolDataSource.FromJson(DocBlock("json")).Load();

    public static string DocBlock(string language)
    {
        var doc = File.ReadAllText(Path.Combine(Repo.Root ?? throw new InvalidOperationException("repository root not found"), "docs", "school-import.md"));
        return Regex.Match(doc, "```" + language + "\\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;
    }
}

public sealed class JsonCsvImportTests
{
    [Fact]
    public void The_documented_JSON_example_imports()
    {
        var t = Json.Example();
        t.Teachers.Select(x => x.Account.Value).Should().Equal("anna", "ben");
        t.Groups.Single(g => g.Id.Value == "ensemble-a").Students.Select(s => s.Id.Value).Should().Equal("lea", "max");
        t.Lessons.Should().HaveCount(4, "theory-1 has two teachers");
        t.Lessons.First().Slot.Should().Be(new LessonSlot(1, 16 * 60, 45, new Engine.RoomId("r101")));
    }

    [Fact]
    public void The_documented_CSV_example_imports()
    {
        var t = CsvSchoolDataSource.FromCsv(Json.DocBlock("csv"), "Musikschule Beispiel", Json.Example().Term).Load();
        t.Lessons.Should().HaveCount(3);
        t.Lessons[1].Groups.Select(g => g.Value).Should().Equal("ensemble-a", "ensemble-b");
        t.Lessons[2].Slot.Weekday.Should().Be(3);
    }

    [Theory]
    [InlineData("\"teacher\": \"anna\"", "\"teacher\": \"nobody\"", "$.lesson piano-anna-1 of nobody", "unknown teacher nobody")]
    [InlineData("\"start\": \"16:00\"", "\"start\": \"4pm\"", "$.lessons[0].start", "HH:mm")]
    [InlineData("\"id\": \"ben\"", "\"id\": \"anna\"", "$.teacher anna", "duplicate id anna")]
    [InlineData("\"id\": \"ben\"", "\"id\": \"Ben!\"", "$.teachers[1].id", "not a valid account id")]
    [InlineData("\"room\": \"r101\"", "\"room\": \"r999\"", "$.lesson piano-anna-1 of anna", "unknown room r999")]
    public void JSON_errors_name_the_element(string from, string to, string element, string problem)
    {
        var json = Json.DocBlock("json");
        var i = json.IndexOf(from, StringComparison.Ordinal);
        json = json[..i] + to + json[(i + from.Length)..];
        var ex = FluentActions.Invoking(() => JsonSchoolDataSource.FromJson(json).Load()).Should().Throw<SchoolImportException>().Which;
        ex.Element.Should().Be(element);
        ex.Message.Should().Contain(problem);
    }

    [Fact]
    public void A_JSON_property_given_twice_is_refused_instead_of_one_value_being_dropped()
    {
        var twice = Json.DocBlock("json").Replace("\"teacher\": \"anna\"", "\"teacher\": \"anna\", \"teacher\": \"ben\"", StringComparison.Ordinal);
        var load = () => JsonSchoolDataSource.FromJson(twice).Load();
        load.Should().Throw<SchoolImportException>().Which.Message.Should().StartWith("$: not valid JSON").And.Contain("teacher");
    }

    [Fact]
    public async Task An_import_stored_before_duplicate_properties_were_refused_still_opens()
    {
        await using var world = new ConnectorWorld();
        await world.InitAsync("musikschule");
        var twice = Json.DocBlock("json").Replace("\"teacher\": \"anna\"", "\"teacher\": \"anna\", \"teacher\": \"anna\"", StringComparison.Ordinal);
        await world.Store!.AddImportAsync("json", null, twice, CancellationToken.None);
        (await world.ReopenAsync()).PendingTimetable.Should().NotBeNull("what the store accepted is replayed as it was accepted");
    }

    [Fact]
    public async Task A_file_that_is_not_UTF_8_is_refused_naming_the_byte_instead_of_importing_replacement_characters()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("musikschule");
        var file = Path.Combine(Path.GetTempPath(), $"latin1-{Guid.NewGuid():N}.json");
        var json = Json.DocBlock("json").Replace("Anna Keller", "Anna Kellér", StringComparison.Ordinal);
        await File.WriteAllBytesAsync(file, Encoding.Latin1.GetBytes(json));
        try
        {
            var import = () => school.ImportFileAsync(file, null, CancellationToken.None);
            (await import.Should().ThrowAsync<SchoolImportException>()).Which.Message.Should()
                .Be($"{file}: not valid utf-8 text (byte {json.IndexOf('é', StringComparison.Ordinal)}); save the file as UTF-8");
            (await world.Store!.ImportsAsync(CancellationToken.None)).Should().BeEmpty();
            var csv = () => CsvSchoolDataSource.FromFile(file, "Musikschule", Json.Example().Term).Load();
            csv.Should().Throw<SchoolImportException>().Which.Message.Should().Contain("not valid utf-8");

            // With a byte order mark, UTF-16 is read as what it is.
            await File.WriteAllBytesAsync(file, [.. Encoding.Unicode.Preamble, .. Encoding.Unicode.GetBytes(json)]);
            (await school.ImportFileAsync(file, null, CancellationToken.None)).Teachers[0].Name.Should().Be("Anna Kellér");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [SharedFileFact(Repo.SpainSchool)]
    public async Task An_XHSTT_archive_is_read_in_the_encoding_its_declaration_names()
    {
        await using var world = new ConnectorWorld();
        var school = await world.InitAsync("es-ss-08");
        var xml = (await File.ReadAllTextAsync(Repo.SpainSchoolPath)).Replace("<Name>Spanish school</Name>", "<Name>Escola Pública Sant Martí</Name>", StringComparison.Ordinal);
        var file = Path.Combine(Path.GetTempPath(), $"latin1-{Guid.NewGuid():N}.xml");
        await File.WriteAllBytesAsync(file, Encoding.Latin1.GetBytes("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n" + xml));
        try
        {
            (await school.ImportFileAsync(file, null, CancellationToken.None)).School.Should().Be("Escola Pública Sant Martí");

            // Declared UTF-8 but Latin-1 bytes: refused, not imported with replacement characters.
            await File.WriteAllBytesAsync(file, Encoding.Latin1.GetBytes("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + xml));
            var import = () => school.ImportFileAsync(file, null, CancellationToken.None);
            (await import.Should().ThrowAsync<SchoolImportException>()).Which.Message.Should().Contain("not valid utf-8 text (byte ");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void CSV_errors_name_line_and_column()
    {
        var csv = Json.DocBlock("csv").Replace("wednesday", "someday", StringComparison.Ordinal);
        var ex = FluentActions.Invoking(() => CsvSchoolDataSource.FromCsv(csv, "S", Json.Example().Term).Load()).Should().Throw<SchoolImportException>().Which;
        ex.Element.Should().Be("line 4, column weekday");
    }
}
