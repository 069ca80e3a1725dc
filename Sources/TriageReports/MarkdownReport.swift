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

    func emit(_ s: String = "") { out.line(options.redactor?.apply(s) ?? s) }

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
        emit("## rdptriage: \(Self.code(input.input == "-" ? "standard input" : Printable.escapingControls(input.input)))")
        emit()
    }

    public func attempt(_ a: Attempt) {
        options.redactor?.register(a)
        let t = a.facts.tcp
        let v = a.verdict
        guard digest.add(a) else { return }
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
        if !v.remediation.isEmpty {
            emit("**What to do**")
            emit()
            for (i, step) in v.remediation.enumerated() { emit("\(i + 1). \(step)") }
            emit()
        }
    }

    public func end(_ s: InputSummary) {
        if let e = s.error {
            emit("> **Input error:** \(prose(Printable.escapingControls(e.description)))")
            emit()
        }
        if let w = s.warning {
            emit("> **Input warning:** \(prose(Printable.escapingControls(w.description))); the complete frames before it were analysed")
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
        if let code = options.reported, let m = digest.reportedMatch() {
            emit("### Reported \(code)")
            emit()
            emit(prose(m.explanation))
            emit()
        }
        if let line = digest.filterLine { emit("_\(prose(line))._") ; emit() }
        emit("_\(s.attempts) RDP attempt\(s.attempts == 1 ? "" : "s"), \(s.failures) failed; \(s.stats.frames) frames. Generated by \(ReportSchema.generator)._")
        emit()
        out.flush()
    }
}
