using System.Collections.Immutable;
using IMikelGo.Engine.Canonical;
using IMikelGo.Engine.Events;

namespace IMikelGo.Engine.Chains;

/// <summary>
/// A hybrid logical timestamp: the author's wall time in microseconds since the Unix epoch (for display only,
/// never used to decide order) and a counter that keeps it strictly increasing along a chain.
/// </summary>
/// <param name="WallMicros">Microseconds since 1970-01-01T00:00:00Z (µs is the one precision on the wire).</param>
/// <param name="Counter">Disambiguates events within the same microsecond.</param>
public readonly record struct HybridTime(long WallMicros, int Counter)
{
    /// <summary>The wall time, truncated to microseconds.</summary>
    public DateTimeOffset Wall => DateTimeOffset.UnixEpoch.AddTicks(WallMicros * 10);

    /// <summary>The next time after <paramref name="previous"/> at wall clock <paramref name="now"/>.</summary>
    public static HybridTime Next(HybridTime? previous, DateTimeOffset now)
    {
        var micros = (now.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
        return previous is { } p && p.WallMicros >= micros ? new HybridTime(p.WallMicros, p.Counter + 1) : new HybridTime(micros, 0);
    }

    /// <summary>Whether this time is after <paramref name="other"/>.</summary>
    public bool IsAfter(HybridTime other) => WallMicros > other.WallMicros || (WallMicros == other.WallMicros && Counter > other.Counter);
}

/// <summary>
/// An event in its envelope: author replica, position in the author's hash chain, vector clock, hybrid time and
/// payload. Its identity is the SHA-256 of its canonical unsigned body (<see cref="Hash"/>), never a signature.
/// </summary>
public sealed class Event
{
    /// <summary>Wire format version of the envelope.</summary>
    public const int EnvelopeVersion = 1;

    internal Event(
        AccountId account, ReplicaId replica, long seq, EventHash prev, VectorClock clock, HybridTime time,
        LessonEvent payload, string typeName, int typeVersion, ImmutableArray<byte> body)
    {
        Account = account;
        Replica = replica;
        Seq = seq;
        Prev = prev;
        Clock = clock;
        Time = time;
        Payload = payload;
        TypeName = typeName;
        TypeVersion = typeVersion;
        Body = body;
        Hash = EventHash.Of(body.AsSpan());
    }

    /// <summary>The account whose log this event belongs to.</summary>
    public AccountId Account { get; }

    /// <summary>The author.</summary>
    public ReplicaId Replica { get; }

    /// <summary>Position in the author's chain, from 1.</summary>
    public long Seq { get; }

    /// <summary>Hash of the author's previous event (<see cref="EventHash.Zero"/> at seq 1).</summary>
    public EventHash Prev { get; }

    /// <summary>What the author had seen when it wrote this event.</summary>
    public VectorClock Clock { get; }

    /// <summary>The author's hybrid time (display only).</summary>
    public HybridTime Time { get; }

    /// <summary>The fact.</summary>
    public LessonEvent Payload { get; }

    /// <summary>Wire name of the payload type.</summary>
    public string TypeName { get; }

    /// <summary>Version of the payload type.</summary>
    public int TypeVersion { get; }

    /// <summary>The canonical unsigned body: exactly the bytes that are hashed.</summary>
    public ImmutableArray<byte> Body { get; }

    /// <summary>SHA-256 of <see cref="Body"/>: the event's identity.</summary>
    public EventHash Hash { get; }

    /// <summary>A short human-readable reference such as <c>r1a2b…#4 lesson.cancelled</c>.</summary>
    public string Describe() => $"{Replica}#{Seq} {TypeName} ({Hash.Short})";

    /// <summary>Builds and encodes a new event.</summary>
    internal static Event Create(AccountId account, ReplicaId replica, long seq, EventHash prev, VectorClock clock, HybridTime time, LessonEvent payload)
    {
        var (name, version) = EventCodec.WireName(payload);
        var body = new ObjectBuilder()
            .Add("v", EnvelopeVersion)
            .Add("account", account.Value)
            .Add("replica", replica.Value)
            .Add("seq", seq)
            .Add("prev", prev.Hex)
            .Add("clock", clock.ToCanonical())
            .Add("time", new ObjectBuilder().Add("wall", time.WallMicros).Add("counter", time.Counter).Build())
            .Add("type", name)
            .Add("typeVersion", version)
            .Add("payload", payload.ToPayload())
            .Build();
        var bytes = CanonicalJson.Encode(body);
        var decoded = FromBody(body, [.. bytes]);
        return decoded;
    }

    /// <summary>Decodes an event from its canonical body bytes.</summary>
    /// <exception cref="WireFormatException">Malformed, non-canonical, or structurally invalid.</exception>
    internal static Event Decode(ReadOnlySpan<byte> body) => FromBody(CanonicalJson.Decode(body), [.. body]);

    internal static Event FromBody(CanonicalValue value, ImmutableArray<byte> bytes)
    {
        var r = new MemberReader(value, "$");
        var version = r.Integer("v", 1, int.MaxValue);
        if (version != EnvelopeVersion)
        {
            throw new WireFormatException($"$.v: envelope version {version} is not supported (this engine reads version {EnvelopeVersion})");
        }

        var account = r.Parsed("account", s => new AccountId(s));
        var replica = r.Parsed("replica", s => new ReplicaId(s));
        var seq = r.Integer("seq", 1, CanonicalInteger.MaxMagnitude);
        var prev = r.Parsed("prev", s => new EventHash(s));
        if ((seq == 1) != (prev == EventHash.Zero))
        {
            throw new WireFormatException(seq == 1 ? "$.prev: the first event of a chain has the zero prev hash" : "$.prev: only the first event of a chain has the zero prev hash");
        }

        var clockReader = r.Object("clock");
        var clock = VectorClock.FromCanonical(clockReader, ((CanonicalObject)r.Value("clock")).Members);
        if (clock[replica] != seq)
        {
            throw new WireFormatException($"$.clock: the author's own entry must equal seq {seq}, found {clock[replica]}");
        }

        var timeReader = r.Object("time");
        var time = new HybridTime(timeReader.Integer("wall", 0, CanonicalInteger.MaxMagnitude), (int)timeReader.Integer("counter", 0, int.MaxValue));
        timeReader.EnsureNoOthers();
        var typeName = r.String("type", 64);
        var typeVersion = (int)r.Integer("typeVersion", 1, 1000);
        var payload = EventCodec.Decode(typeName, typeVersion, r.Value("payload"));
        r.EnsureNoOthers();
        return new Event(account, replica, seq, prev, clock, time, payload, typeName, typeVersion, bytes);
    }
}
