using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using IMikelGo.Relay;
using IMikelGo.Updates;

namespace IMikelGo.Cli;

/// <summary><c>imikelgo release …</c> (vendor) and <c>imikelgo update …</c> (device). Exit codes: 0 ok, 2 usage or unreadable file, 5 update refused.</summary>
internal static class UpdateCommands
{
    public const int ExitRefused = 5;

    public static Command Release(TextWriter output, TextWriter error)
    {
        var release = new Command("release", "Vendor: create the signing key, sign manifests, publish a static update feed, rotate the key. See docs/updates.md.");
        release.Subcommands.Add(Keygen(output, error));
        release.Subcommands.Add(Sign(output, error));
        release.Subcommands.Add(Publish(output, error));
        release.Subcommands.Add(Rotate(output, error));
        return release;
    }

    public static Command Update(TextWriter output, TextWriter error, UpdateTerminal? terminal = null)
    {
        terminal ??= UpdateTerminal.Console;
        var update = new Command("update", "Device: check for, install or postpone a signed update from a feed URL or folder. See docs/updates.md.");
        update.Subcommands.Add(DeviceCommand("check", "Verify the feed and say whether a newer version is available; on a terminal ask 'Install now? [y/N]' (--yes installs, --json never asks).", output, error, terminal));
        update.Subcommands.Add(DeviceCommand("install", "Check, download into staging, verify every file and switch atomically (restart to run it).", output, error, terminal));
        update.Subcommands.Add(DeviceCommand("postpone", "Postpone the available update (refused for a security update past its grace period).", output, error, terminal));
        return update;
    }

    private static Option<string> KeyOption() => new("--key") { Description = "Vendor key: .pfx/.p12, or .pem with certificate and private key.", Required = true };

    private static Option<string?> PasswordOption() => new("--password") { Description = "Password of the key file (or env IMIKELGO_KEY_PASSWORD)." };

    private static string? Password(ParseResult r, Option<string?> o) => r.GetValue(o) ?? Environment.GetEnvironmentVariable("IMIKELGO_KEY_PASSWORD");

    private static Command Keygen(TextWriter output, TextWriter error)
    {
        var subject = new Option<string>("--subject") { Description = "Certificate subject.", DefaultValueFactory = _ => "CN=iMikelGo Releases, O=iMikelGo" };
        var years = new Option<int>("--years") { Description = "Validity in years.", DefaultValueFactory = _ => 10 };
        var outPrefix = new Option<string>("--out") { Description = "Writes PREFIX.pfx (key, keep offline), PREFIX.pem (key+cert) and PREFIX.crt.pem (certificate only).", Required = true };
        var password = PasswordOption();
        var command = new Command("keygen", "Create a vendor signing key (ECDSA P-256, self-signed certificate) and print the fingerprint apps pin.") { subject, years, outPrefix, password };
        command.SetAction(r => Guard(error, () =>
        {
            var prefix = r.GetValue(outPrefix)!;
            // Replacing the key the apps pin would strand them: without the old key not even 'release rotate' can move them on.
            if (new[] { ".pfx", ".pem", ".crt.pem" }.Select(e => prefix + e).FirstOrDefault(File.Exists) is { } existing)
            {
                error.WriteLine($"error: {existing} already exists: keygen never replaces a vendor key (apps pin it; 'release rotate' moves them to a new one); choose another --out");
                return 2;
            }

            using var key = VendorKey.Create(r.GetValue(subject)!, DateTimeOffset.UtcNow, TimeSpan.FromDays(365.25 * r.GetValue(years)));
            WritePrivate(prefix + ".pfx", key.ExportPfx(Password(r, password)));
            WritePrivate(prefix + ".pem", Encoding.UTF8.GetBytes(key.ExportPem()));
            File.WriteAllText(prefix + ".crt.pem", key.Certificate.ExportCertificatePem() + "\n");
            output.WriteLine($"vendor certificate sha256 (pin this): {key.Fingerprint}");
            return 0;
        }));
        return command;
    }

    /// <summary>Writes a private key readable by its owner only: the umask would leave the vendor's signing key readable by every
    /// user of the build machine.</summary>
    private static void WritePrivate(string path, byte[] content)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        stream.Write(content);
    }

    private static Command Sign(TextWriter output, TextWriter error)
    {
        var manifest = new Option<FileInfo>("--manifest") { Description = "The manifest (canonical JSON).", Required = true };
        var outFile = new Option<FileInfo>("--out") { Description = "The detached CMS signature (DER), e.g. manifest.json.p7s.", Required = true };
        var key = KeyOption();
        var password = PasswordOption();
        var command = new Command("sign", "Sign a manifest as detached CMS SignedData (verify with: openssl cms -verify -binary -inform DER -in M.p7s -content M -CAfile vendor.crt.pem -purpose any).")
        {
            manifest, key, password, outFile,
        };
        command.SetAction(r => Guard(error, () =>
        {
            var bytes = File.ReadAllBytes(r.GetValue(manifest)!.FullName);
            if (!ReleaseManifest.TryParse(bytes, out var m, out var e))
            {
                error.WriteLine($"error: {e.Message}");
                return 2;
            }

            using var k = VendorKey.Load(r.GetValue(key)!, Password(r, password));
            File.WriteAllBytes(r.GetValue(outFile)!.FullName, k.Sign(bytes));
            output.WriteLine($"signed {m.Channel} {m.Version} seq {m.Sequence} with {k.Fingerprint}");
            return 0;
        }));
        return command;
    }

    private static Command Publish(TextWriter output, TextWriter error)
    {
        var feed = new Option<DirectoryInfo>("--feed") { Description = "The static feed folder to write (serve it over HTTPS).", Required = true };
        var files = new Option<DirectoryInfo>("--files") { Description = "The release's files.", Required = true };
        var version = new Option<string>("--version") { Description = "SemVer version.", Required = true };
        var channel = new Option<string>("--channel") { Description = "Channel.", DefaultValueFactory = _ => "stable" };
        var minimum = new Option<string?>("--minimum") { Description = "Minimum supported version (default: the version itself is not required; 0.0.0)." };
        var security = new Option<bool>("--security") { Description = "Mark as a security update." };
        var grace = new Option<int>("--grace-hours") { Description = "Security grace period in hours.", DefaultValueFactory = _ => 72 };
        var days = new Option<int>("--valid-days") { Description = "Manifest validity (freeze protection); re-publish before it ends.", DefaultValueFactory = _ => 30 };
        var sequence = new Option<long?>("--sequence") { Description = "Manifest sequence (default: the feed's current + 1)." };
        var key = KeyOption();
        var password = PasswordOption();
        var command = new Command("publish", "Build, sign and publish a release: files/<version>/…, <channel>/manifest.json, manifest.json.p7s, feed.json.")
        {
            feed, files, version, channel, minimum, security, grace, days, sequence, key, password,
        };
        command.SetAction(r => Guard(error, () =>
        {
            if (!SemanticVersion.TryParse(r.GetValue(version), out var v) || !SemanticVersion.TryParse(r.GetValue(minimum) ?? "0.0.0", out var min))
            {
                error.WriteLine("error: --version and --minimum must be SemVer 2.0.0");
                return 2;
            }

            var feedDir = r.GetValue(feed)!.FullName;
            var ch = r.GetValue(channel)!;
            using var k = VendorKey.Load(r.GetValue(key)!, Password(r, password));
            var m = ReleasePublisher.CreateManifest(r.GetValue(files)!.FullName, v, ch, r.GetValue(sequence) ?? ReleasePublisher.NextSequence(feedDir, ch), min,
                r.GetValue(security), r.GetValue(security) ? TimeSpan.FromHours(r.GetValue(grace)) : TimeSpan.Zero, DateTimeOffset.UtcNow,
                TimeSpan.FromDays(r.GetValue(days)));
            ReleasePublisher.Publish(feedDir, m, r.GetValue(files)!.FullName, k);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"published {ch} {m.Version} seq {m.Sequence}: {m.Files.Count} files, {m.Files.Sum(f => f.Size)} bytes, expires {m.ExpiresAt:u}, signed by {k.Fingerprint}"));
            return 0;
        }));
        return command;
    }

    private static Command Rotate(TextWriter output, TextWriter error)
    {
        var feed = new Option<DirectoryInfo>("--feed") { Description = "The feed folder.", Required = true };
        var key = KeyOption();
        var password = PasswordOption();
        var next = new Option<string>("--new-key") { Description = "The new vendor key (.pfx or .pem).", Required = true };
        var nextPassword = new Option<string?>("--new-password") { Description = "Password of the new key file." };
        var command = new Command("rotate", "Publish keys/rotation-NNNN.json signed by the current key and cross-signed by the new key; then publish with the new key.")
        {
            feed, key, password, next, nextPassword,
        };
        command.SetAction(r => Guard(error, () =>
        {
            using var oldKey = VendorKey.Load(r.GetValue(key)!, Password(r, password));
            using var newKey = VendorKey.Load(r.GetValue(next)!, r.GetValue(nextPassword));
            var index = ReleasePublisher.PublishRotation(r.GetValue(feed)!.FullName, oldKey, newKey, DateTimeOffset.UtcNow);
            output.WriteLine($"rotation {index}: {oldKey.Fingerprint} -> {newKey.Fingerprint}");
            return 0;
        }));
        return command;
    }

    private static Command DeviceCommand(string name, string description, TextWriter output, TextWriter error, UpdateTerminal terminal)
    {
        var feed = new Option<string>("--feed") { Description = "Feed: https URL (e.g. https://relay:8443/updates) or folder.", Required = true };
        var feedPin = new Option<string?>("--feed-pin") { Description = "SHA-256 (hex) of the feed host's TLS certificate (e.g. the relay's fingerprint); without it the system trust store decides." };
        var root = new Option<DirectoryInfo>("--root") { Description = "Install root (current, versions/, staging/, state/).", Required = true };
        var pin = new Option<string>("--pin") { Description = "SHA-256 (hex) of the pinned vendor certificate, or a PEM certificate file.", Required = true };
        var channel = new Option<string>("--channel") { Description = "Channel.", DefaultValueFactory = _ => "stable" };
        var current = new Option<string?>("--current") { Description = "Running version (default: the install root's current pointer)." };
        var hours = new Option<double>("--hours") { Description = "How long to postpone.", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (never prompts)." };
        var yes = new Option<bool>("--yes") { Description = "Install an available update without asking." };
        var command = new Command(name, description) { feed, feedPin, root, pin, channel, current };
        if (name == "postpone")
        {
            command.Options.Add(hours);
        }
        else if (name == "check")
        {
            command.Options.Add(json);
            command.Options.Add(yes);
        }

        command.SetAction(async (r, ct) =>
        {
            try
            {
                var rootDir = r.GetValue(root)!.FullName;
                var running = r.GetValue(current) ?? ReadCurrent(rootDir) ?? "0.0.0";
                using var http = FeedClient(r.GetValue(feedPin));
                var updater = new Updater(new UpdaterOptions
                {
                    InstallRoot = rootDir,
                    Channel = r.GetValue(channel)!,
                    PinnedVendorCertificate = VendorPin(r.GetValue(pin)!),
                    CurrentVersion = SemanticVersion.Parse(running),
                }, Source(r.GetValue(feed)!, http));
                var deferral = new UpdateDeferral(rootDir, BusySchedule.Never);
                return name switch
                {
                    "install" => Report(await updater.InstallAsync(ct).ConfigureAwait(false), running, output, error),
                    "postpone" => Postpone(await updater.CheckAsync(ct).ConfigureAwait(false), deferral, TimeSpan.FromHours(r.GetValue(hours)), running, output, error),
                    _ => await CheckAsync(updater, deferral, running, r.GetValue(json), r.GetValue(yes), terminal, output, error, ct).ConfigureAwait(false),
                };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException or JsonException
                                          or System.Security.Cryptography.CryptographicException)
            {
                error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
    }

    private static string VendorPin(string value)
    {
        if (!File.Exists(value))
        {
            // Said here in the option's terms: the updater's own check names its internal setting and parameter.
            return value.Length == 64 && value.All(Uri.IsHexDigit)
                ? value
                : throw new ArgumentException($"--pin must be 64 hex digits (SHA-256 of the vendor certificate) or a PEM certificate file; '{value}' is neither");
        }

        using var cert = X509Certificate2.CreateFromPem(File.ReadAllText(value));
        return Convert.ToHexStringLower(SHA256.HashData(cert.RawData));
    }

    /// <summary>An HTTP client that accepts exactly the pinned TLS certificate when <paramref name="tlsPin"/> is given (the relay's
    /// self-signed certificate), else the system trust store.</summary>
    private static HttpClient FeedClient(string? tlsPin)
    {
        if (tlsPin is null)
        {
            return new HttpClient();
        }

        if (tlsPin.Length != 64 || !tlsPin.All(Uri.IsHexDigit))
        {
            throw new ArgumentException("--feed-pin must be 64 hex digits (SHA-256 of the feed host's certificate).");
        }

        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
                certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), tlsPin, StringComparison.OrdinalIgnoreCase),
        };
        return new HttpClient(handler);
    }

    private static IUpdateSource Source(string feed, HttpClient http) =>
        Uri.TryCreate(feed, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http" ? new HttpUpdateSource(http, uri) : new FolderUpdateSource(feed);

    /// <summary><c>update check</c>: report; then install with --yes, or ask on a terminal unless postponed (never with --json).</summary>
    private static async Task<int> CheckAsync(Updater updater, UpdateDeferral deferral, string running, bool json, bool yes, UpdateTerminal terminal,
        TextWriter output, TextWriter error, CancellationToken ct)
    {
        var result = await updater.CheckAsync(ct).ConfigureAwait(false);
        var decision = result.Update is { } available ? deferral.Evaluate(available) : null;
        UpdateResult? installed = null;
        if (json)
        {
            if (yes && result.Update is not null)
            {
                installed = await DownloadAndActivateAsync(updater, result.Update, ct).ConfigureAwait(false);
            }

            output.WriteLine(CheckJson(result, decision, installed, running));
            return (installed ?? result).Succeeded || result.Error.Code == UpdateErrorCode.UpToDate ? 0 : ExitRefused;
        }

        if (result.Update is null)
        {
            return Report(result, running, output, error);
        }

        var u = result.Update;
        output.WriteLine($"update available: {running} -> {u.Manifest.Version}{Tag(u)} ({u.Manifest.Files.Count} files, {u.Manifest.Files.Sum(f => f.Size)} bytes, seq {u.Manifest.Sequence})" +
            (u.SecurityDeadline is { } dl && decision!.CanPostpone ? $"; security update, may be postponed until {dl:u}" : string.Empty));
        switch (decision!.Action)
        {
            case PromptAction.AskLater:
                output.WriteLine($"{decision.Reason}; asking again at {decision.AskAt:u}");
                break;
            case PromptAction.InstallRequired:
                output.WriteLine($"this update can no longer be postponed: {decision.Reason}");
                break;
        }

        var install = yes;
        if (!yes && terminal.Interactive && decision.Action != PromptAction.AskLater)
        {
            output.Write("Install now? [y/N] ");
            output.Flush();
            var answer = (await terminal.Input.ReadLineAsync(ct).ConfigureAwait(false))?.Trim();
            install = string.Equals(answer, "y", StringComparison.OrdinalIgnoreCase) || string.Equals(answer, "yes", StringComparison.OrdinalIgnoreCase);
        }

        if (install)
        {
            return Report(await DownloadAndActivateAsync(updater, u, ct).ConfigureAwait(false), running, output, error);
        }

        output.WriteLine(decision.CanPostpone
            ? "not installed: 'imikelgo update install' installs it, 'imikelgo update postpone' postpones it"
            : "not installed: 'imikelgo update install' installs it (it cannot be postponed)");
        return 0;
    }

    private static async Task<UpdateResult> DownloadAndActivateAsync(Updater updater, AvailableUpdate update, CancellationToken ct)
    {
        var download = await updater.DownloadAsync(update, ct).ConfigureAwait(false);
        return download.Succeeded ? updater.Activate(update) : download;
    }

    private static int Postpone(UpdateResult result, UpdateDeferral deferral, TimeSpan duration, string running, TextWriter output, TextWriter error)
    {
        if (result.Update is not { } u)
        {
            return Report(result, running, output, error);
        }

        if (!deferral.TryPostpone(u, duration, out var d))
        {
            error.WriteLine($"cannot postpone {u.Manifest.Version}{Tag(u)}: {d.Reason}; it can no longer be postponed, run 'imikelgo update install'");
            return ExitRefused;
        }

        output.WriteLine($"postponed {u.Manifest.Version}{Tag(u)}: {d.Reason}");
        return 0;
    }

    /// <summary>Prints a refusal, "up to date", or an activated install.</summary>
    private static int Report(UpdateResult result, string running, TextWriter output, TextWriter error)
    {
        if (result.Succeeded)
        {
            output.WriteLine($"installed {result.Update!.Manifest.Version}{Tag(result.Update)} (was {running}); restart to run it; it becomes permanent once it starts cleanly");
            return 0;
        }

        if (result.Error.Code == UpdateErrorCode.UpToDate)
        {
            output.WriteLine($"up to date: {result.Error.Message}");
            return 0;
        }

        error.WriteLine($"REFUSED ({result.Error.Code}): {result.Error.Message}");
        if (result.Error.Message.Contains(nameof(System.Security.Authentication.AuthenticationException), StringComparison.Ordinal))
        {
            // The usual cause: a relay's own certificate, which no system trust store knows.
            error.WriteLine("hint: the feed host's TLS certificate is not trusted; for a relay, pass its fingerprint with --feed-pin (printed by 'relay serve').");
        }

        return ExitRefused;
    }

    private static string Tag(AvailableUpdate u) => (u.Manifest.Security ? " [security]" : string.Empty) + (u.Required ? " [required]" : string.Empty);

    private static string CheckJson(UpdateResult check, PromptDecision? decision, UpdateResult? installed, string running)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("status", check.Update is null
                ? check.Error.Code == UpdateErrorCode.UpToDate ? "up-to-date" : "refused"
                : installed is null ? "available" : installed.Succeeded ? "installed" : "refused");
            w.WriteString("running", running);
            var error = installed is { Succeeded: false } ? installed.Error : check.Error;
            if (error.Code != UpdateErrorCode.None)
            {
                w.WriteString("code", error.Code.ToString());
                w.WriteString("message", error.Message);
            }

            if (check.Update is { } u)
            {
                var m = u.Manifest;
                w.WriteString("version", m.Version.Text);
                w.WriteString("channel", m.Channel);
                w.WriteNumber("sequence", m.Sequence);
                w.WriteBoolean("security", m.Security);
                w.WriteBoolean("required", u.Required);
                w.WriteNumber("files", m.Files.Count);
                w.WriteNumber("bytes", m.Files.Sum(f => f.Size));
                WriteTime(w, "securityDeadline", u.SecurityDeadline);
                w.WriteString("prompt", decision!.Action switch
                {
                    PromptAction.AskLater => "ask-later",
                    PromptAction.InstallRequired => "install-required",
                    _ => "ask-now",
                });
                w.WriteBoolean("canPostpone", decision.CanPostpone);
                WriteTime(w, "askAt", decision.AskAt);
                w.WriteString("reason", decision.Reason);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteTime(Utf8JsonWriter w, string name, DateTimeOffset? value)
    {
        if (value is { } v)
        {
            w.WriteString(name, v.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static string? ReadCurrent(string root)
    {
        var path = Path.Combine(root, "current");
        if (!File.Exists(path))
        {
            return null;
        }

        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.GetProperty("version").GetString();
    }

    private static int Guard(TextWriter error, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException
                                      or System.Security.Cryptography.CryptographicException)
        {
            error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}

/// <summary>Where <c>imikelgo update check</c> may ask "Install now?": only when both stdin and stdout are a terminal.</summary>
/// <param name="Input">The answers.</param>
/// <param name="Interactive">Whether to ask at all.</param>
internal sealed record UpdateTerminal(TextReader Input, bool Interactive)
{
    public static UpdateTerminal Console => new(System.Console.In, !System.Console.IsInputRedirected && !System.Console.IsOutputRedirected);
}
