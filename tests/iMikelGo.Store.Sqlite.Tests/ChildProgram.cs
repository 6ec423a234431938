using IMikelGo.Store.Sqlite.Vault;

namespace IMikelGo.Store.Sqlite.Tests;

/// <summary>
/// Entry point of the test assembly when run as a child process (`dotnet exec tests.dll vault-child ...`): it runs one
/// vault command with a crash point armed, so the process kills itself (SIGKILL) at that exact step. The test host
/// itself never calls Main.
/// </summary>
public static class ChildProgram
{
    internal const string Verb = "vault-child";

    public static async Task<int> Main(string[] args)
    {
        if (args.Length < 4 || args[0] != Verb)
        {
            Console.Error.WriteLine("usage: vault-child <root> <crash-point|none> <unlock PIN | changepin OLD NEW | wipe REASON>");
            return 2;
        }

        var root = args[1];
        VaultTestHooks.CrashAt = args[2] == "none" ? null : args[2];
        var env = new TestVault(root); // not disposed: that would delete the folder under test
        await using var vault = env.Create();
        await vault.InitializeAsync(CancellationToken.None);
        switch (args[3])
        {
            case "unlock":
                Console.WriteLine("result " + (await vault.UnlockAsync(args[4], CancellationToken.None)).Status);
                break;
            case "changepin":
                Console.WriteLine("result " + (await vault.ChangePinAsync(args[4], args[5], CancellationToken.None)).Status);
                break;
            case "wipe":
                Console.WriteLine("result " + await vault.WipeAsync(Enum.Parse<WipeReason>(args[4]), CancellationToken.None));
                break;
            default:
                return 2;
        }

        // Arm "exit" to simulate a force-stop right after the answer was shown.
        VaultTestHooks.Hit("exit");
        return 0;
    }
}
