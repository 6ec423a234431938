using System.CommandLine;
using IMikelGo.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace IMikelGo.Cli;

/// <summary><c>imikelgo relay serve</c> and <c>imikelgo relay school add</c> (docs/relay.md).</summary>
internal static class RelayCommands
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var relay = new Command("relay", "Run the iMikelGo relay (sealed store-and-forward mailboxes over HTTPS) and manage its schools.");
        relay.Subcommands.Add(Serve(output, error));
        var school = new Command("school", "Schools known to the relay (one per account; the school registers and revokes its devices).");
        school.Subcommands.Add(AddSchool(output));
        relay.Subcommands.Add(school);
        return relay;
    }

    private static Command Serve(TextWriter output, TextWriter error)
    {
        var urls = new Option<string>("--urls") { Description = "HTTPS URL(s) to listen on, ';'-separated (e.g. https://127.0.0.1:8443). Production: https://0.0.0.0:443.", DefaultValueFactory = _ => "https://0.0.0.0:443" };
        var store = new Option<string>("--store") { Description = "Mailbox store: embedded (SQLite in --data, default), postgres (Marten, needs --connection) or memory (tests/demos only, not durable).", DefaultValueFactory = _ => "embedded" };
        store.AcceptOnlyFromAmong("embedded", "postgres", "memory");
        var data = new Option<DirectoryInfo>("--data") { Description = "Data directory: embedded store, generated certificate, schools.json.", DefaultValueFactory = _ => new DirectoryInfo("relay-data") };
        var connection = new Option<string?>("--connection") { Description = "PostgreSQL connection string (with --store postgres)." };
        var certificate = new Option<FileInfo?>("--certificate") { Description = "A PFX certificate to serve instead of the generated self-signed one (password in IMIKELGO_RELAY_CERT_PASSWORD)." };
        var updateFeed = new Option<DirectoryInfo?>("--update-feed") { Description = "Serve this signed update feed folder (imikelgo release publish) read-only at /updates/." };
        var command = new Command("serve", "Serve the relay until Ctrl+C / SIGTERM. Prints the certificate's SHA-256 fingerprint, which clients pin.")
        {
            urls, store, data, connection, certificate, updateFeed,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new RelayOptions
            {
                DataDirectory = parse.GetValue(data)!.FullName,
                ConnectionString = parse.GetValue(connection),
                CertificatePath = parse.GetValue(certificate)?.FullName,
                CertificatePassword = Environment.GetEnvironmentVariable("IMIKELGO_RELAY_CERT_PASSWORD"),
                UpdateFeedDirectory = parse.GetValue(updateFeed)?.FullName,
                Store = parse.GetValue(store) switch
                {
                    "postgres" => RelayStoreKind.Postgres,
                    "memory" => RelayStoreKind.InMemory,
                    _ => RelayStoreKind.Embedded,
                },
            };
            foreach (var url in parse.GetValue(urls)!.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                options.Urls.Add(url);
            }

            WebApplication app;
            try
            {
                app = RelayHost.Create(options);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or IOException or System.Security.Cryptography.CryptographicException)
            {
                await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return LogCheck.ExitUsage;
            }

            await using (app.ConfigureAwait(false))
            {
                try
                {
                    await app.StartAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    // Kestrel's "Failed to bind to address …: address already in use" (another relay or program on the port).
                    await error.WriteLineAsync($"error: {e.Message}; is another relay already running there? Choose another port with --urls").ConfigureAwait(false);
                    return LogCheck.ExitUsage;
                }

                var pin = app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
                await output.WriteLineAsync($"relay listening on {string.Join(", ", app.Urls)}").ConfigureAwait(false);
                await output.WriteLineAsync($"certificate sha256 fingerprint: {pin}").ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    private static Command AddSchool(TextWriter output)
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "The relay's data directory.", DefaultValueFactory = _ => new DirectoryInfo("relay-data") };
        var account = new Option<string>("--account") { Description = "The account (mailbox) id.", Required = true };
        var school = new Option<string>("--school") { Description = "The school's replica id.", Required = true };
        var key = new Option<string>("--key") { Description = "The school's signing key: SubjectPublicKeyInfo, base64.", Required = true };
        var command = new Command("add", "Register (or replace) the school of an account in DATA/schools.json; read at the relay's next start.")
        {
            data, account, school, key,
        };
        command.SetAction(parse =>
        {
            var registration = new SchoolRegistration(parse.GetValue(account)!, parse.GetValue(school)!, parse.GetValue(key)!);
            if (!IMikelGo.Sealing.Identifiers.IsValid(registration.Account) || !IMikelGo.Sealing.Identifiers.IsValid(registration.School) || !IsP256Key(registration.SigningKey))
            {
                output.WriteLine("error: account and school are ids of [A-Za-z0-9._-]{1,64}; key is a base64 P-256 SubjectPublicKeyInfo");
                return LogCheck.ExitUsage;
            }

            RelayHost.WriteSchool(parse.GetValue(data)!.FullName, registration);
            output.WriteLine($"school {registration.School} registered for account {registration.Account}; restart the relay to apply");
            return 0;
        });
        return command;
    }

    private static bool IsP256Key(string base64)
    {
        try
        {
            using var ecdsa = System.Security.Cryptography.ECDsa.Create();
            ecdsa.ImportSubjectPublicKeyInfo(Convert.FromBase64String(base64), out _);
            return ecdsa.KeySize == 256;
        }
        catch (Exception e) when (e is FormatException or System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
    }
}
