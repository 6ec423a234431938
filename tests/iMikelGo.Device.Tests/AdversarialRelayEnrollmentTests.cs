using System.Text.Json.Nodes;
using IMikelGo.Engine.Relay;
using IMikelGo.Relay;
using IMikelGo.Sealing;

namespace IMikelGo.Device.Tests;

/// <summary>
/// A compromised relay in the enrollment hand-off (docs/device.md, "Relay hand-off"; docs/relay.md: the relay only
/// forwards bytes and cannot read). The relay here is the real one whose own store is altered by its operator
/// (<see cref="TamperingMailboxStore"/>): everything the school sends passes through it.
/// </summary>
public sealed class AdversarialRelayEnrollmentTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task A_relay_that_adds_its_own_peer_key_to_the_answer_cannot_read_what_the_device_then_pushes()
    {
        using var relayKey = EncryptionKeyPair.Generate();
        var planted = new string('e', 40);
        await using var world = await World.StartAsync(o =>
        {
            var inner = o.StoreFactory!;
            o.StoreFactory = services => new TamperingMailboxStore(inner(services))
            {
                AlterAnswer = answer => AddPeer(answer, "r" + planted, relayKey.PublicKey),
            };
        });

        EnrollmentRefusedException? refused = null;
        TeacherDevice? phone = null;
        try
        {
            phone = await world.EnrolledDeviceAsync("phone");
        }
        catch (EnrollmentRefusedException e)
        {
            refused = e; // refusing an answer the school did not vouch for is a correct outcome too
        }

        if (refused is not null)
        {
            refused.Reason.Should().Be(EnrollmentRefusalReason.InvalidAnswer);
            return;
        }

        (await world.SchoolSyncAsync()).Failures.Should().BeEmpty();
        (await phone!.SyncAsync(null, None)).Refused.Should().BeEmpty();
        (await phone.RecordAbsenceAsync(World.Thursday(2), World.Lena, excused: true, "krank", None)).Succeeded.Should().BeTrue();
        (await phone.SyncAsync(null, None)).Sent.Should().BeGreaterThanOrEqualTo(1);

        var pushed = await world.Store.ReadAsync(World.Account, 0, 1000, None);
        pushed.Should().NotBeEmpty("the device pushed its events");
        var readable = pushed.Where(b => Bundle.TryOpen(b.Data, World.Account, relayKey, out _, out _)).ToList();
        readable.Should().BeEmpty(
            "a peer key the school did not sign (only added by the relay to the answer's unsigned 'peers') must never become a recipient: "
            + $"{readable.Count} of {pushed.Count} bundles the device pushed open with the relay's own key");
    }

    [Fact]
    public async Task A_relay_that_swaps_the_approval_for_a_refusal_or_garbage_gets_a_clear_refusal_and_nothing_enrolled()
    {
        await using var world = await World.StartAsync(o =>
        {
            var inner = o.StoreFactory!;
            o.StoreFactory = services => new TamperingMailboxStore(inner(services))
            {
                AlterAnswer = answer =>
                {
                    var node = JsonNode.Parse(answer)!.AsObject();
                    node["certificate"] = Convert.ToBase64String([0x30, 0x03, 0x02, 0x01, 0x01]); // DER, not a certificate
                    return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
                },
            };
        });

        var device = await world.OpenDeviceAsync("phone");
        var refused = await FluentActions.Awaiting(() => world.EnrollAsync(device, new EnrollmentInput(world.EnrollmentUri, world.License.Value, world.Password, World.Pin)))
            .Should().ThrowAsync<EnrollmentRefusedException>();
        refused.Which.Reason.Should().Be(EnrollmentRefusalReason.InvalidAnswer);
        device.State.Should().Be(DeviceState.NotEnrolled);
        device.Account.Should().BeNull();
    }

    private static byte[] AddPeer(byte[] answer, string peer, RecipientPublicKey key)
    {
        var node = JsonNode.Parse(answer)!.AsObject();
        if (node["approved"]?.GetValue<bool>() != true)
        {
            return answer;
        }

        var peers = node["peers"] as JsonObject ?? [];
        peers[peer] = Convert.ToBase64String(key.Encoded.Span);
        node["peers"] = peers;
        return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    /// <summary>The relay's store with the operator rewriting each enrollment answer as it is stored.</summary>
    private sealed class TamperingMailboxStore(IMailboxStore inner) : IMailboxStore
    {
        public Func<byte[], byte[]> AlterAnswer { get; init; } = a => a;

        public Task<EnrollmentAnswerOutcome> AnswerEnrollmentAsync(string school, string id, bool approved, ReadOnlyMemory<byte> answer, CancellationToken cancellationToken) =>
            inner.AnswerEnrollmentAsync(school, id, approved, AlterAnswer(answer.ToArray()), cancellationToken);

        public Task<PushResult> AppendAsync(string account, Guid bundleId, string sender, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            inner.AppendAsync(account, bundleId, sender, data, cancellationToken);

        public Task<IReadOnlyList<StoredBundle>> ReadAsync(string account, long after, int limit, CancellationToken cancellationToken) =>
            inner.ReadAsync(account, after, limit, cancellationToken);

        public Task<long> HeadAsync(string account, CancellationToken cancellationToken) => inner.HeadAsync(account, cancellationToken);

        public Task<long> SizeAsync(string account, CancellationToken cancellationToken) => inner.SizeAsync(account, cancellationToken);

        public Task AckAsync(string account, string caller, long position, CancellationToken cancellationToken) =>
            inner.AckAsync(account, caller, position, cancellationToken);

        public Task PutCallerAsync(RelayCaller caller, CancellationToken cancellationToken) => inner.PutCallerAsync(caller, cancellationToken);

        public Task<RelayCaller?> GetCallerAsync(string id, CancellationToken cancellationToken) => inner.GetCallerAsync(id, cancellationToken);

        public Task DeleteCallerAsync(string id, CancellationToken cancellationToken) => inner.DeleteCallerAsync(id, cancellationToken);

        public Task RevokeAsync(string account, string? device, string reason, CancellationToken cancellationToken) =>
            inner.RevokeAsync(account, device, reason, cancellationToken);

        public Task<bool> IsRevokedAsync(string account, string device, CancellationToken cancellationToken) =>
            inner.IsRevokedAsync(account, device, cancellationToken);

        public Task AcknowledgeWipeAsync(string account, string device, CancellationToken cancellationToken) =>
            inner.AcknowledgeWipeAsync(account, device, cancellationToken);

        public Task<bool> HasWipedAsync(string account, string device, CancellationToken cancellationToken) =>
            inner.HasWipedAsync(account, device, cancellationToken);

        public Task<bool> TryUseNonceAsync(string caller, string nonce, DateTimeOffset expires, CancellationToken cancellationToken) =>
            inner.TryUseNonceAsync(caller, nonce, expires, cancellationToken);

        public Task<long> EnqueueEnrollmentAsync(string school, string id, ReadOnlyMemory<byte> request, CancellationToken cancellationToken) =>
            inner.EnqueueEnrollmentAsync(school, id, request, cancellationToken);

        public Task<int> PendingEnrollmentCountAsync(string school, CancellationToken cancellationToken) =>
            inner.PendingEnrollmentCountAsync(school, cancellationToken);

        public Task<IReadOnlyList<StoredEnrollment>> ReadEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken) =>
            inner.ReadEnrollmentsAsync(school, after, limit, cancellationToken);

        public Task<StoredEnrollmentAnswer?> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken) =>
            inner.GetEnrollmentAnswerAsync(id, cancellationToken);
    }
}
