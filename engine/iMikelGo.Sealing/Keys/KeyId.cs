using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;

namespace IMikelGo.Sealing;

/// <summary>
/// Identifies a public key: the first 16 bytes of SHA-256 over the key's canonical encoding
/// (for encryption keys the 65-byte uncompressed P-256 point). Printed as 32 lowercase hex digits.
/// </summary>
public readonly record struct KeyId
{
    /// <summary>Length of a key id in bytes.</summary>
    public const int Length = 16;

    private readonly ulong _high;
    private readonly ulong _low;

    private KeyId(ulong high, ulong low)
    {
        _high = high;
        _low = low;
    }

    /// <summary>Computes the key id of a public key encoding.</summary>
    /// <param name="publicKeyEncoding">The canonical public key bytes.</param>
    /// <returns>The truncated SHA-256 of the encoding.</returns>
    public static KeyId Of(ReadOnlySpan<byte> publicKeyEncoding)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(publicKeyEncoding, hash);
        return Read(hash);
    }

    /// <summary>Parses 32 hex digits.</summary>
    /// <param name="hex">The hex text.</param>
    /// <param name="keyId">The parsed key id.</param>
    /// <returns>True when the text is exactly 32 hex digits.</returns>
    public static bool TryParse(string? hex, out KeyId keyId)
    {
        keyId = default;
        if (hex is null || hex.Length != Length * 2)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[Length];
        if (Convert.FromHexString(hex, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != Length)
        {
            return false;
        }

        keyId = Read(bytes);
        return true;
    }

    internal static KeyId Read(ReadOnlySpan<byte> bytes)
        => new(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));

    internal void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
    }

    internal int CompareTo(KeyId other)
        => _high != other._high ? _high.CompareTo(other._high) : _low.CompareTo(other._low);

    /// <summary>Returns the 16 bytes of the key id.</summary>
    /// <returns>A new array.</returns>
    public byte[] ToArray()
    {
        var bytes = new byte[Length];
        WriteTo(bytes);
        return bytes;
    }

    /// <inheritdoc />
    [SuppressMessage("Globalization", "CA1308", Justification = "Hex digits are ASCII; lowercase is the documented form.")]
    public override string ToString()
        => _high.ToString("x16", CultureInfo.InvariantCulture) + _low.ToString("x16", CultureInfo.InvariantCulture);
}
