using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Device;

/// <summary>
/// The demo school: a generated, clearly labelled timetable held in memory by a real engine replica, so demo mode
/// behaves like the real app (record, move with clash warnings, conflicts) but never syncs and keeps nothing.
/// </summary>
internal sealed class DemoSchool
{
    internal const string Name = "DEMO – Musikschule Beispielstadt (Demo-Modus, keine echten Daten)";

    private DemoSchool(Replica device) => Device = device;

    internal Replica Device { get; }

    internal static DemoSchool Create(TimeProvider time)
    {
        var account = new AccountId("demo");
        using var schoolKey = ReplicaKey.Create();
        var deviceKey = ReplicaKey.Create();
        var school = new Replica(account, schoolKey, options: null, time);
        var today = DateOnly.FromDateTime(time.GetLocalNow().Date);
        var termStart = today.AddDays(-28);
        var termEnd = today.AddDays(120);
        StudentId[] students = [new("demo-anna"), new("demo-ben"), new("demo-clara"), new("demo-david")];
        var result = school.RecordBatch([
            new AccountOpened("demo", "Demo-Lehrkraft", schoolKey.PublicKey),
            new StudentEnrolled(students[0], "Demo-Schülerin Anna"),
            new StudentEnrolled(students[1], "Demo-Schüler Ben"),
            new StudentEnrolled(students[2], "Demo-Schülerin Clara"),
            new StudentEnrolled(students[3], "Demo-Schüler David"),
            new SeriesPublished(new SeriesId("demo-klavier-mo"), "Klavier (Demo)", 1, 15 * 60, 45, new RoomId("raum-101"), [students[0]], termStart, termEnd),
            new SeriesPublished(new SeriesId("demo-geige-mi"), "Violine (Demo)", 3, 16 * 60, 30, new RoomId("raum-102"), [students[1]], termStart, termEnd),
            new SeriesPublished(new SeriesId("demo-ensemble-do"), "Ensemble (Demo)", 4, 17 * 60, 90, new RoomId("saal"), [students[2], students[3]], termStart, termEnd),
            new DeviceEnrolled(deviceKey.Replica, "Demo-Gerät", deviceKey.PublicKey),
        ]);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"the demo school could not be generated: {result.Error}");
        }

        var device = new Replica(account, deviceKey, options: null, time);
        device.Receive(school.Ledger.Export(account));
        return new DemoSchool(device);
    }
}
