using IMikelGo.Engine.Relay;
using IMikelGo.Store.Marten;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the PostgreSQL (Marten) relay mailbox store.</summary>
public static class MartenMailboxServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="MartenMailboxStore"/> as the <see cref="IMailboxStore"/> singleton, with its own Marten
    /// document store (so it never clashes with another <c>AddMarten</c> in the host). Schema auto-create is on by
    /// default (development and tests); switch it off with <see cref="MartenMailboxOptions.AutoCreateSchema"/>.
    /// </summary>
    public static IServiceCollection AddIMikelGoMartenMailboxes(this IServiceCollection services, Action<MartenMailboxOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new MartenMailboxOptions();
        configure(options);
        services.AddSingleton(options);
        services.AddSingleton(_ => MartenMailboxStore.Create(options));
        services.AddSingleton<IMailboxStore>(sp => sp.GetRequiredService<MartenMailboxStore>());
        return services;
    }
}
