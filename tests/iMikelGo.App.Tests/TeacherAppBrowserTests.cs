using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using FluentAssertions;
using System.Globalization;
using IMikelGo.App.Components;
using IMikelGo.Device.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.Playwright;
using Xunit;

namespace IMikelGo.App.Tests;

/// <summary>
/// End to end in real Chromium (Debian's, via Playwright): the device tests' <see cref="World"/> (a real relay over
/// pinned HTTPS and the real school connector on its SQLite store, answering the relay enrollment hand-off with
/// <c>ProcessEnrollmentsAsync</c>), teacher-app instances in-process with their own encrypted vaults, and a signed update
/// feed in a local folder (<see cref="UpdateFeed"/>).
/// </summary>
public sealed class TeacherAppBrowserTests
{
    private const string Pin = "4711";

    [Fact]
    public void German_and_English_texts_have_the_same_keys() =>
        UiText.Keys("en").Order(StringComparer.Ordinal).Should().Equal(UiText.Keys("de").Order(StringComparer.Ordinal));

    [Fact]
    public async Task Two_devices_sync_an_absence_through_the_real_relay_and_three_wrong_pins_wipe_to_demo()
    {
        Skip.IfNoChromium();
        var monday = Monday(DateOnly.FromDateTime(DateTime.Today));
        await using var school = await World.StartAsync(timetable: Timetable(monday.AddDays(-7), monday.AddDays(60),
            """{ "id": "klavier-di", "subject": "Klavier", "teacher": "k-anna-berger", "groups": ["lena"], "room": "raum-101", "weekday": "tuesday", "start": "16:00", "duration": 45 }""",
            """{ "id": "geige-do", "subject": "Violine", "teacher": "k-anna-berger", "groups": ["tom"], "room": "raum-102", "weekday": "thursday", "start": "17:00", "duration": 30 }"""));
        await using var app1 = await StartAppAsync(school, "Laptop");
        await using var app2 = await StartAppAsync(school, "Tablet");
        await using var browser = await Browser.LaunchAsync();
        var laptop = await browser.OpenAsync(app1);
        var tablet = await browser.OpenAsync(app2);

        // Demo mode before enrollment (no update feed configured: said so), then enroll both devices.
        await Expect(laptop.Locator("#demo-banner")).ToBeVisibleAsync();
        await Expect(laptop.Locator("#update-status")).ToContainTextAsync("Kein Update-Feed eingerichtet");
        await Expect(laptop.Locator("#update-prompt")).ToHaveCountAsync(0);
        // The laptop is named on the screen; the tablet keeps the host's default label ("Tablet").
        await EnrollAsync(laptop, school, "Annas Laptop");
        await EnrollAsync(tablet, school);
        await SchoolSyncAsync(school);
        school.Connector.Devices().Select(d => d.Label).Should().BeEquivalentTo(["Annas Laptop", "Tablet"], "the names travelled sealed through the relay hand-off");

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
        await Expect(laptop.Locator("#sync-summary")).ToContainTextAsync(new Regex("Gesendet: [1-9]"));
        await Expect(laptop.Locator("#sync-out")).ToContainTextAsync("lena absent (unexcused)");
        await ShotAsync(laptop, "sync-summary");

        // The school connector syncs the account (as the school server does), then the tablet syncs and sees it.
        await SchoolSyncAsync(school);
        await SyncAsync(tablet);
        await Expect(tablet.Locator("#sync-in")).ToContainTextAsync("lena absent (unexcused)");
        await Expect(tablet.Locator("tr.imk-lesson", new() { HasText = "Klavier" })).ToContainTextAsync("fehlt (unentschuldigt)");

        // A reschedule onto Thursday's violin slot warns of the clash (and is not saved here).
        await tablet.Locator("tr.imk-lesson", new() { HasText = "Klavier" }).Locator(".act-move").ClickAsync();
        await tablet.FillAsync("#move-date", monday.AddDays(3).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        await tablet.FillAsync("#move-time", "17:00");
        await tablet.Locator("#move-time").BlurAsync();
        await Expect(tablet.Locator("#move-clash")).ToContainTextAsync("Violine");
        await tablet.ClickAsync("#action-close");

        // A conflict: offline, the laptop cancels Thursday's violin lesson while the tablet marks it held.
        await laptop.Locator("tr.imk-lesson", new() { HasText = "Violine" }).Locator(".act-cancel").ClickAsync();
        await laptop.ClickAsync("#cancel-submit");
        await tablet.Locator("tr.imk-lesson", new() { HasText = "Violine" }).Locator(".act-held").ClickAsync();
        await tablet.FillAsync("#held-note", "Tonleitern geübt");
        await tablet.ClickAsync("#held-submit");
        await SyncAsync(laptop);
        await SchoolSyncAsync(school);
        await SyncAsync(tablet);
        await Expect(tablet.Locator("#conflicts")).ToContainTextAsync(IMikelGo.Engine.Merge.MergeRules.CancelBeatsHeld);
        await tablet.Locator("#conflicts-title").ScrollIntoViewIfNeededAsync();
        await ShotAsync(tablet, "conflicts");
        // The account's devices: the tablet lists the laptop by the name given at enrollment.
        var laptopId = await laptop.Locator("#devices li", new() { HasText = "dieses Gerät" }).Locator("code").InnerTextAsync();
        await Expect(tablet.Locator("#devices li")).ToHaveCountAsync(2);
        await Expect(tablet.Locator("#devices li", new() { HasText = laptopId })).Not.ToContainTextAsync("dieses Gerät");
        await Expect(tablet.Locator("#devices li", new() { HasText = laptopId })).ToContainTextAsync("Annas Laptop");

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
        Directory.EnumerateFileSystemEntries(Data(school, "Tablet"), "vault.db*", SearchOption.AllDirectories).Should().BeEmpty();
    }

    [Fact]
    public async Task Changing_the_pin_counts_a_wrong_old_pin_and_the_new_pin_unlocks()
    {
        Skip.IfNoChromium();
        await using var school = await World.StartAsync();
        await using var app = await StartAppAsync(school, "Laptop");
        await using var browser = await Browser.LaunchAsync();
        var page = await browser.OpenAsync(app);
        await EnrollAsync(page, school);

        // A typo in the repeated new PIN costs nothing; a wrong old PIN is a strike, said so.
        await page.FillAsync("#changepin-old", Pin);
        await page.FillAsync("#changepin-new", "2580");
        await page.FillAsync("#changepin-new2", "2589");
        await page.ClickAsync("#changepin-submit");
        await Expect(page.Locator("#changepin-status")).ToContainTextAsync("stimmen nicht überein");
        await page.FillAsync("#changepin-old", "9999");
        await page.FillAsync("#changepin-new", "2580");
        await page.FillAsync("#changepin-new2", "2580");
        await page.ClickAsync("#changepin-submit");
        await Expect(page.Locator("#changepin-status")).ToContainTextAsync("Das zählt als Fehlversuch. Verbleibende Versuche: 2 von 3");

        // A too short new PIN is refused by the PIN policy, without a strike.
        await page.FillAsync("#changepin-old", Pin);
        await page.FillAsync("#changepin-new", "12");
        await page.FillAsync("#changepin-new2", "12");
        await page.ClickAsync("#changepin-submit");
        await Expect(page.Locator("#changepin-status")).ToContainTextAsync("kein Fehlversuch gezählt");

        await page.FillAsync("#changepin-old", Pin);
        await page.FillAsync("#changepin-new", "2580");
        await page.FillAsync("#changepin-new2", "2580");
        await ShotAsync(page, "change-pin");
        await page.ClickAsync("#changepin-submit");
        await Expect(page.Locator("#changepin-status")).ToContainTextAsync("PIN geändert");

        // Locked: the old PIN no longer opens the vault, the new one does.
        await page.ClickAsync("#lock");
        await page.FillAsync("#pin", Pin);
        await page.ClickAsync("#pin-submit");
        await Expect(page.Locator("#pin-remaining")).ToContainTextAsync("Falsche PIN.");
        await page.FillAsync("#pin", "2580");
        await page.ClickAsync("#pin-submit");
        await Expect(page.Locator("#sync-button")).ToBeEnabledAsync();
    }

    [Fact]
    public async Task A_signed_newer_release_is_offered_and_later_persists_across_a_restart()
    {
        Skip.IfNoChromium();
        using var feed = new UpdateFeed();
        feed.Publish("1.5.0");
        var data = Path.Combine(feed.Dir, "device");
        string[] updates = ["--update-feed", feed.Feed, "--update-vendor-cert", feed.CertificatePem, "--update-root", Path.Combine(feed.Dir, "install"), "--app-version", "1.4.0"];
        await using var browser = await Browser.LaunchAsync();

        await using (var app = await StartAppAsync(null, "Laptop", updates, data))
        {
            var page = await browser.OpenAsync(app);
            await Expect(page.Locator("#update-prompt")).ToContainTextAsync("Update 1.5.0 verfügbar");
            await Expect(page.Locator("#update-later")).ToBeVisibleAsync();
            await page.Locator("#update-prompt").ScrollIntoViewIfNeededAsync();
            await ShotAsync(page, "update-prompt");
            await page.Locator("#update-later").FocusAsync();
            await page.Keyboard.PressAsync("Enter");
            await Expect(page.Locator("#update-prompt")).ToHaveCountAsync(0);
            await Expect(page.Locator("#update-status")).ToContainTextAsync("Update 1.5.0 verschoben");
        }

        await using (var app = await StartAppAsync(null, "Laptop", updates, data))
        {
            var page = await browser.OpenAsync(app);
            await Expect(page.Locator("#update-status[data-state=Postponed]")).ToContainTextAsync("Update 1.5.0 verschoben");
            await Expect(page.Locator("#update-prompt")).ToHaveCountAsync(0);
        }
    }

    [Fact]
    public async Task A_tampered_manifest_shows_no_prompt_and_says_why_and_an_overdue_security_update_has_no_later()
    {
        Skip.IfNoChromium();
        using var feed = new UpdateFeed();
        feed.Publish("1.5.0");
        var bytes = File.ReadAllBytes(feed.Manifest);
        var at = Array.IndexOf(bytes, (byte)'5');
        bytes[at] = (byte)'9'; // 1.5.0 → 1.9.0 (still canonical JSON; the signature no longer matches)
        File.WriteAllBytes(feed.Manifest, bytes);
        var root = Path.Combine(feed.Dir, "install");
        await using var app = await StartAppAsync(null, "Laptop",
            ["--update-feed", feed.Feed, "--update-vendor-cert", feed.Key.Fingerprint, "--update-root", root, "--app-version", "1.4.0"], Path.Combine(feed.Dir, "device"));
        await using var browser = await Browser.LaunchAsync();
        var page = await browser.OpenAsync(app);
        await Expect(page.Locator("#update-status[data-state=Refused]")).ToContainTextAsync("Update-Prüfung abgelehnt, nichts installiert");
        await Expect(page.Locator("#update-status")).ToContainTextAsync("UntrustedSignature");
        await Expect(page.Locator("#update-prompt")).ToHaveCountAsync(0);
        Directory.Exists(Path.Combine(root, "versions")).Should().BeFalse("nothing of a refused release is installed");

        // The vendor publishes a security update whose grace period is over: install only, no "Later".
        feed.Publish("1.6.0", security: true, grace: TimeSpan.FromHours(1), issuedAt: DateTimeOffset.UtcNow.AddHours(-2));
        await page.ClickAsync("#update-check");
        await Expect(page.Locator("#update-prompt")).ToContainTextAsync("Update 1.6.0 verfügbar");
        await Expect(page.Locator("#update-required")).ToBeVisibleAsync();
        await Expect(page.Locator("#update-later")).ToHaveCountAsync(0);
        await page.ClickAsync("#update-install");
        await Expect(page.Locator("#update-status[data-state=Installed]")).ToContainTextAsync("Update 1.6.0 installiert");
        File.Exists(Path.Combine(root, "versions", "1.6.0", "iMikelGo.App.dll")).Should().BeTrue();
    }

    [Fact]
    public async Task The_update_prompt_waits_while_the_teacher_is_in_a_lesson()
    {
        Skip.IfNoChromium();
        // A lesson of today around the current time (never crossing midnight).
        var now = DateTime.Now;
        var today = DateOnly.FromDateTime(now);
        var weekday = (((int)today.DayOfWeek + 6) % 7) + 1;
        var start = Math.Max(0, now.Hour - 1) * 60;
        await using var school = await World.StartAsync(timetable: Timetable(today.AddDays(-7), today.AddDays(7),
            $$"""{ "id": "jetzt", "subject": "Gitarre", "teacher": "k-anna-berger", "groups": ["lena"], "room": "raum-103", "weekday": {{weekday}}, "start": "{{start / 60:00}}:00", "duration": {{Math.Min(150, (24 * 60) - start)}} }"""));
        using var feed = new UpdateFeed();
        feed.Publish("1.5.0");
        await using var app = await StartAppAsync(school, "Laptop",
            ["--update-feed", feed.Feed, "--update-vendor-cert", feed.Key.Fingerprint, "--update-root", Path.Combine(feed.Dir, "install"), "--app-version", "1.4.0"]);
        await using var browser = await Browser.LaunchAsync();
        var page = await browser.OpenAsync(app);
        await Expect(page.Locator("#update-prompt")).ToBeVisibleAsync(); // demo mode: no lessons of the teacher known
        await EnrollAsync(page, school);
        await SchoolSyncAsync(school);
        await SyncAsync(page);
        await Expect(page.Locator("tr.imk-lesson", new() { HasText = "Gitarre" })).ToHaveCountAsync(1);
        await page.ClickAsync("#update-check");
        await Expect(page.Locator("#update-status[data-state=Postponed]")).ToContainTextAsync("nie während Ihres Unterrichts");
        await Expect(page.Locator("#update-prompt")).ToHaveCountAsync(0);
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);

    private static DateOnly Monday(DateOnly day) => day.AddDays(-(((int)day.DayOfWeek + 6) % 7));

    private static string Data(World school, string label) => school.DeviceOptions(label).DataDirectory;

    /// <summary>A JSON timetable of the world's school (teachers, students, rooms as in <see cref="World"/>) with these lessons.</summary>
    private static string Timetable(DateOnly start, DateOnly end, params string[] lessons) => $$"""
        {
          "school": "Musikschule Lindenberg",
          "term": { "start": "{{start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}}", "end": "{{end.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}}" },
          "teachers": [ { "id": "k-anna-berger", "name": "Anna Berger" } ],
          "groups": [ { "id": "lena", "name": "Lena Vogel" }, { "id": "tom", "name": "Tom Krause" } ],
          "rooms": [ { "id": "raum-101", "name": "Raum 101" }, { "id": "raum-102", "name": "Raum 102" }, { "id": "raum-103", "name": "Raum 103" } ],
          "lessons": [ {{string.Join(", ", lessons)}} ]
        }
        """;

    /// <summary>An app instance; with a world, its device is tuned as the world's devices (data folder, relay retries, enrollment polling).</summary>
    private static Task<WebApplication> StartAppAsync(World? school, string label, string[]? extra = null, string? data = null)
    {
        var device = school?.DeviceOptions(label);
        return TeacherAppHost.StartAsync(["--data", data ?? device!.DataDirectory, "--urls", $"http://127.0.0.1:{FreePort()}", .. extra ?? []], new TeacherAppOptions
        {
            ConfigureDevice = o =>
            {
                o.Pbkdf2Iterations = device?.Pbkdf2Iterations ?? 20_000;
                o.DeviceLabel = label;
                o.ConfigureRelay = device?.ConfigureRelay;
                o.ConfigureRelayEnrollment = device?.ConfigureRelayEnrollment;
            },
        });
    }

    /// <summary>The school connector pushes and pulls the account at the relay (what the school server does on its schedule).</summary>
    private static async Task SchoolSyncAsync(World school) => (await school.SchoolSyncAsync()).Failures.Should().BeEmpty();

    /// <summary>Pastes the QR URI, license key and school password; the school connector answers the relay hand-off meanwhile.</summary>
    private static async Task EnrollAsync(IPage page, World school, string? deviceName = null)
    {
        await page.FillAsync("#enroll-uri", school.EnrollmentUri);
        if (deviceName is not null)
        {
            await page.FillAsync("#enroll-label", deviceName);
        }

        await page.FillAsync("#enroll-license", school.License.Value);
        await page.FillAsync("#enroll-password", school.Password);
        await page.FillAsync("#enroll-pin", Pin);
        await page.FillAsync("#enroll-pin2", Pin);
        await page.ClickAsync("#enroll-submit");
        var enrolled = Expect(page.Locator("#sync-button")).ToBeVisibleAsync(new() { Timeout = 30_000 });
        while (!enrolled.IsCompleted)
        {
            await school.Connector.ProcessEnrollmentsAsync(CancellationToken.None);
            await Task.WhenAny(enrolled, Task.Delay(50));
        }

        try
        {
            await enrolled;
        }
        catch (PlaywrightException ex)
        {
            throw new InvalidOperationException("enrollment failed: " + await page.InnerTextAsync("#enroll-status"), ex);
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

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Chromium via Playwright; each app gets its own page.</summary>
    private sealed class Browser : IAsyncDisposable
    {
        private readonly IPlaywright _playwright;
        private readonly IBrowser _browser;

        private Browser(IPlaywright playwright, IBrowser browser)
        {
            _playwright = playwright;
            _browser = browser;
        }

        public static async Task<Browser> LaunchAsync()
        {
            var playwright = await Playwright.CreateAsync();
            return new Browser(playwright, await playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true }));
        }

        public async Task<IPage> OpenAsync(WebApplication app)
        {
            var page = await _browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
            await page.GotoAsync(app.Urls.First());
            await Assertions.Expect(page.Locator(".imk-app[data-interactive=true]")).ToBeVisibleAsync(new() { Timeout = 20_000 });
            return page;
        }

        public async ValueTask DisposeAsync()
        {
            await _browser.DisposeAsync();
            _playwright.Dispose();
        }
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
