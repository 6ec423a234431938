using System.CommandLine;
using System.Text.Json;
using FluentAssertions;
using IMikelGo.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace IMikelGo.Cli.Tests;

/// <summary>The real relay (HTTPS, generated pinned certificate) serving a feed folder that each test points at its own.</summary>
public sealed class UpdateRelayFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public RelayOptions Options { get; } = new();

    public string DataDirectory { get; } = Directory.CreateTempSubdirectory("imikelgo-cli-relay-").FullName;

    public string FeedUrl { get; private set; } = string.Empty;

    public string Fingerprint { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        Options.DataDirectory = DataDirectory;
        Options.Store = RelayStoreKind.InMemory;
        Options.Urls.Add("https://127.0.0.1:0");
        var builder = RelayHost.CreateBuilder(Options);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        _app = RelayHost.Build(builder);
        await _app.StartAsync();
        FeedUrl = new Uri(new Uri(_app.Urls.First()), "/updates/").AbsoluteUri;
        Fingerprint = _app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        Directory.Delete(DataDirectory, recursive: true);
    }
}

/// <summary>
/// <c>imikelgo release …</c> and <c>imikelgo update …</c> end to end: a vendor key, signed releases published into a feed folder,
/// served by the relay over HTTPS, checked, postponed and installed by a device install root.
/// </summary>
public sealed class UpdateCliTests : IClassFixture<UpdateRelayFixture>, IDisposable
{
    private static readonly UpdateTerminal NoTerminal = new(TextReader.Null, Interactive: false);
    private readonly UpdateRelayFixture _relay;
    private readonly string _dir = Directory.CreateTempSubdirectory("imikelgo-cli-update-").FullName;

    public UpdateCliTests(UpdateRelayFixture relay)
    {
        _relay = relay;
        relay.Options.UpdateFeedDirectory = Feed;
    }

    private string Feed => Path.Combine(_dir, "feed");

    private string Root => Path.Combine(_dir, "device");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(UpdateTerminal terminal, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var root = new RootCommand { UpdateCommands.Release(output, error), UpdateCommands.Update(output, error, terminal) };
        var parsed = root.Parse(args);
        parsed.Errors.Should().BeEmpty(string.Join(' ', args));
        var code = parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        return (code, output.ToString(), error.ToString());
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => Run(NoTerminal, args);

    /// <summary>Creates a vendor key; returns its pin (the fingerprint printed for the app build).</summary>
    private string Keygen(string name)
    {
        var (code, output, error) = Run("release", "keygen", "--out", Path.Combine(_dir, name));
        code.Should().Be(0, error);
        var pin = output.Trim().Split(' ')[^1];
        pin.Should().MatchRegex("^[0-9a-f]{64}$");
        return pin;
    }

    private string Package(string version)
    {
        var dir = Path.Combine(_dir, "pkg-" + version);
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        File.WriteAllText(Path.Combine(dir, "imikelgo.dll"), $"app {version} " + new string('x', 4000));
        File.WriteAllText(Path.Combine(dir, "data", "sounds.bin"), $"sounds {version}");
        return dir;
    }

    private void Publish(string version, string key = "vendor", params string[] extra)
    {
        var (code, output, error) = Run(["release", "publish", "--feed", Feed, "--files", Package(version), "--version", version, "--key", Path.Combine(_dir, key + ".pfx"), .. extra]);
        code.Should().Be(0, error);
        output.Should().Contain($"published stable {version}");
    }

    private string[] Device(string command, string pin, params string[] extra) =>
        ["update", command, "--feed", _relay.FeedUrl, "--feed-pin", _relay.Fingerprint, "--root", Root, "--pin", pin, .. extra];

    private (string Version, string? Previous) Current()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Root, "current")));
        return (doc.RootElement.GetProperty("version").GetString()!, doc.RootElement.GetProperty("previous").GetString());
    }

    /// <summary>Publishes and installs <paramref name="version"/> as the running version.</summary>
    private void Installed(string pin, string version)
    {
        Publish(version);
        var (code, output, error) = Run(Device("install", pin));
        code.Should().Be(0, error);
        output.Should().Contain($"installed {version}");
    }

    [Fact]
    public void Keygen_sign_publish_check_postpone_and_install_through_the_relay()
    {
        var pin = Keygen("vendor");
        Installed(pin, "1.0.0");
        Publish("1.1.0");

        // The vendor re-signs the published manifest with `release sign` (here with the PEM key): the device accepts that signature.
        var manifest = Path.Combine(Feed, "stable", "manifest.json");
        var sign = Run("release", "sign", "--manifest", manifest, "--key", Path.Combine(_dir, "vendor.pem"), "--out", manifest + ".p7s");
        sign.Code.Should().Be(0, sign.Err);
        sign.Out.Should().Contain("signed stable 1.1.0 seq 2");

        var check = Run(Device("check", pin, "--json"));
        check.Code.Should().Be(0, check.Err);
        var json = JsonDocument.Parse(check.Out).RootElement;
        json.GetProperty("status").GetString().Should().Be("available");
        json.GetProperty("running").GetString().Should().Be("1.0.0");
        json.GetProperty("version").GetString().Should().Be("1.1.0");
        json.GetProperty("prompt").GetString().Should().Be("ask-now");

        var postpone = Run(Device("postpone", pin, "--hours", "2"));
        postpone.Code.Should().Be(0, postpone.Err);
        postpone.Out.Should().Contain("postponed 1.1.0: postponed until");

        var postponed = Run(Device("check", pin));
        postponed.Code.Should().Be(0, postponed.Err);
        postponed.Out.Should().Contain("update available: 1.0.0 -> 1.1.0").And.Contain("postponed until").And.Contain("asking again at");
        var again = JsonDocument.Parse(Run(Device("check", pin, "--json")).Out).RootElement;
        again.GetProperty("prompt").GetString().Should().Be("ask-later");
        again.GetProperty("askAt").GetString().Should().NotBeNullOrEmpty();

        var install = Run(Device("install", pin));
        install.Code.Should().Be(0, install.Err);
        install.Out.Should().Contain("installed 1.1.0 (was 1.0.0)");
        Current().Should().Be(("1.1.0", "1.0.0"));
        Directory.Exists(Path.Combine(Root, "versions", "1.0.0")).Should().BeTrue("the previous version is kept");
        Directory.Exists(Path.Combine(Root, "versions", "1.1.0")).Should().BeTrue();
        Run(Device("check", pin)).Out.Should().Contain("up to date");
    }

    [Fact]
    public void A_relay_feed_without_its_certificate_pin_is_refused_naming_the_tls_cause_and_the_option_that_fixes_it()
    {
        var pin = Keygen("vendor");
        Installed(pin, "1.0.0");
        Publish("1.1.0");

        var check = Run("update", "check", "--feed", _relay.FeedUrl, "--root", Root, "--pin", pin);

        check.Code.Should().Be(UpdateCommands.ExitRefused);
        check.Err.Should().Contain("AuthenticationException", "the cause, not only HttpClient's 'see inner exception'")
            .And.Contain("hint:").And.Contain("--feed-pin");
        Current().Version.Should().Be("1.0.0", "nothing was installed");
    }

    [Fact]
    public void Keygen_writes_the_private_key_files_readable_by_their_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        Keygen("vendor");
        const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        File.GetUnixFileMode(Path.Combine(_dir, "vendor.pfx")).Should().Be(ownerOnly);
        File.GetUnixFileMode(Path.Combine(_dir, "vendor.pem")).Should().Be(ownerOnly, "it holds the private key unencrypted");
        File.GetUnixFileMode(Path.Combine(_dir, "vendor.crt.pem")).HasFlag(UnixFileMode.OtherRead).Should().BeTrue("the certificate is public");
    }

    [Fact]
    public void Keygen_never_replaces_an_existing_vendor_key()
    {
        var pin = Keygen("vendor");
        var pfx = File.ReadAllBytes(Path.Combine(_dir, "vendor.pfx"));

        var again = Run("release", "keygen", "--out", Path.Combine(_dir, "vendor"));

        again.Code.Should().Be(2);
        again.Err.Should().Contain("vendor.pfx already exists").And.Contain("release rotate");
        File.ReadAllBytes(Path.Combine(_dir, "vendor.pfx")).Should().Equal(pfx);
        Installed(pin, "1.0.0");
    }

    [Fact]
    public void A_bad_vendor_pin_is_a_usage_error_named_by_its_option()
    {
        var (code, _, error) = Run(Device("check", "00" + Keygen("vendor")));

        code.Should().Be(2);
        error.Should().StartWith("error: --pin must be 64 hex digits").And.NotContain("PinnedVendorCertificate").And.NotContain("Parameter");
    }

    [Fact]
    public void A_downgrade_manifest_is_refused_with_a_clear_message_and_a_non_zero_exit()
    {
        var pin = Keygen("vendor");
        Installed(pin, "1.1.0");
        Publish("1.0.5", "vendor", "--sequence", "5"); // validly signed, newer sequence, older version

        var (code, output, error) = Run(Device("check", pin));

        code.Should().Be(UpdateCommands.ExitRefused);
        output.Should().BeEmpty();
        error.Should().Contain("REFUSED (Rollback)").And.Contain("1.0.5").And.Contain("not newer than running 1.1.0");
        Run(Device("install", pin)).Code.Should().Be(UpdateCommands.ExitRefused);
        Current().Version.Should().Be("1.1.0");
    }

    [Fact]
    public void A_tampered_package_is_refused_and_the_running_version_stays()
    {
        var pin = Keygen("vendor");
        Installed(pin, "1.0.0");
        Publish("1.1.0");
        var file = Path.Combine(Feed, "files", "1.1.0", "imikelgo.dll");
        var bytes = File.ReadAllBytes(file);
        bytes[100] ^= 1;
        File.WriteAllBytes(file, bytes);

        var (code, _, error) = Run(Device("install", pin));

        code.Should().Be(UpdateCommands.ExitRefused);
        error.Should().Contain("REFUSED (PackageMismatch)").And.Contain("imikelgo.dll");
        Current().Version.Should().Be("1.0.0");
        Directory.Exists(Path.Combine(Root, "versions", "1.1.0")).Should().BeFalse();
    }

    [Fact]
    public void After_release_rotate_the_new_key_is_accepted_and_the_retired_key_refused()
    {
        var pin = Keygen("vendor");
        Keygen("vendor2");
        Installed(pin, "1.0.0");

        var rotate = Run("release", "rotate", "--feed", Feed, "--key", Path.Combine(_dir, "vendor.pfx"), "--new-key", Path.Combine(_dir, "vendor2.pfx"));
        rotate.Code.Should().Be(0, rotate.Err);
        rotate.Out.Should().StartWith("rotation 1:");
        Publish("1.1.0", "vendor2");

        var accepted = Run(Device("install", pin)); // the device still pins the old certificate, as the installed build does
        accepted.Code.Should().Be(0, accepted.Err);
        Current().Version.Should().Be("1.1.0");

        Publish("1.2.0", "vendor");
        var (code, _, error) = Run(Device("check", pin, "--current", "1.1.0"));
        code.Should().Be(UpdateCommands.ExitRefused);
        error.Should().Contain("REFUSED (UntrustedSignature)");
        Current().Version.Should().Be("1.1.0");
    }

    [Fact]
    public void On_a_terminal_check_asks_install_now_and_installs_only_on_yes()
    {
        var pin = Keygen("vendor");
        Installed(pin, "1.0.0");
        Publish("1.1.0");

        var no = Run(new UpdateTerminal(new StringReader("\n"), Interactive: true), Device("check", pin));
        no.Code.Should().Be(0, no.Err);
        no.Out.Should().Contain("Install now? [y/N]").And.Contain("not installed");
        Current().Version.Should().Be("1.0.0");

        var json = Run(new UpdateTerminal(new StringReader("y\n"), Interactive: true), Device("check", pin, "--json"));
        json.Out.Should().NotContain("Install now?", "--json never prompts");
        JsonDocument.Parse(json.Out).RootElement.GetProperty("status").GetString().Should().Be("available");
        Current().Version.Should().Be("1.0.0");

        var quiet = Run(Device("check", pin));
        quiet.Out.Should().NotContain("Install now?", "without a terminal nothing is asked");

        var yes = Run(new UpdateTerminal(new StringReader("y\n"), Interactive: true), Device("check", pin));
        yes.Code.Should().Be(0, yes.Err);
        yes.Out.Should().Contain("Install now? [y/N]").And.Contain("installed 1.1.0 (was 1.0.0)");
        Current().Should().Be(("1.1.0", "1.0.0"));
    }

    [Fact]
    public void Check_yes_installs_without_asking()
    {
        var pin = Keygen("vendor");
        Installed(pin, "1.0.0");
        Publish("1.1.0");

        var (code, output, error) = Run(Device("check", pin, "--yes"));

        code.Should().Be(0, error);
        output.Should().NotContain("Install now?").And.Contain("installed 1.1.0");
        Current().Version.Should().Be("1.1.0");
    }

    [Fact]
    public void A_security_update_past_its_grace_period_cannot_be_postponed_and_says_so()
    {
        var pin = Keygen("vendor");
        Installed(pin, "1.0.0");
        Publish("1.1.0", "vendor", "--security", "--grace-hours", "0");

        var check = Run(new UpdateTerminal(new StringReader("n\n"), Interactive: true), Device("check", pin));
        check.Code.Should().Be(0, check.Err);
        check.Out.Should().Contain("[security]").And.Contain("can no longer be postponed").And.Contain("Install now? [y/N]").And.Contain("it cannot be postponed");

        var (code, _, error) = Run(Device("postpone", pin));
        code.Should().Be(UpdateCommands.ExitRefused);
        error.Should().Contain("cannot postpone 1.1.0").And.Contain("grace period ended").And.Contain("can no longer be postponed");
        Current().Version.Should().Be("1.0.0");
        JsonDocument.Parse(Run(Device("check", pin, "--json")).Out).RootElement.GetProperty("canPostpone").GetBoolean().Should().BeFalse();
    }

    [Fact]
    public void The_commands_are_registered_and_relay_serve_takes_an_update_feed()
    {
        var pin = Keygen("vendor");
        Publish("1.0.0");

        var (code, output, error) = CliTests.Invoke(Device("check", pin, "--json"));
        code.Should().Be(0, error);
        JsonDocument.Parse(output).RootElement.GetProperty("version").GetString().Should().Be("1.0.0");
        CliTests.Invoke("relay", "serve", "--help").Out.Should().Contain("--update-feed");
    }
}
