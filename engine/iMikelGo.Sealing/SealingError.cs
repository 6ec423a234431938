namespace IMikelGo.Sealing;

/// <summary>Why a sealing, opening, verification or enrollment operation was refused.</summary>
public enum SealingErrorCode
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>The input does not follow the documented structure (wrong length, bad field, trailing bytes...).</summary>
    Malformed,
    /// <summary>A magic number, format version or algorithm identifier is not supported.</summary>
    Unsupported,
    /// <summary>A length or count field exceeds the configured limit.</summary>
    LimitExceeded,
    /// <summary>A key or point is invalid (not on the curve, out of range, wrong size).</summary>
    InvalidKey,
    /// <summary>Authenticated decryption failed: the data was altered, or the key is wrong.</summary>
    AuthenticationFailed,
    /// <summary>The bundle belongs to another account (mailbox) than the one expected.</summary>
    WrongAccount,
    /// <summary>None of the caller's keys is among the bundle's recipients.</summary>
    NotARecipient,
    /// <summary>A signature or certificate chain did not verify against the pinned school root.</summary>
    UntrustedSignature,
    /// <summary>A certificate or signed statement is outside its validity period.</summary>
    Expired,
    /// <summary>A signed roster is older than one already accepted (rollback) or conflicts with it.</summary>
    Rollback,
    /// <summary>The device or key has been revoked.</summary>
    Revoked,
    /// <summary>The item was already seen (replay).</summary>
    Duplicate,
}

/// <summary>An expected failure with a machine-readable code and a human-readable reason (never contains secrets).</summary>
/// <param name="Code">What kind of failure.</param>
/// <param name="Message">A clear reason naming what is wrong.</param>
public readonly record struct SealingError(SealingErrorCode Code, string Message)
{
    /// <summary>The value used when no error occurred.</summary>
    public static SealingError None => new(SealingErrorCode.None, string.Empty);

    /// <inheritdoc />
    public override string ToString() => $"{Code}: {Message}";

    internal static SealingError Malformed(string message) => new(SealingErrorCode.Malformed, message);
}
