import TriageDiagnosis
import TriageEngine

/// The JSON report in schema 2 (schema/rdptriage-report-v2.schema.json): one document whose
/// inputs hold the same objects the ndjson report writes line by line, each attempt compact on
/// a line of its own, so `jq` reads it whole and `grep` still finds an attempt's line.
public final class JSONReportV2: AnalysisSink {
    let out: ReportOutput
    let lines: NDJSONLines
    private var inputCount = 0
    private var attemptsInInput = 0
    private var totals = RunTotals()
    private var started = false

    public init(output: ReportOutput, options: ReportOptions) {
        out = output
        lines = NDJSONLines(options: options)
    }

    private func startDocument() {
        guard !started else { return }
        started = true
        var j = JSONLine(capacity: 128)
        j.open()
        j.string("schema", ReportSchema.name)
        j.int("schema_version", SchemaV2.version)
        j.string("generator", ReportSchema.generator)
        j.key("inputs")
        out.write(bytes: j.finish(newline: false))
        out.write("[")
    }

    public func begin(_ input: InputInfo) {
        startDocument()
        out.write(inputCount == 0 ? "\n" : ",\n")
        inputCount += 1
        attemptsInInput = 0
        lines.begin(input)
        var j = JSONLine(capacity: 256)
        j.open()
        SchemaV2.inputHead(input.input, linkType: input.linkType, into: &j)
        j.key("attempts")
        out.write(bytes: lines.redacted(j.finish(newline: false)))
        out.write("[")
    }

    public func attempt(_ a: Attempt) {
        guard let line = lines.attempt(a) else { return }
        write(attempt: line)
    }

    /// An attempt's line without its newline, after the separator.
    private func write(attempt line: [UInt8]) {
        out.write(attemptsInInput == 0 ? "\n" : ",\n")
        attemptsInInput += 1
        line.withUnsafeBytes { out.write(bytes: UnsafeRawBufferPointer(rebasing: $0.dropLast())) }
    }

    public func end(_ s: InputSummary) {
        out.write(attemptsInInput == 0 ? "]" : "\n]")
        var j = JSONLine(capacity: 1024)
        // The members continue the input's object, after its attempts.
        j.continueObject()
        lines.summaryFields(s, into: &j)
        j.close()
        out.write(bytes: lines.redacted(j.finish(newline: false)))
        totals.add(s)
    }

    /// Closes the document with the run's totals and exit code.
    public func finish(exitCode: Int32) {
        startDocument()
        out.write(inputCount == 0 ? "]," : "\n],")
        var j = JSONLine(capacity: 128)
        j.object("summary")
        j.int("inputs", totals.inputs)
        j.int("input_errors", totals.errors)
        j.int("attempts", totals.attempts)
        j.int("failures", totals.failures)
        j.int("exit_code", exitCode)
        j.close()
        j.close()
        out.write(bytes: j.finish(newline: true))
        out.flush()
    }
}

extension JSONReportV2: PrerenderingSink {
    public var prerender: (@Sendable (Attempt) -> [UInt8])? {
        guard lines.options.redactor == nil else { return nil }
        return { @Sendable a in NDJSONLines.line(a) }
    }

    public func attempt(_ a: Attempt, prerendered: [UInt8]) {
        guard lines.take(a) else { return }
        write(attempt: prerendered)
    }
}
