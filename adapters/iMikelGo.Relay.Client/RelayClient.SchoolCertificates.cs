using System.Net.Http.Headers;
using System.Text.Json;
using IMikelGo.Engine.Relay;

namespace IMikelGo.Relay.Client;

public sealed partial class RelayClient
{
    /// <summary>
    /// School (its enrollment caller, id = school id): publishes the school's root and enrollment certificates for
    /// devices that are about to enroll. Republishing the same certificates changes nothing.
    /// </summary>
    /// <param name="school">The school id.</param>
    /// <param name="certificates">The DER certificates.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task.</returns>
    public async Task PublishSchoolCertificatesAsync(string school, SchoolCertificates certificates, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(school);
        ArgumentNullException.ThrowIfNull(certificates);
        using var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string>
        {
            ["root"] = Convert.ToBase64String(certificates.Root),
            ["enrollment"] = Convert.ToBase64String(certificates.Enrollment),
        }));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        await SendAsync<object>("publish-school-certificates", HttpMethod.Post, SchoolCertificates.Route(school), content, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Device, before it enrolls (no identity needed): the certificates the school published at the relay. They come
    /// from the relay, so the caller must check the root against the fingerprint in its enrollment code.
    /// </summary>
    /// <param name="school">The school id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The DER certificates.</returns>
    /// <exception cref="RelayException">The school has published none (404) or the relay failed.</exception>
    public async Task<SchoolCertificates> GetSchoolCertificatesAsync(string school, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(school);
        var published = await SendAsync<SchoolCertificates>("school-certificates", HttpMethod.Get, SchoolCertificates.Route(school), null, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        if (published.Root is not { Length: > 0 } || published.Enrollment is not { Length: > 0 })
        {
            throw new RelayProtocolException("relay school-certificates: the answer lacks the root or the enrollment certificate");
        }

        return published;
    }
}
