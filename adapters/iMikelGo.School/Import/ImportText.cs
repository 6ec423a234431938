using System.Text;
using System.Xml;
using IMikelGo.School.Model;

namespace IMikelGo.School.Import;

/// <summary>
/// An import file's bytes as text, decoded strictly: the encoding of its byte order mark, else (XML) the one its
/// declaration names, else UTF-8. A Latin-1 file read as lenient UTF-8 imported every accented name with U+FFFD in
/// place of the letter, and the ids mapped from those names changed with it.
/// </summary>
internal static class ImportText
{
    public static string Decode(byte[] bytes, string file, bool xml)
    {
        var encoding = xml ? DeclaredEncoding(bytes) : null;
        var bom = 0;
        foreach (var candidate in new[] { Encoding.UTF8, Encoding.Unicode, Encoding.BigEndianUnicode })
        {
            if (bytes.AsSpan().StartsWith(candidate.Preamble))
            {
                (encoding, bom) = (candidate, candidate.Preamble.Length);
                break;
            }
        }

        var strict = Encoding.GetEncoding((encoding ?? Encoding.UTF8).CodePage, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
        try
        {
            return strict.GetString(bytes, bom, bytes.Length - bom);
        }
        catch (DecoderFallbackException ex)
        {
            throw new SchoolImportException(file, $"not valid {strict.WebName} text (byte {bom + ex.Index}); save the file as UTF-8{(xml ? " or declare its encoding in <?xml … encoding=\"…\"?>" : string.Empty)}", ex);
        }
    }

    // The encoding an XML declaration names (null: none, or one this platform lacks, which the strict UTF-8 reading then reports).
    private static Encoding? DeclaredEncoding(byte[] bytes)
    {
        try
        {
            using var probe = new XmlTextReader(new MemoryStream(bytes)) { DtdProcessing = DtdProcessing.Ignore, XmlResolver = null };
            probe.Read();
            return probe.Encoding;
        }
        catch (XmlException)
        {
            return null;
        }
    }
}
