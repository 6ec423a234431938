using System.Globalization;
using System.Text;
using System.Text.Json;
using IMikelGo.School.Import;

namespace IMikelGo.Samples.QuickStart;

/// <summary>
/// A generated school of the same shape as ES-SS-08 (66 teachers, 21 classes, 4 special rooms plus one home room per
/// class, 5 days × 7 periods of 55 minutes from 08:00), used only when the real XHSTT file is absent. Written in the
/// integrators' JSON import format (docs/school-import.md), so the connector imports it like any school's data.
/// Teacher of class c in slot s is (c + 21·s) mod 66, so no teacher teaches two classes at once.
/// </summary>
internal static class GeneratedSchool
{
    private static readonly string[] Subjects = ["Matemàtiques", "Català", "Castellà", "Anglès", "Ciències", "Història", "Música", "Educació física", "Tecnologia", "Plàstica", "Filosofia"];
    private static readonly string[] SpecialRooms = ["gim1", "lab1", "musica", "informatica"];

    /// <summary>The school as JSON for <c>SchoolConnector.ImportAsync("json", …)</c>.</summary>
    public static string Json()
    {
        var inv = CultureInfo.InvariantCulture;
        var term = XhsttImportOptions.DefaultTerm;
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("school", "Generated school (shape of ES-SS-08)");
            w.WriteStartObject("term");
            w.WriteString("start", term.Start.ToString("yyyy-MM-dd", inv));
            w.WriteString("end", term.End.ToString("yyyy-MM-dd", inv));
            w.WriteStartArray("holidays");
            foreach (var h in term.Holidays)
            {
                w.WriteStartObject();
                w.WriteString("name", h.Name);
                w.WriteString("from", h.From.ToString("yyyy-MM-dd", inv));
                w.WriteString("to", h.To.ToString("yyyy-MM-dd", inv));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
            Items(w, "teachers", Enumerable.Range(1, 66).Select(t => (string.Create(inv, $"t{t:00}"), string.Create(inv, $"Teacher {t:00}"))));
            Items(w, "groups", Enumerable.Range(1, 21).Select(c => (Class(c - 1), string.Create(inv, $"Class {c:00}"))));
            Items(w, "rooms", SpecialRooms.Select(r => (r, r)).Concat(Enumerable.Range(0, 21).Select(c => ("aula-" + Class(c), "Aula " + Class(c)))));
            w.WriteStartArray("lessons");
            for (var c = 0; c < 21; c++)
            {
                for (var day = 1; day <= 5; day++)
                {
                    for (var period = 0; period < 7; period++)
                    {
                        var slot = ((day - 1) * 7) + period;
                        if ((c + slot) % 6 == 5)
                        {
                            continue; // free periods, as in a real timetable
                        }

                        var t = (c + (slot * 21)) % 66;
                        var start = TimeOnly.FromTimeSpan(TimeSpan.FromMinutes((8 * 60) + (period * 55)));
                        w.WriteStartObject();
                        w.WriteString("id", string.Create(inv, $"gen{c + 1}-{day}-{period + 1}"));
                        w.WriteString("subject", Subjects[t % Subjects.Length]);
                        w.WriteString("teacher", string.Create(inv, $"t{t + 1:00}"));
                        w.WriteStartArray("groups");
                        w.WriteStringValue(Class(c));
                        w.WriteEndArray();
                        w.WriteString("room", (c + slot) % 9 == 0 ? SpecialRooms[slot % 4] : "aula-" + Class(c));
                        w.WriteNumber("weekday", day);
                        w.WriteString("start", start.ToString("HH:mm", inv));
                        w.WriteNumber("duration", 55);
                        w.WriteEndObject();
                    }
                }
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Class(int c) => string.Create(CultureInfo.InvariantCulture, $"class-{c + 1:00}");

    private static void Items(Utf8JsonWriter w, string name, IEnumerable<(string Id, string Name)> items)
    {
        w.WriteStartArray(name);
        foreach (var (id, display) in items)
        {
            w.WriteStartObject();
            w.WriteString("id", id);
            w.WriteString("name", display);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}
