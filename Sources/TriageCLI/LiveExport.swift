import Foundation
import Synchronization
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

/// `live --export DIR`: each failed attempt's held frames (`HeldFramesHandoff`) written as
/// its own pcap and Markdown report by `ExportStep`, as `analyze --export` writes them, the
/// moment its verdict is reported. Files are named `live-IFACE-STARTTIME-attemptN-LABEL`.
/// A problem (an unwritable directory, a full disk) is said once on standard error and
/// counted; the capture goes on. Runs on the report thread.
final class LiveExport: @unchecked Sendable {
    // Unchecked: `step` and `saidProblem` are touched on the report thread only; the
    // counters behind a lock (the metrics and summaries read them).
    let handoff = HeldFramesHandoff()
    let directory: String
    let base: String
    let input: String
    /// The key-log lines read so far (`KeyLogWatcher`), for each attempt's `.keys` file.
    let keyLines: (any KeyLineSource)?
    let redactor: Redactor?
    private var step: ExportStep?
    private var saidProblem = false
    private let counters: Mutex<LiveExportStats>

    init(directory: String, base: String, input: String, keyLines: (any KeyLineSource)?, redactor: Redactor?) {
        self.directory = directory
        self.base = base
        self.input = input
        self.keyLines = keyLines
        self.redactor = redactor
        counters = Mutex(LiveExportStats(directory: directory))
        _ = usableStep()
    }

    /// The export step, made (the directory created) on first use and again after a failure,
    /// so a directory that appears or becomes writable later is used then.
    private func usableStep() -> ExportStep? {
        if let step { return step }
        do {
            step = try ExportStep(directory: directory, keylogPaths: [], redactor: redactor, force: false)
            step?.keyLog = keyLines
        } catch {
            problem("\(error)")
        }
        return step
    }

    private func problem(_ text: String) {
        guard !saidProblem else { return }
        saidProblem = true
        printError("rdptriage: --export: \(text); the capture goes on (later export problems are only counted in the summary)")
    }

    /// Every reported attempt passes here: a failure is exported, a success's frames let go.
    func attemptReported(_ a: Attempt) {
        let held = handoff.take(a.facts.tcp.id)
        guard a.verdict.isFailure else { return }
        guard let held else {
            counters.withLock { $0.attemptsWithoutFrames += 1 }
            return
        }
        guard let step = usableStep() else {
            counters.withLock { $0.exportFailures += 1 }
            return
        }
        let outcome = step.export(input: input, attempts: [a], base: base, held: held)
        if let first = outcome.problems.first {
            counters.withLock { $0.exportFailures += 1 }
            problem(first)
            // Made again next time: the directory may have gone.
            self.step = nil
        } else {
            counters.withLock { $0.attemptsExported += 1 }
        }
    }

    var stats: LiveExportStats {
        var s = counters.withLock { $0 }
        s.hold = handoff.stats
        return s
    }
}

/// `live --keylog FILE`: the key-log files read again as they grow, at the capture loop's
/// tick (about ten times a second). Only new complete lines are parsed; a file that shrank or
/// was replaced is read from its start again. Lines go into a bounded table
/// (`GrowingKeyTable`) that every connection's decryptor looks in.
final class KeyLogWatcher {
    let table: GrowingKeyTable
    private struct File {
        var path: String
        var offset: Int64 = 0
        var inode: UInt64 = 0
        var size: Int64 = -1
    }
    private var files: [File]
    /// Most bytes read from one file per tick; the rest on the next ones.
    static let chunk = 4 << 20
    /// A line longer than this is no key-log line: skipped.
    static let longestLine = 64 << 10

    /// `keepLines`: for live `--export`'s `.keys` files.
    init(paths: [String], keepLines: Bool) {
        files = paths.map { File(path: $0) }
        table = GrowingKeyTable(keepLines: keepLines)
    }

    func poll() {
        for i in files.indices { read(&files[i]) }
    }

    private func read(_ f: inout File) {
        var st = stat()
        guard stat(f.path, &st) == 0 else { return }
        let inode = UInt64(st.st_ino)
        let size = Int64(st.st_size)
        if inode != f.inode || size < f.offset {
            // Replaced or truncated: a new key log.
            f.inode = inode
            f.offset = 0
        } else if size == f.size && size == f.offset {
            return
        }
        f.size = size
        guard size > f.offset else { return }
        let fd = open(f.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let want = Int(min(Int64(Self.chunk), size - f.offset))
        var buffer = [UInt8](repeating: 0, count: want)
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(f.offset)) }
        guard got > 0 else { return }
        // Only complete lines: the client may be in the middle of writing one.
        guard let last = buffer[..<got].lastIndex(of: 0x0A) else {
            if got >= Self.longestLine { f.offset += Int64(got) }
            return
        }
        table.add(keyLog: String(decoding: buffer[...last], as: UTF8.self))
        f.offset += Int64(last + 1)
    }
}
