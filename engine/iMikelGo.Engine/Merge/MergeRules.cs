using IMikelGo.Engine.Events;

namespace IMikelGo.Engine.Merge;

/// <summary>
/// The documented rules that decide between concurrent events on one lesson (docs/merge-rules.md). They look
/// only at who wrote an event, what it intends and the author's replica id — never at wall time or hashes.
/// </summary>
public static class MergeRules
{
    /// <summary>A school decision prevails over a concurrent teacher edit.</summary>
    public const string SchoolOutranksTeacher = "school-outranks-teacher";

    /// <summary>The school removed the lesson (series withdrawn, changed, or a holiday) while a teacher edited it.</summary>
    public const string SchoolRemovedLesson = "school-removed-lesson";

    /// <summary>A cancellation prevails over a concurrent reschedule.</summary>
    public const string CancelBeatsReschedule = "cancel-beats-reschedule";

    /// <summary>A cancellation prevails over a concurrent "held".</summary>
    public const string CancelBeatsHeld = "cancel-beats-held";

    /// <summary>A reschedule prevails over a concurrent "held" (the lesson was not held at the old time).</summary>
    public const string RescheduleBeatsHeld = "reschedule-beats-held";

    /// <summary>Two concurrent moves to different slots: the author with the lower replica id prevails.</summary>
    public const string LowerReplicaWinsMove = "two-moves-lower-replica-id-wins";

    /// <summary>An absence recorded concurrently with a cancellation: the cancellation stands.</summary>
    public const string CancellationVoidsAbsence = "cancellation-voids-absence";

    /// <summary>Every rule a <see cref="ConflictRecord"/> may name.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        SchoolOutranksTeacher, SchoolRemovedLesson, CancelBeatsReschedule, CancelBeatsHeld, RescheduleBeatsHeld,
        LowerReplicaWinsMove, CancellationVoidsAbsence,
    ];

    internal static int Rank(LessonEvent intent) => intent switch
    {
        LessonCancelled => 0,
        LessonRescheduled => 1,
        LessonHeld => 2,
        _ => 3,
    };

    /// <summary>Whether two intents on the same lesson collide (so a person should see the decision).</summary>
    internal static bool Collide(LessonEvent winner, LessonEvent loser) => (winner, loser) switch
    {
        (LessonCancelled, LessonCancelled) => false,
        (LessonHeld, LessonHeld) => false,
        (LessonRescheduled a, LessonRescheduled b) => a.Date != b.Date || a.StartMinute != b.StartMinute || a.Room != b.Room || a.DurationMinutes != b.DurationMinutes,
        _ => true,
    };

    internal static string Explain(bool winnerBySchool, bool loserBySchool, LessonEvent winner, LessonEvent loser) =>
        winnerBySchool && !loserBySchool ? SchoolOutranksTeacher : (winner, loser) switch
        {
            (LessonCancelled, LessonRescheduled) => CancelBeatsReschedule,
            (LessonCancelled, LessonHeld) => CancelBeatsHeld,
            (LessonRescheduled, LessonHeld) => RescheduleBeatsHeld,
            (LessonRescheduled, LessonRescheduled) => LowerReplicaWinsMove,
            _ => throw new InvalidOperationException($"no rule orders {winner.GetType().Name} before {loser.GetType().Name}"),
        };
}
