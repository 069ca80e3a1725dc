import Foundation
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// The machine-readable report (schema `rdptriage.report`, version in `ReportSchema`),
/// written as it goes: one JSON document, attempts streamed in.
public final class JSONReport: AnalysisSink {
    let out: ReportOutput
    let options: ReportOptions
    let encoder: JSONEncoder
    private var inputCount = 0
    private var attemptsInInput = 0
    private var digest: InputDigest
    private var totals = (inputs: 0, errors: 0, attempts: 0, failures: 0)
    private var started = false

    public init(output: ReportOutput, options: ReportOptions) {
        out = output
        self.options = options
        digest = InputDigest(reported: options.reported)
        encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    }

    /// Encodes a value and indents it to sit at `level` inside the document.
    func encode<T: Encodable>(_ value: T, level: Int) -> String {
        guard let data = try? encoder.encode(value) else { return "null" }
        var s = String(decoding: data, as: UTF8.self)
        if let r = options.redactor { s = r.apply(s) }
        let pad = String(repeating: "  ", count: level)
        return s.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .map { $0.offset == 0 ? String($0.element) : pad + $0.element }.joined(separator: "\n")
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
        digest = InputDigest(reported: options.reported)
        out.line("    {")
        out.line("      \"input\": \(string(input.input)),")
        out.line("      \"link_type\": \(input.linkType.map(string) ?? "null"),")
        out.write("      \"attempts\": [")
    }

    public func attempt(_ a: Attempt) {
        options.redactor?.register(a)
        digest.add(a)
        out.write(attemptsInInput == 0 ? "\n        " : ",\n        ")
        attemptsInInput += 1
        out.write(encode(AttemptRecord(a), level: 4))
    }

    public func end(_ s: InputSummary) {
        out.line(attemptsInInput == 0 ? "]," : "\n      ],")
        out.line("      \"stories\": \(encode(digest.finishStories(), level: 3)),")
        if let m = digest.reportedMatch() {
            out.line("      \"reported\": \(encode(m, level: 3)),")
        }
        out.line("      \"stats\": \(encode(s.stats, level: 3)),")
        out.line("      \"filtered_out\": \(s.filteredOut),")
        out.line("      \"peak_reassembly_bytes\": \(s.peakReassemblyBytes),")
        out.line("      \"error\": \(s.error.map { encode($0, level: 3) } ?? "null"),")
        out.line("      \"summary\": {\"attempts\": \(s.attempts), \"failures\": \(s.failures)}")
        out.write("    }")
        totals.inputs += 1
        if s.error != nil { totals.errors += 1 }
        totals.attempts += s.attempts
        totals.failures += s.failures
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
