import Foundation
import TestSupport
import Testing
import TriageDiagnosis
import TriageEngine
import TriageFlows

/// The command line as users run it: exit codes, one-line errors, standard input, reports.
@Suite struct CLITests {
    let exe = Repo.executable

    func run(_ args: [String], stdin: String? = nil) throws -> Run {
        try Run.program(exe, args, stdin: stdin)
    }

    /// A capture from the lab in which the attempt failed (any will do).
    var failing: String { Repo.captures + "/rst-refused.pcap" }
    var healthy: String { Repo.captures + "/success-tls.pcap" }

    @Test func executableWasBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: exe), "\(exe)")
    }

    /// --failures-only and --attempt narrow what is shown, not what is counted. retry-then-
    /// success was made as two refused attempts, a client that gave up, then a success.
    @Test func showingFailuresOrChosenAttempts() throws {
        let capture = Repo.captures + "/retry-then-success.pcap"
        func shown(_ out: String) -> [String] {
            out.split(separator: "\n").filter { $0.hasPrefix("  #") }.map { String($0.split(separator: " ")[0]) }
        }
        let failures = try run(["analyze", "--color", "never", "--failures-only", capture])
        #expect(failures.status == 1)
        #expect(shown(failures.stdout) == ["#1", "#2", "#3"])
        #expect(failures.stdout.contains("  4 RDP attempts: 1 client-abort, 2 rst-refused, 1 success; 3 failed;"))
        #expect(failures.stdout.contains("Shown: failed attempts only (--failures-only); 1 other attempt counted above but not shown."))
        let chosen = try run(["analyze", "--color", "never", "--attempt", "4", "--attempt", "2", capture])
        #expect(shown(chosen.stdout) == ["#2", "#4"])
        let json = try run(["analyze", "--format", "json", "--failures-only", capture])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let attempts = try #require((doc["inputs"] as? [[String: Any]])?.first?["attempts"] as? [[String: Any]])
        #expect(attempts.map { $0["attempt"] as? Int } == [1, 2, 3])
        #expect(try run(["analyze", "--attempt", "0", capture]).status == 2)
    }

    /// `analyse`, the spelling the help uses, is the same command.
    @Test func britishSpelling() throws {
        let a = try run(["analyse", "--color", "never", failing])
        let b = try run(["analyze", "--color", "never", failing])
        #expect(a.status == 1 && a.stdout == b.stdout && !a.stdout.isEmpty)
    }

    /// Sizes take units (binary: K is 1024): 64K is 65,536 bytes, above the 4,096 minimum;
    /// 1K is below it; a unit that does not exist is a usage error, its lines kept as lines.
    @Test func sizesTakeUnits() throws {
        #expect(try run(["analyze", "--max-buffer", "1M", "--max-session-buffer", "64K", failing]).status == 1)
        #expect(try run(["analyze", "--max-buffer", "256MiB", failing]).status == 1)
        let small = try run(["analyze", "--max-session-buffer", "1K", failing])
        #expect(small.status == 2 && small.stderr.contains("--max-session-buffer must be at least 4096"), "\(small.stderr)")
        let bad = try run(["analyze", "--max-buffer", "1X", failing])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("The value '1X' is invalid for '--max-buffer"), "\(bad.stderr)")
        #expect(!bad.stderr.contains("\\x0a") && bad.stderr.contains("\nUsage: "), "\(bad.stderr)")
        #expect(try run(["analyze", "--help"]).stdout.contains("(default: 256M)"))
    }

    /// On a terminal whose TERM is dumb, --color auto writes no escape codes (run under
    /// script(1), which gives the program a terminal).
    @Test(.enabled(if: Prerequisite.runs(Run.tool("script") != nil), "script (util-linux) is not installed"))
    func dumbTerminalGetsNoColour() throws {
        let script = try #require(Run.tool("script"), "missing prerequisite: script")
        let command = "\(exe) analyze --color auto \(failing)"
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dumb = try Run.program(script, ["-qec", command, "/dev/null"], environment: ["TERM": "dumb", "PATH": path])
        #expect(dumb.stdout.contains("rst-refused"), "\(dumb.stdout)")
        #expect(!dumb.stdout.contains("\u{1B}["), "escape codes on a dumb terminal")
        let colour = try Run.program(script, ["-qec", command, "/dev/null"], environment: ["TERM": "xterm", "PATH": path])
        #expect(colour.stdout.contains("\u{1B}["), "a real terminal gets colour (the test can tell)")
    }

    /// Colour only wraps the label (bold and red or green) and the headings: without the
    /// escape sequences the text is the plain report.
    @Test func colourAddsOnlyEscapes() throws {
        for path in [failing, healthy] {
            let plain = try run(["analyze", "--color", "never", path]).stdout
            let painted = try run(["analyze", "--color", "always", path]).stdout
            let stripped = painted.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
            #expect(stripped == plain, "\(path)")
            #expect(painted != plain)
        }
        let painted = try run(["analyze", "--color", "always", failing]).stdout
        #expect(painted.contains("\u{1B}[1m\u{1B}[31mrst-refused\u{1B}[0m\u{1B}[0m"))
        #expect(try run(["analyze", "--color", "always", healthy]).stdout.contains("\u{1B}[32msuccess\u{1B}[0m"))
    }

    @Test func badInputsGetOneLineErrorsAndTheRunGoesOn() throws {
        let dir = NSTemporaryDirectory() + "rdptriage-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Data(contentsOf: URL(fileURLWithPath: failing))
        let cases: [(String, Data?, String)] = [
            ("empty.pcap", Data(), "empty file"),
            ("text.pcap", Data("GET / HTTP/1.1\r\n".utf8), "not a pcap or pcapng file"),
            ("cut-header.pcap", good.prefix(12), "cut"),
            ("cut-record.pcap", good.prefix(good.count - 7), "cut in the middle of frame"),
            ("missing.pcap", nil, "no such file"),
            ("a-directory", nil, "is a directory"),
        ]
        var paths: [String] = []
        for (name, data, _) in cases {
            let p = dir + "/" + name
            if let data { try data.write(to: URL(fileURLWithPath: p)) }
            if name == "a-directory" { try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true) }
            paths.append(p)
        }
        let r = try run(["analyze", "--color", "never"] + paths + [healthy])
        #expect(r.status == 2, "input errors take precedence: \(r.status)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        for ((_, _, message), path) in zip(cases, paths) {
            let line = lines.first { $0.contains(path + ":") }
            #expect(line != nil, "no error line for \(path): \(r.stderr)")
            #expect(line?.contains(message) == true, "\(line ?? ""): expected \(message)")
            #expect(line?.hasPrefix("rdptriage: ") == true)
        }
        #expect(lines.count == cases.count, "one line per bad input: \(lines)")
        // The good file at the end was still analysed, and so was the cut file's first part.
        #expect(r.stdout.contains("success"))
        #expect(r.stdout.contains("cut-record.pcap"))
        #expect(!r.stdout.contains("Fatal error"))
        // The cut-record error names the byte offset.
        #expect(lines.contains { $0.contains("cut-record.pcap") && $0.contains("at byte") })
    }

    @Test func standardInput() throws {
        let r = try run(["analyze", "--format", "json", "-"], stdin: failing)
        #expect(r.status == 1)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let inputs = json?["inputs"] as? [[String: Any]]
        #expect(inputs?.first?["input"] as? String == "-")
        #expect((inputs?.first?["attempts"] as? [Any])?.count ?? 0 >= 1)
    }

    @Test func exitCodes() throws {
        #expect(try run(["analyze", healthy]).status == 0)
        #expect(try run(["analyze", failing]).status == 1)
        #expect(try run(["analyze", "--no-detect", "--filter", "udp", failing]).status == 3)
        #expect(try run([]).status == 2)
        #expect(try run(["analyze"]).status == 2)
        #expect(try run(["analyze", "--format", "yaml", healthy]).status == 2)
        #expect(try run(["analyze", "--port", "70000", healthy]).status == 2)
        #expect(try run(["analyze", "--reported", "banana", healthy]).status == 2)
        #expect(try run(["analyze", "--filter", "tcp port (", healthy]).status == 2)
        #expect(try run(["--help"]).status == 0)
    }

    /// The benchmark's stage cut: a hidden option that reports no attempts, and checks its value.
    @Test func benchmarkStageCut() throws {
        for stage in ["read", "decode", "track", "parse", "facts"] {
            let r = try run(["analyze", "--bench-stop-after", stage, "--format", "json", failing])
            #expect(r.status == 3, "\(stage): nothing classified, nothing reported")
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let frames = (json?["inputs"] as? [[String: Any]])?.first?["frames"] as? Int
            // Frames are counted by the session tracker, which the first two cuts skip.
            #expect(["read", "decode"].contains(stage) ? frames == 0 : (frames ?? 0) > 0, "\(stage)")
        }
        let bad = try run(["analyze", "--bench-stop-after", "everything", failing])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("read, decode, track, parse, facts"))
        #expect(try !run(["analyze", "--help"]).stdout.contains("bench-stop-after"), "hidden from the help")
    }

    /// Reading on the packet thread (the benchmark's comparison) reports exactly the same.
    @Test func benchmarkWithoutReadAhead() throws {
        let args = ["analyze", "--format", "json", failing, healthy, Repo.captures + "/background-traffic.pcap"]
        let ahead = try run(args)
        let inline = try run(args + ["--bench-no-read-ahead"])
        #expect(inline.status == ahead.status)
        #expect(inline.stdout == ahead.stdout)
        #expect(try !run(["analyze", "--help"]).stdout.contains("read-ahead"), "hidden from the help")
    }

    @Test func jsonSchema() throws {
        let r = try run(["analyze", "--format", "json", "--schema", "1", failing, healthy])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["schema"] as? String == "rdptriage.report")
        #expect(json["schema_version"] as? Int == 1)
        let inputs = try #require(json["inputs"] as? [[String: Any]])
        #expect(inputs.count == 2)
        let attempt = try #require((inputs[0]["attempts"] as? [[String: Any]])?.first)
        let verdict = try #require(attempt["verdict"] as? [String: Any])
        for key in ["label", "cause", "stage", "ended_by", "confidence", "summary", "evidence", "remediation", "client_report", "rule"] {
            #expect(verdict[key] != nil, "verdict.\(key)")
        }
        for key in ["number", "client", "server", "tcp", "rdp", "dns"] { #expect(attempt[key] != nil, "attempt.\(key)") }
        let summary = try #require(json["summary"] as? [String: Any])
        #expect(summary["exit_code"] as? Int == 1)
        #expect(summary["inputs"] as? Int == 2)
    }

    @Test func outputFile() throws {
        let path = NSTemporaryDirectory() + "rdptriage-\(UUID().uuidString).md"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try run(["analyze", "--format", "markdown", "--output", path, failing])
        #expect(r.stdout.isEmpty)
        let md = try String(contentsOfFile: path, encoding: .utf8)
        #expect(md.contains("### Attempt 1"))
        #expect(md.contains("| Frame |"))
        #expect(try run(["analyze", "--output", "/nonexistent-dir/x.txt", failing]).status == 2)
    }

    @Test func redactReplacesAddressesEverywhere() throws {
        let r = try run(["analyze", "--redact", "--format", "json", failing])
        #expect(!r.stdout.contains("192.0.2.10"))
        #expect(!r.stdout.contains("198.51.100.20"))
        #expect(r.stdout.contains("198.18.0."))
        // Same input, same pseudonyms.
        #expect(try run(["analyze", "--redact", "--format", "json", failing]).stdout == r.stdout)
    }
}

/// `--export`: each failed attempt's own frames as a pcap tshark reads, its report, and its
/// key-log lines; with `--redact` nothing identifying is left in the exported frames.
@Suite(.enabled(if: Prerequisite.runs(Tshark.path != nil), "tshark is not installed"))
struct ExportTests {
    let capture = Repo.captures + "/credssp-wrong-password.pcap"

    func tshark(_ args: [String]) throws -> String { try Tshark.run(args) }

    @Test func exportedFramesReportAndKeys() throws {
        let dir = NSTemporaryDirectory() + "rdptriage-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Run.program(
            Repo.executable,
            ["analyze", "--export", dir, "--keylog", Repo.captures + "/credssp-wrong-password.keys", capture])
        #expect(r.status == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files.filter { $0.hasSuffix(".pcap") }.count == 2, "\(files)")
        for pcap in files.filter({ $0.hasSuffix(".pcap") }) {
            let stem = dir + "/" + (pcap as NSString).deletingPathExtension
            #expect(FileManager.default.fileExists(atPath: stem + ".md"))
            // The same frames as the attempt's TCP stream in the original capture.
            let exported = try tshark(["-r", dir + "/" + pcap, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport"])
                .split(separator: "\n")
            let clientPort = try #require(exported.first?.split(separator: "\t").first.map(String.init))
            let original = try tshark(["-r", capture, "-Y", "tcp.port == \(clientPort)"]).split(separator: "\n")
            #expect(exported.count == original.count)
            // The key-log lines are the ones of this connection's ClientHello random.
            let random = try tshark(["-r", capture, "-d", "tcp.port==3389,tls", "-Y", "tcp.port == \(clientPort) && tls.handshake.type == 1",
                                     "-T", "fields", "-e", "tls.handshake.random"]).trimmingCharacters(in: .whitespacesAndNewlines)
                .replacingOccurrences(of: ":", with: "")
            let keys = try String(contentsOfFile: stem + ".keys", encoding: .utf8).split(separator: "\n")
            #expect(!keys.isEmpty)
            #expect(keys.allSatisfy { $0.split(separator: " ")[1].lowercased() == random.lowercased() })
            // And they decrypt the exported capture: tshark then sees TLS application data in clear.
            let decrypted = try tshark(["-r", dir + "/" + pcap, "-o", "tls.keylog_file:\(stem).keys", "-d", "tcp.port==3389,tls",
                                        "-Y", "tls.handshake.type == 11 || tls.handshake.type == 20"])
            #expect(!decrypted.isEmpty, "the exported keys decrypt the exported frames")
        }
    }

    @Test func redactedExportHidesAddressesAndNames() throws {
        let dir = NSTemporaryDirectory() + "rdptriage-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let neg = Repo.captures + "/neg-hybrid-required.pcap"
        _ = try Run.program(Repo.executable, ["analyze", "--redact", "--export", dir, neg])
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        let pcap = try #require(files.first { $0.hasSuffix(".pcap") })
        let text = try tshark(["-r", dir + "/" + pcap, "-V", "-x"])
        #expect(!text.contains("192.0.2.10"))
        #expect(!text.contains("198.51.100.20"))
        #expect(!text.contains("alice"))
        #expect(text.contains("mstshash=user1"))
        let original = try tshark(["-r", neg]).split(separator: "\n").count
        #expect(try tshark(["-r", dir + "/" + pcap]).split(separator: "\n").count == original)
        let md = try String(contentsOfFile: dir + "/" + pcap.replacingOccurrences(of: ".pcap", with: ".md"), encoding: .utf8)
        #expect(!md.contains("192.0.2.10") && !md.contains("alice"))
    }

    @Test func exportFromStandardInputIsAClearError() throws {
        let r = try Run.program(Repo.executable, ["analyze", "--export", NSTemporaryDirectory(), "-"], stdin: capture)
        #expect(r.status == 2)
        #expect(r.stderr.contains("standard input: --export needs a capture file"))
    }
}

/// A capture taken with a small snapshot length (tcpdump -s 96): frames are decoded as far
/// as they go and counted, the TCP facts stay right, and the cut bytes are gaps, not errors.
@Suite(.enabled(if: Prerequisite.runs(Run.tool("editcap") != nil), "editcap (wireshark-common) is not installed"))
struct SnapshotLengthTests {
    @Test func cutFramesAreCountedNotFatal() throws {
        let cut = NSTemporaryDirectory() + "rdptriage-snap-\(UUID().uuidString).pcap"
        defer { try? FileManager.default.removeItem(atPath: cut) }
        let original = Repo.captures + "/success-tls.pcap"
        let editcap = try #require(Run.tool("editcap"), "missing prerequisite: editcap (apt-get install wireshark-common)")
        let r = try Run.program(editcap, ["-s", "96", original, cut])
        try #require(r.status == 0, "editcap: \(r.stderr)")
        let full = analyze(original)
        let short = analyze(cut)
        #expect(short.summaries.first?.error == nil)
        #expect(short.summaries.first?.stats.cutFrames ?? 0 > 0)
        try #require(short.attempts.count == full.attempts.count)
        let a = short.attempts[0].facts.tcp
        let b = full.attempts[0].facts.tcp
        #expect(a.outcome == b.outcome)
        #expect(a.endedBy == b.endedBy)
        #expect(a.clientSide.frames == b.clientSide.frames && a.serverSide.frames == b.serverSide.frames)
        #expect(a.clientSide.frameBytes == b.clientSide.frameBytes)
        #expect(a.serverSide.streamBytes == b.serverSide.streamBytes)
        #expect(a.serverSide.gaps.contains { $0.reason == .snaplen })
        #expect(a.serverSide.cutFrames > 0)
    }
}
