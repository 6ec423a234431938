using IMikelGo.Engine.Relay;

namespace IMikelGo.Relay.Client;

/// <summary>A relay error answer, parsed from its ProblemDetails (RFC 9457) body.</summary>
/// <param name="Status">The HTTP status code.</param>
/// <param name="Type">The problem type URI (e.g. <see cref="RelayProtocol.WipeProblemType"/>), or null.</param>
/// <param name="Title">The short summary.</param>
/// <param name="Detail">The reason, in words.</param>
public sealed record RelayProblem(int Status, string? Type, string? Title, string? Detail)
{
    /// <summary>Whether the relay tells this device to wipe its data (it was revoked).</summary>
    public bool IsWipe => string.Equals(Type, RelayProtocol.WipeProblemType, StringComparison.Ordinal);

    /// <summary>Whether the failure is transient (5xx, 408, 429): a later retry may succeed.</summary>
    public bool IsTransient => Status >= 500 || Status is 408 or 429;

    /// <inheritdoc />
    public override string ToString() => $"{Status} {Type ?? "about:blank"}: {Detail ?? Title}";
}

/// <summary>A relay call failed: an error answer (<see cref="Problem"/>), a network failure or a protocol violation.</summary>
public class RelayException : Exception
{
    /// <summary>Creates an exception.</summary>
    public RelayException()
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public RelayException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    public RelayException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception for an error answer.</summary>
    public RelayException(string message, RelayProblem? problem, bool isTransient, TimeSpan? retryAfter = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Problem = problem;
        IsTransient = isTransient;
        RetryAfter = retryAfter;
    }

    /// <summary>The relay's error answer, or null for a network failure.</summary>
    public RelayProblem? Problem { get; }

    /// <summary>Whether a later retry may succeed (5xx, 408, 429, network failure, timeout).</summary>
    public bool IsTransient { get; }

    /// <summary>The relay's <c>Retry-After</c>, when it sent one.</summary>
    public TimeSpan? RetryAfter { get; }
}

/// <summary>
/// The relay answered with <see cref="RelayProtocol.WipeProblemType"/>: this device was revoked and must wipe its
/// data now, then confirm with <see cref="IRelayClient.WipeAckAsync"/>. Never retried.
/// </summary>
public sealed class RelayWipeRequiredException : RelayException
{
    /// <summary>Creates an exception.</summary>
    public RelayWipeRequiredException()
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public RelayWipeRequiredException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    public RelayWipeRequiredException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for the relay's wipe answer.</summary>
    public RelayWipeRequiredException(RelayProblem problem)
        : base($"the relay revoked this device and requires a wipe: {problem?.Detail ?? problem?.Title}", problem, isTransient: false)
    {
    }
}

/// <summary>The relay presented a certificate other than the pinned one; nothing was sent.</summary>
public sealed class RelayCertificatePinningException : RelayException
{
    /// <summary>Creates an exception.</summary>
    public RelayCertificatePinningException()
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public RelayCertificatePinningException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    public RelayCertificatePinningException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The relay's answer breaks the protocol (e.g. a pull page out of order, a push answer for another bundle).</summary>
public sealed class RelayProtocolException : RelayException
{
    /// <summary>Creates an exception.</summary>
    public RelayProtocolException()
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public RelayProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and its cause.</summary>
    public RelayProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
