namespace IMikelGo.School.Model;

/// <summary>
/// The admin system's data is unknown or inconsistent. <see cref="Element"/> names where (an XPath-like location,
/// a JSON path, a CSV line or an id); nothing was published.
/// </summary>
public sealed class SchoolImportException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SchoolImportException()
    {
        Element = string.Empty;
    }

    /// <summary>Creates the exception with a message.</summary>
    public SchoolImportException(string message)
        : base(message)
    {
        Element = string.Empty;
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public SchoolImportException(string message, Exception innerException)
        : base(message, innerException)
    {
        Element = string.Empty;
    }

    /// <summary>Creates the exception for <paramref name="element"/>.</summary>
    public SchoolImportException(string element, string problem, Exception? innerException = null)
        : base($"{element}: {problem}", innerException)
    {
        Element = element;
    }

    /// <summary>Where the problem is.</summary>
    public string Element { get; }
}
