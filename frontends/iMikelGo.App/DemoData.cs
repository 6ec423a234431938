using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;

namespace IMikelGo.App;

/// <summary>The demo school: generated in memory, clearly labelled, never synced, gone when the app stops.</summary>
internal static class DemoData
{
    internal const string School = "DEMO – Musikschule Beispielstadt (Demo-Modus, keine echten Daten)";

    internal static Replica Create()
    {
        var account = new AccountId("demo-0000-0000");
        using var schoolKey = ReplicaKey.Create();
        var deviceKey = ReplicaKey.Create();
        var school = new Replica(account, schoolKey);
        var today = DateOnly.FromDateTime(DateTime.Today);
        var start = today.AddDays(-(((int)today.DayOfWeek + 6) % 7) - 14);
        var students = new[] { ("demo-anna", "Demo-Schülerin Anna"), ("demo-ben", "Demo-Schüler Ben"), ("demo-clara", "Demo-Schülerin Clara") };
        List<LessonEvent> events = [new AccountOpened(School, "Demo-Lehrkraft", schoolKey.PublicKey)];
        events.AddRange(students.Select(s => new StudentEnrolled(new StudentId(s.Item1), s.Item2)));
        events.Add(new SeriesPublished(new SeriesId("demo-klavier"), "Klavier (Demo)", 2, 15 * 60, 45, new RoomId("raum-101"), [new StudentId("demo-anna")], start, start.AddDays(120)));
        events.Add(new SeriesPublished(new SeriesId("demo-geige"), "Violine (Demo)", 4, 16 * 60, 30, new RoomId("raum-102"), [new StudentId("demo-ben"), new StudentId("demo-clara")], start, start.AddDays(120)));
        events.Add(new DeviceEnrolled(deviceKey.Replica, "Demo-Gerät", deviceKey.PublicKey));
        var result = school.RecordBatch(events);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException(result.Error);
        }

        var device = new Replica(account, deviceKey);
        device.Receive(school.Ledger.Export(account));
        return device;
    }
}
