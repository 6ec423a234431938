using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace IMikelGo.Sealing.Crypto;

/// <summary>RFC 9180 §4 LabeledExtract / LabeledExpand over HKDF-SHA256.</summary>
internal static class Labeled
{
    private static ReadOnlySpan<byte> Version => "HPKE-v1"u8;

    public static void Extract(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> label,
        ReadOnlySpan<byte> ikm, Span<byte> prk)
    {
        var length = Version.Length + suiteId.Length + label.Length + ikm.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var span = buffer.AsSpan(0, length);
            var w = new SpanWriter(span);
            w.Write(Version);
            w.Write(suiteId);
            w.Write(label);
            w.Write(ikm);
            HkdfSha256.Extract(salt, span, prk);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer.AsSpan(0, length));
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static byte[] Extract(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> label, ReadOnlySpan<byte> ikm)
    {
        var prk = new byte[HkdfSha256.HashLength];
        Extract(suiteId, salt, label, ikm, prk);
        return prk;
    }

    public static void Expand(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label,
        ReadOnlySpan<byte> info, Span<byte> output)
    {
        if (output.Length > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(output), "Labeled output length must fit two bytes.");
        }

        var length = 2 + Version.Length + suiteId.Length + label.Length + info.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var span = buffer.AsSpan(0, length);
            BinaryPrimitives.WriteUInt16BigEndian(span, (ushort)output.Length);
            var w = new SpanWriter(span[2..]);
            w.Write(Version);
            w.Write(suiteId);
            w.Write(label);
            w.Write(info);
            HkdfSha256.Expand(prk, span, output);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer.AsSpan(0, length));
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static byte[] Expand(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label,
        ReadOnlySpan<byte> info, int length)
    {
        var output = new byte[length];
        Expand(suiteId, prk, label, info, output);
        return output;
    }
}

/// <summary>Appends spans into a fixed buffer.</summary>
internal ref struct SpanWriter(Span<byte> destination)
{
    private readonly Span<byte> _destination = destination;

    public int Position { get; private set; }

    public void Write(scoped ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_destination[Position..]);
        Position += bytes.Length;
    }
}
