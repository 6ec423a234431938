using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Cli;

/// <summary>A demo replica key derived from (seed, name): d = SHA-256(seed ‖ name [‖ attempt]) until 1 ≤ d &lt; n.</summary>
internal sealed class DemoKey : IDisposable
{
    private readonly byte[] _scalar;

    private DemoKey(byte[] scalar)
    {
        _scalar = scalar;
        Key = ReplicaKey.FromPrivateScalar(scalar);
    }

    public ReplicaKey Key { get; }

    public static DemoKey Derive(long seed, string name)
    {
        var seedBytes = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(seedBytes, seed);
        byte[] input = [.. seedBytes, .. Encoding.UTF8.GetBytes(name)];
        for (var attempt = 0; ; attempt++)
        {
            var scalar = SHA256.HashData(attempt == 0 ? input : [.. input, (byte)attempt]);
            if (DeterministicSigner.IsValidScalar(scalar))
            {
                return new DemoKey(scalar);
            }
        }
    }

    public byte[] Sign(byte[] statement) => DeterministicSigner.Sign(_scalar, statement);

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_scalar);
        Key.Dispose();
    }
}
