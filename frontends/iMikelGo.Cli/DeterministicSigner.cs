using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using IMikelGo.Engine;
using IMikelGo.Engine.Canonical;

namespace IMikelGo.Cli;

/// <summary>
/// Deterministic ECDSA P-256 / SHA-256 signatures (RFC 6979 nonces) for reproducible demo logs. The engine signs
/// with random nonces, which is right for production; a demo log must be byte-identical for the same seed, so the
/// CLI re-signs each checkpoint with the same key and a deterministic nonce. Both verify identically.
/// </summary>
internal static class DeterministicSigner
{
    private static readonly BigInteger N = BigInteger.Parse(
        "0FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>The checkpoint statement the engine signs (docs/wire-format.md): canonical JSON.</summary>
    public static byte[] CheckpointStatement(AccountId account, ReplicaId replica, long seq, EventHash head) =>
        CanonicalJson.Encode(new ObjectBuilder()
            .Add("type", "imikelgo.checkpoint/1").Add("account", account.Value).Add("replica", replica.Value)
            .Add("seq", seq).Add("head", head.Hex).Build());

    /// <summary>Whether <paramref name="d"/> (32 bytes, big-endian) is a valid P-256 private scalar (1 ≤ d &lt; n).</summary>
    public static bool IsValidScalar(ReadOnlySpan<byte> d)
    {
        var value = ToInt(d);
        return value > 0 && value < N;
    }

    /// <summary>Signs <paramref name="message"/> with private scalar <paramref name="d"/>; returns r‖s (64 bytes).</summary>
    public static byte[] Sign(ReadOnlySpan<byte> d, ReadOnlySpan<byte> message)
    {
        var x = ToInt(d);
        var h1 = SHA256.HashData(message);
        var z = ToInt(h1);
        var h1Reduced = To32(z % N);
        var v = new byte[32];
        Array.Fill(v, (byte)1);
        var k = new byte[32];
        var xBytes = d.ToArray();
        k = HMACSHA256.HashData(k, (byte[])[.. v, 0, .. xBytes, .. h1Reduced]);
        v = HMACSHA256.HashData(k, v);
        k = HMACSHA256.HashData(k, (byte[])[.. v, 1, .. xBytes, .. h1Reduced]);
        v = HMACSHA256.HashData(k, v);
        try
        {
            while (true)
            {
                v = HMACSHA256.HashData(k, v);
                var nonce = ToInt(v);
                if (nonce > 0 && nonce < N)
                {
                    var r = ToInt(PublicX(v)) % N;
                    if (r != 0)
                    {
                        var s = BigInteger.ModPow(nonce, N - 2, N) * ((z + (r * x)) % N) % N;
                        if (s != 0)
                        {
                            return [.. To32(r), .. To32(s)];
                        }
                    }
                }

                k = HMACSHA256.HashData(k, (byte[])[.. v, 0]);
                v = HMACSHA256.HashData(k, v);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(xBytes);
        }
    }

    /// <summary>The x coordinate of k·G, computed by OpenSSL/CNG when importing k as a private key.</summary>
    private static byte[] PublicX(byte[] k)
    {
        var parameters = new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = (byte[])k.Clone() };
        try
        {
            using var key = ECDsa.Create(parameters);
            return key.ExportParameters(false).Q.X!;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(parameters.D);
        }
    }

    private static BigInteger ToInt(ReadOnlySpan<byte> bigEndian) => new(bigEndian, isUnsigned: true, isBigEndian: true);

    private static byte[] To32(BigInteger value)
    {
        var bytes = value.ToByteArray(isUnsigned: true, isBigEndian: true);
        if (bytes.Length == 32)
        {
            return bytes;
        }

        var padded = new byte[32];
        bytes.CopyTo(padded, 32 - bytes.Length);
        return padded;
    }
}
