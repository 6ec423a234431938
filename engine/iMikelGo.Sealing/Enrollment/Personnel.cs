using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace IMikelGo.Sealing;

/// <summary>
/// A slow salted password hash: PBKDF2-HMAC-SHA256, 16-byte random salt, 32-byte output. Text form:
/// <c>pbkdf2-sha256$&lt;iterations&gt;$&lt;base64 salt&gt;$&lt;base64 hash&gt;</c>. The password itself is never stored.
/// </summary>
public sealed class PasswordHash
{
    private const int SaltLength = 16;
    private const int HashLength = 32;
    private readonly byte[] _salt;
    private readonly byte[] _hash;

    private PasswordHash(int iterations, byte[] salt, byte[] hash)
    {
        Iterations = iterations;
        _salt = salt;
        _hash = hash;
    }

    /// <summary>The PBKDF2 iteration count.</summary>
    public int Iterations { get; }

    /// <summary>Hashes a password with a fresh salt.</summary>
    /// <param name="password">The school-internal password.</param>
    /// <param name="iterations">PBKDF2 iterations (see <see cref="SealingOptions.Pbkdf2Iterations"/>).</param>
    /// <returns>The hash.</returns>
    public static PasswordHash Create(string password, int iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        var salt = RandomNumberGenerator.GetBytes(SaltLength);
        var bytes = Encoding.UTF8.GetBytes(password);
        try
        {
            return new PasswordHash(iterations, salt, Rfc2898DeriveBytes.Pbkdf2(bytes, salt, iterations, HashAlgorithmName.SHA256, HashLength));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>Checks a UTF-8 password in constant time (over the derived bytes).</summary>
    /// <param name="passwordUtf8">The candidate password.</param>
    /// <returns>True when it matches.</returns>
    public bool Verify(ReadOnlySpan<byte> passwordUtf8)
    {
        Span<byte> candidate = stackalloc byte[HashLength];
        try
        {
            Rfc2898DeriveBytes.Pbkdf2(passwordUtf8, _salt, candidate, Iterations, HashAlgorithmName.SHA256);
            return CryptographicOperations.FixedTimeEquals(candidate, _hash);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(candidate);
        }
    }

    /// <inheritdoc />
    public override string ToString()
        => string.Create(CultureInfo.InvariantCulture, $"pbkdf2-sha256${Iterations}${Convert.ToBase64String(_salt)}${Convert.ToBase64String(_hash)}");

    /// <summary>Parses the text form.</summary>
    /// <param name="text">The stored text.</param>
    /// <param name="hash">The hash.</param>
    /// <returns>True when well formed.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out PasswordHash? hash)
    {
        hash = null;
        var parts = text?.Split('$');
        if (parts is not ["pbkdf2-sha256", var it, var salt, var h]
            || !int.TryParse(it, NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations < 1)
        {
            return false;
        }

        try
        {
            var s = Convert.FromBase64String(salt);
            var d = Convert.FromBase64String(h);
            if (s.Length != SaltLength || d.Length != HashLength)
            {
                return false;
            }

            hash = new PasswordHash(iterations, s, d);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}

/// <summary>A teacher as the school's personnel management knows them.</summary>
/// <param name="License">The license key (Kennung).</param>
/// <param name="AccountId">The account id used in bundles and rosters.</param>
/// <param name="Password">The hash of the school-internal password.</param>
/// <param name="Active">False when the school deactivated the teacher.</param>
public sealed record PersonnelRecord(LicenseKey License, string AccountId, PasswordHash Password, bool Active = true);

/// <summary>The school's personnel store as seen by enrollment.</summary>
public interface IPersonnelStore
{
    /// <summary>Finds a teacher by license key.</summary>
    /// <param name="license">The license key.</param>
    /// <returns>The record, or null.</returns>
    PersonnelRecord? Find(LicenseKey license);
}

/// <summary>In-memory <see cref="IPersonnelStore"/>.</summary>
public sealed class InMemoryPersonnelStore : IPersonnelStore
{
    private readonly Dictionary<LicenseKey, PersonnelRecord> _records = [];
    private readonly Lock _gate = new();

    /// <summary>Adds or replaces a record.</summary>
    /// <param name="record">The record.</param>
    public void Upsert(PersonnelRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_gate)
        {
            _records[record.License] = record;
        }
    }

    /// <inheritdoc />
    public PersonnelRecord? Find(LicenseKey license)
    {
        lock (_gate)
        {
            return _records.GetValueOrDefault(license);
        }
    }
}

/// <summary>The school connector's store of current rosters and their signed form.</summary>
public interface ISchoolRosterStore
{
    /// <summary>The current roster of an account, or null.</summary>
    /// <param name="accountId">The account.</param>
    /// <returns>The roster.</returns>
    DeviceRoster? Get(string accountId);

    /// <summary>The current signed roster of an account, or null.</summary>
    /// <param name="accountId">The account.</param>
    /// <returns>The CMS bytes.</returns>
    byte[]? GetSigned(string accountId);

    /// <summary>Saves a new version.</summary>
    /// <param name="roster">The roster.</param>
    /// <param name="signed">Its CMS SignedData.</param>
    void Save(DeviceRoster roster, byte[] signed);
}

/// <summary>In-memory <see cref="ISchoolRosterStore"/>.</summary>
public sealed class InMemorySchoolRosterStore : ISchoolRosterStore
{
    private readonly Dictionary<string, (DeviceRoster, byte[])> _rosters = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <inheritdoc />
    public DeviceRoster? Get(string accountId)
    {
        lock (_gate)
        {
            return _rosters.TryGetValue(accountId, out var r) ? r.Item1 : null;
        }
    }

    /// <inheritdoc />
    public byte[]? GetSigned(string accountId)
    {
        lock (_gate)
        {
            return _rosters.TryGetValue(accountId, out var r) ? r.Item2 : null;
        }
    }

    /// <inheritdoc />
    public void Save(DeviceRoster roster, byte[] signed)
    {
        ArgumentNullException.ThrowIfNull(roster);
        lock (_gate)
        {
            if (_rosters.TryGetValue(roster.AccountId, out var current) && current.Item1.Version >= roster.Version)
            {
                throw new InvalidOperationException($"Roster version {roster.Version} is not newer than {current.Item1.Version}.");
            }

            _rosters[roster.AccountId] = (roster, signed);
        }
    }
}
