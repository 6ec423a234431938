using System.CommandLine;
using System.Globalization;
using System.Text.Json;
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

    public static Command Update(TextWriter output, TextWriter error)
    {
        var update = new Command("update", "Device: check for, install or postpone a signed update from a feed URL or folder. See docs/updates.md.");
        update.Subcommands.Add(DeviceCommand("check", "Verify the feed and say whether a newer version is available (nothing is downloaded).", output, error));
        update.Subcommands.Add(DeviceCommand("install", "Check, download into staging, verify every file and switch atomically (restart to run it).", output, error));
        update.Subcommands.Add(DeviceCommand("postpone", "Postpone the available update (refused for a security update past its grace period).", output, error));
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
            using var key = VendorKey.Create(r.GetValue(subject)!, DateTimeOffset.UtcNow, TimeSpan.FromDays(365.25 * r.GetValue(years)));
            var prefix = r.GetValue(outPrefix)!;
            File.WriteAllBytes(prefix + ".pfx", key.ExportPfx(Password(r, password)));
            File.WriteAllText(prefix + ".pem", key.ExportPem());
            File.WriteAllText(prefix + ".crt.pem", key.Certificate.ExportCertificatePem() + "\n");
            output.WriteLine($"vendor certificate sha256 (pin this): {key.Fingerprint}");
            return 0;
        }));
        return command;
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

    private static Command DeviceCommand(string name, string description, TextWriter output, TextWriter error)
    {
        var feed = new Option<string>("--feed") { Description = "Feed: https URL or folder.", Required = true };
        var root = new Option<DirectoryInfo>("--root") { Description = "Install root (current, versions/, staging/, state/).", Required = true };
        var pin = new Option<string>("--pin") { Description = "SHA-256 (hex) of the pinned vendor certificate, or a PEM certificate file.", Required = true };
        var channel = new Option<string>("--channel") { Description = "Channel.", DefaultValueFactory = _ => "stable" };
        var current = new Option<string?>("--current") { Description = "Running version (default: the install root's current pointer)." };
        var hours = new Option<double>("--hours") { Description = "postpone: how long.", DefaultValueFactory = _ => 4 };
        var command = new Command(name, description) { feed, root, pin, channel, current };
        if (name == "postpone")
        {
            command.Options.Add(hours);
        }

        command.SetAction(async (r, ct) =>
        {
            try
            {
                var rootDir = r.GetValue(root)!.FullName;
                var running = r.GetValue(current) ?? ReadCurrent(rootDir) ?? "0.0.0";
                var pinValue = r.GetValue(pin)!;
                if (File.Exists(pinValue))
                {
                    using var cert = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(pinValue));
                    pinValue = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(cert.RawData));
                }

                var feedValue = r.GetValue(feed)!;
                using var http = new HttpClient();
                IUpdateSource source = Uri.TryCreate(feedValue, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http"
                    ? new HttpUpdateSource(http, uri)
                    : new FolderUpdateSource(feedValue);
                var updater = new Updater(new UpdaterOptions
                {
                    InstallRoot = rootDir,
                    Channel = r.GetValue(channel)!,
                    PinnedVendorCertificate = pinValue,
                    CurrentVersion = SemanticVersion.Parse(running),
                }, source);
                var result = name == "install" ? await updater.InstallAsync(ct).ConfigureAwait(false) : await updater.CheckAsync(ct).ConfigureAwait(false);
                if (!result.Succeeded)
                {
                    var quiet = result.Error.Code == UpdateErrorCode.UpToDate;
                    (quiet ? output : error).WriteLine(quiet ? $"up to date: {result.Error.Message}" : $"REFUSED ({result.Error.Code}): {result.Error.Message}");
                    return quiet ? 0 : ExitRefused;
                }

                var u = result.Update!;
                var m = u.Manifest;
                var tag = (m.Security ? " [security]" : string.Empty) + (u.Required ? " [required]" : string.Empty);
                switch (name)
                {
                    case "install":
                        output.WriteLine($"installed {m.Version}{tag} (was {running}); restart to run it; it becomes permanent once it starts cleanly");
                        return 0;
                    case "postpone":
                        var deferral = new UpdateDeferral(rootDir, BusySchedule.Never);
                        if (!deferral.TryPostpone(u, TimeSpan.FromHours(r.GetValue(hours)), out var d))
                        {
                            error.WriteLine($"cannot postpone {m.Version}: {d.Reason}");
                            return ExitRefused;
                        }

                        output.WriteLine($"postponed {m.Version}{tag}: {d.Reason}");
                        return 0;
                    default:
                        output.WriteLine($"update available: {running} -> {m.Version}{tag} ({m.Files.Count} files, {m.Files.Sum(f => f.Size)} bytes, seq {m.Sequence})" +
                            (u.SecurityDeadline is { } dl ? $"; may be postponed until {dl:u}" : string.Empty));
                        return 0;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException
                                          or System.Security.Cryptography.CryptographicException)
            {
                error.WriteLine($"error: {e.Message}");
                return 2;
            }
        });
        return command;
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
