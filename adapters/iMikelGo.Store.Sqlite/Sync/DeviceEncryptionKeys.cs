using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using IMikelGo.Sealing;

namespace IMikelGo.Store.Sqlite.Sync;

/// <summary>
/// A device's HPKE key ring as the vault keeps it: the current key (published in the device's chain, what peers seal
/// to) and previous keys that still open bundles addressed to them, each with the time it became current. Encoded
/// as <c>[8-byte big-endian unix ms][32-byte private scalar]</c> per key, newest first, and stored only through
/// <see cref="IDeviceStore.PutDeviceKeyAsync"/> (sealed under the vault's key hierarchy).
/// </summary>
public sealed class DeviceEncryptionKeys : IRecipientKeys, IDisposable
{
    private const int EntryLength = 8 + 32;
    private readonly List<(DateTimeOffset Since, EncryptionKeyPair Key)> _keys;

    private DeviceEncryptionKeys(List<(DateTimeOffset Since, EncryptionKeyPair Key)> keys) => _keys = keys;

    /// <summary>How long a previous key is kept after it stopped being current (default 30 days, docs/sealing.md).</summary>
    public static TimeSpan PreviousKeyMaxAge { get; } = TimeSpan.FromDays(30);

    /// <summary>The current key.</summary>
    public EncryptionKeyPair Current => _keys[0].Key;

    /// <summary>Every key held (current first).</summary>
    public IReadOnlyList<KeyId> KeyIds => [.. _keys.Select(k => k.Key.Id)];

    /// <summary>A ring with one fresh key.</summary>
    /// <param name="now">The current time.</param>
    /// <returns>The ring.</returns>
    public static DeviceEncryptionKeys Create(DateTimeOffset now) => new([(now, EncryptionKeyPair.Generate())]);

    /// <inheritdoc />
    public bool TryGetKey(KeyId keyId, [NotNullWhen(true)] out EncryptionKeyPair? key)
    {
        key = _keys.Select(k => k.Key).FirstOrDefault(k => k.Id == keyId);
        return key is not null;
    }

    /// <summary>Makes a fresh key current; the old one stays as a previous key.</summary>
    /// <param name="now">The current time.</param>
    public void Rotate(DateTimeOffset now) => _keys.Insert(0, (now, EncryptionKeyPair.Generate()));

    /// <summary>Drops previous keys that stopped being current more than <see cref="PreviousKeyMaxAge"/> ago.</summary>
    /// <param name="now">The current time.</param>
    /// <returns>How many were dropped.</returns>
    public int PruneExpired(DateTimeOffset now)
    {
        var dropped = 0;
        for (var i = _keys.Count - 1; i >= 1; i--)
        {
            // Key i stopped being current when key i-1 became current.
            if (now - _keys[i - 1].Since > PreviousKeyMaxAge)
            {
                _keys[i].Key.Dispose();
                _keys.RemoveAt(i);
                dropped++;
            }
        }

        return dropped;
    }

    /// <summary>The vault encoding (the caller zeroes it).</summary>
    /// <returns>The bytes.</returns>
    public byte[] Encode() => Encode(_keys);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var (_, key) in _keys)
        {
            key.Dispose();
        }

        _keys.Clear();
    }

    internal static byte[] Encode(IReadOnlyList<(DateTimeOffset Since, EncryptionKeyPair Key)> keys)
    {
        var bytes = new byte[keys.Count * EntryLength];
        for (var i = 0; i < keys.Count; i++)
        {
            var entry = bytes.AsSpan(i * EntryLength, EntryLength);
            BinaryPrimitives.WriteInt64BigEndian(entry, keys[i].Since.ToUnixTimeMilliseconds());
            keys[i].Key.ExportPrivateScalar(entry[8..]);
        }

        return bytes;
    }

    internal static DeviceEncryptionKeys Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0 || bytes.Length % EntryLength != 0)
        {
            throw new VaultException(VaultErrorKind.CorruptFile, "the stored encryption keys are malformed");
        }

        var keys = new List<(DateTimeOffset, EncryptionKeyPair)>();
        for (var offset = 0; offset < bytes.Length; offset += EntryLength)
        {
            var entry = bytes.Slice(offset, EntryLength);
            if (!EncryptionKeyPair.TryImport(entry[8..], out var key, out var error))
            {
                foreach (var (_, k) in keys)
                {
                    k.Dispose();
                }

                throw new VaultException(VaultErrorKind.CorruptFile, $"a stored encryption key is invalid: {error}");
            }

            keys.Add((DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64BigEndian(entry)), key));
        }

        return new DeviceEncryptionKeys(keys);
    }

    internal static void Zero(Span<byte> bytes) => CryptographicOperations.ZeroMemory(bytes);
}
