namespace IMikelGo.App.Components;

/// <summary>Where the update check stands, as the prompt and the about area show it.</summary>
public enum UpdateState
{
    /// <summary>No feed or no pinned vendor certificate configured: the app never checks and never prompts.</summary>
    NotConfigured,

    /// <summary>A check is running.</summary>
    Checking,

    /// <summary>The feed offers nothing newer.</summary>
    UpToDate,

    /// <summary>A verified newer release: the prompt is shown.</summary>
    Available,

    /// <summary>A verified newer release, postponed (by "Later" or because a lesson is on): asked again at <see cref="UpdateStatus.AskAt"/>.</summary>
    Postponed,

    /// <summary>The feed's manifest, signature or state did not verify (or the feed was unreachable): nothing installed, the running version stays.</summary>
    Refused,

    /// <summary>Downloading and verifying the release.</summary>
    Installing,

    /// <summary>Installed and activated: it runs after the app restarts.</summary>
    Installed,
}

/// <summary>A verified release offered to the teacher.</summary>
/// <param name="Version">The offered version.</param>
/// <param name="Running">The running version.</param>
/// <param name="Security">A security update.</param>
/// <param name="CanPostpone">Whether "Later" is offered (not for a security update past its grace period or below the minimum version).</param>
/// <param name="Deadline">The end of a security update's grace period, if any.</param>
public sealed record UpdateOffer(string Version, string Running, bool Security, bool CanPostpone, DateTimeOffset? Deadline);

/// <summary>The update check's state for the screens.</summary>
/// <param name="State">Where it stands.</param>
/// <param name="Running">The running version.</param>
/// <param name="Offer">The verified release, if any.</param>
/// <param name="Detail">The updater's reason (refusal, postponement), in its own words.</param>
/// <param name="AskAt">When a postponed update is asked again.</param>
/// <param name="CheckedAt">When the feed was last checked.</param>
public sealed record UpdateStatus(UpdateState State, string Running, UpdateOffer? Offer, string? Detail, DateTimeOffset? AskAt, DateTimeOffset? CheckedAt);

/// <summary>
/// The signed auto-update as the screens need it (docs/updates.md): the host checks the configured feed at start and on
/// demand, applies the deferral policy (never during one of the teacher's lessons; a security update past its grace
/// period cannot be postponed) and installs a verified release.
/// </summary>
public interface IAppUpdates
{
    /// <summary>Raised when <see cref="Status"/> changed.</summary>
    event Action? Changed;

    /// <summary>The current state.</summary>
    UpdateStatus Status { get; }

    /// <summary>Checks the feed now (no-op when not configured).</summary>
    Task CheckAsync(CancellationToken cancellationToken);

    /// <summary>Downloads, verifies and activates the offered release.</summary>
    Task InstallAsync(CancellationToken cancellationToken);

    /// <summary>Postpones the offered release (persisted; survives restarts).</summary>
    Task LaterAsync(CancellationToken cancellationToken);
}
