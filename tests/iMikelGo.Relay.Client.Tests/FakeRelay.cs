using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;

namespace IMikelGo.Relay.Client.Tests;

/// <summary>One request as the fake relay saw it.</summary>
internal sealed record SeenRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, byte[] Body, int Status);

/// <summary>
/// The relay protocol in memory, as an <see cref="HttpMessageHandler"/>: checks every signature, timestamp and
/// nonce, keeps per-account mailboxes idempotent by bundle id, pages pulls, answers revoked devices with the wipe
/// problem. Faults are injected through <see cref="Intercept"/>.
/// </summary>
internal sealed class FakeRelay(TimeProvider time) : HttpMessageHandler
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly Dictionary<string, (string Account, byte[] Key)> _callers = [];
    private readonly HashSet<string> _nonces = [];
    private readonly object _lock = new();

    public Dictionary<string, List<MailboxItem>> Mailboxes { get; } = [];

    public List<SeenRequest> Requests { get; } = [];

    public HashSet<string> Revoked { get; } = [];

    public List<WipeAck> WipeAcks { get; } = [];

    public Dictionary<string, long> Acks { get; } = [];

    /// <summary>Fault injection: return a response to short-circuit, throw to drop the connection, null to go on.</summary>
    public Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage?>>? Intercept { get; set; }

    /// <summary>The F01 bug: a page's Next is the mailbox head instead of the last item returned.</summary>
    public bool NextIsHead { get; set; }

    public void Register(string account, string caller, byte[] signingKey)
    {
        lock (_lock)
        {
            _callers[caller] = (account, signingKey);
        }
    }

    public int Count(string method, string pathPart) =>
        Attempts.Count(r => r.Method == method && r.PathAndQuery.Contains(pathPart, StringComparison.Ordinal));

    /// <summary>Every attempt, also those cut short by <see cref="Intercept"/>.</summary>
    public List<SeenRequest> Attempts { get; } = [];

    public List<MailboxItem> Mailbox(string account)
    {
        lock (_lock)
        {
            return Mailboxes.TryGetValue(account, out var m) ? [.. m] : [];
        }
    }

    public static HttpResponseMessage Problem(HttpStatusCode status, string type, string detail)
    {
        var response = new HttpResponseMessage(status)
        {
            Content = JsonContent.Create(new { type, title = status.ToString(), status = (int)status, detail }, options: Json),
        };
        response.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/problem+json");
        return response;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        var headers = request.Headers.ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase);
        var pathAndQuery = request.RequestUri!.PathAndQuery;
        lock (_lock)
        {
            Attempts.Add(new SeenRequest(request.Method.Method, pathAndQuery, headers, body, 0));
        }

        if (Intercept is { } intercept && await intercept(request, cancellationToken) is { } injected)
        {
            return injected;
        }

        HttpResponseMessage response;
        lock (_lock)
        {
            response = Handle(request.Method.Method, request.RequestUri!, pathAndQuery, headers, body);
            Requests.Add(new SeenRequest(request.Method.Method, pathAndQuery, headers, body, (int)response.StatusCode));
        }

        return response;
    }

    private HttpResponseMessage Handle(string method, Uri uri, string pathAndQuery, Dictionary<string, string> headers, byte[] body)
    {
        if (!headers.TryGetValue(RelayProtocol.CallerHeader, out var caller) || !_callers.TryGetValue(caller, out var known))
        {
            return Problem(HttpStatusCode.Unauthorized, RelayProtocol.UnauthenticatedProblemType, "unknown caller");
        }

        if (!headers.TryGetValue(RelayProtocol.TimestampHeader, out var tsText) || !long.TryParse(tsText, out var ts) ||
            Math.Abs(time.GetUtcNow().ToUnixTimeMilliseconds() - ts) > RelayProtocol.MaxRequestAge.TotalMilliseconds)
        {
            return Problem(HttpStatusCode.Unauthorized, RelayProtocol.UnauthenticatedProblemType, "stale request");
        }

        if (!headers.TryGetValue(RelayProtocol.NonceHeader, out var nonce) || !headers.TryGetValue(RelayProtocol.SignatureHeader, out var sig) ||
            !RequestSignature.Verify(known.Key, method, pathAndQuery, ts, nonce, body, sig))
        {
            return Problem(HttpStatusCode.Unauthorized, RelayProtocol.UnauthenticatedProblemType, "bad signature");
        }

        if (!_nonces.Add(caller + "|" + nonce))
        {
            return Problem(HttpStatusCode.Unauthorized, RelayProtocol.UnauthenticatedProblemType, "replayed request");
        }

        var path = uri.AbsolutePath;
        if (path == RelayProtocol.WipeAcks && method == "POST")
        {
            WipeAcks.Add(JsonSerializer.Deserialize<WipeAck>(body, Json)!);
            return new HttpResponseMessage(HttpStatusCode.NoContent);
        }

        if (Revoked.Contains(caller))
        {
            return Problem(HttpStatusCode.Forbidden, RelayProtocol.WipeProblemType, "this device was revoked: wipe its data");
        }

        var account = known.Account;
        if (path == RelayProtocol.Bundles(account) && method == "POST")
        {
            if (!Bundle.TryReadHeader(body, out var header, out var error) || header.AccountId != account)
            {
                return Problem(HttpStatusCode.BadRequest, RelayProtocol.BadInputProblemType, $"not a bundle of this account: {error.Message}");
            }

            var mailbox = Mailboxes.TryGetValue(account, out var m) ? m : Mailboxes[account] = [];
            if (mailbox.FirstOrDefault(i => i.BundleId == header.BundleId) is { } existing)
            {
                return JsonContentOf(HttpStatusCode.OK, new PushResult(existing.Position, existing.BundleId, true));
            }

            var item = new MailboxItem(mailbox.Count + 1, header.BundleId, caller, body);
            mailbox.Add(item);
            return JsonContentOf(HttpStatusCode.Created, new PushResult(item.Position, item.BundleId, false));
        }

        if (path == RelayProtocol.Bundles(account) && method == "GET")
        {
            var query = System.Web.HttpUtility.ParseQueryString(uri.Query);
            var after = long.Parse(query["after"]!, System.Globalization.CultureInfo.InvariantCulture);
            var limit = int.Parse(query["limit"]!, System.Globalization.CultureInfo.InvariantCulture);
            var mailbox = Mailboxes.TryGetValue(account, out var m) ? m : [];
            var items = mailbox.Where(i => i.Position > after).Take(limit).ToList();
            var head = mailbox.Count;
            var next = NextIsHead ? head : items.Count > 0 ? items[^1].Position : after;
            return JsonContentOf(HttpStatusCode.OK, new PullPage(items, next, head));
        }

        if (path == RelayProtocol.Acks(account) && method == "POST")
        {
            Acks[caller] = JsonSerializer.Deserialize<AckRequest>(body, Json)!.Position;
            return new HttpResponseMessage(HttpStatusCode.NoContent);
        }

        if (path == RelayProtocol.Devices(account) && method == "POST")
        {
            var registration = JsonSerializer.Deserialize<DeviceRegistration>(body, Json)!;
            _callers[registration.Device] = (account, Convert.FromBase64String(registration.SigningKey));
            return new HttpResponseMessage(HttpStatusCode.NoContent);
        }

        if (path == RelayProtocol.Revocations(account) && method == "POST")
        {
            var revocation = JsonSerializer.Deserialize<RevocationRequest>(body, Json)!;
            Revoked.Add(revocation.Device ?? account);
            return new HttpResponseMessage(HttpStatusCode.NoContent);
        }

        return Problem(HttpStatusCode.NotFound, RelayProtocol.BadInputProblemType, $"no route {method} {path}");
    }

    private static HttpResponseMessage JsonContentOf<T>(HttpStatusCode status, T value) =>
        new(status) { Content = JsonContent.Create(value, options: Json) };
}
