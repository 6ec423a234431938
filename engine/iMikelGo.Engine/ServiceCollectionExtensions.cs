using IMikelGo.Engine.Chains;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace IMikelGo.Engine;

/// <summary>Registers the engine with a service collection.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Adds a singleton <see cref="Ledger"/> configured through <see cref="LedgerOptions"/>, and
    /// <see cref="TimeProvider.System"/> unless a <see cref="TimeProvider"/> is already registered.
    /// </summary>
    /// <example><code>services.AddIMikelGoEngine(o => o.MaxClockSkew = TimeSpan.FromMinutes(2));</code></example>
    public static IServiceCollection AddIMikelGoEngine(this IServiceCollection services, Action<LedgerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        var options = services.AddOptions<LedgerOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(sp => new Ledger(sp.GetRequiredService<IOptions<LedgerOptions>>().Value, sp.GetRequiredService<TimeProvider>(), sp.GetService<Microsoft.Extensions.Logging.ILogger<Ledger>>()));
        return services;
    }
}
