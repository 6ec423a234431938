using System.Collections.Frozen;
using IMikelGo.Engine.Events;

namespace IMikelGo.Cli;

/// <summary>A teacher of the demo school and the subjects they teach (the first is their main subject).</summary>
internal sealed record Teacher(string Name, string Slug, int[] Subjects);

/// <summary>A subject with its usual group size and lesson lengths.</summary>
internal sealed record Subject(string Name, string Slug, int MinStudents, int MaxStudents, int[] Durations);

/// <summary>Realistic German/English names for the demo log.</summary>
internal static class DemoData
{
    public static readonly Subject[] Subjects =
    [
        new("Klavier", "klavier", 1, 1, [30, 45, 60]),                        // 0
        new("Musiktheorie", "theorie", 3, 6, [45, 60]),                      // 1
        new("Korrepetition", "korrepetition", 1, 1, [30]),                   // 2
        new("Musikalische Früherziehung", "frueherziehung", 5, 8, [45]),     // 3
        new("Gitarre", "gitarre", 1, 2, [30, 45]),                           // 4
        new("E-Gitarre", "e-gitarre", 1, 1, [45]),                           // 5
        new("Bandcoaching", "band", 3, 5, [60, 90]),                         // 6
        new("Ukulele", "ukulele", 2, 4, [45]),                               // 7
        new("Violine", "violine", 1, 1, [30, 45, 60]),                       // 8
        new("Viola", "viola", 1, 1, [45]),                                   // 9
        new("Kammermusik", "kammermusik", 2, 4, [60]),                       // 10
        new("Streicherensemble", "streicher", 4, 8, [90]),                   // 11
        new("Schlagzeug", "schlagzeug", 1, 1, [30, 45]),                     // 12
        new("Percussion", "percussion", 2, 4, [45]),                         // 13
        new("Cajón-Gruppe", "cajon", 3, 6, [45]),                            // 14
        new("Querflöte", "querfloete", 1, 1, [30, 45]),                      // 15
        new("Blockflöte", "blockfloete", 1, 3, [30, 45]),                    // 16
        new("Holzbläserensemble", "holzblaeser", 4, 7, [60]),                // 17
        new("Jazz Piano", "jazz-piano", 1, 1, [45]),                         // 18
        new("Songwriting", "songwriting", 2, 4, [60]),                       // 19
    ];

    public static readonly Teacher[] Teachers =
    [
        new("Anna Becker", "anna-becker", [0, 1, 2, 3, 18]),
        new("Jonas Richter", "jonas-richter", [4, 5, 6, 7, 19]),
        new("Claire Whitfield", "claire-whitfield", [8, 9, 10, 11]),
        new("Markus Yılmaz", "markus-yilmaz", [12, 13, 14, 6]),
        new("Sophie Neumann", "sophie-neumann", [15, 16, 17, 3]),
    ];

    public static readonly string[] Schools =
    [
        "Städtische Musikschule Lindenberg", "Musikschule Rheinau e.V.", "Jugendmusikschule Am Hafen", "Kreismusikschule Nordheide",
    ];

    public static readonly string[] Rooms = ["raum-101", "raum-102", "raum-114", "raum-203", "raum-204", "saal-a", "kammermusiksaal", "aula", "studio-b"];

    public static readonly string[] FirstNames =
    [
        "Lena", "Jonas", "Emma", "Lukas", "Mia", "Finn", "Hannah", "Paul", "Sophie", "Noah", "Charlotte", "Elias", "Oliver", "Amelia",
        "Jack", "Isla", "Leon", "Marie", "Ben", "Clara", "Mats", "Ida", "Tom", "Grace", "Emil", "Greta", "Samuel", "Zoë", "Felix", "Lotta",
        "Aylin", "Mehmet", "Jakub", "Zofia", "Luca", "Giulia",
    ];

    public static readonly string[] LastNames =
    [
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Koch", "Richter",
        "Klein", "Wolf", "Schröder", "Neumann", "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "O'Brien",
        "Yılmaz", "Kowalski", "Nowak", "Rossi", "Öztürk", "Krüger",
    ];

    public static readonly string[] DeviceLabels = ["iPhone", "iPad", "Windows-Laptop", "Android-Tablet", "MacBook", "Büro-PC"];

    public static readonly string[] Closures = ["Pädagogischer Tag", "Schließtag (Heizungsausfall)", "Stadtfest – Musikschule geschlossen", "Betriebsausflug"];

    public static readonly string[] Notes =
    [
        "Tonleitern C-Dur und a-Moll, Kadenzen", "Für Elise: Takte 1–22 sicher", "Worked on sight-reading, grade 2 pieces",
        "Vorspiel am Freitag vorbereitet", "Rhythmusübungen mit Metronom (72 bpm)", "New piece: Bach, Minuet in G",
        "Haltung und Bogenführung", "Jugend musiziert: Programm durchgespielt", "Scales hands together, two octaves",
        "Improvisation über ein Blues-Schema", "Gehörbildung: Intervalle erkennen", "Ensembleprobe: Einsätze geübt",
        "Hausaufgabe: Etüde Nr. 4 langsam üben", "Great progress on dynamics", "Blattspiel und Notenlesen",
        "Vorbereitung Prüfung Stufe 2", "Chord changes G–C–D, strumming pattern", "Atemübungen und lange Töne",
    ];

    public static readonly string[] ExcusedReasons = ["krank", "Arzttermin", "Klassenfahrt", "family holiday", "Schulveranstaltung", "sick (flu)"];

    public static readonly string[] UnexcusedReasons = ["nicht erschienen, keine Abmeldung", "no-show", "forgot the lesson"];

    public static readonly FrozenDictionary<CancellationReason, string[]> CancelNotes = new Dictionary<CancellationReason, string[]>
    {
        [CancellationReason.TeacherIll] = ["Lehrkraft erkrankt", "teacher ill, make-up lesson to be arranged"],
        [CancellationReason.StudentIll] = ["Schüler krank abgemeldet", "student ill, parents called"],
        [CancellationReason.SchoolClosed] = ["Raum gesperrt (Wasserschaden)", "Gebäude wegen Sturm geschlossen"],
        [CancellationReason.Other] = ["Fortbildung der Lehrkraft", "Konzertprobe im Saal", "Tag der offenen Tür"],
    }.ToFrozenDictionary();
}
