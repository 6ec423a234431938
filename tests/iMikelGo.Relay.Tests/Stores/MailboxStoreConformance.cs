using System.Text;
using FluentAssertions;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Signing;
using IMikelGo.Engine.Sync;
using IMikelGo.Sealing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace IMikelGo.Relay.Tests.Stores;

/// <summary>
/// The contract every <see cref="IMailboxStore"/> passes (issue 5, Storage). Each test uses fresh account and caller
/// names, so stores may share one database across tests.
/// </summary>
public abstract partial class MailboxStoreConformance : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private IMailboxStore? store;

    protected MailboxStoreConformance()
    {
        var tag = Guid.NewGuid().ToString("N")[..10];
        Account = $"acct-{tag}";
        OtherAccount = $"acct-{tag}-b";
        Device = $"dev-{tag}";
    }

    protected FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 9, 1, 8, 0, 0, TimeSpan.Zero));

    protected string Account { get; }

    protected string OtherAccount { get; }

    protected string Device { get; }

    protected IMailboxStore Store => store ?? throw new InvalidOperationException("not initialized");

    /// <summary>Creates the store under test (called once per test).</summary>
    protected abstract Task<IMailboxStore> CreateStoreAsync(TimeProvider clock);

    /// <summary>A second, independent instance on the same storage (another process / relay instance).</summary>
    protected abstract Task<IMailboxStore> CreateSecondInstanceAsync();

    /// <summary>Every byte the store holds at rest (the database file(s) or a full dump), as Latin-1 text.</summary>
    protected abstract Task<string> DumpAsync();

    /// <summary>How raw stored bytes appear in <see cref="DumpAsync"/> (verbatim, or base64 in JSON).</summary>
    protected abstract string AsDumped(byte[] data);

    /// <summary>The store-specific acknowledged position (not on the port).</summary>
    protected abstract Task<long> AckedAsync(string account, string caller);

    public async Task InitializeAsync() => store = await CreateStoreAsync(Clock);

    public virtual Task DisposeAsync()
    {
        (store as IDisposable)?.Dispose();
        return Task.CompletedTask;
    }

    protected static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Fact]
    public async Task An_empty_mailbox_has_head_0_size_0_and_reads_nothing()
    {
        (await Store.HeadAsync(Account, None)).Should().Be(0);
        (await Store.SizeAsync(Account, None)).Should().Be(0);
        (await Store.ReadAsync(Account, 0, 100, None)).Should().BeEmpty();
    }

    [Fact]
    public async Task Appends_get_positions_1_2_3_and_read_back_exactly_the_bytes_given()
    {
        var items = Enumerable.Range(0, 3).Select(i => (Id: Guid.NewGuid(), Data: Bytes(100 + i, i))).ToList();
        var results = new List<PushResult>();
        foreach (var (id, data) in items)
        {
            results.Add(await Store.AppendAsync(Account, id, Device, data, None));
        }

        results.Select(r => r.Position).Should().Equal(1, 2, 3);
        results.Should().OnlyContain(r => !r.Duplicate);
        results.Select(r => r.BundleId).Should().Equal(items.Select(i => i.Id));
        var read = await Store.ReadAsync(Account, 0, 100, None);
        read.Select(b => b.Position).Should().Equal(1, 2, 3);
        read.Select(b => b.BundleId).Should().Equal(items.Select(i => i.Id));
        read.Should().OnlyContain(b => b.Sender == Device && b.StoredAt == Clock.GetUtcNow());
        for (var i = 0; i < 3; i++)
        {
            read[i].Data.Should().Equal(items[i].Data);
        }

        (await Store.HeadAsync(Account, None)).Should().Be(3);
    }

    [Fact]
    public async Task A_sequential_retry_returns_the_original_position_and_stores_no_second_copy_F05()
    {
        var id = Guid.NewGuid();
        var data = Bytes(64, 1);
        var first = await Store.AppendAsync(Account, id, Device, data, None);
        await Store.AppendAsync(Account, Guid.NewGuid(), Device, Bytes(10, 2), None);
        var retry = await Store.AppendAsync(Account, id, Device, data, None);
        var retryAgain = await Store.AppendAsync(Account, id, "someone-else", Bytes(64, 3), None);

        first.Should().Be(new PushResult(1, id, false));
        retry.Should().Be(new PushResult(1, id, true));
        retryAgain.Should().Be(new PushResult(1, id, true));
        var read = await Store.ReadAsync(Account, 0, 100, None);
        read.Should().HaveCount(2);
        read.Count(b => b.BundleId == id).Should().Be(1);
        read[0].Data.Should().Equal(data, "a retry never replaces the stored bundle");
        (await Store.HeadAsync(Account, None)).Should().Be(2);
    }

    [Fact]
    public async Task Concurrent_duplicate_appends_store_one_copy_and_all_answer_the_same_position_F05()
    {
        await Store.AppendAsync(Account, Guid.NewGuid(), Device, Bytes(8, 1), None);
        var id = Guid.NewGuid();
        var data = Bytes(256, 7);
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() => Store.AppendAsync(Account, id, Device, data, None))));

        results.Select(r => r.Position).Distinct().Should().Equal(2L);
        results.Count(r => !r.Duplicate).Should().Be(1, "exactly one append stored it");
        (await Store.ReadAsync(Account, 0, 100, None)).Count(b => b.BundleId == id).Should().Be(1);
        (await Store.HeadAsync(Account, None)).Should().Be(2);
        (await Store.SizeAsync(Account, None)).Should().Be(8 + 256);
    }

    [Fact]
    public async Task Concurrent_appends_from_several_tasks_get_gap_free_unique_positions()
    {
        const int Tasks = 6, Each = 15;
        var results = await Task.WhenAll(Enumerable.Range(0, Tasks).Select(t => Task.Run(async () =>
        {
            var mine = new List<PushResult>();
            for (var i = 0; i < Each; i++)
            {
                mine.Add(await Store.AppendAsync(Account, Guid.NewGuid(), $"{Device}-{t}", Bytes(32, (t * 1000) + i), None));
            }

            return mine;
        })));

        var positions = results.SelectMany(r => r.Select(p => p.Position)).Order().ToList();
        positions.Should().Equal(Enumerable.Range(1, Tasks * Each).Select(i => (long)i));
        foreach (var perTask in results)
        {
            perTask.Select(p => p.Position).Should().BeInAscendingOrder("one writer's pushes keep their order");
        }

        var read = await Store.ReadAsync(Account, 0, 1000, None);
        read.Select(b => b.Position).Should().Equal(positions);
        read.Select(b => b.BundleId).Should().BeEquivalentTo(results.SelectMany(r => r.Select(p => p.BundleId)));
    }

    [Fact]
    public async Task Two_instances_on_the_same_storage_share_positions_and_idempotency()
    {
        var second = await CreateSecondInstanceAsync();
        try
        {
            var shared = Guid.NewGuid();
            var results = await Task.WhenAll(new[] { Store, second }.SelectMany((s, n) => Enumerable.Range(0, 4).Select(t => Task.Run(async () =>
            {
                var mine = new List<PushResult> { await s.AppendAsync(Account, shared, Device, Bytes(20, 99), None) };
                for (var i = 0; i < 10; i++)
                {
                    mine.Add(await s.AppendAsync(Account, Guid.NewGuid(), Device, Bytes(16, (n * 100) + (t * 10) + i), None));
                }

                return mine;
            }))));

            var all = results.SelectMany(r => r).ToList();
            all.Where(r => r.BundleId == shared).Select(r => r.Position).Distinct().Should().HaveCount(1);
            all.Count(r => r.BundleId == shared && !r.Duplicate).Should().Be(1);
            var stored = all.Where(r => !r.Duplicate).Select(r => r.Position).Order().ToList();
            stored.Should().Equal(Enumerable.Range(1, 81).Select(i => (long)i));
            (await second.ReadAsync(Account, 0, 1000, None)).Select(b => b.Position).Should().Equal(stored);
            (await Store.HeadAsync(Account, None)).Should().Be(81);
        }
        finally
        {
            (second as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public async Task A_reader_polling_during_concurrent_appends_never_skips_a_position_F01_F03()
    {
        var second = await CreateSecondInstanceAsync();
        try
        {
            const int Total = 60;
            using var done = new CancellationTokenSource();
            var seen = new List<long>();
            var reader = Task.Run(async () =>
            {
                long cursor = 0;
                while (true)
                {
                    var finished = done.IsCancellationRequested;
                    var page = await second.ReadAsync(Account, cursor, 7, None);
                    foreach (var b in page)
                    {
                        seen.Add(b.Position);
                        cursor = b.Position;
                    }

                    if (finished && page.Count == 0)
                    {
                        return;
                    }
                }
            });
            await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(async () =>
            {
                for (var i = 0; i < Total / 4; i++)
                {
                    await Store.AppendAsync(Account, Guid.NewGuid(), Device, Bytes(24, (t * 100) + i), None);
                }
            })));
            await done.CancelAsync();
            await reader;

            seen.Should().Equal(Enumerable.Range(1, Total).Select(i => (long)i), "a cursor that only moves to positions it read misses nothing");
        }
        finally
        {
            (second as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public async Task Reads_page_by_cursor_and_limit()
    {
        for (var i = 0; i < 10; i++)
        {
            await Store.AppendAsync(Account, Guid.NewGuid(), Device, Bytes(8, i), None);
        }

        (await Store.ReadAsync(Account, 0, 4, None)).Select(b => b.Position).Should().Equal(1, 2, 3, 4);
        (await Store.ReadAsync(Account, 4, 4, None)).Select(b => b.Position).Should().Equal(5, 6, 7, 8);
        (await Store.ReadAsync(Account, 8, 4, None)).Select(b => b.Position).Should().Equal(9, 10);
        (await Store.ReadAsync(Account, 10, 4, None)).Should().BeEmpty();
        (await Store.ReadAsync(Account, 99, 4, None)).Should().BeEmpty();
        (await Store.ReadAsync(Account, 3, 1, None)).Single().Position.Should().Be(4);
    }

    [Fact]
    public async Task Mailboxes_are_separate_per_account_even_for_the_same_bundle_id()
    {
        var id = Guid.NewGuid();
        (await Store.AppendAsync(Account, Guid.NewGuid(), Device, Bytes(5, 1), None)).Position.Should().Be(1);
        (await Store.AppendAsync(Account, id, Device, Bytes(6, 2), None)).Should().Be(new PushResult(2, id, false));
        (await Store.AppendAsync(OtherAccount, id, Device, Bytes(7, 3), None)).Should().Be(new PushResult(1, id, false));

        (await Store.ReadAsync(OtherAccount, 0, 10, None)).Single().Data.Should().Equal(Bytes(7, 3));
        (await Store.HeadAsync(Account, None)).Should().Be(2);
        (await Store.HeadAsync(OtherAccount, None)).Should().Be(1);
        (await Store.SizeAsync(OtherAccount, None)).Should().Be(7);
    }

    [Fact]
    public async Task Size_counts_each_stored_byte_once_for_quotas()
    {
        var id = Guid.NewGuid();
        await Store.AppendAsync(Account, id, Device, Bytes(1000, 1), None);
        await Store.AppendAsync(Account, Guid.NewGuid(), Device, Bytes(24, 2), None);
        await Store.AppendAsync(Account, id, Device, Bytes(1000, 1), None);
        await Store.AppendAsync(Account, Guid.NewGuid(), Device, Array.Empty<byte>(), None);

        (await Store.SizeAsync(Account, None)).Should().Be(1024);
        (await Store.SizeAsync(OtherAccount, None)).Should().Be(0);
    }

    [Fact]
    public async Task A_large_bundle_round_trips()
    {
        var data = Bytes(RelayProtocol.MaxBundleBytes, 5);
        await Store.AppendAsync(Account, Guid.NewGuid(), Device, data, None);
        (await Store.ReadAsync(Account, 0, 1, None)).Single().Data.Should().Equal(data);
        (await Store.SizeAsync(Account, None)).Should().Be(data.Length);
    }

    [Fact]
    public async Task Acks_record_the_highest_position_and_never_move_back()
    {
        (await AckedAsync(Account, Device)).Should().Be(0);
        await Store.AckAsync(Account, Device, 5, None);
        await Store.AckAsync(Account, Device, 3, None);
        (await AckedAsync(Account, Device)).Should().Be(5);
        await Store.AckAsync(Account, Device, 9, None);
        (await AckedAsync(Account, Device)).Should().Be(9);
        (await AckedAsync(OtherAccount, Device)).Should().Be(0);
        (await AckedAsync(Account, "other-" + Device)).Should().Be(0);
    }

    [Fact]
    public async Task Callers_are_stored_replaced_and_deleted()
    {
        var id = "caller-" + Device;
        (await Store.GetCallerAsync(id, None)).Should().BeNull();
        await Store.PutCallerAsync(new RelayCaller(id, Account, [1, 2, 3], false), None);
        var got = await Store.GetCallerAsync(id, None);
        got.Should().NotBeNull();
        got!.Account.Should().Be(Account);
        got.SigningKey.Should().Equal(1, 2, 3);
        got.IsSchool.Should().BeFalse();

        await Store.PutCallerAsync(new RelayCaller(id, Account, [9, 9], true), None);
        got = await Store.GetCallerAsync(id, None);
        got!.SigningKey.Should().Equal(9, 9);
        got.IsSchool.Should().BeTrue();

        await Store.DeleteCallerAsync(id, None);
        (await Store.GetCallerAsync(id, None)).Should().BeNull();
        await Store.DeleteCallerAsync(id, None); // deleting twice is harmless
    }

    [Fact]
    public async Task A_device_revocation_applies_to_that_device_only()
    {
        (await Store.IsRevokedAsync(Account, Device, None)).Should().BeFalse();
        await Store.RevokeAsync(Account, Device, "lost phone", None);
        await Store.RevokeAsync(Account, Device, "again", None); // idempotent

        (await Store.IsRevokedAsync(Account, Device, None)).Should().BeTrue();
        (await Store.IsRevokedAsync(Account, Device + "-2", None)).Should().BeFalse();
        (await Store.IsRevokedAsync(OtherAccount, Device, None)).Should().BeFalse();
    }

    [Fact]
    public async Task An_account_revocation_applies_to_every_device_of_that_account_only()
    {
        await Store.RevokeAsync(Account, null, "teacher left", None);
        (await Store.IsRevokedAsync(Account, Device, None)).Should().BeTrue();
        (await Store.IsRevokedAsync(Account, "any-other-device", None)).Should().BeTrue();
        (await Store.IsRevokedAsync(OtherAccount, Device, None)).Should().BeFalse();
    }

    [Fact]
    public async Task Deleting_a_caller_never_cancels_its_pending_wipe()
    {
        await Store.PutCallerAsync(new RelayCaller(Device, Account, [4, 2], false), None);
        await Store.RevokeAsync(Account, Device, "stolen", None);
        await Store.DeleteCallerAsync(Device, None);

        (await Store.GetCallerAsync(Device, None)).Should().BeNull();
        (await Store.IsRevokedAsync(Account, Device, None)).Should().BeTrue();
        var again = await CreateSecondInstanceAsync();
        try
        {
            (await again.IsRevokedAsync(Account, Device, None)).Should().BeTrue("the revocation is stored, not cached");
        }
        finally
        {
            (again as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public async Task Wipe_acknowledgements_are_recorded_per_device()
    {
        await Store.RevokeAsync(Account, Device, "stolen", None);
        (await Store.HasWipedAsync(Account, Device, None)).Should().BeFalse();
        await Store.AcknowledgeWipeAsync(Account, Device, None);
        await Store.AcknowledgeWipeAsync(Account, Device, None);

        (await Store.HasWipedAsync(Account, Device, None)).Should().BeTrue();
        (await Store.HasWipedAsync(Account, Device + "-2", None)).Should().BeFalse();
        (await Store.HasWipedAsync(OtherAccount, Device, None)).Should().BeFalse();
        (await Store.IsRevokedAsync(Account, Device, None)).Should().BeTrue("a wipe done stays revoked");
    }

    [Fact]
    public async Task A_nonce_is_usable_once_per_caller()
    {
        var expires = Clock.GetUtcNow().AddMinutes(10);
        (await Store.TryUseNonceAsync(Device, "n-1", expires, None)).Should().BeTrue();
        (await Store.TryUseNonceAsync(Device, "n-1", expires, None)).Should().BeFalse();
        (await Store.TryUseNonceAsync(Device, "n-2", expires, None)).Should().BeTrue();
        (await Store.TryUseNonceAsync(Device + "-other", "n-1", expires, None)).Should().BeTrue("nonces are per caller");
    }

    [Fact]
    public async Task A_nonce_used_concurrently_from_two_instances_succeeds_exactly_once()
    {
        var second = await CreateSecondInstanceAsync();
        try
        {
            var expires = Clock.GetUtcNow().AddMinutes(10);
            var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i =>
                Task.Run(() => (i % 2 == 0 ? Store : second).TryUseNonceAsync(Device, "replayed", expires, None))));
            results.Count(ok => ok).Should().Be(1);
        }
        finally
        {
            (second as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public async Task Expired_nonces_are_pruned_and_live_ones_kept()
    {
        var now = Clock.GetUtcNow();
        (await Store.TryUseNonceAsync(Device, "old", now.AddMinutes(5), None)).Should().BeTrue();
        (await Store.TryUseNonceAsync(Device, "live", now.AddHours(2), None)).Should().BeTrue();
        Clock.Advance(TimeSpan.FromMinutes(30));

        (await Store.TryUseNonceAsync(Device, "trigger", Clock.GetUtcNow().AddMinutes(5), None)).Should().BeTrue();
        (await Store.TryUseNonceAsync(Device, "live", now.AddHours(2), None)).Should().BeFalse("an unexpired nonce is never pruned");
        (await Store.TryUseNonceAsync(Device, "old", Clock.GetUtcNow().AddMinutes(5), None)).Should().BeTrue(
            "the expired entry was pruned (the relay's timestamp window refuses such a request before it gets here)");
    }

    [Fact]
    public async Task Data_survives_reopening_the_store()
    {
        var id = Guid.NewGuid();
        await Store.AppendAsync(Account, id, Device, Bytes(40, 4), None);
        await Store.PutCallerAsync(new RelayCaller(Device, Account, [7], false), None);
        var reopened = await CreateSecondInstanceAsync();
        try
        {
            (await reopened.ReadAsync(Account, 0, 10, None)).Single().BundleId.Should().Be(id);
            (await reopened.AppendAsync(Account, id, Device, Bytes(40, 4), None)).Should().Be(new PushResult(1, id, true));
            (await reopened.GetCallerAsync(Device, None))!.SigningKey.Should().Equal(7);
        }
        finally
        {
            (reopened as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public async Task Bad_arguments_are_refused_without_writing()
    {
        await FluentActions.Awaiting(() => Store.AppendAsync("", Guid.NewGuid(), Device, Bytes(4, 1), None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => Store.ReadAsync(Account, -1, 10, None)).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => Store.ReadAsync(Account, 0, 0, None)).Should().ThrowAsync<ArgumentException>();
        (await Store.HeadAsync(Account, None)).Should().Be(0);
    }

    [Fact]
    public async Task The_store_at_rest_holds_no_plaintext_only_the_sealed_bytes_given()
    {
        var marker = "plaintext-marker-" + Guid.NewGuid().ToString("N");
        var account = new AccountId(Account);
        using var key = ReplicaKey.Create();
        var school = new Replica(account, key);
        school.RecordBatch([
            new AccountOpened("ms-" + marker, marker + " teacher", key.PublicKey),
            new SeriesPublished(new SeriesId("piano"), marker + " piano", 1, 900, 45, new RoomId("room-" + marker),
                [new StudentId("student-" + marker)], new DateOnly(2026, 9, 1), new DateOnly(2026, 12, 31)),
        ]).Error.Should().BeNull();
        using var device = EncryptionKeyPair.Generate();
        var sealedBundle = EventBundles.Seal(school.Id, [.. school.Ledger.Export(account)], [device.PublicKey]);
        Encoding.Latin1.GetString(sealedBundle.Bytes).Should().NotContain(marker, "precondition: sealing hides the plaintext");

        await Store.AppendAsync(Account, sealedBundle.BundleId, school.Id.Value, sealedBundle.Bytes, None);
        var control = Encoding.UTF8.GetBytes("CONTROL-" + Guid.NewGuid().ToString("N") + "-UNSEALED");
        await Store.AppendAsync(Account, Guid.NewGuid(), Device, control, None);

        var stored = await Store.ReadAsync(Account, 0, 10, None);
        stored[0].Data.Should().Equal(sealedBundle.Bytes, "the store keeps exactly the sealed bytes");
        EventBundles.TryOpen(stored[0].Data, account, device, null, out var opened, out var error).Should().BeTrue(error);
        opened.Should().HaveCount(2);

        var dump = await DumpAsync();
        dump.Should().Contain(AsDumped(control), "the scan sees stored data (control)");
        dump.Should().NotContain(marker);
        dump.Should().NotContain(Convert.ToHexString(Encoding.UTF8.GetBytes(marker)), "nor hex-encoded");
        dump.Should().NotContain(Convert.ToHexStringLower(Encoding.UTF8.GetBytes(marker)));
    }
}
