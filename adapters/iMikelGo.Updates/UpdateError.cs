namespace IMikelGo.Updates;

/// <summary>Why an update was refused (every refusal keeps the running version).</summary>
public enum UpdateErrorCode
{
    /// <summary>No error.</summary>
    None,

    /// <summary>The feed could not be read (network, timeout, missing file).</summary>
    Unavailable,

    /// <summary>A manifest, statement or file name is malformed or not canonical.</summary>
    Malformed,

    /// <summary>The signature is missing, invalid, has no or several signers, or the signer is not the pinned vendor certificate.</summary>
    UntrustedSignature,

    /// <summary>The manifest has expired (freeze attack) or is issued in the future.</summary>
    Expired,

    /// <summary>The version is not newer than the running one or older than the newest trusted manifest, or the sequence went back.</summary>
    Rollback,

    /// <summary>The manifest is for another channel.</summary>
    WrongChannel,

    /// <summary>A package file does not match its declared hash or size (arbitrary package, endless data, tampering, mix-and-match).</summary>
    PackageMismatch,

    /// <summary>The local update state failed its integrity check.</summary>
    StateTampered,

    /// <summary>No newer version is offered (not an attack).</summary>
    UpToDate,

    /// <summary>This exact release failed to start before and is not installed again.</summary>
    KnownBad,

    /// <summary>Writing or switching the installation failed.</summary>
    InstallFailed,
}

/// <summary>A refusal with a reason that can be logged and shown.</summary>
/// <param name="Code">The category.</param>
/// <param name="Message">A human-readable reason (no secrets).</param>
public sealed record UpdateError(UpdateErrorCode Code, string Message)
{
    /// <summary>No error.</summary>
    public static UpdateError None { get; } = new(UpdateErrorCode.None, string.Empty);

    /// <inheritdoc />
    public override string ToString() => $"{Code}: {Message}";
}
