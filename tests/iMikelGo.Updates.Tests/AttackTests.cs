using System.Security.Cryptography.Pkcs;
using System.Text;

namespace IMikelGo.Updates.Tests;

/// <summary>The Update Framework's attack list: each attack is refused or recovered and the device stays on a working version.</summary>
public sealed class AttackTests : IDisposable
{
    private readonly Fx _fx = new();

    public void Dispose() => _fx.Dispose();

    [Fact]
    public async Task Happy_path_installs_newer_version_and_keeps_previous_until_confirmed()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var r = await _fx.Updater("1.4.0").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.None, r.Error.Message);
        var launch = _fx.Launcher().Resolve()!;
        launch.Version.Text.Should().Be("1.5.0");
        launch.Confirmed.Should().BeFalse();
        Directory.Exists(Path.Combine(_fx.Install, "versions", "1.4.0")).Should().BeTrue("the previous version is kept until the new one confirmed");
        _fx.Launcher().ConfirmStarted(launch.Version);
        _fx.Running().Should().Be("1.5.0");
        (await _fx.Updater("1.5.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.UpToDate);
    }

    [Fact]
    public async Task Arbitrary_package_with_wrong_hash_is_refused()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var evil = Encoding.UTF8.GetBytes(new string('X', 3000));
        File.WriteAllBytes(_fx.FeedFile("1.5.0", "imikelgo.dll"), evil);
        var r = await _fx.Updater("1.4.0").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.PackageMismatch);
        r.Error.Message.Should().Contain("imikelgo.dll");
        _fx.Running().Should().Be("1.4.0");
        Directory.EnumerateFiles(Path.Combine(_fx.Install, "staging"), "*.part", SearchOption.AllDirectories).Should().BeEmpty();
    }

    [Fact]
    public async Task Tampered_package_one_bit_flipped_is_refused()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var path = _fx.FeedFile("1.5.0", "data/sounds.bin");
        var bytes = File.ReadAllBytes(path);
        bytes[4321] ^= 1;
        File.WriteAllBytes(path, bytes);
        var r = await _fx.Updater("1.4.0").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.PackageMismatch);
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Endless_data_stops_right_after_the_declared_size()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        EndlessStream? endless = null;
        var source = new FaultySource(_fx.Feed, (path, _, s) =>
        {
            if (!path.EndsWith("imikelgo.dll", StringComparison.Ordinal))
            {
                return s;
            }

            s.Dispose();
            return endless = new EndlessStream();
        });
        var r = await _fx.Updater("1.4.0", source).InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.PackageMismatch);
        r.Error.Message.Should().Contain("endless data");
        endless!.Served.Should().BeLessThanOrEqualTo(3001, "never read past declared size + 1");
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Rollback_to_an_older_validly_signed_manifest_is_refused()
    {
        await _fx.Bootstrap();
        var old = File.ReadAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json"));
        var oldSig = File.ReadAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"));
        _fx.Publish("1.5.0");
        (await _fx.Updater("1.4.0").InstallAsync()).Succeeded.Should().BeTrue();
        _fx.Launcher().ConfirmStarted(_fx.Launcher().Resolve()!.Version);

        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json"), old);
        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"), oldSig);
        var r = await _fx.Updater("1.5.0").CheckAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.Rollback);
        _fx.Running().Should().Be("1.5.0");
    }

    [Fact]
    public async Task Same_sequence_with_other_content_is_refused()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", sequence: 2);
        (await _fx.Updater("1.4.0").CheckAsync()).Succeeded.Should().BeTrue();
        _fx.Publish("1.6.0", sequence: 2);
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.Rollback);
    }

    [Fact]
    public async Task Indefinite_freeze_the_same_manifest_is_refused_once_it_expires()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", validity: TimeSpan.FromDays(7));
        (await _fx.Updater("1.4.0").CheckAsync()).Succeeded.Should().BeTrue();
        _fx.Time.Advance(TimeSpan.FromDays(8));
        var r = await _fx.Updater("1.4.0").CheckAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.Expired);
        r.Error.Message.Should().Contain("frozen");
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Expired_manifest_is_refused_and_a_future_one_too()
    {
        await _fx.Bootstrap();
        var now = _fx.Time.GetUtcNow();
        _fx.Publish("1.5.0", validity: TimeSpan.FromDays(1), issuedAt: now.AddDays(-2));
        (await _fx.Updater("1.4.0").InstallAsync()).Error.Code.Should().Be(UpdateErrorCode.Expired);
        _fx.Publish("1.5.1", issuedAt: now.AddDays(2));
        (await _fx.Updater("1.4.0").InstallAsync()).Error.Message.Should().Contain("future");
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Mix_and_match_files_of_another_release_are_refused()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", dllSize: 3000);
        var a = Path.Combine(_fx.Dir, "a");
        Directory.Move(Path.Combine(_fx.Feed, "files", "1.5.0"), a);
        _fx.Publish("1.5.0", sequence: 99, dllSize: 3000);
        // Keep the seq-99 manifest's files except the main DLL, which comes from the other 1.5.0 build (same name, same size).
        var other = Fx.Content("1.5.0", "imikelgo.dll", 3000);
        other[0] ^= 0x20;
        File.WriteAllBytes(_fx.FeedFile("1.5.0", "imikelgo.dll"), other);
        (await _fx.Updater("1.4.0").InstallAsync()).Error.Code.Should().Be(UpdateErrorCode.PackageMismatch);

        // A signature of one manifest with the bytes of another.
        var m = ReleasePublisher.CreateManifest(_fx.Package("1.7.0"), SemanticVersion.Parse("1.7.0"), "stable", 100, SemanticVersion.Parse("1.0.0"),
            false, TimeSpan.Zero, _fx.Time.GetUtcNow(), TimeSpan.FromDays(3));
        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json"), m.ToBytes());
        var r = await _fx.Updater("1.4.0").CheckAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Wrong_signer_with_the_same_subject_is_refused()
    {
        await _fx.Bootstrap();
        using var impostor = VendorKey.Create("CN=iMikelGo Releases, O=iMikelGo", _fx.Time.GetUtcNow().AddDays(-1), TimeSpan.FromDays(3650));
        impostor.Certificate.Subject.Should().Be(_fx.Key.Certificate.Subject);
        _fx.Publish("1.5.0", key: impostor);
        var r = await _fx.Updater("1.4.0").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);
        r.Error.Message.Should().Contain("not the pinned vendor certificate");
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Several_signers_and_no_signer_are_refused()
    {
        await _fx.Bootstrap();
        var m = _fx.Publish("1.5.0");
        var bytes = m.ToBytes();
        using var second = VendorKey.Create("CN=Other", _fx.Time.GetUtcNow().AddDays(-1), TimeSpan.FromDays(30));
        var cms = new SignedCms(new ContentInfo(bytes), detached: true);
        cms.Decode(File.ReadAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s")));
        using var c = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(second.ExportPfx(null), null);
        cms.ComputeSignature(new CmsSigner(c));
        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"), cms.Encode());
        var r = await _fx.Updater("1.4.0").CheckAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);

        cms.RemoveSignature(1);
        cms.RemoveSignature(0);
        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"), cms.Encode());
        r = await _fx.Updater("1.4.0").CheckAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);
        r.Error.Message.Should().Contain("found 0");

        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"), []);
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);
        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"), [0x30, 0x03, 0x02, 0x01]);
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);
        _fx.Running().Should().Be("1.4.0");
    }

    [Theory]
    [InlineData("../evil.dll")]
    [InlineData("/etc/passwd")]
    [InlineData("a\\\\b.dll")]
    [InlineData("a\\u0000b.dll")]
    [InlineData("C:evil.dll")]
    [InlineData(".hidden")]
    [InlineData("data//x.bin")]
    [InlineData("data/./x.bin")]
    public async Task Odd_file_names_in_a_validly_signed_manifest_are_refused(string jsonName)
    {
        await _fx.Bootstrap();
        var m = _fx.Publish("1.5.0");
        var json = Encoding.UTF8.GetString(m.ToBytes()).Replace("\"imikelgo.dll\"", "\"" + jsonName + "\"", StringComparison.Ordinal);
        var bytes = Encoding.UTF8.GetBytes(json);
        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json"), bytes);
        File.WriteAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"), _fx.Key.Sign(bytes));
        var r = await _fx.Updater("1.4.0").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.Malformed);
        r.Error.Message.Should().NotContain("\0");
        _fx.Running().Should().Be("1.4.0");
        File.Exists(Path.Combine(_fx.Dir, "evil.dll")).Should().BeFalse();
        File.Exists(Path.Combine(_fx.Install, "evil.dll")).Should().BeFalse();
    }

    [Fact]
    public void Unsafe_names_cannot_even_be_built()
    {
        foreach (var name in new[] { "../x", "/x", "a\\b", "a\0b", "x:y", ".x", "a//b", "", "a/../b" })
        {
            ReleaseManifest.IsSafeFileName(name).Should().BeFalse(name);
        }

        ReleaseManifest.IsSafeFileName("data/sounds-1.2+x_y.bin").Should().BeTrue();
    }

    [Fact]
    public async Task Interrupted_download_resumes_from_the_partial_file()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", dllSize: 200_000);
        var broken = new FaultySource(_fx.Feed, (path, _, s) => path.EndsWith("imikelgo.dll", StringComparison.Ordinal) ? new BreakingStream(s, 70_000) : s);
        var first = await _fx.Updater("1.4.0", broken).InstallAsync();
        first.Error.Code.Should().Be(UpdateErrorCode.Unavailable);
        _fx.Running().Should().Be("1.4.0");
        new FileInfo(Path.Combine(_fx.Install, "staging", "1.5.0", "imikelgo.dll.part")).Length.Should().Be(70_000);

        var good = new FaultySource(_fx.Feed, (_, _, s) => s);
        var second = await _fx.Updater("1.4.0", good).InstallAsync();
        second.Error.Code.Should().Be(UpdateErrorCode.None, second.Error.Message);
        good.Requests.Should().Contain(("files/1.5.0/imikelgo.dll", 70_000L));
        _fx.Running().Should().Be("1.5.0");
    }

    [Fact]
    public async Task A_corrupted_partial_file_is_not_trusted_on_resume()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", dllSize: 200_000);
        var broken = new FaultySource(_fx.Feed, (path, _, s) => path.EndsWith("imikelgo.dll", StringComparison.Ordinal) ? new BreakingStream(s, 70_000) : s);
        await _fx.Updater("1.4.0", broken).InstallAsync();
        var part = Path.Combine(_fx.Install, "staging", "1.5.0", "imikelgo.dll.part");
        var bytes = File.ReadAllBytes(part);
        bytes[10] ^= 0xFF;
        File.WriteAllBytes(part, bytes);
        (await _fx.Updater("1.4.0").InstallAsync()).Error.Code.Should().Be(UpdateErrorCode.PackageMismatch);
        (await _fx.Updater("1.4.0").InstallAsync()).Succeeded.Should().BeTrue("the bad partial file was discarded and downloaded again");
    }

    [Fact]
    public async Task A_hanging_feed_times_out_and_keeps_the_running_version()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var hanging = new FaultySource(_fx.Feed, (path, _, s) =>
        {
            if (!path.EndsWith(".dll", StringComparison.Ordinal))
            {
                return s;
            }

            s.Dispose();
            return new HangingStream();
        });
        var task = _fx.Updater("1.4.0", hanging, readTimeout: TimeSpan.FromSeconds(5)).InstallAsync();
        for (var i = 0; i < 200 && !task.IsCompleted; i++)
        {
            await Task.Delay(10);
            _fx.Time.Advance(TimeSpan.FromSeconds(1));
        }

        var r = await task.WaitAsync(TimeSpan.FromSeconds(10));
        r.Error.Code.Should().Be(UpdateErrorCode.Unavailable);
        r.Error.Message.Should().Contain("no data from the feed");
        _fx.Running().Should().Be("1.4.0");
    }

    [Theory]
    [InlineData("staged", "1.4.0")]
    [InlineData("moved", "1.4.0")]
    [InlineData("pointer", "1.5.0")]
    public async Task Interrupted_activation_kill_between_steps_still_starts_a_working_version(string step, string expected)
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var r = await _fx.Updater("1.4.0", hook: s =>
        {
            if (s == step)
            {
                throw new InvalidOperationException("simulated kill at " + s);
            }
        }).InstallAsync();
        if (step != "pointer")
        {
            r.Succeeded.Should().BeFalse();
        }

        _fx.Running().Should().Be(expected);
        if (expected == "1.4.0")
        {
            var again = await _fx.Updater("1.4.0").InstallAsync();
            again.Error.Code.Should().Be(UpdateErrorCode.None, again.Error.Message);
            _fx.Running().Should().Be("1.5.0");
        }
    }

    [Fact]
    public async Task A_version_that_never_confirms_a_clean_start_falls_back_and_is_not_installed_again()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        (await _fx.Updater("1.4.0").InstallAsync()).Succeeded.Should().BeTrue();
        var launcher = new UpdateLauncher(_fx.Install, _fx.Time) { MaxStartAttempts = 3 };
        for (var i = 0; i < 3; i++)
        {
            launcher.Resolve()!.Version.Text.Should().Be("1.5.0"); // crashes before ConfirmStarted
        }

        var d = launcher.Resolve()!;
        d.Version.Text.Should().Be("1.4.0");
        d.Notes.Should().Contain(n => n.Contains("marked bad"));
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.KnownBad);
        _fx.Publish("1.5.1");
        (await _fx.Updater("1.4.0").CheckAsync()).Succeeded.Should().BeTrue();
    }

    [Fact]
    public async Task Tampered_update_state_fails_closed()
    {
        await _fx.Bootstrap();
        var path = Path.Combine(_fx.Install, "state", "updates.json");
        var json = File.ReadAllText(path);
        var body = System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("body").GetString()!;
        var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(body)).Replace("\"sequence\":1", "\"sequence\":0", StringComparison.Ordinal);
        File.WriteAllText(path, json.Replace(body, Convert.ToBase64String(Encoding.UTF8.GetBytes(decoded)), StringComparison.Ordinal));
        _fx.Publish("1.5.0");
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.StateTampered);
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Manifest_for_another_channel_is_refused()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", channel: "beta");
        File.Copy(Path.Combine(_fx.Feed, "beta", "manifest.json"), Path.Combine(_fx.Feed, "stable", "manifest.json"), true);
        File.Copy(Path.Combine(_fx.Feed, "beta", "manifest.json.p7s"), Path.Combine(_fx.Feed, "stable", "manifest.json.p7s"), true);
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.WrongChannel);
    }

    [Fact]
    public void Manifest_is_canonical_and_round_trips()
    {
        var m = ReleasePublisher.CreateManifest(_fx.Package("1.5.0-rc.1"), SemanticVersion.Parse("1.5.0-rc.1"), "stable", 7, SemanticVersion.Parse("1.2.0"),
            true, TimeSpan.FromHours(48), _fx.Time.GetUtcNow(), TimeSpan.FromDays(30));
        var bytes = m.ToBytes();
        ReleaseManifest.TryParse(bytes, out var back, out _).Should().BeTrue();
        back!.ToBytes().Should().Equal(bytes);
        var spaced = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace(",\"", ", \"", StringComparison.Ordinal));
        ReleaseManifest.TryParse(spaced, out _, out var e).Should().BeFalse();
        e.Message.Should().Contain("canonical");
        SemanticVersion.Parse("1.5.0-rc.1").Should().BeLessThan(SemanticVersion.Parse("1.5.0"));
        SemanticVersion.Parse("1.10.0").Should().BeGreaterThan(SemanticVersion.Parse("1.9.9"));
        SemanticVersion.Parse("1.0.0-alpha.2").Should().BeLessThan(SemanticVersion.Parse("1.0.0-alpha.10"));
        SemanticVersion.TryParse("01.2.3", out _).Should().BeFalse();
        SemanticVersion.TryParse("v1.2.3", out _).Should().BeFalse();
    }
}
