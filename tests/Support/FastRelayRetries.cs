using IMikelGo.Relay.Client;

namespace IMikelGo.TestSupport;

/// <summary>
/// Relay client retries for tests on a loopback relay: one retry after 20 ms, so a fault a test injects surfaces in
/// milliseconds instead of the production backoff. Linked into the test projects that need it (tests/Support).
/// </summary>
internal static class FastRelayRetries
{
    /// <summary>One retry after 20 ms.</summary>
    public static void Apply(RelayClientOptions options) => Set(options, maxRetries: 1);

    /// <summary>No retry: the first failure is the caller's to handle.</summary>
    public static void None(RelayClientOptions options) => Set(options, maxRetries: 0);

    private static void Set(RelayClientOptions options, int maxRetries)
    {
        options.RetryBaseDelay = TimeSpan.FromMilliseconds(20);
        options.MaxRetries = maxRetries;
    }
}
