using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using FluentAssertions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace IMikelGo.Sealing.Tests;

public sealed class IdentityTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero));
    private readonly SchoolRoot _root;

    public IdentityTests() => _root = SchoolRoot.Create("ms-linz", _time);

    public void Dispose() => _root.Dispose();

    private X509Certificate2 PinnedRoot() => X509CertificateLoader.LoadCertificate(_root.Certificate.RawData);

    private (X509Certificate2 Cert, ECDsa Signing, EncryptionKeyPair Enc) NewDevice(SchoolRoot root, string device = "dev-1")
    {
        var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var enc = EncryptionKeyPair.Generate();
        var cert = root.IssueDeviceCertificate("acct-7", device, signing.ExportSubjectPublicKeyInfo(), enc.PublicKey, _time.GetUtcNow(), TimeSpan.FromDays(365));
        return (cert, signing, enc);
    }

    [Fact]
    public void Device_certificate_binds_account_device_and_both_keys_and_chains_to_the_pinned_root()
    {
        var (cert, signing, enc) = NewDevice(_root);
        using var _s = signing;
        using var _e = enc;
        DeviceCertificates.TryVerify(cert, PinnedRoot(), _time.GetUtcNow(), out var id, out var error).Should().BeTrue(error.ToString());
        id!.AccountId.Should().Be("acct-7");
        id.DeviceId.Should().Be("dev-1");
        id.EncryptionKey.Should().Be(enc.PublicKey);
        id.SigningKeyFingerprint.Should().Be(Fingerprints.OfSigningKey(signing.ExportSubjectPublicKeyInfo()));
        using var pub = id.GetSigningKey();
        var sig = signing.SignData("x"u8, HashAlgorithmName.SHA256);
        pub.VerifyData("x"u8, sig, HashAlgorithmName.SHA256).Should().BeTrue();
        cert.Extensions[IMikelGoOids.EncryptionKeyExtension]!.Critical.Should().BeFalse();
        _root.Fingerprint.Should().MatchRegex("^[0-9a-f]{64}$");
    }

    [Fact]
    public void Certificate_from_another_school_or_outside_validity_is_refused()
    {
        using var other = SchoolRoot.Create("ms-wels", _time);
        var (cert, s, e) = NewDevice(other);
        using var _s = s;
        using var _e = e;
        DeviceCertificates.TryVerify(cert, PinnedRoot(), _time.GetUtcNow(), out _, out var error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.UntrustedSignature);

        var (good, s2, e2) = NewDevice(_root);
        using var _s2 = s2;
        using var _e2 = e2;
        DeviceCertificates.TryVerify(good, PinnedRoot(), _time.GetUtcNow().AddDays(400), out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.Expired);
        DeviceCertificates.TryVerify(good, PinnedRoot(), _time.GetUtcNow().AddDays(-1), out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.Expired);
    }

    [Fact]
    public void Root_round_trips_through_its_certificate()
    {
        using var loaded = SchoolRoot.FromCertificate(_root.Certificate);
        loaded.SchoolId.Should().Be("ms-linz");
        loaded.Fingerprint.Should().Be(_root.Fingerprint);
    }

    private static RosterEntry Entry(string device, ECDsa s, EncryptionKeyPair e)
        => new(device, Fingerprints.OfSigningKey(s.ExportSubjectPublicKeyInfo()), Fingerprints.OfEncryptionKey(e.PublicKey), DeviceStatus.Enrolled, null);

    [Fact]
    public void Roster_is_signed_verified_and_rollback_is_refused()
    {
        using var s1 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var e1 = EncryptionKeyPair.Generate();
        var v1 = new DeviceRoster("ms-linz", "acct-7", 0, _time.GetUtcNow(), []).WithEnrolled(Entry("phone", s1, e1), _time.GetUtcNow());
        var v2 = v1.WithRevoked("phone", _time.GetUtcNow());
        v1.Version.Should().Be(1);
        v2.Version.Should().Be(2);
        var signed1 = _root.SignDecision(v1.ToBytes());
        var signed2 = _root.SignDecision(v2.ToBytes());

        var verifier = new RosterVerifier(PinnedRoot(), _time);
        verifier.TryAccept(signed1, "acct-7", out var r, out var error).Should().BeTrue(error.ToString());
        r!.IsEnrolled("phone").Should().BeTrue();
        verifier.TryAccept(signed2, "acct-7", out r, out error).Should().BeTrue(error.ToString());
        r!.Find("phone")!.Status.Should().Be(DeviceStatus.Revoked);
        r.Find("phone")!.RevokedAt.Should().Be(_time.GetUtcNow());
        verifier.TryAccept(signed2, "acct-7", out _, out error).Should().BeTrue("re-delivery of the same version is fine");

        verifier.TryAccept(signed1, "acct-7", out r, out error).Should().BeFalse();
        r.Should().BeNull();
        error.Code.Should().Be(SealingErrorCode.Rollback);

        // Same version, different content (equivocation) is refused too.
        var forked = new DeviceRoster("ms-linz", "acct-7", 2, _time.GetUtcNow(), []);
        verifier.TryAccept(_root.SignDecision(forked.ToBytes()), "acct-7", out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.Rollback);

        verifier.TryAccept(signed2, "acct-8", out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.WrongAccount);

        using var other = SchoolRoot.Create("ms-linz", _time);
        verifier.TryAccept(other.SignDecision(v2.WithRevoked("phone", _time.GetUtcNow()).ToBytes()), "acct-7", out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.UntrustedSignature);
    }

    [Fact]
    public void Roster_json_is_canonical_and_strict()
    {
        using var s1 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var e1 = EncryptionKeyPair.Generate();
        var roster = new DeviceRoster("ms-linz", "acct-7", 3, _time.GetUtcNow(), [Entry("b", s1, e1), Entry("a", s1, e1)]);
        roster.Entries.Select(e => e.DeviceId).Should().Equal("a", "b");
        var bytes = roster.ToBytes();
        DeviceRoster.TryParse(bytes, out var parsed, out var error).Should().BeTrue(error.ToString());
        parsed!.ToBytes().Should().Equal(bytes);

        var text = Encoding.UTF8.GetString(bytes);
        DeviceRoster.TryParse(Encoding.UTF8.GetBytes(text.Replace("{\"kind\"", "{ \"kind\"", StringComparison.Ordinal)), out _, out error).Should().BeFalse();
        error.Message.Should().Contain("canonical");
        DeviceRoster.TryParse(Encoding.UTF8.GetBytes(text.Replace("\"enrolled\"", "\"paused\"", StringComparison.Ordinal)), out _, out error).Should().BeFalse();
        error.Message.Should().Contain("paused");
        DeviceRoster.TryParse("{}"u8, out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.Malformed);
    }

    [Fact]
    public void Tampered_attached_decision_is_refused()
    {
        var signed = _root.SignDecision("revoke dev-1"u8);
        SchoolDecisions.TryVerify(signed, PinnedRoot(), _time.GetUtcNow(), out var content, out var error).Should().BeTrue(error.ToString());
        content.Should().Equal("revoke dev-1"u8.ToArray());
        var index = signed.AsSpan().IndexOf("dev-1"u8);
        signed[index + 4] = (byte)'2';
        SchoolDecisions.TryVerify(signed, PinnedRoot(), _time.GetUtcNow(), out content, out error).Should().BeFalse();
        content.Should().BeNull();
        error.Code.Should().Be(SealingErrorCode.UntrustedSignature);
        SchoolDecisions.TryVerify("not cms"u8, PinnedRoot(), _time.GetUtcNow(), out _, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.Malformed);
    }

    [OpensslFact]
    public void Openssl_cms_verify_accepts_an_engine_signed_decision()
    {
        using var dir = new TempDir();
        using var root = SchoolRoot.Create("ms-linz"); // openssl checks validity against the real clock
        var pinned = X509CertificateLoader.LoadCertificate(root.Certificate.RawData);
        var now = DateTimeOffset.UtcNow;
        var data = Encoding.UTF8.GetBytes("{\"kind\":\"imikelgo.roster\",\"version\":\"9\"}\n");
        File.WriteAllBytes(dir.File("data"), data);
        File.WriteAllBytes(dir.File("sig.p7s"), root.SignDecision(data, detached: true));
        File.WriteAllText(dir.File("root.pem"), root.ExportCertificatePem());
        var (code, output) = Openssl.Run(dir.Path, "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.p7s", "-content", "data",
            "-CAfile", "root.pem", "-purpose", "any", "-out", "verified");
        code.Should().Be(0, output);
        output.Should().Contain("Verification successful");
        File.ReadAllBytes(dir.File("verified")).Should().Equal(data);

        // And a tampered content is rejected by openssl.
        data[3] ^= 1;
        File.WriteAllBytes(dir.File("data"), data);
        Openssl.Run(dir.Path, "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.p7s", "-content", "data",
            "-CAfile", "root.pem", "-purpose", "any", "-out", "verified").ExitCode.Should().NotBe(0);
    }

    [OpensslFact]
    public void Engine_verifies_a_detached_signature_made_by_openssl_cms_sign()
    {
        using var dir = new TempDir();
        using var root = SchoolRoot.Create("ms-linz"); // openssl checks validity against the real clock
        var pinned = X509CertificateLoader.LoadCertificate(root.Certificate.RawData);
        var now = DateTimeOffset.UtcNow;
        var data = Encoding.UTF8.GetBytes("update manifest 1.2.3\n");
        File.WriteAllBytes(dir.File("data"), data);
        File.WriteAllText(dir.File("cert.pem"), root.ExportCertificatePem());
        File.WriteAllText(dir.File("key.pem"), root.Key.ExportPkcs8PrivateKeyPem());
        var (code, output) = Openssl.Run(dir.Path, "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
            "-in", "data", "-signer", "cert.pem", "-inkey", "key.pem", "-out", "sig.p7s");
        code.Should().Be(0, output);
        var sig = File.ReadAllBytes(dir.File("sig.p7s"));

        SchoolDecisions.TryVerifyDetached(sig, data, pinned, now, out var error).Should().BeTrue(error.ToString());
        SchoolDecisions.TryVerifyDetached(sig, "update manifest 1.2.4\n"u8, pinned, now, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.UntrustedSignature);
        using var other = SchoolRoot.Create("ms-linz");
        SchoolDecisions.TryVerifyDetached(sig, data, X509CertificateLoader.LoadCertificate(other.Certificate.RawData), now, out error).Should().BeFalse();
        error.Code.Should().Be(SealingErrorCode.UntrustedSignature);
    }

    [Fact]
    public void Revoked_device_cannot_open_a_bundle_sealed_after_its_revocation()
    {
        using var sPhone = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var sLaptop = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ePhone = EncryptionKeyPair.Generate();
        using var eLaptop = EncryptionKeyPair.Generate();
        var now = _time.GetUtcNow();
        var v1 = new DeviceRoster("ms-linz", "acct-7", 0, now, []).WithEnrolled(Entry("phone", sPhone, ePhone), now).WithEnrolled(Entry("laptop", sLaptop, eLaptop), now);
        var keys = new Dictionary<string, RecipientPublicKey> { ["phone"] = ePhone.PublicKey, ["laptop"] = eLaptop.PublicKey };

        var before = Bundle.Seal("acct-7", "school", [new("school", 1, 1)], "before"u8, v1.SelectRecipients(keys));
        Bundle.TryOpen(before.Bytes, "acct-7", ePhone, out _, out var error).Should().BeTrue(error.ToString());

        _time.Advance(TimeSpan.FromHours(1));
        var verifier = new RosterVerifier(PinnedRoot(), _time);
        verifier.TryAccept(_root.SignDecision(v1.WithRevoked("phone", _time.GetUtcNow()).ToBytes()), "acct-7", out var v2, out error).Should().BeTrue(error.ToString());
        var recipients = v2!.SelectRecipients(keys);
        recipients.Should().ContainSingle().Which.Should().Be(eLaptop.PublicKey);

        var after = Bundle.Seal("acct-7", "school", [new("school", 2, 2)], "after"u8, recipients);
        Bundle.TryOpen(after.Bytes, "acct-7", ePhone, out var opened, out error).Should().BeFalse();
        opened.Should().BeNull();
        error.Code.Should().Be(SealingErrorCode.NotARecipient);
        Bundle.TryOpen(after.Bytes, "acct-7", eLaptop, out opened, out error).Should().BeTrue(error.ToString());
        opened!.Payload.Should().Equal("after"u8.ToArray());
    }
}
