using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Relay.Tests.Http;
using Xunit;

namespace IMikelGo.Relay.Tests.SystemTests;

/// <summary>
/// The relay as a child process, killed with SIGKILL while a client pushes many bundles and again while it pulls
/// pages, then restarted on the same port and data: 0 bundles lost, 0 duplicated, positions gap-free, and a
/// SyncAgent-like puller with a persisted cursor receives every pushed bundle exactly once.
/// </summary>
public abstract class KillRestartTests
{
    private const int Bundles = 36;

    protected abstract RelayStoreKind Store { get; }

    protected virtual string? Connection => null;

    [Fact]
    public async Task Kill_mid_push_and_mid_pull_then_restart_loses_and_duplicates_nothing()
    {
        var account = "acct-kill-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        using var schoolKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var deviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var relay = await RelayProcess.StartAsync(new Dictionary<string, ECDsa> { [account] = schoolKey }, Store, Connection);
        var device = "dev-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var school = relay.Caller("school-" + account, schoolKey, account);
        (await school.PostJsonAsync(RelayProtocol.Devices(account), new DeviceRegistration(device, Convert.ToBase64String(deviceKey.ExportSubjectPublicKeyInfo()))))
            .StatusCode.Should().Be(HttpStatusCode.NoContent);

        using var signer = new EcdsaRequestSigner(deviceKey, callerId: device);
        using var client = RelayClient.Create(
            new RelayClientOptions
            {
                BaseAddress = relay.BaseAddress,
                PinnedCertificateSha256 = relay.Fingerprint,
                MaxRetries = 40,
                RetryBaseDelay = TimeSpan.FromMilliseconds(100),
                MaxRetryDelay = TimeSpan.FromMilliseconds(400),
                AttemptTimeout = TimeSpan.FromSeconds(10),
                ConnectTimeout = TimeSpan.FromSeconds(2),
            },
            signer);

        // Push: a bundle stays "outgoing" until the relay confirmed it; the killer strikes while the loop runs.
        var bundles = Enumerable.Range(1, Bundles).Select(i => RelayServer.SealBundle(device, (ulong)i, account, 4 * 1024)).ToList();
        var pushed = new Dictionary<Guid, PushResult>();
        var confirmed = 0;
        var killer = KillWhenAsync(relay, () => Volatile.Read(ref confirmed) >= Bundles / 3);
        foreach (var bundle in bundles)
        {
            var result = await UntilSuccessAsync(() => client.PushAsync(account, bundle, CancellationToken.None));
            pushed.Add(result.BundleId, result);
            Interlocked.Increment(ref confirmed);
        }

        await killer;
        relay.Starts.Should().Be(2, "the relay was killed and restarted during the pushes");
        pushed.Values.Select(r => r.Position).Order().Should().Equal(Enumerable.Range(1, Bundles).Select(i => (long)i), "positions are gap-free and unique");

        // Pull: items are made durable locally (a file), then the cursor (another file) is the last item written.
        var local = Path.Combine(relay.DataDirectory, "..", Path.GetFileName(relay.DataDirectory) + "-device");
        Directory.CreateDirectory(local);
        var inbox = Path.Combine(local, "inbox.txt");
        var cursorFile = Path.Combine(local, "cursor.txt");
        var pages = 0;
        killer = KillWhenAsync(relay, () => Volatile.Read(ref pages) >= 3);
        try
        {
            while (true)
            {
                var cursor = File.Exists(cursorFile) ? long.Parse(await File.ReadAllTextAsync(cursorFile), CultureInfo.InvariantCulture) : 0;
                var page = await UntilSuccessAsync(() => client.PullAsync(account, cursor, 7, TimeSpan.Zero, CancellationToken.None));
                if (page.Items.Count == 0)
                {
                    page.Head.Should().Be(cursor);
                    break;
                }

                await File.AppendAllLinesAsync(inbox, page.Items.Select(i => FormattableString.Invariant($"{i.Position} {i.BundleId} {Convert.ToHexStringLower(SHA256.HashData(i.Data))}")));
                await File.WriteAllTextAsync(cursorFile, page.Items[^1].Position.ToString(CultureInfo.InvariantCulture));
                Interlocked.Increment(ref pages);
            }

            await killer;
        }
        finally
        {
            relay.Starts.Should().Be(3, "the relay was killed and restarted during the pulls");
        }

        var received = (await File.ReadAllLinesAsync(inbox)).Select(l => l.Split(' ')).Select(p => (Position: long.Parse(p[0], CultureInfo.InvariantCulture), Id: Guid.Parse(p[1]), Hash: p[2])).ToList();
        received.Select(r => r.Position).Should().Equal(Enumerable.Range(1, Bundles).Select(i => (long)i), "each position pulled once, in order, none skipped");
        received.Select(r => r.Id).Should().OnlyHaveUniqueItems().And.BeEquivalentTo(pushed.Keys, "every pushed bundle is pulled exactly once");
        foreach (var r in received)
        {
            pushed[r.Id].Position.Should().Be(r.Position, "a retried push reported the position the bundle really has");
        }

        var hashes = bundles.Select(b => Convert.ToHexStringLower(SHA256.HashData(b))).ToHashSet();
        received.Select(r => r.Hash).Should().BeEquivalentTo(hashes, "the relay returns the exact bytes pushed");
        try
        {
            Directory.Delete(local, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Kills the relay (SIGKILL) as soon as <paramref name="condition"/> holds, waits a moment, restarts it.</summary>
    private static async Task KillWhenAsync(RelayProcess relay, Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("the kill condition never held");
            }

            await Task.Delay(2);
        }

        await relay.KillAsync();
        await Task.Delay(300);
        await relay.StartAsync();
    }

    /// <summary>The device's own retry on top of the client's: a call that failed for good is tried again (the outbox keeps the bundle).</summary>
    private static async Task<T> UntilSuccessAsync<T>(Func<Task<T>> call)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (Exception ex) when (attempt < 50 && ex is HttpRequestException or TaskCanceledException or TimeoutException or RelayException or IOException)
            {
                await Task.Delay(200);
            }
        }
    }
}

/// <summary>Kill/restart on the embedded SQLite store.</summary>
public sealed class EmbeddedKillRestartTests : KillRestartTests
{
    protected override RelayStoreKind Store => RelayStoreKind.Embedded;
}

/// <summary>Kill/restart on PostgreSQL through Marten.</summary>
public sealed class PostgresKillRestartTests : KillRestartTests
{
    protected override RelayStoreKind Store => RelayStoreKind.Postgres;

    protected override string? Connection => PostgresServer.ConnectionString;
}
