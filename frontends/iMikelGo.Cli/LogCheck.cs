using System.Security;
using IMikelGo.Engine;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Events;

namespace IMikelGo.Cli;

/// <summary>One problem found in a log, pinned to the first line that shows it when that is known.</summary>
internal sealed record LogProblem(int? Line, string Kind, string Subject, string Reason)
{
    public override string ToString() => Line is { } n ? $"line {n}: {Kind}: {Subject}: {Reason}" : $"{Kind}: {Subject}: {Reason}";
}

/// <summary>A parsed line, or why it could not be parsed; blank lines have neither.</summary>
internal readonly record struct ParsedLine(SignedEvent? Event, string? Error)
{
    public static ParsedLine From(string line)
    {
        if (line.Length == 0)
        {
            return default;
        }

        try
        {
            return new ParsedLine(SignedEvent.ParseLine(line), null);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or OverflowException or InvalidOperationException)
        {
            return new ParsedLine(null, ex.Message);
        }
    }
}

/// <summary>Per-replica summary line.</summary>
internal sealed record ChainSummary(ReplicaId Replica, string Role, int Applied, long Head);

/// <summary>The outcome of reading and verifying a log file.</summary>
internal sealed class LogCheck
{
    public const int ExitOk = 0;
    public const int ExitUsage = 2;
    public const int ExitInvalid = 3;
    public const int ExitIncomplete = 4;

    private const int Chunk = 16_384;

    private LogCheck(Ledger ledger) => Ledger = ledger;

    public Ledger Ledger { get; }

    public int Lines { get; private set; }

    public int Parsed { get; private set; }

    public int Duplicates { get; private set; }

    /// <summary>Malformed, tampered, forged or forked: any of these makes the log invalid (exit 3).</summary>
    public List<LogProblem> Invalid { get; } = [];

    /// <summary>Held back for lack of events (gap, missing checkpoint or dependency, unknown author): exit 4.</summary>
    public List<LogProblem> Incomplete { get; } = [];

    /// <summary>Wall-clock warnings (shown, never used for ordering).</summary>
    public List<string> Warnings { get; } = [];

    public int ExitCode => Invalid.Count > 0 ? ExitInvalid : Incomplete.Count > 0 ? ExitIncomplete : ExitOk;

    public IReadOnlyList<LogProblem> InvalidSorted => [.. Invalid.OrderBy(p => p.Line ?? int.MaxValue)];

    /// <summary>Reads <paramref name="path"/> line by line (streaming), verifies and merges everything.</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be read.</exception>
    public static LogCheck Run(string path, CancellationToken cancellationToken = default)
    {
        var check = new LogCheck(new Ledger());
        var lineOf = new Dictionary<EventHash, int>();
        var reports = new List<IngestReport>();
        var chunk = new List<string>(Chunk);
        var parsed = new ParsedLine[Chunk];
        void Flush()
        {
            // Parsing is pure and the expensive part: parse a chunk on every core, then ingest in line order.
            var first = check.Lines - chunk.Count + 1;
            Parallel.For(0, chunk.Count, new ParallelOptions { CancellationToken = cancellationToken }, i => parsed[i] = ParsedLine.From(chunk[i]));
            var events = new List<SignedEvent>(chunk.Count);
            for (var i = 0; i < chunk.Count; i++)
            {
                if (parsed[i].Event is { } e)
                {
                    check.Parsed++;
                    lineOf.TryAdd(e.Event.Hash, first + i);
                    events.Add(e);
                }
                else if (parsed[i].Error is { } error)
                {
                    var kind = error.StartsWith("line.hash", StringComparison.Ordinal) ? nameof(RefusalKind.HashMismatch) : nameof(RefusalKind.Malformed);
                    check.Invalid.Add(new LogProblem(first + i, kind, "the line", error));
                }
            }

            reports.Add(check.Ledger.Ingest(events));
            chunk.Clear();
        }

        foreach (var (line, fault) in StrictLines(path))
        {
            cancellationToken.ThrowIfCancellationRequested();
            check.Lines++;
            if (fault is not null)
            {
                check.Invalid.Add(new LogProblem(check.Lines, nameof(RefusalKind.Malformed), "the line", fault));
                chunk.Add(string.Empty);
                continue;
            }

            chunk.Add(line);
            if (chunk.Count == Chunk)
            {
                Flush();
            }
        }

        if (chunk.Count > 0)
        {
            Flush();
        }

        check.Collect(reports, lineOf);
        return check;
    }

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Lines split on LF only and decoded as strict UTF-8: a byte-order mark, invalid UTF-8 or a CR is reported
    /// for the line that holds it instead of being silently repaired, since the bytes are what is hashed.
    /// </summary>
    private static IEnumerable<(string Line, string? Fault)> StrictLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var buffer = new MemoryStream();
        var first = true;
        int b;
        while ((b = stream.ReadByte()) >= 0)
        {
            if (b != '\n')
            {
                buffer.WriteByte((byte)b);
                continue;
            }

            yield return Decode(buffer, first);
            first = false;
            buffer.SetLength(0);
        }

        if (buffer.Length > 0)
        {
            yield return Decode(buffer, first);
        }

        static (string, string?) Decode(MemoryStream bytes, bool firstLine)
        {
            var span = bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
            if (firstLine && span.StartsWith("\uFEFF"u8))
            {
                return (string.Empty, "starts with a byte-order mark (logs are UTF-8 without BOM)");
            }

            try
            {
                return (StrictUtf8.GetString(span), null);
            }
            catch (System.Text.DecoderFallbackException)
            {
                return (string.Empty, "is not valid UTF-8");
            }
        }
    }

    private void Collect(List<IngestReport> reports, Dictionary<EventHash, int> lineOf)
    {
        // Subjects name events as "replica#seq type (hash12)": map them back to the line that carried the event.
        var bySubject = new Dictionary<string, int>(StringComparer.Ordinal);
        int? LineOf(string subject)
        {
            if (bySubject.Count == 0)
            {
                foreach (var (hash, line) in lineOf)
                {
                    bySubject.TryAdd(hash.Short, line);
                }
            }

            var open = subject.LastIndexOf('(');
            var key = open >= 0 && subject.Length >= open + 14 && subject[open + 13] == ')' ? subject.Substring(open + 1, 12) : null;
            return key is not null && bySubject.TryGetValue(key, out var n) ? n : null;
        }

        foreach (var report in reports)
        {
            Duplicates += report.Duplicates;
            foreach (var refusal in report.Refused)
            {
                Invalid.Add(new LogProblem(LineOf(refusal.Subject), refusal.Kind.ToString(), refusal.Subject, refusal.Reason));
            }

            foreach (var flag in report.TimeFlags)
            {
                Warnings.Add(flag.Reason);
            }
        }

        foreach (var fork in Ledger.Forks)
        {
            var first = lineOf.GetValueOrDefault(fork.First.Event.Hash);
            var second = lineOf.GetValueOrDefault(fork.Second.Event.Hash);
            Invalid.Add(new LogProblem(Math.Max(first, second), "Fork", fork.Second.Event.Describe(),
                $"replica {fork.Replica} wrote two different authentic events at seq {fork.Seq} (lines {Math.Min(first, second)} and {Math.Max(first, second)}); the author is quarantined"));
        }

        var refusedSubjects = Invalid.Select(p => p.Subject).ToHashSet(StringComparer.Ordinal);
        foreach (var hold in Ledger.Held().Where(h => !refusedSubjects.Contains(h.Subject)))
        {
            var problem = new LogProblem(LineOf(hold.Subject), hold.Kind.ToString(), hold.Subject, hold.Reason);
            if (hold.Kind == HoldKind.BrokenLink)
            {
                Invalid.Add(problem);
            }
            else
            {
                Incomplete.Add(problem);
            }
        }

        if (Parsed == 0 && Invalid.Count == 0)
        {
            Incomplete.Add(new LogProblem(null, "Empty", "the log", "holds no events"));
        }

        Incomplete.Sort((a, b) => (a.Line ?? int.MaxValue).CompareTo(b.Line ?? int.MaxValue));
    }

    /// <summary>Applied events per replica, school first.</summary>
    public IReadOnlyList<ChainSummary> Chains()
    {
        var roles = new Dictionary<ReplicaId, string>();
        foreach (var e in Ledger.Applied)
        {
            switch (e.Payload)
            {
                case AccountOpened opened:
                    roles[e.Replica] = $"school \"{opened.School}\" (account {e.Account})";
                    break;
                case DeviceEnrolled enrolled:
                    roles.TryAdd(enrolled.Device, $"device \"{enrolled.Label}\" (account {e.Account})");
                    break;
                default:
                    break;
            }
        }

        return [.. Ledger.Applied.GroupBy(e => e.Replica)
            .Select(g => new ChainSummary(g.Key, roles.GetValueOrDefault(g.Key, "unknown"), g.Count(), g.Max(e => e.Seq)))
            .OrderBy(c => c.Role.StartsWith("school", StringComparison.Ordinal) ? 0 : 1).ThenBy(c => c.Replica)];
    }

    /// <summary>Prints the verification summary; the first invalid event (or the first incomplete one) goes to <paramref name="error"/>.</summary>
    public void Print(string path, TextWriter output, TextWriter error)
    {
        output.WriteLine($"{path}: {Lines} lines, {Parsed} events parsed, {Duplicates} duplicates, {Ledger.AppliedCount} applied");
        foreach (var chain in Chains())
        {
            output.WriteLine($"  {chain.Replica.Value[..13]}…  {chain.Applied,7} applied (seq 1..{chain.Head})  {chain.Role}");
        }

        foreach (var warning in Warnings.Take(3))
        {
            error.WriteLine($"warning: {warning}");
        }

        var invalid = InvalidSorted;
        if (invalid.Count > 0)
        {
            error.WriteLine($"INVALID: {invalid[0]}");
            if (invalid.Count > 1)
            {
                error.WriteLine($"  (and {invalid.Count - 1} more problem(s); nothing of a refused event was applied)");
            }

            return;
        }

        if (Incomplete is [{ Kind: "Empty" } empty])
        {
            error.WriteLine($"INCOMPLETE: {empty}");
            return;
        }

        if (Incomplete.Count > 0)
        {
            var kinds = string.Join(", ", Incomplete.GroupBy(p => p.Kind).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"));
            error.WriteLine($"INCOMPLETE: {Incomplete.Count} event(s) held back ({kinds}); first: {Incomplete[0]}");
            return;
        }

        output.WriteLine($"OK: every event valid, every chain complete ({Ledger.AppliedCount} events from {Chains().Count} replicas)");
    }

    internal static bool IsReadError(Exception ex) =>
        ex is IOException or UnauthorizedAccessException or SecurityException or NotSupportedException or ArgumentException;
}
