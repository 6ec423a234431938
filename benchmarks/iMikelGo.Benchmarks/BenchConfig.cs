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
