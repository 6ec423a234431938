using System.Collections.Immutable;
using System.Text;
using IMikelGo.Engine.Canonical;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Engine.Chains;

/// <summary>
/// An event as it travels and is logged: the canonical body, its hash, and — on a chain head — the author's
/// checkpoint signature over (account, replica, seq, hash). The signature is never part of the identity.
/// </summary>
public sealed class SignedEvent
{
    internal SignedEvent(Event @event, ImmutableArray<byte> checkpoint)
    {
        Event = @event;
        Checkpoint = checkpoint;
    }

    /// <summary>The event.</summary>
    public Event Event { get; }

    /// <summary>The checkpoint signature (P1363, 64 bytes), or empty when a later checkpoint covers this event.</summary>
    public ImmutableArray<byte> Checkpoint { get; }

    /// <summary>Whether this event carries a checkpoint signature.</summary>
    public bool IsCheckpoint => !Checkpoint.IsDefaultOrEmpty;

    /// <summary>
    /// The log line (JSON Lines): <c>{"checkpoint":…,"event":{body},"hash":…}</c>, itself canonical. The body's
    /// canonical bytes are recovered exactly from the line.
    /// </summary>
    public string ToLine() => Encoding.UTF8.GetString(ToLineBytes());

    /// <summary>The log line as UTF-8 bytes.</summary>
    public byte[] ToLineBytes()
    {
        // The line is canonical JSON whose members sort as checkpoint < event < hash; the body is canonical already and
        // base64 and hex need no escaping, so the line is its parts joined, without decoding and re-encoding the body
        // (the strict ParseLine accepts only this spelling, which the tests check for every event they write).
        var body = Event.Body.AsSpan();
        var hash = Event.Hash.Hex;
        var checkpoint = IsCheckpoint ? Convert.ToBase64String(Checkpoint.AsSpan()) : null;
        var length = 1 + (checkpoint is null ? 0 : LineCheckpoint.Length + checkpoint.Length + 2) + LineEvent.Length + body.Length
            + LineHash.Length + hash.Length + LineEnd.Length;
        var line = new byte[length];
        line[0] = (byte)'{';
        var at = 1;
        if (checkpoint is not null)
        {
            at = Put(line, at, LineCheckpoint);
            at += Encoding.ASCII.GetBytes(checkpoint, line.AsSpan(at));
            line[at++] = (byte)'"';
            line[at++] = (byte)',';
        }

        at = Put(line, at, LineEvent);
        at = Put(line, at, body);
        at = Put(line, at, LineHash);
        at += Encoding.ASCII.GetBytes(hash, line.AsSpan(at));
        at = Put(line, at, LineEnd);
        return at == length ? line : throw new InvalidOperationException("log line length miscounted");
    }

    private static ReadOnlySpan<byte> LineCheckpoint => "\"checkpoint\":\""u8;

    private static ReadOnlySpan<byte> LineEvent => "\"event\":"u8;

    private static ReadOnlySpan<byte> LineHash => ",\"hash\":\""u8;

    private static ReadOnlySpan<byte> LineEnd => "\"}"u8;

    private static int Put(byte[] line, int at, ReadOnlySpan<byte> part)
    {
        part.CopyTo(line.AsSpan(at));
        return at + part.Length;
    }

    /// <summary>This event without its checkpoint signature.</summary>
    public SignedEvent WithoutCheckpoint() => IsCheckpoint ? new SignedEvent(Event, []) : this;

    /// <summary>Parses a log line strictly; the <c>hash</c> member must match the body.</summary>
    /// <exception cref="WireFormatException">Malformed, non-canonical or inconsistent; the message says why.</exception>
    public static SignedEvent ParseLine(ReadOnlySpan<byte> utf8Line)
    {
        // The line is verified to be exactly canonical, so the body's canonical bytes are the slice of the line
        // that holds the "event" member's value: no second encoding.
        var value = CanonicalJson.Decode(utf8Line, "event", out var bodyRange);
        var r = new MemberReader(value, "line");
        var bodyValue = r.Value("event");
        var @event = Event.FromBody(bodyValue, [.. utf8Line[bodyRange]]);
        var hash = r.Parsed("hash", s => new EventHash(s));
        if (hash != @event.Hash)
        {
            throw new WireFormatException($"line.hash: {hash.Short}… does not match the SHA-256 {@event.Hash.Short}… of the body of {@event.Describe()} (the event was altered)");
        }

        var checkpoint = r.Has("checkpoint")
            ? r.Parsed("checkpoint", s => StrictBase64.Decode(s, 64))
            : null;
        if (checkpoint is { Length: not 64 })
        {
            throw new WireFormatException("line.checkpoint: a P-256 signature is 64 bytes (r‖s)");
        }

        r.EnsureNoOthers();
        return new SignedEvent(@event, checkpoint is null ? [] : [.. checkpoint]);
    }

    /// <summary>Parses a log line given as text.</summary>
    public static SignedEvent ParseLine(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var max = Encoding.UTF8.GetMaxByteCount(line.Length);
        if (max <= 8192)
        {
            Span<byte> buffer = stackalloc byte[max];
            return ParseLine(buffer[..Encoding.UTF8.GetBytes(line, buffer)]);
        }

        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(max);
        try
        {
            return ParseLine(rented.AsSpan(0, Encoding.UTF8.GetBytes(line, rented)));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Parses a bare canonical event body (no checkpoint).</summary>
    public static SignedEvent ParseBody(ReadOnlySpan<byte> body) => new(Event.Decode(body), []);

    /// <summary>Whether the checkpoint signature is valid for <paramref name="publicKey"/>.</summary>
    internal bool CheckpointVerifies(System.Security.Cryptography.ECDsa publicKey) =>
        IsCheckpoint && SignatureVerifier.Verify(
            publicKey, Signing.Checkpoint.Statement(Event.Account, Event.Replica, Event.Seq, Event.Hash), Checkpoint.AsSpan());

    /// <summary>A copy carrying <paramref name="signature"/>.</summary>
    internal SignedEvent WithCheckpoint(ImmutableArray<byte> signature) => new(Event, signature);
}
