using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;

namespace IMikelGo.Updates;

/// <summary>One package file of a release.</summary>
/// <param name="Name">Relative path with '/' separators (validated: no '..', no absolute path, no backslash, NUL or control character).</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file.</param>
/// <param name="Size">Exact size in bytes.</param>
public sealed record PackageFile(string Name, string Sha256, long Size);

/// <summary>
/// A signed release manifest: the only thing the updater trusts about a release. Encoded as canonical JSON (fixed member
/// order, no whitespace, files sorted by name; see docs/updates.md) and signed as a detached CMS SignedData by the vendor key.
/// </summary>
public sealed record ReleaseManifest
{
    /// <summary>The <c>kind</c> member of a manifest.</summary>
    public const string Kind = "imikelgo.update.manifest";

    /// <summary>Largest manifest accepted (bytes).</summary>
    public const int MaxBytes = 1024 * 1024;

    private const int MaxFiles = 10_000;
    private const long MaxFileSize = 1L << 40;

    /// <summary>Gets the release version.</summary>
    public required SemanticVersion Version { get; init; }

    /// <summary>Gets the channel (e.g. <c>stable</c>, <c>beta</c>).</summary>
    public required string Channel { get; init; }

    /// <summary>Gets the manifest sequence: strictly increasing per channel, across all manifests the vendor ever signs.</summary>
    public required long Sequence { get; init; }

    /// <summary>Gets the minimum supported version: devices below it must update without deferral.</summary>
    public required SemanticVersion MinimumVersion { get; init; }

    /// <summary>Gets a value indicating whether this is a security update.</summary>
    public bool Security { get; init; }

    /// <summary>Gets how long after <see cref="IssuedAt"/> a security update may still be postponed.</summary>
    public TimeSpan GracePeriod { get; init; }

    /// <summary>Gets when the manifest was signed (UTC, whole seconds).</summary>
    public required DateTimeOffset IssuedAt { get; init; }

    /// <summary>Gets when the manifest stops being trusted (freeze protection).</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary>Gets the package files, sorted by name (ordinal).</summary>
    public required IReadOnlyList<PackageFile> Files { get; init; }

    /// <summary>Encodes the manifest canonically; throws <see cref="ArgumentException"/> when a field is invalid.</summary>
    /// <returns>UTF-8 JSON bytes, one line, no trailing newline.</returns>
    public byte[] ToBytes()
    {
        var problem = Validate();
        if (problem is not null)
        {
            throw new ArgumentException("Invalid manifest: " + problem);
        }

        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("kind", Kind);
            w.WriteNumber("format", 1);
            w.WriteString("channel", Channel);
            w.WriteString("version", Version.Text);
            w.WriteNumber("sequence", Sequence);
            w.WriteString("minimumVersion", MinimumVersion.Text);
            w.WriteBoolean("security", Security);
            w.WriteNumber("graceHours", (long)GracePeriod.TotalHours);
            w.WriteString("issuedAt", Time.Format(IssuedAt));
            w.WriteString("expiresAt", Time.Format(ExpiresAt));
            w.WriteStartArray("files");
            foreach (var f in Files)
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                w.WriteString("sha256", f.Sha256);
                w.WriteNumber("size", f.Size);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return ms.ToArray();
    }

    /// <summary>Parses a canonical manifest; anything else (unknown or reordered members, whitespace, bad names) is refused.</summary>
    /// <param name="bytes">The manifest bytes.</param>
    /// <param name="manifest">The manifest.</param>
    /// <param name="error">Why it was refused.</param>
    /// <returns>True when valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out ReleaseManifest? manifest, out UpdateError error)
    {
        manifest = null;
        if (bytes.Length is 0 or > MaxBytes)
        {
            error = new UpdateError(UpdateErrorCode.Malformed, $"manifest: size {bytes.Length} is outside 1..{MaxBytes} bytes.");
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(bytes.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
            var r = doc.RootElement;
            if (r.GetProperty("kind").GetString() != Kind || r.GetProperty("format").GetInt32() != 1)
            {
                error = new UpdateError(UpdateErrorCode.Malformed, "manifest: not an imikelgo.update.manifest format 1.");
                return false;
            }

            var files = new List<PackageFile>();
            foreach (var f in r.GetProperty("files").EnumerateArray())
            {
                files.Add(new PackageFile(f.GetProperty("name").GetString()!, f.GetProperty("sha256").GetString()!, f.GetProperty("size").GetInt64()));
            }

            if (!SemanticVersion.TryParse(r.GetProperty("version").GetString(), out var version)
                || !SemanticVersion.TryParse(r.GetProperty("minimumVersion").GetString(), out var minimum))
            {
                error = new UpdateError(UpdateErrorCode.Malformed, "manifest: version or minimumVersion is not SemVer 2.0.0.");
                return false;
            }

            var m = new ReleaseManifest
            {
                Channel = r.GetProperty("channel").GetString()!,
                Version = version,
                Sequence = r.GetProperty("sequence").GetInt64(),
                MinimumVersion = minimum,
                Security = r.GetProperty("security").GetBoolean(),
                GracePeriod = TimeSpan.FromHours(r.GetProperty("graceHours").GetInt64()),
                IssuedAt = Time.Parse(r.GetProperty("issuedAt").GetString()!),
                ExpiresAt = Time.Parse(r.GetProperty("expiresAt").GetString()!),
                Files = files,
            };
            var problem = m.Validate();
            if (problem is not null)
            {
                error = new UpdateError(UpdateErrorCode.Malformed, "manifest: " + problem);
                return false;
            }

            if (!bytes.SequenceEqual(m.ToBytes()))
            {
                error = new UpdateError(UpdateErrorCode.Malformed, "manifest: not canonical (member order, unknown members, whitespace or number form).");
                return false;
            }

            manifest = m;
            error = UpdateError.None;
            return true;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException
                                      or OverflowException or NullReferenceException)
        {
            error = new UpdateError(UpdateErrorCode.Malformed, "manifest: " + e.Message);
            return false;
        }
    }

    /// <summary>Checks a package file name: 1..200 characters, '/'-separated segments of <c>[A-Za-z0-9._+-]</c>, no segment
    /// empty, '.', '..' or starting with '.', not absolute, no backslash, NUL, ':' or control characters.</summary>
    /// <param name="name">The name.</param>
    /// <returns>True when safe to use as a path under a version folder.</returns>
    public static bool IsSafeFileName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 200)
        {
            return false;
        }

        foreach (var segment in name.Split('/'))
        {
            if (segment.Length == 0 || segment[0] == '.' || segment.Length > 100
                || !segment.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+'))
            {
                return false;
            }
        }

        return true;
    }

    private string? Validate()
    {
        if (Channel is null || Channel.Length is 0 or > 32 || !Channel.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
        {
            return "channel must be 1..32 characters of [a-z0-9-].";
        }

        if (Version is null || MinimumVersion is null || MinimumVersion > Version)
        {
            return "minimumVersion must be at most version.";
        }

        if (Sequence is < 1 or > (1L << 53))
        {
            return "sequence must be between 1 and 2^53.";
        }

        if (GracePeriod < TimeSpan.Zero || GracePeriod > TimeSpan.FromDays(365) || GracePeriod.Ticks % TimeSpan.TicksPerHour != 0)
        {
            return "grace period must be whole hours between 0 and 365 days.";
        }

        if (IssuedAt.Ticks % TimeSpan.TicksPerSecond != 0 || ExpiresAt.Ticks % TimeSpan.TicksPerSecond != 0 || ExpiresAt <= IssuedAt)
        {
            return "issuedAt/expiresAt must be whole seconds and expiresAt after issuedAt.";
        }

        if (Files is null || Files.Count is 0 or > MaxFiles)
        {
            return $"1..{MaxFiles} files required.";
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < Files.Count; i++)
        {
            var f = Files[i];
            if (!IsSafeFileName(f.Name))
            {
                return $"unsafe file name '{Sanitize(f.Name)}'.";
            }

            if (!seen.Add(f.Name) || (i > 0 && string.CompareOrdinal(Files[i - 1].Name, f.Name) >= 0))
            {
                return "file names must be unique (case-insensitively) and sorted.";
            }

            if (f.Sha256 is not { Length: 64 } || !f.Sha256.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
            {
                return $"file '{f.Name}' sha256 must be 64 lower-case hex digits.";
            }

            if (f.Size is < 0 or > MaxFileSize)
            {
                return $"file '{f.Name}' size out of range.";
            }
        }

        return null;
    }

    internal static string Sanitize(string? s)
        => s is null ? "(null)" : new string([.. s.Take(80).Select(c => char.IsControl(c) ? '?' : c)]);
}

internal static class Time
{
    private const string Layout = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    public static string Format(DateTimeOffset t) => t.UtcDateTime.ToString(Layout, CultureInfo.InvariantCulture);

    public static DateTimeOffset Parse(string s)
        => new(DateTime.ParseExact(s, Layout, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal), TimeSpan.Zero);
}
