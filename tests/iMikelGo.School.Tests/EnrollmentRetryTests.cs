using FluentAssertions;
using IMikelGo.Device;
using IMikelGo.Engine;
using IMikelGo.Engine.Events;
using IMikelGo.Engine.Sync;
using IMikelGo.School.Connector;
using Xunit;

namespace IMikelGo.School.Tests;

/// <summary>A school whose store fails in the middle of approving an enrollment answers it on the next run, once.</summary>
public sealed class EnrollmentRetryTests
{
    [Fact]
    public async Task A_store_error_between_the_roster_and_the_approval_does_not_turn_a_valid_enrollment_into_a_refusal()
    {
        await using var world = new ConnectorWorld();
        FlakyStore? flaky = null;
        var school = await world.InitAsync("musikschule", store => flaky = new FlakyStore(store));
        await school.ImportAsync("json", Json.DocBlock("json"), null, CancellationToken.None);
        await school.PublishAsync(null, CancellationToken.None);
        await world.StartRelayAsync(school.Accounts);
        await school.PublishCertificatesAsync(CancellationToken.None);
        var license = await school.IssueLicenseAsync(new AccountId("anna"), CancellationToken.None);

        var folder = Directory.CreateTempSubdirectory("imikelgo-enroll-retry-").FullName;
        try
        {
            await using var device = await TeacherDevice.OpenAsync(new TeacherDeviceOptions
            {
                DataDirectory = folder,
                DeviceLabel = "Annas Laptop",
                Pbkdf2Iterations = 1000,
                ConfigureRelay = o => (o.RetryBaseDelay, o.MaxRetries) = (TimeSpan.FromMilliseconds(20), 1),
                ConfigureRelayEnrollment = o => (o.FirstPollDelay, o.MaxPollDelay, o.Timeout) = (TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(60)),
            }, CancellationToken.None);

            // The relay hand-off; the school's first run fails to store the approval after its roster was saved.
            flaky!.FailNextApproval = true;
            var enrolling = device.EnrollAsync(new EnrollmentInput(license.Uri.ToString(), license.License.Value, license.Password, ConnectorWorld.Pin), CancellationToken.None);
            var outcomes = new List<EnrollmentOutcome>();
            var failures = 0;
            while (!enrolling.IsCompleted)
            {
                try
                {
                    outcomes.AddRange(await school.ProcessEnrollmentsAsync(CancellationToken.None));
                }
                catch (IOException)
                {
                    failures++;
                }

                await Task.WhenAny(enrolling, Task.Delay(20));
            }

            var id = await enrolling;
            failures.Should().Be(1, "the approval's store write failed once");
            outcomes.Should().ContainSingle().Which.Should().Match<EnrollmentOutcome>(o => o.Approved && o.Device == id, "the retry answered the same request");
            school.Devices().Should().ContainSingle(d => d.Device == id && d.Label == "Annas Laptop", "enrolled once, under its label");
            school.ReplicaOf(new AccountId("anna"))!.Ledger.Applied.Count(e => e.Payload is DeviceEnrolled).Should().Be(1);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private sealed class FlakyStore(ISchoolConnectorStore inner) : ISchoolConnectorStore
    {
        public bool FailNextApproval { get; set; }

        public Task SetValueAsync(string name, byte[]? value, CancellationToken cancellationToken)
        {
            if (FailNextApproval && name.StartsWith("approval/", StringComparison.Ordinal))
            {
                FailNextApproval = false;
                throw new IOException("disk full (simulated) while storing the approval");
            }

            return inner.SetValueAsync(name, value, cancellationToken);
        }

        public Task<byte[]?> GetValueAsync(string name, CancellationToken cancellationToken) => inner.GetValueAsync(name, cancellationToken);

        public Task<IReadOnlyList<KeyValuePair<string, byte[]>>> ListValuesAsync(string prefix, CancellationToken cancellationToken) => inner.ListValuesAsync(prefix, cancellationToken);

        public Task<int> AppendEventsAsync(IReadOnlyList<StoredSchoolEvent> events, bool acknowledged, long? publishedImport, CancellationToken cancellationToken) =>
            inner.AppendEventsAsync(events, acknowledged, publishedImport, cancellationToken);

        public Task<IReadOnlyList<StoredSchoolEvent>> ReadEventsAsync(CancellationToken cancellationToken) => inner.ReadEventsAsync(cancellationToken);

        public Task MarkAcknowledgedAsync(IEnumerable<string> hashes, CancellationToken cancellationToken) => inner.MarkAcknowledgedAsync(hashes, cancellationToken);

        public Task<IReadOnlySet<string>> UnacknowledgedAsync(string account, CancellationToken cancellationToken) => inner.UnacknowledgedAsync(account, cancellationToken);

        public Task<long> AddImportAsync(string format, string? solution, string content, CancellationToken cancellationToken) =>
            inner.AddImportAsync(format, solution, content, cancellationToken);

        public Task<IReadOnlyList<StoredImport>> ImportsAsync(CancellationToken cancellationToken) => inner.ImportsAsync(cancellationToken);

        public Task<IAsyncDisposable?> TryLockWriterAsync(CancellationToken cancellationToken) => inner.TryLockWriterAsync(cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
