import Foundation
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols
import TriageReports

/// Passes the analysis on to the report and keeps the failed attempts for `--export`.
final class FailureCollector: AnalysisSink {
    let next: any AnalysisSink
    private(set) var failed: [Attempt] = []

    init(forwardingTo next: any AnalysisSink) { self.next = next }

    func begin(_ input: InputInfo) { next.begin(input) }
    func attempt(_ a: Attempt) {
        if a.verdict.isFailure { failed.append(a) }
        next.attempt(a)
    }
    func end(_ s: InputSummary) { next.end(s) }
}

/// `--export DIR`: per failed attempt, `BASE-attemptN-LABEL.pcap` with its own frames,
/// `.md` with its report and, with `--keylog`, `.keys` with its key-log lines.
struct ExportStep {
    let directory: String
    let keyLog: KeyLog?
    let redactor: Redactor?

    init(directory: String, keylogPath: String?, redactor: Redactor?) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ExportError("\(directory): --export needs a directory, this is a file") }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ExportError("\(directory): cannot create the export directory")
            }
        }
        self.directory = directory
        if let keylogPath {
            guard let data = FileManager.default.contents(atPath: keylogPath) else {
                throw ExportError("\(keylogPath): cannot read the key log")
            }
            keyLog = KeyLog(text: String(decoding: data, as: UTF8.self))
        } else {
            keyLog = nil
        }
        self.redactor = redactor
    }

    /// Writes the files; returns one-line problems (the run goes on).
    func export(input: String, attempts: [Attempt]) -> [String] {
        guard !attempts.isEmpty else { return [] }
        if input == "-" { return ["standard input: --export needs a capture file it can read again"] }
        let base = ((input as NSString).lastPathComponent as NSString).deletingPathExtension
        var items: [Exporter.Item] = []
        var problems: [String] = []
        for a in attempts {
            let stem = directory + "/\(base)-attempt\(a.facts.tcp.id + 1)-\(a.verdict.label.rawValue)"
            items.append(Exporter.Item(attempt: a, path: stem + ".pcap"))
            redactor?.register(a)
            writeReport(a, input: input, to: stem + ".md")
            if let keyLog, let random = a.facts.rdp.tls?.clientHello?.random {
                let lines = keyLog.lines(forClientRandom: random)
                if !lines.isEmpty {
                    let text = lines.joined(separator: "\n") + "\n"
                    if !FileManager.default.createFile(atPath: stem + ".keys", contents: Data(text.utf8)) {
                        problems.append("\(stem).keys: cannot write")
                    }
                }
            }
        }
        do {
            _ = try Exporter.export(input: input, items: items, rewrite: redactor?.packetRewrite())
        } catch {
            problems.append("\(error.description) (while exporting)")
        }
        return problems
    }

    func writeReport(_ a: Attempt, input: String, to path: String) {
        guard let out = try? ReportOutput.file(path) else { return }
        var options = ReportOptions()
        options.redactor = redactor
        let md = MarkdownReport(output: out, options: options)
        md.begin(InputInfo(input: input, linkType: nil, snapshotLength: nil))
        md.attempt(a)
        md.end(
            InputSummary(
                input: input, stats: TrackerStats(), error: nil, filteredOut: 0, peakReassemblyBytes: 0, attempts: 1,
                failures: 1))
    }
}

struct ExportError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
