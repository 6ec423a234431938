using System.Collections.Immutable;

namespace IMikelGo.Engine.Chains;

/// <summary>Why an event was refused. Nothing of a refused event is applied.</summary>
public enum RefusalKind
{
    /// <summary>Not in the wire format (malformed, non-canonical, unknown type or version, bad field).</summary>
    Malformed,

    /// <summary>The hash written beside the body does not match it.</summary>
    HashMismatch,

    /// <summary>A checkpoint signature does not verify under the author's key.</summary>
    BadSignature,

    /// <summary>The vector clock or hybrid time contradicts the author's previous event.</summary>
    ClockInvalid,

    /// <summary>The author may not write this event (unknown device, revoked device, a device writing a school event…).</summary>
    Unauthorized,

    /// <summary>The author forked its chain and is quarantined.</summary>
    Quarantined,
}

/// <summary>Why an authentic-looking event is held back instead of applied.</summary>
public enum HoldKind
{
    /// <summary>Events before it in its author's chain are missing.</summary>
    Gap,

    /// <summary>No checkpoint signature covering it has arrived yet.</summary>
    AwaitingCheckpoint,

    /// <summary>Its prev hash does not match the author's event before it: the chain is broken (tampering or corruption).</summary>
    BrokenLink,

    /// <summary>Events it depends on (by vector clock) from other replicas are missing.</summary>
    AwaitingDependencies,

    /// <summary>The author's key is not known yet (its enrollment has not arrived).</summary>
    UnknownAuthor,
}

/// <summary>A refused event or line, with the reason.</summary>
/// <param name="Kind">The kind of fault.</param>
/// <param name="Subject">Which event or line (e.g. <c>line 17</c> or <c>r…#4 lesson.cancelled</c>).</param>
/// <param name="Reason">What is wrong, in words.</param>
public sealed record Refusal(RefusalKind Kind, string Subject, string Reason)
{
    /// <inheritdoc />
    public override string ToString() => $"{Subject}: {Kind}: {Reason}";
}

/// <summary>An event held back, with the reason.</summary>
public sealed record Hold(HoldKind Kind, string Subject, string Reason)
{
    /// <inheritdoc />
    public override string ToString() => $"{Subject}: {Kind}: {Reason}";
}

/// <summary>Proof that a replica wrote two different events at the same sequence number.</summary>
/// <param name="Account">The account.</param>
/// <param name="Replica">The forking author, now quarantined.</param>
/// <param name="Seq">The sequence number written twice.</param>
/// <param name="First">The event applied first.</param>
/// <param name="Second">The conflicting, also authentic, event.</param>
public sealed record Fork(AccountId Account, ReplicaId Replica, long Seq, SignedEvent First, SignedEvent Second);

/// <summary>An event whose author's wall time is implausible; shown, never used for ordering.</summary>
public sealed record TimeFlag(EventHash Event, string Reason);

/// <summary>The outcome of one ingest call.</summary>
public sealed record IngestReport(
    ImmutableArray<Event> Applied,
    int Duplicates,
    ImmutableArray<Refusal> Refused,
    ImmutableArray<Fork> Forks,
    ImmutableArray<TimeFlag> TimeFlags)
{
    /// <summary>Whether nothing was refused and no fork was found.</summary>
    public bool IsClean => Refused.IsEmpty && Forks.IsEmpty;
}
