using System.Diagnostics.CodeAnalysis;
using System.Text;
using IMikelGo.Engine.Chains;
using IMikelGo.Sealing;

namespace IMikelGo.Engine.Sync;

/// <summary>
/// Seals a batch of signed events into one bundle for the account's recipient devices, and opens one again.
/// The bundle's authenticated header names the account, the sender and one sequence range per author; on
/// opening, every event must belong to that account and lie inside those ranges, so a bundle cannot smuggle
/// events of another account or beyond what the header declares. The events keep their own checkpoint
/// signatures and are verified again by the <see cref="Ledger"/>.
/// </summary>
public static class EventBundles
{
    /// <summary>
    /// Seals <paramref name="events"/> — all of one account and written by <paramref name="sender"/>, the sealing
    /// replica itself — for <paramref name="recipients"/>. Each replica seals and sends only its own chain.
    /// </summary>
    /// <exception cref="ArgumentException">No events, events of several accounts, or of another author.</exception>
    public static SealedBundle Seal(ReplicaId sender, IReadOnlyCollection<SignedEvent> events, IEnumerable<RecipientPublicKey> recipients)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            throw new ArgumentException("a bundle holds at least one event", nameof(events));
        }

        var account = events.First().Event.Account;
        if (events.Any(e => e.Event.Account != account))
        {
            throw new ArgumentException("a bundle holds the events of one account", nameof(events));
        }

        if (events.Any(e => e.Event.Replica != sender))
        {
            throw new ArgumentException("a replica seals only the events it wrote itself", nameof(events));
        }

        var ranges = events.GroupBy(e => e.Event.Replica)
            .Select(g => new SequenceRange(g.Key.Value, (ulong)g.Min(e => e.Event.Seq), (ulong)g.Max(e => e.Event.Seq)));
        var payload = new MemoryStream();
        foreach (var e in events.OrderBy(e => e.Event.Replica).ThenBy(e => e.Event.Seq))
        {
            payload.Write(e.ToLineBytes());
            payload.WriteByte((byte)'\n');
        }

        return Bundle.Seal(account.Value, sender.Value, ranges, payload.ToArray(), recipients);
    }

    /// <summary>
    /// Opens a bundle read from <paramref name="account"/>'s mailbox and parses its events; any fault is
    /// returned in <paramref name="error"/> and then no event is returned.
    /// </summary>
    public static bool TryOpen(
        ReadOnlySpan<byte> bundle, AccountId account, IRecipientKeys keys, ISeenBundles? seen,
        [NotNullWhen(true)] out IReadOnlyList<SignedEvent>? events, out string? error)
    {
        events = null;
        OpenedBundle? opened;
        SealingError sealingError;
        var ok = seen is null
            ? Bundle.TryOpen(bundle, account.Value, keys, out opened, out sealingError)
            : Bundle.TryOpenOnce(bundle, account.Value, keys, seen, out opened, out sealingError);
        if (!ok || opened is null)
        {
            error = $"bundle refused: {sealingError.Code}: {sealingError.Message}";
            return false;
        }

        var parsed = new List<SignedEvent>();
        var lines = Encoding.UTF8.GetString(opened.Payload).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < lines.Length; i++)
        {
            SignedEvent e;
            try
            {
                e = SignedEvent.ParseLine(lines[i]);
            }
            catch (FormatException ex)
            {
                error = $"bundle {opened.Header.BundleId}: event {i + 1}: {ex.Message}";
                return false;
            }

            var inRange = opened.Header.Ranges.Any(r => r.ReplicaId == e.Event.Replica.Value &&
                (ulong)e.Event.Seq >= r.FromSequence && (ulong)e.Event.Seq <= r.ToSequence);
            if (e.Event.Account != account || !inRange)
            {
                error = $"bundle {opened.Header.BundleId}: event {e.Event.Describe()} lies outside the account or sequence ranges its header declares";
                return false;
            }

            if (e.Event.Replica.Value != opened.Header.SenderReplicaId)
            {
                error = $"bundle {opened.Header.BundleId}: event {e.Event.Describe()} was not written by the bundle's sender {opened.Header.SenderReplicaId}";
                return false;
            }

            parsed.Add(e);
        }

        // The header's ranges are a promise: every declared event must be present, exactly once.
        var declared = opened.Header.Ranges.Sum(r => (long)(r.ToSequence - r.FromSequence + 1));
        var distinct = parsed.Select(e => (e.Event.Replica, e.Event.Seq)).Distinct().Count();
        if (distinct != parsed.Count || distinct != declared)
        {
            error = $"bundle {opened.Header.BundleId}: its header declares {declared} event(s) but it holds {parsed.Count} ({distinct} distinct)";
            return false;
        }

        error = null;
        events = parsed;
        return true;
    }
}
