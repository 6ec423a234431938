using IMikelGo.School.Import;
using IMikelGo.School.Publishing;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Options of the school connector.</summary>
public sealed class SchoolConnectorOptions
{
    /// <summary>
    /// The school secret the per-account school keys are derived from (≥ 32 bytes, see <see cref="DerivedSchoolKeyStore"/>).
    /// When null, random keys are kept in memory (<see cref="InMemorySchoolKeyStore"/>: demos only).
    /// </summary>
    public byte[]? SchoolSecret { get; set; }

    /// <summary>The admin-system adapter, when the host reads its timetable through DI (optional).</summary>
    public Func<IServiceProvider, ISchoolDataSource>? DataSource { get; set; }
}

/// <summary>Registers the school connector.</summary>
public static class SchoolServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="SchoolConnectorOptions"/>, an <see cref="ISchoolKeyStore"/> (unless one is registered
    /// already), the <see cref="TimetablePublisher"/> singleton and, when configured, the <see cref="ISchoolDataSource"/>.
    /// </summary>
    public static IServiceCollection AddIMikelGoSchool(this IServiceCollection services, Action<SchoolConnectorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new SchoolConnectorOptions();
        configure?.Invoke(options);
        services.TryAddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ISchoolKeyStore>(_ => options.SchoolSecret is { } secret
            ? new DerivedSchoolKeyStore(secret)
            : new InMemorySchoolKeyStore());
        services.TryAddSingleton(sp => new TimetablePublisher(sp.GetRequiredService<ISchoolKeyStore>(), sp.GetRequiredService<TimeProvider>()));
        if (options.DataSource is { } factory)
        {
            services.TryAddSingleton(factory);
        }

        return services;
    }
}
