using IMikelGo.Engine;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>A small school (two teachers, three weekly lessons); version 2 moves Anna's piano lesson (reschedules).</summary>
internal static class TestSchool
{
    public static readonly AccountId Anna = new("anna");
    public static readonly AccountId Ben = new("ben");
    public static readonly AccountId[] Accounts = [Anna, Ben];

    /// <summary>The term's first day: a version-2 publish effective from it moves every occurrence, whatever today is.</summary>
    public static readonly DateOnly TermStart = new(2026, 9, 14);

    public static string Version1 => Json("monday", "16:00");

    public static string Version2 => Json("thursday", "14:30");

    private static string Json(string pianoDay, string pianoStart) => $$"""
        {
          "school": "Musikschule Server",
          "term": { "start": "2026-09-14", "end": "2026-12-18", "holidays": [ { "name": "Herbstferien", "from": "2026-10-26", "to": "2026-10-30" } ] },
          "teachers": [ { "id": "anna", "name": "Anna Keller" }, { "id": "ben", "name": "Ben Roth" } ],
          "groups": [
            { "id": "ensemble-a", "name": "Ensemble A", "members": [ { "id": "lea", "name": "Lea M." }, { "id": "max", "name": "Max K." } ] },
            { "id": "ensemble-b", "name": "Ensemble B" }
          ],
          "rooms": [ { "id": "r101", "name": "Raum 101" }, { "id": "r102", "name": "Raum 102" } ],
          "lessons": [
            { "id": "piano-anna-1", "subject": "Klavier", "teacher": "anna", "groups": ["ensemble-a"], "room": "r101", "weekday": "{{pianoDay}}", "start": "{{pianoStart}}", "duration": 45 },
            { "id": "theory-1", "key": "theory", "subject": "Musiktheorie", "teachers": ["anna", "ben"], "groups": ["ensemble-a", "ensemble-b"], "room": "r102", "weekday": 2, "start": "17:00", "duration": 60 },
            { "id": "violin-ben-1", "subject": "Violine", "teacher": "ben", "groups": ["ensemble-b"], "room": "r101", "weekday": "wednesday", "start": "15:00", "duration": 45 }
          ]
        }
        """;
}
