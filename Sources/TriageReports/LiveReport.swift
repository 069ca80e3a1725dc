import Synchronization
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows

/// The report of a live capture: each attempt written and flushed the moment its verdict is
/// ready (text blocks as `analyze` prints them, or NDJSON lines), summaries so far on request,
/// and at the end the summary with attempts per server and verdict and libpcap's counters.
/// Attempts arrive on the engine's report thread; `reachedCount` is read on the packet thread.
public final class LiveReport: FollowUpSink, @unchecked Sendable {
    // Unchecked: everything but `counted` is touched on the engine's report thread only
    // (attempt, progress and end all run there, one after another).
    public enum Format: String, Sendable, CaseIterable {
        case text, ndjson
    }

    let out: ReportOutput
    let options: ReportOptions
    let format: Format
    private let text: TextReport?
    private var input = ""
    /// Attempts per server and label, at most `maxGroups` (the rest counted under "other").
    private var groups: [GroupKey: Int] = [:]
    static let maxGroups = 4096
    private var attempts = 0
    private var failures = 0
    private let stopAfter: Int?
    private let counted = Atomic<Int>(0)
    private let gone = Atomic<Bool>(false)
    /// libpcap's counters, asked when a summary is written.
    public var captureStats: () -> LiveCaptureStats? = { nil }
    /// Called after each attempt is written (for example to export a failed one), also
    /// after a failure ending an attempt first reported as a success.
    public var afterAttempt: ((Attempt) -> Void)?
    /// `--export`'s figures, asked when a summary is written.
    public var exportStats: () -> LiveExportStats? = { nil }
    /// Attempts reported as successes while open, by id (bounded by the
    /// connections open: removed when they end in a failure; a success's end is not reported).
    private var earlySuccesses: Set<Int> = []

    struct GroupKey: Hashable {
        var server: String
        var label: Label
    }

    /// `stopAfter`: the number of attempts after which `reachedCount` turns true (`--count`).
    public init(output: ReportOutput, format: Format, options: ReportOptions, stopAfter: Int? = nil) {
        out = output
        self.options = options
        self.format = format
        self.stopAfter = stopAfter
        text = format == .text ? TextReport(output: output, options: options) : nil
        text?.streaming = true
    }

    /// True once `stopAfter` attempts were written.
    public var reachedCount: Bool {
        guard let stopAfter else { return false }
        return counted.load(ordering: .relaxed) >= stopAfter
    }

    public func begin(_ info: InputInfo) {
        input = info.input
        text?.begin(info)
        out.flush()
    }

    public func attempt(_ a: Attempt) {
        attempts += 1
        count(a, by: 1)
        if a.verdict.label == .success && a.facts.tcp.outcome == .open && earlySuccesses.count < 65_536 {
            earlySuccesses.insert(a.facts.tcp.id)
        }
        write(a)
        counted.add(1, ordering: .relaxed)
    }

    /// An attempt reported as a success while open ended in a failure: it now counts as that
    /// failure (same attempt, not another), and is written again.
    public func followUp(_ a: Attempt) {
        if earlySuccesses.remove(a.facts.tcp.id) != nil {
            var success = a
            success.verdict.label = .success
            count(success, by: -1)
        } else {
            attempts += 1
        }
        count(a, by: 1)
        write(a)
    }

    private func count(_ a: Attempt, by n: Int) {
        if a.verdict.isFailure { failures += n }
        let key = GroupKey(server: a.facts.tcp.server.description, label: a.verdict.label)
        if groups[key] != nil || groups.count < Self.maxGroups {
            groups[key, default: 0] += n
            if groups[key] == 0 { groups[key] = nil }
        } else {
            groups[GroupKey(server: "other", label: a.verdict.label), default: 0] += n
        }
    }

    private func write(_ a: Attempt) {
        if let text {
            text.attempt(a)
        } else {
            options.redactor?.register(a)
            let shown = !options.failuresOnly || a.verdict.isFailure
            if shown { out.write(bytes: LiveLines.attempt(a, redactor: options.redactor)) }
        }
        out.flush()
        if out.readerLeft { gone.store(true, ordering: .relaxed) }
        afterAttempt?(a)
    }

    /// True once the output's reader left (a closed pipe): nothing more can be shown.
    public var readerLeft: Bool { gone.load(ordering: .relaxed) }

    /// A summary so far (SIGUSR1), without stopping.
    public func progress(_ s: InputSummary, openSessions: Int) {
        let summary = make(s, final: false, openSessions: openSessions, exitCode: nil)
        switch format {
        case .ndjson: out.write(bytes: LiveLines.summary(summary, redactor: options.redactor))
        case .text:
            emit("")
            emit("  So far: \(sentence(summary)); \(openSessions) connection\(openSessions == 1 ? "" : "s") open.")
            for line in groupLines(summary) { emit("    " + line) }
            if let c = summary.capture { emit("  " + captureLine(c)) }
            if let e = summary.export { emit("  " + exportLine(e)) }
        }
        out.flush()
    }

    public func end(_ s: InputSummary) {
        lastSummary = s
        text?.end(s)
    }

    private var lastSummary: InputSummary?

    /// Connections still open when the run stopped (`LiveControl.stopping`).
    public var openAtStop = 0

    /// Writes the final summary (after `end`), with the run's exit code.
    public func finish(exitCode: Int32) {
        guard let s = lastSummary else { return }
        let summary = make(s, final: true, openSessions: openAtStop, exitCode: exitCode)
        switch format {
        case .ndjson: out.write(bytes: LiveLines.summary(summary, redactor: options.redactor))
        case .text:
            let lines = groupLines(summary)
            if !lines.isEmpty {
                emit("  By server and verdict:")
                for line in lines { emit("    " + line) }
            }
            if openAtStop > 0 {
                emit("  \(openAtStop) connection\(openAtStop == 1 ? " was" : "s were") still open at the stop, classified as they stood.")
            }
            if let c = summary.capture { emit("  " + captureLine(c)) }
            if let e = summary.export { emit("  " + exportLine(e)) }
        }
        out.flush()
    }

    private func emit(_ s: String) { out.line(options.redactor?.apply(s) ?? s) }

    private func make(_ s: InputSummary, final: Bool, openSessions: Int, exitCode: Int32?) -> LiveSummary {
        let byServer = groups.map { LiveSummary.Group(server: $0.key.server, label: $0.key.label, attempts: $0.value) }
            .sorted { ($0.attempts, $1.server, $1.label.rawValue) > ($1.attempts, $0.server, $0.label.rawValue) }
        return LiveSummary(
            final: final, input: input, attempts: attempts, failures: failures, byServer: byServer,
            openSessions: openSessions, stats: s.stats, capture: captureStats(), export: exportStats(), error: s.error,
            exitCode: exitCode)
    }

    private func sentence(_ s: LiveSummary) -> String {
        "\(s.attempts) RDP attempt\(s.attempts == 1 ? "" : "s"), \(s.failures) failed, \(s.stats.frames) frames read"
    }

    private func groupLines(_ s: LiveSummary) -> [String] {
        s.byServer.map { "\($0.server): \($0.attempts) \($0.label.rawValue)" }
    }

    private func exportLine(_ e: LiveExportStats) -> String {
        var line = "Export: \(e.attemptsExported) failed attempt\(e.attemptsExported == 1 ? "" : "s") written to \(e.directory)"
        if e.exportFailures > 0 { line += ", \(e.exportFailures) not written" }
        if e.attemptsWithoutFrames > 0 { line += ", \(e.attemptsWithoutFrames) with no frame held" }
        return line
            + "; held frames: \(e.hold.framesEvicted) overwritten by newer ones, \(e.hold.sessionsEvicted) connection\(e.hold.sessionsEvicted == 1 ? "'s" : "s'") frames given up for room."
    }

    private func captureLine(_ c: LiveCaptureStats) -> String {
        "Capture: \(c.received) packets received, \(c.droppedByKernel) dropped by the kernel, "
            + "\(c.droppedByInterface) dropped by the interface."
    }
}
