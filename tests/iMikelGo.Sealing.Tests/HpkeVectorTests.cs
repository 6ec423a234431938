using FluentAssertions;
using IMikelGo.Sealing.Crypto;
using Xunit;

namespace IMikelGo.Sealing.Tests;

public sealed class HpkeVectorTests
{
    private const string File = "hpke-rfc9180-A3-p256-sha256-aes128gcm.txt";

    internal sealed record HpkeVector(string Name, Dictionary<string, string> Setup,
        List<Dictionary<string, string>> Encryptions, List<Dictionary<string, string>> Exports)
    {
        public byte[] Get(string key) => Hex.Decode(Setup.TryGetValue(key, out var v) ? v : null);

        public HpkeMode Mode => (HpkeMode)int.Parse(Setup["mode"], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Parses the RFC text: key: value lines, hex values wrapping onto lines without a colon.</summary>
    internal static List<HpkeVector> Parse(string path)
    {
        var vectors = new List<HpkeVector>();
        HpkeVector? current = null;
        string section = "";
        var inBlock = false;
        Dictionary<string, string>? entry = null;
        string? lastKey = null;

        void Flush()
        {
            if (entry is { Count: > 0 } && current is not null)
            {
                (section == "enc" ? current.Encryptions : current.Exports).Add(entry);
            }

            entry = null;
            lastKey = null;
        }

        foreach (var raw in System.IO.File.ReadLines(path))
        {
            var line = raw.TrimEnd();
            if (line.StartsWith("~~~", StringComparison.Ordinal))
            {
                if (inBlock)
                {
                    Flush();
                }

                inBlock = !inBlock;
                continue;
            }

            if (!inBlock)
            {
                if (line.StartsWith("### ", StringComparison.Ordinal) && line.EndsWith("Setup Information", StringComparison.Ordinal))
                {
                    current = new HpkeVector(line[4..], [], [], []);
                    vectors.Add(current);
                    section = "setup";
                }
                else if (line.StartsWith("#### Encryptions", StringComparison.Ordinal))
                {
                    section = "enc";
                }
                else if (line.StartsWith("#### Exported", StringComparison.Ordinal))
                {
                    section = "exp";
                }

                continue;
            }

            if (line.Length == 0)
            {
                Flush();
                continue;
            }

            var target = section == "setup" ? current!.Setup : (entry ??= []);
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                lastKey = line[..colon].Trim();
                target[lastKey] = line[(colon + 1)..].Trim();
            }
            else
            {
                target[lastKey!] += line.Trim();
            }
        }

        return vectors;
    }

    private static List<HpkeVector> Load() => Parse(Vectors.PathOf(File));

    [VectorFact(File)]
    public void Parser_finds_all_four_modes_with_wrapped_values()
    {
        var vectors = Load();
        vectors.Select(v => v.Mode).Should().Equal(HpkeMode.Base, HpkeMode.Psk, HpkeMode.Auth, HpkeMode.AuthPsk);
        foreach (var v in vectors)
        {
            v.Get("pkRm").Should().HaveCount(65);
            v.Get("enc").Should().HaveCount(65);
            v.Get("key_schedule_context").Should().HaveCount(65);
            v.Encryptions.Should().HaveCount(6);
            v.Exports.Should().HaveCount(3);
            v.Exports[0]["exporter_context"].Should().BeEmpty();
        }
    }

    [VectorFact(File)]
    public void DeriveKeyPair_matches_every_mode()
    {
        foreach (var v in Load())
        {
            foreach (var who in new[] { "E", "R", "S" })
            {
                if (!v.Setup.ContainsKey("ikm" + who))
                {
                    continue;
                }

                using var kp = EncryptionKeyPair.Derive(v.Get("ikm" + who));
                kp.PublicKey.Encoded.ToArray().Should().Equal(v.Get($"pk{who}m"), $"{v.Name} pk{who}m");
                var sk = new byte[32];
                kp.ExportPrivateScalar(sk);
                sk.Should().Equal(v.Get($"sk{who}m"), $"{v.Name} sk{who}m");
            }
        }
    }

    [VectorFact(File)]
    public void Kem_and_key_schedule_match_every_mode()
    {
        foreach (var v in Load())
        {
            var suite = HpkeSuite.P256Sha256Aes128Gcm;
            int.Parse(v.Setup["aead_id"], System.Globalization.CultureInfo.InvariantCulture).Should().Be(suite.AeadId);
            using var eph = EncryptionKeyPair.Derive(v.Get("ikmE"));
            using var recipient = EncryptionKeyPair.Derive(v.Get("ikmR"));
            using var sender = v.Setup.ContainsKey("ikmS") ? EncryptionKeyPair.Derive(v.Get("ikmS")) : null;

            var shared = DhkemP256.Encap(recipient.PublicKey, eph, sender, out var enc);
            enc.Should().Equal(v.Get("enc"), v.Name);
            shared.Should().Equal(v.Get("shared_secret"), v.Name);

            DhkemP256.TryDecap(enc, recipient, sender?.PublicKey, out var shared2, out var error).Should().BeTrue(error.ToString());
            shared2.Should().Equal(v.Get("shared_secret"));

            HpkeContext.KeyScheduleContext(suite, v.Mode, v.Get("info"), v.Get("psk_id")).Should().Equal(v.Get("key_schedule_context"), v.Name);
            Labeled.Extract(suite.SuiteId, shared, "secret"u8, v.Get("psk")).Should().Equal(v.Get("secret"), v.Name);

            using var ctx = HpkeSetup.SetupSender(suite, v.Mode, recipient.PublicKey, v.Get("info"), v.Get("psk"), v.Get("psk_id"),
                sender, eph, out _);
            ctx.Key.ToArray().Should().Equal(v.Get("key"), v.Name);
            ctx.BaseNonce.ToArray().Should().Equal(v.Get("base_nonce"), v.Name);
            ctx.ExporterSecret.ToArray().Should().Equal(v.Get("exporter_secret"), v.Name);
        }
    }

    [VectorFact(File)]
    public void Every_encryption_and_export_matches_for_sender_and_receiver()
    {
        var checkedEncryptions = 0;
        foreach (var v in Load())
        {
            var suite = HpkeSuite.P256Sha256Aes128Gcm;
            using var eph = EncryptionKeyPair.Derive(v.Get("ikmE"));
            EncryptionKeyPair.TryImport(v.Get("skRm"), out var recipient, out _).Should().BeTrue();
            using var _r = recipient!;
            using var sender = v.Setup.ContainsKey("ikmS") ? EncryptionKeyPair.Derive(v.Get("ikmS")) : null;

            using var s = HpkeSetup.SetupSender(suite, v.Mode, recipient!.PublicKey, v.Get("info"), v.Get("psk"), v.Get("psk_id"), sender, eph, out var enc);
            HpkeSetup.TrySetupReceiver(suite, v.Mode, enc, recipient, v.Get("info"), v.Get("psk"), v.Get("psk_id"), sender?.PublicKey,
                out var r, out var error).Should().BeTrue(error.ToString());
            using var _rc = r!;

            var expected = v.Encryptions.ToDictionary(e => ulong.Parse(e["sequence number"], System.Globalization.CultureInfo.InvariantCulture));
            var last = expected.Keys.Max();
            for (ulong seq = 0; seq <= last; seq++)
            {
                s.Sequence.Should().Be(seq);
                if (expected.TryGetValue(seq, out var e))
                {
                    var ct = s.Seal(Hex.Decode(e["aad"]), Hex.Decode(e["plaintext"]));
                    ct.Should().Equal(Hex.Decode(e["ciphertext"]), $"{v.Name} seq {seq}");
                    r!.TryOpen(Hex.Decode(e["aad"]), Hex.Decode(e["ciphertext"]), out var pt, out error).Should().BeTrue($"{v.Name} seq {seq}: {error}");
                    pt.Should().Equal(Hex.Decode(e["plaintext"]));
                    checkedEncryptions++;
                }
                else
                {
                    var filler = s.Seal([], [(byte)seq]);
                    r!.TryOpen([], filler, out _, out error).Should().BeTrue(error.ToString());
                }
            }

            foreach (var x in v.Exports)
            {
                var length = int.Parse(x["L"], System.Globalization.CultureInfo.InvariantCulture);
                s.Export(Hex.Decode(x["exporter_context"]), length).Should().Equal(Hex.Decode(x["exported_value"]), v.Name);
                r!.Export(Hex.Decode(x["exporter_context"]), length).Should().Equal(Hex.Decode(x["exported_value"]), v.Name);
            }
        }

        checkedEncryptions.Should().Be(24);
    }

    [VectorFact(File)]
    public void Base_mode_through_the_public_Hpke_api()
    {
        var v = Load().Single(x => x.Mode == HpkeMode.Base);
        var e0 = v.Encryptions[0];
        using var eph = EncryptionKeyPair.Derive(v.Get("ikmE"));
        RecipientPublicKey.TryParse(v.Get("pkRm"), out var pkR, out var error).Should().BeTrue(error.ToString());

        var ct = Hpke.SealBase(HpkeSuite.P256Sha256Aes128Gcm, pkR!, v.Get("info"), Hex.Decode(e0["aad"]), Hex.Decode(e0["plaintext"]), eph, out var enc);
        enc.Should().Equal(v.Get("enc"));
        ct.Should().Equal(Hex.Decode(e0["ciphertext"]));

        EncryptionKeyPair.TryImport(v.Get("skRm"), out var skR, out error).Should().BeTrue();
        using var skRDispose = skR!;
        Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes128Gcm, skR!, v.Get("enc"), v.Get("info"), Hex.Decode(e0["aad"]), Hex.Decode(e0["ciphertext"]),
            out var pt, out error).Should().BeTrue(error.ToString());
        pt.Should().Equal(Hex.Decode(e0["plaintext"]));

        // Any change to enc, info, aad or ciphertext is refused.
        var badCt = Hex.Decode(e0["ciphertext"]);
        badCt[3] ^= 1;
        Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes128Gcm, skR!, v.Get("enc"), v.Get("info"), Hex.Decode(e0["aad"]), badCt, out pt, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.AuthenticationFailed);
        pt.Should().BeNull();
        Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes128Gcm, skR!, v.Get("enc"), "other info"u8, Hex.Decode(e0["aad"]), Hex.Decode(e0["ciphertext"]), out _, out error).Should().BeFalse();
        Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes256Gcm, skR!, v.Get("enc"), v.Get("info"), Hex.Decode(e0["aad"]), Hex.Decode(e0["ciphertext"]), out _, out error).Should().BeFalse();
        var badEnc = v.Get("enc");
        badEnc[10] ^= 1;
        Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes128Gcm, skR!, badEnc, v.Get("info"), Hex.Decode(e0["aad"]), Hex.Decode(e0["ciphertext"]), out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.InvalidKey, "a flipped coordinate bit leaves the curve");
    }

    [Fact]
    public void Aes256_suite_round_trips_and_uses_32_byte_keys()
    {
        using var recipient = EncryptionKeyPair.Generate();
        var ct = Hpke.SealBase(HpkeSuite.P256Sha256Aes256Gcm, recipient.PublicKey, "info"u8, "aad"u8, "hello"u8, out var enc);
        Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes256Gcm, recipient, enc, "info"u8, "aad"u8, ct, out var pt, out var error).Should().BeTrue(error.ToString());
        pt.Should().Equal("hello"u8.ToArray());
        using var ctx = HpkeSetup.SetupSender(HpkeSuite.P256Sha256Aes256Gcm, HpkeMode.Base, recipient.PublicKey, [], [], [], null, null, out _);
        ctx.Key.Length.Should().Be(32);

        using var other = EncryptionKeyPair.Generate();
        Hpke.TryOpenBase(HpkeSuite.P256Sha256Aes256Gcm, other, enc, "info"u8, "aad"u8, ct, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.AuthenticationFailed);
    }

    [Fact]
    public void Psk_inputs_are_checked()
    {
        using var recipient = EncryptionKeyPair.Generate();
        var act = () => HpkeSetup.SetupSender(HpkeSuite.P256Sha256Aes128Gcm, HpkeMode.Psk, recipient.PublicKey, [], [], "id"u8.ToArray(), null, null, out _);
        act.Should().Throw<ArgumentException>().WithMessage("*PSK*");
        var act2 = () => HpkeSetup.SetupSender(HpkeSuite.P256Sha256Aes128Gcm, HpkeMode.Base, recipient.PublicKey, [], new byte[32], "id"u8.ToArray(), null, null, out _);
        act2.Should().Throw<ArgumentException>();
    }
}
