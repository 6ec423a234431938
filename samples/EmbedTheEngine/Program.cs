// Sample 1 — embed the engine: a school and two devices of one teacher record lessons offline, exchange sealed
// bundles, and end with the same calendar. Run: dotnet run --project samples/EmbedTheEngine
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;

var account = new AccountId("k-anna-berger");
using var schoolKey = ReplicaKey.Create();
using var tabletKey = ReplicaKey.Create();
using var laptopKey = ReplicaKey.Create();

// 1. The school opens the account, publishes a weekly piano lesson and enrolls the teacher's two devices.
var school = new Replica(account, schoolKey);
var piano = new SeriesId("piano-thu");
var s1 = new StudentId("lena");
Check(school.RecordBatch([
    new AccountOpened("musikschule-lindenberg", "Anna Berger", schoolKey.PublicKey),
    new StudentEnrolled(s1, "Lena Vogel"),
    new SeriesPublished(piano, "Klavier", 4, 16 * 60, 45, new RoomId("raum-101"), [s1], new DateOnly(2026, 9, 1), new DateOnly(2027, 1, 31)),
    new DeviceEnrolled(tabletKey.Replica, "iPad", tabletKey.PublicKey),
    new DeviceEnrolled(laptopKey.Replica, "Laptop", laptopKey.PublicKey),
]));

// 2. Each device has its own HPKE key; bundles are sealed to the devices' keys, so a relay could carry them unread.
using var tabletInbox = EncryptionKeyPair.Generate();
using var laptopInbox = EncryptionKeyPair.Generate();
var tablet = new Replica(account, tabletKey);
var laptop = new Replica(account, laptopKey);
Deliver(school, tablet, tabletInbox);
Deliver(school, laptop, laptopInbox);

// 3. Offline, the tablet cancels Thursday's lesson while the laptop moves it: a conflict.
var thursday = new OccurrenceId(piano, new DateOnly(2026, 12, 3));
Check(tablet.Record(new LessonCancelled(thursday, CancellationReason.TeacherIll, MakeUpOwed: true, Note: null)));
Check(laptop.Record(new LessonRescheduled(thursday, new DateOnly(2026, 12, 4), 17 * 60, 45, new RoomId("raum-102"))));

// 4. Sync: everyone receives everyone else's events (verified: hash chain, checkpoint signature, clocks).
Deliver(tablet, laptop, laptopInbox);
Deliver(laptop, tablet, tabletInbox);
school.Receive(tablet.Ledger.Export(account));
school.Receive(laptop.Ledger.Export(account));

var lesson = laptop.Calendar.Lessons().Single(l => l.Occurrence == thursday);
Console.WriteLine($"Thursday's lesson on every replica: {lesson.Status}");
foreach (var conflict in laptop.Calendar.Conflicts())
{
    Console.WriteLine($"conflict on {conflict.Occurrence}: {conflict.Rule}");
}

Console.WriteLine($"digests: school {school.Calendar.Digest()[..12]}, tablet {tablet.Calendar.Digest()[..12]}, laptop {laptop.Calendar.Digest()[..12]}");
return school.Calendar.Digest() == tablet.Calendar.Digest() && tablet.Calendar.Digest() == laptop.Calendar.Digest() ? 0 : 1;

static void Check(RecordResult result)
{
    if (!result.Succeeded)
    {
        throw new InvalidOperationException(result.Error);
    }
}

// Seals the sender's own events for the recipient and opens them on the other side, as a relay would carry them.
static void Deliver(Replica from, Replica to, EncryptionKeyPair recipient)
{
    var own = from.Ledger.Export(from.Account).Where(e => e.Event.Replica == from.Id).ToList();
    var bundle = EventBundles.Seal(from.Id, own, [recipient.PublicKey]);
    if (!EventBundles.TryOpen(bundle.Bytes, to.Account, recipient, seen: null, out var events, out var error))
    {
        throw new InvalidOperationException(error);
    }

    var report = to.Receive(events);
    Console.WriteLine($"{from.Id.Value[..8]}… → {to.Id.Value[..8]}…: {bundle.Bytes.Length} sealed bytes, {report.Applied.Length} events applied");
}
