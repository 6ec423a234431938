using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Security.Cryptography;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;

namespace IMikelGo.Engine.Chains;

/// <summary>Settings for verification on receipt.</summary>
public sealed class LedgerOptions
{
    /// <summary>
    /// The school replicas trusted to open accounts. Empty means the first authentic <c>account.opened</c> of
    /// each account is trusted (its replica id is the hash of its key, so it cannot be swapped later).
    /// </summary>
    public ISet<ReplicaId> TrustedSchools { get; } = new HashSet<ReplicaId>();

    /// <summary>How far an author's wall time may run ahead of ours before it is flagged (never refused).</summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// The union of every replica's chain for any number of accounts, verified on receipt and merged by vector
/// clock. Input order and duplication do not matter: a log is a set. Verification per event runs structure →
/// hash → chain continuity → checkpoint signature → clock sanity → authorization; a gap is held back until it
/// is filled; a proven fork quarantines its author. Not thread-safe: one writer at a time.
/// </summary>
public sealed class Ledger
{
    private const int MaxOtherSignatures = 4;

    private const int ParallelParseThreshold = 1024;

    private readonly Dictionary<AccountId, AccountState> _accounts = [];
    private readonly LedgerOptions _options;
    private readonly TimeProvider _time;

    /// <summary>Creates an empty ledger.</summary>
    public Ledger(LedgerOptions? options = null, TimeProvider? time = null, ILogger<Ledger>? logger = null)
    {
        _options = options ?? new LedgerOptions();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    private readonly ILogger _logger;

    /// <summary>The accounts seen so far.</summary>
    public IEnumerable<AccountId> Accounts => _accounts.Keys.OrderBy(a => a.Value, StringComparer.Ordinal);

    /// <summary>Every applied event, in the order it was applied (causal, not necessarily total).</summary>
    public IEnumerable<Event> Applied => _accounts.Values.SelectMany(a => a.AppliedOrder);

    /// <summary>The school replica of <paramref name="account"/> (the author of its applied <c>account.opened</c>), or null.</summary>
    public ReplicaId? SchoolOf(AccountId account) => _accounts.TryGetValue(account, out var state) ? state.School : null;

    /// <summary>Number of applied events.</summary>
    public int AppliedCount => _accounts.Values.Sum(a => a.AppliedOrder.Count);

    /// <summary>All forks proven so far.</summary>
    public IReadOnlyList<Fork> Forks => [.. _accounts.Values.SelectMany(a => a.Forks)];

    /// <summary>The calendar projection of <paramref name="account"/>.</summary>
    public Calendar Calendar(AccountId account) =>
        _accounts.TryGetValue(account, out var state) ? state.Calendar : new Calendar(account);

    /// <summary>The head (highest applied seq) of every chain of <paramref name="account"/>.</summary>
    public VectorClock Heads(AccountId account) =>
        _accounts.TryGetValue(account, out var state) ? state.AppliedClock : VectorClock.Empty;

    /// <summary>The applied event of <paramref name="replica"/> at <paramref name="seq"/>, if any.</summary>
    public SignedEvent? Find(AccountId account, ReplicaId replica, long seq) =>
        _accounts.TryGetValue(account, out var state) && state.Chains.TryGetValue(replica, out var chain) && seq >= 1 && seq <= chain.Applied.Count
            ? chain.Applied[(int)seq - 1]
            : null;

    /// <summary>
    /// The authenticated events of <paramref name="account"/> that a peer who has seen <paramref name="since"/>
    /// lacks, per chain in sequence order; every chain's range ends on a checkpoint, so the peer can verify it.
    /// </summary>
    public IReadOnlyList<SignedEvent> Export(AccountId account, VectorClock? since = null)
    {
        if (!_accounts.TryGetValue(account, out var state))
        {
            return [];
        }

        since ??= VectorClock.Empty;
        var result = new List<SignedEvent>();
        foreach (var chain in state.Chains.Values.OrderBy(c => c.Replica))
        {
            for (var seq = since[chain.Replica] + 1; seq <= chain.TailSeq; seq++)
            {
                result.Add(chain.AtSeq(seq)!);
            }
        }

        return result;
    }

    /// <summary>Why <paramref name="e"/>'s intent could not apply to its account's calendar, or null when it can.</summary>
    internal string? CheckIntent(Event e) =>
        _accounts.TryGetValue(e.Account, out var state) ? state.Calendar.Check(e, state.IsSchool(e.Replica)) : new Calendar(e.Account).Check(e, isSchool: false);

    /// <summary>
    /// The latest encryption key each enrolled, non-revoked replica of <paramref name="account"/> published in its
    /// own signed chain: the recipients of the next bundle. A revoked device never appears here.
    /// </summary>
    public IReadOnlyDictionary<ReplicaId, System.Collections.Immutable.ImmutableArray<byte>> RecipientKeys(AccountId account)
    {
        var result = new SortedDictionary<ReplicaId, System.Collections.Immutable.ImmutableArray<byte>>();
        if (!_accounts.TryGetValue(account, out var state))
        {
            return result;
        }

        var revoked = state.AppliedOrder.Select(e => e.Payload).OfType<DeviceRevoked>().Select(r => r.Device).ToHashSet();
        foreach (var e in state.AppliedOrder.Where(e => e.Payload is EncryptionKeyPublished && !revoked.Contains(e.Replica)).OrderBy(e => e.Seq))
        {
            result[e.Replica] = ((EncryptionKeyPublished)e.Payload).PublicKey;
        }

        return result;
    }

    /// <summary>
    /// Every event received but not yet applied (held back for a gap, a checkpoint or a dependency), as received:
    /// a store keeps these too, so a restart never loses an event whose predecessors have not arrived yet.
    /// </summary>
    public IReadOnlyList<SignedEvent> Unapplied() =>
        [.. _accounts.Values.SelectMany(a => a.Chains.Values).OrderBy(c => c.Replica).SelectMany(c => c.Authenticated.Concat(c.Staged.Values.OrderBy(s => s.Event.Seq)))];

    /// <summary>Events received but not applied, each with the reason it is held back.</summary>
    public IReadOnlyList<Hold> Held() => [.. _accounts.Values.SelectMany(a => a.DescribeHeld())];

    /// <summary>Verifies and applies <paramref name="events"/>; returns what happened to each.</summary>
    public IngestReport Ingest(IEnumerable<SignedEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        using var activity = EngineTelemetry.Source.StartActivity("ledger.ingest");
        var report = new ReportBuilder();
        var touched = new HashSet<AccountState>();
        foreach (var incoming in events)
        {
            if (!_accounts.TryGetValue(incoming.Event.Account, out var state))
            {
                state = new AccountState(incoming.Event.Account, _options);
                _accounts.Add(incoming.Event.Account, state);
            }

            state.Stage(incoming, report);
            touched.Add(state);
        }

        foreach (var state in touched)
        {
            state.Settle(report, _time.GetUtcNow());
        }

        EngineTelemetry.EventsApplied.Add(report.Applied.Count);
        EngineTelemetry.EventsRefused.Add(report.Refused.Count);
        activity?.SetTag("imikelgo.applied", report.Applied.Count);
        // Refusals and forks name the event (author, seq, type, hash prefix), never its content.
        foreach (var refusal in report.Refused)
        {
            _logger.LogWarning("Refused {Subject}: {Kind}: {Reason}", refusal.Subject, refusal.Kind, refusal.Reason);
        }

        foreach (var fork in report.Forks)
        {
            _logger.LogError("Fork: replica {Replica} of account {Account} wrote two events at seq {Seq}; quarantined", fork.Replica, fork.Account, fork.Seq);
        }

        return report.Build();
    }

    /// <summary>Parses and ingests log lines; a malformed line is refused and named by its number.</summary>
    public IngestReport IngestLines(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var all = lines as IReadOnlyList<string> ?? [.. lines];
        var results = new SignedEvent?[all.Count];
        var errors = new Refusal?[all.Count];

        // Lines parse independently (pure, per-thread scratch state), so large inputs use every core; results are
        // collected in line order, so the report is the same as a sequential parse.
        void ParseOne(int i)
        {
            var line = all[i];
            if (string.IsNullOrWhiteSpace(line))
            {
                return;
            }

            try
            {
                results[i] = SignedEvent.ParseLine(line);
            }
            catch (FormatException ex)
            {
                var kind = ex.Message.StartsWith("line.hash", StringComparison.Ordinal) ? RefusalKind.HashMismatch : RefusalKind.Malformed;
                errors[i] = new Refusal(kind, $"line {i + 1}", ex.Message);
            }
        }

        if (all.Count >= ParallelParseThreshold && Environment.ProcessorCount > 1)
        {
            Parallel.For(0, all.Count, ParseOne);
        }
        else
        {
            for (var i = 0; i < all.Count; i++)
            {
                ParseOne(i);
            }
        }

        var parsed = new List<SignedEvent>(all.Count);
        var refused = new List<Refusal>();
        for (var i = 0; i < all.Count; i++)
        {
            if (results[i] is { } e)
            {
                parsed.Add(e);
            }
            else if (errors[i] is { } r)
            {
                refused.Add(r);
            }
        }

        var report = Ingest(parsed);
        return report with { Refused = [.. refused, .. report.Refused] };
    }

    internal sealed class ReportBuilder
    {
        public List<Event> Applied { get; } = [];

        public List<Refusal> Refused { get; } = [];

        public List<Fork> Forks { get; } = [];

        public List<TimeFlag> TimeFlags { get; } = [];

        public int Duplicates { get; set; }

        public IngestReport Build() => new([.. Applied], Duplicates, [.. Refused], [.. Forks], [.. TimeFlags]);
    }

    private sealed class Chain(ReplicaId replica)
    {
        public ReplicaId Replica { get; } = replica;

        public List<SignedEvent> Applied { get; } = [];

        /// <summary>Authenticated events (linked to a verified checkpoint) waiting for their dependencies.</summary>
        public PendingQueue Authenticated { get; } = new();

        public bool Dirty { get; set; }

        /// <summary>Received but not yet authenticated, by hash.</summary>
        public Dictionary<EventHash, SignedEvent> Staged { get; } = [];

        public HashSet<EventHash> Known { get; } = [];

        /// <summary>Hashes of staged events of which a copy without checkpoint was received.</summary>
        public HashSet<EventHash> UnsignedReceived { get; } = [];

        /// <summary>Further checkpoint signatures received for a staged event, checked when it is authenticated.</summary>
        public Dictionary<EventHash, List<SignedEvent>> OtherSignatures { get; } = [];

        public ECDsa? Key { get; set; }

        public string? QuarantineReason { get; set; }

        public Refusal? BrokenAt { get; set; }

        public long TailSeq => Applied.Count + Authenticated.Count;

        public SignedEvent? AtSeq(long seq) =>
            seq < 1 ? null : seq <= Applied.Count ? Applied[(int)seq - 1] : seq <= TailSeq ? Authenticated[(int)(seq - Applied.Count - 1)] : null;
    }

    /// <summary>A FIFO with indexed access, so the chain tail is found in O(1).</summary>
    private sealed class PendingQueue : IEnumerable<SignedEvent>
    {
        private readonly List<SignedEvent> _items = [];
        private int _start;

        public int Count => _items.Count - _start;

        public SignedEvent this[int index] => _items[_start + index];

        public void Enqueue(SignedEvent item) => _items.Add(item);

        public bool TryPeek([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SignedEvent? item)
        {
            item = Count > 0 ? _items[_start] : null;
            return item is not null;
        }

        public void Dequeue()
        {
            _start++;
            if (_start > 1024 && _start * 2 > _items.Count)
            {
                _items.RemoveRange(0, _start);
                _start = 0;
            }
        }

        public IEnumerator<SignedEvent> GetEnumerator() => _items.Skip(_start).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private sealed class AccountState(AccountId account, LedgerOptions options)
    {
        public Dictionary<ReplicaId, Chain> Chains { get; } = [];

        public List<Event> AppliedOrder { get; } = [];

        public List<Fork> Forks { get; } = [];

        public VectorClock AppliedClock { get; private set; } = VectorClock.Empty;

        public Calendar Calendar { get; } = new(account);

        private ReplicaId? _school;

        public ReplicaId? School => _school;

        public bool IsSchool(ReplicaId replica) => _school == replica;

        private readonly Dictionary<ReplicaId, long> _revokedAtSchoolSeq = [];

        public void Stage(SignedEvent incoming, ReportBuilder report)
        {
            var e = incoming.Event;
            var chain = GetChain(e.Replica);
            if (chain.QuarantineReason is not null)
            {
                report.Refused.Add(new Refusal(RefusalKind.Quarantined, e.Describe(), chain.QuarantineReason));
                return;
            }

            if (!incoming.IsCheckpoint)
            {
                chain.UnsignedReceived.Add(e.Hash);
            }

            if (chain.Known.Contains(e.Hash))
            {
                // Identity is the body hash: another copy (unsigned, or with another signature) is a duplicate.
                report.Duplicates++;
                if (incoming.IsCheckpoint && chain.Staged.TryGetValue(e.Hash, out var staged))
                {
                    if (!staged.IsCheckpoint)
                    {
                        chain.Staged[e.Hash] = incoming;
                        chain.Dirty = true;
                    }
                    else if (!staged.Checkpoint.AsSpan().SequenceEqual(incoming.Checkpoint.AsSpan()))
                    {
                        // Not verified yet: keep a few other signatures, so a forged copy that arrived first
                        // cannot make us drop the genuine one (order must not matter).
                        if (!chain.OtherSignatures.TryGetValue(e.Hash, out var others))
                        {
                            others = [];
                            chain.OtherSignatures.Add(e.Hash, others);
                        }

                        if (others.Count < MaxOtherSignatures && !others.Any(o => o.Checkpoint.AsSpan().SequenceEqual(incoming.Checkpoint.AsSpan())))
                        {
                            others.Add(incoming);
                            chain.Dirty = true;
                        }
                    }
                }

                return;
            }

            chain.Known.Add(e.Hash);
            chain.Staged[e.Hash] = incoming;
            chain.Dirty = true;
        }

        public void Settle(ReportBuilder report, DateTimeOffset now)
        {
            bool progress;
            var ordered = new List<Chain>();
            do
            {
                progress = false;
                Ordered(ordered);
                foreach (var chain in ordered)
                {
                    progress |= Authenticate(chain, report);
                }

                Ordered(ordered);
                foreach (var chain in ordered)
                {
                    progress |= ApplyReady(chain, report, now);
                }
            }
            while (progress);
        }

        /// <summary>The chains by replica id; re-sorted only when a chain was added (enrollment during settling).</summary>
        private void Ordered(List<Chain> ordered)
        {
            if (ordered.Count == Chains.Count)
            {
                return;
            }

            ordered.Clear();
            ordered.AddRange(Chains.Values);
            ordered.Sort((a, b) => a.Replica.CompareTo(b.Replica));
        }

        private Chain GetChain(ReplicaId replica)
        {
            if (!Chains.TryGetValue(replica, out var chain))
            {
                chain = new Chain(replica);
                Chains.Add(replica, chain);
            }

            return chain;
        }

        private ECDsa? KeyFor(Chain chain)
        {
            if (chain.Key is not null)
            {
                return chain.Key;
            }

            // The school's key travels in its own first event; the replica id is the key's hash, so it is self-certifying.
            if (chain.Applied.Count == 0 && chain.Authenticated.Count == 0 &&
                chain.Staged.Values.FirstOrDefault(s => s.Event.Seq == 1 && s.Event.Payload is AccountOpened) is { } opening &&
                opening.Event.Payload is AccountOpened opened &&
                ReplicaId.FromPublicKey(opened.SchoolKey.AsSpan()) == chain.Replica &&
                (options.TrustedSchools.Count == 0 || options.TrustedSchools.Contains(chain.Replica)))
            {
                return Import(opened.SchoolKey);
            }

            return null;
        }

        private static ECDsa? Import(ImmutableArray<byte> spki)
        {
            try
            {
                var key = ECDsa.Create();
                key.ImportSubjectPublicKeyInfo(spki.AsSpan(), out _);
                return key;
            }
            catch (CryptographicException)
            {
                return null;
            }
        }

        /// <summary>Moves staged events covered by a valid checkpoint into the authenticated queue.</summary>
        private bool Authenticate(Chain chain, ReportBuilder report)
        {
            if (!chain.Dirty || chain.Staged.Count == 0 || chain.QuarantineReason is not null)
            {
                return false;
            }

            var key = KeyFor(chain);
            if (key is null)
            {
                return false;
            }

            chain.Dirty = false;

            var progress = false;
            foreach (var candidate in chain.Staged.Values.Where(s => s.IsCheckpoint).OrderByDescending(s => s.Event.Seq).ToList())
            {
                if (!chain.Staged.ContainsKey(candidate.Event.Hash))
                {
                    continue; // already moved by a higher checkpoint's path
                }

                var head = VerifiedCopy(chain, candidate, key, report);
                if (head is null)
                {
                    continue;
                }

                // Walk back through staged events by prev hash until we meet the chain we already trust.
                var path = new List<SignedEvent> { head };
                var cursor = head;
                while (cursor.Event.Seq > 1 && chain.Staged.TryGetValue(cursor.Event.Prev, out var previous) && previous.Event.Seq == cursor.Event.Seq - 1)
                {
                    // A copy on the way that carries its own checkpoint is checked too: a line whose signature
                    // does not verify is refused as a whole, even though a later checkpoint covers its body.
                    if (previous.IsCheckpoint)
                    {
                        // Leaves the verified copy, the plain copy received earlier, or nothing staged.
                        VerifiedCopy(chain, previous, key, report);
                        if (!chain.Staged.TryGetValue(previous.Event.Hash, out previous))
                        {
                            break;
                        }
                    }

                    path.Add(previous);
                    cursor = previous;
                }

                var first = cursor.Event;
                var anchor = first.Seq == 1 ? null : chain.AtSeq(first.Seq - 1);
                var anchored = first.Seq == 1 || (anchor is not null && anchor.Event.Hash == first.Prev);
                if (!anchored)
                {
                    continue; // a gap, or a link that does not match; held
                }

                if (first.Seq <= chain.TailSeq)
                {
                    // An authentic event at a position we already hold with a different hash: the author forked.
                    var ours = chain.AtSeq(first.Seq)!;
                    Forks.Add(new Fork(account, chain.Replica, first.Seq, ours, path[^1]));
                    report.Forks.Add(Forks[^1]);
                    chain.QuarantineReason = $"quarantined: it wrote two different events at seq {first.Seq} ({ours.Event.Hash.Short}…, {first.Hash.Short}…)";
                    foreach (var s in path)
                    {
                        chain.Staged.Remove(s.Event.Hash);
                    }

                    return true;
                }

                path.Reverse();
                foreach (var s in path)
                {
                    chain.Staged.Remove(s.Event.Hash);
                    chain.UnsignedReceived.Remove(s.Event.Hash);
                    chain.Authenticated.Enqueue(s);
                }

                progress = true;
            }

            return progress;
        }

        /// <summary>
        /// The copy of <paramref name="candidate"/> whose checkpoint verifies, or null. Each signature that does not
        /// verify is refused as BadSignature and nothing of that copy is applied; a plain (unsigned) copy of the same
        /// body received separately stays held, so a forged copy cannot evict a genuine one.
        /// </summary>
        private static SignedEvent? VerifiedCopy(Chain chain, SignedEvent candidate, ECDsa key, ReportBuilder report)
        {
            var hash = candidate.Event.Hash;
            List<SignedEvent> copies = [candidate];
            if (chain.OtherSignatures.Remove(hash, out var others))
            {
                copies.AddRange(others);
            }

            foreach (var copy in copies)
            {
                if (copy.CheckpointVerifies(key))
                {
                    chain.Staged[hash] = copy;
                    return copy;
                }

                report.Refused.Add(new Refusal(RefusalKind.BadSignature, copy.Event.Describe(), "the checkpoint signature does not verify under the author's key"));
            }

            if (chain.UnsignedReceived.Contains(hash))
            {
                chain.Staged[hash] = candidate.WithoutCheckpoint(); // the plain copy received earlier stays held
            }
            else
            {
                // Nothing of a refused copy is applied, not even its body; a correct copy may still come.
                chain.Staged.Remove(hash);
                chain.Known.Remove(hash);
            }

            return null;
        }

        private bool ApplyReady(Chain chain, ReportBuilder report, DateTimeOffset now)
        {
            var progress = false;
            while (chain.BrokenAt is null && chain.QuarantineReason is null && chain.Authenticated.TryPeek(out var next))
            {
                var e = next.Event;
                if (!DependenciesApplied(e))
                {
                    break;
                }

                var previous = chain.Applied.Count > 0 ? chain.Applied[^1].Event : null;
                var fault = CheckClock(e, previous) ?? Authorize(e);
                if (fault is not null)
                {
                    chain.BrokenAt = fault;
                    report.Refused.Add(fault);
                    break;
                }

                chain.Authenticated.Dequeue();
                chain.Applied.Add(next);
                AppliedOrder.Add(e);
                AppliedClock = AppliedClock.With(e.Replica, e.Seq);
                OnApplied(chain, e);
                report.Applied.Add(e);
                if (e.Time.Wall > now + options.MaxClockSkew)
                {
                    report.TimeFlags.Add(new TimeFlag(e.Hash, $"{e.Describe()}: author's clock is {(e.Time.Wall - now).TotalMinutes:F0} minutes ahead; shown, not used for ordering"));
                }

                progress = true;
            }

            return progress;
        }

        private bool DependenciesApplied(Event e)
        {
            var clock = e.Clock;
            for (var i = 0; i < clock.Count; i++)
            {
                var replica = clock.ReplicaAt(i);
                if (replica != e.Replica && AppliedClock[replica] < clock.SeqAt(i))
                {
                    return false;
                }
            }

            return true;
        }

        private static Refusal? CheckClock(Event e, Event? previous)
        {
            if (previous is null)
            {
                return null;
            }

            if (!e.Clock.Covers(previous.Clock))
            {
                return new Refusal(RefusalKind.ClockInvalid, e.Describe(), $"its vector clock {e.Clock} forgets what its predecessor had seen {previous.Clock}");
            }

            return e.Time.IsAfter(previous.Time)
                ? null
                : new Refusal(RefusalKind.ClockInvalid, e.Describe(), "its hybrid time is not after its predecessor's");
        }

        private Refusal? Authorize(Event e)
        {
            var isSchool = _school == e.Replica || (_school is null && e.Seq == 1 && e.Payload is AccountOpened);
            var role = isSchool ? AuthorRole.School : AuthorRole.Device;
            if (!isSchool)
            {
                if (_school is null || !Chains.TryGetValue(e.Replica, out var chain) || chain.Key is null)
                {
                    return new Refusal(RefusalKind.Unauthorized, e.Describe(), "the author is not an enrolled device of this account");
                }

                if (_revokedAtSchoolSeq.TryGetValue(e.Replica, out var revokedAt) && e.Clock[_school.Value] >= revokedAt)
                {
                    return new Refusal(RefusalKind.Unauthorized, e.Describe(), "the author was revoked, and had seen its revocation when it wrote this");
                }
            }

            if ((e.Payload.AllowedAuthors & role) == 0)
            {
                return new Refusal(RefusalKind.Unauthorized, e.Describe(), $"a {(isSchool ? "school" : "device")} replica may not write {e.TypeName}");
            }

            return e.Payload is AccountOpened && (e.Seq != 1 || _school is not null)
                ? new Refusal(RefusalKind.Unauthorized, e.Describe(), "the account is already opened")
                : null;
        }

        private void OnApplied(Chain chain, Event e)
        {
            switch (e.Payload)
            {
                case AccountOpened opened:
                    _school = e.Replica;
                    chain.Key ??= Import(opened.SchoolKey);
                    break;
                case DeviceEnrolled enrolled when ReplicaId.FromPublicKey(enrolled.DeviceKey.AsSpan()) == enrolled.Device:
                    var device = GetChain(enrolled.Device);
                    device.Key ??= Import(enrolled.DeviceKey);
                    device.Dirty = true;
                    break;
                case DeviceRevoked revoked:
                    _revokedAtSchoolSeq.TryAdd(revoked.Device, e.Seq);
                    break;
                default:
                    break;
            }

            Calendar.Apply(e, isSchool: e.Replica == _school);
        }

        public IEnumerable<Hold> DescribeHeld()
        {
            foreach (var chain in Chains.Values.OrderBy(c => c.Replica))
            {
                foreach (var waiting in chain.Authenticated)
                {
                    var missing = waiting.Event.Clock.Entries.Where(en => en.Key != waiting.Event.Replica && AppliedClock[en.Key] < en.Value)
                        .Select(en => $"{en.Key}#{en.Value}");
                    yield return chain.BrokenAt is not null
                        ? new Hold(HoldKind.BrokenLink, waiting.Event.Describe(), $"follows a refused event ({chain.BrokenAt.Reason})")
                        : new Hold(HoldKind.AwaitingDependencies, waiting.Event.Describe(), $"waits for {string.Join(", ", missing)}");
                }

                // Computed once per chain: describing n held events stays O(n log n), not O(n²).
                var hasKey = chain.Key is not null || KeyFor(chain) is not null;
                var bySeq = chain.Staged.Values.ToLookup(s => s.Event.Seq);
                foreach (var staged in chain.Staged.Values.OrderBy(s => s.Event.Seq))
                {
                    yield return DescribeStaged(chain, staged, hasKey, bySeq);
                }
            }
        }

        private static Hold DescribeStaged(Chain chain, SignedEvent staged, bool hasKey, ILookup<long, SignedEvent> bySeq)
        {
            var e = staged.Event;
            var subject = e.Describe();
            if (!hasKey)
            {
                return new Hold(HoldKind.UnknownAuthor, subject, "no enrollment for this author has been applied");
            }

            if (e.Seq <= chain.TailSeq)
            {
                return new Hold(HoldKind.BrokenLink, subject, $"differs from the authenticated seq {e.Seq} and no checkpoint covers it (an altered or forged copy)");
            }

            var before = e.Seq == 1 ? null : chain.AtSeq(e.Seq - 1) ?? bySeq[e.Seq - 1].FirstOrDefault();
            if (e.Seq > 1 && before is null)
            {
                return new Hold(HoldKind.Gap, subject, $"seq {e.Seq - 1} of this author is missing");
            }

            if (before is not null && before.Event.Hash != e.Prev)
            {
                return new Hold(HoldKind.BrokenLink, subject, $"its prev hash {e.Prev.Short}… does not match seq {e.Seq - 1} ({before.Event.Hash.Short}…)");
            }

            return new Hold(HoldKind.AwaitingCheckpoint, subject, "no valid checkpoint signature covers it yet");
        }
    }
}

internal static class EngineTelemetry
{
    public const string Name = "iMikelGo.Engine";

    public static readonly ActivitySource Source = new(Name);

    public static readonly System.Diagnostics.Metrics.Meter Meter = new(Name);

    public static readonly System.Diagnostics.Metrics.Counter<long> EventsApplied = Meter.CreateCounter<long>("imikelgo.events.applied");

    public static readonly System.Diagnostics.Metrics.Counter<long> EventsRefused = Meter.CreateCounter<long>("imikelgo.events.refused");
}
