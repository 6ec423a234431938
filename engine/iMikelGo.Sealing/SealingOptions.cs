using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace IMikelGo.Sealing;

/// <summary>Settings for sealing, key rotation and enrollment (bind with <see cref="SealingServiceCollectionExtensions.AddIMikelGoSealing"/>).</summary>
public sealed class SealingOptions
{
    /// <summary>PBKDF2-SHA256 iterations for new password hashes (default 600 000, OWASP 2023; ≈300 ms here). Tests may lower it.</summary>
    public int Pbkdf2Iterations { get; set; } = 600_000;

    /// <summary>Failed enrollment attempts allowed per license key within <see cref="EnrollmentAttemptWindow"/> (default 5).</summary>
    public int EnrollmentMaxFailedAttempts { get; set; } = 5;

    /// <summary>The sliding window for <see cref="EnrollmentMaxFailedAttempts"/> (default 15 minutes).</summary>
    public TimeSpan EnrollmentAttemptWindow { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How old (or how far in the future) an enrollment request may be (default 10 minutes).</summary>
    public TimeSpan EnrollmentRequestMaxAge { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Validity of issued device certificates (default 2 years; revocation goes through the roster).</summary>
    public TimeSpan DeviceCertificateValidity { get; set; } = TimeSpan.FromDays(730);

    /// <summary>How long a device encryption key stays current before rotation (default 7 days).</summary>
    public TimeSpan KeyRotationInterval { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How long a retired private key is kept at most for late bundles (default 30 days).</summary>
    public TimeSpan PreviousKeyMaxAge { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Bundle size limits.</summary>
    public BundleLimits BundleLimits { get; set; } = BundleLimits.Default;

    internal IEnumerable<string> Problems()
    {
        if (Pbkdf2Iterations < 1_000)
        {
            yield return "Pbkdf2Iterations must be at least 1000.";
        }

        if (EnrollmentMaxFailedAttempts < 1)
        {
            yield return "EnrollmentMaxFailedAttempts must be at least 1.";
        }

        if (EnrollmentAttemptWindow <= TimeSpan.Zero || EnrollmentRequestMaxAge <= TimeSpan.Zero || DeviceCertificateValidity <= TimeSpan.Zero)
        {
            yield return "Enrollment windows and certificate validity must be positive.";
        }

        if (KeyRotationInterval <= TimeSpan.Zero || PreviousKeyMaxAge <= TimeSpan.Zero)
        {
            yield return "KeyRotationInterval and PreviousKeyMaxAge must be positive.";
        }

        if (BundleLimits is null)
        {
            yield return "BundleLimits must be set.";
        }
    }
}

/// <summary>Dependency-injection registration.</summary>
public static class SealingServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="SealingOptions"/> (validated at start), <see cref="TimeProvider.System"/> and an in-memory
    /// <see cref="ISeenBundles"/> unless already registered.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Optional configuration of the options.</param>
    /// <returns>The same collection.</returns>
    public static IServiceCollection AddIMikelGoSealing(this IServiceCollection services, Action<SealingOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<SealingOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SealingOptions>, SealingOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ISeenBundles, InMemorySeenBundles>();
        return services;
    }

    private sealed class SealingOptionsValidator : IValidateOptions<SealingOptions>
    {
        public ValidateOptionsResult Validate(string? name, SealingOptions options)
        {
            var problems = options.Problems().ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
