using IMikelGo.Engine.Relay;
using IMikelGo.Sealing;

namespace IMikelGo.Relay.Client;

/// <summary>
/// The relay's HTTPS API (routes in <see cref="RelayProtocol"/>), signed as one caller. Every call retries
/// transient failures; an error answer throws <see cref="RelayException"/> with the parsed
/// <see cref="RelayProblem"/>, and a revoked device gets <see cref="RelayWipeRequiredException"/>.
/// </summary>
public interface IRelayClient
{
    /// <summary>Pushes a sealed bundle to <paramref name="account"/>'s mailbox; a duplicate (same bundle id) is a success with the original position.</summary>
    Task<PushResult> PushAsync(string account, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken);

    /// <summary>Pulls up to <paramref name="limit"/> bundles after position <paramref name="after"/>, long-polling up to <paramref name="wait"/> when none is there.</summary>
    Task<PullPage> PullAsync(string account, long after, int limit, TimeSpan wait, CancellationToken cancellationToken);

    /// <summary>Tells the relay this caller has durably received everything up to <paramref name="position"/>.</summary>
    Task AckAsync(string account, long position, CancellationToken cancellationToken);

    /// <summary>Registers a device's request-signing key (school-signed).</summary>
    Task RegisterDeviceAsync(string account, DeviceRegistration registration, CancellationToken cancellationToken);

    /// <summary>Revokes a device, or the whole account (school-signed).</summary>
    Task RevokeAsync(string account, RevocationRequest revocation, CancellationToken cancellationToken);

    /// <summary>A revoked device confirms it wiped its data.</summary>
    Task WipeAckAsync(WipeAck acknowledgement, CancellationToken cancellationToken);

    /// <summary>
    /// Device, not yet registered: queues a sealed enrollment request for <paramref name="school"/> (unauthenticated;
    /// <paramref name="license"/> is sent only as a hash, for the relay's per-license rate limit). Returns the request id,
    /// a secret capability for <see cref="GetEnrollmentAnswerAsync"/>.
    /// </summary>
    Task<string> SubmitEnrollmentAsync(string school, LicenseKey license, ReadOnlyMemory<byte> request, CancellationToken cancellationToken);

    /// <summary>Device: the state of its enrollment request (pending, or answered with the school's answer bytes).</summary>
    Task<EnrollmentStatus> GetEnrollmentAnswerAsync(string id, CancellationToken cancellationToken);

    /// <summary>School: its pending enrollment requests after a cursor.</summary>
    Task<EnrollmentPage> PullEnrollmentsAsync(string school, long after, int limit, CancellationToken cancellationToken);

    /// <summary>School: answers an enrollment request (approval with the device's registration, or refusal).</summary>
    Task AnswerEnrollmentAsync(string school, string id, EnrollmentAnswerRequest answer, CancellationToken cancellationToken);
}

/// <summary>Convenience overloads.</summary>
public static class RelayClientExtensions
{
    /// <summary>Pushes a bundle sealed by <c>EventBundles.Seal</c>.</summary>
    public static Task<PushResult> PushAsync(this IRelayClient client, string account, SealedBundle bundle, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(bundle);
        return client.PushAsync(account, bundle.Bytes, cancellationToken);
    }
}
