namespace IMikelGo.Sealing;

/// <summary>An HPKE (RFC 9180) cipher suite: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256 and an AES-GCM AEAD.</summary>
public sealed class HpkeSuite
{
    private HpkeSuite(ushort aeadId, int keyLength, string name)
    {
        AeadId = aeadId;
        KeyLength = keyLength;
        Name = name;
        SuiteId = [(byte)'H', (byte)'P', (byte)'K', (byte)'E', 0x00, 0x10, 0x00, 0x01, 0x00, (byte)aeadId];
    }

    /// <summary>DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM (the RFC 9180 A.3 suite).</summary>
    public static HpkeSuite P256Sha256Aes128Gcm { get; } = new(0x0001, 16, "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM");

    /// <summary>DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (the suite iMikelGo seals with).</summary>
    public static HpkeSuite P256Sha256Aes256Gcm { get; } = new(0x0002, 32, "DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM");

    /// <summary>The KEM identifier (0x0010).</summary>
    public ushort KemId => 0x0010;

    /// <summary>The KDF identifier (0x0001, HKDF-SHA256).</summary>
    public ushort KdfId => 0x0001;

    /// <summary>The AEAD identifier (1 = AES-128-GCM, 2 = AES-256-GCM).</summary>
    public ushort AeadId { get; }

    /// <summary>The readable suite name.</summary>
    public string Name { get; }

    internal int KeyLength { get; }

    internal byte[] SuiteId { get; }

    internal static HpkeSuite? FromIds(ushort kemId, ushort kdfId, ushort aeadId)
        => (kemId, kdfId, aeadId) switch
        {
            (0x0010, 0x0001, 0x0001) => P256Sha256Aes128Gcm,
            (0x0010, 0x0001, 0x0002) => P256Sha256Aes256Gcm,
            _ => null,
        };

    /// <inheritdoc />
    public override string ToString() => Name;
}
