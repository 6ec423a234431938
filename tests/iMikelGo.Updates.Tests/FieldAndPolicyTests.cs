using System.Diagnostics;

namespace IMikelGo.Updates.Tests;

public sealed class FieldAndPolicyTests : IDisposable
{
    private readonly Fx _fx = new();

    public void Dispose() => _fx.Dispose();

    [Fact]
    public async Task F17_feed_advertises_1_5_0_but_the_signed_manifest_says_1_3_0_refused_and_logged()
    {
        // A device freshly installed with 1.4.0 (no older trusted manifest), so only the version check can stop it.
        _fx.Pin = _fx.Key.Fingerprint;
        var feed13 = Path.Combine(_fx.Dir, "feed");
        _fx.Publish("1.3.0", sequence: 5);
        var m14 = ReleasePublisher.CreateManifest(_fx.Package("1.4.0"), SemanticVersion.Parse("1.4.0"), "other", 1, SemanticVersion.Parse("1.0.0"),
            false, TimeSpan.Zero, _fx.Time.GetUtcNow(), TimeSpan.FromDays(30));
        Directory.CreateDirectory(Path.Combine(_fx.Install, "versions"));
        // The installer put 1.4.0 in place (its manifest copy next to it) and the launcher runs it.
        var pkg = Directory.EnumerateDirectories(_fx.Dir, "pkg-1.4.0-*").Single();
        Directory.Move(pkg, Path.Combine(_fx.Install, "versions", "1.4.0"));
        File.WriteAllBytes(Path.Combine(_fx.Install, "versions", "1.4.0", ".manifest.json"), m14.ToBytes());
        File.WriteAllText(Path.Combine(_fx.Install, "current"), "{\"version\":\"1.4.0\",\"previous\":null}");
        _fx.Launcher().ConfirmStarted(SemanticVersion.Parse("1.4.0"));

        // The feed (or a proxy) advertises 1.5.0.
        File.WriteAllText(Path.Combine(feed13, "stable", "feed.json"), "{\"channel\":\"stable\",\"version\":\"1.5.0\",\"sequence\":6}");
        ReleasePublisher.Advertised(feed13, "stable").Should().Be("1.5.0");

        var r = await _fx.Updater("1.4.0").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.Rollback);
        r.Error.Message.Should().Contain("1.3.0").And.Contain("not newer than running 1.4.0");
        _fx.Running().Should().Be("1.4.0");
        _fx.Log.Should().Contain("REFUSED").And.Contain("1.3.0");

        // An intended rollback: the vendor re-signs 1.3.0 with a new sequence AND signs a downgrade statement withdrawing 1.4.0.
        var resigned = _fx.Publish("1.3.0", sequence: 6);
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.Rollback, "the manifest alone is not enough");
        ReleasePublisher.PublishDowngrade(_fx.Feed, _fx.Key, "stable", [SemanticVersion.Parse("1.4.1")], resigned.Version, 6, _fx.Time.GetUtcNow(), TimeSpan.FromDays(7));
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.Rollback, "the statement must withdraw the running version");
        ReleasePublisher.PublishDowngrade(_fx.Feed, _fx.Key, "stable", [SemanticVersion.Parse("1.4.0")], resigned.Version, 5, _fx.Time.GetUtcNow(), TimeSpan.FromDays(7));
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.Rollback, "the statement must name this manifest's sequence");
        ReleasePublisher.PublishDowngrade(_fx.Feed, _fx.Key, "stable", [SemanticVersion.Parse("1.4.0")], resigned.Version, 6, _fx.Time.GetUtcNow(), TimeSpan.FromDays(7));
        var ok = await _fx.Updater("1.4.0").InstallAsync();
        ok.Error.Code.Should().Be(UpdateErrorCode.None, ok.Error.Message);
        ok.Update!.IsAuthorizedDowngrade.Should().BeTrue();
        _fx.Running().Should().Be("1.3.0");
    }

    [Fact]
    public async Task F18_update_killed_with_a_truncated_main_dll_starts_on_1_4_refetches_1_5_and_activates_only_verified()
    {
        await _fx.Bootstrap();
        var outbox = Path.Combine(_fx.Install, "data", "outbox.db");
        Directory.CreateDirectory(Path.GetDirectoryName(outbox)!);
        File.WriteAllText(outbox, "3 unsent absences");
        _fx.Publish("1.5.0", dllSize: 100_000);

        // Kill half-way through the files: the download stops after the first file and part of the main DLL.
        var killed = new FaultySource(_fx.Feed, (path, _, s) => path.EndsWith("imikelgo.dll", StringComparison.Ordinal) ? new BreakingStream(s, 50_000) : s);
        (await _fx.Updater("1.4.0", killed).InstallAsync()).Succeeded.Should().BeFalse();
        _fx.Running().Should().Be("1.4.0");

        // A non-atomic writer (the Postman failure) would leave versions/1.5.0 with a truncated DLL as "current": simulate exactly that.
        (await _fx.Updater("1.4.0").InstallAsync()).Succeeded.Should().BeTrue();
        var dll = Path.Combine(_fx.Install, "versions", "1.5.0", "imikelgo.dll");
        using (var fs = new FileStream(dll, FileMode.Open))
        {
            fs.SetLength(50_000);
        }

        // Reboot during lesson time: the launcher does not care about lessons, it must start a working version.
        var launch = _fx.Launcher().Resolve()!;
        launch.Version.Text.Should().Be("1.4.0");
        launch.Notes.Should().Contain(n => n.Contains("1.5.0: incomplete"));
        File.ReadAllText(outbox).Should().Be("3 unsent absences");
        Directory.Exists(Path.Combine(_fx.Install, "versions", "1.5.0")).Should().BeFalse("1.5.0 is marked incomplete and removed");

        // Asked during a lesson → later; 1.5.0 is fetched again and activated only after full verification.
        var lesson = new BusySchedule(t => t < _fx.Time.GetUtcNow().AddMinutes(45));
        var check = await _fx.Updater("1.4.0").CheckAsync();
        check.Error.Code.Should().Be(UpdateErrorCode.None, check.Error.Message);
        new UpdateDeferral(_fx.Install, lesson, _fx.Time).Evaluate(check.Update!).Action.Should().Be(PromptAction.AskLater);
        (await _fx.Updater("1.4.0").DownloadAsync(check.Update!)).Succeeded.Should().BeTrue();
        _fx.Updater("1.4.0").Activate(check.Update!).Succeeded.Should().BeTrue();
        _fx.Running().Should().Be("1.5.0");
    }

    [Fact]
    public async Task Key_rotation_moves_the_pin_and_old_key_manifests_are_refused_afterwards()
    {
        await _fx.Bootstrap();
        var oldKey = _fx.Key;
        using var newKey = VendorKey.Create("CN=iMikelGo Releases 2027, O=iMikelGo", _fx.Time.GetUtcNow().AddDays(-1), TimeSpan.FromDays(3650));

        // A rotation without the new key's cross-signature is refused.
        ReleasePublisher.PublishRotation(_fx.Feed, oldKey, newKey, _fx.Time.GetUtcNow()).Should().Be(1);
        var rot = Path.Combine(_fx.Feed, "keys", "rotation-0001.json.next.p7s");
        var cross = File.ReadAllBytes(rot);
        File.Delete(rot);
        _fx.Publish("1.5.0", key: newKey);
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);

        // A rotation signed by someone else than the pinned key is refused.
        File.WriteAllBytes(rot, cross);
        var oldSig = File.ReadAllBytes(Path.Combine(_fx.Feed, "keys", "rotation-0001.json.p7s"));
        File.WriteAllBytes(Path.Combine(_fx.Feed, "keys", "rotation-0001.json.p7s"), newKey.Sign(File.ReadAllBytes(Path.Combine(_fx.Feed, "keys", "rotation-0001.json"))));
        (await _fx.Updater("1.4.0").CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);

        // The proper rotation is accepted; the new key's manifest installs.
        File.WriteAllBytes(Path.Combine(_fx.Feed, "keys", "rotation-0001.json.p7s"), oldSig);
        var r = await _fx.Updater("1.4.0").InstallAsync();
        r.Error.Code.Should().Be(UpdateErrorCode.None, r.Error.Message);
        _fx.Launcher().ConfirmStarted(_fx.Launcher().Resolve()!.Version);

        // Afterwards (new process, same persisted state) a manifest by the old key is refused even though the app build pins it.
        _fx.Publish("1.6.0", key: oldKey);
        var refused = await _fx.Updater("1.5.0").CheckAsync();
        refused.Error.Code.Should().Be(UpdateErrorCode.UntrustedSignature);
        refused.Error.Message.Should().Contain("not the pinned vendor certificate");
        _fx.Publish("1.6.0", key: newKey);
        (await _fx.Updater("1.5.0").InstallAsync()).Succeeded.Should().BeTrue();
        _fx.Running().Should().Be("1.6.0");
    }

    [Fact]
    public async Task Deferral_not_during_lessons_survives_restarts_and_security_grace_ends_postponing()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", security: true, graceHours: 48);
        var update = (await _fx.Updater("1.4.0").CheckAsync()).Update!;
        var start = _fx.Time.GetUtcNow();
        var lessons = new BusySchedule(t => t.Hour is 14 or 15); // the teacher's lesson slots 14:00-16:00 UTC
        var deferral = new UpdateDeferral(_fx.Install, lessons, _fx.Time);

        deferral.Evaluate(update).Action.Should().Be(PromptAction.AskNow);
        deferral.TryPostpone(update, TimeSpan.FromHours(7.5), out var later).Should().BeTrue();
        later.AskAt.Should().Be(start.Date.AddHours(16), "07:00 + 7.5 h = 14:30 is in a lesson, so ask at 16:00");

        // Restart: a new instance reads the persisted deferral.
        var afterRestart = new UpdateDeferral(_fx.Install, lessons, _fx.Time);
        afterRestart.Evaluate(update).Action.Should().Be(PromptAction.AskLater);
        _fx.Time.Advance(TimeSpan.FromHours(7.5)); // 14:30, in a lesson, postponement over
        afterRestart.Evaluate(update).Action.Should().Be(PromptAction.AskLater);
        _fx.Time.Advance(TimeSpan.FromHours(2)); // 16:30
        afterRestart.Evaluate(update).Action.Should().Be(PromptAction.AskNow);

        // Postponing a security update is capped at its deadline, and impossible after it.
        afterRestart.TryPostpone(update, TimeSpan.FromDays(10), out var capped).Should().BeTrue();
        capped.Reason.Should().Contain(Time(update.SecurityDeadline!.Value));
        _fx.Time.Advance(TimeSpan.FromHours(40)); // past issuedAt + 48 h
        var forced = afterRestart.Evaluate(update);
        forced.Action.Should().Be(PromptAction.InstallRequired);
        forced.CanPostpone.Should().BeFalse();
        afterRestart.TryPostpone(update, null, out var refused).Should().BeFalse();
        refused.Reason.Should().Contain("grace period ended");

        // Even a mandatory update never interrupts a lesson: it waits for the end of the slot.
        while (!lessons.IsBusy(_fx.Time.GetUtcNow()))
        {
            _fx.Time.Advance(TimeSpan.FromMinutes(30));
        }

        var inLesson = afterRestart.Evaluate(update);
        inLesson.Action.Should().Be(PromptAction.AskLater);
        inLesson.CanPostpone.Should().BeFalse();
    }

    [Fact]
    public async Task Below_minimum_supported_version_cannot_be_postponed_and_a_new_release_resets_the_deferral()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var u15 = (await _fx.Updater("1.4.0").CheckAsync()).Update!;
        var deferral = new UpdateDeferral(_fx.Install, BusySchedule.Never, _fx.Time);
        deferral.TryPostpone(u15, TimeSpan.FromDays(1), out _).Should().BeTrue();
        deferral.Evaluate(u15).Action.Should().Be(PromptAction.AskLater);

        _fx.Publish("1.6.0", minimum: "1.5.0");
        var u16 = (await _fx.Updater("1.4.0").CheckAsync()).Update!;
        u16.Required.Should().BeTrue();
        deferral.Evaluate(u16).Action.Should().Be(PromptAction.InstallRequired);
        deferral.TryPostpone(u16, null, out var why).Should().BeFalse();
        why.Reason.Should().Contain("minimum supported version");
    }

    [Fact]
    public void Openssl_cms_verify_accepts_a_manifest_signature()
    {
        const string openssl = "/usr/bin/openssl";
        if (!File.Exists(openssl))
        {
            Console.WriteLine("SKIPPED: /usr/bin/openssl is missing; cannot run the interoperability check.");
            return;
        }

        var m = _fx.Publish("1.5.0");
        var manifest = Path.Combine(_fx.Feed, "stable", "manifest.json");
        var pem = Path.Combine(_fx.Dir, "vendor.pem");
        File.WriteAllText(pem, _fx.Key.Certificate.ExportCertificatePem());
        var psi = new ProcessStartInfo(openssl, ["cms", "-verify", "-binary", "-inform", "DER", "-in", manifest + ".p7s", "-content", manifest,
            "-CAfile", pem, "-purpose", "any", "-out", Path.Combine(_fx.Dir, "out.json")])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        p.ExitCode.Should().Be(0, err);
        err.Should().Contain("Verification successful");
        File.ReadAllBytes(Path.Combine(_fx.Dir, "out.json")).Should().Equal(m.ToBytes());

        // And it refuses a tampered manifest.
        var bad = Path.Combine(_fx.Dir, "bad.json");
        File.WriteAllText(bad, File.ReadAllText(manifest).Replace("1.5.0", "1.9.0", StringComparison.Ordinal));
        psi.ArgumentList[psi.ArgumentList.IndexOf(manifest)] = bad;
        using var q = Process.Start(psi)!;
        q.StandardError.ReadToEnd();
        q.WaitForExit();
        q.ExitCode.Should().NotBe(0);
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
