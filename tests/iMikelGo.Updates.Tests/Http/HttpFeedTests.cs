namespace IMikelGo.Updates.Tests.Http;

/// <summary>
/// <see cref="HttpUpdateSource"/> against real HTTPS: the relay's <c>/updates/</c> route for the normal path, and a scripted
/// static host for what only a network adds to the attack list (endless body, dropped connection, stalled transfer).
/// </summary>
[Collection(FeedRelayCollection.Name)]
public sealed class HttpFeedTests : IDisposable
{
    private readonly Fx _fx = new();
    private readonly FeedRelay _relay;
    private readonly HttpClient _http;

    public HttpFeedTests(FeedRelay relay)
    {
        _relay = relay;
        _http = relay.Client();

        // Keep the fake clock (manifest validity) at the real time so that real-time read timeouts agree with it.
        _fx.Time.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        relay.FeedDirectory = _fx.Feed;
    }

    public void Dispose()
    {
        _http.Dispose();
        _fx.Dispose();
    }

    private HttpUpdateSource Relay() => new(_http, _relay.Feed);

    private static async Task<byte[]> ReadAll(IUpdateSource source, string path, long offset)
    {
        var stream = await source.OpenAsync(path, offset, CancellationToken.None);
        stream.Should().NotBeNull(path);
        await using (stream!)
        {
            using var ms = new MemoryStream();
            await stream!.CopyToAsync(ms);
            return ms.ToArray();
        }
    }

    private string Part(string version, string name) => Path.Combine(_fx.Install, "staging", version, name + ".part");

    [Fact]
    public async Task Http_source_reads_the_manifest_a_package_and_a_resumed_range_from_the_relay()
    {
        _fx.Publish("1.5.0");
        var source = Relay();

        (await ReadAll(source, "stable/manifest.json", 0)).Should().Equal(File.ReadAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json")));
        (await ReadAll(source, "stable/manifest.json.p7s", 0)).Should().Equal(File.ReadAllBytes(Path.Combine(_fx.Feed, "stable", "manifest.json.p7s")));
        var sounds = File.ReadAllBytes(_fx.FeedFile("1.5.0", "data/sounds.bin"));
        (await ReadAll(source, "files/1.5.0/data/sounds.bin", 0)).Should().Equal(sounds);
        (await ReadAll(source, "files/1.5.0/data/sounds.bin", 1234)).Should().Equal(sounds[1234..]);
        (await source.OpenAsync("files/1.5.0/data/missing.bin", 0, CancellationToken.None)).Should().BeNull();
    }

    [Fact]
    public async Task Check_download_verify_and_activate_through_the_relay()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var updater = _fx.Updater("1.4.0", Relay());

        var check = await updater.CheckAsync();
        check.Error.Code.Should().Be(UpdateErrorCode.None, check.Error.Message);
        check.Update!.Manifest.Version.Text.Should().Be("1.5.0");
        var download = await updater.DownloadAsync(check.Update);
        download.Error.Code.Should().Be(UpdateErrorCode.None, download.Error.Message);
        updater.Activate(check.Update).Error.Code.Should().Be(UpdateErrorCode.None);

        var launch = _fx.Launcher().Resolve()!;
        launch.Version.Text.Should().Be("1.5.0");
        Directory.Exists(Path.Combine(_fx.Install, "versions", "1.4.0")).Should().BeTrue("the previous version stays until the new one confirms");
        _fx.Launcher().ConfirmStarted(launch.Version);
        _fx.Running().Should().Be("1.5.0");
        (await _fx.Updater("1.5.0", Relay()).CheckAsync()).Error.Code.Should().Be(UpdateErrorCode.UpToDate);
    }

    [Fact]
    public async Task A_complete_partial_file_left_by_a_kill_before_its_rename_is_verified_without_asking_for_an_empty_range()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var updater = _fx.Updater("1.4.0", Relay());
        var check = await updater.CheckAsync();
        (await updater.DownloadAsync(check.Update!)).Error.Code.Should().Be(UpdateErrorCode.None);
        var staged = Path.Combine(_fx.Install, "staging", "1.5.0", "imikelgo.dll");
        File.Move(staged, staged + ".part"); // killed after the last byte, before the rename

        var again = await _fx.Updater("1.4.0", Relay()).InstallAsync();

        again.Error.Code.Should().Be(UpdateErrorCode.None, again.Error.Message); // a range from the file's end would be a 416
        _fx.Launcher().Resolve()!.Version.Text.Should().Be("1.5.0");
    }

    [Fact]
    public async Task A_relay_impostor_with_another_certificate_is_refused_before_anything_is_read()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        using var wrongPin = FeedRelay.Pinned(new string('0', 64));

        var r = await _fx.Updater("1.4.0", new HttpUpdateSource(wrongPin, _relay.Feed)).InstallAsync();

        r.Error.Code.Should().Be(UpdateErrorCode.Unavailable, r.Error.Message);
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Endless_data_a_file_on_the_relay_larger_than_declared_is_cut_right_after_the_declared_size()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        await using (var grow = new FileStream(_fx.FeedFile("1.5.0", "imikelgo.dll"), FileMode.Append))
        {
            await grow.WriteAsync(new byte[4 << 20]);
        }

        var r = await _fx.Updater("1.4.0", Relay()).InstallAsync();

        r.Error.Code.Should().Be(UpdateErrorCode.PackageMismatch);
        r.Error.Message.Should().Contain("endless data").And.Contain("imikelgo.dll");
        File.Exists(Part("1.5.0", "imikelgo.dll")).Should().BeFalse("the oversized partial file is discarded");
        Directory.Exists(Path.Combine(_fx.Install, "versions", "1.5.0")).Should().BeFalse();
        _fx.Running().Should().Be("1.4.0");
    }

    [Fact]
    public async Task Endless_data_a_host_that_never_stops_sending_is_cut_off_and_hung_up_on()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0");
        var chunk = new byte[64 * 1024];
        Array.Fill(chunk, (byte)'A');
        await using var server = await ScriptedFeedServer.StartAsync(_fx.Feed, async (self, context, path) =>
        {
            if (!path.EndsWith("imikelgo.dll", StringComparison.Ordinal))
            {
                return false;
            }

            await self.StreamUntilClientLeavesAsync(context, contentLength: null, _ => chunk);
            return true;
        });
        using var client = FeedRelay.Pinned(server.Fingerprint);

        var r = await _fx.Updater("1.4.0", server.Source(client)).InstallAsync();

        r.Error.Code.Should().Be(UpdateErrorCode.PackageMismatch);
        r.Error.Message.Should().Contain("endless data");
        await server.ClientGone.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the updater closed the connection: the stream ends
        _fx.Running().Should().Be("1.4.0");
        File.Exists(Part("1.5.0", "imikelgo.dll")).Should().BeFalse();
    }

    [Fact]
    public async Task A_connection_dropped_mid_package_keeps_the_running_version_and_the_retry_resumes_with_a_range()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", dllSize: 200_000);
        var dll = File.ReadAllBytes(_fx.FeedFile("1.5.0", "imikelgo.dll"));
        var drop = true;
        await using var server = await ScriptedFeedServer.StartAsync(_fx.Feed, async (_, context, path) =>
        {
            if (!drop || !path.EndsWith("imikelgo.dll", StringComparison.Ordinal))
            {
                return false;
            }

            context.Response.ContentLength = dll.Length;
            await context.Response.Body.WriteAsync(dll.AsMemory(0, 80_000));
            await context.Response.Body.FlushAsync();
            await Task.Delay(300);
            context.Abort(); // the connection drops mid-file
            return true;
        });
        using var client = FeedRelay.Pinned(server.Fingerprint);

        var first = await _fx.Updater("1.4.0", server.Source(client)).InstallAsync();

        first.Error.Code.Should().Be(UpdateErrorCode.Unavailable, first.Error.Message);
        _fx.Running().Should().Be("1.4.0");
        Directory.Exists(Path.Combine(_fx.Install, "versions", "1.5.0")).Should().BeFalse("nothing incomplete is activated");
        File.Exists(Path.Combine(_fx.Install, "staging", "1.5.0", "imikelgo.dll")).Should().BeFalse();
        var part = new FileInfo(Part("1.5.0", "imikelgo.dll"));
        var kept = part.Exists ? part.Length : 0;
        kept.Should().BeLessThan(dll.Length);
        File.ReadAllBytes(part.FullName).Should().Equal(dll[..(int)kept], "what was received so far is kept for the resume");

        drop = false;
        var second = await _fx.Updater("1.4.0", server.Source(client)).InstallAsync();

        second.Error.Code.Should().Be(UpdateErrorCode.None, second.Error.Message);
        _fx.Launcher().Resolve()!.Version.Text.Should().Be("1.5.0");
        var retry = server.Requests.Last(q => q.Path.EndsWith("imikelgo.dll", StringComparison.Ordinal));
        retry.Range.Should().Be(kept > 0 ? $"bytes={kept}-" : null, "the retry asks only for the missing bytes");
    }

    [Fact]
    public async Task Stalled_transfers_time_out_fail_closed_keep_the_running_version_and_later_complete()
    {
        await _fx.Bootstrap();
        _fx.Publish("1.5.0", dllSize: 100_000);
        var dll = File.ReadAllBytes(_fx.FeedFile("1.5.0", "imikelgo.dll"));
        var stall = "stable/manifest.json";
        await using var server = await ScriptedFeedServer.StartAsync(_fx.Feed, async (self, context, path) =>
        {
            if (!path.EndsWith(stall, StringComparison.Ordinal))
            {
                return false;
            }

            // Headers and, for the package, a first part arrive; then nothing.
            var first = path.EndsWith(".dll", StringComparison.Ordinal) ? dll[..10_000] : [];
            await self.StreamUntilClientLeavesAsync(context, first.Length + 1, sent => sent == 0 && first.Length > 0 ? first : null);
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => self.ClientGone.TrySetResult(), TaskScheduler.Default);
            return true;
        });
        using var client = FeedRelay.Pinned(server.Fingerprint);
        Updater Device() => _fx.Updater("1.4.0", server.Source(client), readTimeout: TimeSpan.FromSeconds(1), time: TimeProvider.System);

        var check = await Device().CheckAsync();
        check.Error.Code.Should().Be(UpdateErrorCode.Unavailable, check.Error.Message);
        check.Error.Message.Should().Contain("no data from the feed").And.Contain("still on 1.4.0");
        _fx.Running().Should().Be("1.4.0");

        stall = "files/1.5.0/imikelgo.dll";
        var stalled = await Device().InstallAsync();
        stalled.Error.Code.Should().Be(UpdateErrorCode.Unavailable, stalled.Error.Message);
        _fx.Running().Should().Be("1.4.0");
        Directory.Exists(Path.Combine(_fx.Install, "versions", "1.5.0")).Should().BeFalse();

        stall = "never";
        var later = await Device().InstallAsync();
        later.Error.Code.Should().Be(UpdateErrorCode.None, later.Error.Message);
        _fx.Launcher().Resolve()!.Version.Text.Should().Be("1.5.0");
    }
}
