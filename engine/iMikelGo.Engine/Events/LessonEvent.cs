using IMikelGo.Engine.Canonical;

namespace IMikelGo.Engine.Events;

/// <summary>
/// One fact about a teacher's lessons. Each concrete type has an explicit, versioned wire name
/// (<see cref="EventTypeAttribute"/>); CLR type names never reach the wire.
/// </summary>
public abstract record LessonEvent
{
    private protected LessonEvent()
    {
    }

    /// <summary>Who may author this event.</summary>
    internal virtual AuthorRole AllowedAuthors => AuthorRole.School | AuthorRole.Device;

    /// <summary>The payload as a canonical object.</summary>
    internal abstract CanonicalObject ToPayload();
}

/// <summary>Which kinds of replica may author an event type.</summary>
[Flags]
internal enum AuthorRole
{
    None = 0,
    School = 1,
    Device = 2,
}

/// <summary>The wire name and version of an event type.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
internal sealed class EventTypeAttribute(string name, int version) : Attribute
{
    public string Name { get; } = name;

    public int Version { get; } = version;
}

/// <summary>Why a lesson was cancelled.</summary>
public enum CancellationReason
{
    /// <summary>The teacher is ill.</summary>
    TeacherIll,

    /// <summary>The student is ill.</summary>
    StudentIll,

    /// <summary>The school is closed.</summary>
    SchoolClosed,

    /// <summary>Any other reason (see the note).</summary>
    Other,
}
