import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// The terminal report: one block per attempt, colour on a terminal, plain otherwise.
public final class TextReport: AnalysisSink {
    let out: ReportOutput
    let options: ReportOptions
    let color: Bool
    private var digest: InputDigest

    public init(output: ReportOutput, options: ReportOptions) {
        out = output
        self.options = options
        digest = InputDigest(options)
        switch options.color {
        case .always: color = true
        case .never: color = false
        case .auto: color = output.isTerminal && !environmentSays("NO_COLOR") && !terminalIsDumb()
        }
    }

    func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
    func bold(_ s: String) -> String { paint(s, "1") }

    func labelColor(_ l: Label) -> String {
        switch l {
        case .success: "32"
        case .incomplete: "33"
        default: "31"
        }
    }

    func emit(_ s: String) { out.line(options.redactor?.apply(s) ?? s) }

    public func begin(_ input: InputInfo) {
        digest = InputDigest(options)
        var head = input.input == "-" ? "standard input" : Printable.escapingControls(input.input)
        if let lt = input.linkType { head += " (\(lt))" }
        emit(bold(head))
        lastWasBlock = true
    }

    public func attempt(_ a: Attempt) {
        // Stories and summaries name hidden attempts' hosts too: every attempt is learned.
        options.redactor?.register(a)
        guard digest.add(a) else { return }
        text.truncate(to: 0)
        let full = a.verdict.label != .success || options.verbose || options.onlyAttempts?.contains(a.facts.tcp.id + 1) == true
        if full {
            block(a, into: &text)
        } else {
            successLine(a, into: &text, afterBlock: lastWasBlock)
        }
        lastWasBlock = full
        if let redactor = options.redactor {
            let redacted = redactor.apply(text.text(from: 0))
            text.truncate(to: 0)
            text.append(redacted)
        }
        text.append(0x0A)
        // Live writes each block as it comes; a file's report holds them behind its summary.
        text.withBytes { streaming ? out.write(bytes: $0) : spool.write($0) }
    }

    /// Live: each attempt is written as it comes (its caller flushes), and the summary follows
    /// them at the end, instead of coming first with the attempts spooled behind it.
    public var streaming = false

    /// The block being written (reused: a large capture has a block per attempt).
    private var text = OutputBytes(capacity: 4096)
    /// The input's attempts, written after its summary (`end`).
    private let spool = ReportSpool()
    private var lastWasBlock = true

    /// A success in one line: the summary sentence, its frames and duration (`--attempt N` or
    /// verbose shows the whole block).
    func successLine(_ a: Attempt, into b: inout OutputBytes, afterBlock: Bool) {
        let t = a.facts.tcp
        if afterBlock { b.append(0x0A) }
        b.append("  #")
        b.append(decimal: t.id + 1)
        b.append("  ")
        b.append(endpoint: t.client)
        b.append(" → ")
        b.append(endpoint: t.server)
        b.append("  ")
        b.append(bold(paint(a.verdict.label.rawValue, labelColor(a.verdict.label))))
        b.append("  ")
        b.append(a.verdict.summary)
        b.append(" (frames ")
        b.append(decimal: t.first.frame)
        b.append("–")
        b.append(decimal: t.last.frame)
        b.append(", ")
        b.append(t.durationSeconds < 0 ? "duration unknown" : Format.seconds(t.durationSeconds))
        b.append(")")
    }

    /// One attempt's block, without its final newline, appended to `b`.
    func block(_ a: Attempt, into b: inout OutputBytes) {
        let t = a.facts.tcp
        let v = a.verdict
        b.append("\n  #")
        b.append(decimal: t.id + 1)
        b.append("  ")
        b.append(endpoint: t.client)
        b.append(" → ")
        b.append(endpoint: t.server)
        b.append("  ")
        b.append(bold(paint(v.label.rawValue, labelColor(v.label))))
        b.append("  [")
        b.append(v.cause.rawValue)
        b.append(", ")
        b.append(v.stage.rawValue)
        b.append(", ended by ")
        b.append(v.endedBy.rawValue)
        b.append(", ")
        b.append(v.confidence.level.rawValue)
        b.append(" confidence]\n      ")
        b.append(v.summary)
        b.append(0x0A)
        if let c = v.clientReport, v.isFailure {
            b.append("      Windows client most likely showed: ")
            b.append(c.display)
            b.append(" — ")
            b.append(c.meaning)
            b.append(0x0A)
        }
        for d in v.details {
            b.append("      · ")
            b.append(d)
            b.append(0x0A)
        }
        b.append("      Confidence: ")
        b.append(v.confidence.level.rawValue)
        b.append(" — ")
        b.append(v.confidence.reason)
        b.append(0x0A)
        if !v.evidence.isEmpty {
            b.append("      Evidence:\n")
            for e in v.evidence {
                b.append("        ")
                let start = b.count
                if let f = e.frame {
                    b.append("frame ")
                    b.append(decimal: UInt64(clamping: f))
                } else {
                    b.append("—")
                }
                b.pad(from: start, to: 11)
                let timeStart = b.count
                if let time = e.time {
                    b.append("  ")
                    b.append(Format.relative(time, from: t.first.time))
                    b.append(" s")
                }
                b.pad(from: timeStart, to: 16)
                b.append("  ")
                b.append(e.what)
                b.append(0x0A)
            }
        }
        b.append("      ")
        Format.tcpLine(t, verdictEnder: v.endedBy, into: &b)
        wiresharkLines(a.facts, into: &b)
        if !v.remediation.isEmpty {
            b.append("\n      What to do:")
            for (i, step) in v.remediation.enumerated() {
                b.append("\n        ")
                b.append(decimal: i + 1)
                b.append(". ")
                b.append(step)
            }
        }
    }

    func wiresharkLines(_ facts: AttemptFacts, into b: inout OutputBytes) {
        b.append("\n      Wireshark: ")
        WiresharkHint.writeFilter(facts.tcp, into: &b)
        if let d = WiresharkHint.decodeOption(facts) {
            b.append("\n      Decode as: ")
            b.append(d.option)
            b.append(" (Analyze › Decode As…) shows ")
            b.append(d.shows)
        }
    }

    public func end(_ s: InputSummary) {
        summary(s)
        spool.drain(into: out)
        out.flush()
    }

    /// What the input holds, before its attempts: counts, verdicts (and servers when several),
    /// the `--reported` answer, stories, repeated verdicts, what the filters left out.
    func summary(_ s: InputSummary) {
        let byLabel = digest.labelList
        let labels = byLabel.isEmpty ? "" : ": " + byLabel.joined(separator: ", ")
        emit(
            "  \(s.attempts) RDP attempt\(s.attempts == 1 ? "" : "s")\(labels); \(s.failures) failed; \(s.stats.frames) frames read"
                + (s.stats.cutFrames > 0 ? ", \(s.stats.cutFrames) cut by the snapshot length" : "")
                + (s.stats.ipFragments > 0 ? ", \(s.stats.ipFragments) IP fragments (not reassembled)" : "")
                + (s.filteredOut > 0 ? ", \(s.filteredOut) filtered out" : "") + ".")
        if let e = s.error {
            emit(paint("  error: \(Printable.escapingControls(e.description))", "31"))
        }
        if let w = s.warning {
            emit(paint("  warning: \(Printable.escapingControls(w.description)); the complete frames before it were analysed", "33"))
        }
        if s.attempts == 0 && s.error == nil {
            emit("  No RDP connection attempt in this input (TCP 3389, --port ports, or an X.224 Connection Request on any port).")
        }
        let rows = digest.verdictRows()
        if !rows.isEmpty {
            emit("")
            emit(bold("  Verdicts"))
            let width = rows.map { $0.label.rawValue.count }.max() ?? 0
            let countWidth = rows.map { String($0.count).count }.max() ?? 0
            for r in rows {
                let name = r.label.rawValue + String(repeating: " ", count: width - r.label.rawValue.count)
                let count = String(repeating: " ", count: countWidth - String(r.count).count) + String(r.count)
                var which = r.first.map { "#\($0.number)" }.joined(separator: ", ")
                if r.count > r.first.count { which += ", …" }
                emit("    " + paint(name, labelColor(r.label)) + "  \(count)  \(which)")
            }
        }
        let servers = digest.serverRows()
        if servers.count > 1 {
            emit("")
            emit(bold("  By server"))
            for r in servers { emit("    \(r.server): \(r.failed) failed of \(r.attempts) (\(r.labels))") }
        }
        if let code = options.reported, let m = digest.reportedMatch() {
            emit("")
            emit(bold("  Reported \(code)") + ": " + m.explanation + pointer(m))
        }
        if let h = digest.hiddenNote {
            emit("")
            emit(bold("  Hidden without TLS keys") + " (\(h.attempts)): \(h.facts). To read them: \(h.how).")
        }
        let stories = digest.finishStories()
        if !stories.isEmpty {
            emit("")
            emit(bold("  Story"))
            for st in stories { emit("    " + st.narrative) }
            if digest.storiesOmitted > 0 { emit("    … and \(digest.storiesOmitted) more stories, not shown.") }
        }
        let repeated = digest.repeatedVerdicts()
        if !repeated.isEmpty {
            emit("")
            emit(bold("  Repeated verdicts, counted instead of shown"))
            for r in repeated.prefix(InputDigest.maxRepeatLines) { emit("    " + r.sentence + ".") }
            if repeated.count > InputDigest.maxRepeatLines {
                emit("    … and \(repeated.count - InputDigest.maxRepeatLines) more groups of repeated verdicts.")
            }
            if let line = digest.repeatsLine { emit("    " + line + ".") }
        }
        if let line = digest.filterLine {
            emit("")
            emit("  " + line + ".")
        }
    }

    /// " See #2 below." for the matched attempts this report shows.
    func pointer(_ m: ReportedMatch) -> String {
        let shown = m.attempts.filter { digest.shownMatches.contains($0) }.prefix(5)
        guard !shown.isEmpty else { return m.attempts.isEmpty ? "" : " (Not shown one by one below.)" }
        return " See " + shown.map { "#\($0)" }.joined(separator: ", ") + (shown.count < m.attempts.count ? ", …" : "") + " below."
    }
}

/// `TERM=dumb` (Emacs shells, some CI logs) shows escape codes as they are.
func terminalIsDumb() -> Bool {
    guard let v = getenv("TERM") else { return false }
    return String(cString: v) == "dumb"
}

func environmentSays(_ name: String) -> Bool {
    guard let v = getenv(name) else { return false }
    return v.pointee != 0
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif


