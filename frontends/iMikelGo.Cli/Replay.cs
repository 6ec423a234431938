using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;

namespace IMikelGo.Cli;

/// <summary>Prints the calendar projection, the conflicts and the state digest of a verified log.</summary>
internal static class Replay
{
    /// <summary>
    /// The log's state digest: the engine's calendar digest when the log holds one account (the usual case);
    /// for several accounts, SHA-256 over "account:digest\n" lines in ordinal account order.
    /// </summary>
    public static string Digest(Ledger ledger)
    {
        var accounts = ledger.Accounts.ToList();
        if (accounts.Count == 1)
        {
            return ledger.Calendar(accounts[0]).Digest();
        }

        var text = string.Concat(accounts.Select(a => $"{a.Value}:{ledger.Calendar(a).Digest()}\n"));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    public static void PrintText(Ledger ledger, TextWriter output)
    {
        var names = StudentNames(ledger);
        var events = ledger.Applied.ToDictionary(e => e.Hash);
        foreach (var account in ledger.Accounts)
        {
            var calendar = ledger.Calendar(account);
            var opened = ledger.Applied.Select(e => e.Payload).OfType<AccountOpened>().FirstOrDefault();
            output.WriteLine($"Account {account.Value}{(opened is null ? "" : $": {opened.Teacher}, {opened.School}")} — {calendar.EventCount} events");
            var lessons = calendar.Lessons();
            output.WriteLine($"Lessons ({lessons.Count}):");
            foreach (var l in lessons)
            {
                output.WriteLine("  " + FormatLesson(l, names));
            }

            var conflicts = calendar.Conflicts();
            output.WriteLine($"Conflicts ({conflicts.Count}):");
            foreach (var c in conflicts)
            {
                output.WriteLine($"  {c.Occurrence}  {c.Rule}");
                output.WriteLine($"      kept:     {Describe(events, c.Winner)}");
                output.WriteLine($"      overruled: {Describe(events, c.Loser)}");
            }

            if (calendar.Rejected.Count > 0)
            {
                output.WriteLine($"Rejected intents ({calendar.Rejected.Count}):");
                foreach (var r in calendar.Rejected)
                {
                    output.WriteLine($"  {Describe(events, r.Event)}: {r.Reason}");
                }
            }
        }

        output.WriteLine($"digest: {Digest(ledger)}");
    }

    private static string Describe(Dictionary<EventHash, Event> events, EventHash hash) =>
        events.TryGetValue(hash, out var e) ? $"{e.Describe()} {hash.Hex}" : hash.Hex;

    private static string FormatLesson(LessonView l, Dictionary<string, string> names)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.Append(c, $"{l.Date:yyyy-MM-dd} {l.Date.DayOfWeek.ToString()[..3]} {l.StartMinute / 60:D2}:{l.StartMinute % 60:D2} {l.DurationMinutes,3}′ ");
        text.Append(c, $"{Trim(l.Subject, 26),-26} {l.Room.Value,-16} {Status(l),-22}");
        if (l.Absent.Count > 0)
        {
            text.Append(" absent: ").AppendJoin(", ", l.Absent.Select(a => $"{names.GetValueOrDefault(a.Key, a.Key)} ({(a.Value ? "excused" : "unexcused")})"));
        }

        if (l.Note is not null)
        {
            text.Append(c, $" note: \"{l.Note}\"");
        }

        return text.ToString().TrimEnd();
    }

    private static string Status(LessonView l) => l.Status switch
    {
        LessonStatus.Cancelled => $"cancelled{(l.MakeUpOwed ? " (make-up)" : "")}",
        LessonStatus.Moved => $"moved from {l.Occurrence.Date.ToString("MM-dd", CultureInfo.InvariantCulture)}",
        _ => l.Status.ToString().ToLowerInvariant(),
    };

    private static string Trim(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private static Dictionary<string, string> StudentNames(Ledger ledger)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var enrolled in ledger.Applied.Select(e => e.Payload).OfType<StudentEnrolled>())
        {
            names[enrolled.Student.Value] = enrolled.Name;
        }

        return names;
    }

    public static void WriteJson(Ledger ledger, Stream output)
    {
        var names = StudentNames(ledger);
        using var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("digest", Digest(ledger));
        json.WriteNumber("events", ledger.AppliedCount);
        json.WriteStartArray("accounts");
        foreach (var account in ledger.Accounts)
        {
            json.WriteStringValue(account.Value);
        }

        json.WriteEndArray();
        json.WriteStartArray("lessons");
        foreach (var account in ledger.Accounts)
        {
            foreach (var l in ledger.Calendar(account).Lessons())
            {
                json.WriteStartObject();
                json.WriteString("account", account.Value);
                json.WriteString("occurrence", l.Occurrence.ToString());
                json.WriteString("date", l.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                json.WriteString("start", string.Create(CultureInfo.InvariantCulture, $"{l.StartMinute / 60:D2}:{l.StartMinute % 60:D2}"));
                json.WriteNumber("durationMinutes", l.DurationMinutes);
                json.WriteString("subject", l.Subject);
                json.WriteString("room", l.Room.Value);
                json.WriteString("status", l.Status.ToString().ToLowerInvariant());
                if (l.CancellationReason is { } reason)
                {
                    json.WriteString("cancellationReason", reason.ToString());
                    json.WriteBoolean("makeUpOwed", l.MakeUpOwed);
                }

                json.WriteStartArray("students");
                foreach (var s in l.Students)
                {
                    json.WriteStartObject();
                    json.WriteString("id", s.Value);
                    json.WriteString("name", names.GetValueOrDefault(s.Value, s.Value));
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteStartArray("absent");
                foreach (var (student, excused) in l.Absent)
                {
                    json.WriteStartObject();
                    json.WriteString("student", student);
                    json.WriteBoolean("excused", excused);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                if (l.Note is not null)
                {
                    json.WriteString("note", l.Note);
                }

                if (l.DecidedBy is { } decided)
                {
                    json.WriteString("decidedBy", decided.Hex);
                }

                json.WriteEndObject();
            }
        }

        json.WriteEndArray();
        json.WriteStartArray("conflicts");
        foreach (var account in ledger.Accounts)
        {
            foreach (var c in ledger.Calendar(account).Conflicts())
            {
                json.WriteStartObject();
                json.WriteString("account", account.Value);
                json.WriteString("occurrence", c.Occurrence.ToString());
                json.WriteString("rule", c.Rule);
                json.WriteString("winner", c.Winner.Hex);
                json.WriteString("loser", c.Loser.Hex);
                json.WriteString("description", c.Description);
                json.WriteEndObject();
            }
        }

        json.WriteEndArray();
        json.WriteStartArray("rejected");
        foreach (var account in ledger.Accounts)
        {
            foreach (var r in ledger.Calendar(account).Rejected)
            {
                json.WriteStartObject();
                json.WriteString("event", r.Event.Hex);
                json.WriteString("reason", r.Reason);
                json.WriteEndObject();
            }
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }
}
