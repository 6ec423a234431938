using System.Collections.Immutable;
using System.Security.Cryptography;
using IMikelGo.Engine.Canonical;

namespace IMikelGo.Engine.Signing;

/// <summary>
/// A replica's ECDSA P-256 signing key. It signs checkpoints (chain heads), never single payloads: one signature
/// authenticates every event before it through the hash chain.
/// </summary>
public sealed class ReplicaKey : IDisposable
{
    private readonly ECDsa _key;

    private ReplicaKey(ECDsa key)
    {
        _key = key;
        PublicKey = [.. key.ExportSubjectPublicKeyInfo()];
        Replica = ReplicaId.FromPublicKey(PublicKey.AsSpan());
    }

    /// <summary>The public key as SubjectPublicKeyInfo (DER).</summary>
    public ImmutableArray<byte> PublicKey { get; }

    /// <summary>The self-certifying replica id of this key.</summary>
    public ReplicaId Replica { get; }

    /// <summary>Creates a new random key.</summary>
    public static ReplicaKey Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Imports a PKCS#8 private key.</summary>
    public static ReplicaKey ImportPkcs8(ReadOnlySpan<byte> pkcs8)
    {
        var key = ECDsa.Create();
        key.ImportPkcs8PrivateKey(pkcs8, out _);
        return key.KeySize == 256 ? new ReplicaKey(key) : throw new CryptographicException("replica keys are P-256");
    }

    /// <summary>Imports a P-256 private scalar (32 bytes), e.g. from a deterministic test key factory.</summary>
    public static ReplicaKey FromPrivateScalar(ReadOnlySpan<byte> d)
    {
        var parameters = new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d.ToArray() };
        try
        {
            var key = ECDsa.Create(parameters);
            return new ReplicaKey(key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(parameters.D);
        }
    }

    /// <summary>Exports the private key as PKCS#8; the caller must zero it after use.</summary>
    public byte[] ExportPkcs8() => _key.ExportPkcs8PrivateKey();

    /// <summary>Signs a checkpoint over the chain head <paramref name="head"/>.</summary>
    internal byte[] SignCheckpoint(AccountId account, long seq, EventHash head) =>
        _key.SignData(Checkpoint.Statement(account, Replica, seq, head), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();
}

/// <summary>Verifies ECDSA P-256 / SHA-256 signatures in IEEE P1363 form; failures are results, not exceptions.</summary>
public static class SignatureVerifier
{
    /// <summary>
    /// Whether <paramref name="signature"/> (r‖s, 64 bytes) is a valid signature of <paramref name="data"/> by the
    /// key <paramref name="subjectPublicKeyInfo"/>. Malformed keys and signatures return false.
    /// </summary>
    public static bool Verify(ReadOnlySpan<byte> subjectPublicKeyInfo, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(subjectPublicKeyInfo, out var read);
            return read == subjectPublicKeyInfo.Length && key.KeySize == 256 && Verify(key, data, signature);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    internal static bool Verify(ECDsa key, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        signature.Length == 64 &&
        key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
}

/// <summary>The signed statement that authenticates a chain up to its head.</summary>
internal static class Checkpoint
{
    public const string StatementType = "imikelgo.checkpoint/1";

    public static byte[] Statement(AccountId account, ReplicaId replica, long seq, EventHash head) =>
        CanonicalJson.Encode(new ObjectBuilder()
            .Add("type", StatementType).Add("account", account.Value).Add("replica", replica.Value)
            .Add("seq", seq).Add("head", head.Hex).Build());
}
