using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace IMikelGo.Store.Sqlite.Vault;

/// <summary>The built-in, generated demo school. Clearly labelled; never synced; kept apart from real data.</summary>
internal static class DemoSchool
{
    internal const string Account = "DEMO-0000-0000";
    internal const string DeviceId = "demo-device";
    internal const string Label = "DEMO – Musikschule Beispielstadt (Demo-Modus, keine echten Daten)";

    internal static IReadOnlyList<EventRecord> GenerateEvents()
    {
        string[] students = ["Demo-Schülerin Anna", "Demo-Schüler Ben", "Demo-Schülerin Clara", "Demo-Schüler David"];
        string[] kinds = ["LessonHeld", "AbsenceRecorded", "LessonCancelled", "LessonRescheduled"];
        var events = new List<EventRecord>();
        var start = new DateOnly(2025, 9, 15);
        for (var i = 0; i < 12; i++)
        {
            var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
            {
                ["demo"] = true,
                ["school"] = Label,
                ["type"] = kinds[i % kinds.Length],
                ["student"] = students[i % students.Length],
                ["date"] = start.AddDays(i * 7 / 4).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
                ["note"] = "Beispieldaten",
            });
            events.Add(new EventRecord(Account, DeviceId, i + 1, SHA256.HashData(payload), payload));
        }

        return events;
    }

    internal static byte[] Marker => Encoding.UTF8.GetBytes(Label);
}
