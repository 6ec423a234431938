using IMikelGo.Engine;
using IMikelGo.Sealing;

namespace IMikelGo.School.Connector;

/// <summary>Settings of a <see cref="SchoolConnector"/>.</summary>
public sealed class SchoolConnectorSettings
{
    /// <summary>The relay's https base address.</summary>
    public Uri? RelayAddress { get; set; }

    /// <summary>The SHA-256 of the relay's certificate (pinned; travels in the enrollment QR code's relay).</summary>
    public string? RelayCertificateSha256 { get; set; }

    /// <summary>Adjusts the relay client (retries, timeouts) after address and pin are set.</summary>
    public Action<IMikelGo.Relay.Client.RelayClientOptions>? ConfigureRelay { get; set; }

    /// <summary>PBKDF2 iterations for school passwords (default 600 000; tests use 1 000).</summary>
    public int Pbkdf2Iterations { get; set; } = 600_000;

    /// <summary>
    /// The relay account the enrollment caller (id = school id) is registered in; null (the default) = the school id.
    /// Approved devices of every account are registered in their own account by that account's school caller, and the
    /// enrollment caller's answer only confirms them (docs/school-connector.md, "Enrollment through the relay").
    /// </summary>
    public string? EnrollmentAccount { get; set; }

    /// <summary>The clock.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>Wraps every relay client the connector creates (fault injection in tests, telemetry); null for none.</summary>
    public Func<IMikelGo.Relay.Client.IRelayClient, IMikelGo.Relay.Client.IRelayClient>? WrapRelayClient { get; set; }
}

/// <summary>What <see cref="SchoolConnector.IssueLicenseAsync"/> hands to the teacher.</summary>
/// <param name="Account">The teacher's account.</param>
/// <param name="License">The license key (XXXX-XXXX-XXXX-XXXX).</param>
/// <param name="Password">The school-internal password (shown once; only its hash is stored).</param>
/// <param name="Uri">The enrollment URI (QR payload).</param>
public sealed record IssuedLicense(AccountId Account, LicenseKey License, string Password, EnrollmentUri Uri)
{
    /// <summary>The QR code as PNG.</summary>
    public byte[] QrPng() => EnrollmentQrCode.ToPng(Uri);

    /// <summary>The QR code as SVG.</summary>
    public string QrSvg() => EnrollmentQrCode.ToSvg(Uri);

    /// <summary>The QR code for a terminal.</summary>
    public string QrTerminal() => EnrollmentQrCode.ToTerminalText(Uri);
}

/// <summary>A device as the school sees it.</summary>
/// <param name="Account">The account.</param>
/// <param name="Device">The device's replica id.</param>
/// <param name="Label">Its label.</param>
/// <param name="Revoked">Whether it was revoked.</param>
/// <param name="RevocationReason">Why, if revoked.</param>
/// <param name="HasEncryptionKey">Whether the school can seal bundles for it.</param>
/// <param name="LastContact">The newest event it authored that the school received, if any.</param>
public sealed record SchoolDevice(AccountId Account, ReplicaId Device, string Label, bool Revoked, string? RevocationReason, bool HasEncryptionKey, DateTimeOffset? LastContact);

/// <summary>The outcome of one enrollment request.</summary>
/// <param name="RequestId">The relay's request id.</param>
/// <param name="Approved">Whether it was approved.</param>
/// <param name="Account">The account (approved only).</param>
/// <param name="Device">The device's replica id (approved only).</param>
/// <param name="Error">The refusal, if refused.</param>
public sealed record EnrollmentOutcome(string RequestId, bool Approved, string? Account, ReplicaId? Device, string? Error);

/// <summary>A device's enrollment data (relay hand-off or in-process channel).</summary>
/// <param name="License">The license key text.</param>
/// <param name="Password">The school password.</param>
/// <param name="SigningKey">The device's signing key (SubjectPublicKeyInfo); its replica id is derived from it.</param>
/// <param name="EncryptionKey">The device's HPKE public key.</param>
/// <param name="Label">A label.</param>
public sealed record DirectEnrollment(string License, string Password, System.Collections.Immutable.ImmutableArray<byte> SigningKey, RecipientPublicKey EncryptionKey, string Label);

/// <summary>What a sync of the school replicas moved.</summary>
/// <param name="Accounts">Accounts synced.</param>
/// <param name="EventsSent">School events pushed.</param>
/// <param name="EventsReceived">Teacher events applied (new to the store).</param>
/// <param name="DuplicatePushes">Pushes the relay already had (idempotent by bundle id).</param>
/// <param name="Failures">Accounts (and pending revocations) whose sync failed, with the error; they are retried next time.</param>
/// <param name="NotAttempted">
/// Accounts not tried because the relay was unreachable or presented the wrong certificate earlier in the same call
/// (one outage is not waited out once per account); they are retried next time.
/// </param>
public sealed record SchoolSyncResult(int Accounts, int EventsSent, int EventsReceived, int DuplicatePushes, IReadOnlyList<string> Failures, IReadOnlyList<AccountId> NotAttempted)
{
    /// <summary>Whether every account was synced (nothing failed, nothing left untried).</summary>
    public bool Complete => Failures.Count == 0 && NotAttempted.Count == 0;
}

/// <summary>What a remote wipe (<see cref="SchoolConnector.WipeAsync"/>) did.</summary>
/// <param name="Revoked">The devices revoked in the account's log (durable).</param>
/// <param name="RelayReached">
/// Whether the relay took the account's revocations now; when false they stay pending and the next
/// <see cref="SchoolConnector.SyncAsync"/> sends them.
/// </param>
/// <param name="RelayError">Why the relay did not take them, if it did not.</param>
public sealed record SchoolWipeResult(IReadOnlyList<ReplicaId> Revoked, bool RelayReached, string? RelayError);

/// <summary>What a publish recorded (and stored).</summary>
/// <param name="Accounts">Accounts with new events.</param>
/// <param name="Events">Events stored.</param>
/// <param name="Rescheduled">Reschedules among them.</param>
/// <param name="ByType">Counts by payload type.</param>
/// <param name="EffectiveFrom">The first day a changed slot applies to.</param>
/// <param name="KeptBeforeEffective">Occurrences of moved lessons left in place because they lie before <paramref name="EffectiveFrom"/>.</param>
/// <param name="KeptDecided">Occurrences of moved lessons left as a teacher decided them (cancelled, moved, held).</param>
public sealed record SchoolPublishResult(int Accounts, int Events, int Rescheduled, IReadOnlyDictionary<string, int> ByType,
    DateOnly EffectiveFrom, int KeptBeforeEffective, int KeptDecided);

/// <summary>Absences of one student.</summary>
public sealed record StudentAbsenceLine(string Account, string Student, int Absences, int Excused);

/// <summary>Cancellations of one teacher in one month.</summary>
public sealed record TeacherMonthLine(string Account, string Month, int Cancellations, int MakeUpsOwed);

/// <summary>One reschedule.</summary>
public sealed record RescheduleLine(string Account, string Occurrence, DateOnly Date, int StartMinute, int DurationMinutes, string Room, string Author, bool BySchool);

/// <summary>The administration's report.</summary>
public sealed record SchoolReport(IReadOnlyList<StudentAbsenceLine> Absences, IReadOnlyList<TeacherMonthLine> Cancellations, IReadOnlyList<RescheduleLine> Reschedules);

/// <summary>Progress of a long operation.</summary>
/// <param name="Phase">What is running.</param>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in all.</param>
public sealed record SchoolProgress(string Phase, int Done, int Total);
