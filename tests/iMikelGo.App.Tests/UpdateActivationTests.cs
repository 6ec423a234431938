using System.Net;
using IMikelGo.Updates;
using Xunit;

namespace IMikelGo.App.Tests;

/// <summary>
/// Update activation safety: the app tells the launcher (<see cref="UpdateLauncher"/>) that it started cleanly once its host
/// listens, so a freshly activated version is kept instead of being rolled back after its start attempts run out.
/// </summary>
public sealed class UpdateActivationTests
{
    [Fact]
    public async Task A_version_started_by_the_launcher_confirms_its_clean_start_once_the_app_listens()
    {
        using var feed = new UpdateFeed();
        var root = Path.Combine(feed.Dir, "install");
        feed.Publish("1.4.0");
        (await feed.InstallAsync(root, "1.3.0")).Error.Code.Should().Be(UpdateErrorCode.None);
        feed.Publish("1.5.0");
        (await feed.InstallAsync(root, "1.4.0")).Error.Code.Should().Be(UpdateErrorCode.None);
        var launcher = new UpdateLauncher(root);

        // The launcher picks the new version; it has not confirmed a clean start yet.
        var launch = launcher.Resolve();
        launch.Should().NotBeNull();
        launch!.Version.Text.Should().Be("1.5.0");
        launch.Confirmed.Should().BeFalse();

        await using (var app = await TeacherAppHost.StartAsync(["--data", Path.Combine(feed.Dir, "device"), "--urls", Url(), "--update-root", root, "--app-version", "1.5.0"]))
        {
            using var http = new HttpClient();
            (await http.GetAsync(new Uri(app.Urls.First()))).StatusCode.Should().Be(HttpStatusCode.OK);
        }

        // Confirmed: the launcher keeps 1.5.0 however often it starts (an unconfirmed version falls back after 3 attempts).
        for (var i = 0; i < launcher.MaxStartAttempts + 1; i++)
        {
            var again = launcher.Resolve();
            again!.Version.Text.Should().Be("1.5.0");
            again.Confirmed.Should().BeTrue();
        }
    }

    [Fact]
    public async Task Without_the_confirmation_the_launcher_falls_back_and_an_app_outside_an_install_confirms_nothing()
    {
        using var feed = new UpdateFeed();
        var root = Path.Combine(feed.Dir, "install");
        feed.Publish("1.4.0");
        (await feed.InstallAsync(root, "1.3.0")).Error.Code.Should().Be(UpdateErrorCode.None);
        var launcher = new UpdateLauncher(root);
        launcher.ConfirmStarted(SemanticVersion.Parse("1.4.0"));
        feed.Publish("1.5.0");
        (await feed.InstallAsync(root, "1.4.0")).Error.Code.Should().Be(UpdateErrorCode.None);

        // An app that runs as another version (not from this install) confirms nothing for 1.5.0 ...
        for (var i = 0; i < launcher.MaxStartAttempts; i++)
        {
            launcher.Resolve()!.Version.Text.Should().Be("1.5.0");
            await using var app = await TeacherAppHost.StartAsync(["--data", Path.Combine(feed.Dir, "device"), "--urls", Url(), "--update-root", root, "--app-version", "9.9.9"]);
        }

        // ... so the launcher gives up on 1.5.0 and starts the previous, confirmed version.
        var fallback = launcher.Resolve();
        fallback!.Version.Text.Should().Be("1.4.0");
        fallback.Confirmed.Should().BeTrue();
    }

    private static string Url() => $"http://127.0.0.1:{TeacherAppBrowserTests.FreePort()}";
}
