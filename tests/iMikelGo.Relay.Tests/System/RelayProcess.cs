using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IMikelGo.Relay.Tests.Http;

namespace IMikelGo.Relay.Tests.SystemTests;

/// <summary>
/// The relay as a child process: <c>dotnet iMikelGo.Relay.dll --urls https://127.0.0.1:PORT --data DIR --store …</c>
/// (the relay project's own Program, copied next to the test assembly). It can be killed with SIGKILL and restarted
/// on the same port and data directory; the generated certificate persists there, so the pin still holds.
/// </summary>
public sealed class RelayProcess : IAsyncDisposable
{
    private readonly RelayStoreKind _store;
    private readonly string? _connection;
    private readonly List<string> _log = [];
    private Process? _process;

    private RelayProcess(string data, int port, RelayStoreKind store, string? connection)
    {
        DataDirectory = data;
        Port = port;
        _store = store;
        _connection = connection;
        BaseAddress = new Uri($"https://127.0.0.1:{port}/");
    }

    public string DataDirectory { get; }

    public int Port { get; }

    public Uri BaseAddress { get; }

    public string Fingerprint { get; private set; } = string.Empty;

    public string DatabasePath => Path.Combine(DataDirectory, "relay.db");

    public int Starts { get; private set; }

    /// <summary>Writes <c>schools.json</c> with one school per account (keys kept by the caller) and starts the relay.</summary>
    public static async Task<RelayProcess> StartAsync(IReadOnlyDictionary<string, ECDsa> schools, RelayStoreKind store = RelayStoreKind.Embedded, string? connection = null)
    {
        var data = Directory.CreateTempSubdirectory("imikelgo-relay-proc-").FullName;
        foreach (var (account, key) in schools)
        {
            RelayHost.WriteSchool(data, new SchoolRegistration(account, "school-" + account, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo())));
        }

        var relay = new RelayProcess(data, FreePort(), store, connection);
        await relay.StartAsync();
        return relay;
    }

    /// <summary>A caller signing with <paramref name="key"/>, over a client pinned to this relay's certificate.</summary>
    public Caller Caller(string id, ECDsa key, string account) => new(RelayServer.PinnedHttpClient(BaseAddress, Fingerprint), id, key, account);

    /// <summary>(Re)starts the process and waits until <c>/health</c> answers through the pinned certificate.</summary>
    public async Task StartAsync()
    {
        if (_process is { HasExited: false })
        {
            throw new InvalidOperationException("the relay is running");
        }

        var dll = Path.Combine(AppContext.BaseDirectory, "iMikelGo.Relay.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        psi.ArgumentList.Add(dll);
        foreach (var arg in new[] { "--urls", BaseAddress.ToString().TrimEnd('/'), "--data", DataDirectory, "--store", _store.ToString() })
        {
            psi.ArgumentList.Add(arg);
        }

        if (_connection is not null)
        {
            psi.ArgumentList.Add("--connection");
            psi.ArgumentList.Add(_connection);
        }

        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => Log(e.Data);
        process.ErrorDataReceived += (_, e) => Log(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        Starts++;

        var pfx = Path.Combine(DataDirectory, RelayCertificate.FileName);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the relay exited with {process.ExitCode}: {Output}");
            }

            if (deadline.Elapsed > TimeSpan.FromSeconds(90))
            {
                throw new TimeoutException($"the relay did not become healthy: {Output}");
            }

            if (File.Exists(pfx + ".password"))
            {
                try
                {
                    var fingerprint = FingerprintOfFile(pfx);
                    if (Fingerprint.Length > 0 && !string.Equals(fingerprint, Fingerprint, StringComparison.Ordinal))
                    {
                        throw new InvalidOperationException("the relay's certificate changed across a restart");
                    }

                    using var http = RelayServer.PinnedHttpClient(BaseAddress, fingerprint);
                    http.Timeout = TimeSpan.FromSeconds(2);
                    var health = await http.GetAsync(new Uri("/health", UriKind.Relative));
                    if (health.StatusCode == HttpStatusCode.OK)
                    {
                        Fingerprint = fingerprint;
                        return;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException or CryptographicException)
                {
                }
            }

            await Task.Delay(100);
        }
    }

    /// <summary>SIGKILL: no shutdown, no flush, in-flight requests cut.</summary>
    public async Task KillAsync()
    {
        if (_process is { } p)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            p.Dispose();
            _process = null;
        }
    }

    public string Output
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log.TakeLast(40));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Log(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.Add(line);
            }
        }
    }

    private static string FingerprintOfFile(string pfx)
    {
        var password = File.ReadAllText(pfx + ".password").Trim();
        using var certificate = X509CertificateLoader.LoadPkcs12FromFile(pfx, password);
        return RelayCertificate.FingerprintOf(certificate);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
