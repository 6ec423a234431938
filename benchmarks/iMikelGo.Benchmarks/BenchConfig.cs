using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace IMikelGo.Benchmarks;

/// <summary>
/// ShortRun (1 launch, 3 warm-up, 3 measured iterations) in process: no per-benchmark project is generated and
/// built, so running the benchmarks never rebuilds the engine projects in place beside concurrent builds.
/// </summary>
public sealed class ShortInProcessConfig : ManualConfig
{
    public ShortInProcessConfig() =>
        AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithId("ShortRun-InProcess"));
}

/// <summary>
/// For operations that need a fresh state per measurement (<c>[IterationSetup]</c>: a new vault, a new school store):
/// one invocation per iteration, 3 warm-up and 10 measured iterations, in process.
/// </summary>
public sealed class SingleShotInProcessConfig : ManualConfig
{
    public SingleShotInProcessConfig() =>
        AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance).WithInvocationCount(1).WithUnrollFactor(1).WithIterationCount(10).WithId("SingleShot-InProcess"));
}

/// <summary>
/// For long operations that need a fresh state per measurement (100,000-event ingests): one invocation per iteration,
/// 1 warm-up and 3 measured iterations, in process (with a 60-minute limit instead of the in-process default of 5).
/// </summary>
public sealed class LongSingleShotInProcessConfig : ManualConfig
{
    public LongSingleShotInProcessConfig() =>
        AddJob(Job.ShortRun.WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(60), logOutput: true)).WithInvocationCount(1).WithUnrollFactor(1).WithWarmupCount(1).WithIterationCount(3).WithId("LongSingleShot-InProcess"));
}
