using System.Diagnostics.CodeAnalysis;
using IMikelGo.Sealing.Crypto;

namespace IMikelGo.Sealing;

/// <summary>A validated P-256 HPKE recipient public key (65-byte uncompressed SEC1 point) and its <see cref="KeyId"/>.</summary>
public sealed class RecipientPublicKey : IEquatable<RecipientPublicKey>
{
    private readonly byte[] _encoded;

    private RecipientPublicKey(byte[] encoded)
    {
        _encoded = encoded;
        Id = KeyId.Of(encoded);
    }

    /// <summary>The key id (truncated SHA-256 of <see cref="Encoded"/>).</summary>
    public KeyId Id { get; }

    /// <summary>The 65-byte uncompressed point.</summary>
    public ReadOnlyMemory<byte> Encoded => _encoded;

    internal ReadOnlySpan<byte> Span => _encoded;

    /// <summary>Validates an uncompressed P-256 point (length, prefix, coordinates, on the curve).</summary>
    /// <param name="encoded">The 65-byte point.</param>
    /// <param name="key">The key when valid.</param>
    /// <param name="error">Why the point was refused.</param>
    /// <returns>True when the point is a valid P-256 public key.</returns>
    public static bool TryParse(ReadOnlySpan<byte> encoded, [NotNullWhen(true)] out RecipientPublicKey? key, out SealingError error)
    {
        key = null;
        if (!P256.TryImportPublicKey(encoded, out var ecdh, out error))
        {
            return false;
        }

        ecdh!.Dispose();
        key = new RecipientPublicKey(encoded.ToArray());
        return true;
    }

    internal static RecipientPublicKey FromTrusted(byte[] encoded) => new(encoded);

    /// <inheritdoc />
    public bool Equals(RecipientPublicKey? other) => other is not null && _encoded.AsSpan().SequenceEqual(other._encoded);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as RecipientPublicKey);

    /// <inheritdoc />
    public override int GetHashCode() => Id.GetHashCode();

    /// <inheritdoc />
    public override string ToString() => $"P-256 recipient {Id}";
}
