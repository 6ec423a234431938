using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace IMikelGo.Relay;

/// <summary>The relay's operations behind the HTTP endpoints; callers are already authenticated.</summary>
internal sealed partial class RelayService(IMailboxStore store, MailboxSignals signals, RelayTelemetry telemetry, RelayOptions options, ILogger<RelayService> logger)
{
    /// <summary>Pull page size when the client names none.</summary>
    public const int DefaultPageSize = 100;

    /// <summary>Most bytes of bundle data in one pull page (at least one bundle is always returned).</summary>
    public const long MaxPageBytes = 16L * 1024 * 1024;

    public async Task<IResult> PushAsync(RelayRequestFeature auth, string account, CancellationToken ct)
    {
        using var activity = RelayTelemetry.Activities.StartActivity("relay.push");
        var body = auth.Body;
        if (body.Length == 0)
        {
            return Problems.BadInput("empty", "The body must be a sealed bundle.");
        }

        if (!Bundle.TryReadHeader(body, out var header, out var error))
        {
            return Problems.BadInput("malformed-bundle", "The body is not a well-formed sealed bundle: " + error);
        }

        if (!string.Equals(header.AccountId, account, StringComparison.Ordinal))
        {
            return Problems.BadInput("account-mismatch", "The bundle's header names another account than the route.");
        }

        if (!string.Equals(header.SenderReplicaId, auth.Caller.Id, StringComparison.Ordinal))
        {
            return Problems.Forbidden("sender-mismatch", "The bundle's header names another sender than the caller.");
        }

        if (await store.SizeAsync(account, ct) + body.Length > options.MailboxQuotaBytes)
        {
            return Problems.Quota($"The mailbox holds at most {options.MailboxQuotaBytes} bytes.");
        }

        var result = await store.AppendAsync(account, header.BundleId, auth.Caller.Id, body, ct);
        activity?.SetTag("imikelgo.position", result.Position);
        if (result.Duplicate)
        {
            telemetry.Duplicates.Add(1);
            return Results.Json(result, RelayJson.Default.PushResult, statusCode: StatusCodes.Status200OK);
        }

        telemetry.Pushed.Add(1);
        telemetry.PushedBytes.Add(body.Length);
        signals.Appended(account);
        LogPushed(logger, auth.Caller.Id, result.Position, body.Length);
        return Results.Json(result, RelayJson.Default.PushResult, statusCode: StatusCodes.Status201Created);
    }

    public async Task<IResult> PullAsync(string account, IQueryCollection query, CancellationToken ct)
    {
        using var activity = RelayTelemetry.Activities.StartActivity("relay.pull");
        if (!TryQuery(query, "after", 0, 0, long.MaxValue, out var after)
            || !TryQuery(query, "limit", DefaultPageSize, 1, RelayProtocol.MaxPageSize, out var limit)
            || !TryQuery(query, "wait", 0, 0, (long)options.MaxLongPoll.TotalSeconds, out var wait))
        {
            return Problems.BadInput("bad-query", $"after >= 0, 1 <= limit <= {RelayProtocol.MaxPageSize}, 0 <= wait <= {(long)options.MaxLongPoll.TotalSeconds}.");
        }

        var items = await store.ReadAsync(account, after, (int)limit, ct);
        if (items.Count == 0 && wait > 0)
        {
            items = await LongPollAsync(account, after, (int)limit, TimeSpan.FromSeconds(wait), ct);
        }

        var page = new List<MailboxItem>(items.Count);
        long bytes = 0;
        foreach (var b in items)
        {
            if (page.Count > 0 && bytes + b.Data.Length > MaxPageBytes)
            {
                break;
            }

            bytes += b.Data.Length;
            page.Add(new MailboxItem(b.Position, b.BundleId, b.Sender, b.Data));
        }

        // F01: next is the last position returned (or the cursor), never the head.
        var next = page.Count > 0 ? page[^1].Position : after;

        // A page cut by neither the limit nor the byte cap returned every bundle after the cursor: positions are
        // gap-free up to the head, so the head is at most `next` (an up-to-date mailbox costs one read, not two).
        var complete = items.Count < limit && page.Count == items.Count;
        var head = complete ? next : Math.Max(next, await store.HeadAsync(account, ct));
        telemetry.Pulled.Add(page.Count);
        activity?.SetTag("imikelgo.count", page.Count);
        return Results.Json(new PullPage(page, next, head), RelayJson.Default.PullPage);
    }

    public async Task<IResult> AckAsync(RelayRequestFeature auth, string account, CancellationToken ct)
    {
        if (!TryJson(auth.Body, RelayJson.Default.AckRequest, out var ack) || ack.Position < 0)
        {
            return Problems.BadInput("malformed-json", "Expected {\"position\": N} with N >= 0.");
        }

        if (ack.Position > await store.HeadAsync(account, ct))
        {
            return Problems.BadInput("beyond-head", "The acknowledged position is beyond the mailbox head.");
        }

        await store.AckAsync(account, auth.Caller.Id, ack.Position, ct);
        return Results.NoContent();
    }

    public async Task<IResult> RegisterDeviceAsync(RelayRequestFeature auth, string account, CancellationToken ct)
    {
        if (!auth.Caller.IsSchool)
        {
            return Problems.Forbidden("not-school", "Only the account's school registers devices.");
        }

        if (!TryJson(auth.Body, RelayJson.Default.DeviceRegistration, out var registration)
            || !IsId(registration.Device) || !TryKey(registration.SigningKey, out var key))
        {
            return Problems.BadInput("malformed-json", "Expected {\"device\": id, \"signingKey\": base64 P-256 SubjectPublicKeyInfo}.");
        }

        if (await store.GetCallerAsync(registration.Device, ct) is { } existing
            && (existing.IsSchool || !string.Equals(existing.Account, account, StringComparison.Ordinal)))
        {
            return Problems.Forbidden("id-taken", "This id belongs to a school or to another account.");
        }

        if (await store.IsRevokedAsync(account, registration.Device, ct))
        {
            return Problems.Forbidden("revoked", "A revoked device id cannot be registered again; enroll the device under a new id.");
        }

        await store.PutCallerAsync(new RelayCaller(registration.Device, account, key, IsSchool: false), ct);
        LogRegistered(logger, registration.Device, account);
        return Results.NoContent();
    }

    public async Task<IResult> RevokeAsync(RelayRequestFeature auth, string account, CancellationToken ct)
    {
        if (!auth.Caller.IsSchool)
        {
            return Problems.Forbidden("not-school", "Only the account's school revokes devices.");
        }

        if (!TryJson(auth.Body, RelayJson.Default.RevocationRequest, out var revocation)
            || (revocation.Device is not null && !IsId(revocation.Device)) || revocation.Reason is null || revocation.Reason.Length > 1024)
        {
            return Problems.BadInput("malformed-json", "Expected {\"device\": id or null, \"reason\": text}.");
        }

        if (revocation.Device is { } device && await store.GetCallerAsync(device, ct) is { } known
            && (known.IsSchool || !string.Equals(known.Account, account, StringComparison.Ordinal)))
        {
            return Problems.Forbidden("not-a-device", "Not a device of this account.");
        }

        await store.RevokeAsync(account, revocation.Device, revocation.Reason, ct);
        LogRevoked(logger, revocation.Device ?? "(whole account)", account);
        return Results.NoContent();
    }

    public async Task<IResult> WipeAckAsync(RelayRequestFeature auth, CancellationToken ct)
    {
        var ack = RequestAuthentication.TryReadWipeAck(auth.Body);
        if (ack is null || !IsId(ack.Device) || !IsId(ack.Account))
        {
            return Problems.BadInput("malformed-json", "Expected {\"device\": id, \"account\": id}.");
        }

        if (!string.Equals(ack.Device, auth.Caller.Id, StringComparison.Ordinal))
        {
            return Problems.Forbidden("other-device", "A device confirms only its own wipe.");
        }

        if (!await store.IsRevokedAsync(ack.Account, ack.Device, ct))
        {
            return Problems.Make(StatusCodes.Status409Conflict, RelayProtocol.BadInputProblemType, "Not revoked", "not-revoked", "This device is not revoked; there is no wipe to confirm.");
        }

        await store.AcknowledgeWipeAsync(ack.Account, ack.Device, ct);
        LogWiped(logger, ack.Device, ack.Account);
        return Results.NoContent();
    }

    private async Task<IReadOnlyList<StoredBundle>> LongPollAsync(string account, long after, int limit, TimeSpan wait, CancellationToken ct)
    {
        telemetry.LongPolls.Add(1);
        try
        {
            var deadline = options.Time.GetUtcNow() + wait;
            while (!ct.IsCancellationRequested)
            {
                var signal = signals.NextAppend(account);
                var items = await store.ReadAsync(account, after, limit, ct);
                var left = deadline - options.Time.GetUtcNow();
                if (items.Count > 0 || left <= TimeSpan.Zero)
                {
                    return items;
                }

                var nap = left < options.LongPollStoreInterval ? left : options.LongPollStoreInterval;
                await Task.WhenAny(signal, Task.Delay(nap, options.Time, ct));
            }

            return [];
        }
        finally
        {
            telemetry.LongPolls.Add(-1);
        }
    }

    private static bool TryQuery(IQueryCollection query, string name, long fallback, long min, long max, out long value)
    {
        value = fallback;
        if (!query.TryGetValue(name, out var raw))
        {
            return true;
        }

        return raw.Count == 1 && long.TryParse(raw[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value)
            && value >= min && value <= max;
    }

    private static bool TryJson<T>(byte[] body, JsonTypeInfo<T> type, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? value)
    {
        try
        {
            value = JsonSerializer.Deserialize(body, type);
            return value is not null;
        }
        catch (JsonException)
        {
            value = default;
            return false;
        }
    }

    private static bool IsId(string? id) => Identifiers.IsValid(id);

    internal static bool TryKey(string? base64, out byte[] key)
    {
        key = [];
        if (base64 is null || base64.Length > 1024)
        {
            return false;
        }

        try
        {
            key = Convert.FromBase64String(base64);
            using var ecdsa = System.Security.Cryptography.ECDsa.Create();
            ecdsa.ImportSubjectPublicKeyInfo(key, out _);
            return ecdsa.KeySize == 256;
        }
        catch (FormatException)
        {
            return false;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stored a bundle of {Sender} at {Position} ({Bytes} bytes)")]
    private static partial void LogPushed(ILogger logger, string sender, long position, int bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Registered device {Device} in account {Account}")]
    private static partial void LogRegistered(ILogger logger, string device, string account);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Revoked {Device} in account {Account}")]
    private static partial void LogRevoked(ILogger logger, string device, string account);

    [LoggerMessage(Level = LogLevel.Information, Message = "Device {Device} of account {Account} confirmed its wipe")]
    private static partial void LogWiped(ILogger logger, string device, string account);
}
