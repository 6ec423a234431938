using System.Net;
using IMikelGo.App.Components;
using IMikelGo.Device;

namespace IMikelGo.App;

/// <summary>What a host (or a test) sets beyond the command line.</summary>
public sealed class TeacherAppOptions
{
    /// <summary>Adjusts the device options after <c>--data</c> was applied (enrollment channel, relay tuning, PBKDF2 cost in tests).</summary>
    public Action<TeacherDeviceOptions>? ConfigureDevice { get; set; }

    /// <summary>The clock (update expiry and deferral).</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}

/// <summary>
/// Builds the teacher app host: <c>--data DIR</c> (device folder), <c>--urls</c> (loopback only), <c>--device-label</c>
/// (how the school lists this device; default the machine name), and the update
/// settings <c>--update-feed</c>, <c>--update-vendor-cert</c>, <c>--update-root</c>, <c>--update-channel</c>,
/// <c>--app-version</c> (also from any other configuration source; docs/teacher-app.md).
/// </summary>
public static class TeacherAppHost
{
    /// <summary>The default address.</summary>
    public const string DefaultUrl = "http://127.0.0.1:5187";

    /// <summary>Opens the device, creates and starts the app, and starts the update check in the background.</summary>
    /// <exception cref="ArgumentException">Asked to listen on anything but loopback.</exception>
    public static async Task<WebApplication> StartAsync(string[] args, TeacherAppOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        options ??= new TeacherAppOptions();
        var urls = Option(args, "--urls") ?? DefaultUrl;
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var uri = new Uri(url.Replace("://+", "://x", StringComparison.Ordinal).Replace("://*", "://x", StringComparison.Ordinal));
            if (!(IPAddress.TryParse(uri.Host, out var ip) && IPAddress.IsLoopback(ip)))
            {
                throw new ArgumentException($"the teacher app binds to 127.0.0.1 only, not '{url}'");
            }
        }

        var data = Path.GetFullPath(Option(args, "--data") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".imikelgo", "device"));
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ApplicationName = typeof(TeacherAppHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        var updateSettings = AppUpdateSettings.From(builder.Configuration, data);
        var deviceOptions = new TeacherDeviceOptions { DataDirectory = data, Time = options.Time, DeviceLabel = builder.Configuration["device-label"] };
        options.ConfigureDevice?.Invoke(deviceOptions);
        var device = await TeacherDeviceAdapter.OpenAsync(deviceOptions, cancellationToken).ConfigureAwait(false);
        WebApplication app;
        try
        {
            builder.WebHost.UseUrls(urls);
            // Serve static assets from the build output too (not only after publish): no-op when the runtime manifest is absent.
            builder.WebHost.UseStaticWebAssets();
            builder.Services.AddRazorComponents().AddInteractiveServerComponents();
            builder.Services.AddSingleton(_ => device); // created by the container's factory, so disposed with it (vault closed)
            builder.Services.AddSingleton<ITeacherDevice>(sp => sp.GetRequiredService<TeacherDeviceAdapter>());
            builder.Services.AddSingleton(updateSettings);
            builder.Services.AddSingleton(options.Time);
            builder.Services.AddSingleton<AppUpdates>();
            builder.Services.AddSingleton<IAppUpdates>(sp => sp.GetRequiredService<AppUpdates>());
            builder.Services.AddScoped<UiText>();
            app = builder.Build();
            app.UseAntiforgery();
            app.MapStaticAssets();
            app.MapRazorComponents<Shell.App>().AddInteractiveServerRenderMode();
        }
        catch
        {
            await device.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var updates = app.Services.GetRequiredService<AppUpdates>();
        updates.ConfirmStarted(); // vault opened and host listening: the launcher keeps this version (docs/updates.md)
        updates.StartCheck(app.Lifetime.ApplicationStopping);
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
