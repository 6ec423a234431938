using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;
using IMikelGo.Store.Sqlite.Sync;

namespace IMikelGo.Store.Sqlite.Tests;

/// <summary>DeviceReplica as the relay client's ISyncReplica: keys in the vault, key publication, recipients, cursor, outgoing bundle.</summary>
public sealed class DeviceReplicaSyncTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly AccountId Account = new(TestVault.Account.ToLowerInvariant());

    [Fact]
    public async Task Encryption_keys_cursor_and_outgoing_bundle_survive_a_restart_in_the_vault()
    {
        using var test = new TestVault();
        KeyId keyId;
        var outgoing = new OutgoingBundle(Guid.NewGuid(), [1, 2, 3], ["ab", "cd"]);
        await using (var vault = await test.EnrolledAsync())
        {
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            ISyncReplica port = device;
            keyId = device.Keys.Current.Id;
            port.DecryptionKeys.TryGetKey(keyId, out _).Should().BeTrue();
            (await port.GetCursorAsync(None)).Should().Be(0);
            (await port.GetOutgoingAsync(None)).Should().BeNull();
            await port.SetCursorAsync(4711, None);
            await port.SetOutgoingAsync(outgoing, None);
        }

        await using (var vault = test.Create())
        {
            await vault.InitializeAsync(None);
            (await vault.UnlockAsync(TestVault.Pin, None)).Status.Should().Be(UnlockStatus.Unlocked);
            using var device = await DeviceReplica.OpenAsync(vault.Store);
            device.Keys.Current.Id.Should().Be(keyId);
            (await device.GetCursorAsync(None)).Should().Be(4711);
            var back = await device.GetOutgoingAsync(None);
            back!.BundleId.Should().Be(outgoing.BundleId);
            back.Data.Should().Equal(outgoing.Data);
            back.EventHashes.Should().Equal(outgoing.EventHashes);
            await device.SetOutgoingAsync(null, None);
            (await device.GetOutgoingAsync(None)).Should().BeNull();
        }

        // The private scalar never appears in the files (sealed under the vault's key hierarchy).
        TestVault.FilesContaining(test.Root, "replica-encryption-keys").Should().BeEmpty();
    }

    [Fact]
    public async Task The_key_is_published_once_the_log_shows_the_device_enrolled_and_bundles_go_to_the_school_and_peers_not_to_itself_or_revoked_devices()
    {
        using var test = new TestVault();
        await using var vault = await test.EnrolledAsync();
        using var device = await DeviceReplica.OpenAsync(vault.Store);
        using var schoolKey = ReplicaKey.Create();
        using var schoolEncryption = EncryptionKeyPair.Generate();
        using var peerKey = ReplicaKey.Create();
        using var peerEncryption = EncryptionKeyPair.Generate();
        using var lateKey = ReplicaKey.Create();
        using var lateEncryption = EncryptionKeyPair.Generate();
        var school = new Replica(Account, schoolKey);

        // Not enrolled yet: nothing published, nothing to send, no recipients.
        (await device.PendingAsync(None)).Should().BeEmpty();
        (await device.GetRecipientsAsync(None)).Should().BeEmpty();
        device.IsEnrolledInLog.Should().BeFalse();

        school.RecordBatch([
            new AccountOpened("ms", "Anna", schoolKey.PublicKey),
            new EncryptionKeyPublished([.. schoolEncryption.PublicKey.Encoded.Span]),
            new DeviceEnrolled(device.Id, "laptop", device.PublicKey),
            new DeviceEnrolled(peerKey.Replica, "phone", peerKey.PublicKey),
            new DeviceEnrolled(lateKey.Replica, "tablet", lateKey.PublicKey),
        ]).Error.Should().BeNull();
        await device.AddPeerKeysAsync(new Dictionary<ReplicaId, RecipientPublicKey> { [peerKey.Replica] = peerEncryption.PublicKey, [lateKey.Replica] = lateEncryption.PublicKey }, None);
        (await device.ReceiveAsync(school.Ledger.Export(Account), None)).IsClean.Should().BeTrue();

        device.IsEnrolledInLog.Should().BeTrue();
        var pending = await device.PendingAsync(None);
        pending.Should().ContainSingle().Which.Event.Payload.Should().BeOfType<EncryptionKeyPublished>()
            .Which.PublicKey.Should().Equal(device.Keys.Current.PublicKey.Encoded.ToArray());
        var recipients = await device.GetRecipientsAsync(None);
        recipients.Select(r => r.Id.ToString()).Should().BeEquivalentTo([schoolEncryption.Id.ToString(), peerEncryption.Id.ToString(), lateEncryption.Id.ToString()]);
        recipients.Should().NotContain(r => r.Id == device.Keys.Current.Id);

        // Acknowledged: nothing pending; a reopen does not publish the same key again.
        await device.AcknowledgeAsync(pending, None);
        (await device.PendingAsync(None)).Should().BeEmpty();
        using (var reopened = await DeviceReplica.OpenAsync(vault.Store))
        {
            (await reopened.PendingAsync(None)).Should().BeEmpty();
        }

        // A revoked device is never a recipient again, even with a key from enrollment.
        school.Record(new DeviceRevoked(lateKey.Replica, "lost")).Error.Should().BeNull();
        await device.ReceiveAsync(school.Ledger.Export(Account), None);
        (await device.GetRecipientsAsync(None)).Select(r => r.Id.ToString()).Should().BeEquivalentTo([schoolEncryption.Id.ToString(), peerEncryption.Id.ToString()]);
    }

    [Fact]
    public async Task A_replica_that_becomes_a_recipient_later_gets_the_whole_chain_once()
    {
        using var test = new TestVault();
        await using var vault = await test.EnrolledAsync();
        using var device = await DeviceReplica.OpenAsync(vault.Store);
        using var schoolKey = ReplicaKey.Create();
        using var schoolEncryption = EncryptionKeyPair.Generate();
        using var peerKey = ReplicaKey.Create();
        using var peerEncryption = EncryptionKeyPair.Generate();
        var school = new Replica(Account, schoolKey);
        school.RecordBatch([
            new AccountOpened("ms", "Anna", schoolKey.PublicKey),
            new EncryptionKeyPublished([.. schoolEncryption.PublicKey.Encoded.Span]),
            new DeviceEnrolled(device.Id, "laptop", device.PublicKey),
        ]).Error.Should().BeNull();
        await device.ReceiveAsync(school.Ledger.Export(Account), None);
        await device.AcknowledgeAsync(await device.PendingAsync(None), None);
        (await device.PendingAsync(None)).Should().BeEmpty();

        // A new phone joins and publishes its key: the device re-sends its chain (1 event) once, for everyone.
        school.Record(new DeviceEnrolled(peerKey.Replica, "phone", peerKey.PublicKey)).Error.Should().BeNull();
        var peer = new Replica(Account, peerKey);
        peer.Receive(school.Ledger.Export(Account));
        peer.Record(new EncryptionKeyPublished([.. peerEncryption.PublicKey.Encoded.Span])).Error.Should().BeNull();
        await device.ReceiveAsync([.. school.Ledger.Export(Account), .. peer.Ledger.Export(Account).Where(e => e.Event.Replica == peer.Id)], None);

        var resend = await device.PendingAsync(None);
        resend.Should().ContainSingle().Which.Event.Replica.Should().Be(device.Id);
        (await device.GetRecipientsAsync(None)).Select(r => r.Id.ToString()).Should().Contain(peerEncryption.Id.ToString());
        await device.AcknowledgeAsync(resend, None);
        (await device.PendingAsync(None)).Should().BeEmpty();
    }
}
