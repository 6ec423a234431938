using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Tests.Http;
using Xunit;

namespace IMikelGo.Relay.Tests.SystemTests;

/// <summary>
/// Two relay instances (two Kestrel apps on two ports, each its own Marten DocumentStore) on one PostgreSQL schema,
/// with clients alternating between them: nothing lost, nothing duplicated, positions and cursors consistent,
/// long-polls woken across instances and nonces single-use across instances.
/// </summary>
public sealed class ScaleOutTests
{
    private static string NewId(string prefix) => prefix + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    [Fact]
    public async Task Two_instances_on_one_PostgreSQL_lose_nothing_duplicate_nothing_and_share_cursors_and_nonces()
    {
        const string account = RelayServer.Account;
        await using var a = await RelayServer.StartAsync(kind: RelayStoreKind.Postgres);
        await using var b = await RelayServer.StartAsync(shareWith: a);
        a.BaseAddress.Port.Should().NotBe(b.BaseAddress.Port);
        b.Fingerprint.Should().Be(a.Fingerprint, "the instances serve the same certificate, so one pin fits both");

        // Registered through A, known to B (and vice versa).
        var d1 = await a.RegisterDeviceAsync(NewId("d1"), account);
        var d2 = await b.RegisterDeviceAsync(NewId("d2"), account);
        var reader = await a.RegisterDeviceAsync(NewId("reader"), account);
        Caller Via(RelayServer server, Caller c) => new(server, c.Id, c.Key, c.Account);
        var d1a = Via(a, d1);
        var d1b = Via(b, d1);
        var d2a = Via(a, d2);
        var d2b = Via(b, d2);
        var readerB = Via(b, reader);

        // Push through A, pull through B.
        var first = RelayServer.SealBundle(d1.Id, 1, account);
        var p1 = await Caller.PushResultOf(await d1a.PushAsync(first));
        var page = await Caller.PageOf(await readerB.PullAsync(0));
        page.Items.Should().ContainSingle().Which.Data.Should().Equal(first);
        page.Items[0].Position.Should().Be(p1.Position);

        // A retry through the other instance is a duplicate with the original position.
        (await Caller.PushResultOf(await d1b.PushAsync(first))).Should().Be(p1 with { Duplicate = true });

        // Concurrent pushes to both instances from two devices, each bundle also retried on the other instance.
        var bundles = new ConcurrentDictionary<Guid, PushResult>();
        async Task PushMany(Caller viaA, Caller viaB, string sender)
        {
            for (ulong i = 2; i <= 41; i++)
            {
                var bundle = RelayServer.SealBundle(sender, i, account);
                var (primary, other) = i % 2 == 0 ? (viaA, viaB) : (viaB, viaA);
                var results = await Task.WhenAll(primary.PushAsync(bundle), other.PushAsync(bundle));
                var parsed = await Task.WhenAll(results.Select(Caller.PushResultOf));
                parsed[0].Position.Should().Be(parsed[1].Position, "both instances answer the same position for one bundle id");
                parsed.Count(r => !r.Duplicate).Should().Be(1, "exactly one of the two concurrent pushes stored it");
                bundles[parsed[0].BundleId] = parsed[0];
            }
        }

        await Task.WhenAll(PushMany(d1a, d1b, d1.Id), PushMany(d2b, d2a, d2.Id));
        var head = await a.Store.HeadAsync(account, default);
        (await b.Store.HeadAsync(account, default)).Should().Be(head);
        head.Should().Be(1 + bundles.Count);

        // A cursor taken from one instance is valid on the other: alternate pages of 7 between A and B.
        var readerA = Via(a, reader);
        var received = new List<MailboxItem>();
        long cursor = 0;
        for (var turn = 0; ; turn++)
        {
            var next = await Caller.PageOf(await (turn % 2 == 0 ? readerA : readerB).PullAsync(cursor, 7));
            if (next.Items.Count == 0)
            {
                next.Next.Should().Be(cursor);
                break;
            }

            next.Next.Should().Be(next.Items[^1].Position);
            received.AddRange(next.Items);
            cursor = next.Next;
        }

        received.Select(i => i.Position).Should().Equal(Enumerable.Range(1, (int)head).Select(i => (long)i), "gap-free, each once");
        received.Select(i => i.BundleId).Should().OnlyHaveUniqueItems();
        received.Select(i => i.BundleId).Should().Contain(bundles.Keys).And.Contain(p1.BundleId);
        foreach (var item in received.Where(i => bundles.ContainsKey(i.BundleId)))
        {
            bundles[item.BundleId].Position.Should().Be(item.Position);
        }

        // A long-poll on A is woken by a push through B (A finds it in the store).
        var poll = Via(a, reader).PullAsync(head, 10, wait: 20);
        await Task.Delay(300);
        poll.IsCompleted.Should().BeFalse();
        var late = RelayServer.SealBundle(d2.Id, 99, account);
        var pLate = await Caller.PushResultOf(await d2b.PushAsync(late));
        var woken = await Caller.PageOf(await poll.WaitAsync(TimeSpan.FromSeconds(10)));
        woken.Items.Should().ContainSingle().Which.Position.Should().Be(pLate.Position);

        // A signed request captured from A and replayed against B is refused, and B writes nothing.
        var captured = RelayServer.SealBundle(d1.Id, 100, account);
        var path = RelayProtocol.Bundles(account);
        var ts = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var signature = RequestSignature.Sign(d1.Key, "POST", path, ts, nonce, captured);
        (await d1a.Http.SendAsync(d1a.Build(HttpMethod.Post, path, captured, timestamp: ts, nonce: nonce, signature: signature))).StatusCode.Should().Be(HttpStatusCode.Created);
        var headAfter = await b.Store.HeadAsync(account, default);
        var replay = await d1b.Http.SendAsync(d1b.Build(HttpMethod.Post, path, captured, timestamp: ts, nonce: nonce, signature: signature));
        replay.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await Caller.ProblemOf(replay)).GetProperty("reason").GetString().Should().Be("replayed");
        (await a.Store.HeadAsync(account, default)).Should().Be(headAfter);

        // The same for a pull captured from B and replayed against A.
        var pullPath = RelayProtocol.Pull(account, 0, 5, 0);
        var ts2 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var nonce2 = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var sig2 = RequestSignature.Sign(reader.Key, "GET", pullPath, ts2, nonce2, []);
        (await readerB.Http.SendAsync(readerB.Build(HttpMethod.Get, pullPath, null, timestamp: ts2, nonce: nonce2, signature: sig2))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await readerA.Http.SendAsync(readerA.Build(HttpMethod.Get, pullPath, null, timestamp: ts2, nonce: nonce2, signature: sig2))).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }
}
