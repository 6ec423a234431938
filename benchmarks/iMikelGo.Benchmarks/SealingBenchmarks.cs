using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using IMikelGo.Sealing;

namespace IMikelGo.Benchmarks;

/// <summary>
/// Bundle.Seal and Bundle.TryOpen (HPKE-wrapped AES-256-GCM content key, one wrap per recipient) for 1 KB,
/// 64 KB and 1 MB payloads and 1, 3 and 10 recipients, beside raw AES-256-GCM of the same bytes (baseline,
/// per size and recipient count). One operation = one bundle.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortInProcessConfig))]
public class SealingBenchmarks : IDisposable
{
    private const string Account = "bench-anna";
    private const string Sender = "device-1";

    private EncryptionKeyPair[] _keys = [];
    private RecipientPublicKey[] _recipients = [];
    private SequenceRange[] _ranges = [];
    private byte[] _payload = [];
    private byte[] _sealed = [];
    private byte[] _ciphertext = [];
    private byte[] _tag = new byte[16];
    private byte[] _nonce = new byte[12];
    private AesGcm _aes = null!;

    [Params(1024, 64 * 1024, 1024 * 1024)]
    public int Bytes { get; set; }

    [Params(1, 3, 10)]
    public int Recipients { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _keys = [.. Enumerable.Range(0, Recipients).Select(i => EncryptionKeyPair.Derive(SHA256.HashData(Encoding.UTF8.GetBytes($"imikelgo-bench/recipient-{i}"))))];
        _recipients = [.. _keys.Select(k => k.PublicKey)];
        _ranges = [new SequenceRange(Sender, 1, 500)];
        _payload = new byte[Bytes];
        new Random(42).NextBytes(_payload);
        _ciphertext = new byte[Bytes];
        _aes = new AesGcm(SHA256.HashData("imikelgo-bench/content-key"u8), 16);
        _sealed = Bundle.Seal(Account, Sender, _ranges, _payload, _recipients).Bytes;
        if (!Bundle.TryOpen(_sealed, Account, _keys[^1], out var opened, out var error) || !opened.Payload.AsSpan().SequenceEqual(_payload))
        {
            throw new InvalidOperationException("bundle does not open: " + error);
        }
    }

    /// <summary>Baseline: raw AES-256-GCM encryption of the same bytes (fresh nonce, into a preallocated buffer).</summary>
    [Benchmark(Baseline = true)]
    public byte RawAesGcm()
    {
        RandomNumberGenerator.Fill(_nonce);
        _aes.Encrypt(_nonce, _payload, _ciphertext, _tag);
        return _tag[0];
    }

    /// <summary>Bundle.Seal: content encryption + one HPKE key wrap per recipient + header.</summary>
    [Benchmark]
    public int Seal() => Bundle.Seal(Account, Sender, _ranges, _payload, _recipients).Bytes.Length;

    /// <summary>Bundle.TryOpen by the last recipient: strict parse + one HPKE unwrap + content decryption.</summary>
    [Benchmark]
    public int Open() =>
        Bundle.TryOpen(_sealed, Account, _keys[^1], out var opened, out _) ? opened.Payload.Length : throw new InvalidOperationException("open failed");

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (var key in _keys)
        {
            key.Dispose();
        }

        _aes?.Dispose();
        GC.SuppressFinalize(this);
    }
}
