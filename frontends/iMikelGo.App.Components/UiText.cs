using System.Collections.Frozen;
using System.Globalization;

namespace IMikelGo.App.Components;

/// <summary>
/// UI text in German (default) and English: one dictionary per language, looked up by key. A missing key shows the
/// key itself (a test checks both dictionaries have the same keys). Scoped per circuit in the host.
/// </summary>
public sealed class UiText
{
    private static readonly FrozenDictionary<string, FrozenDictionary<string, string>> Languages = new Dictionary<string, FrozenDictionary<string, string>>(StringComparer.Ordinal)
    {
        ["de"] = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["app.title"] = "iMikelGo – Unterricht",
            ["lang.label"] = "Sprache",
            ["demo.banner"] = "Demo-Modus: Beispieldaten, keine echten Daten, keine Synchronisation. Zum Synchronisieren das Gerät mit Kennung und schulinternem Passwort anmelden.",
            ["demo.wiped"] = "Dreimal falsche PIN: Alle iMikelGo-Daten auf diesem Gerät wurden gelöscht. Die App läuft im Demo-Modus.",
            ["pin.title"] = "PIN eingeben",
            ["pin.label"] = "PIN",
            ["pin.submit"] = "Entsperren",
            ["pin.warning"] = "Achtung: Nach 3 falschen Eingaben in Folge werden alle iMikelGo-Daten auf diesem Gerät sofort gelöscht und die App auf den Demo-Modus zurückgesetzt. Synchronisieren geht danach erst wieder nach erneuter Anmeldung mit Kennung und schulinternem Passwort.",
            ["pin.remaining"] = "Verbleibende Versuche: {0} von {1}",
            ["pin.wrong"] = "Falsche PIN.",
            ["enroll.title"] = "Gerät anmelden",
            ["enroll.uri"] = "Anmelde-Code (QR-Code-Inhalt einfügen)",
            ["enroll.license"] = "Kennung (Lizenzschlüssel)",
            ["enroll.password"] = "Schulinternes Passwort",
            ["enroll.pin"] = "Neue PIN (mindestens 4 Zeichen)",
            ["enroll.pin2"] = "PIN wiederholen",
            ["enroll.submit"] = "Anmelden",
            ["enroll.mismatch"] = "Die PINs stimmen nicht überein.",
            ["enroll.pinhint"] = "Die PIN schützt die Daten auf diesem Gerät. 3 falsche Eingaben in Folge löschen alle Daten.",
            ["week.title"] = "Woche vom {0}",
            ["week.prev"] = "Vorige Woche",
            ["week.next"] = "Nächste Woche",
            ["week.empty"] = "Keine Stunden in dieser Woche.",
            ["col.when"] = "Wann",
            ["col.subject"] = "Fach",
            ["col.students"] = "Schüler",
            ["col.room"] = "Raum",
            ["col.status"] = "Status",
            ["col.actions"] = "Aktionen",
            ["status.Scheduled"] = "geplant",
            ["status.Held"] = "stattgefunden",
            ["status.Cancelled"] = "ausgefallen",
            ["status.Moved"] = "verschoben",
            ["absent.excused"] = "fehlt (entschuldigt)",
            ["absent.unexcused"] = "fehlt (unentschuldigt)",
            ["action.absence"] = "Fehlen",
            ["action.cancel"] = "Ausfall",
            ["action.move"] = "Verschieben",
            ["action.held"] = "Stattgefunden",
            ["action.close"] = "Schließen",
            ["absence.title"] = "Fehlen eintragen",
            ["absence.student"] = "Schüler/in",
            ["absence.excused"] = "Entschuldigt",
            ["absence.reason"] = "Grund (optional)",
            ["absence.submit"] = "Fehlen speichern",
            ["cancel.title"] = "Unterrichtsausfall",
            ["cancel.reason"] = "Grund",
            ["reason.TeacherIll"] = "Lehrkraft krank",
            ["reason.StudentIll"] = "Schüler/in krank",
            ["reason.SchoolClosed"] = "Schule geschlossen / Ferien",
            ["reason.Other"] = "Sonstiges",
            ["cancel.makeup"] = "Ersatzstunde geschuldet",
            ["cancel.note"] = "Notiz (optional)",
            ["cancel.submit"] = "Ausfall speichern",
            ["move.title"] = "Terminverschiebung",
            ["move.date"] = "Neues Datum",
            ["move.time"] = "Neue Uhrzeit",
            ["move.duration"] = "Dauer (Minuten)",
            ["move.room"] = "Raum",
            ["move.clash"] = "Überschneidung mit dem bekannten Stundenplan:",
            ["move.submit"] = "Verschiebung speichern",
            ["held.title"] = "Stunde hat stattgefunden",
            ["held.note"] = "Notiz (optional)",
            ["held.submit"] = "Speichern",
            ["saved"] = "Gespeichert (auf diesem Gerät, wird beim nächsten Sync gesendet).",
            ["sync.title"] = "Synchronisieren",
            ["sync.button"] = "Sync",
            ["sync.demo"] = "Im Demo-Modus gibt es keine Synchronisation.",
            ["sync.running"] = "Synchronisiere …",
            ["sync.phase.pulling"] = "Empfange …",
            ["sync.phase.received"] = "Empfangen: {0} Ereignisse",
            ["sync.phase.pushing"] = "Sende {0} Ereignisse …",
            ["sync.phase.pushed"] = "Gesendet: {0} von {1}",
            ["sync.phase.completed"] = "Fertig",
            ["sync.summary"] = "Empfangen: {0} · Gesendet: {1}",
            ["sync.in"] = "Hereingekommen",
            ["sync.out"] = "Hinausgegangen",
            ["sync.refused"] = "Abgelehnt (manipuliert oder ungültig, nichts davon übernommen)",
            ["sync.failed"] = "Sync fehlgeschlagen: {0}",
            ["conflicts.title"] = "Konflikte",
            ["conflicts.none"] = "Keine Konflikte.",
            ["conflicts.rule"] = "Regel",
            ["conflicts.keepWinner"] = "Entscheidung bestätigen",
            ["conflicts.keepLoser"] = "Andere Seite übernehmen",
            ["devices.title"] = "Geräte dieses Kontos",
            ["devices.this"] = "dieses Gerät",
            ["devices.revoked"] = "deaktiviert",
            ["devices.none"] = "Keine Geräte bekannt (nach dem ersten Sync sichtbar).",
            ["lock"] = "Sperren",
            ["account"] = "Kennung",
        }.ToFrozenDictionary(StringComparer.Ordinal),
        ["en"] = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["app.title"] = "iMikelGo – Lessons",
            ["lang.label"] = "Language",
            ["demo.banner"] = "Demo mode: sample data, no real data, no sync. Enroll this device with license key and school-internal password to sync.",
            ["demo.wiped"] = "Three wrong PINs: all iMikelGo data on this device was deleted. The app is in demo mode.",
            ["pin.title"] = "Enter PIN",
            ["pin.label"] = "PIN",
            ["pin.submit"] = "Unlock",
            ["pin.warning"] = "Warning: after 3 wrong entries in a row all iMikelGo data on this device is deleted at once and the app is reset to demo mode. Sync works again only after you re-enter your license key and school-internal password.",
            ["pin.remaining"] = "Attempts left: {0} of {1}",
            ["pin.wrong"] = "Wrong PIN.",
            ["enroll.title"] = "Enroll this device",
            ["enroll.uri"] = "Enrollment code (paste the QR code content)",
            ["enroll.license"] = "License key",
            ["enroll.password"] = "School-internal password",
            ["enroll.pin"] = "New PIN (at least 4 characters)",
            ["enroll.pin2"] = "Repeat PIN",
            ["enroll.submit"] = "Enroll",
            ["enroll.mismatch"] = "The PINs do not match.",
            ["enroll.pinhint"] = "The PIN protects the data on this device. 3 wrong entries in a row delete all data.",
            ["week.title"] = "Week of {0}",
            ["week.prev"] = "Previous week",
            ["week.next"] = "Next week",
            ["week.empty"] = "No lessons this week.",
            ["col.when"] = "When",
            ["col.subject"] = "Subject",
            ["col.students"] = "Students",
            ["col.room"] = "Room",
            ["col.status"] = "Status",
            ["col.actions"] = "Actions",
            ["status.Scheduled"] = "scheduled",
            ["status.Held"] = "held",
            ["status.Cancelled"] = "cancelled",
            ["status.Moved"] = "moved",
            ["absent.excused"] = "absent (excused)",
            ["absent.unexcused"] = "absent (unexcused)",
            ["action.absence"] = "Absence",
            ["action.cancel"] = "Cancel",
            ["action.move"] = "Reschedule",
            ["action.held"] = "Held",
            ["action.close"] = "Close",
            ["absence.title"] = "Record an absence",
            ["absence.student"] = "Student",
            ["absence.excused"] = "Excused",
            ["absence.reason"] = "Reason (optional)",
            ["absence.submit"] = "Save absence",
            ["cancel.title"] = "Cancel lesson",
            ["cancel.reason"] = "Reason",
            ["reason.TeacherIll"] = "Teacher ill",
            ["reason.StudentIll"] = "Student ill",
            ["reason.SchoolClosed"] = "School closed / holiday",
            ["reason.Other"] = "Other",
            ["cancel.makeup"] = "Make-up lesson owed",
            ["cancel.note"] = "Note (optional)",
            ["cancel.submit"] = "Save cancellation",
            ["move.title"] = "Reschedule",
            ["move.date"] = "New date",
            ["move.time"] = "New time",
            ["move.duration"] = "Duration (minutes)",
            ["move.room"] = "Room",
            ["move.clash"] = "Clashes with the known timetable:",
            ["move.submit"] = "Save reschedule",
            ["held.title"] = "Lesson took place",
            ["held.note"] = "Note (optional)",
            ["held.submit"] = "Save",
            ["saved"] = "Saved (on this device; sent at the next sync).",
            ["sync.title"] = "Sync",
            ["sync.button"] = "Sync",
            ["sync.demo"] = "There is no sync in demo mode.",
            ["sync.running"] = "Syncing …",
            ["sync.phase.pulling"] = "Receiving …",
            ["sync.phase.received"] = "Received: {0} events",
            ["sync.phase.pushing"] = "Sending {0} events …",
            ["sync.phase.pushed"] = "Sent: {0} of {1}",
            ["sync.phase.completed"] = "Done",
            ["sync.summary"] = "Received: {0} · Sent: {1}",
            ["sync.in"] = "Came in",
            ["sync.out"] = "Went out",
            ["sync.refused"] = "Refused (tampered or invalid, nothing of it applied)",
            ["sync.failed"] = "Sync failed: {0}",
            ["conflicts.title"] = "Conflicts",
            ["conflicts.none"] = "No conflicts.",
            ["conflicts.rule"] = "Rule",
            ["conflicts.keepWinner"] = "Confirm decision",
            ["conflicts.keepLoser"] = "Take the other side",
            ["devices.title"] = "Devices of this account",
            ["devices.this"] = "this device",
            ["devices.revoked"] = "deactivated",
            ["devices.none"] = "No devices known (visible after the first sync).",
            ["lock"] = "Lock",
            ["account"] = "License key",
        }.ToFrozenDictionary(StringComparer.Ordinal),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Raised when the language changes.</summary>
    public event Action? LanguageChanged;

    /// <summary>The supported languages.</summary>
    public static IReadOnlyList<string> Supported { get; } = ["de", "en"];

    /// <summary>The current language ("de" by default).</summary>
    public string Language { get; private set; } = "de";

    /// <summary>The culture for dates and numbers.</summary>
    public CultureInfo Culture => CultureInfo.GetCultureInfo(Language == "de" ? "de-DE" : "en-GB");

    /// <summary>The keys of a language (for tests).</summary>
    public static IEnumerable<string> Keys(string language) => Languages[language].Keys;

    /// <summary>Switches the language.</summary>
    public void SetLanguage(string language)
    {
        if (Languages.ContainsKey(language) && language != Language)
        {
            Language = language;
            LanguageChanged?.Invoke();
        }
    }

    /// <summary>The text for a key.</summary>
    public string this[string key] => Languages[Language].TryGetValue(key, out var text) ? text : key;

    /// <summary>The text for a key, formatted.</summary>
    public string Format(string key, params object[] args) => string.Format(Culture, this[key], args);
}
