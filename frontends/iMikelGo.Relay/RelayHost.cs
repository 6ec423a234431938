using System.Text.Json;
using System.Threading.RateLimiting;
using IMikelGo.Engine.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wolverine;
using Wolverine.Http;

namespace IMikelGo.Relay;

/// <summary>
/// Builds the relay: Kestrel over HTTPS only (HTTP/1.1 and HTTP/2), request authentication, per-caller rate
/// limits, Wolverine.Http JSON endpoints and a minimal-API binary push, health at <c>/health</c>, OpenAPI at
/// <c>/openapi/v1.json</c>. Used by <c>imikelgo relay serve</c> and by the tests.
/// </summary>
public static class RelayHost
{
    /// <summary>The relay, ready to run (<c>await app.RunAsync()</c> stops cleanly on Ctrl+C / SIGTERM).</summary>
    public static WebApplication Create(RelayOptions options, string[]? args = null) => Build(CreateBuilder(options, args));

    /// <summary>A builder with the relay's services and Kestrel configured; add services, then <see cref="Build"/>.</summary>
    public static WebApplicationBuilder CreateBuilder(RelayOptions options, string[]? args = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var urls = options.Urls.Count > 0 ? options.Urls.ToList() : ["https://0.0.0.0:443"];
        foreach (var url in urls)
        {
            if (!url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"The relay serves HTTPS only; '{url}' is not an https:// URL.", nameof(options));
            }
        }

        if (options.StoreFactory is null && options.Store == RelayStoreKind.Postgres && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new ArgumentException("--store postgres needs a connection string (--connection).", nameof(options));
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args ?? [],
            ApplicationName = typeof(RelayHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        var certificate = RelayCertificate.Load(options);
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.UseUrls([.. urls]);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = RelayProtocol.MaxBundleBytes + 1;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
            kestrel.ConfigureHttpsDefaults(https => https.ServerCertificate = certificate.Certificate);
        });
        builder.Host.ConfigureHostOptions(host => host.ShutdownTimeout = TimeSpan.FromSeconds(10));

        // The relay has HTTP endpoints and no message handlers: Wolverine's start-up report and its "found no handlers"
        // warning only bury the lines an operator needs (listening address, certificate fingerprint).
        builder.Logging.AddFilter("Wolverine", LogLevel.Error);
        builder.Logging.AddFilter("JasperFx", LogLevel.Warning);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(certificate);
        services.AddSingleton(options.Time);
        services.AddSingleton(sp => options.StoreFactory?.Invoke(sp) ?? CreateStore(options));
        services.AddSingleton<MailboxSignals>();
        services.AddSingleton<RelayTelemetry>();
        services.AddSingleton<RelayService>();
        services.AddSingleton<EnrollmentRelay>();
        services.AddHostedService<SchoolSeeder>();
        services.AddProblemDetails();
        services.AddOpenApi("v1");
        services.AddHealthChecks().AddCheck<StoreHealthCheck>("store");
        services.AddRateLimiter(limiter =>
        {
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                var key = context.Request.Headers[RelayProtocol.CallerHeader].ToString();
                if (key.Length == 0 || context.GetEndpoint()?.Metadata.GetMetadata<AnonymousRelayEndpointAttribute>() is not null)
                {
                    key = "ip:" + context.Connection.RemoteIpAddress;
                }

                return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.RateLimitBurst,
                    TokensPerPeriod = options.RateLimitPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            limiter.OnRejected = async (rejected, _) =>
            {
                rejected.HttpContext.Response.Headers.RetryAfter = "1";
                await Problems.Write(rejected.HttpContext, Problems.RateLimited("Too many requests from this caller; retry after the Retry-After delay."));
            };
        });
        builder.Host.UseWolverine(wolverine =>
        {
            wolverine.ApplicationAssembly = typeof(RelayHost).Assembly;
            wolverine.UseRuntimeCompilation();
        });
        services.AddWolverineHttp();
        return builder;
    }

    /// <summary>Builds the application and its pipeline.</summary>
    public static WebApplication Build(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseRouting();
        app.UseRateLimiter();
        app.UseMiddleware<RequestAuthentication>();

        app.MapHealthChecks("/health");
        app.MapOpenApi();
        app.MapPost("/v1/accounts/{account}/bundles", (string account, HttpContext context) =>
                RelayEndpoints.Service(context).PushAsync(RelayEndpoints.Auth(context), account, context.RequestAborted))
            .WithName("Push")
            .Accepts<byte[]>("application/octet-stream")
            .Produces<PushResult>(StatusCodes.Status201Created)
            .Produces<PushResult>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
        app.MapPost("/v1/schools/{school}/enrollments", (string school, HttpContext context) =>
                RelayEndpoints.Enrollments(context).SubmitAsync(school, context))
            .WithName("SubmitEnrollment")
            .WithMetadata(new AnonymousRelayEndpointAttribute(RelayProtocol.MaxEnrollmentRequestBytes))
            .Accepts<byte[]>("application/octet-stream")
            .Produces<EnrollmentSubmitted>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
        app.MapGet("/v1/enrollments/{id}", (string id, HttpContext context) =>
                RelayEndpoints.Enrollments(context).StatusAsync(id, context.RequestAborted))
            .WithName("EnrollmentStatus")
            .WithMetadata(new AnonymousRelayEndpointAttribute(0))
            .Produces<EnrollmentStatus>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
        UpdateFeedEndpoint.Map(app);
        SchoolCertificatesEndpoint.Map(app);
        app.MapWolverineEndpoints();

        var certificate = app.Services.GetRequiredService<RelayCertificate>();
        app.Lifetime.ApplicationStarted.Register(() =>
            app.Logger.LogInformation("iMikelGo relay listening on {Urls}; certificate SHA-256 fingerprint {Fingerprint}",
                string.Join(", ", app.Urls), certificate.Fingerprint));
        return app;
    }

    /// <summary>The store named by <see cref="RelayOptions.Store"/>.</summary>
    public static IMailboxStore CreateStore(RelayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Store switch
        {
            RelayStoreKind.InMemory => new InMemoryMailboxStore(options.Time),
            RelayStoreKind.Embedded => new IMikelGo.Store.Sqlite.Relay.SqliteMailboxStore(new IMikelGo.Store.Sqlite.Relay.SqliteMailboxStoreOptions
            {
                Path = Path.Combine(options.DataDirectory, "relay.db"),
                TimeProvider = options.Time,
            }),
            RelayStoreKind.Postgres when !string.IsNullOrWhiteSpace(options.ConnectionString) =>
                IMikelGo.Store.Marten.MartenMailboxStore.Create(new IMikelGo.Store.Marten.MartenMailboxOptions
                {
                    ConnectionString = options.ConnectionString,
                    TimeProvider = options.Time,
                }),
            RelayStoreKind.Postgres => throw new ArgumentException("--store postgres needs a connection string (--connection).", nameof(options)),
            _ => throw new NotSupportedException($"Unknown relay store '{options.Store}'."),
        };
    }

    /// <summary>Reads <c>schools.json</c> (a JSON array of <see cref="SchoolRegistration"/>) from the data directory.</summary>
    public static IReadOnlyList<SchoolRegistration> ReadSchools(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, SchoolsFileName);
        return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), RelayJson.Default.ListSchoolRegistration) ?? [] : [];
    }

    /// <summary>Adds or replaces a school in <c>schools.json</c> (read at the next start).</summary>
    public static void WriteSchool(string dataDirectory, SchoolRegistration school)
    {
        ArgumentNullException.ThrowIfNull(school);
        Directory.CreateDirectory(dataDirectory);
        var list = ReadSchools(dataDirectory).Where(s => !string.Equals(s.Account, school.Account, StringComparison.Ordinal)).Append(school).ToList();
        File.WriteAllBytes(Path.Combine(dataDirectory, SchoolsFileName), JsonSerializer.SerializeToUtf8Bytes(list, RelayJson.Default.ListSchoolRegistration));
    }

    /// <summary>File of the operator-registered schools in the data directory.</summary>
    public const string SchoolsFileName = "schools.json";

    private sealed class StoreHealthCheck(IMailboxStore store) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            await store.HeadAsync("health-probe", cancellationToken);
            return HealthCheckResult.Healthy();
        }
    }

    private sealed class SchoolSeeder(IMailboxStore store, RelayOptions options) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            foreach (var school in ReadSchools(options.DataDirectory).Concat(options.Schools))
            {
                await store.PutCallerAsync(new RelayCaller(school.School, school.Account, Convert.FromBase64String(school.SigningKey), IsSchool: true), cancellationToken);
            }
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
