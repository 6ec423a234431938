using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Client;

namespace IMikelGo.TestSupport;

/// <summary>
/// A relay client that forwards every call to <paramref name="inner"/>: the base of the tests' fault-injecting relay
/// clients, which override only the calls they break. Linked into the test projects that need it (tests/Support).
/// </summary>
internal abstract class ForwardingRelayClient(IRelayClient inner) : IRelayClient
{
    /// <summary>The client every call goes to.</summary>
    protected IRelayClient Inner => inner;

    public virtual Task<PushResult> PushAsync(string account, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken) => inner.PushAsync(account, bundle, cancellationToken);

    public virtual Task<PullPage> PullAsync(string account, long after, int limit, TimeSpan wait, CancellationToken cancellationToken) => inner.PullAsync(account, after, limit, wait, cancellationToken);

    public Task AckAsync(string account, long position, CancellationToken cancellationToken) => inner.AckAsync(account, position, cancellationToken);

    public Task RegisterDeviceAsync(string account, DeviceRegistration registration, CancellationToken cancellationToken) => inner.RegisterDeviceAsync(account, registration, cancellationToken);

    public Task RevokeAsync(string account, RevocationRequest revocation, CancellationToken cancellationToken) => inner.RevokeAsync(account, revocation, cancellationToken);

    public Task WipeAckAsync(WipeAck acknowledgement, CancellationToken cancellationToken) => inner.WipeAckAsync(acknowledgement, cancellationToken);

    public Task<string> SubmitEnrollmentAsync(string school, Sealing.LicenseKey license, ReadOnlyMemory<byte> request, CancellationToken cancellationToken) => inner.SubmitEnrollmentAsync(school, license, request, cancellationToken);

    public Task<EnrollmentStatus> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken) => inner.GetEnrollmentAnswerAsync(id, cancellationToken);

    public Task<EnrollmentPage> PullEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken) => inner.PullEnrollmentsAsync(school, after, limit, cancellationToken);

    public Task AnswerEnrollmentAsync(string school, string id, EnrollmentAnswerRequest answer, CancellationToken cancellationToken) => inner.AnswerEnrollmentAsync(school, id, answer, cancellationToken);
}
