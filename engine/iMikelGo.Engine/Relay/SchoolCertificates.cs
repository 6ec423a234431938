namespace IMikelGo.Engine.Relay;

/// <summary>
/// The school's public certificates a device needs before it enrolls: the school root and the enrollment certificate
/// (the school's HPKE key, issued by the root), both DER. The school publishes them at the relay (signed by its
/// enrollment caller); devices fetch them anonymously and accept them only when the root matches the fingerprint in
/// their enrollment code, so the relay cannot substitute them (docs/relay.md, "School certificates").
/// </summary>
/// <param name="Root">The school root certificate (DER).</param>
/// <param name="Enrollment">The enrollment certificate (DER, issued by <paramref name="Root"/>).</param>
public sealed record SchoolCertificates(byte[] Root, byte[] Enrollment)
{
    /// <summary>Largest certificate accepted (bytes of DER).</summary>
    public const int MaxCertificateBytes = 16 * 1024;

    /// <summary>
    /// Publish (the school's enrollment caller, signed; body <c>{"root": base64, "enrollment": base64}</c>) or fetch
    /// (anyone, unauthenticated): <c>/v1/schools/{school}/certificates</c>.
    /// </summary>
    public static string Route(string school) => $"/v1/schools/{Uri.EscapeDataString(school)}/certificates";

    /// <summary>
    /// The relay's mailbox (in its <see cref="IMailboxStore"/>) holding a school's publications, the latest one served;
    /// '~' is not allowed in account ids, so no teacher account can collide with it.
    /// </summary>
    public static string Mailbox(string school) => "~school-certificates~" + school;
}
