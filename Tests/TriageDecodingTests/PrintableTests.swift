import Testing

@testable import TriageDecoding

/// Text from a capture shown without control characters, and read back for redaction.
@Suite struct PrintableTests {
    @Test func wireBytesKeepPrintableASCIIOnly() {
        #expect(Printable.escaping(Array("rdp.example.test".utf8)) == "rdp.example.test")
        #expect(Printable.escaping([0x61, 0x1B, 0x5B, 0x0A, 0x7F, 0xC3, 0xA9, 0x5C]) == "a\\x1b[\\x0a\\x7f\\xc3\\xa9\\")
        #expect(Printable.escaping([]) == "")
    }

    @Test func decodedTextKeepsLettersAndEscapesControls() {
        #expect(Printable.escapingControls("Büro-PC") == "Büro-PC")
        #expect(Printable.escapingControls("a\nb\u{1B}[2J\u{7F}") == "a\\x0ab\\x1b[2J\\x7f")
        // C1 CSI, and a right-to-left override that would reorder what follows.
        #expect(Printable.escapingControls("x\u{9B}y\u{202E}z") == "x\\x9by\\u{202e}z")
    }

    @Test func escapesReadBackToTheOriginalBytes() {
        let bytes: [UInt8] = [0x78, 0x1B, 0x5B, 0x33, 0x31, 0x6D, 0x0A, 0x2E, 0x63, 0xFF]
        #expect(Printable.unescaped(Printable.escaping(bytes)) == bytes)
        #expect(Printable.unescaped("plain.name") == nil)
        #expect(Printable.unescaped("DOMAIN\\user") == nil, "a backslash alone is not an escape")
    }

    @Test func dnsNamesAreEscapedLikeTheCookie() throws {
        var m: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
        m += [4, 0x65, 0x1B, 0x0A, 0x76, 7] + Array("example".utf8) + [0]
        m += [0, 1, 0, 1]
        m += [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 20]
        let message = try m.withUnsafeBytes { try DNSMessage.decode($0) }
        #expect(message.questionName == "e\\x1b\\x0av.example")
        #expect(message.answers.first?.name == "e\\x1b\\x0av.example")
    }
}
