using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

using Xunit;

namespace IMikelGo.Relay.Tests.Http;

/// <summary>
/// A real relay on Kestrel (127.0.0.1, random free port, HTTPS with its generated certificate) over a fresh store:
/// in-memory by default, or the embedded SQLite store in the data directory, or Marten on a fresh PostgreSQL schema
/// (<see cref="RelayStoreKind"/>; tests/iMikelGo.Relay.Tests/System runs the HTTP tests on the real stores).
/// </summary>
public sealed class RelayServer : IAsyncDisposable
{
    public const string Account = "acct-1";
    public const string SchoolId = "school-acct-1";

    /// <summary>Accounts with a registered school ("school-" + account); tests that need an empty mailbox take their own.</summary>
    public static readonly string[] Accounts = ["acct-1", "acct-pages", "acct-f02", "acct-poll", "acct-quota", "acct-real", "acct-wipe"];

    private readonly Dictionary<string, ECDsa> _schoolKeys = new(StringComparer.Ordinal);

    private RelayServer(WebApplication app, IMailboxStore store, RelayStoreKind kind, string dataDirectory, Dictionary<string, ECDsa> schoolKeys, RelayOptions options)
    {
        _schoolKeys = schoolKeys;
        App = app;
        Store = store;
        Kind = kind;
        DataDirectory = dataDirectory;
        Options = options;
        BaseAddress = new Uri(app.Urls.First());
        Fingerprint = app.Services.GetRequiredService<RelayCertificate>().Fingerprint;
    }

    public WebApplication App { get; }

    public IMailboxStore Store { get; }

    /// <summary>Which store this relay runs on; tests that start a second relay use the same kind.</summary>
    public RelayStoreKind Kind { get; }

    public string DataDirectory { get; }

    public RelayOptions Options { get; }

    public Uri BaseAddress { get; }

    public string Fingerprint { get; }

    /// <param name="configure">Adjusts the options before start.</param>
    /// <param name="kind">The store kind (a fresh store: a new SQLite file, or a new PostgreSQL schema).</param>
    /// <param name="shareWith">
    /// A second instance of a running relay (scale-out): its own store object on the same SQLite file or PostgreSQL
    /// schema, the same school keys and the same certificate (so the same pin); <paramref name="kind"/> is ignored.
    /// </param>
    public static async Task<RelayServer> StartAsync(Action<RelayOptions>? configure = null, RelayStoreKind kind = RelayStoreKind.InMemory, RelayServer? shareWith = null)
    {
        var data = Directory.CreateTempSubdirectory("imikelgo-relay-test-").FullName;
        kind = shareWith?.Kind ?? kind;
        var dbPath = shareWith?.DatabasePath ?? Path.Combine(data, "relay.db");
        var schema = shareWith?.Schema ?? "relay_" + Guid.NewGuid().ToString("N")[..12];
        IMailboxStore store = kind switch
        {
            RelayStoreKind.InMemory when shareWith is not null => throw new ArgumentException("the in-memory store cannot be shared", nameof(shareWith)),
            RelayStoreKind.InMemory => new InMemoryMailboxStore(),
            RelayStoreKind.Embedded => new IMikelGo.Store.Sqlite.Relay.SqliteMailboxStore(new IMikelGo.Store.Sqlite.Relay.SqliteMailboxStoreOptions { Path = dbPath }),
            _ => IMikelGo.Store.Marten.MartenMailboxStore.Create(new IMikelGo.Store.Marten.MartenMailboxOptions
            {
                ConnectionString = PostgresServer.ConnectionString,
                SchemaName = schema,
            }),
        };
        var schoolKeys = shareWith?._schoolKeys ?? Accounts.ToDictionary(a => a, _ => ECDsa.Create(ECCurve.NamedCurves.nistP256), StringComparer.Ordinal);
        var options = new RelayOptions
        {
            DataDirectory = data,
            StoreFactory = _ => store,
            RateLimitBurst = 10_000,
            RateLimitPerSecond = 10_000,
            LongPollStoreInterval = TimeSpan.FromMilliseconds(200),
        };
        options.Urls.Add("https://127.0.0.1:0");
        if (shareWith is not null)
        {
            options.CertificatePath = Path.Combine(shareWith.DataDirectory, RelayCertificate.FileName);
            options.CertificatePassword = File.ReadAllText(options.CertificatePath + ".password").Trim();
        }

        foreach (var (account, key) in schoolKeys)
        {
            options.Schools.Add(new SchoolRegistration(account, "school-" + account, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo())));
        }

        configure?.Invoke(options);
        var app = RelayHost.Create(options);
        await app.StartAsync();
        return new RelayServer(app, store, kind, data, schoolKeys, options)
        {
            DatabasePath = kind == RelayStoreKind.Embedded ? dbPath : null,
            Schema = kind == RelayStoreKind.Postgres ? schema : null,
            _ownsKeys = shareWith is null,
        };
    }

    /// <summary>The SQLite file of an embedded store.</summary>
    public string? DatabasePath { get; private init; }

    /// <summary>The PostgreSQL schema of a Marten store.</summary>
    public string? Schema { get; private init; }

    private bool _ownsKeys = true;

    /// <summary>An HttpClient that trusts exactly the relay's pinned certificate.</summary>
    public HttpClient NewHttpClient(string? pin = null) => PinnedHttpClient(BaseAddress, pin ?? Fingerprint);

    /// <summary>An HttpClient for <paramref name="baseAddress"/> that trusts exactly the certificate with <paramref name="expected"/> fingerprint.</summary>
    public static HttpClient PinnedHttpClient(Uri baseAddress, string expected)
    {
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
                certificate is not null && string.Equals(RelayCertificate.FingerprintOf(certificate), expected, StringComparison.OrdinalIgnoreCase),
        };
        return new HttpClient(handler) { BaseAddress = baseAddress, DefaultRequestVersion = new Version(2, 0) };
    }

    public Caller School(string account = Account) => new(this, "school-" + account, _schoolKeys[account], account);

    /// <summary>A device registered by the school (through the API).</summary>
    public async Task<Caller> RegisterDeviceAsync(string id, string account = Account, ECDsa? key = null)
    {
        key ??= ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var response = await School(account).PostJsonAsync(RelayProtocol.Devices(account), new DeviceRegistration(id, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo())));
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"registration failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        return new Caller(this, id, key, account);
    }

    public static byte[] SealBundle(string sender, ulong seq, string account = Account, int payloadBytes = 64)
    {
        using var recipient = EncryptionKeyPair.Generate();
        var payload = Encoding.UTF8.GetBytes(new string('x', payloadBytes));
        return Bundle.Seal(account, sender, [new SequenceRange(sender, seq, seq)], payload, [recipient.PublicKey]).Bytes;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        foreach (var key in _ownsKeys ? _schoolKeys.Values : Enumerable.Empty<ECDsa>())
        {
            key.Dispose();
        }
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A signing caller of the relay; every knob of the signature scheme can be overridden to forge bad requests.</summary>
public sealed class Caller(HttpClient http, string id, ECDsa key, string account)
{
    public Caller(RelayServer server, string id, ECDsa key, string account)
        : this(server.NewHttpClient(), id, key, account)
    {
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string Id { get; } = id;

    public ECDsa Key { get; } = key;

    public string Account { get; } = account;

    public HttpClient Http { get; } = http;

    public Task<HttpResponseMessage> PushAsync(byte[] bundle) =>
        SendAsync(HttpMethod.Post, RelayProtocol.Bundles(Account), bundle, "application/octet-stream");

    public Task<HttpResponseMessage> PullAsync(long after, int limit = 100, int wait = 0) =>
        SendAsync(HttpMethod.Get, RelayProtocol.Pull(Account, after, limit, wait), null);

    public Task<HttpResponseMessage> PostJsonAsync<T>(string path, T value) =>
        SendAsync(HttpMethod.Post, path, JsonSerializer.SerializeToUtf8Bytes(value, Json), "application/json");

    public HttpRequestMessage Build(HttpMethod method, string pathAndQuery, byte[]? body, string? contentType = null,
        long? timestamp = null, string? nonce = null, string? signature = null, byte[]? signedBody = null, string? signedPath = null)
    {
        var ts = timestamp ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var n = nonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var sig = signature ?? RequestSignature.Sign(Key, method.Method, signedPath ?? pathAndQuery, ts, n, signedBody ?? body ?? []);
        var request = new HttpRequestMessage(method, pathAndQuery) { Version = new Version(2, 0) };
        request.Headers.Add(RelayProtocol.CallerHeader, Id);
        request.Headers.Add(RelayProtocol.TimestampHeader, ts.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add(RelayProtocol.NonceHeader, n);
        request.Headers.Add(RelayProtocol.SignatureHeader, sig);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType ?? "application/octet-stream");
        }

        return request;
    }

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string pathAndQuery, byte[]? body, string? contentType = null) =>
        Http.SendAsync(Build(method, pathAndQuery, body, contentType));

    public static async Task<PullPage> PageOf(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"pull failed: {(int)response.StatusCode} {text}");
        }

        return JsonSerializer.Deserialize<PullPage>(text, Json)!;
    }

    public static async Task<PushResult> PushResultOf(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"push failed: {(int)response.StatusCode} {text}");
        }

        return JsonSerializer.Deserialize<PushResult>(text, Json)!;
    }

    public static async Task<JsonElement> ProblemOf(HttpResponseMessage response)
    {
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/problem+json");
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }
}
