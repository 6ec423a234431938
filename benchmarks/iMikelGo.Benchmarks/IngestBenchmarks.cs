using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using IMikelGo.Engine.Chains;
using IMikelGo.Engine.Signing;

namespace IMikelGo.Benchmarks;

/// <summary>
/// Verify + merge + project 100,000 events from 4 replicas (school + 3 devices, a checkpoint every 100–500 events).
/// Every figure is per event (OperationsPerInvoke); multiply by 100,000 for the whole log.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortInProcessConfig))]
public class IngestBenchmarks : IDisposable
{
    private const int VerifySample = 1_000;
    private const int ParseSample = 20_000;

    private EngineData _data = null!;
    private Ledger _ingested = null!;
    private ECDsa _signer = null!;
    private ECDsa _verifier = null!;
    private byte[][] _signatures = null!;

    [GlobalSetup]
    public void Setup()
    {
        _data = EngineData.Shared;
        _ingested = new Ledger();
        var report = _ingested.Ingest(_data.Events);
        if (report.Applied.Length != EngineData.EventCount || _ingested.Calendar(_data.Account).Digest() != _data.Digest)
        {
            throw new InvalidOperationException($"fresh ingest applied {report.Applied.Length} events or its digest differs from the generator's");
        }

        _signer = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = SHA256.HashData(Encoding.UTF8.GetBytes("imikelgo-bench/per-event")) });
        _verifier = ECDsa.Create();
        _verifier.ImportSubjectPublicKeyInfo(_signer.ExportSubjectPublicKeyInfo(), out _);
        _signatures = [.. _data.Bodies.Take(VerifySample).Select(b => _signer.SignData(b, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))];
        Console.WriteLine($"// data: {_data.Events.Count} events, {_data.Checkpoints} checkpoints, {_data.TotalBodyBytes / _data.Events.Count} body bytes/event, digest {_data.Digest[..12]}");
    }

    /// <summary>Baseline: SHA-256 over every event body (what hash-chain verification cannot avoid).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = EngineData.EventCount)]
    public int Sha256OfBodies()
    {
        Span<byte> hash = stackalloc byte[32];
        var x = 0;
        foreach (var body in _data.Bodies)
        {
            SHA256.HashData(body, hash);
            x ^= hash[0];
        }

        return x;
    }

    /// <summary>Ledger.Ingest of SignedEvent objects on a fresh ledger, then Calendar.Digest().</summary>
    [Benchmark(OperationsPerInvoke = EngineData.EventCount)]
    public string IngestAndDigest()
    {
        var ledger = new Ledger();
        ledger.Ingest(_data.Events);
        return ledger.Calendar(_data.Account).Digest();
    }

    /// <summary>Ledger.IngestLines from log-line text on a fresh ledger (parse + verify + merge), then Calendar.Digest().</summary>
    [Benchmark(OperationsPerInvoke = EngineData.EventCount)]
    public string IngestLinesAndDigest()
    {
        var ledger = new Ledger();
        ledger.IngestLines(_data.Lines);
        return ledger.Calendar(_data.Account).Digest();
    }

    /// <summary>SignedEvent.ParseLine alone (strict canonical parse + re-encode + hash) of the first 20,000 lines, per line.</summary>
    [Benchmark(OperationsPerInvoke = ParseSample)]
    public int ParseLinesOnly()
    {
        var x = 0;
        for (var i = 0; i < ParseSample; i++)
        {
            x ^= (int)SignedEvent.ParseLine(_data.LineBytes[i]).Event.Seq;
        }

        return x;
    }

    /// <summary>Calendar.Digest() alone on a ledger that already holds the 100,000 events (per event of the log).</summary>
    [Benchmark(OperationsPerInvoke = EngineData.EventCount)]
    public string DigestOnly() => _ingested.Calendar(_data.Account).Digest();

    /// <summary>One ECDSA P-256 verify per event (the design it avoids): 1,000 verifies of real bodies, per verify.</summary>
    [Benchmark(OperationsPerInvoke = VerifySample)]
    public int EcdsaVerifyPerEvent()
    {
        var ok = 0;
        for (var i = 0; i < VerifySample; i++)
        {
            ok += SignatureVerifier.Verify(_verifier, _data.Bodies[i], _signatures[i]) ? 1 : 0;
        }

        return ok == VerifySample ? ok : throw new InvalidOperationException("verify failed");
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _signer?.Dispose();
        _verifier?.Dispose();
        GC.SuppressFinalize(this);
    }
}
