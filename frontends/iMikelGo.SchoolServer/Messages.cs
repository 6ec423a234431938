namespace IMikelGo.SchoolServer.Messaging;

/// <summary>Push the account's pending events (and pending revocations) to the relay, then pull its mailbox.</summary>
/// <param name="Account">The teacher account.</param>
public sealed record PushAccount(string Account);

/// <summary>Sync every account with the relay, every <see cref="SchoolServerOptions.PullInterval"/> or on demand.</summary>
/// <param name="Scheduled">
/// True for the timer's pull: a failure is logged and left to the next tick (so an outage does not pile up pulls);
/// an on-demand pull is retried with backoff like a push.
/// </param>
public sealed record PullRelay(bool Scheduled);

/// <summary>Decide the enrollment requests waiting at the relay, every <see cref="SchoolServerOptions.PullInterval"/> or on demand.</summary>
/// <param name="Scheduled">
/// True for the timer's run: a failure is logged once and left to the next tick; an on-demand run is retried with backoff.
/// </param>
public sealed record ProcessEnrollments(bool Scheduled = false);

/// <summary>The relay could not be reached or refused a sync; the message is retried with backoff (never dropped).</summary>
public sealed class RelayUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RelayUnavailableException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public RelayUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the cause.</summary>
    public RelayUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
