import Testing

@testable import TriageReports

/// Text in a Markdown report renders as written.
@Suite struct MarkdownEscapeTests {
    @Test func escapesWhatWouldBecomeMarkup() {
        #expect(MarkdownReport.escape("plain text, 0x904/0x7.") == "plain text, 0x904/0x7.")
        #expect(MarkdownReport.escape("PROTOCOL_SSL close_notify") == "PROTOCOL_SSL close_notify")
        #expect(MarkdownReport.escape("_em_ *b* `c` ~s~ a|b") == "\\_em\\_ \\*b\\* \\`c\\` \\~s\\~ a\\|b")
        #expect(MarkdownReport.escape("[x](javascript:y) <img src=x> & \\") == "\\[x\\](javascript:y) &lt;img src=x&gt; &amp; \\\\")
        #expect(MarkdownReport.escape("two\nlines") == "two lines")
    }

    @Test func codeSpansHoldAnyName() {
        #expect(MarkdownReport.code("captures/a.pcap") == "`captures/a.pcap`")
        #expect(MarkdownReport.code("a`b") == "``a`b``")
        #expect(MarkdownReport.code("`x``") == "``` `x`` ```")
        #expect(MarkdownReport.code("a\nb") == "`a b`")
    }
}
