import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// The machine-readable report (schema `rdptriage.report`, version in `ReportSchema`),
/// written as it goes: one JSON document, attempts streamed in. Keys are snake_case, in the
/// order the types declare them.
public final class JSONReport: AnalysisSink {
    let out: ReportOutput
    let options: ReportOptions
    private var inputCount = 0
    private var attemptsInInput = 0
    private var digest: InputDigest
    private var totals = RunTotals()
    private var started = false

    public init(output: ReportOutput, options: ReportOptions) {
        out = output
        self.options = options
        digest = InputDigest(options)
    }

    /// Encodes a value to sit at `level` inside the document.
    func encode<T: Encodable>(_ value: T, level: Int) -> String {
        guard let s = try? JSONWriter.encode(value, level: level) else { return "null" }
        return options.redactor?.apply(s) ?? s
    }

    func string(_ s: String) -> String { encode(s, level: 0) }

    func startDocument() {
        guard !started else { return }
        started = true
        out.line("{")
        out.line("  \"schema\": \(string(ReportSchema.name)),")
        out.line("  \"schema_version\": \(ReportSchema.version),")
        out.line("  \"generator\": \(string(ReportSchema.generator)),")
        out.write("  \"inputs\": [")
    }

    public func begin(_ input: InputInfo) {
        startDocument()
        out.write(inputCount == 0 ? "\n" : ",\n")
        inputCount += 1
        attemptsInInput = 0
        digest = InputDigest(options)
        out.line("    {")
        out.line("      \"input\": \(string(input.input)),")
        out.line("      \"link_type\": \(input.linkType.map(string) ?? "null"),")
        out.write("      \"attempts\": [")
    }

    public func attempt(_ a: Attempt) {
        guard let redactor = options.redactor else { return attempt(a, prerendered: Self.render(a)) }
        // Redaction learns the attempt's names first, then rewrites its text.
        redactor.register(a)
        attempt(a, prerendered: Array(encode(AttemptRecord(a), level: 4).utf8))
    }

    /// An attempt as the document holds it, at its indentation.
    static func render(_ a: Attempt) -> [UInt8] {
        (try? JSONWriter.bytes(AttemptRecord(a), level: 4, capacity: 12 * 1024)) ?? Array("null".utf8)
    }

    public func end(_ s: InputSummary) {
        out.line(attemptsInInput == 0 ? "]," : "\n      ],")
        out.line("      \"stories\": \(encode(digest.finishStories(), level: 3)),")
        // Only when some were left out, so that reports of ordinary captures keep their shape.
        if digest.storiesOmitted > 0 { out.line("      \"stories_not_shown\": \(digest.storiesOmitted),") }
        let repeated = digest.repeatedVerdicts()
        if !repeated.isEmpty {
            out.line("      \"repeated_verdicts\": \(encode(Array(repeated.prefix(InputDigest.maxRepeatLines)), level: 3)),")
            out.line("      \"attempts_not_shown\": \(digest.notShown),")
            out.line("      \"clients\": \(digest.clientCount),")
            out.line("      \"attempts_answered\": \(digest.answered),")
        }
        if let m = digest.reportedMatch() {
            out.line("      \"reported\": \(encode(m, level: 3)),")
        }
        out.line("      \"stats\": \(encode(s.stats, level: 3)),")
        out.line("      \"filtered_out\": \(s.filteredOut),")
        out.line("      \"peak_reassembly_bytes\": \(s.peakReassemblyBytes),")
        out.line("      \"error\": \(s.error.map { encode($0, level: 3) } ?? "null"),")
        // Only when there is one, so that reports of whole files keep their shape.
        if let w = s.warning { out.line("      \"warning\": \(encode(w, level: 3)),") }
        out.line("      \"summary\": {\"attempts\": \(s.attempts), \"failures\": \(s.failures)}")
        out.write("    }")
        totals.add(s)
    }

    /// Closes the document with the run's totals and exit code.
    public func finish(exitCode: Int32) {
        startDocument()
        out.line(inputCount == 0 ? "]," : "\n  ],")
        out.line(
            "  \"summary\": {\"inputs\": \(totals.inputs), \"input_errors\": \(totals.errors), \"attempts\": \(totals.attempts), \"failures\": \(totals.failures), \"exit_code\": \(exitCode)}"
        )
        out.line("}")
        out.flush()
    }
}

extension JSONReport: PrerenderingSink {
    public var prerender: (@Sendable (Attempt) -> [UInt8])? {
        guard options.redactor == nil else { return nil }
        return { @Sendable a in JSONReport.render(a) }
    }

    public func attempt(_ a: Attempt, prerendered: [UInt8]) {
        guard digest.add(a) else { return }
        out.write(attemptsInInput == 0 ? "\n        " : ",\n        ")
        attemptsInInput += 1
        out.write(bytes: prerendered)
    }
}
