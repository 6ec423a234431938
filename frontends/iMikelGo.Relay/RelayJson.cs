using System.Text.Json;
using System.Text.Json.Serialization;
using IMikelGo.Engine.Relay;

namespace IMikelGo.Relay;

/// <summary>JSON of the relay's DTOs (web defaults: camelCase; byte arrays as base64).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(PushResult))]
[JsonSerializable(typeof(PullPage))]
[JsonSerializable(typeof(AckRequest))]
[JsonSerializable(typeof(DeviceRegistration))]
[JsonSerializable(typeof(RevocationRequest))]
[JsonSerializable(typeof(WipeAck))]
[JsonSerializable(typeof(List<SchoolRegistration>))]
[JsonSerializable(typeof(EnrollmentSubmitted))]
[JsonSerializable(typeof(EnrollmentPage))]
[JsonSerializable(typeof(EnrollmentAnswerRequest))]
[JsonSerializable(typeof(EnrollmentStatus))]
internal sealed partial class RelayJson : JsonSerializerContext;
