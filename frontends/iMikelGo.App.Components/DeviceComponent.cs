using Microsoft.AspNetCore.Components;

namespace IMikelGo.App.Components;

/// <summary>A screen that re-renders when the device or the language changes (components without parameters are not re-rendered by their parent).</summary>
public abstract class DeviceComponent : ComponentBase, IDisposable
{
    /// <summary>The device.</summary>
    [Inject]
    protected ITeacherDevice Device { get; set; } = null!;

    /// <summary>The UI text.</summary>
    [Inject]
    protected UiText T { get; set; } = null!;

    /// <inheritdoc />
    protected override void OnInitialized()
    {
        Device.Changed += OnChanged;
        T.LanguageChanged += OnChanged;
    }

    private void OnChanged() => _ = InvokeAsync(StateHasChanged);

    /// <inheritdoc />
    public void Dispose()
    {
        Device.Changed -= OnChanged;
        T.LanguageChanged -= OnChanged;
        GC.SuppressFinalize(this);
    }
}
