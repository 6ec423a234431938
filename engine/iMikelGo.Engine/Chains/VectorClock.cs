using System.Collections.Immutable;
using IMikelGo.Engine.Canonical;

namespace IMikelGo.Engine.Chains;

/// <summary>
/// For one event, the highest sequence number it has seen from each replica of the account (including its own).
/// Decides causal order; wall time never does.
/// </summary>
public sealed class VectorClock : IEquatable<VectorClock>
{
    /// <summary>Most replicas one account may have.</summary>
    public const int MaxReplicas = 64;

    /// <summary>The clock that has seen nothing.</summary>
    public static readonly VectorClock Empty = new(ImmutableSortedDictionary<ReplicaId, long>.Empty);

    private VectorClock(ImmutableSortedDictionary<ReplicaId, long> entries) => Entries = entries;

    /// <summary>Per replica, the highest sequence seen (absent means 0).</summary>
    public ImmutableSortedDictionary<ReplicaId, long> Entries { get; }

    /// <summary>The sum of all entries: strictly increases along causal order, so it sorts causally.</summary>
    public long Sum => Entries.Values.Sum();

    /// <summary>The highest sequence seen from <paramref name="replica"/>.</summary>
    public long this[ReplicaId replica] => Entries.GetValueOrDefault(replica);

    /// <summary>This clock with <paramref name="replica"/> at <paramref name="seq"/> (never lowered).</summary>
    public VectorClock With(ReplicaId replica, long seq) =>
        seq <= this[replica] ? this : new VectorClock(Entries.SetItem(replica, seq));

    /// <summary>The entry-wise maximum of both clocks.</summary>
    public VectorClock Merge(VectorClock other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var result = Entries;
        foreach (var (replica, seq) in other.Entries)
        {
            if (seq > result.GetValueOrDefault(replica))
            {
                result = result.SetItem(replica, seq);
            }
        }

        return new VectorClock(result);
    }

    /// <summary>Whether every entry of this clock is at least that of <paramref name="other"/>.</summary>
    public bool Covers(VectorClock other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return other.Entries.All(e => this[e.Key] >= e.Value);
    }

    /// <summary>Whether this clock has seen the event <paramref name="replica"/>#<paramref name="seq"/>.</summary>
    public bool HasSeen(ReplicaId replica, long seq) => this[replica] >= seq;

    internal CanonicalObject ToCanonical() =>
        new(Entries.Select(e => new KeyValuePair<string, CanonicalValue>(e.Key.Value, new CanonicalInteger(e.Value))));

    internal static VectorClock FromCanonical(MemberReader reader, IEnumerable<string> keys)
    {
        var builder = ImmutableSortedDictionary.CreateBuilder<ReplicaId, long>();
        foreach (var key in keys)
        {
            var replica = IdRules.Id().IsMatch(key)
                ? new ReplicaId(key)
                : throw new WireFormatException($"{reader.Path}: \"{key}\" is not a valid replica id");
            builder[replica] = reader.Integer(key, 1, CanonicalInteger.MaxMagnitude);
        }

        return builder.Count > MaxReplicas
            ? throw new WireFormatException($"{reader.Path}: more than {MaxReplicas} replicas")
            : new VectorClock(builder.ToImmutable());
    }

    /// <inheritdoc />
    public bool Equals(VectorClock? other) => other is not null && Covers(other) && other.Covers(this);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as VectorClock);

    /// <inheritdoc />
    public override int GetHashCode() => (int)Sum;

    /// <inheritdoc />
    public override string ToString() => "{" + string.Join(",", Entries.Select(e => $"{e.Key}:{e.Value}")) + "}";
}
