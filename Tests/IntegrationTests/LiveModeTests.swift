import Foundation
import TestSupport
import TriageDiagnosis
import TriageEngine
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `rdptriage live` for real, in a network namespace of its own: connections made by the
/// kernel's own TCP (a refused port on loopback, a SYN into a veth nobody answers), signals,
/// --count, --duration, and the bad situations (no permission, unknown interface, an interface
/// deleted mid-run). Needs root and network namespaces: skipped with a message without them
/// outside CI, failed in CI.
@Suite(.serialized) struct LiveModeTests {
    // Every step of these tests waits a bounded time of its own; the 10-minute limits only catch a
    // hang. They are long because the runner starts the clock while other tests may still hold
    // its few threads on 2 cores.
    static var available: Bool { getuid() == 0 && Prerequisite.tool("ip") != nil && Prerequisite.tool("python3") != nil }
    static let skip = "live mode tests skipped: need root, ip(8) and python3 (network namespaces)"

    /// A network namespace with loopback up and a veth pair (v0 192.0.2.1/24 with a static
    /// neighbour 192.0.2.2 that does not exist, so SYNs leave and nothing answers).
    final class Namespace {
        let name: String
        init() throws {
            name = "rdpt-live-t\(getpid())-\(UInt32.random(in: 0..<1_000_000))"
            let steps: [[String]] = [
                ["netns", "add", name],
                ["-n", name, "link", "set", "lo", "up"],
                ["-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                ["-n", name, "addr", "add", "192.0.2.1/24", "dev", "v0"],
                ["-n", name, "link", "set", "v0", "up"],
                ["-n", name, "link", "set", "v1", "up"],
                ["-n", name, "neigh", "add", "192.0.2.2", "lladdr", "02:00:00:00:00:02", "dev", "v0", "nud", "permanent"],
            ]
            for s in steps {
                let r = try Run.program(Prerequisite.tool("ip")!, s)
                if r.status != 0 {
                    _ = try? Run.program(Prerequisite.tool("ip")!, ["netns", "del", name])
                    throw LiveTestError("ip \(s.joined(separator: " ")): \(r.stderr)")
                }
            }
        }
        deinit { _ = try? Run.program(Prerequisite.tool("ip")!, ["netns", "del", name]) }

        /// Runs a short Python snippet inside the namespace.
        func python(_ code: String) throws -> Run {
            try Run.program(Prerequisite.tool("ip")!, ["netns", "exec", name, Prerequisite.tool("python3")!, "-c", code])
        }

        /// One TCP connection attempt, made by the kernel; returns once it failed.
        func connect(_ host: String, _ port: Int, timeout: Double = 2) throws {
            _ = try python(
                "import socket\ns=socket.socket()\ns.settimeout(\(timeout))\ntry: s.connect(('\(host)',\(port)))\nexcept Exception: pass\ns.close()")
        }
    }

    struct LiveTestError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// rdptriage live running in the background, its output going to files.
    final class LiveProcess {
        let process = Process()
        let dir: String
        var stdoutPath: String { dir + "/out" }
        var stderrPath: String { dir + "/err" }

        init(_ args: [String], in ns: Namespace?, user: String? = nil) throws {
            dir = NSTemporaryDirectory() + "rdptriage-livetest-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: dir + "/out", contents: nil)
            _ = FileManager.default.createFile(atPath: dir + "/err", contents: nil)
            var command = [Repo.executable, "live"] + args
            if let user { command = ["/usr/bin/setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups"] + command }
            if let ns { command = [Prerequisite.tool("ip")!, "netns", "exec", ns.name] + command }
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            process.standardOutput = FileHandle(forWritingAtPath: dir + "/out")
            process.standardError = FileHandle(forWritingAtPath: dir + "/err")
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            try process.run()
        }

        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: dir)
        }

        var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        /// Waits until `condition` holds, at most `seconds`; returns how long it took, or nil.
        @discardableResult
        func wait(upTo seconds: Double, for condition: () -> Bool) -> Double? {
            let start = Date()
            while Date().timeIntervalSince(start) < seconds {
                if condition() { return Date().timeIntervalSince(start) }
                usleep(20_000)
            }
            return condition() ? Date().timeIntervalSince(start) : nil
        }

        func started() -> Bool { wait(upTo: 10) { stderr.contains("listening on") } != nil }

        func signal(_ s: Int32) { kill(process.processIdentifier, s) }

        /// Waits for the exit (at most `seconds`, then kills it); returns the status, nil if killed.
        func exit(within seconds: Double) -> Int32? {
            if wait(upTo: seconds, for: { !process.isRunning }) == nil {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return nil
            }
            process.waitUntilExit()
            return process.terminationStatus
        }

        /// The NDJSON lines written so far, parsed.
        var lines: [[String: Any]] {
            stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
    }

    /// A refused connection on loopback: its verdict streams out while the capture runs (well
    /// within the two seconds live mode promises), SIGUSR1 writes a summary so far, SIGTERM
    /// ends the run with the final summary and libpcap's counters. NDJSON: every line one object.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func refusedConnectionStreamsThenSignals() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let live = try LiveProcess(["-i", "lo", "--format", "ndjson"], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        try ns.connect("127.0.0.1", 3389)
        let took = live.wait(upTo: 5) { live.lines.contains { $0["type"] as? String == "attempt" } }
        #expect(took != nil, "no verdict while running: \(live.stdout) \(live.stderr)")
        #expect((took ?? 99) < 2.5, "the verdict took \(took ?? 99) s")
        let attempt = live.lines.first { $0["type"] as? String == "attempt" }
        let verdict = attempt?["verdict"] as? [String: Any]
        #expect(verdict?["label"] as? String == "rst-refused")
        let destination = attempt?["destination"] as? [String: Any]
        #expect(destination?["ip"] as? String == "127.0.0.1" && destination?["port"] as? Int == 3389)
        #expect(attempt?["input"] as? String == "lo")

        live.signal(SIGUSR1)
        let progress = live.wait(upTo: 3) { live.lines.contains { $0["type"] as? String == "summary" } }
        #expect(progress != nil, "no summary after SIGUSR1")
        #expect(live.process.isRunning, "SIGUSR1 stopped the run")
        let soFar = live.lines.first { $0["type"] as? String == "summary" }
        #expect(soFar?["final"] as? Bool == false)
        #expect(soFar?["attempts"] as? Int == 1)

        live.signal(SIGTERM)
        let status = live.exit(within: 5)
        #expect(status == 1, "exit status \(String(describing: status)) (1: failures seen)")
        let last = live.lines.last
        #expect(last?["type"] as? String == "summary")
        #expect(last?["final"] as? Bool == true)
        #expect(last?["attempts"] as? Int == 1)
        #expect(last?["failures"] as? Int == 1)
        #expect(last?["exit_code"] as? Int == 1)
        let capture = last?["capture"] as? [String: Any]
        #expect((capture?["received"] as? Int ?? 0) >= 2, "pcap_stats: \(String(describing: capture))")
        #expect(capture?["dropped_by_kernel"] as? Int == 0)
        let groups = last?["by_server"] as? [[String: Any]]
        #expect(groups?.first?["server"] as? String == "127.0.0.1:3389")
        #expect(groups?.first?["label"] as? String == "rst-refused")
        for line in live.stdout.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not one JSON object: \(line)")
        }
    }

    /// Text output with --count: the block as `analyze` prints it, flushed at once, and the
    /// run ends by itself after the one attempt, with the per-server summary and the counters.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func countStopsTextRun() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let live = try LiveProcess(["-i", "lo", "--count", "1", "--color", "never"], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        try ns.connect("127.0.0.1", 3389)
        let status = live.exit(within: 6)
        #expect(status == 1, "--count 1 did not end the run (status \(String(describing: status))): \(live.stdout)")
        let out = live.stdout
        #expect(out.contains("#1  127.0.0.1:"), "\(out)")
        #expect(out.contains("→ 127.0.0.1:3389  rst-refused  [host-not-accepting, tcp-handshake, ended by server"), "\(out)")
        #expect(out.contains("1 RDP attempt: 1 rst-refused; 1 failed"), "\(out)")
        // Written as it came, before the summary (not spooled behind it as analyze does).
        if let block = out.range(of: "#1  127.0.0.1:"), let summary = out.range(of: "1 RDP attempt") {
            #expect(block.lowerBound < summary.lowerBound, "\(out)")
        }
        #expect(out.contains("    127.0.0.1:3389: 1 rst-refused"), "\(out)")
        #expect(out.contains("  Capture: "), "\(out)")
        #expect(out.contains("dropped by the kernel"), "\(out)")
    }

    /// A SYN nobody answers is reported after --syn-timeout while the capture runs, not at
    /// the stop; --duration ends the run by itself.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func unansweredSynReportedAfterTimeout() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let live = try LiveProcess(["-i", "v0", "--format", "ndjson", "--syn-timeout", "1", "--duration", "6"], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        // One SYN: the socket gives up before the kernel's first retransmission.
        try ns.connect("192.0.2.2", 3389, timeout: 0.3)
        let took = live.wait(upTo: 4) { live.lines.contains { $0["type"] as? String == "attempt" } }
        #expect(took != nil, "unanswered SYN not reported while running: \(live.stdout)")
        #expect(live.process.isRunning)
        let attempt = live.lines.first { $0["type"] as? String == "attempt" }
        #expect((attempt?["verdict"] as? [String: Any])?["label"] as? String == "syn-unanswered")
        let status = live.exit(within: 8)
        #expect(status == 1, "--duration did not end the run: \(String(describing: status))")
        let last = live.lines.last
        #expect(last?["final"] as? Bool == true)
        #expect(last?["open_sessions"] as? Int == 0, "reported only at the stop")
    }

    /// Nothing seen in the time given: exit 3, as analyze on a capture without RDP.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func durationWithNothingSeen() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let live = try LiveProcess(["-i", "lo", "--duration", "1", "--color", "never"], in: ns)
        let status = live.exit(within: 6)
        #expect(status == 3, "status \(String(describing: status)): \(live.stderr)")
        #expect(live.stdout.contains("0 RDP attempts"), "\(live.stdout)")
    }

    /// An interface deleted mid-run: the run ends with the summary written and a one-line
    /// error, exit 2, no crash.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func vanishedInterface() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let live = try LiveProcess(["-i", "v0", "--color", "never"], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        let del = try Run.program(Prerequisite.tool("ip")!, ["-n", ns.name, "link", "del", "v0"])
        #expect(del.status == 0, "\(del.stderr)")
        let status = live.exit(within: 5)
        #expect(status == 2, "status \(String(describing: status)); stderr: \(live.stderr)")
        #expect(live.stdout.contains("0 RDP attempts"), "summary: \(live.stdout)")
        let errors = live.stderr.split(separator: "\n").filter { !$0.contains("listening on") }
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.hasPrefix("rdptriage: v0: capture stopped") == true, "\(errors)")
    }

    /// An interface that does not exist: exit 2 and the ones that do.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func unknownInterface() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let live = try LiveProcess(["-i", "nosuch9"], in: ns)
        let status = live.exit(within: 5)
        #expect(status == 2)
        let lines = live.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.hasPrefix("rdptriage: nosuch9: no such interface; interfaces: ") == true, "\(lines)")
        #expect(lines.first?.contains("v0") == true && lines.first?.contains("lo") == true, "\(lines)")
        let list = try Run.program(Prerequisite.tool("ip")!, ["netns", "exec", ns.name, Repo.executable, "live", "--list-interfaces"])
        #expect(list.status == 0)
        #expect(list.stdout.split(separator: "\n").contains { $0.hasPrefix("v1") }, "\(list.stdout)")
    }

    /// No right to capture (an unprivileged user): one line naming the capability and two ways
    /// to grant it, exit 2.
    @Test(.enabled(if: Prerequisite.runs(available && Prerequisite.tool("setpriv") != nil), Comment(rawValue: skip + " and setpriv")),
          .timeLimit(.minutes(10)))
    func noPermission() throws {
        try #require(Self.available && Prerequisite.tool("setpriv") != nil, "missing prerequisite: root, ip, python3, setpriv")
        let live = try LiveProcess(["-i", "lo"], in: nil, user: "65534")
        let status = live.exit(within: 5)
        let lines = live.stderr.split(separator: "\n")
        try #require(lines.count == 1, "\(lines)")
        #expect(status == 2, "\(lines)")
        let line = String(lines[0])
        #expect(line.hasPrefix("rdptriage: lo: no permission to capture"), "\(line)")
        #expect(line.contains("CAP_NET_RAW"))
        #expect(line.contains("setcap cap_net_raw,cap_net_admin=eip"))
        #expect(line.contains("AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN"))
    }

    /// --metrics: the endpoint serves the attempts by label, cause and server, the capture
    /// counters and (with --export) the export's, in an exposition promtool accepts; anything but
    /// /metrics is a 404.
    @Test(.enabled(if: Prerequisite.runs(available && Prerequisite.tool("promtool") != nil), Comment(rawValue: skip + " and promtool (Debian prometheus)")),
          .timeLimit(.minutes(10)))
    func metricsEndpoint() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let promtool = try #require(Prerequisite.tool("promtool"), "missing prerequisite: promtool (Debian package prometheus)")
        let ns = try Namespace()
        let exported = NSTemporaryDirectory() + "rdptriage-metrics-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: exported) }
        let live = try LiveProcess(["-i", "lo", "--format", "ndjson", "--metrics", "127.0.0.1:0", "--export", exported], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        let announced = live.stderr.split(separator: "\n").first { $0.hasPrefix("rdptriage: metrics at http://127.0.0.1:") }
        let url = try #require(announced.map { String($0.dropFirst("rdptriage: metrics at ".count)) }, "\(live.stderr)")
        try ns.connect("127.0.0.1", 3389)
        try ns.connect("127.0.0.1", 3389)
        live.wait(upTo: 5) { live.lines.filter { $0["type"] as? String == "attempt" }.count == 2 }
        // The gauges are refreshed once a second.
        usleep(1_200_000)
        let fetch = """
            import sys, urllib.request, urllib.error
            try:
                sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())
            except urllib.error.HTTPError as e:
                sys.stdout.write(str(e.code))
            """
        let scrape = try Run.program(
            Prerequisite.tool("ip")!, ["netns", "exec", ns.name, Prerequisite.tool("python3")!, "-c", fetch, url])
        let body = scrape.stdout
        #expect(body.contains(
            "rdptriage_attempts_total{interface=\"lo\",label=\"rst-refused\",cause=\"host-not-accepting\",server=\"127.0.0.1:3389\"} 2"),
            "\(body)")
        #expect(body.contains("rdptriage_failures_total{interface=\"lo\"} 2"), "\(body)")
        #expect(body.contains("rdptriage_packets_dropped_kernel_total{interface=\"lo\"} 0"), "\(body)")
        #expect(body.contains("rdptriage_sessions_open{interface=\"lo\"} 0"), "\(body)")
        #expect(body.contains("rdptriage_export_attempts_total{interface=\"lo\"} 2"), "\(body)")
        #expect(body.contains("rdptriage_export_sessions_evicted_total{interface=\"lo\"} 0"), "\(body)")
        let dir = NSTemporaryDirectory() + "rdptriage-metrics-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body.write(toFile: dir, atomically: true, encoding: .utf8)
        let check = try Run.program(promtool, ["check", "metrics"], stdin: dir)
        #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
        let other = try Run.program(
            Prerequisite.tool("ip")!, ["netns", "exec", ns.name, Prerequisite.tool("python3")!, "-c", fetch, url.replacingOccurrences(of: "/metrics", with: "/")])
        #expect(other.stdout == "404")
        live.signal(SIGINT)
        #expect(live.exit(within: 5) == 1)
    }

    /// A reader that leaves (`| head -1`): the next write fails, the run ends quietly (no
    /// message, no crash) with the exit code of what it saw.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func closedPipeEndsQuietly() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let dir = NSTemporaryDirectory() + "rdptriage-pipe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            "$1" live -i lo --format ndjson 2>"$2/err" | head -1 >"$2/out"; echo "${PIPESTATUS[0]}" >"$2/status"
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Prerequisite.tool("ip")!)
        p.arguments = ["netns", "exec", ns.name, "/bin/bash", "-c", script, "bash", Repo.executable, dir]
        try p.run()
        func read(_ name: String) -> String { (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "" }
        var waited = 0
        while !read("err").contains("listening on") && waited < 100 {
            usleep(100_000)
            waited += 1
        }
        // The first attempt fills head's one line; a later one finds the pipe closed.
        for _ in 0..<3 {
            try ns.connect("127.0.0.1", 3389)
            usleep(1_600_000)
        }
        var done = 0
        while p.isRunning && done < 50 {
            usleep(100_000)
            done += 1
        }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        #expect(read("out").hasPrefix("{\"type\":\"attempt\""), "\(read("out"))")
        #expect(read("status").trimmingCharacters(in: .whitespacesAndNewlines) == "1", "status \(read("status")), stderr \(read("err"))")
        let errors = read("err").split(separator: "\n").filter { !$0.contains("listening on") }
        #expect(errors.isEmpty, "\(errors)")
    }

    /// A bounded SYN flood (8,000 SYNs from distinct ports, none answered) against
    /// --max-sessions 500: the oldest half-open attempts are reported early and counted, and
    /// the process's peak memory stays small.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func synFloodStaysBounded() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let live = try LiveProcess(["-i", "v0", "--format", "ndjson", "--max-sessions", "500"], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        let flood = try ns.python("""
            import resource, socket, errno
            resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
            sent = 0
            for batch in range(8):
                socks = []
                for i in range(1000):
                    s = socket.socket()
                    s.setblocking(False)
                    if s.connect_ex(('192.0.2.2', 3389)) in (errno.EINPROGRESS, 0):
                        sent += 1
                    socks.append(s)
                for s in socks:
                    s.close()
            print(sent)
            """)
        #expect(flood.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "8000", "\(flood.stderr)")
        // The peak resident memory while the flood is being worked through, then the stop.
        usleep(2_000_000)
        let status = (try? String(contentsOfFile: "/proc/\(live.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        live.signal(SIGINT)
        #expect(live.exit(within: 20) == 1)
        let tail = live.stdout.split(separator: "\n").last.map { String($0) } ?? ""
        let last = try? JSONSerialization.jsonObject(with: Data(tail.utf8)) as? [String: Any]
        let stats = last?["stats"] as? [String: Any]
        #expect(last?["attempts"] as? Int == 8_000, "\(String(describing: last))")
        #expect((stats?["sessions_evicted"] as? Int ?? 0) >= 7_000, "\(String(describing: stats))")
        let groups = last?["by_server"] as? [[String: Any]]
        #expect(groups?.first?["label"] as? String == "syn-unanswered")
        #expect(hwm > 0 && hwm < 150_000, "peak resident memory \(hwm) kB")
        let capture = last?["capture"] as? [String: Any]
        #expect(capture?["dropped_by_kernel"] as? Int == 0, "\(String(describing: capture))")
    }

    /// `--export` into a directory that cannot be made: said once on standard error, counted in
    /// the summary, and the capture goes on reporting every attempt. Then one that can: each
    /// failed attempt's pcap and report appear as it is reported, while the run goes on.
    @Test(.enabled(if: Prerequisite.runs(available), Comment(rawValue: skip)), .timeLimit(.minutes(10)))
    func exportProblemSaidOnceAndExportWhileRunning() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let ns = try Namespace()
        let bad = try LiveProcess(["-i", "lo", "--format", "ndjson", "--export", "/proc/rdptriage-cannot-be-made"], in: ns)
        try #require(bad.started(), "live did not start: \(bad.stderr)")
        for _ in 0..<2 {
            try ns.connect("127.0.0.1", 3389)
            usleep(1_500_000)
        }
        #expect(bad.wait(upTo: 5) { bad.lines.filter { $0["type"] as? String == "attempt" }.count == 2 } != nil, "\(bad.stdout)")
        bad.signal(SIGTERM)
        #expect(bad.exit(within: 10) == 1)
        let said = bad.stderr.split(separator: "\n").filter { $0.contains("--export") }
        #expect(said.count == 1, "\(bad.stderr)")
        let export = bad.lines.last?["export"] as? [String: Any]
        #expect(export?["export_failures"] as? Int == 2 && export?["attempts_exported"] as? Int == 0, "\(String(describing: export))")

        let dir = NSTemporaryDirectory() + "rdptriage-live-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let live = try LiveProcess(["-i", "lo", "--format", "ndjson", "--export", dir], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        try ns.connect("127.0.0.1", 3389)
        func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }
        // Each file is written under a temporary name and then linked to its own: wait for the
        // two final names alone (counting entries raced the temporary ones on a busy machine).
        func exported() -> Bool {
            let f = files()
            return f.count == 2 && f.contains { $0.hasSuffix("-attempt1-rst-refused.pcap") }
                && f.contains { $0.hasSuffix("-attempt1-rst-refused.md") }
        }
        let written = live.wait(upTo: 10) { exported() }
        #expect(written != nil && live.process.isRunning, "exported while running: \(files()) \(live.stderr)")
        live.signal(SIGTERM)
        #expect(live.exit(within: 10) == 1)
        let summary = live.lines.last?["export"] as? [String: Any]
        #expect(summary?["attempts_exported"] as? Int == 1, "\(String(describing: summary))")
        if let pcap = files().first(where: { $0.hasSuffix(".pcap") }), Tshark.path != nil {
            // SYN, RST: the attempt's two frames on loopback.
            let frames = try Tshark.run(["-r", dir + "/" + pcap, "-T", "fields", "-e", "tcp.flags.str"])
            #expect(frames.split(separator: "\n").count == 2, "\(frames)")
        }
    }

    /// The lab's working TLS connection (captures/success-tls.pcap) cut after 80 frames, then
    /// an RST from the server one second later: `analyze` on it says `reset`. Replayed live, the
    /// success is reported at the logon while the connection is open, then the same attempt again
    /// as the failure it turned into, counted once (as the failure).
    @Test(.enabled(if: Prerequisite.runs(available && Prerequisite.tool("tcpreplay") != nil), Comment(rawValue: skip + " and tcpreplay")),
          .timeLimit(.minutes(10)))
    func successAtLogonThenResetIsReportedAgain() throws {
        try #require(Self.available, "missing prerequisite: root, ip and python3")
        let tcpreplay = try #require(Prerequisite.tool("tcpreplay"), "missing prerequisite: tcpreplay")
        let dir = NSTemporaryDirectory() + "rdptriage-live-reset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcap = dir + "/success-then-reset.pcap"
        try Self.craftScript.write(toFile: dir + "/craft.py", atomically: true, encoding: .utf8)
        let craft = try Run.program(Prerequisite.tool("python3")!, [dir + "/craft.py", Repo.captures + "/success-tls.pcap", pcap, "80"])
        try #require(craft.status == 0, "\(craft.stderr)")
        let file = analyze(pcap)
        try #require(file.attempts.count == 1 && file.attempts[0].verdict.label.rawValue == "reset", "analyze: \(file.attempts.map(\.verdict.label))")

        let ns = try Namespace()
        let live = try LiveProcess(["-i", "v1", "--format", "ndjson"], in: ns)
        try #require(live.started(), "live did not start: \(live.stderr)")
        let replay = try Run.program(Prerequisite.tool("ip")!, ["netns", "exec", ns.name, tcpreplay, "-q", "-i", "v0", pcap])
        try #require(replay.status == 0, "tcpreplay: \(replay.stderr)")
        let both = live.wait(upTo: 10) { live.lines.filter { $0["type"] as? String == "attempt" }.count == 2 }
        #expect(both != nil, "\(live.stdout)")
        let attempts = live.lines.filter { $0["type"] as? String == "attempt" }
        try #require(attempts.count == 2)
        let first = attempts[0], second = attempts[1]
        #expect((first["verdict"] as? [String: Any])?["label"] as? String == "success")
        #expect((first["tcp"] as? [String: Any])?["outcome"] as? String == "open", "reported while the connection was open")
        #expect((second["verdict"] as? [String: Any])?["label"] as? String == "reset")
        #expect((second["verdict"] as? [String: Any])?["summary"] as? String == file.attempts[0].verdict.summary)
        #expect(first["attempt"] as? Int == 1 && second["attempt"] as? Int == 1, "the same attempt")
        live.signal(SIGTERM)
        #expect(live.exit(within: 10) == 1)
        let last = live.lines.last
        #expect(last?["attempts"] as? Int == 1 && last?["failures"] as? Int == 1, "\(String(describing: last))")
        let groups = last?["by_server"] as? [[String: Any]] ?? []
        #expect(groups.count == 1 && groups.first?["label"] as? String == "reset", "\(groups)")
    }

    /// Cuts a classic little-endian Ethernet pcap after N frames and appends an RST from the
    /// server (port 3389) one second after the last frame, with the next sequence numbers.
    static let craftScript = #"""
import struct, sys
src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, 'rb').read()
head, off, frames = data[:24], 24, []
while off + 16 <= len(data):
    sec, frac, incl, orig = struct.unpack('<IIII', data[off:off+16])
    frames.append((sec, frac, data[off+16:off+16+incl]))
    off += 16 + incl
frames = frames[:keep]
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
nxt = {}
server = None
for sec, frac, f in frames:
    ip = f[14:]; ihl = (ip[0] & 15) * 4; tcp = ip[ihl:]; doff = (tcp[12] >> 4) * 4
    plen = struct.unpack('!H', ip[2:4])[0] - ihl - doff
    sport = struct.unpack('!H', tcp[0:2])[0]
    seq = struct.unpack('!I', tcp[4:8])[0]
    flags = tcp[13]
    n = seq + plen + (1 if flags & 0x03 else 0)
    nxt[sport] = n & 0xffffffff
    if sport == 3389: server = f
sec, frac, _ = frames[-1]
ip = bytearray(server[14:34]); ihl = 20
tcp = bytearray(server[14 + (server[14] & 15) * 4:][:20])
cport = struct.unpack('!H', tcp[2:4])[0]
struct.pack_into('!I', tcp, 4, nxt[3389]); struct.pack_into('!I', tcp, 8, nxt[cport])
tcp[12] = 0x50; tcp[13] = 0x14; tcp[16:18] = b'\0\0'
ip[0] = 0x45; struct.pack_into('!H', ip, 2, 40); ip[10:12] = b'\0\0'
struct.pack_into('!H', ip, 10, csum(bytes(ip)))
pseudo = bytes(ip[12:20]) + struct.pack('!BBH', 0, 6, 20)
struct.pack_into('!H', tcp, 16, csum(pseudo + bytes(tcp)))
rst = server[:14] + bytes(ip) + bytes(tcp)
frames.append((sec + 1, frac, rst))
out = bytearray(head)
for sec, frac, f in frames:
    out += struct.pack('<IIII', sec, frac, len(f), len(f)) + f
open(dst, 'wb').write(out)
"""#
}
