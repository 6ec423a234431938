using IMikelGo.Samples.QuickStart;

return await QuickStart.RunAsync(args, Console.Out, CancellationToken.None).ConfigureAwait(false);
