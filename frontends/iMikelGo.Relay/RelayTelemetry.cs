using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace IMikelGo.Relay;

/// <summary>The relay's meter and activity source, both named <c>iMikelGo.Relay</c>.</summary>
public sealed class RelayTelemetry : IDisposable
{
    /// <summary>Name of the meter and the activity source.</summary>
    public const string Name = "iMikelGo.Relay";

    /// <summary>Traces of pushes, pulls and authentication.</summary>
    public static readonly ActivitySource Activities = new(Name);

    private readonly Meter _meter;

    /// <summary>Creates the instruments on <paramref name="meters"/>.</summary>
    public RelayTelemetry(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _meter = meters.Create(Name);
        Pushed = _meter.CreateCounter<long>("imikelgo.relay.bundles.pushed", "{bundle}", "Bundles appended to a mailbox.");
        Duplicates = _meter.CreateCounter<long>("imikelgo.relay.bundles.duplicate", "{bundle}", "Pushes of a bundle already stored (idempotent retries).");
        PushedBytes = _meter.CreateCounter<long>("imikelgo.relay.bundles.bytes", "By", "Bytes of sealed bundles appended.");
        Pulled = _meter.CreateCounter<long>("imikelgo.relay.bundles.pulled", "{bundle}", "Bundles returned by pulls.");
        Rejected = _meter.CreateCounter<long>("imikelgo.relay.requests.rejected", "{request}", "Requests refused, by reason.");
        LongPolls = _meter.CreateUpDownCounter<long>("imikelgo.relay.longpolls.active", "{request}", "Long-polls waiting now.");
    }

    /// <summary>Bundles appended.</summary>
    public Counter<long> Pushed { get; }

    /// <summary>Idempotent retries.</summary>
    public Counter<long> Duplicates { get; }

    /// <summary>Bytes appended.</summary>
    public Counter<long> PushedBytes { get; }

    /// <summary>Bundles pulled.</summary>
    public Counter<long> Pulled { get; }

    /// <summary>Refusals (tag <c>reason</c>).</summary>
    public Counter<long> Rejected { get; }

    /// <summary>Long-polls in flight.</summary>
    public UpDownCounter<long> LongPolls { get; }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
