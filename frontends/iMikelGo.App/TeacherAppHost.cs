using System.Net;
using IMikelGo.App.Components;
using IMikelGo.Store.Sqlite;

namespace IMikelGo.App;

/// <summary>Builds the teacher app host: <c>--data DIR</c> (device folder), <c>--urls</c> (loopback only).</summary>
public static class TeacherAppHost
{
    /// <summary>The default address.</summary>
    public const string DefaultUrl = "http://127.0.0.1:5187";

    /// <summary>Creates the app; throws when asked to listen on anything but loopback.</summary>
    public static WebApplication Create(string[] args, int? pbkdf2Iterations = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var data = Option(args, "--data") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".imikelgo", "device");
        var urls = Option(args, "--urls") ?? DefaultUrl;
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var uri = new Uri(url.Replace("://+", "://x", StringComparison.Ordinal).Replace("://*", "://x", StringComparison.Ordinal));
            if (!(IPAddress.TryParse(uri.Host, out var ip) && IPAddress.IsLoopback(ip)))
            {
                throw new ArgumentException($"the teacher app binds to 127.0.0.1 only, not '{url}'");
            }
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ApplicationName = typeof(TeacherAppHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseUrls(urls);
        // Serve static assets from the build output too (not only after publish): no-op when the runtime manifest is absent.
        builder.WebHost.UseStaticWebAssets();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        builder.Services.AddIMikelGoDeviceVault(o =>
        {
            o.RootDirectory = Path.GetFullPath(data);
            if (pbkdf2Iterations is { } n)
            {
                o.Pbkdf2Iterations = n;
            }
        });
        builder.Services.AddSingleton<EngineTeacherDevice>();
        builder.Services.AddSingleton<ITeacherDevice>(sp => sp.GetRequiredService<EngineTeacherDevice>());
        builder.Services.AddScoped<UiText>();

        var app = builder.Build();
        app.Lifetime.ApplicationStarted.Register(() => { });
        app.UseAntiforgery();
        app.MapStaticAssets();
        app.MapRazorComponents<Shell.App>().AddInteractiveServerRenderMode();
        return app;
    }

    /// <summary>Creates, initializes the device and starts the app.</summary>
    public static async Task<WebApplication> StartAsync(string[] args, int? pbkdf2Iterations = null, CancellationToken cancellationToken = default)
    {
        var app = Create(args, pbkdf2Iterations);
        await app.Services.GetRequiredService<EngineTeacherDevice>().InitializeAsync(cancellationToken).ConfigureAwait(false);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        return app;
    }

    private static string? Option(string[] args, string name)
    {
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == name && i + 1 < args.Length)
            {
                return args[i + 1];
            }

            if (args[i].StartsWith(name + "=", StringComparison.Ordinal))
            {
                return args[i][(name.Length + 1)..];
            }
        }

        return null;
    }
}
