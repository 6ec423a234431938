using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Xml.Linq;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace IMikelGo.Sealing.Tests;

public sealed class EnrollmentTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly SchoolRoot _root;
    private readonly EncryptionKeyPair _enrollmentKey = EncryptionKeyPair.Generate();
    private readonly X509Certificate2 _enrollmentCert;
    private readonly InMemoryPersonnelStore _personnel = new();
    private readonly InMemorySchoolRosterStore _rosters = new();
    private readonly EnrollmentAuthority _authority;
    private readonly LicenseKey _license = LicenseKey.Generate();
    private readonly SealingOptions _options = new() { Pbkdf2Iterations = 1_000 };

    public EnrollmentTests()
    {
        _root = SchoolRoot.Create("ms-linz", _time);
        _enrollmentCert = _root.IssueEnrollmentCertificate(_enrollmentKey.PublicKey, _time.GetUtcNow(), TimeSpan.FromDays(365));
        _personnel.Upsert(new PersonnelRecord(_license, "acct-anna", PasswordHash.Create("Geige-2026!", _options.Pbkdf2Iterations)));
        _authority = new EnrollmentAuthority(_root, _enrollmentKey, _personnel, _rosters, Options.Create(_options), _time);
    }

    public void Dispose()
    {
        _root.Dispose();
        _enrollmentKey.Dispose();
    }

    private X509Certificate2 PublicRoot => X509CertificateLoader.LoadCertificate(_root.Certificate.RawData);

    private EnrollmentUri Qr(LicenseKey? license = null)
        => new(new Uri("https://relay.example.org/imikelgo/"), "ms-linz", _root.Fingerprint, license ?? _license);

    private byte[] Request(DeviceEnrollment device, string password, string? licenseText = null)
    {
        device.TryCreateRequest(PublicRoot, _enrollmentCert, password, null, _time.GetUtcNow(), licenseText ?? device.Uri.License.Value,
            out var request, out var error).Should().BeTrue(error.ToString());
        return request!;
    }

    [Fact]
    public void End_to_end_qr_payload_to_request_to_approval_to_device_in_roster()
    {
        // School renders the QR code; the device scans (parses) the text.
        var scanned = Qr().ToString();
        scanned.Should().StartWith("imikelgo://enroll?relay=https%3A%2F%2Frelay.example.org%2Fimikelgo%2F&school=ms-linz&root=");
        EnrollmentUri.TryParse(scanned, out var uri, out var parseError).Should().BeTrue(parseError);

        using var phone = DeviceEnrollment.Start(uri!);
        using var laptop = DeviceEnrollment.Start(uri!);
        var request = Request(phone, "Geige-2026!");
        Encoding.UTF8.GetString(request).Should().NotContain("Geige", "the relay never sees the password");

        _authority.TryApprove(request, out var approval, out var error).Should().BeTrue(error.ToString());
        var rosterVerifier = new RosterVerifier(PublicRoot, _time);
        phone.TryComplete(approval!, PublicRoot, rosterVerifier, _time.GetUtcNow(), out var identity, out var sealError).Should().BeTrue(sealError.ToString());
        identity!.AccountId.Should().Be("acct-anna");
        identity.DeviceId.Should().Be(phone.DeviceId);

        // A second device of the same teacher joins with the same license key and password.
        _authority.TryApprove(Request(laptop, "Geige-2026!"), out var approval2, out error).Should().BeTrue(error.ToString());
        laptop.TryComplete(approval2!, PublicRoot, rosterVerifier, _time.GetUtcNow(), out _, out sealError).Should().BeTrue(sealError.ToString());
        var roster = _rosters.Get("acct-anna")!;
        roster.Version.Should().Be(2);
        roster.Entries.Select(e => e.DeviceId).Should().BeEquivalentTo([phone.DeviceId, laptop.DeviceId]);

        // The phone seals to the roster's devices; the laptop opens it.
        var keys = new Dictionary<string, RecipientPublicKey> { [phone.DeviceId] = phone.EncryptionKey.PublicKey, [laptop.DeviceId] = laptop.EncryptionKey.PublicKey };
        var bundle = Bundle.Seal("acct-anna", phone.DeviceId, [new(phone.DeviceId, 1, 3)], "absence"u8, roster.SelectRecipients(keys));
        Bundle.TryOpen(bundle.Bytes, "acct-anna", laptop.EncryptionKey, out var opened, out sealError).Should().BeTrue(sealError.ToString());
        opened!.Payload.Should().Equal("absence"u8.ToArray());

        // The same request again (the school's first answer was lost before it was stored or sent): answered again for
        // the same keys, no second roster entry, no new version; the same device id with other keys is refused.
        _authority.TryApprove(request, out var again, out error).Should().BeTrue(error.ToString());
        again!.DeviceId.Should().Be(phone.DeviceId);
        again.SignedRoster.Should().Equal(_rosters.GetSigned("acct-anna"));
        phone.TryComplete(again, PublicRoot, rosterVerifier, _time.GetUtcNow(), out _, out sealError).Should().BeTrue(sealError.ToString());
        _rosters.Get("acct-anna")!.Version.Should().Be(2);
        using var impostorKey = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using var impostorHpke = EncryptionKeyPair.Generate();
        using var impostor = DeviceEnrollment.Start(phone.Uri, phone.DeviceId, impostorKey, impostorHpke);
        _authority.TryApprove(Request(impostor, "Geige-2026!"), out _, out error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.DeviceIdInUse);

        // Remote wipe of the phone: new signed roster, phone no longer a recipient.
        var revoked = _authority.RevokeDevice("acct-anna", phone.DeviceId);
        rosterVerifier.TryAccept(revoked, "acct-anna", out var v3, out sealError).Should().BeTrue(sealError.ToString());
        v3!.SelectRecipients(keys).Should().Equal(laptop.EncryptionKey.PublicKey);
    }

    [Fact]
    public void Wrong_password_is_a_clear_error_and_the_sixth_attempt_is_rate_limited()
    {
        using var device = DeviceEnrollment.Start(Qr());
        for (var i = 1; i <= 5; i++)
        {
            _authority.TryApprove(Request(device, "Bratsche"), out var approval, out var error).Should().BeFalse();
            approval.Should().BeNull();
            error.Code.Should().Be(EnrollmentErrorCode.WrongPassword);
            error.Message.Should().Contain("password is wrong");
        }

        _authority.TryApprove(Request(device, "Geige-2026!"), out _, out var limited).Should().BeFalse("even the right password waits");
        limited.Code.Should().Be(EnrollmentErrorCode.RateLimited);
        limited.Message.Should().Contain("try again in 15 minutes");

        _time.Advance(TimeSpan.FromMinutes(15));
        _authority.TryApprove(Request(device, "Geige-2026!"), out var ok, out var e2).Should().BeTrue(e2.ToString());
        ok!.DeviceId.Should().Be(device.DeviceId);
    }

    [Fact]
    public void License_typo_and_unknown_license_are_distinguished()
    {
        var compact = _license.Value.Replace("-", "", StringComparison.Ordinal);
        var typo = compact[..3] + (compact[3] == 'X' ? 'Y' : 'X') + compact[4..];
        using var device = DeviceEnrollment.Start(Qr());
        _authority.TryApprove(Request(device, "Geige-2026!", typo), out _, out var error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.LicenseTypo);
        error.Message.Should().Contain("typo");

        using var stranger = DeviceEnrollment.Start(Qr(LicenseKey.Generate()));
        _authority.TryApprove(Request(stranger, "Geige-2026!"), out _, out error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.UnknownLicense);

        // The QR parser reports the typo too, before anything is sent.
        EnrollmentUri.TryParse(Qr().ToString().Replace(_license.Value, typo, StringComparison.Ordinal), out _, out var qrError).Should().BeFalse();
        qrError.Should().Contain("typo");
    }

    [Fact]
    public void Tampered_or_stale_requests_and_wrong_roots_are_refused()
    {
        using var device = DeviceEnrollment.Start(Qr());
        var request = Request(device, "Geige-2026!");
        var tampered = (byte[])request.Clone();
        tampered[^20] ^= 1;
        _authority.TryApprove(tampered, out _, out var error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.MalformedRequest);
        _authority.TryApprove("{}"u8, out _, out error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.MalformedRequest);

        _time.Advance(TimeSpan.FromMinutes(11));
        _authority.TryApprove(request, out _, out error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.RequestExpired);

        // A relay presenting another root is caught by the pinned fingerprint.
        using var evil = SchoolRoot.Create("ms-linz", _time);
        var evilCert = evil.IssueEnrollmentCertificate(_enrollmentKey.PublicKey, _time.GetUtcNow(), TimeSpan.FromDays(1));
        device.TryCreateRequest(X509CertificateLoader.LoadCertificate(evil.Certificate.RawData), evilCert, "pw", _time.GetUtcNow(), out _, out var sealError).Should().BeFalse();
        sealError.Code.Should().Be(SealingErrorCode.UntrustedSignature);
        device.TryCreateRequest(PublicRoot, evilCert, "pw", _time.GetUtcNow(), out _, out sealError).Should().BeFalse();
        sealError.Code.Should().Be(SealingErrorCode.UntrustedSignature);
    }

    [Fact]
    public void Device_label_travels_sealed_with_the_password_trimmed_and_nfc_normalised()
    {
        using var laptop = DeviceEnrollment.Start(Qr());
        laptop.TryCreateRequest(PublicRoot, _enrollmentCert, "Geige-2026!", "  Bu\u0308ro-Laptop ", _time.GetUtcNow(), out var request, out var sealError)
            .Should().BeTrue(sealError.ToString());
        Encoding.UTF8.GetString(request!).Should().NotContain("Laptop", "the relay sees neither the label nor the password");
        _authority.TryApprove(request, out var approval, out var error).Should().BeTrue(error.ToString());
        approval!.DeviceLabel.Should().Be("B\u00fcro-Laptop");

        using var phone = DeviceEnrollment.Start(Qr());
        _authority.TryApprove(Request(phone, "Geige-2026!"), out approval, out error).Should().BeTrue(error.ToString());
        approval!.DeviceLabel.Should().BeNull("no label was given");
    }

    [Theory]
    [InlineData("line\nbreak", "control character")]
    [InlineData("12345678901234567890123456789012345678901234567890123456789012345", "longer than 64")]
    [InlineData("lone surrogate", "not valid Unicode")]
    [InlineData("Phone\u202E(revoked)", "invisible, formatting")]
    [InlineData("\u200B", "invisible, formatting")]
    [InlineData("Laptop\u2028second line", "invisible, formatting")]
    [InlineData("Laptop\uE000", "invisible, formatting")]
    public void A_label_no_school_could_show_is_refused_on_the_device(string label, string problem)
    {
        // A lone surrogate does not survive xUnit's argument serialisation, so it is made here.
        label = label == "lone surrogate" ? "Laptop " + (char)0xD800 : label;
        using var device = DeviceEnrollment.Start(Qr());
        DeviceEnrollment.LabelProblem(label).Should().Contain(problem);
        device.TryCreateRequest(PublicRoot, _enrollmentCert, "Geige-2026!", label, _time.GetUtcNow(), out var request, out var sealError).Should().BeFalse();
        request.Should().BeNull();
        sealError.Code.Should().Be(SealingErrorCode.Malformed);
        sealError.Message.Should().Contain("device label").And.Contain(problem);
        DeviceEnrollment.LabelProblem(new string('x', DeviceEnrollment.MaxLabelLength)).Should().BeNull();
        DeviceEnrollment.LabelProblem("   ").Should().BeNull("blank means no label");
    }

    [Theory]
    [InlineData(new byte[] { 200, (byte)'a' }, "label length exceeds")]
    [InlineData(new byte[] { 2, 0xC3, 0x28, (byte)'p', (byte)'w' }, "not valid UTF-8")]
    [InlineData(new byte[] { 2, (byte)'a', 0x07, (byte)'p', (byte)'w' }, "control character")]
    [InlineData(new byte[] { 2, (byte)' ', (byte)'a', (byte)'p', (byte)'w' }, "not trimmed and NFC")]
    [InlineData(new byte[] { 3, (byte)'u', 0xCC, 0x88, (byte)'p', (byte)'w' }, "not trimmed and NFC")]
    [InlineData(new byte[] { }, "label length exceeds")]
    [InlineData(new byte[] { 4, (byte)'a', 0xE2, 0x80, 0x8B, (byte)'p', (byte)'w' }, "invisible, formatting")]
    public void A_sealed_secret_no_device_would_send_is_refused_by_the_school_and_nothing_is_enrolled(byte[] prefix, string problem)
    {
        using var device = DeviceEnrollment.Start(Qr());
        var secret = prefix.Length == 0 ? prefix : [.. prefix, .. "Geige-2026!"u8.ToArray()];
        _authority.TryApprove(RawRequest(device, 2, DeviceEnrollment.SecretInfo, secret), out var approval, out var error).Should().BeFalse();
        approval.Should().BeNull();
        error.Code.Should().Be(EnrollmentErrorCode.MalformedRequest);
        error.Message.Should().Contain(problem);
        _rosters.Get("acct-anna").Should().BeNull("nothing was enrolled");
    }

    [Fact]
    public void A_format_1_request_of_an_older_device_is_still_approved_without_a_label_and_formats_cannot_be_mixed()
    {
        using var device = DeviceEnrollment.Start(Qr());
        var password = "Geige-2026!"u8.ToArray();
        _authority.TryApprove(RawRequest(device, 1, DeviceEnrollment.PasswordInfo, password), out var approval, out var error).Should().BeTrue(error.ToString());
        approval!.DeviceLabel.Should().BeNull();

        // A format-2 body announced as format 1 (or the reverse), and formats never issued, are refused.
        using var other = DeviceEnrollment.Start(Qr());
        _authority.TryApprove(RawRequest(other, 2, DeviceEnrollment.SecretInfo, [0, .. password], envelopeFormat: 1), out _, out error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.MalformedRequest);
        _authority.TryApprove(RawRequest(other, 1, DeviceEnrollment.PasswordInfo, password, envelopeFormat: 2), out _, out error).Should().BeFalse();
        error.Code.Should().Be(EnrollmentErrorCode.MalformedRequest);
        _authority.TryApprove(RawRequest(other, 2, DeviceEnrollment.SecretInfo, [0, .. password], envelopeFormat: 3), out _, out error).Should().BeFalse();
        error.Message.Should().Contain("format 1 or 2");
        _rosters.Get("acct-anna")!.Entries.Should().ContainSingle(e => e.DeviceId == device.DeviceId);
    }

    // A request built from parts, with any sealed secret: what a device of another format (or a forger holding a device key) would send.
    private byte[] RawRequest(DeviceEnrollment device, int bodyFormat, ReadOnlySpan<byte> info, byte[] secret, int? envelopeFormat = null)
    {
        var fields = new RequestFields(device.Uri.SchoolId, device.Uri.License.Value, device.DeviceId,
            Convert.ToBase64String(device.SigningKey.ExportSubjectPublicKeyInfo()), Convert.ToBase64String(device.EncryptionKey.PublicKey.Span),
            _time.GetUtcNow().UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture), "bm9uY2Vub25jZW5vbmNlMQ==");
        var sealedSecret = Hpke.SealBase(HpkeSuite.P256Sha256Aes256Gcm, _enrollmentKey.PublicKey, info, fields.Binding(), secret, out var enc);
        var body = fields.ToBody(bodyFormat, enc, sealedSecret);
        var signature = device.SigningKey.SignData(body, System.Security.Cryptography.HashAlgorithmName.SHA256);
        return Encoding.UTF8.GetBytes(
            $$"""{"kind":"imikelgo.enroll","format":{{envelopeFormat ?? bodyFormat}},"body":"{{Convert.ToBase64String(body)}}","signature":"{{Convert.ToBase64String(signature)}}"}""");
    }

    [Fact]
    public void Qr_payload_parser_is_strict()
    {
        var good = Qr().ToString();
        EnrollmentUri.TryParse(good, out var uri, out _).Should().BeTrue();
        uri.Should().Be(Qr());
        (string Text, string Expected)[] cases =
        [
            ("https://x", "imikelgo://enroll?"),
            (good + "&extra=1", "unknown parameter 'extra'"),
            (good + "&school=x", "more than once"),
            (good.Replace("&school=ms-linz", "", StringComparison.Ordinal), "missing the 'school'"),
            (good.Replace("https%3A", "http%3A", StringComparison.Ordinal), "https"),
            (good.Replace("root=", "root=zz", StringComparison.Ordinal), "64 hex"),
            (good.Replace("school=ms-linz", "school=ms%20linz", StringComparison.Ordinal), "school id"),
        ];
        foreach (var (text, expected) in cases)
        {
            EnrollmentUri.TryParse(text, out var parsed, out var error).Should().BeFalse(text);
            parsed.Should().BeNull();
            error.Should().Contain(expected);
        }
    }

    [Fact]
    public void Qr_payload_carries_an_optional_relay_pin_parsed_strictly()
    {
        var pin = new string('A', 64);
        var withPin = new EnrollmentUri(new Uri("https://relay.example.org/imikelgo/"), "ms-linz", _root.Fingerprint, _license, pin);
        withPin.RelayPin.Should().Be(new string('a', 64), "fingerprints are kept lowercase");
        var text = withPin.ToString();
        text.Should().EndWith("&relayPin=" + new string('a', 64));
        EnrollmentUri.TryParse(text, out var parsed, out var parseError).Should().BeTrue(parseError);
        parsed.Should().Be(withPin);
        parsed!.RelayPin.Should().Be(new string('a', 64));

        EnrollmentUri.TryParse(Qr().ToString(), out var withoutPin, out _).Should().BeTrue();
        withoutPin!.RelayPin.Should().BeNull("the pin is optional");
        Qr().ToString().Should().NotContain("relayPin");

        (string Text, string Expected)[] cases =
        [
            (Qr() + "&relayPin=" + new string('a', 63), "relayPin"),
            (Qr() + "&relayPin=" + new string('g', 64), "64 hex"),
            (Qr() + "&relayPin=", "relayPin"),
            (text + "&relayPin=" + new string('b', 64), "more than once"),
            (Qr() + "&relaypin=" + new string('a', 64), "unknown parameter 'relaypin'"),
        ];
        foreach (var (bad, expected) in cases)
        {
            EnrollmentUri.TryParse(bad, out var refused, out var error).Should().BeFalse(bad);
            refused.Should().BeNull();
            error.Should().Contain(expected);
        }

        FluentActions.Invoking(() => new EnrollmentUri(new Uri("https://relay.example.org/"), "ms-linz", _root.Fingerprint, _license, "abc"))
            .Should().Throw<ArgumentException>().WithParameterName("relayPin");
    }

    [Fact]
    public void Qr_code_renders_as_png_svg_and_terminal_text()
    {
        var png = EnrollmentQrCode.ToPng(Qr(), 4);
        png.Take(8).Should().Equal(0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A);

        var svg = XDocument.Parse(EnrollmentQrCode.ToSvg(Qr()));
        svg.Root!.Name.LocalName.Should().Be("svg");

        using var data = EnrollmentQrCode.Create(Qr());
        var modules = data.ModuleMatrix.Count; // includes the quiet zone
        modules.Should().BeGreaterThan(21);
        var lines = EnrollmentQrCode.ToTerminalText(Qr()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount((modules + 1) / 2);
        lines.Should().OnlyContain(l => l.Length == modules);
        string.Concat(lines).Should().Contain("█").And.Contain(" ");
    }

    [Fact]
    public void Password_hash_round_trips_and_is_slow_salted()
    {
        var h = PasswordHash.Create("pw", 1_000);
        h.ToString().Should().StartWith("pbkdf2-sha256$1000$");
        PasswordHash.TryParse(h.ToString(), out var parsed).Should().BeTrue();
        parsed!.Verify("pw"u8).Should().BeTrue();
        parsed.Verify("pW"u8).Should().BeFalse();
        PasswordHash.Create("pw", 1_000).ToString().Should().NotBe(h.ToString(), "salts are random");
        new SealingOptions().Pbkdf2Iterations.Should().Be(600_000);
    }

    [Fact]
    public void AddIMikelGoSealing_registers_validated_options()
    {
        using var sp = new ServiceCollection().AddIMikelGoSealing(o => o.Pbkdf2Iterations = 2_000).BuildServiceProvider();
        sp.GetRequiredService<IOptions<SealingOptions>>().Value.Pbkdf2Iterations.Should().Be(2_000);
        sp.GetRequiredService<ISeenBundles>().Should().BeOfType<InMemorySeenBundles>();
        sp.GetRequiredService<TimeProvider>().Should().BeSameAs(TimeProvider.System);

        using var bad = new ServiceCollection().AddIMikelGoSealing(o => o.Pbkdf2Iterations = 10).BuildServiceProvider();
        var act = () => bad.GetRequiredService<IOptions<SealingOptions>>().Value;
        act.Should().Throw<OptionsValidationException>().WithMessage("*Pbkdf2Iterations*");
    }
}
