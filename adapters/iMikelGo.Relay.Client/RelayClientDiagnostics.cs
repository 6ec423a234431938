using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace IMikelGo.Relay.Client;

/// <summary>The client's telemetry names: one <see cref="Meter"/> and one <see cref="ActivitySource"/>.</summary>
public static class RelayClientDiagnostics
{
    /// <summary>The name of the meter and the activity source: <c>iMikelGo.Relay.Client</c>.</summary>
    public const string Name = "iMikelGo.Relay.Client";

    internal static readonly ActivitySource ActivitySource = new(Name);
    internal static readonly Meter Meter = new(Name);
    internal static readonly Counter<long> Requests = Meter.CreateCounter<long>("imikelgo.relay.client.requests", description: "Relay calls by operation and outcome");
    internal static readonly Counter<long> Retries = Meter.CreateCounter<long>("imikelgo.relay.client.retries", description: "Retried attempts after a transient failure");
    internal static readonly Counter<long> BundlesPushed = Meter.CreateCounter<long>("imikelgo.relay.client.bundles.pushed");
    internal static readonly Counter<long> BundlesPulled = Meter.CreateCounter<long>("imikelgo.relay.client.bundles.pulled");
    internal static readonly Counter<long> BundlesRefused = Meter.CreateCounter<long>("imikelgo.relay.client.bundles.refused");
    internal static readonly Counter<long> EventsSent = Meter.CreateCounter<long>("imikelgo.relay.client.events.sent");
    internal static readonly Counter<long> EventsReceived = Meter.CreateCounter<long>("imikelgo.relay.client.events.received");
}
