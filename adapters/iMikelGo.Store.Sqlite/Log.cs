using Microsoft.Extensions.Logging;

namespace IMikelGo.Store.Sqlite;

// Never log PINs, keys, device secrets or payloads: only states, reasons and counts.
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Device vault state: {State}")]
    internal static partial void State(ILogger logger, VaultState state);

    [LoggerMessage(2, LogLevel.Warning, "Wrong PIN entered; {Remaining} attempt(s) left")]
    internal static partial void WrongPin(ILogger logger, int remaining);

    [LoggerMessage(3, LogLevel.Warning, "Wiping the device vault: {Reason}")]
    internal static partial void Wiping(ILogger logger, WipeReason reason);

    [LoggerMessage(4, LogLevel.Information, "Device vault wiped ({Reason}); demo mode")]
    internal static partial void Wiped(ILogger logger, WipeReason reason);

    [LoggerMessage(5, LogLevel.Warning, "Database opened in legacy format {Profile}; migrated to {Target}")]
    internal static partial void Migrated(ILogger logger, string profile, string target);

    [LoggerMessage(6, LogLevel.Information, "Enrolled a new device vault for the account")]
    internal static partial void Enrolled(ILogger logger);

    [LoggerMessage(7, LogLevel.Information, "PIN changed")]
    internal static partial void PinChanged(ILogger logger);

    [LoggerMessage(8, LogLevel.Warning, "Wipe step failed, continuing: {Step}")]
    internal static partial void WipeStepFailed(ILogger logger, Exception exception, string step);

    [LoggerMessage(9, LogLevel.Information, "Encrypted SQLite library: {Path} ({Flavor})")]
    internal static partial void Native(ILogger logger, string path, string flavor);
}
