using System.Text.Json;
using FluentAssertions;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Engine.Tests.WireFormat;

public sealed class WycheproofTests
{
    private const string VectorFile = "vectors/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json";

    /// <summary>
    /// Every vector through <see cref="SignatureVerifier.Verify"/> with the group's DER SubjectPublicKeyInfo.
    /// "valid" must verify, "invalid" must not; "acceptable" (none in this file today) is reported, not asserted:
    /// those are legacy encodings the project neither needs nor promises to accept.
    /// </summary>
    [SharedFileFact(VectorFile)]
    public void Ecdsa_p256_sha256_p1363_vectors_through_the_project_verifier()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Repo.Shared(VectorFile)!));
        var failures = new List<string>();
        int valid = 0, invalid = 0, acceptable = 0;
        foreach (var group in doc.RootElement.GetProperty("testGroups").EnumerateArray())
        {
            var key = Convert.FromHexString(group.GetProperty("publicKeyDer").GetString()!);
            foreach (var test in group.GetProperty("tests").EnumerateArray())
            {
                var id = test.GetProperty("tcId").GetInt32();
                var msg = Convert.FromHexString(test.GetProperty("msg").GetString()!);
                var sig = Convert.FromHexString(test.GetProperty("sig").GetString()!);
                var result = test.GetProperty("result").GetString();
                var verified = SignatureVerifier.Verify(key, msg, sig);
                switch (result)
                {
                    case "valid":
                        valid++;
                        if (!verified)
                        {
                            failures.Add($"tcId {id} valid but refused ({test.GetProperty("comment").GetString()})");
                        }

                        break;
                    case "invalid":
                        invalid++;
                        if (verified)
                        {
                            failures.Add($"tcId {id} invalid but accepted ({test.GetProperty("comment").GetString()})");
                        }

                        break;
                    default:
                        acceptable++;
                        break;
                }
            }
        }

        failures.Should().BeEmpty();
        (valid + invalid + acceptable).Should().Be(doc.RootElement.GetProperty("numberOfTests").GetInt32());
        valid.Should().BeGreaterThan(100);
        invalid.Should().BeGreaterThan(50);
    }
}
