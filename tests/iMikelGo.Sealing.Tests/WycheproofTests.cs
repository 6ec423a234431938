using System.Text.Json;
using FluentAssertions;
using IMikelGo.Sealing.Crypto;
using Xunit;

namespace IMikelGo.Sealing.Tests;

/// <summary>
/// Project Wycheproof vectors through the project's own wrappers. "acceptable" cases (here only a compressed
/// public point) are refused by policy: HPKE and the bundle format carry uncompressed points only.
/// </summary>
public sealed class WycheproofTests
{
    private const string Ecdh = "wycheproof/ecdh_secp256r1_ecpoint_test.json";
    private const string Aes = "wycheproof/aes_gcm_test.json";
    private const string Hkdf = "wycheproof/hkdf_sha256_test.json";

    private static IEnumerable<(JsonElement Group, JsonElement Test)> Cases(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Vectors.PathOf(file)));
        foreach (var g in doc.RootElement.GetProperty("testGroups").EnumerateArray())
        {
            foreach (var t in g.GetProperty("tests").EnumerateArray())
            {
                yield return (g.Clone(), t.Clone());
            }
        }
    }

    private static string S(JsonElement e, string name) => e.GetProperty(name).GetString()!;

    private static byte[] Scalar32(byte[] d)
    {
        // Wycheproof encodes private keys as ASN.1-style integers (may carry a leading 00 or be short).
        var trimmed = d.AsSpan().TrimStart((byte)0);
        var scalar = new byte[32];
        trimmed.CopyTo(scalar.AsSpan(32 - trimmed.Length));
        return scalar;
    }

    [VectorFact(Ecdh)]
    public void Ecdh_p256_uncompressed_points()
    {
        var failures = new List<string>();
        int valid = 0, refused = 0;
        foreach (var (_, t) in Cases(Ecdh))
        {
            var id = t.GetProperty("tcId").GetInt32();
            var result = S(t, "result");
            var ok = P256.TryImportPrivateKey(Scalar32(Hex.Decode(S(t, "private"))), out var priv, out var error);
            if (!ok)
            {
                failures.Add($"tc {id}: private key refused: {error}");
                continue;
            }

            using (priv)
            {
                var derived = P256.TryDeriveSharedSecret(priv!, Hex.Decode(S(t, "public")), out var shared, out error);
                switch (result)
                {
                    case "valid":
                        if (!derived)
                        {
                            failures.Add($"tc {id} valid but refused: {error}");
                        }
                        else if (!shared.AsSpan().SequenceEqual(Hex.Decode(S(t, "shared"))))
                        {
                            failures.Add($"tc {id} shared secret differs");
                        }
                        else
                        {
                            valid++;
                        }

                        break;
                    default: // invalid, and acceptable (compressed point) refused by policy
                        if (derived)
                        {
                            failures.Add($"tc {id} {result} ({string.Join(",", t.GetProperty("flags").EnumerateArray())}) was accepted");
                        }
                        else
                        {
                            error.Code.Should().Be(SealingErrorCode.InvalidKey);
                            error.Message.Should().NotBeNullOrWhiteSpace();
                            refused++;
                        }

                        break;
                }
            }
        }

        failures.Should().BeEmpty();
        valid.Should().Be(330);
        refused.Should().Be(25);
    }

    [VectorFact(Aes)]
    public void Aes_gcm_all_key_sizes_12_byte_iv_16_byte_tag()
    {
        var failures = new List<string>();
        int encrypted = 0, rejectedTampered = 0, refusedParameters = 0;
        foreach (var (g, t) in Cases(Aes))
        {
            var id = t.GetProperty("tcId").GetInt32();
            var key = Hex.Decode(S(t, "key"));
            var iv = Hex.Decode(S(t, "iv"));
            var aad = Hex.Decode(S(t, "aad"));
            var msg = Hex.Decode(S(t, "msg"));
            var ctTag = Hex.Decode(S(t, "ct")).Concat(Hex.Decode(S(t, "tag"))).ToArray();
            var tagBytes = g.GetProperty("tagSize").GetInt32() / 8;
            var valid = S(t, "result") == "valid";

            if (iv.Length != AesGcmAead.NonceSize || tagBytes != AesGcmAead.TagSize)
            {
                // Our wrapper supports only 12-byte nonces and full tags: everything else is refused, valid or not.
                if (AesGcmAead.TrySeal(key, iv, msg, aad, out _, out var e1) || AesGcmAead.TryOpen(key, iv, ctTag, aad, out _, out var e2))
                {
                    failures.Add($"tc {id}: iv {iv.Length} bytes was accepted");
                }
                else
                {
                    e1.Code.Should().Be(SealingErrorCode.Unsupported);
                    refusedParameters++;
                }

                continue;
            }

            var opened = AesGcmAead.TryOpen(key, iv, ctTag, aad, out var pt, out var error);
            if (valid)
            {
                AesGcmAead.TrySeal(key, iv, msg, aad, out var ct, out error).Should().BeTrue();
                if (!ct.AsSpan().SequenceEqual(ctTag))
                {
                    failures.Add($"tc {id}: ciphertext differs");
                }

                if (!opened || !pt.AsSpan().SequenceEqual(msg))
                {
                    failures.Add($"tc {id}: valid ciphertext refused: {error}");
                }

                encrypted++;
            }
            else if (opened)
            {
                failures.Add($"tc {id}: invalid ciphertext accepted");
            }
            else
            {
                error.Code.Should().Be(SealingErrorCode.AuthenticationFailed);
                pt.Should().BeEmpty();
                rejectedTampered++;
            }
        }

        failures.Should().BeEmpty();
        encrypted.Should().BeGreaterThan(50);
        rejectedTampered.Should().BeGreaterThan(20);
        refusedParameters.Should().BeGreaterThan(50);
    }

    [VectorFact(Hkdf)]
    public void Hkdf_sha256()
    {
        var failures = new List<string>();
        var count = 0;
        foreach (var (_, t) in Cases(Hkdf))
        {
            var id = t.GetProperty("tcId").GetInt32();
            var ok = HkdfSha256.TryDerive(Hex.Decode(S(t, "ikm")), Hex.Decode(S(t, "salt")), Hex.Decode(S(t, "info")),
                t.GetProperty("size").GetInt32(), out var okm, out var error);
            if (S(t, "result") == "valid")
            {
                if (!ok || !okm.AsSpan().SequenceEqual(Hex.Decode(S(t, "okm"))))
                {
                    failures.Add($"tc {id}: {error}");
                }
            }
            else if (ok)
            {
                failures.Add($"tc {id}: invalid size accepted");
            }
            else
            {
                error.Code.Should().Be(SealingErrorCode.LimitExceeded);
            }

            count++;
        }

        failures.Should().BeEmpty();
        count.Should().Be(86);
    }
}
