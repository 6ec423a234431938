using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using FluentAssertions;
using IMikelGo.App;
using IMikelGo.App.Components;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Playwright;
using Xunit;

namespace IMikelGo.App.Tests;

/// <summary>
/// End to end in real Chromium (Debian's, via Playwright): a real relay (Kestrel, HTTPS, pinned), the test as the
/// school, two teacher-app instances with their own encrypted vaults. Enrollment uses the app's password-sealed
/// enrollment code (the school side of the hand-off is played by this test).
/// </summary>
public sealed class TeacherAppBrowserTests
{
    private const string Account = "k-anna-berger";
    private const string Password = "schul-passwort-2026";
    private const string Pin = "4711";

    [Fact]
    public void German_and_English_texts_have_the_same_keys() =>
        UiText.Keys("en").Order(StringComparer.Ordinal).Should().Equal(UiText.Keys("de").Order(StringComparer.Ordinal));

    [Fact]
    public void The_enrollment_code_opens_only_with_the_school_password()
    {
        var payload = new EnrollmentPayload(Account, "S", "L", "https://127.0.0.1:1/", "00", "", "", []);
        var code = EnrollmentCode.Create(payload, Password);
        EnrollmentCode.TryOpen(code, "wrong", out _, out var error).Should().BeFalse();
        error.Should().Contain("password");
        EnrollmentCode.TryOpen(code, Password, out var opened, out _).Should().BeTrue();
        opened!.Account.Should().Be(Account);
    }

    [Fact]
    public async Task Two_devices_sync_an_absence_through_the_real_relay_and_three_wrong_pins_wipe_to_demo()
    {
        Skip.IfNoChromium();
        using var schoolSigning = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var schoolKey = ReplicaKey.Create();
        var relayData = Directory.CreateTempSubdirectory("imikelgo-app-relay-").FullName;
        var relayOptions = new RelayOptions { DataDirectory = relayData, StoreFactory = _ => new InMemoryMailboxStore(), RateLimitBurst = 10_000, RateLimitPerSecond = 10_000 };
        relayOptions.Urls.Add("https://127.0.0.1:0");
        relayOptions.Schools.Add(new SchoolRegistration(Account, schoolKey.Replica.Value, Convert.ToBase64String(schoolSigning.ExportSubjectPublicKeyInfo())));
        await using var relay = RelayHost.Create(relayOptions);
        await relay.StartAsync();
        var relayUrl = relay.Urls.First();
        var fingerprint = ((IServiceProvider)relay.Services).GetService(typeof(RelayCertificate)) is RelayCertificate c ? c.Fingerprint : throw new InvalidOperationException("no relay certificate");

        // The school: keys for two devices, its calendar, registration at the relay, one sealed bundle for both devices.
        var account = new AccountId(Account);
        using var schoolEnc = EncryptionKeyPair.Generate();
        using var d1 = ReplicaKey.Create();
        using var d2 = ReplicaKey.Create();
        var seed1 = RandomNumberGenerator.GetBytes(32);
        var seed2 = RandomNumberGenerator.GetBytes(32);
        using var e1 = EncryptionKeyPair.Derive(seed1);
        using var e2 = EncryptionKeyPair.Derive(seed2);
        var school = new Replica(account, schoolKey);
        var today = DateOnly.FromDateTime(DateTime.Today);
        var monday = today.AddDays(-(((int)today.DayOfWeek + 6) % 7));
        var lena = new StudentId("lena");
        school.RecordBatch([
            new AccountOpened("Musikschule Lindenberg", "Anna Berger", schoolKey.PublicKey),
            new StudentEnrolled(lena, "Lena Vogel"),
            new StudentEnrolled(new StudentId("tom"), "Tom Krause"),
            new SeriesPublished(new SeriesId("klavier-di"), "Klavier", 2, 16 * 60, 45, new RoomId("raum-101"), [lena], monday.AddDays(-7), monday.AddDays(60)),
            new SeriesPublished(new SeriesId("geige-do"), "Violine", 4, 17 * 60, 30, new RoomId("raum-102"), [new StudentId("tom")], monday.AddDays(-7), monday.AddDays(60)),
            new DeviceEnrolled(d1.Replica, "Laptop", d1.PublicKey),
            new DeviceEnrolled(d2.Replica, "Tablet", d2.PublicKey),
        ]).Succeeded.Should().BeTrue();
        var clientOptions = new RelayClientOptions { BaseAddress = new Uri(relayUrl), PinnedCertificateSha256 = fingerprint, RetryBaseDelay = TimeSpan.FromMilliseconds(50) };
        using (var schoolSigner = new EcdsaRequestSigner(schoolSigning, callerId: schoolKey.Replica.Value))
        using (var schoolClient = RelayClient.Create(clientOptions, schoolSigner))
        {
            foreach (var d in new[] { d1, d2 })
            {
                await schoolClient.RegisterDeviceAsync(Account, new DeviceRegistration(d.Replica.Value, Convert.ToBase64String(d.PublicKey.AsSpan())), CancellationToken.None);
            }

            var bundle = EventBundles.Seal(school.Id, [.. school.Ledger.Export(account)], [e1.PublicKey, e2.PublicKey]);
            await schoolClient.PushAsync(Account, bundle, CancellationToken.None);
        }

        string Code(ReplicaKey key, byte[] seed, string label, EncryptionKeyPair other) => EnrollmentCode.Create(new EnrollmentPayload(
            Account, "Musikschule Lindenberg", label, relayUrl, fingerprint, Convert.ToBase64String(key.ExportPkcs8()), Convert.ToBase64String(seed),
            [Convert.ToBase64String(schoolEnc.PublicKey.Encoded.Span), Convert.ToBase64String(other.PublicKey.Encoded.Span)]), Password);

        var data1 = Directory.CreateTempSubdirectory("imikelgo-app-1-").FullName;
        var data2 = Directory.CreateTempSubdirectory("imikelgo-app-2-").FullName;
        await using var app1 = await TeacherAppHost.StartAsync(["--data", data1, "--urls", $"http://127.0.0.1:{FreePort()}"], pbkdf2Iterations: 20_000);
        await using var app2 = await TeacherAppHost.StartAsync(["--data", data2, "--urls", $"http://127.0.0.1:{FreePort()}"], pbkdf2Iterations: 20_000);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true });
        var laptop = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        var tablet = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        await laptop.GotoAsync(app1.Urls.First());
        await tablet.GotoAsync(app2.Urls.First());
        await Expect(laptop.Locator(".imk-app[data-interactive=true]")).ToBeVisibleAsync(new() { Timeout = 20_000 });
        await Expect(tablet.Locator(".imk-app[data-interactive=true]")).ToBeVisibleAsync(new() { Timeout = 20_000 });

        // Demo mode before enrollment, then enroll both devices.
        await Expect(laptop.Locator("#demo-banner")).ToBeVisibleAsync();
        await EnrollAsync(laptop, Code(d1, seed1, "Laptop", e2));
        await EnrollAsync(tablet, Code(d2, seed2, "Tablet", e1));

        // PIN screen: lock and unlock.
        await laptop.ClickAsync("#lock");
        await Expect(laptop.Locator("#pin-warning")).ToBeVisibleAsync();
        await ShotAsync(laptop, "pin");
        await laptop.FillAsync("#pin", Pin);
        await laptop.ClickAsync("#pin-submit");
        await Expect(laptop.Locator("#sync-button")).ToBeEnabledAsync();

        // Both devices receive the school's timetable.
        await SyncAsync(laptop);
        await SyncAsync(tablet);
        await Expect(laptop.Locator("tr.imk-lesson")).ToHaveCountAsync(2);
        await ShotAsync(laptop, "week");

        // The laptop records Lena's unexcused absence on Tuesday's piano lesson and syncs.
        var piano = laptop.Locator("tr.imk-lesson", new() { HasText = "Klavier" });
        await piano.Locator(".act-absence").ClickAsync();
        await laptop.Locator("#absence-excused").UncheckAsync();
        await laptop.FillAsync("#absence-reason", "kam nicht");
        await ShotAsync(laptop, "record-absence");
        await laptop.ClickAsync("#absence-submit");
        await Expect(piano).ToContainTextAsync("fehlt (unentschuldigt)");
        await SyncAsync(laptop);
        await Expect(laptop.Locator("#sync-summary")).ToContainTextAsync(new System.Text.RegularExpressions.Regex("Gesendet: [1-9]"));
        await ShotAsync(laptop, "sync-summary");

        // The tablet syncs and sees it.
        await SyncAsync(tablet);
        await Expect(tablet.Locator("#sync-in")).ToContainTextAsync("lena absent (unexcused)");
        await Expect(tablet.Locator("tr.imk-lesson", new() { HasText = "Klavier" })).ToContainTextAsync("fehlt (unentschuldigt)");

        // A conflict: offline, the laptop cancels Thursday's violin lesson while the tablet marks it held.
        await laptop.Locator("tr.imk-lesson", new() { HasText = "Violine" }).Locator(".act-cancel").ClickAsync();
        await laptop.ClickAsync("#cancel-submit");
        await tablet.Locator("tr.imk-lesson", new() { HasText = "Violine" }).Locator(".act-held").ClickAsync();
        await tablet.FillAsync("#held-note", "Tonleitern geübt");
        await tablet.ClickAsync("#held-submit");
        await SyncAsync(laptop);
        await SyncAsync(tablet);
        await Expect(tablet.Locator("#conflicts")).ToContainTextAsync(IMikelGo.Engine.Merge.MergeRules.CancelBeatsHeld);
        await tablet.Locator("#conflicts-title").ScrollIntoViewIfNeededAsync();
        await ShotAsync(tablet, "conflicts");
        await Expect(tablet.Locator("#devices")).ToContainTextAsync("Laptop");

        // English UI.
        await tablet.ClickAsync("#lang-en");
        await Expect(tablet.Locator("#sync-title")).ToHaveTextAsync("Sync");
        await tablet.ClickAsync("#lang-de");

        // Three wrong PINs on the tablet: everything is wiped, demo mode.
        await tablet.ClickAsync("#lock");
        for (var i = 0; i < 3; i++)
        {
            await tablet.FillAsync("#pin", "0000");
            await tablet.ClickAsync("#pin-submit");
            if (i < 2)
            {
                await Expect(tablet.Locator("#pin-remaining")).ToContainTextAsync($"Verbleibende Versuche: {2 - i} von 3");
            }
        }

        await Expect(tablet.Locator("#wiped-notice")).ToBeVisibleAsync();
        await Expect(tablet.Locator("#demo-banner")).ToContainTextAsync("Demo-Modus");
        await ShotAsync(tablet, "demo-banner");
        Directory.EnumerateFileSystemEntries(data2, "vault.db*", SearchOption.AllDirectories).Should().BeEmpty();

        await relay.StopAsync();
        foreach (var dir in new[] { data1, data2, relayData })
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);

    private static async Task EnrollAsync(IPage page, string code)
    {
        await page.FillAsync("#enroll-uri", code);
        await page.FillAsync("#enroll-license", Account.ToUpperInvariant());
        await page.FillAsync("#enroll-password", Password);
        await page.FillAsync("#enroll-pin", Pin);
        await page.FillAsync("#enroll-pin2", Pin);
        await page.ClickAsync("#enroll-submit");
        try
        {
            await Expect(page.Locator("#sync-button")).ToBeVisibleAsync(new() { Timeout = 20_000 });
        }
        catch (PlaywrightException ex)
        {
            throw new InvalidOperationException("enrollment failed: " + await page.InnerTextAsync("#enroll-status") + " | " + await page.InnerHTMLAsync("head"), ex);
        }
    }

    private static async Task SyncAsync(IPage page)
    {
        var before = int.Parse(await page.GetAttributeAsync(".imk-sync", "data-syncs") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
        await page.ClickAsync("#sync-button");
        await Expect(page.Locator($".imk-sync[data-syncs='{before + 1}']")).ToBeVisibleAsync(new() { Timeout = 20_000 });
        await Expect(page.Locator("#sync-summary")).ToBeVisibleAsync();
    }

    private static async Task ShotAsync(IPage page, string name)
    {
        // The documentation's screenshots are refreshed on demand (IMIKELGO_SCREENSHOTS=1); a normal run keeps them in temp.
        var dir = Environment.GetEnvironmentVariable("IMIKELGO_SCREENSHOTS") == "1"
            ? Path.Combine(RepoRoot(), "docs", "screenshots")
            : Path.Combine(Path.GetTempPath(), "imikelgo-screenshots");
        Directory.CreateDirectory(dir);
        await page.ScreenshotAsync(new() { Path = Path.Combine(dir, name + ".png"), FullPage = true });
    }

    private static string RepoRoot([System.Runtime.CompilerServices.CallerFilePath] string source = "")
    {
        // The artifacts path may be outside the repository: start from this source file, then from the binaries.
        var dir = File.Exists(source) ? new FileInfo(source).Directory : new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "iMikelGo.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

internal static class Skip
{
    public static void IfNoChromium()
    {
        if (!File.Exists("/usr/bin/chromium"))
        {
            throw new InvalidOperationException("Chromium missing: run scripts/setup-chromium.sh");
        }
    }
}
