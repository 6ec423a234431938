using System.Collections.Concurrent;
using System.Security.Cryptography;
using IMikelGo.Engine.Relay;

namespace IMikelGo.Relay;

/// <summary>
/// Verifies request signatures with imported caller keys kept between requests. Importing a SubjectPublicKeyInfo
/// validates the point on the curve (a scalar multiplication: several times the cost of the verification itself),
/// so it is done once per key, not once per request. This is a memo of the key bytes, not a cache of the caller:
/// every request still reads the caller's current key from the store (and the revocation before it), and the
/// imported key is used only when its SubjectPublicKeyInfo equals the stored one byte for byte, so a replaced or
/// deleted key takes effect at the next request. Same checks as <see cref="RequestSignature.Verify"/>: a P-256
/// key read to its last byte, a 64-byte IEEE P1363 signature over SHA-256 of the string to sign.
/// </summary>
internal sealed class CallerKeys
{
    private const int MaxCallers = 10_000;
    private const int MaxIdlePerKey = 8;
    private readonly ConcurrentDictionary<string, Entry> entries = new(StringComparer.Ordinal);

    public bool Verify(RelayCaller caller, string method, string pathAndQuery, long timestampMs, string nonce, ReadOnlySpan<byte> body, string signature)
    {
        Span<byte> sig = stackalloc byte[66];
        if (!Convert.TryFromBase64String(signature, sig, out var written) || written != 64)
        {
            return false;
        }

        var entry = entries.TryGetValue(caller.Id, out var cached) && cached.Matches(caller.SigningKey) ? cached : null;
        if (entry is null)
        {
            if (entries.Count >= MaxCallers)
            {
                entries.Clear();
            }

            entry = new Entry(caller.SigningKey);
            entries[caller.Id] = entry;
        }

        var key = entry.Rent();
        if (key is null)
        {
            return false; // not a well-formed P-256 SubjectPublicKeyInfo
        }

        try
        {
            return key.VerifyData(RequestSignature.StringToSign(method, pathAndQuery, timestampMs, nonce, body), sig[..64],
                HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (CryptographicException)
        {
            return false;
        }
        finally
        {
            entry.Return(key);
        }
    }

    /// <summary>One key's imported instances (each used by one request at a time).</summary>
    private sealed class Entry(byte[] spki)
    {
        private readonly byte[] spki = (byte[])spki.Clone();
        private readonly ConcurrentQueue<ECDsa> idle = new();
        private bool invalid;

        public bool Matches(byte[] stored) => spki.AsSpan().SequenceEqual(stored);

        public ECDsa? Rent()
        {
            if (idle.TryDequeue(out var key))
            {
                return key;
            }

            if (Volatile.Read(ref invalid))
            {
                return null;
            }

            var fresh = ECDsa.Create();
            try
            {
                fresh.ImportSubjectPublicKeyInfo(spki, out var read);
                if (read == spki.Length && fresh.KeySize == 256)
                {
                    return fresh;
                }
            }
            catch (CryptographicException)
            {
            }

            fresh.Dispose();
            Volatile.Write(ref invalid, true);
            return null;
        }

        public void Return(ECDsa key)
        {
            if (idle.Count < MaxIdlePerKey)
            {
                idle.Enqueue(key);
            }
            else
            {
                key.Dispose();
            }
        }
    }
}
