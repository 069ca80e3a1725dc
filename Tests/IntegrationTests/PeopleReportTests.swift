import Foundation
import TestSupport
import Testing
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

@testable import TriageReports

/// Reports for people (issue 15): the summary before the attempts, a ladder diagram of each
/// failed attempt in Markdown, a Wireshark filter per attempt. Expectations come from how each
/// capture was made (`captures/NAME.expected.json`), never from rdptriage's own output.
@Suite struct PeopleReportTests {
    struct Expected {
        var label: String
        var endedBy: String
        var keyFrames: [String: Int]
    }

    static func expected(_ capture: String) throws -> [Expected] {
        let path = capture.replacingOccurrences(of: ".pcap", with: ".expected.json")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let attempts = try #require(json["attempts"] as? [[String: Any]])
        return attempts.map {
            Expected(
                label: $0["label"] as? String ?? "", endedBy: $0["ended_by"] as? String ?? "",
                keyFrames: $0["key_frames"] as? [String: Int] ?? [:])
        }
    }

    /// `--keylog NAME.keys` when the capture's verdict rests on what only the key log reads
    /// (`verdict_needs_keys`): without it a refusal stated inside TLS looks like a session.
    static func keyArgs(_ capture: String) throws -> [String] {
        let path = capture.replacingOccurrences(of: ".pcap", with: ".expected.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        return json?["verdict_needs_keys"] as? Bool == true ? ["--keylog", capture.replacingOccurrences(of: ".pcap", with: ".keys")] : []
    }

    static var labCaptures: [String] {
        Repo.committedCaptures.filter { FileManager.default.fileExists(atPath: $0.replacingOccurrences(of: ".pcap", with: ".expected.json")) }
            .map { ($0 as NSString).lastPathComponent }
    }

    func markdown(_ args: [String]) throws -> String {
        let r = try Run.program(Repo.executable, ["analyze", "--format", "markdown"] + args)
        #expect(r.status == 0 || r.status == 1, "\(args): exit \(r.status) \(r.stderr)")
        return r.stdout
    }

    /// The ladder draws every packet the capture's design names (SYN, answers, X.224, TLS
    /// hellos and alerts, ICMP, FIN and RST), highlights the one that decided the verdict, and
    /// has a middlebox lane exactly when a device between ended the attempt.
    @Test(arguments: labCaptures)
    func ladderShowsTheKeyPackets(_ name: String) throws {
        let capture = Repo.captures + "/" + name
        let want = try Self.expected(capture)
        let got = analyze(capture).attempts
        try #require(got.count == want.count, "\(name): \(got.count) attempts, expected \(want.count)")
        // The packet each label is about, named as the capture's design names it.
        let decisiveKey = [
            "negotiation-failure": "x224_confirm", "tls-alert": "alert", "icmp-unreachable": "icmp", "rst-refused": "rst",
            "reset-by-middlebox": "rst", "early-disconnect": "fin", "tls-rejected": "rst",
        ]
        for (a, w) in zip(got, want) where w.label != "success" {
            let ladder = Ladder.build(a)
            let frames = Set(ladder.messages.map(\.frame))
            for (key, frame) in w.keyFrames where !["dns_query", "dns_response", "last", "certificate"].contains(key) {
                #expect(frames.contains(frame), "\(name) #\(a.facts.tcp.id + 1): \(key) (frame \(frame)) not drawn")
            }
            #expect((ladder.middlebox != nil) == (w.endedBy == "middlebox"), "\(name): middlebox lane \(ladder.middlebox ?? "none")")
            if let key = decisiveKey[w.label], let frame = w.keyFrames[key] {
                #expect(ladder.decisiveFrame == frame, "\(name): decisive frame \(ladder.decisiveFrame ?? -1), expected \(key) \(frame)")
            }
            let parsed = try MermaidSubset.parse(ladder.mermaid().joined(separator: "\n"))
            #expect(parsed.messages.count == ladder.messages.count)
            #expect(parsed.messages.contains { $0.highlighted }, "\(name): nothing highlighted")
            if w.label == "syn-unanswered" { #expect(parsed.messages.allSatisfy { $0.arrow == "-x" }) }
        }
    }

    /// Every Markdown report holds one diagram per failed attempt shown, each in the subset
    /// Mermaid parses, and with `--redact` no original address is left in a diagram or filter.
    @Test(arguments: labCaptures)
    func markdownDiagramsParse(_ name: String) throws {
        let want = try Self.expected(Repo.captures + "/" + name)
        for redact in [false, true] {
            let md = try markdown((redact ? ["--redact"] : []) + (try Self.keyArgs(Repo.captures + "/" + name)) + [Repo.captures + "/" + name])
            let blocks = MermaidSubset.blocks(in: md)
            let failures = want.filter { !["success", "incomplete"].contains($0.label) }.count
            #expect(blocks.count == failures, "\(name): \(blocks.count) diagrams for \(failures) failed attempts")
            for b in blocks {
                do { _ = try MermaidSubset.parse(b) } catch { Issue.record("\(name): \(error)\n\(b)") }
            }
            #expect(md.contains("- **Wireshark:** `ip"), "\(name): no Wireshark filter")
            if redact {
                let v4 = Set(md.split { !($0.isNumber || $0 == ".") }.map { $0.hasSuffix(".") ? String($0.dropLast()) : String($0) })
                for original in ["192.0.2.10", "198.51.100.20", "192.0.2.1", "198.51.100.99", "203.0.113.53"] {
                    #expect(!v4.contains(original), "\(name): --redact left \(original)")
                }
                for original in ["2001:db8:1::10", "2001:db8:2::20", "alice"] {
                    #expect(!md.contains(original), "\(name): --redact left \(original)")
                }
            }
        }
    }

    /// The record a CredSSP exchange reached is drawn even past the repeated records: in
    /// eua-access-denied the Early User Authorization Result is the seventh (a TLS 1.3 session
    /// ticket counts as one), with the key log and without.
    @Test func ladderDrawsWhereCredSSPGotTo() throws {
        let base = Repo.captures + "/eua-access-denied"
        for keyLog in [nil, base + ".keys"] {
            let attempt = try #require(analyze(base + ".pcap", keyLog: keyLog).attempts.first)
            let cs = try #require(attempt.facts.rdp.credssp)
            let at = try #require(cs.reachedAt)
            #expect(cs.phase == .earlyUserAuthorization && cs.records.count > Ladder.maxRepeats)
            let ladder = Ladder.build(attempt)
            let drawn = ladder.messages.filter { $0.frame == at.frame }
            #expect(drawn.count == 1 && drawn.first?.text.hasSuffix(": Early User Authorization Result") == true, "\(drawn)")
            #expect(drawn.first?.from == .server)
        }
    }

    /// Names from the capture cannot break out of the diagram: every character Mermaid or the
    /// Markdown fence reads as syntax becomes an entity code.
    @Test func hostileTextStaysText() throws {
        let nasty = "x;y#z %%{init} <b>&amp;</b> ```\nend \"q\" `"
        let escaped = Ladder.escape(nasty)
        try MermaidSubset.checkText(escaped, line: 1)
        #expect(!escaped.contains("\n"))
        let attempt = try #require(analyze(Repo.captures + "/rst-refused.pcap").attempts.first)
        var ladder = Ladder.build(attempt)
        ladder.client = nasty
        ladder.messages[0].text = nasty
        let source = ladder.mermaid().joined(separator: "\n")
        let parsed = try MermaidSubset.parse(source)
        #expect(parsed.participants.count == 2 && parsed.messages.count == ladder.messages.count)
        #expect(MermaidSubset.blocks(in: "```mermaid\n\(source)\n```\n").count == 1)
        // The parser itself refuses what Mermaid would misread.
        #expect(throws: MermaidSubset.ParseError.self) { try MermaidSubset.parse("sequenceDiagram\n    participant C as a;b") }
        #expect(throws: MermaidSubset.ParseError.self) {
            try MermaidSubset.parse("sequenceDiagram\n    participant C as c\n    C->>S: x")
        }
        #expect(throws: MermaidSubset.ParseError.self) { try MermaidSubset.parse("sequenceDiagram\n    rect rgb(1, 2, 3)") }
    }

    /// The summary comes before the attempts, names every verdict with its attempts and
    /// answers `--reported` with a pointer; successes take one line in text.
    /// retry-then-success was made as two refused attempts, a client that gave up, a success.
    @Test func summaryFirst() throws {
        let capture = Repo.captures + "/retry-then-success.pcap"
        let text = try Run.program(Repo.executable, ["analyze", "--color", "never", "--reported", "0x204", capture]).stdout
        let lines = text.split(separator: "\n").map(String.init)
        let firstAttempt = try #require(lines.firstIndex { $0.hasPrefix("  #1 ") })
        let verdicts = try #require(lines.firstIndex { $0 == "  Verdicts" })
        let reported = try #require(lines.firstIndex { $0.hasPrefix("  Reported 0x204") })
        let story = try #require(lines.firstIndex { $0 == "  Story" })
        #expect(verdicts < firstAttempt && reported < firstAttempt && story < firstAttempt)
        #expect(lines[reported].hasSuffix("See #1, #2 below."))
        #expect(lines.contains { $0.hasPrefix("    rst-refused") && $0.hasSuffix("2  #1, #2") })
        // The success: one line, not a block.
        let success = try #require(lines.firstIndex { $0.hasPrefix("  #4 ") })
        #expect(lines[success].contains("success") && lines[success].contains("frames 15–175"))
        #expect(success == lines.count - 1, "the success should be the last line: \(lines.suffix(3))")
        // Asked for by number, it gets its block.
        let one = try Run.program(Repo.executable, ["analyze", "--color", "never", "--attempt", "4", capture]).stdout
        #expect(one.contains("Confidence: high") && one.contains("Wireshark: ip.addr==192.0.2.10"))

        let md = try markdown(["--reported", "0x204", capture])
        let table = try #require(md.range(of: "| Verdict | Attempts | Which |"))
        let first = try #require(md.range(of: "### Attempt 1:"))
        #expect(table.lowerBound < first.lowerBound)
        #expect(md.contains("| `rst-refused` | 2 | [#1](#attempt-1), [#2](#attempt-2) |"))
        #expect(md.contains("Attempts: [#1](#attempt-1), [#2](#attempt-2)."))
        #expect(md.contains("<a id=\"attempt-1\"></a>"))
    }

    /// Several servers get a line each, most failures first: icmp-host-unreachable was made
    /// with two attempts to the dead 198.51.100.99, rst-refused with two refused attempts to
    /// 198.51.100.20; merged, they are one capture of four attempts to two servers.
    @Test func severalServersAreCountedApart() throws {
        let mergecap = Run.tool("mergecap")
        guard Prerequisite.runs(mergecap != nil) else {
            print("skipped: mergecap is not installed (scripts/test installs it with tshark)")
            return
        }
        let tool = try #require(mergecap, "mergecap is missing (CI installs it with scripts/test)")
        let merged = FileManager.default.temporaryDirectory.appendingPathComponent("rdptriage-two-servers-\(UUID().uuidString).pcap").path
        defer { try? FileManager.default.removeItem(atPath: merged) }
        let m = try Run.program(
            tool, ["-F", "pcap", "-a", "-w", merged, Repo.captures + "/icmp-host-unreachable.pcap", Repo.captures + "/rst-refused.pcap"])
        try #require(m.status == 0, "mergecap: \(m.stderr)")
        let text = try Run.program(Repo.executable, ["analyze", "--color", "never", merged]).stdout
        let lines = text.split(separator: "\n").map(String.init)
        let by = try #require(lines.firstIndex(of: "  By server"))
        #expect(lines[by + 1].hasPrefix("    198.51.100.") && lines[by + 1].contains("2 failed of 2"))
        #expect(Set([lines[by + 1], lines[by + 2]]) == [
            "    198.51.100.99:3389: 2 failed of 2 (2 icmp-unreachable)", "    198.51.100.20:3389: 2 failed of 2 (2 rst-refused)",
        ])
        let md = try markdown([merged])
        #expect(md.contains("| 198.51.100.99:3389 | 2 | 2 | 2 icmp-unreachable |"))
        #expect(md.contains("| 198.51.100.20:3389 | 2 | 2 | 2 rst-refused |"))
        // One server: no table by server.
        #expect(!(try markdown([Repo.captures + "/rst-refused.pcap"])).contains("| Server |"))
    }

    /// The display filter is paste-ready: tshark accepts it and it selects the attempt's own
    /// frames (its first and last, every evidence frame), none of another attempt's.
    @Test(arguments: labCaptures)
    func wiresharkFilterSelectsTheAttempt(_ name: String) throws {
        let tshark = Run.tool("tshark")
        guard Prerequisite.runs(tshark != nil) else {
            print("skipped: tshark is not installed (scripts/test installs it)")
            return
        }
        let path = try #require(tshark, "tshark is missing (CI installs it with scripts/test)")
        let capture = Repo.captures + "/" + name
        let attempts = analyze(capture).attempts
        for a in attempts {
            let hint = WiresharkHint(a.facts)
            var args = ["-r", capture, "-Y", hint.displayFilter, "-T", "fields", "-e", "frame.number"]
            if let d = hint.decodeAs { args = d.option.split(separator: " ").map(String.init) + args }
            let r = try Run.program(path, args)
            #expect(r.status == 0, "\(name): tshark refused \(hint.displayFilter): \(r.stderr)")
            let frames = Set(r.stdout.split(separator: "\n").compactMap { Int($0) })
            let t = a.facts.tcp
            #expect(frames.contains(t.first.frame) && frames.contains(t.last.frame), "\(name) #\(t.id + 1): \(hint.displayFilter)")
            for e in a.verdict.evidence {
                guard let f = e.frame, !e.what.hasPrefix("DNS") else { continue }
                #expect(frames.contains(f), "\(name) #\(t.id + 1): evidence frame \(f) (\(e.what)) not selected")
            }
            for other in attempts where other.facts.tcp.id != t.id && other.facts.tcp.client != t.client {
                #expect(!frames.contains(other.facts.tcp.first.frame), "\(name): the filter of #\(t.id + 1) selects #\(other.facts.tcp.id + 1)")
            }
        }
    }

    /// The Markdown renders as meant in a real CommonMark renderer (markdown-it-py, with the
    /// table extension GitHub, GitLab and Azure DevOps have): the summary is a table, every
    /// diagram reaches the page unchanged as a `language-mermaid` block, and every link to an
    /// attempt lands on an anchor of the page.
    @Test(arguments: labCaptures)
    func markdownRenders(_ name: String) throws {
        let python = "/usr/bin/python3"
        let present = FileManager.default.isExecutableFile(atPath: python)
            && (try? Run.program(python, ["-c", "import markdown_it"]).status) == 0
        guard Prerequisite.runs(present) else {
            print("skipped: markdown-it-py for /usr/bin/python3 is missing (apt python3-markdown-it; scripts/test installs it)")
            return
        }
        #expect(present, "markdown-it-py is missing (scripts/test installs python3-markdown-it)")
        let md = try markdown(["--reported", "0x904/0x7", Repo.captures + "/" + name])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rdptriage-md-\(UUID().uuidString).md")
        try md.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import html, json, re, sys
            from markdown_it import MarkdownIt
            src = open(sys.argv[1], encoding="utf-8").read()
            out = MarkdownIt("commonmark").enable("table").render(src)
            blocks = [html.unescape(b) for b in re.findall(r'<pre><code class="language-mermaid">(.*?)</code></pre>', out, re.S)]
            print(json.dumps({"tables": out.count("<table>"), "mermaid": blocks,
                "links": re.findall(r'href="#([^"]*)"', out), "ids": re.findall(r' id="([^"]*)"', out),
                "headings": len(re.findall(r"<h3>Attempt ", out)), "scripts": out.count("<script")}))
            """
        let r = try Run.program(python, ["-c", script, file.path])
        try #require(r.status == 0, "markdown-it failed: \(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((json["tables"] as? Int ?? 0) >= 2, "\(name): summary and attempt tables should render as tables")
        let rendered = json["mermaid"] as? [String] ?? []
        let written = MermaidSubset.blocks(in: md)
        #expect(rendered.map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 } == written, "\(name): diagrams changed on the way")
        let ids = Set(json["ids"] as? [String] ?? [])
        for link in json["links"] as? [String] ?? [] { #expect(ids.contains(link), "\(name): link #\(link) has no anchor") }
        #expect((json["headings"] as? Int ?? 0) == (try Self.expected(Repo.captures + "/" + name)).count)
        #expect((json["scripts"] as? Int ?? 1) == 0)
    }
}
