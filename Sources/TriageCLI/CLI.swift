import ArgumentParser
import Foundation
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols
import TriageReports

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Exit codes (documented in the README).
public enum ExitStatus {
    /// Every RDP attempt succeeded.
    public static let healthy: Int32 = 0
    /// At least one attempt failed.
    public static let failures: Int32 = 1
    /// Bad usage, an input that could not be read (completely), or an output (the report,
    /// an exported file) that could not be written. Takes precedence.
    public static let inputError: Int32 = 2
    /// The inputs were read but held no RDP connection attempt.
    public static let nothingFound: Int32 = 3
}

public struct RDPTriage: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rdptriage",
        abstract: "Explain why Remote Desktop (RDP) connections failed, from packet captures.",
        discussion: """
            Exit codes: 0 every attempt healthy, 1 failures found, 2 bad usage, unreadable input or \
            an output that could not be written, 3 no RDP attempt found.
            """,
        version: "0.1.0",
        subcommands: [Analyze.self, Live.self],
        defaultSubcommand: Analyze.self)

    public init() {}
}

public struct Analyze: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Analyse capture files (pcap or pcapng; - for standard input).",
        discussion: """
            Every TCP connection to port 3389 (and the --port ports, and RDP found on any port by its \
            first bytes) is an attempt; each gets a verdict: label, cause, stage, who ended it, \
            confidence, evidence frames, the Windows client code it most likely showed, and what to do.
            """,
        aliases: ["analyse"])

    @Argument(
        help: "Capture files (pcap or pcapng, either may be gzip-compressed); - reads standard input.",
        completion: .file(extensions: ["pcap", "pcapng", "cap", "gz"]))
    public var files: [String] = []

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Report format.",
            discussion: "text for a terminal, json for programs, ndjson for log shippers (one JSON line per attempt; both schema 2, in the README), markdown for a ticket."))
    public var format: ReportFormat = .text

    @Option(name: .long, help: "JSON schema version of json and ndjson reports: 2, or 1 (the previous release's json; kept for one release).")
    public var schema: Int = ReportSchema.versions[0]

    @Option(name: .shortAndLong, help: "Write the report to this file instead of standard output.", completion: .file())
    public var output: String?

    @Option(name: .shortAndLong, help: "Another TCP port carrying RDP (repeatable; 3389 is always included).")
    public var port: [Int] = []

    @Option(name: .long, help: "BPF filter applied to every frame (frame numbers still count all frames).")
    public var filter: String?

    @Option(
        name: .long,
        help: "The code the Windows client showed (e.g. 0x904/0x7, 0x904, 2308): point at the attempts that match.")
    public var reported: String?

    @Flag(name: .long, help: "Replace addresses, host and user names with consistent pseudonyms.")
    public var redact = false

    @Option(
        name: .long,
        help: "Write each failed attempt's own frames as a small pcap, with its Markdown report, into this directory.",
        completion: .directory)
    public var export: String?

    @Flag(name: .long, help: "With --export, replace files that already exist (a symbolic link is removed, never followed).")
    public var force = false

    @Option(
        name: .long,
        help: "NSS key log (SSLKEYLOGFILE; repeatable): decrypts TLS to read CredSSP, NTLM names and the server's RDP error PDUs; with --export, each pcap gets its connection's key-log lines.",
        completion: .file())
    public var keylog: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Colour in the text report.", discussion: "auto: on a terminal, unless NO_COLOR is set or TERM=dumb."))
    public var color: ColorMode = .auto

    @Flag(name: .long, help: "Only follow the listed ports (do not look for RDP on other ports).")
    public var noDetect = false

    @Option(name: .long, help: "Most bytes one session direction may hold for reassembly.")
    public var maxSessionBuffer: ByteSize = ByteSize(256 * 1024)

    @Option(name: .long, help: ArgumentHelp("Benchmarking: stop after read, decode, track, parse or facts.", visibility: .hidden))
    public var benchStopAfter: String?

    @Option(name: .long, help: "Most bytes all sessions together may hold for reassembly.")
    public var maxBuffer: ByteSize = ByteSize(256 << 20)

    @Option(
        name: .long,
        help: "Most connections followed at once; past it the oldest half-open one (a SYN flood) is reported as it stands.")
    public var maxSessions: Int = 10_000

    @Option(
        name: .long,
        help: "Attempts shown one by one per server and verdict; the rest are counted in a summary (0: show all).")
    public var maxRepeats: Int = 20

    @Flag(name: .long, help: "Show only failed attempts (the summary and stories still count every attempt).")
    public var failuresOnly = false

    @Option(name: .long, help: "Show only this attempt, by its number in the report (repeatable).")
    public var attempt: [Int] = []

    @Flag(name: .long, help: ArgumentHelp("Benchmarking: read files on the packet thread, not ahead on a thread of their own.", visibility: .hidden))
    public var benchNoReadAhead = false

    public init() {}

    public func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one capture file (or - for standard input)") }
        if !ReportSchema.versions.contains(schema) { throw ValidationError("--schema must be 2 or 1") }
        if schema == 1 && format == .ndjson { throw ValidationError("--format ndjson exists in schema 2 only") }
        for p in port where p < 1 || p > 65535 { throw ValidationError("--port \(p) is not a TCP port") }
        if let r = reported, ReportedCode(r) == nil {
            throw ValidationError("--reported \(r) is not a client code (examples: 0x904/0x7, 0x904, 2308)")
        }
        if maxSessionBuffer.bytes < 4096 { throw ValidationError("--max-session-buffer must be at least 4096") }
        if maxBuffer.bytes < maxSessionBuffer.bytes { throw ValidationError("--max-buffer must be at least --max-session-buffer") }
        if maxSessions < 16 { throw ValidationError("--max-sessions must be at least 16") }
        if maxRepeats < 0 { throw ValidationError("--max-repeats must be 0 (show all) or more") }
        for n in attempt where n < 1 { throw ValidationError("--attempt \(n): attempts are numbered from 1") }
        if force && export == nil { throw ValidationError("--force is used with --export") }
        if !keylog.isEmpty && redact && export != nil {
            throw ValidationError(
                "--export with --keylog cannot be used with --redact: the keys would let the recipient decrypt the original names from the exported frames")
        }
        if let s = benchStopAfter, PipelineStage(rawValue: s) == nil {
            throw ValidationError("--bench-stop-after takes one of: " + PipelineStage.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    public func run() throws {
        throw ExitCode(runReturningStatus())
    }

    /// Runs the analysis and returns the exit status.
    public func runReturningStatus() -> Int32 {
        var engineOptions = EngineOptions()
        // Warnings go through the same writer as errors.
        engineOptions.warn = { printError("rdptriage: " + $0) }
        engineOptions.filter = filter
        var ports: [UInt16] = [3389]
        for p in port where !ports.contains(UInt16(p)) { ports.append(UInt16(p)) }
        engineOptions.tracker.ports = ports
        engineOptions.tracker.detectRDPOnAnyPort = !noDetect
        engineOptions.tracker.streamLimits.perStream = maxSessionBuffer.bytes
        engineOptions.tracker.memoryLimit = maxBuffer.bytes
        engineOptions.tracker.maxSessions = maxSessions
        engineOptions.stopAfter = benchStopAfter.flatMap(PipelineStage.init(rawValue:))
        engineOptions.readAhead = !benchNoReadAhead
        if !keylog.isEmpty {
            var keys = TLSKeyMaterial()
            for path in keylog {
                guard let data = FileManager.default.contents(atPath: path) else {
                    printError("rdptriage: \(path): cannot read the key log")
                    return ExitStatus.inputError
                }
                let k = TLSKeyMaterial(keyLog: String(decoding: data, as: UTF8.self))
                if k.isEmpty {
                    printError("rdptriage: \(path): warning: no key-log line (LABEL CLIENT_RANDOM SECRET, NSS format) in this file")
                }
                keys.merge(k)
            }
            engineOptions.keys = keys
        }

        var reportOptions = ReportOptions()
        reportOptions.reported = reported.flatMap(ReportedCode.init)
        reportOptions.color = color
        reportOptions.maxRepeats = maxRepeats
        reportOptions.failuresOnly = failuresOnly
        reportOptions.onlyAttempts = attempt.isEmpty ? nil : Set(attempt)
        if redact { reportOptions.redactor = Redactor() }

        // Checked before the output is opened: opening it truncates it.
        if let output, let input = Self.input(sameAs: output, among: files) {
            printError("rdptriage: \(output): is the input \(input == "-" ? "standard input" : input); refusing to overwrite it")
            return ExitStatus.inputError
        }
        let out: ReportOutput
        do {
            out = try output.map(ReportOutput.file) ?? .standardOutput()
        } catch {
            printError("rdptriage: \(error)")
            return ExitStatus.inputError
        }
        let sink: any AnalysisSink
        var finishJSON: ((Int32) -> Void)?
        switch format {
        case .text: sink = TextReport(output: out, options: reportOptions)
        case .json where schema == 1:
            let j = JSONReport(output: out, options: reportOptions)
            finishJSON = j.finish(exitCode:)
            sink = j
        case .json:
            let j = JSONReportV2(output: out, options: reportOptions)
            finishJSON = j.finish(exitCode:)
            sink = j
        case .ndjson: sink = NDJSONReport(output: out, options: reportOptions)
        case .markdown: sink = MarkdownReport(output: out, options: reportOptions)
        }

        var exporter: ExportStep?
        if let dir = export {
            // A report reader that leaves (`| head`) must not end the run before the export
            // is written: the write fails with EPIPE instead, and the export goes on.
            signal(SIGPIPE, SIG_IGN)
            do {
                exporter = try ExportStep(directory: dir, keylogPaths: keylog, redactor: reportOptions.redactor, force: force)
            } catch {
                printError("rdptriage: \(error)")
                return ExitStatus.inputError
            }
            for w in exporter?.warnings ?? [] { printError("rdptriage: \(w)") }
        }
        if ProgressLine.wanted(reportToFile: output != nil) {
            let line = ProgressLine()
            engineOptions.progress = { line.update($0) }
        }
        let engine = Engine(options: engineOptions)
        var errors = 0
        var attempts = 0
        var failures = 0
        for file in files {
            // The report cannot be written (a full disk, a reader gone): the rest is wasted
            // work, unless it is exported (the export is the other output).
            if out.failure != nil && !(exporter != nil && out.readerLeft) { break }
            let collector = exporter.map { _ in FailureCollector(forwardingTo: sink) }
            let summary = engine.analyze(path: file, sink: collector ?? sink)
            if let e = summary.error {
                errors += 1
                // One line on standard error, whatever the report format.
                printError("rdptriage: \(reportOptions.redactor?.apply(e.description) ?? e.description)")
            }
            if let exporter, let collector {
                let outcome = exporter.export(input: file, attempts: collector.failed)
                for problem in outcome.problems {
                    errors += 1
                    printError("rdptriage: \(problem)")
                }
                if !outcome.written.isEmpty {
                    let n = collector.failed.count
                    printError(
                        "rdptriage: \(file): exported \(n) failed attempt\(n == 1 ? "" : "s") to \(exporter.directory)/ "
                            + "(\(outcome.written.count) files: "
                            + outcome.written.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ") + ")")
                }
                if collector.notKept > 0 {
                    printError(
                        "rdptriage: \(file): \(collector.notKept) more failed attempts not exported (the first \(collector.limit) were)")
                }
            }
            attempts += summary.attempts
            failures += summary.failures
        }
        var status: Int32 =
            errors > 0
            ? ExitStatus.inputError
            : failures > 0 ? ExitStatus.failures : attempts == 0 ? ExitStatus.nothingFound : ExitStatus.healthy
        finishJSON?(status)
        if let e = out.finish() {
            // A reader that left (`| head`) wanted no more: not an error. With SIGPIPE at its
            // default the process ends silently before getting here; this is for callers
            // that ignore SIGPIPE.
            if !out.readerLeft {
                printError("rdptriage: \(e)")
                status = ExitStatus.inputError
            }
        }
        return status
    }

    /// The input among `files` that `output` names (the same file by device and inode, so
    /// another spelling or a link counts), if any. `-` is standard input.
    static func input(sameAs output: String, among files: [String]) -> String? {
        var o = stat()
        guard stat(output, &o) == 0 else { return nil }
        for file in files {
            var i = stat()
            let found = file == "-" ? fstat(STDIN_FILENO, &i) == 0 : stat(file, &i) == 0
            if found && i.st_dev == o.st_dev && i.st_ino == o.st_ino { return file }
        }
        return nil
    }
}

/// One line on standard error. Written with write(2): FileHandle traps when standard error
/// cannot be written, and an error message must never end the run. Control characters (a
/// file name with a newline) are escaped, so the message stays one line.
func printError(_ s: String) {
    writeToStandardError(Array((Printable.escapingControls(s) + "\n").utf8))
}

/// All of `bytes` to standard error with write(2), retried after a signal; gives up quietly
/// when standard error cannot be written.
func writeToStandardError(_ bytes: [UInt8]) {
    _ = bytes.withUnsafeBytes { writeFully(STDERR_FILENO, $0) }
}

/// The whole command line: parses, runs, and maps every outcome to the documented exit
/// codes (usage errors are 2, like unreadable input).
public func runCommandLine(_ arguments: [String]) -> Int32 {
    do {
        let command = try RDPTriage.parseAsRoot(arguments)
        if let analyze = command as? Analyze { return analyze.runReturningStatus() }
        if let live = command as? Live { return live.runReturningStatus() }
        var other = command
        try other.run()
        return ExitStatus.healthy
    } catch {
        let code = RDPTriage.exitCode(for: error)
        let message = RDPTriage.fullMessage(for: error)
        if code == .success {
            print(message)
            return ExitStatus.healthy
        }
        // A usage error is the argument parser's few lines (error, help, usage): each is
        // escaped on its own, so a value typed on the command line cannot inject, and the
        // lines stay lines.
        for line in message.split(separator: "\n", omittingEmptySubsequences: false) { printError(String(line)) }
        return ExitStatus.inputError
    }
}

/// A size in bytes as people write it: `262144`, `256K`, `256M`, `1G` (binary units: K is
/// 1024), optionally with `B`/`iB` (`256MiB`).
// The option values are the enums' cases: the help, the man page and the shell completions
// list them, and a new case (a format) needs no other change here.
extension ReportFormat: ExpressibleByArgument {}
extension ColorMode: ExpressibleByArgument {}

public struct ByteSize: ExpressibleByArgument, CustomStringConvertible, Sendable {
    public let bytes: Int

    public init(_ bytes: Int) { self.bytes = bytes }

    public init?(argument: String) {
        var text = Substring(argument.trimmingCharacters(in: .whitespaces)).uppercased()[...]
        if text.hasSuffix("IB") { text = text.dropLast(2) } else if text.hasSuffix("B") { text = text.dropLast() }
        let shift: Int
        switch text.last {
        case "K": shift = 10
        case "M": shift = 20
        case "G": shift = 30
        default: shift = 0
        }
        if shift > 0 { text = text.dropLast() }
        guard let n = Int(text), n >= 0 else { return nil }
        let (value, overflow) = n.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { return nil }
        bytes = value
    }

    public var description: String {
        for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] where bytes > 0 && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return String(bytes)
    }

    public var defaultValueDescription: String { description }
}
