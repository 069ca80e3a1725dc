import TriageCapture
import TriageDiagnosis
import TriageEngine
import TriageFlows

/// The two kinds of line `live --format ndjson` writes, each one compact JSON object ending in
/// a newline: one per finished attempt, schema 2's attempt line (`NDJSONLines.line`, as
/// `analyze --format ndjson` writes it), and live's summary (`"type":"summary"`).
public enum LiveLines {
    /// One attempt as one line, redacted when a redactor is given (it knows the attempt's names).
    public static func attempt(_ a: Attempt, redactor: Redactor?) -> [UInt8] {
        let line = NDJSONLines.line(a)
        guard let redactor else { return line }
        return Array(redactor.apply(String(decoding: line, as: UTF8.self)).utf8)
    }

    /// The summary: so far (`final` false, on request) or at the end of the run.
    public static func summary(_ s: LiveSummary, redactor: Redactor?) -> [UInt8] {
        var line = (try? JSONWriter.compactBytes(s, capacity: 1024)) ?? Array("{}".utf8)
        if let redactor { line = Array(redactor.apply(String(decoding: line, as: UTF8.self)).utf8) }
        line.append(0x0A)
        return line
    }
}

/// What a live run has seen: attempts per server and verdict, the tracker's counters and
/// libpcap's. Encoded as the NDJSON summary line; the text report says the same in words.
public struct LiveSummary: Encodable, Sendable {
    public struct Group: Encodable, Sendable {
        public var server: String
        public var label: Label
        public var attempts: Int
    }
    public var type = "summary"
    /// False for a summary so far (SIGUSR1), true for the last one.
    public var final: Bool
    public var input: String
    public var attempts: Int
    public var failures: Int
    /// Most frequent first.
    public var byServer: [Group]
    /// Connections followed at the moment; in the final summary, those still open when the
    /// run stopped (classified as they stood).
    public var openSessions: Int
    public var stats: TrackerStats
    public var capture: LiveCaptureStats?
    /// `--export`: files written and frames the hold dropped; nil without it.
    public var export: LiveExportStats?
    public var error: CaptureError?
    public var exitCode: Int32?

    public init(final: Bool, input: String, attempts: Int, failures: Int, byServer: [Group], openSessions: Int,
                stats: TrackerStats, capture: LiveCaptureStats?, export: LiveExportStats? = nil, error: CaptureError?,
                exitCode: Int32?) {
        self.final = final
        self.input = input
        self.attempts = attempts
        self.failures = failures
        self.byServer = byServer
        self.openSessions = openSessions
        self.stats = stats
        self.capture = capture
        self.export = export
        self.error = error
        self.exitCode = exitCode
    }
}

/// What `live --export` did: failed attempts written (pcap and Markdown report each), those
/// that could not be (the first problem is said once on standard error), and what the frame
/// hold had to drop to stay within its bounds.
public struct LiveExportStats: Encodable, Sendable, Equatable {
    public var directory: String
    public var attemptsExported = 0
    public var exportFailures = 0
    /// Failed attempts with no frame held (their connection's frames were given up).
    public var attemptsWithoutFrames = 0
    public var hold = FrameHoldStats()

    public init(directory: String) { self.directory = directory }
}
