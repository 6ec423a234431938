using System.Security.Cryptography;
using IMikelGo.Engine;
using IMikelGo.Engine.Relay;

namespace IMikelGo.Relay.Client;

/// <summary>Signs relay requests for one caller (a device or the school), per <see cref="RequestSignature"/>.</summary>
public interface IRelayRequestSigner
{
    /// <summary>The caller id sent in <see cref="RelayProtocol.CallerHeader"/>: the replica id of the signing key.</summary>
    string CallerId { get; }

    /// <summary>Signs one request; returns the base64 P1363 signature.</summary>
    string Sign(string method, string pathAndQuery, long timestampMs, string nonce, ReadOnlySpan<byte> body);
}

/// <summary>Signs with an ECDSA P-256 key; the caller id is the replica id derived from its public key.</summary>
public sealed class EcdsaRequestSigner : IRelayRequestSigner, IDisposable
{
    private readonly ECDsa _key;
    private readonly bool _owns;

    /// <summary>
    /// Signs with <paramref name="key"/>; the key is disposed with the signer only when <paramref name="ownsKey"/>.
    /// The caller id is the key's replica id unless <paramref name="callerId"/> names the id the relay registered
    /// (e.g. the school's configured id).
    /// </summary>
    public EcdsaRequestSigner(ECDsa key, bool ownsKey = false, string? callerId = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.KeySize != 256)
        {
            throw new ArgumentException("relay request keys are P-256", nameof(key));
        }

        _key = key;
        _owns = ownsKey;
        PublicKey = key.ExportSubjectPublicKeyInfo();
        CallerId = callerId ?? ReplicaId.FromPublicKey(PublicKey).Value;
    }

    /// <inheritdoc />
    public string CallerId { get; }

    /// <summary>The signing public key (SubjectPublicKeyInfo), as registered with the relay.</summary>
    public byte[] PublicKey { get; }

    /// <summary>A signer owning a key imported from PKCS#8 (e.g. <c>ReplicaKey.ExportPkcs8()</c>).</summary>
    public static EcdsaRequestSigner FromPkcs8(ReadOnlySpan<byte> pkcs8)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportPkcs8PrivateKey(pkcs8, out _);
            return new EcdsaRequestSigner(key, ownsKey: true);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public string Sign(string method, string pathAndQuery, long timestampMs, string nonce, ReadOnlySpan<byte> body) =>
        RequestSignature.Sign(_key, method, pathAndQuery, timestampMs, nonce, body);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_owns)
        {
            _key.Dispose();
        }
    }
}

/// <summary>
/// Adds the caller, timestamp, nonce and signature headers to every attempt. It sits inside the retry handler, so
/// each retry carries a fresh nonce and timestamp and is never refused as a replay.
/// </summary>
internal sealed class RelaySigningHandler(IRelayRequestSigner signer, TimeProvider time) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var timestamp = time.GetUtcNow().ToUnixTimeMilliseconds();
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var pathAndQuery = request.RequestUri?.IsAbsoluteUri == true ? request.RequestUri.PathAndQuery : request.RequestUri?.OriginalString ?? "/";
        var signature = signer.Sign(request.Method.Method, pathAndQuery, timestamp, nonce, body);
        var headers = request.Headers;
        foreach (var name in (string[])[RelayProtocol.CallerHeader, RelayProtocol.TimestampHeader, RelayProtocol.NonceHeader, RelayProtocol.SignatureHeader])
        {
            headers.Remove(name);
        }

        headers.TryAddWithoutValidation(RelayProtocol.CallerHeader, signer.CallerId);
        headers.TryAddWithoutValidation(RelayProtocol.TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        headers.TryAddWithoutValidation(RelayProtocol.NonceHeader, nonce);
        headers.TryAddWithoutValidation(RelayProtocol.SignatureHeader, signature);
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }
}
