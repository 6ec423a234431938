using System.Diagnostics;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Merge;

namespace IMikelGo.Benchmarks;

/// <summary>Scratch Stopwatch splits of the 100,000-event ingest (run with the argument <c>profile</c>).</summary>
internal static class Profile
{
    public static int Run()
    {
        SealingSplits();
        var sw = Stopwatch.StartNew();
        var data = EngineData.Build();
        Console.WriteLine($"generate: {sw.ElapsedMilliseconds} ms, {data.Events.Count} events, {data.Checkpoints} checkpoints");

        for (var round = 0; round < 3; round++)
        {
            sw.Restart();
            var ledger = new Ledger();
            var ingestAlloc = GC.GetAllocatedBytesForCurrentThread();
            var report = ledger.Ingest(data.Events);
            Console.WriteLine($"  Ingest allocated {(GC.GetAllocatedBytesForCurrentThread() - ingestAlloc) / data.Events.Count} B/event");
            var ingest = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            var digest = ledger.Calendar(data.Account).Digest();
            var digestMs = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            var lessons = ledger.Calendar(data.Account).Lessons();
            var lessonsMs = sw.Elapsed.TotalMilliseconds;

            // Projection alone: replay the applied events into a fresh calendar.
            var school = data.Keys[0].Replica;
            var calendar = new Calendar(data.Account);
            var byType = new Dictionary<string, (long Ticks, int Count)>();
            var gcBefore = GC.CollectionCount(0);
            var allocBefore = GC.GetAllocatedBytesForCurrentThread();
            sw.Restart();
            foreach (var e in report.Applied)
            {
                var t0 = Stopwatch.GetTimestamp();
                calendar.Apply(e, e.Replica == school);
                var t = Stopwatch.GetTimestamp() - t0;
                var (ticks, count) = byType.GetValueOrDefault(e.TypeName);
                byType[e.TypeName] = (ticks + t, count + 1);
            }

            Console.WriteLine($"  Apply allocated {(GC.GetAllocatedBytesForCurrentThread() - allocBefore) / report.Applied.Length} B/event, gen0 GCs {GC.CollectionCount(0) - gcBefore}; by type: " +
                string.Join(", ", byType.OrderByDescending(kv => kv.Value.Ticks).Select(kv => $"{kv.Key} {kv.Value.Count}x {kv.Value.Ticks * 1000.0 / Stopwatch.Frequency:F0} ms")));

            var applyMs = sw.Elapsed.TotalMilliseconds;

            // Pieces of Calendar.Apply, replayed on the full calendar.
            sw.Restart();
            foreach (var e in report.Applied)
            {
                _ = calendar.Check(e, e.Replica == school);
            }

            var checkMs = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            var set = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var e in report.Applied)
            {
                set.Add(e.Hash.Hex);
            }

            var sortedSetMs = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            long sum = 0;
            foreach (var e in report.Applied)
            {
                sum += e.Clock[school] + e.Clock[e.Replica];
            }

            var clockMs = sw.Elapsed.TotalMilliseconds;
            Console.WriteLine($"  Calendar.Check replay {checkMs:F0} ms, SortedSet<string>.Add of hex hashes {sortedSetMs:F0} ms, 2 clock lookups/event {clockMs:F1} ms; rejected {calendar.Rejected.Count}, conflicts {calendar.Conflicts().Count}");

            // Parse alone.
            sw.Restart();
            foreach (var line in data.LineBytes)
            {
                _ = SignedEvent.ParseLine(line);
            }

            var parseMs = sw.Elapsed.TotalMilliseconds;

            // Parse pieces, and the SHA-256 baseline measured in the same round (the machine may be shared:
            // compare ratios, and CPU time next to wall time).
            sw.Restart();
            foreach (var line in data.LineBytes)
            {
                _ = IMikelGo.Engine.Canonical.CanonicalJson.Decode(line);
            }

            var decodeMs = sw.Elapsed.TotalMilliseconds;
            var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            var hash = new byte[32];
            foreach (var body in data.Bodies)
            {
                System.Security.Cryptography.SHA256.HashData(body, hash);
            }

            var shaMs = sw.Elapsed.TotalMilliseconds;
            var shaCpu = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds;
            cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            var fresh = new Ledger();
            fresh.IngestLines(data.Lines);
            _ = fresh.Calendar(data.Account).Digest();
            var linesMs = sw.Elapsed.TotalMilliseconds;
            var linesCpu = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds;
            Console.WriteLine($"  SHA-256 of bodies {shaMs:F0} ms wall / {shaCpu:F0} ms CPU; IngestLines+Digest {linesMs:F0} ms wall / {linesCpu:F0} ms CPU (x{linesMs / shaMs:F1} SHA-256); CanonicalJson.Decode x{data.LineBytes.Length} {decodeMs:F0} ms");
            Console.WriteLine($"round {round}: Ingest {ingest:F0} ms (of which Calendar.Apply replay {applyMs:F0} ms), Digest {digestMs:F0} ms, Lessons {lessonsMs:F0} ms ({lessons.Count} lessons), ParseLine x{data.LineBytes.Length} {parseMs:F0} ms; digest ok {digest == data.Digest}");
        }

        return 0;
    }

    /// <summary>What one HPKE key wrap costs, step by step (P-256 on the platform's ECDiffieHellman).</summary>
    private static void SealingSplits()
    {
        const int n = 200;
        using var recipient = IMikelGo.Sealing.EncryptionKeyPair.Generate();
        var point = recipient.PublicKey.Encoded.ToArray();
        double Time(Action a)
        {
            a();
            var t = Stopwatch.GetTimestamp();
            for (var i = 0; i < n; i++)
            {
                a();
            }

            return Stopwatch.GetElapsedTime(t).TotalMicroseconds / n;
        }

        var generate = Time(() => IMikelGo.Sealing.EncryptionKeyPair.Generate().Dispose());
        var import = Time(() =>
        {
            IMikelGo.Sealing.Crypto.P256.TryImportPublicKey(point, out var k, out _);
            k!.Dispose();
        });
        using var eph = IMikelGo.Sealing.EncryptionKeyPair.Generate();
        IMikelGo.Sealing.Crypto.P256.TryImportPublicKey(point, out var peer, out _);
        var derive = Time(() => eph.Ecdh.DeriveRawSecretAgreement(peer!.PublicKey));
        var deriveFull = Time(() => IMikelGo.Sealing.Crypto.P256.TryDeriveSharedSecret(eph.Ecdh, point, out _, out _));
        var seal1 = Time(() => IMikelGo.Sealing.Bundle.Seal("a", "b", [new IMikelGo.Sealing.SequenceRange("b", 1, 2)], new byte[1024], [recipient.PublicKey]));
        peer!.Dispose();
        Console.WriteLine($"sealing splits (µs/op): EncryptionKeyPair.Generate {generate:F0}, P256.TryImportPublicKey {import:F0}, DeriveRawSecretAgreement {derive:F0}, P256.TryDeriveSharedSecret {deriveFull:F0}, Bundle.Seal 1 KB x1 recipient {seal1:F0}");
    }
}
