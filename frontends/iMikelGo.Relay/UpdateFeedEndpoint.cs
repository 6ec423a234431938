using IMikelGo.Engine.Relay;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace IMikelGo.Relay;

/// <summary>
/// <c>GET|HEAD /updates/{**path}</c>: the signed update feed (docs/updates.md) as static files from
/// <see cref="RelayOptions.UpdateFeedDirectory"/>, without authentication. The relay adds no trust: every byte is verified
/// by the updater against the signed manifest. It only guarantees that nothing outside the feed folder is ever served:
/// paths are '/'-separated segments of <c>[A-Za-z0-9._+-]</c> that never start with '.', so no <c>..</c>, hidden file,
/// backslash, drive, absolute or still-encoded path passes; no symbolic link below the folder is followed; directories
/// are never listed. Range requests let interrupted downloads resume; ETag and Last-Modified make re-checks cheap.
/// </summary>
internal static partial class UpdateFeedEndpoint
{
    /// <summary>The route prefix.</summary>
    public const string Prefix = "/updates";

    private const int MaxPathLength = 512;

    /// <summary>Maps the route on <paramref name="app"/>.</summary>
    public static void Map(IEndpointRouteBuilder app) =>
        app.MapMethods(Prefix + "/{**path}", [HttpMethods.Get, HttpMethods.Head], (string? path, HttpContext context) => ServeAsync(path, context))
            .WithName("UpdateFeed")
            .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream")
            .Produces(StatusCodes.Status206PartialContent)
            .Produces(StatusCodes.Status304NotModified)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);

    private static async Task ServeAsync(string? path, HttpContext context)
    {
        var options = (RelayOptions)context.RequestServices.GetService(typeof(RelayOptions))!;
        var logger = (ILogger<RelayOptions>)context.RequestServices.GetService(typeof(ILogger<RelayOptions>))!;
        if (string.IsNullOrEmpty(options.UpdateFeedDirectory))
        {
            await Problems.Write(context, NotFound("update-feed-not-configured", "This relay serves no update feed (start it with --update-feed DIR)."));
            return;
        }

        if (!IsSafe(path))
        {
            LogRefused(logger, Sanitize(path));
            await Problems.Write(context, Problems.BadInput("bad-path",
                "An update feed path is '/'-separated segments of [A-Za-z0-9._+-], none empty or starting with '.', at most 512 characters."));
            return;
        }

        var root = Path.GetFullPath(options.UpdateFeedDirectory);
        var full = Path.GetFullPath(Path.Combine(root, path!));
        FileStream? stream = null;
        if (full.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            && !FollowsLink(root, path!) && File.Exists(full))
        {
            try
            {
                stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 64 * 1024, useAsync: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stream = null; // replaced or removed meanwhile: treated as missing
            }
        }

        if (stream is null)
        {
            await Problems.Write(context, NotFound("not-found", $"The update feed has no file '{path}'."));
            return;
        }

        // Length, ETag and Last-Modified come from the opened file, so they match the bytes sent even if the publisher
        // renames a new manifest into place meanwhile.
        var modified = File.GetLastWriteTimeUtc(stream.SafeFileHandle);
        var tag = new EntityTagHeaderValue($"\"{stream.Length:x}-{modified.Ticks:x}\"");
        context.Response.Headers.CacheControl = path!.StartsWith("files/", StringComparison.Ordinal)
            ? "public, max-age=31536000, immutable" // a release's files never change; its manifest does
            : "no-cache";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        await Results.Stream(stream, ContentType(path), lastModified: new DateTimeOffset(modified, TimeSpan.Zero), entityTag: tag, enableRangeProcessing: true)
            .ExecuteAsync(context);
    }

    /// <summary>The whole path is checked, not only the resolved result: nothing needs normalizing to be served.</summary>
    internal static bool IsSafe(string? path)
    {
        if (string.IsNullOrEmpty(path) || path.Length > MaxPathLength)
        {
            return false;
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment.Length == 0 || segment[0] == '.' || !segment.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' or '+'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether any directory or file below the feed root on the way to <paramref name="path"/> is a symbolic link.</summary>
    private static bool FollowsLink(string root, string path)
    {
        var current = root;
        foreach (var segment in path.Split('/'))
        {
            current = Path.Combine(current, segment);
            var info = new FileInfo(current);
            if (!info.Exists && !Directory.Exists(current))
            {
                return false; // missing: answered as not found
            }

            if (info.LinkTarget is not null)
            {
                return true;
            }
        }

        return false;
    }

    private static string ContentType(string path) => Path.GetExtension(path) switch
    {
        ".json" => "application/json",
        ".p7s" => "application/pkcs7-signature",
        _ => "application/octet-stream",
    };

    private static IResult NotFound(string reason, string detail) =>
        Problems.Make(StatusCodes.Status404NotFound, RelayProtocol.BadInputProblemType, "Not found", reason, detail);

    private static string Sanitize(string? s) => s is null ? "(none)" : new string([.. s.Take(120).Select(c => char.IsControl(c) ? '?' : c)]);

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused an update feed path: {Path}")]
    private static partial void LogRefused(ILogger logger, string path);
}
