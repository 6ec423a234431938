using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using IMikelGo.Store.Sqlite.Crypto;

namespace IMikelGo.Store.Sqlite.Vault;

/// <summary>The file layout under the app's root directory.</summary>
internal sealed class VaultPaths(string root, string deviceSecretDirectory)
{
    internal string Root { get; } = Path.GetFullPath(root);

    internal string VaultDirectory => Path.Combine(Root, "vault");

    internal string Database => Path.Combine(VaultDirectory, "vault.db");

    internal string KeyFile => Path.Combine(VaultDirectory, "vault.key");

    internal string NewKeyFile => KeyFile + ".new";

    internal string CounterFile => Path.Combine(VaultDirectory, "pin.counter");

    internal string CacheDirectory => Path.Combine(VaultDirectory, "cache");

    internal string DemoDirectory => Path.Combine(Root, "demo");

    internal string DemoDatabase => Path.Combine(DemoDirectory, "demo.db");

    internal string DemoKeyFile => Path.Combine(DemoDirectory, "demo.key");

    internal string WipeMarker => Path.Combine(Root, "wipe.marker");

    internal string DeviceSecretDirectory { get; } = Path.GetFullPath(deviceSecretDirectory);

    internal IEnumerable<string> DatabaseFiles(string db) =>
        [db, db + "-wal", db + "-shm", db + "-journal"];
}

/// <summary>The wrapped database key and this install's identity (no secret in clear).</summary>
internal sealed record KeyEnvelope(
    int Iterations,
    byte[] Salt,
    byte[] InstallId,
    string DeviceId,
    string Account,
    byte[] WrappedDek,
    byte[] InstallMac)
{
    internal byte[] AssociatedData() => Encoding.UTF8.GetBytes(string.Join('|',
        "imikelgo/dek/v1", Convert.ToBase64String(InstallId), DeviceId, Account, Iterations.ToString(CultureInfo.InvariantCulture)));

    internal static byte[] ComputeInstallMac(ReadOnlySpan<byte> deviceSecret, ReadOnlySpan<byte> installId, string deviceId)
    {
        var key = KeyHierarchy.InstallMacKey(deviceSecret);
        try
        {
            return HMACSHA256.HashData(key, KeyHierarchy.Concat(installId, Encoding.UTF8.GetBytes(deviceId)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    internal byte[] Serialize()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("v", 1);
            w.WriteString("kdf", "pbkdf2-sha256+hkdf(device-secret)");
            w.WriteNumber("iter", Iterations);
            w.WriteBase64String("salt", Salt);
            w.WriteBase64String("installId", InstallId);
            w.WriteString("deviceId", DeviceId);
            w.WriteString("account", Account);
            w.WriteBase64String("wrappedDek", WrappedDek);
            w.WriteBase64String("installMac", InstallMac);
            w.WriteEndObject();
        }

        return ms.ToArray();
    }

    internal static KeyEnvelope Parse(byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            if (r.GetProperty("v").GetInt32() != 1)
            {
                throw new VaultException(VaultErrorKind.CorruptFile, "Unknown key file version.");
            }

            var env = new KeyEnvelope(
                r.GetProperty("iter").GetInt32(),
                r.GetProperty("salt").GetBytesFromBase64(),
                r.GetProperty("installId").GetBytesFromBase64(),
                r.GetProperty("deviceId").GetString() ?? throw new FormatException("deviceId"),
                r.GetProperty("account").GetString() ?? throw new FormatException("account"),
                r.GetProperty("wrappedDek").GetBytesFromBase64(),
                r.GetProperty("installMac").GetBytesFromBase64());
            if (env.Iterations < 1 || env.Salt.Length < 16 || env.InstallId.Length != 16 || env.WrappedDek.Length != KeyHierarchy.NonceSize + KeyHierarchy.TagSize + KeyHierarchy.KeySize)
            {
                throw new VaultException(VaultErrorKind.CorruptFile, "The key file is malformed.");
            }

            return env;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            throw new VaultException(VaultErrorKind.CorruptFile, "The key file is malformed.", ex);
        }
    }
}

/// <summary>
/// The wrong-PIN counter: failures and a generation that grows at every write, MAC-bound with a key derived from
/// the device secret and the install id. Missing, malformed, edited or out-of-range values read as exhausted.
/// </summary>
internal readonly record struct PinCounter(long Generation, int Failures)
{
    internal static byte[] Serialize(PinCounter c, ReadOnlySpan<byte> macKey)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("v", 1);
            w.WriteNumber("gen", c.Generation);
            w.WriteNumber("fail", c.Failures);
            w.WriteBase64String("mac", Mac(c, macKey));
            w.WriteEndObject();
        }

        return ms.ToArray();
    }

    /// <summary>Reads and verifies; null means missing or tampered, which the policy treats as exhausted.</summary>
    internal static PinCounter? TryRead(string path, ReadOnlySpan<byte> macKey)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var r = doc.RootElement;
            if (r.GetProperty("v").GetInt32() != 1)
            {
                return null;
            }

            var c = new PinCounter(r.GetProperty("gen").GetInt64(), r.GetProperty("fail").GetInt32());
            var mac = r.GetProperty("mac").GetBytesFromBase64();
            if (!CryptographicOperations.FixedTimeEquals(mac, Mac(c, macKey)))
            {
                return null;
            }

            return c.Failures is < 0 or > DeviceVaultOptions.MaxPinAttempts || c.Generation < 1 ? null : c;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or KeyNotFoundException or InvalidOperationException or IOException)
        {
            return null;
        }
    }

    private static byte[] Mac(PinCounter c, ReadOnlySpan<byte> macKey) =>
        HMACSHA256.HashData(macKey, Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"imikelgo/pin-counter/v1|{c.Generation}|{c.Failures}")));
}

/// <summary>The non-secret wipe marker: reason, time, completed.</summary>
internal static class WipeMarkerFile
{
    internal static void Write(string path, WipeRecord record)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("reason", record.Reason.ToString());
            w.WriteString("at", record.WipedAt);
            w.WriteBoolean("completed", record.Completed);
            w.WriteEndObject();
        }

        DurableFile.WriteAtomic(path, ms.ToArray());
    }

    internal static WipeRecord? TryRead(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var r = doc.RootElement;
            return new WipeRecord(
                Enum.Parse<WipeReason>(r.GetProperty("reason").GetString()!),
                r.GetProperty("at").GetDateTimeOffset(),
                r.GetProperty("completed").GetBoolean());
        }
        catch (Exception ex) when (ex is JsonException or FormatException or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            // An unreadable marker still means a wipe was under way: finish it.
            return new WipeRecord(WipeReason.Tamper, DateTimeOffset.UnixEpoch, Completed: false);
        }
    }
}

/// <summary>Crash points for the kill tests (set only by the test child process).</summary>
internal static class VaultTestHooks
{
    internal static volatile string? CrashAt;

    internal static void Hit(string point)
    {
        if (CrashAt is { } target && string.Equals(target, point, StringComparison.Ordinal))
        {
            // Abrupt end, like a kill -9: no finally blocks, no flushing.
            System.Diagnostics.Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
