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
        digest = InputDigest(reported: options.reported)
        switch options.color {
        case .always: color = true
        case .never: color = false
        case .auto: color = output.isTerminal && !environmentSays("NO_COLOR")
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
        digest = InputDigest(reported: options.reported)
        var head = input.input == "-" ? "standard input" : input.input
        if let lt = input.linkType { head += " (\(lt))" }
        emit(bold(head))
    }

    public func attempt(_ a: Attempt) {
        options.redactor?.register(a)
        digest.add(a)
        emit(block(a))
    }

    /// One attempt's block, without its final newline.
    func block(_ a: Attempt) -> String {
        let t = a.facts.tcp
        let v = a.verdict
        // The block is built whole and written once: a large capture has many of them.
        var block = "\n"
        block.reserveCapacity(2048)
        block += "  #"
        block += String(t.id + 1)
        block += "  "
        block += t.client.description
        block += " → "
        block += t.server.description
        block += "  "
        block += bold(paint(v.label.rawValue, labelColor(v.label)))
        block += "  ["
        block += v.cause.rawValue
        block += ", "
        block += v.stage.rawValue
        block += ", ended by "
        block += v.endedBy.rawValue
        block += ", "
        block += v.confidence.level.rawValue
        block += " confidence]\n      "
        block += v.summary
        block += "\n"
        if let c = v.clientReport, v.isFailure {
            block += "      Windows client: "
            block += c.display
            block += " — "
            block += c.meaning
            block += "\n"
        }
        for d in v.details {
            block += "      · "
            block += d
            block += "\n"
        }
        block += "      Confidence: "
        block += v.confidence.level.rawValue
        block += " — "
        block += v.confidence.reason
        block += "\n"
        if !v.evidence.isEmpty {
            block += "      Evidence:\n"
            for e in v.evidence {
                let frame = e.frame.map { "frame " + String($0) } ?? "—"
                let when = e.time.map { "  " + Format.relative($0, from: t.first.time) + " s" } ?? ""
                block += "        "
                block += frame.padded(11)
                block += when.padded(16)
                block += "  "
                block += e.what
                block += "\n"
            }
        }
        block += "      "
        block += Format.tcpLine(t)
        block += "\n"
        if !v.remediation.isEmpty {
            block += "      What to do:\n"
            for (i, step) in v.remediation.enumerated() {
                block += "        "
                block += String(i + 1)
                block += ". "
                block += step
                block += "\n"
            }
        }
        block.removeLast()
        return block
    }

    public func end(_ s: InputSummary) {
        if let e = s.error {
            emit("")
            emit(paint("  error: \(e.description)", "31"))
        }
        let stories = digest.finishStories()
        if !stories.isEmpty {
            emit("")
            emit(bold("  Story"))
            for st in stories { emit("    " + st.narrative) }
        }
        if let code = options.reported, let m = digest.reportedMatch() {
            emit("")
            emit(bold("  Reported \(code)") + ": " + m.explanation)
        }
        emit("")
        let byLabel = digest.labelList
        let labels = byLabel.isEmpty ? "" : ": " + byLabel.joined(separator: ", ")
        emit(
            "  \(s.attempts) RDP attempt\(s.attempts == 1 ? "" : "s")\(labels); \(s.failures) failed; \(s.stats.frames) frames read"
                + (s.stats.cutFrames > 0 ? ", \(s.stats.cutFrames) cut by the snapshot length" : "")
                + (s.stats.ipFragments > 0 ? ", \(s.stats.ipFragments) IP fragments (not reassembled)" : "")
                + (s.filteredOut > 0 ? ", \(s.filteredOut) filtered out" : "") + ".")
        if s.attempts == 0 && s.error == nil {
            emit("  No RDP connection attempt in this input (TCP 3389, --port ports, or an X.224 Connection Request on any port).")
        }
        out.flush()
    }
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

extension String {
    func padded(_ n: Int) -> String {
        // Padding by characters: the unicode scalars count is the same here (no combining marks).
        let width = unicodeScalars.count
        return width >= n ? self : self + String(repeating: " ", count: n - width)
    }
}

