import Foundation
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// A report made for pasting into a ticket: summary line, handshake timeline, evidence
/// table and remediation, per attempt.
public final class MarkdownReport: AnalysisSink {
    let out: ReportOutput
    let options: ReportOptions
    private var digest: InputDigest

    public init(output: ReportOutput, options: ReportOptions) {
        out = output
        self.options = options
        digest = InputDigest(options)
    }

    /// Lines go to the spool while attempts stream past (the summary comes first, once known).
    func emit(_ s: String = "") {
        let line = options.redactor?.apply(s) ?? s
        if spooling { spool.line(line) } else { out.line(line) }
    }

    private let spool = ReportSpool()
    private var spooling = false
    /// Inputs begun so far: anchors of later inputs carry their number, so that links stay
    /// unique in a report of several files.
    private var inputs = 0

    /// Prose that can hold text from the capture (names, banners, certificate fields): redacted
    /// first (escaping would hide a name from the redactor), then escaped so that it renders
    /// as written, also inside a table cell.
    func prose(_ s: String) -> String { Self.escape(options.redactor?.apply(s) ?? s) }

    /// Markdown that renders as the text reads: HTML is written as entities, and the
    /// characters that start links, emphasis, code or strikethrough, or end a table cell, are
    /// backslash-escaped (`_` only where it could open emphasis: PROTOCOL_SSL stays as it is).
    /// Control characters are already escaped where text leaves the capture (Printable).
    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { special.contains($0) || $0 == 0x0A }) else { return s }
        let bytes = Array(s.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        for (i, b) in bytes.enumerated() {
            switch b {
            case UInt8(ascii: "<"): out += Array("&lt;".utf8)
            case UInt8(ascii: ">"): out += Array("&gt;".utf8)
            case UInt8(ascii: "&"): out += Array("&amp;".utf8)
            case 0x0A: out.append(UInt8(ascii: " "))
            case UInt8(ascii: "_"):
                let inWord = i > 0 && i + 1 < bytes.count && isWordByte(bytes[i - 1]) && isWordByte(bytes[i + 1])
                if !inWord { out.append(UInt8(ascii: "\\")) }
                out.append(b)
            case _ where special.contains(b):
                out.append(UInt8(ascii: "\\"))
                out.append(b)
            default: out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let special: Set<UInt8> = Set("\\`*_[]<>&~|".utf8)

    static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b >= 0x80
    }

    /// A code span that holds `s` whatever it contains: fenced by more backticks than any run
    /// inside it (CommonMark 6.1), on one line.
    static func code(_ s: String) -> String {
        let line = s.replacingOccurrences(of: "\n", with: " ")
        var longest = 0
        var run = 0
        for c in line.utf8 {
            run = c == UInt8(ascii: "`") ? run + 1 : 0
            longest = max(longest, run)
        }
        let fence = String(repeating: "`", count: longest + 1)
        let pad = line.hasPrefix("`") || line.hasSuffix("`") ? " " : ""
        return fence + pad + line + pad + fence
    }

    public func begin(_ input: InputInfo) {
        digest = InputDigest(options)
        inputs += 1
        spooling = false
        emit("## rdptriage: \(Self.code(input.input == "-" ? "standard input" : Printable.escapingControls(input.input)))")
        emit()
        spooling = true
    }

    /// The anchor of attempt `n` of this input.
    func anchor(_ n: Int) -> String { inputs > 1 ? "input\(inputs)-attempt-\(n)" : "attempt-\(n)" }

    public func attempt(_ a: Attempt) {
        options.redactor?.register(a)
        let t = a.facts.tcp
        let v = a.verdict
        guard digest.add(a) else { return }
        emit("<a id=\"\(anchor(t.id + 1))\"></a>")
        emit()
        emit("### Attempt \(t.id + 1): `\(v.label.rawValue)` — \(t.client) → \(t.server)")
        emit()
        emit("**\(prose(v.summary))**")
        emit()
        emit("| | |")
        emit("|---|---|")
        emit("| Cause | `\(v.cause.rawValue)` |")
        emit("| Stage | `\(v.stage.rawValue)` |")
        emit("| Ended by | \(v.endedBy.rawValue) |")
        emit("| Confidence | \(v.confidence.level.rawValue): \(prose(v.confidence.reason)) |")
        if let c = v.clientReport, v.isFailure { emit("| Windows client most likely showed | \(c.display): \(prose(c.meaning)) |") }
        emit("| Started | \(t.first.time.iso8601) (frame \(t.first.frame)) |")
        emit("| TCP | \(prose(Format.tcpLine(t, verdictEnder: v.endedBy))) |")
        emit()
        if !v.details.isEmpty {
            for d in v.details { emit("- \(prose(d))") }
            emit()
        }
        emit("**Timeline and evidence**")
        emit()
        emit("| Frame | Time (s) | What |")
        emit("|---:|---:|---|")
        for e in v.evidence {
            emit("| \(e.frame.map(String.init) ?? "—") | \(Format.relative(e.time, from: t.first.time)) | \(prose(e.what)) |")
        }
        emit()
        wireshark(WiresharkHint(a.facts))
        if v.isFailure { ladder(a) }
        if !v.remediation.isEmpty {
            emit("**What to do**")
            emit()
            for (i, step) in v.remediation.enumerated() { emit("\(i + 1). \(step)") }
            emit()
        }
    }

    /// The paste-ready display filter, and the Decode As option where Wireshark needs one.
    func wireshark(_ w: WiresharkHint) {
        emit("- **Wireshark:** \(Self.code(w.displayFilter))")
        if let d = w.decodeAs { emit("- **Decode as:** \(Self.code(d.option)) (Analyze › Decode As…) shows \(Self.escape(d.shows)).") }
        emit()
    }

    /// The attempt as a sequence diagram. Names and addresses are redacted before they are
    /// escaped for Mermaid, so the redactor sees them as they are.
    func ladder(_ a: Attempt) {
        let lines = Ladder.build(a).mermaid { [options] in options.redactor?.apply($0) ?? $0 }
        emit("**What happened**")
        emit()
        emit("```mermaid")
        for line in lines { emit(line) }
        emit("```")
        emit()
    }

    public func end(_ s: InputSummary) {
        spooling = false
        summary(s)
        spool.drain(into: out)
        emit("_\(s.attempts) RDP attempt\(s.attempts == 1 ? "" : "s"), \(s.failures) failed; \(s.stats.frames) frames. Generated by \(ReportSchema.generator)._")
        emit()
        out.flush()
    }

    /// A link to attempt `n` when this report shows it, else its number.
    func link(_ n: Int, shown: Bool) -> String { shown ? "[#\(n)](#\(anchor(n)))" : "#\(n)" }

    /// What the input holds, before its attempts.
    func summary(_ s: InputSummary) {
        emit("**\(s.attempts) RDP attempt\(s.attempts == 1 ? "" : "s"), \(s.failures) failed**; \(s.stats.frames) frames"
            + (s.filteredOut > 0 ? ", \(s.filteredOut) filtered out" : "") + ".")
        emit()
        if let e = s.error {
            emit("> **Input error:** \(prose(Printable.escapingControls(e.description)))")
            emit()
        }
        if let w = s.warning {
            emit("> **Input warning:** \(prose(Printable.escapingControls(w.description))); the complete frames before it were analysed")
            emit()
        }
        let rows = digest.verdictRows()
        if !rows.isEmpty {
            emit("| Verdict | Attempts | Which |")
            emit("|---|---:|---|")
            for r in rows {
                var which = r.first.map { link($0.number, shown: $0.shown) }.joined(separator: ", ")
                if r.count > r.first.count { which += ", …" }
                emit("| `\(r.label.rawValue)` | \(r.count) | \(which) |")
            }
            emit()
        }
        let servers = digest.serverRows()
        if servers.count > 1 {
            emit("| Server | Attempts | Failed | Verdicts |")
            emit("|---|---:|---:|---|")
            for r in servers { emit("| \(r.server) | \(r.attempts) | \(r.failed) | \(r.labels) |") }
            emit()
        }
        if let code = options.reported, let m = digest.reportedMatch() {
            emit("### Reported \(code)")
            emit()
            emit(prose(m.explanation))
            let shown = m.attempts.prefix(20).map { link($0, shown: digest.shownMatches.contains($0)) }
            if !shown.isEmpty {
                emit()
                emit("Attempts: " + shown.joined(separator: ", ") + (m.attempts.count > shown.count ? ", …" : "") + ".")
            }
            emit()
        }
        if let h = digest.hiddenNote {
            emit("### Hidden without TLS keys")
            emit()
            emit(prose("\(h.single ? "Attempt" : "Attempts") \(h.attempts): \(h.facts)."))
            emit()
            for way in digest.hiddenWays { emit("- " + prose(way)) }
            emit()
        }
        let stories = digest.finishStories()
        if !stories.isEmpty {
            emit("### Story")
            emit()
            for st in stories { emit("- \(prose(st.narrative))") }
            if digest.storiesOmitted > 0 { emit("- … and \(digest.storiesOmitted) more stories, not shown.") }
            emit()
        }
        let repeated = digest.repeatedVerdicts()
        if !repeated.isEmpty {
            emit("### Repeated verdicts, counted instead of shown")
            emit()
            for r in repeated.prefix(InputDigest.maxRepeatLines) { emit("- \(prose(r.sentence)).") }
            if repeated.count > InputDigest.maxRepeatLines {
                emit("- … and \(repeated.count - InputDigest.maxRepeatLines) more groups of repeated verdicts.")
            }
            emit()
            if let line = digest.repeatsLine { emit(prose(line) + ".") }
            emit()
        }
        if let line = digest.filterLine {
            emit("_\(prose(line))._")
            emit()
        }
    }
}
