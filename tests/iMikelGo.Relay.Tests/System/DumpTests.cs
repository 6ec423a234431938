using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using FluentAssertions;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using IMikelGo.Relay.Tests.Http;
using IMikelGo.Sealing;
using IMikelGo.Testing;
using Npgsql;
using Xunit;

namespace IMikelGo.Relay.Tests.SystemTests;

/// <summary>
/// After an HTTP round trip of event bundles sealed with <see cref="EventBundles"/> whose plaintext carries marker
/// strings, a dump of the whole relay database (the SQLite file with its WAL and SHM; <c>pg_dump</c> of the
/// PostgreSQL database) contains no marker — in UTF-8, UTF-16 or base64 — while it does contain the stored
/// ciphertext and ids (the control: the scan sees the data).
/// </summary>
public sealed class DumpTests
{
    [Theory]
    [InlineData(RelayStoreKind.Embedded)]
    [InlineData(RelayStoreKind.Postgres)]
    public async Task A_dump_of_the_whole_relay_database_contains_no_plaintext_marker(RelayStoreKind kind)
    {
        using var scenario = SchoolScenario.Create(devices: 1);
        using var schoolKey = ECDsa.Create();
        schoolKey.ImportPkcs8PrivateKey(TestKeys.For("school").ExportPkcs8(), out _);
        using var deviceKey = ECDsa.Create();
        deviceKey.ImportPkcs8PrivateKey(TestKeys.For("d1").ExportPkcs8(), out _);
        var account = scenario.Account.Value;
        await using var server = await RelayServer.StartAsync(kind: kind, configure: o =>
        {
            o.Schools.Clear();
            o.Schools.Add(new SchoolRegistration(account, scenario.School.Id.Value, Convert.ToBase64String(schoolKey.ExportSubjectPublicKeyInfo())));
        });
        var school = new Caller(server, scenario.School.Id.Value, schoolKey, account);
        var deviceId = scenario.Device(1).Id.Value;
        (await school.PostJsonAsync(RelayProtocol.Devices(account), new DeviceRegistration(deviceId, Convert.ToBase64String(deviceKey.ExportSubjectPublicKeyInfo()))))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);

        var markers = Enumerable.Range(0, 3).Select(i => $"PLAINTEXT-MARKER-{i}-{Guid.NewGuid():N}").ToList();
        for (var i = 0; i < markers.Count; i++)
        {
            scenario.Record(scenario.School, [new LessonCancelled(scenario.Lesson(i + 1), CancellationReason.TeacherIll, MakeUpOwed: true, Note: markers[i])]);
        }

        using var recipient = EncryptionKeyPair.Generate();
        var events = scenario.Recorded.Where(e => e.Event.Replica == scenario.School.Id).ToList();
        var sealedBundles = new[] { EventBundles.Seal(scenario.School.Id, events, [recipient.PublicKey]), EventBundles.Seal(scenario.School.Id, events.TakeLast(1).ToList(), [recipient.PublicKey]) };
        foreach (var bundle in sealedBundles)
        {
            (await school.PushAsync(bundle.Bytes)).StatusCode.Should().Be(HttpStatusCode.Created);
        }

        var device = new Caller(server, deviceId, deviceKey, account);
        var page = await Caller.PageOf(await device.PullAsync(0));
        page.Items.Should().HaveCount(2);
        EventBundles.TryOpen(page.Items[0].Data, scenario.Account, recipient, null, out var opened, out var error).Should().BeTrue(error);
        opened!.Select(e => e.Event.Payload).OfType<LessonCancelled>().Select(p => p.Note).Should().BeEquivalentTo(markers, "the plaintext does carry the markers");
        (await device.PostJsonAsync(RelayProtocol.Acks(account), new AckRequest(page.Next))).StatusCode.Should().Be(HttpStatusCode.NoContent);

        var dump = kind == RelayStoreKind.Embedded ? DumpSqlite(server) : await PgDumpAsync(server.Schema!);

        // Control: the dump holds the ciphertext as stored, and the pseudonymous ids.
        foreach (var bundle in sealedBundles)
        {
            if (kind == RelayStoreKind.Embedded)
            {
                // A bundle larger than a page spans overflow pages: look for its 128-byte chunks.
                var chunks = Enumerable.Range(0, bundle.Bytes.Length / 128).Select(i => Encoding.Latin1.GetString(bundle.Bytes, i * 128, 128)).ToList();
                chunks.Count(c => dump.Contains(c, StringComparison.Ordinal)).Should().BeGreaterThanOrEqualTo(chunks.Count * 9 / 10, "the scan must see the stored ciphertext");
            }
            else
            {
                dump.Contains(Convert.ToBase64String(bundle.Bytes), StringComparison.Ordinal).Should().BeTrue("the scan must see the stored ciphertext");
            }
        }

        dump.Contains(deviceId, StringComparison.Ordinal).Should().BeTrue("the dump holds the device id");
        dump.Contains(account, StringComparison.Ordinal).Should().BeTrue("the dump holds the account id");
        foreach (var marker in markers)
        {
            foreach (var form in Forms(marker))
            {
                dump.Contains(form, StringComparison.Ordinal).Should().BeFalse($"the relay must never hold plaintext ({form})");
            }
        }
    }

    /// <summary>The marker as UTF-8, UTF-16 and as it would appear inside base64 at any of the three alignments.</summary>
    private static IEnumerable<string> Forms(string marker)
    {
        yield return marker;
        yield return Encoding.Latin1.GetString(Encoding.Unicode.GetBytes(marker));
        var bytes = Encoding.UTF8.GetBytes(marker);
        for (var shift = 0; shift < 3; shift++)
        {
            var b64 = Convert.ToBase64String([.. new byte[shift], .. bytes]);
            yield return b64.Substring((4 * ((shift + 2) / 3)) + 24, 32);
        }
    }

    private static string DumpSqlite(RelayServer server)
    {
        var files = Directory.GetFiles(Path.GetDirectoryName(server.DatabasePath!)!, Path.GetFileName(server.DatabasePath!) + "*");
        files.Should().Contain(server.DatabasePath! + "-wal", "the WAL is part of the dump");
        var text = new StringBuilder();
        foreach (var file in files)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.Latin1);
            text.Append(reader.ReadToEnd());
        }

        return text.ToString();
    }

    private static async Task<string> PgDumpAsync(string schema)
    {
        var csb = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString);
        var pgDump = Path.Combine(PostgresServer.PgBin, "pg_dump");
        var psi = new ProcessStartInfo(File.Exists(pgDump) ? pgDump : "pg_dump")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.Latin1,
        };
        foreach (var arg in new[] { "-h", csb.Host!, "-p", csb.Port.ToString(CultureInfo.InvariantCulture), "-U", csb.Username!, "-d", csb.Database!, "--no-owner" })
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["PGPASSWORD"] = csb.Password;
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var dump = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.Should().Be(0, await stderr);
        dump.Should().Contain(schema, "the dump covers the relay's schema");
        return dump;
    }
}
