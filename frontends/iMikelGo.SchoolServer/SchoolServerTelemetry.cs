using System.Diagnostics.Metrics;
using IMikelGo.School.Connector;

namespace IMikelGo.SchoolServer;

/// <summary>Metrics of the school server (meter <c>iMikelGo.SchoolServer</c>).</summary>
internal sealed class SchoolServerTelemetry : IDisposable
{
    private readonly Meter _meter;
    private readonly Counter<long> _sent;
    private readonly Counter<long> _received;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _enrollmentFailures;

    public SchoolServerTelemetry(IMeterFactory meters)
    {
        _meter = meters.Create("iMikelGo.SchoolServer");
        _sent = _meter.CreateCounter<long>("imikelgo.school.events_sent", description: "School events pushed to the relay");
        _received = _meter.CreateCounter<long>("imikelgo.school.events_received", description: "Teacher events new to the school store");
        _failures = _meter.CreateCounter<long>("imikelgo.school.sync_failures", description: "Account syncs that failed and were left to a retry");
        _enrollmentFailures = _meter.CreateCounter<long>("imikelgo.school.enrollment_failures", description: "Scheduled enrollment runs that failed and were left to the next tick");
    }

    public void Synced(SchoolSyncResult result)
    {
        _sent.Add(result.EventsSent);
        _received.Add(result.EventsReceived);
        _failures.Add(result.Failures.Count);
    }

    public void EnrollmentFailed() => _enrollmentFailures.Add(1);

    public void Dispose() => _meter.Dispose();
}
