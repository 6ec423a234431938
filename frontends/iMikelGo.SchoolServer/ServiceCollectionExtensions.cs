using IMikelGo.Relay.Client;
using IMikelGo.SchoolServer.Messaging;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Wolverine;
using Wolverine.ErrorHandling;
using Wolverine.Postgresql;

namespace IMikelGo.SchoolServer;

/// <summary>Registers the school server in a host.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>The local queue every school server message goes through (one message at a time).</summary>
    public const string QueueName = "school";

    /// <summary>
    /// Adds the school server: the connector over its store, a hosted service that opens it, the <see cref="SchoolServer"/>
    /// facade, and Wolverine (it owns the host's Wolverine configuration) with the push/pull/enrollment handlers, retries
    /// with backoff for relay failures and — with a PostgreSQL connection string — durable message storage.
    /// </summary>
    /// <exception cref="ArgumentException">The options are incomplete (the message names what is missing).</exception>
    public static IServiceCollection AddIMikelGoSchoolServer(this IServiceCollection services, Action<SchoolServerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new SchoolServerOptions();
        configure(options);
        options.Validate();

        services.AddMetrics();
        services.AddSingleton(options);
        services.AddSingleton<SchoolServerTelemetry>();
        services.AddSingleton(sp => new SchoolServer(options, sp.GetRequiredService<IServiceScopeFactory>(), sp.GetRequiredService<SchoolServerTelemetry>()));

        // Order matters: the connector opens before Wolverine starts and closes after it stopped; the scheduler enqueues
        // only once Wolverine runs.
        services.AddHostedService<SchoolConnectorHost>();
        services.AddWolverine(ExtensionDiscovery.ManualOnly, wolverine => Configure(wolverine, options));
        services.AddHostedService<SchoolServerScheduler>();
        return services;
    }

    private static void Configure(WolverineOptions wolverine, SchoolServerOptions options)
    {
        wolverine.ServiceName = "iMikelGo.SchoolServer";
        wolverine.ApplicationAssembly = typeof(SchoolServer).Assembly;
        wolverine.UseRuntimeCompilation();
        wolverine.Discovery.DisableConventionalDiscovery().IncludeType(typeof(SchoolServerHandlers));

        // One message at a time: the connector serialises its work anyway, and a sequential queue keeps retries in order.
        var queue = wolverine.LocalQueue(QueueName).Sequential();
        wolverine.PublishMessage<PushAccount>().ToLocalQueue(QueueName);
        wolverine.PublishMessage<PullRelay>().ToLocalQueue(QueueName);
        wolverine.PublishMessage<ProcessEnrollments>().ToLocalQueue(QueueName);

        if (options.Durable)
        {
            // Envelopes (incoming, scheduled retries, dead letters) in PostgreSQL: a message survives a crash and is
            // handled after the restart. Solo: one school server process owns every envelope, so recovery is immediate.
            wolverine.PersistMessagesWithPostgresql(options.PostgresConnectionString!, options.Schema);
            wolverine.Durability.Mode = DurabilityMode.Solo;
            queue.UseDurableInbox();
        }

        // Relay failures and a PostgreSQL outage: retry in place after each cooldown, then reschedule; the last delay
        // repeats indefinitely so a push is never dropped. Any other error follows Wolverine's default (dead-letter storage
        // after the attempts).
        wolverine.Policies.OnException<RelayUnavailableException>().Or<RelayException>().Or<HttpRequestException>()
            .Or(IsDatabaseOutage, "PostgreSQL unreachable")
            .RetryWithCooldown([.. options.RetryCooldowns])
            .Then.ScheduleRetryIndefinitely([.. options.RetrySchedule]);
    }

    /// <summary>
    /// The store's database cannot be reached (connection refused or dropped, server shutting down or starting): an
    /// outage to wait out like the relay's, not a bug. Npgsql's transient errors, and the connection (08) and operator
    /// intervention (57P) classes, also when wrapped (Marten).
    /// </summary>
    internal static bool IsDatabaseOutage(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is PostgresException p ? p.IsTransient || p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57P", StringComparison.Ordinal)
                : e is NpgsqlException n && n.IsTransient)
            {
                return true;
            }
        }

        return false;
    }
}
