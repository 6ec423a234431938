// The teacher app: dotnet run --project frontends/iMikelGo.App -- --data ~/.imikelgo/device --urls http://127.0.0.1:5187
using IMikelGo.App;

var app = await TeacherAppHost.StartAsync(args);
Console.WriteLine($"iMikelGo teacher app: {string.Join(", ", app.Urls)} (Ctrl+C to stop)");
await app.WaitForShutdownAsync();
