using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace IMikelGo.Store.Sqlite;

/// <summary>Registration of the device vault.</summary>
public static class DeviceVaultServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="DeviceVault"/> (singleton), its options, <see cref="TimeProvider.System"/> and the default
    /// <see cref="IDeviceSecretStore"/> (DPAPI on Windows, a 0600 file elsewhere) unless already registered —
    /// register your own Keychain/Keystore implementation before calling this on mobile.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Configures the options.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddIMikelGoDeviceVault(this IServiceCollection services, Action<DeviceVaultOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<DeviceVaultOptions>()
            .Configure(configure)
            .Validate(o => !string.IsNullOrWhiteSpace(o.RootDirectory), "RootDirectory is required.")
            .Validate(o => o.Pbkdf2Iterations >= 1, "Pbkdf2Iterations must be positive.")
            .Validate(o => o.MinimumPinLength >= 4, "MinimumPinLength must be at least 4.")
            .Validate(o => !string.IsNullOrWhiteSpace(o.Cipher), "Cipher is required.");
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IDeviceSecretStore>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<DeviceVaultOptions>>().Value;
            return OperatingSystem.IsWindows()
                ? new DpapiDeviceSecretStore(o.ResolveDeviceSecretDirectory())
                : new FileDeviceSecretStore(o.ResolveDeviceSecretDirectory());
        });
        services.TryAddSingleton(sp => new DeviceVault(
            sp.GetRequiredService<IOptions<DeviceVaultOptions>>(),
            sp.GetRequiredService<IDeviceSecretStore>(),
            sp.GetRequiredService<TimeProvider>(),
            (sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance).CreateLogger<DeviceVault>()));
        return services;
    }
}
