using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Engine.Chains;

/// <summary>Where a replica's chain stands: enough to resume writing after a restart.</summary>
/// <param name="Seq">The last sequence number written (0 before the first event).</param>
/// <param name="Head">The hash of that event.</param>
/// <param name="Clock">Everything the replica has seen.</param>
/// <param name="Time">The hybrid time of the last event.</param>
public sealed record ChainPosition(long Seq, EventHash Head, VectorClock Clock, HybridTime? Time)
{
    /// <summary>A new, empty chain.</summary>
    public static ChainPosition Start { get; } = new(0, EventHash.Zero, VectorClock.Empty, null);
}

/// <summary>
/// Appends events to one replica's hash chain: assigns the next sequence number, links the previous hash,
/// stamps the vector clock and hybrid time, and signs a checkpoint over the head of each batch.
/// </summary>
public sealed class ReplicaWriter
{
    private readonly ReplicaKey _key;
    private readonly TimeProvider _time;

    /// <summary>Creates a writer that continues from <paramref name="position"/>.</summary>
    public ReplicaWriter(AccountId account, ReplicaKey key, TimeProvider? time = null, ChainPosition? position = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        Account = account;
        _key = key;
        _time = time ?? TimeProvider.System;
        Position = position ?? ChainPosition.Start;
    }

    /// <summary>The account.</summary>
    public AccountId Account { get; }

    /// <summary>The author.</summary>
    public ReplicaId Replica => _key.Replica;

    /// <summary>Where the chain stands.</summary>
    public ChainPosition Position { get; private set; }

    /// <summary>Records that the replica has seen everything in <paramref name="clock"/>.</summary>
    public void Observe(VectorClock clock)
    {
        ArgumentNullException.ThrowIfNull(clock);
        Position = Position with { Clock = Position.Clock.Merge(clock) };
    }

    /// <summary>Appends one event and signs a checkpoint over it.</summary>
    public SignedEvent Append(LessonEvent payload) => AppendBatch([payload])[0];

    /// <summary>Appends events; only the last carries a checkpoint signature, which covers them all.</summary>
    public IReadOnlyList<SignedEvent> AppendBatch(IReadOnlyList<LessonEvent> payloads) =>
        AppendBatch(payloads, _ => null, out _)!;

    /// <summary>
    /// Appends events after <paramref name="check"/> accepted each one; when it names a fault for any of them,
    /// nothing is appended and the fault is returned in <paramref name="error"/>.
    /// </summary>
    public IReadOnlyList<SignedEvent>? AppendBatch(IReadOnlyList<LessonEvent> payloads, Func<Event, string?> check, out string? error)
    {
        ArgumentNullException.ThrowIfNull(payloads);
        ArgumentNullException.ThrowIfNull(check);
        if (payloads.Count == 0)
        {
            error = "nothing to record";
            return null;
        }

        var position = Position;
        var events = new List<Event>(payloads.Count);
        foreach (var payload in payloads)
        {
            var seq = position.Seq + 1;
            var e = Event.Create(Account, Replica, seq, position.Head, position.Clock.With(Replica, seq),
                HybridTime.Next(position.Time, _time.GetUtcNow()), payload);
            if (check(e) is { } fault)
            {
                error = $"{e.TypeName} not recorded: {fault}";
                return null;
            }

            events.Add(e);
            position = new ChainPosition(e.Seq, e.Hash, e.Clock, e.Time);
        }

        Position = position;
        error = null;
        var head = events[^1];
        return [.. events.Select(e => new SignedEvent(e, e == head ? [.. _key.SignCheckpoint(Account, e.Seq, e.Hash)] : []))];
    }
}
