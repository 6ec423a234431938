using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace IMikelGo.Sealing;

/// <summary>Whether a device may take part in an account.</summary>
public enum DeviceStatus
{
    /// <summary>Enrolled: may author events and receive bundles.</summary>
    Enrolled,
    /// <summary>Revoked: never a recipient again; its events after <see cref="RosterEntry.RevokedAt"/> are refused; it wipes at next contact.</summary>
    Revoked,
}

/// <summary>One device of an account's roster.</summary>
/// <param name="DeviceId">The device id (the replica id of the device).</param>
/// <param name="SigningKeyFingerprint">SHA-256 hex of the device's signing key SPKI.</param>
/// <param name="EncryptionKeyFingerprint">SHA-256 hex of the device's enrollment HPKE key.</param>
/// <param name="Status">Enrolled or revoked.</param>
/// <param name="RevokedAt">When it was revoked (null while enrolled).</param>
public sealed record RosterEntry(string DeviceId, string SigningKeyFingerprint, string EncryptionKeyFingerprint, DeviceStatus Status,
    DateTimeOffset? RevokedAt);

/// <summary>
/// The school-signed list of an account's devices with a monotonically increasing version. Encoded as canonical JSON
/// (fixed member order, devices sorted by id) and signed by the school root as CMS SignedData (docs/sealing.md).
/// </summary>
public sealed class DeviceRoster
{
    internal const string Kind = "imikelgo.roster";

    /// <summary>Creates a roster; entries are validated and sorted by device id.</summary>
    /// <param name="schoolId">The school.</param>
    /// <param name="accountId">The account.</param>
    /// <param name="version">The roster version (0 = nothing published yet).</param>
    /// <param name="issuedAt">When the school issued it.</param>
    /// <param name="entries">The devices.</param>
    public DeviceRoster(string schoolId, string accountId, ulong version, DateTimeOffset issuedAt, IEnumerable<RosterEntry> entries)
    {
        Identifiers.Require(schoolId, nameof(schoolId));
        Identifiers.Require(accountId, nameof(accountId));
        ArgumentNullException.ThrowIfNull(entries);
        var list = entries.OrderBy(e => e.DeviceId, StringComparer.Ordinal).ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var e = list[i];
            Identifiers.Require(e.DeviceId, nameof(entries));
            if (!IsHex64(e.SigningKeyFingerprint) || !IsHex64(e.EncryptionKeyFingerprint))
            {
                throw new ArgumentException($"Device '{e.DeviceId}': fingerprints must be 64 lowercase hex digits.", nameof(entries));
            }

            if ((e.Status == DeviceStatus.Revoked) != e.RevokedAt.HasValue)
            {
                throw new ArgumentException($"Device '{e.DeviceId}': RevokedAt must be set exactly when revoked.", nameof(entries));
            }

            if (i > 0 && string.Equals(list[i - 1].DeviceId, e.DeviceId, StringComparison.Ordinal))
            {
                throw new ArgumentException($"Device '{e.DeviceId}' appears twice.", nameof(entries));
            }
        }

        SchoolId = schoolId;
        AccountId = accountId;
        Version = version;
        IssuedAt = issuedAt.ToUniversalTime();
        Entries = list;
    }

    /// <summary>The school.</summary>
    public string SchoolId { get; }

    /// <summary>The account.</summary>
    public string AccountId { get; }

    /// <summary>The version; a verifier never accepts a lower one than it has seen.</summary>
    public ulong Version { get; }

    /// <summary>When it was issued.</summary>
    public DateTimeOffset IssuedAt { get; }

    /// <summary>The devices, sorted by id.</summary>
    public IReadOnlyList<RosterEntry> Entries { get; }

    /// <summary>The entry of a device, or null.</summary>
    /// <param name="deviceId">The device.</param>
    /// <returns>The entry.</returns>
    public RosterEntry? Find(string deviceId) => Entries.FirstOrDefault(e => string.Equals(e.DeviceId, deviceId, StringComparison.Ordinal));

    /// <summary>True when the device is listed and enrolled.</summary>
    /// <param name="deviceId">The device.</param>
    /// <returns>Whether it is enrolled.</returns>
    public bool IsEnrolled(string deviceId) => Find(deviceId)?.Status == DeviceStatus.Enrolled;

    /// <summary>The next version with a device added (or re-keyed while enrolled).</summary>
    /// <param name="entry">The enrolled device.</param>
    /// <param name="issuedAt">Issue time.</param>
    /// <returns>The new roster.</returns>
    public DeviceRoster WithEnrolled(RosterEntry entry, DateTimeOffset issuedAt)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (Find(entry.DeviceId)?.Status == DeviceStatus.Revoked)
        {
            throw new InvalidOperationException($"Device '{entry.DeviceId}' was revoked; a revoked device id is never enrolled again.");
        }

        return new DeviceRoster(SchoolId, AccountId, checked(Version + 1), issuedAt,
            Entries.Where(e => !string.Equals(e.DeviceId, entry.DeviceId, StringComparison.Ordinal)).Append(entry with { Status = DeviceStatus.Enrolled, RevokedAt = null }));
    }

    /// <summary>The next version with a device revoked.</summary>
    /// <param name="deviceId">The device.</param>
    /// <param name="revokedAt">Revocation time (also the issue time).</param>
    /// <returns>The new roster.</returns>
    public DeviceRoster WithRevoked(string deviceId, DateTimeOffset revokedAt)
    {
        var entry = Find(deviceId) ?? throw new InvalidOperationException($"Device '{deviceId}' is not in the roster.");
        return new DeviceRoster(SchoolId, AccountId, checked(Version + 1), revokedAt,
            Entries.Select(e => ReferenceEquals(e, entry) ? e with { Status = DeviceStatus.Revoked, RevokedAt = revokedAt.ToUniversalTime() } : e));
    }

    /// <summary>
    /// Recipients for a new bundle: the given current keys of <em>enrolled</em> devices only. Keys of revoked or unknown
    /// devices are dropped. Keys other than the enrollment key must come from a verified, signed key-rotation event.
    /// </summary>
    /// <param name="currentKeys">Each device's current HPKE key, by device id.</param>
    /// <returns>The recipients.</returns>
    public IReadOnlyList<RecipientPublicKey> SelectRecipients(IReadOnlyDictionary<string, RecipientPublicKey> currentKeys)
    {
        ArgumentNullException.ThrowIfNull(currentKeys);
        return Entries.Where(e => e.Status == DeviceStatus.Enrolled && currentKeys.ContainsKey(e.DeviceId))
            .Select(e => currentKeys[e.DeviceId]).ToList();
    }

    /// <summary>The canonical JSON encoding (what the school signs).</summary>
    /// <returns>UTF-8 JSON.</returns>
    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("kind", Kind);
            w.WriteNumber("format", 1);
            w.WriteString("school", SchoolId);
            w.WriteString("account", AccountId);
            w.WriteString("version", Version.ToString(CultureInfo.InvariantCulture));
            w.WriteString("issuedAt", FormatTime(IssuedAt));
            w.WriteStartArray("devices");
            foreach (var e in Entries)
            {
                w.WriteStartObject();
                w.WriteString("device", e.DeviceId);
                w.WriteString("signingKey", e.SigningKeyFingerprint);
                w.WriteString("encryptionKey", e.EncryptionKeyFingerprint);
                w.WriteString("status", e.Status == DeviceStatus.Enrolled ? "enrolled" : "revoked");
                if (e.RevokedAt is { } at)
                {
                    w.WriteString("revokedAt", FormatTime(at));
                }
                else
                {
                    w.WriteNull("revokedAt");
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return ms.ToArray();
    }

    /// <summary>Parses the canonical JSON strictly (exact members, canonical re-encoding must match byte for byte).</summary>
    /// <param name="json">UTF-8 JSON.</param>
    /// <param name="roster">The roster.</param>
    /// <param name="error">What is wrong.</param>
    /// <returns>True when valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> json, [NotNullWhen(true)] out DeviceRoster? roster, out SealingError error)
    {
        roster = null;
        if (json.Length > 1024 * 1024)
        {
            error = new SealingError(SealingErrorCode.LimitExceeded, "roster: larger than 1 MiB.");
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(json.ToArray());
            var root = doc.RootElement;
            if (root.GetProperty("kind").GetString() != Kind || root.GetProperty("format").GetInt32() != 1)
            {
                error = new SealingError(SealingErrorCode.Unsupported, "roster: kind/format is not imikelgo.roster format 1.");
                return false;
            }

            var entries = new List<RosterEntry>();
            foreach (var d in root.GetProperty("devices").EnumerateArray())
            {
                var status = d.GetProperty("status").GetString() switch
                {
                    "enrolled" => DeviceStatus.Enrolled,
                    "revoked" => DeviceStatus.Revoked,
                    var other => throw new FormatException($"unknown device status '{other}'"),
                };
                var revokedAt = d.GetProperty("revokedAt");
                entries.Add(new RosterEntry(d.GetProperty("device").GetString()!, d.GetProperty("signingKey").GetString()!,
                    d.GetProperty("encryptionKey").GetString()!, status,
                    revokedAt.ValueKind == JsonValueKind.Null ? null : ParseTime(revokedAt.GetString()!)));
            }

            var candidate = new DeviceRoster(root.GetProperty("school").GetString()!, root.GetProperty("account").GetString()!,
                ulong.Parse(root.GetProperty("version").GetString()!, NumberStyles.None, CultureInfo.InvariantCulture),
                ParseTime(root.GetProperty("issuedAt").GetString()!), entries);
            if (!candidate.ToBytes().AsSpan().SequenceEqual(json))
            {
                error = SealingError.Malformed("roster: not in canonical form (member order, unknown members, whitespace or device order).");
                return false;
            }

            roster = candidate;
            error = SealingError.None;
            return true;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException
                                      or ArgumentException or OverflowException)
        {
            error = SealingError.Malformed("roster: " + e.Message);
            return false;
        }
    }

    internal string Digest() => Convert.ToHexStringLower(SHA256.HashData(ToBytes()));

    private static bool IsHex64(string? s) => s is { Length: 64 } && s.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    private static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string s)
        => DateTimeOffset.ParseExact(s, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}

/// <summary>Verifies school-signed decisions (CMS SignedData) against the pinned school root.</summary>
public static class SchoolDecisions
{
    private static readonly HashSet<string> AllowedDigests = new(StringComparer.Ordinal)
    {
        "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3",
    };

    /// <summary>Verifies a SignedData with attached content and returns the content.</summary>
    /// <param name="signedData">DER CMS ContentInfo.</param>
    /// <param name="pinnedRoot">The pinned school root.</param>
    /// <param name="at">Verification time for the signer certificate.</param>
    /// <param name="content">The signed content.</param>
    /// <param name="error">Why it was refused.</param>
    /// <returns>True when signed by the school.</returns>
    public static bool TryVerify(ReadOnlySpan<byte> signedData, X509Certificate2 pinnedRoot, DateTimeOffset at,
        [NotNullWhen(true)] out byte[]? content, out SealingError error)
        => TryVerifyCore(signedData, null, pinnedRoot, at, out content, out error);

    /// <summary>Verifies a detached SignedData over <paramref name="content"/> (e.g. made by <c>openssl cms -sign -binary</c>).</summary>
    /// <param name="signature">DER CMS ContentInfo without content.</param>
    /// <param name="content">The signed bytes.</param>
    /// <param name="pinnedRoot">The pinned school root.</param>
    /// <param name="at">Verification time for the signer certificate.</param>
    /// <param name="error">Why it was refused.</param>
    /// <returns>True when signed by the school.</returns>
    public static bool TryVerifyDetached(ReadOnlySpan<byte> signature, ReadOnlySpan<byte> content, X509Certificate2 pinnedRoot,
        DateTimeOffset at, out SealingError error)
        => TryVerifyCore(signature, content.ToArray(), pinnedRoot, at, out _, out error);

    private static bool TryVerifyCore(ReadOnlySpan<byte> signedData, byte[]? detachedContent, X509Certificate2 pinnedRoot, DateTimeOffset at,
        out byte[]? content, out SealingError error)
    {
        ArgumentNullException.ThrowIfNull(pinnedRoot);
        content = null;
        if (signedData.Length > 4 * 1024 * 1024)
        {
            error = new SealingError(SealingErrorCode.LimitExceeded, "decision: signed data larger than 4 MiB.");
            return false;
        }

        var cms = detachedContent is null ? new SignedCms() : new SignedCms(new ContentInfo(detachedContent), detached: true);
        try
        {
            cms.Decode(signedData);
        }
        catch (CryptographicException e)
        {
            error = SealingError.Malformed("decision: not a DER CMS SignedData: " + e.Message);
            return false;
        }

        if (detachedContent is null && cms.Detached)
        {
            error = SealingError.Malformed("decision: the signature is detached but no content was given.");
            return false;
        }

        if (cms.ContentInfo.ContentType.Value != "1.2.840.113549.1.7.1")
        {
            error = new SealingError(SealingErrorCode.Unsupported, $"decision: content type {cms.ContentInfo.ContentType.Value} is not id-data.");
            return false;
        }

        if (cms.SignerInfos.Count != 1)
        {
            error = SealingError.Malformed($"decision: expected exactly one signer, found {cms.SignerInfos.Count}.");
            return false;
        }

        var signer = cms.SignerInfos[0];
        if (signer.DigestAlgorithm.Value is not { } digest || !AllowedDigests.Contains(digest))
        {
            error = new SealingError(SealingErrorCode.Unsupported, $"decision: digest algorithm {signer.DigestAlgorithm.Value} is not SHA-2.");
            return false;
        }

        var signerCert = signer.Certificate ?? pinnedRoot;
        try
        {
            signer.CheckSignature([signerCert], verifySignatureOnly: true);
        }
        catch (CryptographicException)
        {
            error = new SealingError(SealingErrorCode.UntrustedSignature, "decision: the signature does not verify (content altered or wrong signer).");
            return false;
        }

        if (!CertificateFields.TryVerifyChain(signerCert, pinnedRoot, at, out error))
        {
            error = error with { Message = "decision: signer certificate: " + error.Message };
            return false;
        }

        content = cms.ContentInfo.Content;
        return true;
    }
}

/// <summary>Remembers the highest roster version (and its digest) accepted per account, to refuse rollbacks.</summary>
public interface IRosterVersionStore
{
    /// <summary>Gets the highest accepted version.</summary>
    /// <param name="accountId">The account.</param>
    /// <param name="version">The version.</param>
    /// <param name="digest">SHA-256 hex of that roster's canonical bytes.</param>
    /// <returns>True when a roster was accepted before.</returns>
    bool TryGet(string accountId, out ulong version, [NotNullWhen(true)] out string? digest);

    /// <summary>Stores a newly accepted version (durably, before the roster is acted upon).</summary>
    /// <param name="accountId">The account.</param>
    /// <param name="version">The version.</param>
    /// <param name="digest">Its digest.</param>
    void Set(string accountId, ulong version, string digest);
}

/// <summary>In-memory <see cref="IRosterVersionStore"/>.</summary>
public sealed class InMemoryRosterVersionStore : IRosterVersionStore
{
    private readonly Dictionary<string, (ulong, string)> _versions = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <inheritdoc />
    public bool TryGet(string accountId, out ulong version, [NotNullWhen(true)] out string? digest)
    {
        lock (_gate)
        {
            var found = _versions.TryGetValue(accountId, out var v);
            (version, digest) = found ? v : (0UL, null);
            return found;
        }
    }

    /// <inheritdoc />
    public void Set(string accountId, ulong version, string digest)
    {
        lock (_gate)
        {
            _versions[accountId] = (version, digest);
        }
    }
}

/// <summary>Device-side roster acceptance: CMS signature by the pinned school, expected account and school, no rollback.</summary>
/// <param name="pinnedRoot">The pinned school root.</param>
/// <param name="time">The clock.</param>
/// <param name="versions">Highest versions seen (in-memory when null).</param>
public sealed class RosterVerifier(X509Certificate2 pinnedRoot, TimeProvider time, IRosterVersionStore? versions = null)
{
    private readonly IRosterVersionStore _versions = versions ?? new InMemoryRosterVersionStore();
    private readonly Lock _gate = new();

    /// <summary>Verifies and accepts a signed roster for <paramref name="expectedAccountId"/>.</summary>
    /// <param name="signedRoster">The CMS SignedData with the roster JSON attached.</param>
    /// <param name="expectedAccountId">The account this replica belongs to.</param>
    /// <param name="roster">The accepted roster.</param>
    /// <param name="error">Why it was refused (UntrustedSignature, Rollback, WrongAccount, Malformed...).</param>
    /// <returns>True when accepted (a re-delivery of the current version is accepted too).</returns>
    public bool TryAccept(ReadOnlySpan<byte> signedRoster, string expectedAccountId, [NotNullWhen(true)] out DeviceRoster? roster, out SealingError error)
    {
        roster = null;
        if (!SchoolDecisions.TryVerify(signedRoster, pinnedRoot, time.GetUtcNow(), out var content, out error))
        {
            return false;
        }

        if (!DeviceRoster.TryParse(content, out var parsed, out error))
        {
            return false;
        }

        if (!string.Equals(parsed.AccountId, expectedAccountId, StringComparison.Ordinal))
        {
            error = new SealingError(SealingErrorCode.WrongAccount, $"roster is for account '{parsed.AccountId}', expected '{expectedAccountId}'.");
            return false;
        }

        var rootSchool = CertificateFields.SanUris(pinnedRoot).FirstOrDefault(u => u.StartsWith("urn:imikelgo:school:", StringComparison.Ordinal));
        if (rootSchool is not null && !string.Equals(rootSchool, IMikelGoOids.SchoolUri(parsed.SchoolId), StringComparison.Ordinal))
        {
            error = new SealingError(SealingErrorCode.UntrustedSignature, $"roster names school '{parsed.SchoolId}', not the pinned root's school.");
            return false;
        }

        var digest = parsed.Digest();
        lock (_gate)
        {
            if (_versions.TryGet(expectedAccountId, out var seen, out var seenDigest))
            {
                if (parsed.Version < seen)
                {
                    error = new SealingError(SealingErrorCode.Rollback, $"roster version {parsed.Version} is older than version {seen} already accepted (rollback).");
                    return false;
                }

                if (parsed.Version == seen && !string.Equals(seenDigest, digest, StringComparison.Ordinal))
                {
                    error = new SealingError(SealingErrorCode.Rollback, $"roster version {parsed.Version} differs from the version {seen} already accepted.");
                    return false;
                }
            }

            _versions.Set(expectedAccountId, parsed.Version, digest);
        }

        roster = parsed;
        return true;
    }
}
