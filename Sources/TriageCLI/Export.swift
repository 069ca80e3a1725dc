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

/// Passes the analysis on to the report and keeps the failed attempts for `--export`: the
/// first `limit` of an input (a flood's millions would be as many files).
final class FailureCollector: AnalysisSink {
    let next: any AnalysisSink
    let limit: Int
    private(set) var failed: [Attempt] = []
    /// Failed attempts past the limit: counted, not exported.
    private(set) var notKept = 0

    init(forwardingTo next: any AnalysisSink, limit: Int = 1_000) {
        self.next = next
        self.limit = limit
    }

    func begin(_ input: InputInfo) { next.begin(input) }
    func attempt(_ a: Attempt) {
        if a.verdict.isFailure {
            if failed.count < limit { failed.append(a) } else { notKept += 1 }
        }
        next.attempt(a)
    }
    func end(_ s: InputSummary) { next.end(s) }
}

/// `--export DIR`: per failed attempt, `BASE-attemptN-LABEL.pcap` with its own frames,
/// `.md` with its report and, with `--keylog`, `.keys` with its key-log lines.
///
/// The directory may be shared (a ticket folder, /tmp), so files are never opened by their
/// final name: each is written under a fresh name created exclusively (no link followed),
/// then linked to its final name, which fails rather than follow or replace anything there.
/// An input's files appear only when all of them were written completely.
struct ExportStep {
    let directory: String
    /// Each connection's key-log lines (live: the lines read so far).
    var keyLog: (any KeyLineSource)?
    let redactor: Redactor?
    /// Replace files that already exist (the directory entry, never what a link points at).
    let force: Bool
    /// Not errors, said once on standard error (a key log without a usable line).
    private(set) var warnings: [String] = []

    init(directory: String, keylogPaths: [String], redactor: Redactor?, force: Bool) throws {
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
        self.force = force
        if !keylogPaths.isEmpty {
            var texts: [String] = []
            for keylogPath in keylogPaths {
                guard let data = FileManager.default.contents(atPath: keylogPath) else {
                    throw ExportError("\(keylogPath): cannot read the key log")
                }
                texts.append(String(decoding: data, as: UTF8.self))
            }
            let log = KeyLog(text: texts.joined(separator: "\n"))
            if log.lines.isEmpty {
                warnings.append(
                    "\(keylogPaths.joined(separator: ", ")): warning: no key-log line (LABEL CLIENT_RANDOM SECRET, NSS format); "
                        + "no .keys file will be exported")
            }
            keyLog = log
        } else {
            keyLog = nil
        }
        self.redactor = redactor
    }

    /// What one input's export did: the files now in place, and one-line problems (the run goes on).
    struct Outcome {
        var written: [String] = []
        var problems: [String] = []
    }

    /// `base`: the files' name prefix (default: the input's name without its extension);
    /// `held`: the frames to export from (live) instead of reading the input again.
    func export(input: String, attempts: [Attempt], base: String? = nil, held: HeldFrames? = nil) -> Outcome {
        guard !attempts.isEmpty else { return Outcome() }
        if input == "-" && held == nil {
            return Outcome(problems: ["standard input: --export needs a capture file it can read again"])
        }
        let base = base ?? ((input as NSString).lastPathComponent as NSString).deletingPathExtension

        // Every file this input exports, with its contents (the pcap's are written below).
        struct Planned {
            var path: String
            var mode: mode_t
            var attempt: Attempt
            var kind: Kind
            enum Kind { case pcap, report, keys(String) }
        }
        var planned: [Planned] = []
        for a in attempts {
            let stem = directory + "/\(base)-attempt\(a.facts.tcp.id + 1)-\(a.verdict.label.rawValue)"
            planned.append(Planned(path: stem + ".pcap", mode: 0o666, attempt: a, kind: .pcap))
            planned.append(Planned(path: stem + ".md", mode: 0o666, attempt: a, kind: .report))
            if let keyLog, let random = a.facts.rdp.tls?.clientHello?.random {
                let lines = keyLog.lines(forClientRandom: random)
                // Secrets: readable by the owner only.
                if !lines.isEmpty {
                    let text = lines.joined(separator: "\n") + "\n"
                    planned.append(Planned(path: stem + ".keys", mode: 0o600, attempt: a, kind: .keys(text)))
                }
            }
        }
        if !force {
            let existing = planned.map(\.path).filter { StagedFile.exists($0) }
            if let first = existing.first {
                let more = existing.count > 1 ? " (and \(existing.count - 1) more)" : ""
                return Outcome(problems: [
                    "\(first): already exists\(more); nothing exported for \(input) (--force replaces existing files)"
                ])
            }
        }

        var staged: [StagedFile] = []
        func abandon(_ problem: String) -> Outcome {
            for s in staged { s.discard() }
            return Outcome(problems: [problem])
        }
        var items: [Exporter.Item] = []
        for p in planned {
            let file: StagedFile
            let descriptor: Int32
            do throws(ExportError) { (file, descriptor) = try StagedFile.create(p.path, mode: p.mode) } catch {
                for item in items { close(item.descriptor) }
                return abandon(error.description)
            }
            staged.append(file)
            switch p.kind {
            case .pcap:
                items.append(Exporter.Item(attempt: p.attempt, descriptor: descriptor, path: p.path))
            case .report:
                redactor?.register(p.attempt)
                if let problem = writeReport(p.attempt, input: input, descriptor: descriptor, path: p.path) {
                    for item in items { close(item.descriptor) }
                    return abandon(problem)
                }
            case .keys(let text):
                if let problem = StagedFile.writeAll(Array(text.utf8), descriptor: descriptor, path: p.path) {
                    for item in items { close(item.descriptor) }
                    return abandon(problem)
                }
            }
        }
        do {
            if let held {
                _ = try Exporter.export(
                    input: input, items: items, rewrite: redactor?.packetRewrite(), snapshotLength: held.snapshotLength,
                    open: { () throws(CaptureError) -> any PacketSource in held.source(name: input) })
            } else {
                _ = try Exporter.export(input: input, items: items, rewrite: redactor?.packetRewrite())
            }
        } catch {
            return abandon("\(error.description) (while exporting)")
        }
        var outcome = Outcome()
        for s in staged {
            do throws(ExportError) {
                try s.commit(replacing: force)
                outcome.written.append(s.finalPath)
            } catch {
                outcome.problems.append(error.description)
            }
        }
        return outcome
    }

    /// Writes the attempt's Markdown report; returns a one-line problem when it is incomplete.
    func writeReport(_ a: Attempt, input: String, descriptor: Int32, path: String) -> String? {
        let out: ReportOutput
        do { out = try ReportOutput.file(descriptor: descriptor, path: path) } catch { return "\(error)" }
        var options = ReportOptions()
        options.redactor = redactor
        let md = MarkdownReport(output: out, options: options)
        md.begin(InputInfo(input: input, linkType: nil, snapshotLength: nil))
        md.attempt(a)
        md.end(
            InputSummary(
                input: input, stats: TrackerStats(), error: nil, filteredOut: 0, peakReassemblyBytes: 0, attempts: 1,
                failures: 1))
        return out.finish()?.description
    }
}

/// A file written under a temporary name beside its final one, then linked into place.
struct StagedFile {
    let finalPath: String
    let temporaryPath: String

    /// Whether anything (a file, a directory, a dangling symbolic link) has this name.
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Creates a new, empty file to become `path`; returns it and a descriptor open for writing.
    static func create(_ path: String, mode: mode_t) throws(ExportError) -> (StagedFile, Int32) {
        let dir = (path as NSString).deletingLastPathComponent
        for _ in 0..<16 {
            // Not derived from the final name, which may already be as long as a name can be.
            let temporary = dir + "/.rdptriage-\(String(UInt64.random(in: .min ... .max), radix: 36)).tmp"
            // O_EXCL|O_NOFOLLOW: a name someone else made (a planted link included) is refused.
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            if fd >= 0 { return (StagedFile(finalPath: path, temporaryPath: temporary), fd) }
            if errno != EEXIST { throw ExportError("\(path): cannot create: \(String(cString: strerror(errno)))") }
        }
        throw ExportError("\(path): cannot create a temporary file beside it")
    }

    /// Writes all of `bytes` and closes the descriptor; returns a one-line problem on failure.
    static func writeAll(_ bytes: [UInt8], descriptor: Int32, path: String) -> String? {
        var failure = bytes.withUnsafeBytes { writeFully(descriptor, $0) }
        if close(descriptor) != 0 && failure == nil { failure = errno }
        return failure.map { "\(path): cannot write: \(String(cString: strerror($0)))" }
    }

    /// Gives the complete file its final name. `link` never follows or replaces what is
    /// there; with `replacing`, what is there is removed first (`unlink` removes a symbolic
    /// link itself, never its target).
    func commit(replacing: Bool) throws(ExportError) {
        if replacing, unlink(finalPath) != 0, errno != ENOENT {
            let e = errno
            discard()
            throw ExportError("\(finalPath): cannot replace: \(String(cString: strerror(e)))")
        }
        if link(temporaryPath, finalPath) == 0 {
            discard()
            return
        }
        let e = errno
        // File systems without hard links (FAT, some network ones): rename never follows a
        // link either, it only replaces, so it is used when nothing has the name.
        if [EPERM, EOPNOTSUPP, ENOSYS, EMLINK].contains(e), !Self.exists(finalPath),
            rename(temporaryPath, finalPath) == 0
        {
            return
        }
        discard()
        if e == EEXIST {
            throw ExportError("\(finalPath): already exists; not replaced (--force replaces existing files)")
        }
        throw ExportError("\(finalPath): cannot write: \(String(cString: strerror(e)))")
    }

    /// Removes the temporary name (after a commit, the file lives on under its final name).
    func discard() { unlink(temporaryPath) }
}

struct ExportError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
