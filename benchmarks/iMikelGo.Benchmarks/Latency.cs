using System.Diagnostics;
using System.Globalization;

namespace IMikelGo.Benchmarks;

/// <summary>
/// p50/p95/p99 of one durable append (event + outbox entry, one transaction) through the vault and through plain
/// SQLite, interleaved so both see the same disk and load (run with the argument <c>latency</c>).
/// </summary>
internal static class Latency
{
    public static int Run(int count = 1_000)
    {
        var root = VaultSupport.NewRoot("latency");
        try
        {
            using var vault = VaultSupport.Create(Path.Combine(root, "vault"), iterations: 1);
            vault.EnrollAsync(VaultSupport.Account, VaultSupport.Pin, CancellationToken.None).GetAwaiter().GetResult();
            var store = vault.Store;
            Directory.CreateDirectory(Path.Combine(root, "plain"));
            using var plain = VaultSupport.OpenPlain(Path.Combine(root, "plain", "plain.db"));
            var vaultTimes = new List<double>(count);
            var plainTimes = new List<double>(count);
            for (var seq = 1; seq <= count + 50; seq++)
            {
                var t0 = Stopwatch.GetTimestamp();
                store.AppendAsync(VaultSupport.Record(seq), CancellationToken.None).GetAwaiter().GetResult();
                var t1 = Stopwatch.GetTimestamp();
                VaultSupport.InsertPlain(plain, [VaultSupport.Record(seq)]);
                var t2 = Stopwatch.GetTimestamp();
                if (seq > 50)
                {
                    vaultTimes.Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
                    plainTimes.Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
                }
            }

            Console.WriteLine(Describe("vault append one (event + outbox)", vaultTimes));
            Console.WriteLine(Describe("plain SQLite insert one (same rows)", plainTimes));
            return 0;
        }
        finally
        {
            VaultSupport.DeleteRoot(root);
        }
    }

    /// <summary>"what: n, p50, p95, p99, max" of <paramref name="times"/> (milliseconds; sorted in place).</summary>
    public static string Describe(string what, List<double> times)
    {
        times.Sort();
        return string.Create(CultureInfo.InvariantCulture,
            $"{what}: n={times.Count} p50 {Percentile(times, 0.50):F3} ms, p95 {Percentile(times, 0.95):F3} ms, p99 {Percentile(times, 0.99):F3} ms, max {times[^1]:F3} ms");
    }

    /// <summary>The <paramref name="p"/> quantile (nearest rank) of <paramref name="times"/>, sorted in place.</summary>
    public static double Percentile(List<double> times, double p)
    {
        times.Sort();
        return times[Math.Min(times.Count - 1, (int)(p * times.Count))];
    }
}
