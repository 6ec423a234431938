using System.Collections.Concurrent;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Engine;
using IMikelGo.Engine.Signing;

namespace IMikelGo.School.Publishing;

/// <summary>Where the school's signing key for each teacher account comes from (one school replica per account).</summary>
public interface ISchoolKeyStore
{
    /// <summary>The school replica's key for <paramref name="account"/>; the same account always gets the same key.</summary>
    ReplicaKey KeyFor(AccountId account);
}

/// <summary>Random keys held in memory for the life of the process (demos; production keeps keys in a vault/HSM).</summary>
public sealed class InMemorySchoolKeyStore : ISchoolKeyStore, IDisposable
{
    private readonly ConcurrentDictionary<AccountId, ReplicaKey> _keys = new();

    /// <inheritdoc />
    public ReplicaKey KeyFor(AccountId account) => _keys.GetOrAdd(account, _ => ReplicaKey.Create());

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var key in _keys.Values)
        {
            key.Dispose();
        }

        _keys.Clear();
    }
}

/// <summary>
/// Keys derived from one school secret: d = HMAC-SHA256(secret, "imikelgo.school-key/1" ‖ 0 ‖ account) reduced into
/// [1, n−1] of P-256. Deterministic (tests, and restoring a connector from its secret alone); the secret must be at
/// least 32 bytes and be kept like the keys themselves.
/// </summary>
public sealed class DerivedSchoolKeyStore : ISchoolKeyStore, IDisposable
{
    private static readonly BigInteger Order = BigInteger.Parse("115792089210356248762697446949407573529996955224135760342422259061068512044369", System.Globalization.CultureInfo.InvariantCulture);
    private readonly byte[] _secret;
    private readonly ConcurrentDictionary<AccountId, ReplicaKey> _keys = new();

    /// <summary>Derives keys from <paramref name="secret"/> (≥ 32 bytes; copied).</summary>
    public DerivedSchoolKeyStore(ReadOnlySpan<byte> secret)
    {
        if (secret.Length < 32)
        {
            throw new ArgumentException("the school secret must be at least 32 bytes", nameof(secret));
        }

        _secret = secret.ToArray();
    }

    /// <summary>A store for tests: the secret is SHA-256 of <paramref name="seed"/>.</summary>
    public static DerivedSchoolKeyStore ForTests(string seed = "imikelgo-test-school") =>
        new(SHA256.HashData(Encoding.UTF8.GetBytes(seed ?? string.Empty)));

    /// <inheritdoc />
    public ReplicaKey KeyFor(AccountId account) => _keys.GetOrAdd(account, Derive);

    private ReplicaKey Derive(AccountId account)
    {
        var mac = HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes("imikelgo.school-key/1\0" + account.Value));
        var d = (new BigInteger(mac, isUnsigned: true, isBigEndian: true) % (Order - 1)) + 1;
        var scalar = new byte[32];
        d.TryWriteBytes(scalar.AsSpan(32 - d.GetByteCount(isUnsigned: true)), out _, isUnsigned: true, isBigEndian: true);
        try
        {
            return ReplicaKey.FromPrivateScalar(scalar);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(scalar);
            CryptographicOperations.ZeroMemory(mac);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_secret);
        foreach (var key in _keys.Values)
        {
            key.Dispose();
        }

        _keys.Clear();
    }
}
