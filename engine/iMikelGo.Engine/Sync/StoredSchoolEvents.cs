using IMikelGo.Engine.Chains;

namespace IMikelGo.Engine.Sync;

/// <summary>The input check every <see cref="ISchoolConnectorStore"/> applies before it stores an event.</summary>
public static class StoredSchoolEvents
{
    /// <summary>
    /// Parses <paramref name="stored"/>'s canonical line and checks that its hash, account, replica and sequence number
    /// are the line's, so a store never keeps an event under fields that contradict it.
    /// </summary>
    /// <param name="stored">The event to check.</param>
    /// <param name="index">Its position in the caller's batch (named in the error).</param>
    /// <returns>The parsed event.</returns>
    /// <exception cref="ArgumentException">The event is null, its line does not parse, or a field contradicts the line.</exception>
    public static SignedEvent Parse(StoredSchoolEvent? stored, int index)
    {
        if (stored is null)
        {
            throw new ArgumentException($"events[{index}] is null", "events");
        }

        SignedEvent parsed;
        try
        {
            parsed = SignedEvent.ParseLine(stored.Line ?? throw new ArgumentException($"events[{index}].Line is null", "events"));
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"events[{index}].Line is not a canonical signed event line: {e.Message}", "events", e);
        }

        var ev = parsed.Event;
        var mismatch = !string.Equals(stored.Hash, ev.Hash.Hex, StringComparison.Ordinal) ? $"Hash '{stored.Hash}' is not the line's {ev.Hash.Hex}"
            : !string.Equals(stored.Account, ev.Account.Value, StringComparison.Ordinal) ? $"Account '{stored.Account}' is not the line's {ev.Account}"
            : !string.Equals(stored.Replica, ev.Replica.Value, StringComparison.Ordinal) ? $"Replica '{stored.Replica}' is not the line's {ev.Replica}"
            : stored.Seq != ev.Seq ? $"Seq {stored.Seq} is not the line's {ev.Seq}"
            : null;
        return mismatch is null ? parsed : throw new ArgumentException($"events[{index}].{mismatch}", "events");
    }
}
