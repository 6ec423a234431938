using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Testing;

/// <summary>
/// Deterministic replica keys for tests: the same seed and name always give the same P-256 key, so replica ids,
/// event hashes and logs are reproducible. Never use these keys outside tests.
/// </summary>
public static class TestKeys
{
    // Order of the P-256 group (FIPS 186-4, D.1.2.3).
    private static readonly BigInteger Order = BigInteger.Parse("115792089210356248762697446949407573529996955224135760342422259061068512044369", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// The key named <paramref name="name"/> under <paramref name="seed"/>: d = SHA-256(seed ‖ 0x00 ‖ name)
    /// reduced into [1, n−1].
    /// </summary>
    public static ReplicaKey For(string name, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(name);
        var input = Encoding.UTF8.GetBytes($"imikelgo.testkey/1\0{seed.ToString(System.Globalization.CultureInfo.InvariantCulture)}\0{name}");
        var hash = SHA256.HashData(input);
        var d = (new BigInteger(hash, isUnsigned: true, isBigEndian: true) % (Order - 1)) + 1;
        var scalar = new byte[32];
        d.TryWriteBytes(scalar.AsSpan(32 - d.GetByteCount(isUnsigned: true)), out _, isUnsigned: true, isBigEndian: true);
        try
        {
            return ReplicaKey.FromPrivateScalar(scalar);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(scalar);
        }
    }
}
