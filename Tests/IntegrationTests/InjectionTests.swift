import Foundation
import Testing

/// Bytes from a capture (and names from the command line) cannot act as control characters
/// in a report or an error line, and redaction still finds them in exported frames.
@Suite struct InjectionTests: RunsTheTool {
    /// The DNS label below: an escape sequence and a newline inside a name.
    static let label: [UInt8] = Array("x\u{1B}[31mred\nline".utf8)
    static let shown = "x\\x1b[31mred\\x0aline.example.com"

    /// Written byte by byte: raw IPv4 (link type 101), a DNS answer naming 198.51.100.20 with
    /// that label, then an unanswered SYN from the asker to it, port 3389.
    static func capture(label: [UInt8] = label) -> [UInt8] {
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func ipv4(_ src: [UInt8], _ dst: [UInt8], _ proto: UInt8, _ payload: [UInt8]) -> [UInt8] {
            [0x45, 0] + be16(20 + payload.count) + [0, 1, 0x40, 0, 64, proto, 0, 0] + src + dst + payload
        }
        let name = [UInt8(label.count)] + label + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0]
        var dns: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0] + name + [0, 1, 0, 1]
        dns += [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 20]
        let udp = be16(53) + be16(40000) + be16(8 + dns.count) + [0, 0] + dns
        let syn: [UInt8] = [0xc3, 0x50, 0x0d, 0x3d, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]
        var out = le32(0xa1b2_c3d4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(65535) + le32(101)
        for (sec, frame) in [(1_800_000_000, ipv4([192, 0, 2, 53], [192, 0, 2, 10], 17, udp)),
                             (1_800_000_001, ipv4([192, 0, 2, 10], [198, 51, 100, 20], 6, syn))] {
            out += le32(UInt32(sec)) + le32(0) + le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame
        }
        return out
    }

    @Test func dnsNameCannotInjectIntoReports() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/dns.pcap"
        try Data(Self.capture()).write(to: URL(fileURLWithPath: path))
        for format in ["text", "markdown"] {
            let r = try Run.program(exe, ["analyze", "--color", "never", "--format", format, path])
            #expect(r.status == 1)
            #expect(r.stdout.contains(Self.shown), "\(format): \(r.stdout)")
            #expect(!r.stdout.contains("\u{1B}"), "\(format): an escape sequence reached the report")
            #expect(!r.stdout.split(separator: "\n").contains { $0.hasPrefix("line.example.com") }, "\(format)")
        }
        let json = try Run.program(exe, ["analyze", "--format", "json", path])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let attempt = try #require(((doc["inputs"] as? [[String: Any]])?.first?["attempts"] as? [[String: Any]])?.first)
        #expect((attempt["dns"] as? [[String: Any]])?.first?["name"] as? String == Self.shown)
    }

    /// The redacted export replaces the name in the DNS answer although reports show it escaped.
    @Test func redactedExportReplacesAnEscapedName() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/dns.pcap"
        try Data(Self.capture()).write(to: URL(fileURLWithPath: path))
        let r = try Run.program(exe, ["analyze", "--redact", "--export", dir + "/out", path])
        #expect(r.status == 1, "\(r.stderr)")
        let pcap = try #require(entries(dir + "/out").first { $0.hasSuffix(".pcap") })
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/out/" + pcap))
        #expect(bytes.range(of: Data(Self.label)) == nil, "the original label is still in the exported frames")
        #expect(bytes.range(of: Data("example".utf8)) == nil)
        #expect(!r.stdout.contains("31mred") && r.stdout.contains("host-1"), "\(r.stdout)")
    }

    /// Remediation steps quote names inside code spans (`Resolve-DnsName {server}`), where a
    /// backtick from the capture would close the span and let the rest render as Markdown:
    /// it is written as \x60 instead.
    @Test func backtickCannotLeaveACodeSpan() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/dns.pcap"
        try Data(Self.capture(label: Array("a`[x](javascript:y)`b".utf8))).write(to: URL(fileURLWithPath: path))
        let md = try Run.program(exe, ["analyze", "--format", "markdown", path]).stdout
        let steps = md.split(separator: "\n").filter { $0.contains("Test-NetConnection") || $0.contains("Resolve-DnsName") }
        #expect(!steps.isEmpty, "\(md)")
        for step in steps {
            #expect(!step.contains("a`[x]"), "\(step)")
            #expect(step.contains("a\\x60[x](javascript:y)\\x60b"), "\(step)")
        }
    }

    /// Markdown shows text from the capture as written: no HTML, link or emphasis of its own.
    /// (Remediation steps quote names inside code spans; a backtick in them is escaped in the
    /// classifier, see `backtickCannotLeaveACodeSpan`.)
    @Test func markdownShowsCaptureTextAsWritten() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/dns.pcap"
        try Data(Self.capture(label: Array("w*x_[y](z)<b>".utf8))).write(to: URL(fileURLWithPath: path))
        let md = try Run.program(exe, ["analyze", "--format", "markdown", path]).stdout
        let summary = try #require(md.split(separator: "\n").first { $0.hasPrefix("**No answer from") })
        #expect(summary.contains("w\\*x\\_\\[y\\](z)&lt;b&gt;.example.com"), "\(summary)")
        let evidence = try #require(md.split(separator: "\n").first { $0.hasPrefix("| 1 |") })
        #expect(evidence.contains("DNS answer w\\*x\\_\\[y\\](z)&lt;b&gt;.example.com"), "\(evidence)")

        // A server's HTML banner, from a lab capture.
        let web = try Run.program(exe, ["analyze", "--format", "markdown", Repo.captures + "/non-rdp-service.pcap"]).stdout
        #expect(web.contains("(\"&lt;!DOCTYPE HTML&gt;\")"))
        #expect(!web.contains("<!DOCTYPE"))
    }

    /// The warning for a capture cut in its last record names the file: escaped on standard
    /// error, in text and in Markdown, like the errors.
    @Test func cutCaptureWarningNamesTheFileEscaped() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/cut\u{1B}[2J.pcap"
        let whole = try Data(contentsOf: URL(fileURLWithPath: Repo.captures + "/rst-refused.pcap"))
        try whole.prefix(whole.count - 10).write(to: URL(fileURLWithPath: path))
        for format in ["text", "markdown"] {
            let r = try Run.program(exe, ["analyze", "--color", "never", "--format", format, path])
            #expect(r.stderr.contains("warning:") && r.stderr.contains("cut\\x1b[2J.pcap"), "\(r.stderr)")
            #expect(!r.stderr.contains("\u{1B}") && !r.stdout.contains("\u{1B}"), "\(format): an escape sequence reached the output")
        }
    }

    @Test func fileNameWithANewlineStaysOneLine() throws {
        let r = try Run.program(exe, ["analyze", "/nonexistent/bad\nname\u{1B}[2J.pcap"])
        #expect(r.status == 2)
        #expect(r.stderr == "rdptriage: /nonexistent/bad\\x0aname\\x1b[2J.pcap: no such file\n", "\(r.stderr)")
    }
}
