using IMikelGo.Engine.Relay;
using IMikelGo.Relay.Client;
using IMikelGo.Sealing;

namespace IMikelGo.Cli;

internal static partial class SchoolCommands
{
    /// <summary>
    /// One relay per invocation: once a request failed for good because the relay is unreachable (after its own
    /// retries) or presented the wrong certificate, every later request of the invocation fails the same way at once —
    /// a sync of 66 accounts would otherwise wait out the retries 66 times. The connector keeps them pending either way.
    /// </summary>
    private sealed class RelayCircuit
    {
        private RelayException? _open;

        public IRelayClient Wrap(IRelayClient inner) => new Guarded(this, inner);

        private async Task<T> RunAsync<T>(Func<Task<T>> call)
        {
            if (_open is { } open)
            {
                throw new RelayException(open.Message, open.Problem, open.IsTransient, open.RetryAfter, open);
            }

            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (RelayException e) when (e.IsTransient || e is RelayCertificatePinningException)
            {
                _open = e;
                throw;
            }
        }

        private Task RunAsync(Func<Task> call) => RunAsync(async () =>
        {
            await call().ConfigureAwait(false);
            return true;
        });

        private sealed class Guarded(RelayCircuit circuit, IRelayClient inner) : IRelayClient, IDisposable
        {
            public Task<PushResult> PushAsync(string account, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.PushAsync(account, bundle, cancellationToken));

            public Task<PullPage> PullAsync(string account, long after, int limit, TimeSpan wait, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.PullAsync(account, after, limit, wait, cancellationToken));

            public Task AckAsync(string account, long position, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.AckAsync(account, position, cancellationToken));

            public Task RegisterDeviceAsync(string account, DeviceRegistration registration, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.RegisterDeviceAsync(account, registration, cancellationToken));

            public Task RevokeAsync(string account, RevocationRequest revocation, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.RevokeAsync(account, revocation, cancellationToken));

            public Task WipeAckAsync(WipeAck acknowledgement, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.WipeAckAsync(acknowledgement, cancellationToken));

            public Task<string> SubmitEnrollmentAsync(string school, LicenseKey license, ReadOnlyMemory<byte> request, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.SubmitEnrollmentAsync(school, license, request, cancellationToken));

            public Task<EnrollmentStatus> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.GetEnrollmentAnswerAsync(id, cancellationToken));

            public Task<EnrollmentPage> PullEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.PullEnrollmentsAsync(school, after, limit, cancellationToken));

            public Task AnswerEnrollmentAsync(string school, string id, EnrollmentAnswerRequest answer, CancellationToken cancellationToken) =>
                circuit.RunAsync(() => inner.AnswerEnrollmentAsync(school, id, answer, cancellationToken));

            public void Dispose() => (inner as IDisposable)?.Dispose();
        }
    }
}
