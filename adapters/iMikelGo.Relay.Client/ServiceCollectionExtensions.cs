using IMikelGo.Relay.Client;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the relay client.</summary>
public static class RelayClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IRelayClient"/> / <see cref="RelayClient"/> as a typed HttpClient: retries with backoff,
    /// per-attempt request signing by the registered <see cref="IRelayRequestSigner"/>, certificate pinning and
    /// HTTP/2. Register an <see cref="IRelayRequestSigner"/> (the device's key) and optionally a <see cref="TimeProvider"/>.
    /// </summary>
    public static IHttpClientBuilder AddIMikelGoRelayClient(this IServiceCollection services, Action<RelayClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<RelayClientOptions>().Configure(configure).Validate(o =>
        {
            o.Validate();
            return true;
        });
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => RelayClient.CreatePin(sp.GetRequiredService<IOptions<RelayClientOptions>>().Value)!);
        services.TryAddTransient<IRelayClient>(sp => sp.GetRequiredService<RelayClient>());
        return services.AddHttpClient<RelayClient>((sp, http) => RelayClient.Configure(http, sp.GetRequiredService<IOptions<RelayClientOptions>>().Value))
            .ConfigurePrimaryHttpMessageHandler(sp =>
                RelayClient.CreatePrimaryHandler(sp.GetRequiredService<IOptions<RelayClientOptions>>().Value, Pin(sp)))
            .AddHttpMessageHandler(sp => new ResilienceHandler(RelayResilience.CreatePipeline(
                sp.GetRequiredService<IOptions<RelayClientOptions>>().Value,
                sp.GetRequiredService<TimeProvider>(),
                (ILogger?)sp.GetService<ILoggerFactory>()?.CreateLogger<RelayClient>() ?? Logging.Abstractions.NullLogger.Instance)))
            .AddHttpMessageHandler(sp => new RelaySigningHandler(sp.GetRequiredService<IRelayRequestSigner>(), sp.GetRequiredService<TimeProvider>()));
    }

    private static CertificatePin? Pin(IServiceProvider sp) =>
        string.IsNullOrWhiteSpace(sp.GetRequiredService<IOptions<RelayClientOptions>>().Value.PinnedCertificateSha256) ? null : sp.GetRequiredService<CertificatePin>();
}
