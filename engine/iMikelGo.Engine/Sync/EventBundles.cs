using System.Diagnostics.CodeAnalysis;
using System.Text;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;
using IMikelGo.Sealing;

namespace IMikelGo.Engine.Sync;

/// <summary>
/// Seals a batch of signed events into one bundle for the account's recipient devices, and opens one again.
/// The bundle's authenticated header names the account, the sender and one sequence range per author; on
/// opening, every event must belong to that account and lie inside those ranges, so a bundle cannot smuggle
/// events of another account or beyond what the header declares. A replica sends its own chain; the account's school
/// may also forward the devices' chains (to a device enrolled later, whose enrollment depends on them). Authorship is
/// each event's own checkpoint signature and hash chain, verified again by the <see cref="Ledger"/>; forwarding is
/// still limited to the school, so that a device cannot pass on events signed with another (e.g. revoked) device's
/// key, which the relay would refuse from that device itself.
/// </summary>
public static class EventBundles
{
    /// <summary>
    /// Seals <paramref name="events"/> — all of one account: the chain of <paramref name="sender"/>, the sealing replica,
    /// and any events of other authors it forwards, each author's as one unbroken run — for <paramref name="recipients"/>.
    /// </summary>
    /// <exception cref="ArgumentException">No events, events of several accounts, or an author's events with a gap or a seq twice.</exception>
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

        var byAuthor = events.GroupBy(e => e.Event.Replica).ToList();
        if (byAuthor.FirstOrDefault(g => g.Select(e => e.Event.Seq).Distinct().Count() != g.Count() || g.Count() != g.Max(e => e.Event.Seq) - g.Min(e => e.Event.Seq) + 1) is { } gap)
        {
            // The header declares one range per author, and an opened bundle must hold every event of it exactly once
            // (a seq given twice, a fork, would make every recipient refuse the whole bundle).
            throw new ArgumentException($"the events of {gap.Key} are not one unbroken run of its chain", nameof(events));
        }

        var ranges = byAuthor.Select(g => new SequenceRange(g.Key.Value, (ulong)g.Min(e => e.Event.Seq), (ulong)g.Max(e => e.Event.Seq)));
        var payload = new MemoryStream();
        foreach (var e in events.OrderBy(e => e.Event.Replica).ThenBy(e => e.Event.Seq))
        {
            payload.Write(e.ToLineBytes());
            payload.WriteByte((byte)'\n');
        }

        return Bundle.Seal(account.Value, sender.Value, ranges, payload.ToArray(), recipients);
    }

    /// <summary>
    /// Opens a bundle read from <paramref name="account"/>'s mailbox and parses its events, every one of them written by
    /// the bundle's sender unless the bundle also holds the sender's <c>account.opened</c> (a school forwarding device
    /// chains); any fault is returned in <paramref name="error"/> and then no event is returned.
    /// </summary>
    public static bool TryOpen(
        ReadOnlySpan<byte> bundle, AccountId account, IRecipientKeys keys, ISeenBundles? seen,
        [NotNullWhen(true)] out IReadOnlyList<SignedEvent>? events, out string? error) =>
        TryOpen(bundle, account, keys, seen, forwarder: null, out events, out error);

    /// <summary>
    /// Opens a bundle read from <paramref name="account"/>'s mailbox and parses its events; any fault is returned in
    /// <paramref name="error"/> and then no event is returned. Events of other authors than the bundle's sender are
    /// accepted only when the sender is <paramref name="forwarder"/> (the account's school) or, when the recipient knows no
    /// school yet (null), when the bundle holds the sender's own <c>account.opened</c>.
    /// </summary>
    public static bool TryOpen(
        ReadOnlySpan<byte> bundle, AccountId account, IRecipientKeys keys, ISeenBundles? seen, ReplicaId? forwarder,
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

            parsed.Add(e);
        }

        // Forwarding is the school's: the one the recipient knows, or — for a recipient that knows none yet — the sender
        // whose own account.opened is in the bundle (the ledger's rule for who the school is).
        var sender = opened.Header.SenderReplicaId;
        var forwards = forwarder is { } school
            ? school.Value == sender
            : parsed.Any(e => e.Event.Seq == 1 && e.Event.Payload is AccountOpened && e.Event.Replica.Value == sender);
        if (!forwards && parsed.FirstOrDefault(e => e.Event.Replica.Value != sender) is { } foreign)
        {
            error = $"bundle {opened.Header.BundleId}: event {foreign.Event.Describe()} was not written by the bundle's sender {sender}, which is not the account's school (only the school forwards events)";
            return false;
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
