import Foundation
import TestSupport
import Testing

/// Running the command as users do: compressed captures, a report reader that leaves early
/// while exporting, progress on a terminal.
@Suite struct RunningTests {
    let exe = Repo.executable

    final class Dir {
        let path = NSTemporaryDirectory() + "rdptriage-running-\(UUID().uuidString)"
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// gzip(1)'s output of a committed capture.
    func gzip(_ capture: String, into dir: Dir, as name: String) throws -> String {
        let gzip = try #require(Run.tool("gzip"), "missing prerequisite: gzip")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: gzip)
        p.arguments = ["-c", "-n", "-9", capture]
        let out = dir.path + "/" + name
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        return out
    }

    /// A .gz capture gives the report of the capture itself; tshark reads the same frames
    /// from it; corrupt and cut ones get one line each, and the run goes on.
    @Test(.enabled(if: Prerequisite.runs(Run.tool("gzip") != nil), "gzip is not installed"))
    func gzipCompressedCaptures() throws {
        let dir = try Dir()
        for name in ["retry-then-success", "success-nla", "cert-rejected"] {
            let plain = Repo.captures + "/\(name).pcap"
            let packed = try gzip(plain, into: dir, as: "\(name).pcap.gz")
            let a = try Run.program(exe, ["analyze", "--format", "json", plain])
            let b = try Run.program(exe, ["analyze", "--format", "json", packed])
            #expect(a.status == b.status && b.stderr.isEmpty, "\(b.stderr)")
            #expect(
                b.stdout.replacingOccurrences(of: packed, with: plain) == a.stdout, "\(name): reports differ")
            // From standard input too: the first bytes decide, not a name.
            let c = try Run.program(exe, ["analyze", "--format", "json", "-"], stdin: packed)
            #expect(c.status == a.status && c.stdout.contains("\"label\""), "\(c.stderr)")
            if Prerequisite.runs(Run.tool("tshark") != nil) {
                let frames = { (f: String) throws -> String in
                    try Tshark.run(["-r", f, "-T", "fields", "-e", "frame.number", "-e", "frame.len", "-e", "tcp.stream"])
                }
                #expect(try frames(packed) == frames(plain), "\(name): tshark reads other frames from the .gz")
            }
        }

        // A wrong check value (the CRC-32 of the data): every attempt is reported, then one
        // error line, exit 2.
        let packed = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/retry-then-success.pcap.gz"))
        var corrupt = packed
        corrupt[packed.count - 8] ^= 0x55
        let corruptPath = dir.path + "/corrupt.pcap.gz"
        try corrupt.write(to: URL(fileURLWithPath: corruptPath))
        let all = try Run.program(exe, ["analyze", "--color", "never", corruptPath])
        #expect(all.status == 2 && all.stdout.contains("4 RDP attempts"), "\(all.stdout)")
        #expect(all.stderr == "rdptriage: \(corruptPath): corrupt gzip data (incorrect data check) (at byte \(packed.count - 4))\n"
                || all.stderr == "rdptriage: \(corruptPath): corrupt gzip data (incorrect data check) (at byte \(packed.count))\n",
                "\(all.stderr)")
        // Damage inside the compressed blocks: zlib may decode it to other bytes, which the
        // pcap reader then rejects (the offset is then in the decompressed data).
        var damaged = packed
        for i in stride(from: packed.count / 2, to: packed.count / 2 + 64, by: 1) { damaged[i] ^= 0x55 }
        let damagedPath = dir.path + "/damaged.pcap.gz"
        try damaged.write(to: URL(fileURLWithPath: damagedPath))
        let cutPath = dir.path + "/cut.pcap.gz"
        try packed.prefix(packed.count * 3 / 4).write(to: URL(fileURLWithPath: cutPath))
        let healthy = Repo.captures + "/success-tls.pcap"
        let r = try Run.program(exe, ["analyze", "--color", "never", damagedPath, healthy])
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("rdptriage: \(damagedPath): corrupt "), "\(r.stderr)")
        #expect(lines.first?.contains("corrupt gzip data (") == true || lines.first?.contains(" of the decompressed data)") == true)
        #expect(r.stdout.contains("success-tls.pcap"), "the run goes on")
        // Cut short (gzip killed while writing): like an uncompressed capture cut in its last
        // record, a warning, and the exit code follows the verdicts.
        let cut = try Run.program(exe, ["analyze", "--color", "never", cutPath])
        #expect(cut.status == 1, "\(cut.stderr)")
        #expect(cut.stderr.hasPrefix("rdptriage: warning: \(cutPath): gzip data cut short"), "\(cut.stderr)")
        #expect(cut.stderr.split(separator: "\n").count == 1)
        if Prerequisite.runs(Run.tool("tshark") != nil) {
            // tshark agrees the file is damaged.
            let t = try Run.program(try #require(Run.tool("tshark")), ["-r", damagedPath])
            #expect(t.status != 0 || !t.stderr.isEmpty, "tshark read the corrupt file cleanly")
        }
    }

    /// `--export DIR` with the report piped into `head -1`: the reader leaves after one line,
    /// and every input's export is still written. Twenty inputs make about 300 KB of JSON, far
    /// more than a pipe holds, so most of the report is written after the reader left.
    @Test func exportSurvivesAReaderThatLeaves() throws {
        let dir = try Dir()
        let original = Repo.captures + "/retry-then-success.pcap"
        let inputs = try (1...20).map { n -> String in
            let p = dir.path + "/input\(n).pcap"
            try FileManager.default.copyItem(atPath: original, toPath: p)
            return p
        }
        let command = [exe, "analyze", "--format", "json", "--export", dir.path + "/out"] + inputs
        let r = try Run.program("/bin/sh", ["-c", command.map { "'\($0)'" }.joined(separator: " ") + " | head -1"])
        #expect(r.status == 0)
        // Schema 2's document opens with its header on the first line.
        #expect(r.stdout.hasPrefix("{\"schema\":\"rdptriage.report\"") && r.stdout.hasSuffix("\n"), "\(r.stdout.prefix(200))")
        let written = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/out")
        for n in 1...20 {
            // Three failed attempts each: a pcap and a Markdown report for every one.
            #expect(written.filter { $0.hasPrefix("input\(n)-attempt") }.count == 6, "input\(n): \(written.sorted())")
            #expect(r.stderr.contains("input\(n).pcap: exported 3 failed attempts"), "\(r.stderr)")
        }
        #expect(!r.stderr.contains("cannot write"), "\(r.stderr)")
    }

    /// A capture of more than 64 MiB (a committed one's frames, repeated).
    func largeCapture(in dir: Dir) throws -> String {
        let one = try Data(contentsOf: URL(fileURLWithPath: Repo.captures + "/success-tls.pcap"))
        let records = one.dropFirst(24)
        var big = Data(one.prefix(24))
        big.reserveCapacity((66 << 20) + records.count)
        while big.count < 66 << 20 { big.append(records) }
        let path = dir.path + "/large.pcap"
        try big.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Progress on a terminal (script(1) gives one) while the report goes to a file; nothing
    /// when standard error is not a terminal, or when the report goes to that same terminal.
    @Test(.enabled(if: Prerequisite.runs(Run.tool("script") != nil), "script (util-linux) is not installed"))
    func progressOnlyOnATerminal() throws {
        let script = try #require(Run.tool("script"), "missing prerequisite: script")
        let dir = try Dir()
        let big = try largeCapture(in: dir)
        let report = dir.path + "/report.txt"
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let onTerminal = try Run.program(
            script, ["-qec", "'\(exe)' analyze -o '\(report)' '\(big)'", "/dev/null"],
            environment: ["TERM": "xterm", "PATH": path])
        #expect(onTerminal.stdout.contains("rdptriage: \(big): "), "\(onTerminal.stdout.suffix(500))")
        #expect(onTerminal.stdout.contains(" MiB of 66 MiB ("), "\(onTerminal.stdout.suffix(500))")
        #expect(onTerminal.stdout.contains(" frames, 1 attempt, ") && onTerminal.stdout.contains(" MiB/s"))
        // The line is erased at the end: the last thing on the terminal is the erase.
        #expect(onTerminal.stdout.hasSuffix("\r\u{1B}[K"), "\(onTerminal.stdout.suffix(200).debugDescription)")
        #expect(try String(contentsOfFile: report, encoding: .utf8).contains("large.pcap"))

        let sameTerminal = try Run.program(
            script, ["-qec", "'\(exe)' analyze --max-repeats 1 '\(big)'", "/dev/null"],
            environment: ["TERM": "xterm", "PATH": path])
        #expect(!sameTerminal.stdout.contains(" MiB of "), "progress over the report")

        let piped = try Run.program(exe, ["analyze", "-o", report, big])
        #expect(piped.stderr.isEmpty, "progress without a terminal: \(piped.stderr.prefix(300))")
    }
}
