using System.Collections.Immutable;
using System.Globalization;
using IMikelGo.Engine;
using IMikelGo.School.Import;
using IMikelGo.School.Model;

namespace IMikelGo.Samples.QuickStart;

/// <summary>
/// A generated school of the same shape as ES-SS-08 (66 teachers, 21 classes, 4 special rooms plus one home room per
/// class, 5 days × 7 periods of 55 minutes from 08:00), used only when the real XHSTT file is absent.
/// Teacher of class c in slot s is (c + s) mod 66, so no teacher teaches two classes at once.
/// </summary>
internal static class GeneratedSchool
{
    private static readonly string[] Subjects = ["Matemàtiques", "Català", "Castellà", "Anglès", "Ciències", "Història", "Música", "Educació física", "Tecnologia", "Plàstica", "Filosofia"];

    public static SchoolTimetable Create()
    {
        var inv = CultureInfo.InvariantCulture;
        var teachers = Enumerable.Range(0, 66)
            .Select(t => new SchoolTeacher(new AccountId(string.Create(inv, $"t{t + 1:00}")), string.Create(inv, $"Teacher {t + 1:00}"), string.Create(inv, $"T{t + 1}")))
            .ToImmutableArray();
        var groups = Enumerable.Range(0, 21)
            .Select(c => new StudentGroup(new StudentId(string.Create(inv, $"class-{c + 1:00}")), string.Create(inv, $"Class {c + 1:00}"), [], string.Create(inv, $"C{c + 1}")))
            .ToImmutableArray();
        var rooms = new[] { "gim1", "lab1", "musica", "informatica" }
            .Select(r => new SchoolRoom(new RoomId(r), r, r))
            .Concat(groups.Select(g => new SchoolRoom(new RoomId("aula-" + g.Id.Value), "Aula " + g.Name, "aula-" + g.SourceId)))
            .ToImmutableArray();
        var lessons = ImmutableArray.CreateBuilder<WeeklyLesson>();
        for (var c = 0; c < groups.Length; c++)
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
                    var room = (c + slot) % 9 == 0 ? rooms[slot % 4].Id : new RoomId("aula-" + groups[c].Id.Value);
                    var key = string.Create(inv, $"gen{c + 1}-{day}-{period + 1}");
                    lessons.Add(new WeeklyLesson(new SeriesId(key), key, Subjects[t % Subjects.Length], teachers[t].Account, [groups[c].Id],
                        new LessonSlot(day, (8 * 60) + (period * 55), 55, room)));
                }
            }
        }

        return new SchoolTimetable("Generated school (shape of ES-SS-08)", XhsttImportOptions.DefaultTerm, teachers, groups, rooms, lessons.ToImmutable());
    }
}
