using IMikelGo.Engine.Events;
using IMikelGo.Engine.Merge;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Engine.Chains;

/// <summary>The outcome of recording a fact: the signed event, or why it was not recorded.</summary>
public sealed record RecordResult(SignedEvent? Event, string? Error)
{
    /// <summary>Whether the fact was recorded.</summary>
    public bool Succeeded => Event is not null;
}

/// <summary>
/// One replica of an account (the school connector or a device): writes its own chain and merges everyone
/// else's. <see cref="Record"/> refuses a fact that could not apply before it joins the chain, so an honest
/// replica never signs an event its peers would reject.
/// </summary>
public sealed class Replica
{
    private readonly ReplicaWriter _writer;

    /// <summary>Creates a replica of <paramref name="account"/> writing with <paramref name="key"/>.</summary>
    public Replica(AccountId account, ReplicaKey key, LedgerOptions? options = null, TimeProvider? time = null, ChainPosition? position = null)
        : this(account, key, new Ledger(options, time), time, position)
    {
    }

    /// <summary>Continues a replica over a ledger already loaded from storage.</summary>
    public Replica(AccountId account, ReplicaKey key, Ledger ledger, TimeProvider? time, ChainPosition? position)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        Ledger = ledger;
        _writer = new ReplicaWriter(account, key, time, position);
        _writer.Observe(ledger.Heads(account));
    }

    /// <summary>The account.</summary>
    public AccountId Account => _writer.Account;

    /// <summary>This replica's id.</summary>
    public ReplicaId Id => _writer.Replica;

    /// <summary>Everything this replica holds, verified.</summary>
    public Ledger Ledger { get; }

    /// <summary>Where this replica's own chain stands.</summary>
    public ChainPosition Position => _writer.Position;

    /// <summary>The account's calendar as this replica sees it.</summary>
    public Calendar Calendar => Ledger.Calendar(Account);

    /// <summary>Records a fact in this replica's chain, or says why it cannot apply.</summary>
    public RecordResult Record(LessonEvent payload) => RecordBatch([payload]);

    /// <summary>Records several facts with one checkpoint signature.</summary>
    public RecordResult RecordBatch(IReadOnlyList<LessonEvent> payloads)
    {
        ArgumentNullException.ThrowIfNull(payloads);
        _writer.Observe(Ledger.Heads(Account));
        IReadOnlyList<SignedEvent>? events;
        string? error;
        try
        {
            events = _writer.AppendBatch(payloads, Ledger.CheckIntent, out error);
        }
        catch (FormatException ex)
        {
            // The fact cannot be expressed on the wire (e.g. a device id that is not the hash of its key).
            return new RecordResult(null, $"not recorded: {ex.Message}");
        }

        if (events is null)
        {
            return new RecordResult(null, error);
        }

        var report = Ledger.Ingest(events);
        return report.Refused.IsEmpty
            ? new RecordResult(events[^1], null)
            : new RecordResult(null, report.Refused[0].ToString());
    }

    /// <summary>Verifies and merges events from peers.</summary>
    public IngestReport Receive(IEnumerable<SignedEvent> events)
    {
        var report = Ledger.Ingest(events);
        _writer.Observe(Ledger.Heads(Account));
        return report;
    }
}
