using IMikelGo.Engine.Chains;

namespace IMikelGo.Testing;

/// <summary>
/// A deterministic, unreliable network for tests: events posted to a ledger or replica are delivered in a
/// shuffled order, some more than once, some only later (delayed). The same seed gives the same deliveries.
/// Whatever it does, a correct engine must end in the same state once everything has been delivered.
/// </summary>
public sealed class Network
{
    private readonly Random _random;
    private readonly List<Inbox> _inboxes = [];

    /// <summary>Creates a network.</summary>
    /// <param name="seed">Seed of every random choice.</param>
    /// <param name="duplicateRate">Probability that a delivered event is delivered a second time.</param>
    /// <param name="delayRate">Probability that an event is held back by <see cref="Step"/> (it is always delivered by <see cref="Flush"/>).</param>
    public Network(int seed, double duplicateRate = 0.2, double delayRate = 0.3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(duplicateRate, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(duplicateRate, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(delayRate, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(delayRate, 1);
        _random = new Random(seed);
        DuplicateRate = duplicateRate;
        DelayRate = delayRate;
    }

    /// <summary>Probability of a duplicate delivery.</summary>
    public double DuplicateRate { get; }

    /// <summary>Probability of a delay per event and step.</summary>
    public double DelayRate { get; }

    /// <summary>Number of events posted and not yet delivered.</summary>
    public int InFlight => _inboxes.Sum(i => i.Pending.Count);

    /// <summary>Every ingest report produced by deliveries so far.</summary>
    public List<IngestReport> Reports { get; } = [];

    /// <summary>Posts <paramref name="events"/> to <paramref name="to"/>.</summary>
    public void Post(Replica to, IEnumerable<SignedEvent> events)
    {
        ArgumentNullException.ThrowIfNull(to);
        InboxOf(to, to.Receive).Pending.AddRange(events);
    }

    /// <summary>Posts <paramref name="events"/> to a bare ledger (an observer such as a relay-side verifier).</summary>
    public void Post(Ledger to, IEnumerable<SignedEvent> events)
    {
        ArgumentNullException.ThrowIfNull(to);
        InboxOf(to, to.Ingest).Pending.AddRange(events);
    }

    /// <summary>Posts everything <paramref name="from"/> holds that <paramref name="to"/> has not applied yet.</summary>
    public void Send(Replica from, Replica to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        Post(to, from.Ledger.Export(from.Account, to.Ledger.Heads(from.Account)));
    }

    /// <summary>Sends everything <paramref name="from"/> holds to each of <paramref name="to"/> (except itself).</summary>
    public void Broadcast(Replica from, IEnumerable<Replica> to)
    {
        ArgumentNullException.ThrowIfNull(to);
        foreach (var r in to.Where(r => !ReferenceEquals(r, from)))
        {
            Send(from, r);
        }
    }

    /// <summary>
    /// Delivers part of every inbox: each pending event is delayed with probability <see cref="DelayRate"/>;
    /// the rest arrive shuffled, some twice, in a few random batches.
    /// </summary>
    public void Step() => Deliver(flush: false);

    /// <summary>Delivers everything still in flight (shuffled, with duplicates).</summary>
    public void Flush()
    {
        while (InFlight > 0)
        {
            Deliver(flush: true);
        }
    }

    /// <summary>A shuffled copy of <paramref name="events"/> in which some events appear twice.</summary>
    public static IReadOnlyList<SignedEvent> Shuffle(IEnumerable<SignedEvent> events, Random random, double duplicateRate = 0.2)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(random);
        var list = new List<SignedEvent>();
        foreach (var e in events)
        {
            list.Add(e);
            if (random.NextDouble() < duplicateRate)
            {
                list.Add(e);
            }
        }

        for (var i = list.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }

        return list;
    }

    private void Deliver(bool flush)
    {
        foreach (var inbox in _inboxes)
        {
            var now = new List<SignedEvent>();
            var later = new List<SignedEvent>();
            foreach (var e in inbox.Pending)
            {
                (flush || _random.NextDouble() >= DelayRate ? now : later).Add(e);
            }

            inbox.Pending.Clear();
            inbox.Pending.AddRange(later);
            var shuffled = Shuffle(now, _random, DuplicateRate);
            var at = 0;
            while (at < shuffled.Count)
            {
                var size = 1 + _random.Next(shuffled.Count - at);
                Reports.Add(inbox.Deliver(shuffled.Skip(at).Take(size)));
                at += size;
            }
        }
    }

    private Inbox InboxOf(object target, Func<IEnumerable<SignedEvent>, IngestReport> deliver)
    {
        var inbox = _inboxes.Find(i => ReferenceEquals(i.Target, target));
        if (inbox is null)
        {
            inbox = new Inbox(target, deliver);
            _inboxes.Add(inbox);
        }

        return inbox;
    }

    private sealed record Inbox(object Target, Func<IEnumerable<SignedEvent>, IngestReport> Deliver)
    {
        public List<SignedEvent> Pending { get; } = [];
    }
}
