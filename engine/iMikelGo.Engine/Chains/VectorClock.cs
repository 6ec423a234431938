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
    public static readonly VectorClock Empty = new([], []);

    // Parallel arrays sorted by replica id (ordinal); no zero entries. A handful of replicas per account, so a
    // linear or binary scan of a small array beats any tree.
    private readonly ReplicaId[] _replicas;
    private readonly long[] _seqs;
    private ImmutableSortedDictionary<ReplicaId, long>? _entries;

    private VectorClock(ReplicaId[] replicas, long[] seqs)
    {
        _replicas = replicas;
        _seqs = seqs;
        long sum = 0;
        foreach (var s in seqs)
        {
            sum += s;
        }

        Sum = sum;
    }

    /// <summary>Per replica, the highest sequence seen (absent means 0).</summary>
    public ImmutableSortedDictionary<ReplicaId, long> Entries =>
        _entries ??= ImmutableSortedDictionary.CreateRange(_replicas.Zip(_seqs, (r, s) => new KeyValuePair<ReplicaId, long>(r, s)));

    /// <summary>Number of replicas with a non-zero entry.</summary>
    internal int Count => _replicas.Length;

    /// <summary>The sum of all entries: strictly increases along causal order, so it sorts causally.</summary>
    public long Sum { get; }

    /// <summary>The highest sequence seen from <paramref name="replica"/>.</summary>
    public long this[ReplicaId replica]
    {
        get
        {
            var i = IndexOf(replica);
            return i >= 0 ? _seqs[i] : 0;
        }
    }

    internal ReplicaId ReplicaAt(int index) => _replicas[index];

    internal long SeqAt(int index) => _seqs[index];

    private int IndexOf(ReplicaId replica)
    {
        var key = replica.Value;
        var replicas = _replicas;
        for (var i = 0; i < replicas.Length; i++)
        {
            var c = string.CompareOrdinal(replicas[i].Value, key);
            if (c == 0)
            {
                return i;
            }

            if (c > 0)
            {
                return ~i;
            }
        }

        return ~replicas.Length;
    }

    /// <summary>This clock with <paramref name="replica"/> at <paramref name="seq"/> (never lowered).</summary>
    public VectorClock With(ReplicaId replica, long seq)
    {
        var i = IndexOf(replica);
        if (i >= 0)
        {
            if (seq <= _seqs[i])
            {
                return this;
            }

            var seqs = (long[])_seqs.Clone();
            seqs[i] = seq;
            return new VectorClock(_replicas, seqs);
        }

        if (seq <= 0)
        {
            return this;
        }

        var at = ~i;
        var newReplicas = new ReplicaId[_replicas.Length + 1];
        var newSeqs = new long[_seqs.Length + 1];
        Array.Copy(_replicas, newReplicas, at);
        Array.Copy(_seqs, newSeqs, at);
        newReplicas[at] = replica;
        newSeqs[at] = seq;
        Array.Copy(_replicas, at, newReplicas, at + 1, _replicas.Length - at);
        Array.Copy(_seqs, at, newSeqs, at + 1, _seqs.Length - at);
        return new VectorClock(newReplicas, newSeqs);
    }

    /// <summary>The entry-wise maximum of both clocks.</summary>
    public VectorClock Merge(VectorClock other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var result = this;
        for (var i = 0; i < other._replicas.Length; i++)
        {
            result = result.With(other._replicas[i], other._seqs[i]);
        }

        return result;
    }

    /// <summary>Whether every entry of this clock is at least that of <paramref name="other"/>.</summary>
    public bool Covers(VectorClock other)
    {
        ArgumentNullException.ThrowIfNull(other);
        for (var i = 0; i < other._replicas.Length; i++)
        {
            if (this[other._replicas[i]] < other._seqs[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether this clock has seen the event <paramref name="replica"/>#<paramref name="seq"/>.</summary>
    public bool HasSeen(ReplicaId replica, long seq) => this[replica] >= seq;

    internal CanonicalObject ToCanonical()
    {
        var members = new KeyValuePair<string, CanonicalValue>[_replicas.Length];
        for (var i = 0; i < members.Length; i++)
        {
            members[i] = new(_replicas[i].Value, new CanonicalInteger(_seqs[i]));
        }

        // Replica ids are ASCII (hence NFC) and the arrays are sorted ordinally without duplicates.
        return CanonicalObject.FromSorted(members);
    }

    internal static VectorClock FromCanonical(MemberReader reader, CanonicalMembers members)
    {
        var replicas = new ReplicaId[members.Count];
        var seqs = new long[members.Count];
        for (var i = 0; i < members.Count; i++)
        {
            var key = members.At(i).Key;
            replicas[i] = IdRules.IsId(key)
                ? new ReplicaId(key)
                : throw new WireFormatException($"{reader.Path}: \"{key}\" is not a valid replica id");
            seqs[i] = reader.Integer(key, 1, CanonicalInteger.MaxMagnitude);
        }

        // Members are sorted ordinally with distinct keys, which is exactly the order of ReplicaId.
        return replicas.Length > MaxReplicas
            ? throw new WireFormatException($"{reader.Path}: more than {MaxReplicas} replicas")
            : new VectorClock(replicas, seqs);
    }

    /// <inheritdoc />
    public bool Equals(VectorClock? other) => other is not null && Covers(other) && other.Covers(this);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as VectorClock);

    /// <inheritdoc />
    public override int GetHashCode() => (int)Sum;

    /// <inheritdoc />
    public override string ToString() => "{" + string.Join(",", _replicas.Select((r, i) => $"{r}:{_seqs[i]}")) + "}";
}
