using System.Text;
using System.Text.Json.Nodes;
using IMikelGo.Engine.Relay;
using IMikelGo.Engine.Sync;
using Microsoft.AspNetCore.Http;

namespace IMikelGo.SchoolServer.Tests;

/// <summary>The relay (or a proxy in front of it) answers the school's pulls with errors and garbage for a while.</summary>
public sealed class RelayChaosTests
{
    private static readonly DateOnly Monday = new(2026, 9, 21);
    private static CancellationToken None => CancellationToken.None;

    [PostgresFact]
    public async Task Pulls_answered_with_500_garbage_disordered_and_truncated_pages_apply_nothing_keep_the_cursor_and_the_event_arrives_once_after()
    {
        await using var world = new ServerWorld(durable: true);
        var (school, device) = await SchoolServerTests.PublishedWithDeviceAsync(world, TimeSpan.Zero);
        var store = await world.Server.StoreAsync(None);
        var deviceId = device.DeviceId!.Value.Value;

        // Only the school's pulls are broken (the device's requests pass), from before the absence is recorded on, so
        // no pull of the school can bring it early, whatever the server still has queued.
        var served = new int[5];
        world.RelayChaos = async (context, next) =>
        {
            if (!HttpMethods.IsGet(context.Request.Method) || context.Request.Path.Value?.EndsWith("/bundles", StringComparison.Ordinal) != true ||
                context.Request.Headers[RelayProtocol.CallerHeader] == deviceId)
            {
                await next(context);
                return;
            }

            var kind = served.Sum() % served.Length;
            Interlocked.Increment(ref served[kind]);
            switch (kind)
            {
                case 0:
                    context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    await context.Response.WriteAsync("upstream exploded");
                    return;
                case 1:
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync("{\"items\": [ {\"position\": 7, \"bundleId\": ");
                    return;
                case 2:
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync("{\"items\": null, \"next\": 99, \"head\": 99}");
                    return;
            }

            // The real page, then mangled: the first item twice (out of order), or cut in the middle of the body.
            var real = await RealAnswerAsync(context, next);
            if (kind == 3)
            {
                var page = JsonNode.Parse(real)!.AsObject();
                var items = page["items"]!.AsArray();
                if (items.Count > 0)
                {
                    items.Add(items[0]!.DeepClone());
                }

                await WriteAsync(context, Encoding.UTF8.GetBytes(page.ToJsonString()));
                return;
            }

            context.Response.ContentLength = real.Length;
            await context.Response.Body.WriteAsync(real.AsMemory(0, real.Length / 2));
            await context.Response.Body.FlushAsync();
            context.Abort();
        };

        // The connector syncs one account at a time: once a broken answer was served, any pull begun before the chaos is
        // over, so the cursor is fixed from here on.
        await world.Server.RequestPullAsync(None);
        await ServerWorld.EventuallyAsync(() => Task.FromResult(served.Sum() >= 2), "the school's pulls get broken answers");
        var cursor = await CursorAsync(store);

        var lesson = device.Week(Monday).First(l => l.Students.Count > 0);
        (await device.RecordAbsenceAsync(lesson.Occurrence, lesson.Students[0].Id, false, "ill", None)).Succeeded.Should().BeTrue();
        (await device.SyncAsync(null, None)).Sent.Should().BeGreaterThan(0, "the device's absence is at the relay");
        var before = served.ToArray();
        await world.Server.RequestPullAsync(None);
        await ServerWorld.EventuallyAsync(() => Task.FromResult(served.Zip(before, (now, then) => now - then).All(n => n >= 2)),
            "every kind of broken answer was served at least twice after the absence reached the relay");

        (await store.ReadEventsAsync(None)).Should().NotContain(e => e.Replica == deviceId && e.Line.Contains("student.absent", StringComparison.Ordinal),
            "nothing of a broken page reaches the store");
        school.Report().Absences.Should().BeEmpty("nothing of a broken page reaches the connector's replicas");
        (await CursorAsync(store)).Should().Be(cursor, "the cursor does not move past events that were not applied");

        world.RelayChaos = null;
        await ServerWorld.EventuallyAsync(() => Task.FromResult(school.Report().Absences.Count == 1), "the retried on-demand pull brings the absence once the relay is healthy");
        await ServerWorld.EventuallyAsync(async () => (await store.ReadEventsAsync(None)).Any(e => e.Replica == deviceId && e.Line.Contains("student.absent", StringComparison.Ordinal)), "the absence is stored");
        (await store.ReadEventsAsync(None)).Where(e => e.Replica == deviceId && e.Line.Contains("student.absent", StringComparison.Ordinal))
            .Should().ContainSingle("the device's event is stored once");
        school.Report().Absences.Should().ContainSingle(a => a.Account == TestSchool.Anna.Value && a.Absences == 1);
        (await CursorAsync(store)).Should().NotBe(cursor, "the cursor moved past the applied bundle");
    }

    // The stored cursor of Anna's mailbox as text ("none" before the first pull that found bundles).
    private static async Task<string> CursorAsync(ISchoolConnectorStore store) =>
        await store.GetValueAsync("cursor/" + TestSchool.Anna.Value, None) is { } value ? Convert.ToHexString(value) : "none";

    private static async Task<byte[]> RealAnswerAsync(HttpContext context, RequestDelegate next)
    {
        var body = context.Response.Body;
        using var buffer = new MemoryStream();
        context.Response.Body = buffer;
        try
        {
            await next(context);
        }
        finally
        {
            context.Response.Body = body;
        }

        return buffer.ToArray();
    }

    private static async Task WriteAsync(HttpContext context, byte[] bytes)
    {
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes);
    }
}
