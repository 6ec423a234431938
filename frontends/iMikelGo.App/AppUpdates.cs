using System.Reflection;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IMikelGo.App.Components;
using IMikelGo.Updates;

namespace IMikelGo.App;

/// <summary>
/// The update configuration (configuration keys, also as <c>--update-feed</c> … on the command line): the feed (https
/// URL or folder) and the pinned vendor certificate; without both the app never checks.
/// </summary>
internal sealed record AppUpdateSettings(string? Feed, string? VendorCertificate, string InstallRoot, string Channel, SemanticVersion Running)
{
    /// <summary>Reads <c>update-feed</c>, <c>update-vendor-cert</c> (64 hex digits or a PEM file), <c>update-root</c>, <c>update-channel</c>, <c>app-version</c>.</summary>
    internal static AppUpdateSettings From(IConfiguration configuration, string dataDirectory)
    {
        var version = configuration["app-version"] ?? typeof(AppUpdates).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
        return new AppUpdateSettings(
            Blank(configuration["update-feed"]),
            Blank(configuration["update-vendor-cert"]),
            Path.GetFullPath(configuration["update-root"] ?? Path.Combine(dataDirectory, "updates")),
            configuration["update-channel"] ?? "stable",
            SemanticVersion.Parse(version));
    }

    /// <summary>The pinned certificate's SHA-256 (hex): given as such, or computed from a PEM certificate file.</summary>
    internal string Pin()
    {
        var value = VendorCertificate!;
        if (value.Length == 64 && value.All(Uri.IsHexDigit))
        {
            return value.ToLowerInvariant();
        }

        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(value));
        return Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));
    }

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}

/// <summary>
/// <see cref="IAppUpdates"/> over <see cref="Updater"/> and <see cref="UpdateDeferral"/> (docs/updates.md): checks at
/// start and on demand, never asks during one of the teacher's own lessons (the unlocked device's week), re-asks when a
/// postponement or lesson ends, and keeps every refusal's reason for the about area.
/// </summary>
internal sealed partial class AppUpdates : IAppUpdates, IDisposable
{
    private readonly AppUpdateSettings _settings;
    private readonly ITeacherDevice _device;
    private readonly TimeProvider _time;
    private readonly ILogger<AppUpdates> _logger;
    private readonly HttpClient? _http;
    private readonly Updater? _updater;
    private readonly UpdateDeferral? _deferral;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private AvailableUpdate? _update;
    private ITimer? _askAgain;

    public AppUpdates(AppUpdateSettings settings, ITeacherDevice device, TimeProvider time, ILogger<AppUpdates> logger)
    {
        _settings = settings;
        _device = device;
        _time = time;
        _logger = logger;
        Status = new UpdateStatus(UpdateState.NotConfigured, settings.Running.Text, null, null, null, null);
        if (settings.Feed is null || settings.VendorCertificate is null)
        {
            return;
        }

        IUpdateSource source;
        if (Uri.TryCreate(settings.Feed, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http")
        {
            _http = new HttpClient();
            source = new HttpUpdateSource(_http, uri);
        }
        else
        {
            source = new FolderUpdateSource(settings.Feed);
        }

        _updater = new Updater(new UpdaterOptions
        {
            InstallRoot = settings.InstallRoot,
            Channel = settings.Channel,
            PinnedVendorCertificate = settings.Pin(),
            CurrentVersion = settings.Running,
        }, source, time);
        _deferral = new UpdateDeferral(settings.InstallRoot, new BusySchedule(InLesson), time);
    }

    /// <inheritdoc />
    public event Action? Changed;

    /// <inheritdoc />
    public UpdateStatus Status { get; private set; }

    /// <inheritdoc />
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        if (_updater is null)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Set(Status with { State = UpdateState.Checking, Detail = null });
            var result = await _updater.CheckAsync(cancellationToken).ConfigureAwait(false);
            var now = _time.GetUtcNow();
            _update = result.Update;
            if (result.Update is null)
            {
                var upToDate = result.Error.Code == UpdateErrorCode.UpToDate;
                if (!upToDate)
                {
                    LogRefused(_logger, result.Error.Code, result.Error.Message);
                }

                Set(new UpdateStatus(upToDate ? UpdateState.UpToDate : UpdateState.Refused, _settings.Running.Text, null,
                    upToDate ? null : result.Error.ToString(), null, now));
                return;
            }

            Decide(_deferral!.Evaluate(result.Update), now);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task LaterAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_update is { } update)
            {
                _deferral!.TryPostpone(update, null, out var decision);
                Decide(decision, Status.CheckedAt);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task InstallAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_update is not { } update)
            {
                return;
            }

            Set(Status with { State = UpdateState.Installing });
            var downloaded = await _updater!.DownloadAsync(update, cancellationToken).ConfigureAwait(false);
            var result = downloaded.Succeeded ? _updater.Activate(update) : downloaded;
            if (!result.Succeeded)
            {
                LogRefused(_logger, result.Error.Code, result.Error.Message);
            }

            Set(result.Succeeded
                ? Status with { State = UpdateState.Installed, Detail = null }
                : Status with { State = UpdateState.Refused, Detail = result.Error.ToString() });
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Once the host listens: tells the launcher that the running version started cleanly (<see cref="UpdateLauncher.ConfirmStarted"/>),
    /// so it keeps this version instead of falling back after its start attempts run out. A run outside an install root
    /// (development, tests) has nothing to confirm; a failure to write is logged and the launcher's fallback stays in force.
    /// </summary>
    /// <returns>True when the version was confirmed.</returns>
    internal bool ConfirmStarted()
    {
        try
        {
            new UpdateLauncher(_settings.InstallRoot, _time).ConfirmStarted(_settings.Running);
            LogConfirmed(_logger, _settings.Running.Text, _settings.InstallRoot);
            return true;
        }
        catch (InvalidOperationException)
        {
            LogNotInstalled(_logger, _settings.Running.Text, _settings.InstallRoot);
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogConfirmFailed(_logger, _settings.Running.Text, e.Message);
            return false;
        }
    }

    /// <summary>The check at start: in the background, so the window opens at once.</summary>
    internal void StartCheck(CancellationToken stopping) => _ = Task.Run(() => CheckAsync(stopping), stopping);

    /// <inheritdoc />
    public void Dispose()
    {
        _askAgain?.Dispose();
        _http?.Dispose();
        _gate.Dispose();
    }

    private void Decide(PromptDecision decision, DateTimeOffset? checkedAt)
    {
        var update = _update!;
        var offer = new UpdateOffer(update.Manifest.Version.Text, _settings.Running.Text, update.Manifest.Security, decision.CanPostpone, decision.Deadline);
        _askAgain?.Dispose();
        _askAgain = null;
        if (decision.Action == PromptAction.AskLater)
        {
            var due = decision.AskAt ?? _time.GetUtcNow();
            _askAgain = _time.CreateTimer(_ => _ = ReevaluateAsync(), null, Max(due - _time.GetUtcNow(), TimeSpan.Zero), Timeout.InfiniteTimeSpan);
        }

        Set(new UpdateStatus(decision.Action == PromptAction.AskLater ? UpdateState.Postponed : UpdateState.Available,
            _settings.Running.Text, offer, decision.Reason, decision.AskAt, checkedAt));
    }

    private async Task ReevaluateAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_update is { } update && Status.State == UpdateState.Postponed)
            {
                Decide(_deferral!.Evaluate(update), Status.CheckedAt);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Whether the teacher is in one of their own lessons (known only while the device is unlocked).</summary>
    private bool InLesson(DateTimeOffset at)
    {
        if (_device.Mode != DeviceMode.Unlocked)
        {
            return false;
        }

        var local = TimeZoneInfo.ConvertTime(at, _time.LocalTimeZone).DateTime;
        var date = DateOnly.FromDateTime(local);
        var minute = (local.Hour * 60) + local.Minute;
        return _device.Week(date).Any(l => l.Date == date && l.State != LessonState.Cancelled
            && minute >= (l.Start.Hour * 60) + l.Start.Minute && minute < (l.Start.Hour * 60) + l.Start.Minute + l.DurationMinutes);
    }

    private void Set(UpdateStatus status)
    {
        Status = status;
        Changed?.Invoke();
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    [LoggerMessage(Level = LogLevel.Information, Message = "version {Version} confirmed as started cleanly in {Root}")]
    private static partial void LogConfirmed(ILogger logger, string version, string root);

    [LoggerMessage(Level = LogLevel.Debug, Message = "version {Version} is not installed under {Root} (not started by the launcher): nothing to confirm")]
    private static partial void LogNotInstalled(ILogger logger, string version, string root);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not confirm that version {Version} started cleanly ({Reason}); the launcher will count this start as failed")]
    private static partial void LogConfirmFailed(ILogger logger, string version, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "update refused ({Code}): {Reason}; the running version stays")]
    private static partial void LogRefused(ILogger logger, UpdateErrorCode code, string reason);
}
