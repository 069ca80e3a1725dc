import ArgumentParser
import Foundation
import Synchronization
import TriageCapture
import TriageDecoding
import TriageEngine
import TriageFlows
import TriageProtocols
import TriageReports

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the signal handlers tell the capture loop: set in the handler (an atomic store is
/// async-signal-safe), read by the loop after every frame and every quiet poll.
let liveStopRequested = Atomic<Int32>(0)
let liveSummaryRequested = Atomic<Int32>(0)

public struct Live: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Capture on a network interface and explain each RDP attempt as it ends.",
        discussion: """
            Same analysis as analyze, on live traffic: each attempt's verdict is printed (and flushed) \
            about a second after the attempt ends; a SYN nobody answers is reported after --syn-timeout \
            seconds. Ctrl-C or SIGTERM classifies the attempts still open, prints the summary (attempts \
            per server and verdict) and libpcap's counters (packets received, dropped by the kernel, \
            dropped by the interface); SIGUSR1 prints the summary so far and goes on. --duration and \
            --count stop on their own.

            A successful logon is reported when it happens, while the connection goes on: with a key \
            log, at the server's logon notification (Save Session Info); without one, once the server \
            sent the connection sequence's volume that only follows a completed security handshake \
            (the rule analyze applies). Should that connection then fail, it is reported again, with \
            the same attempt number, and counted as the failure.

            --export DIR keeps the frames of each open connection (its first frames and a ring of its \
            latest, --export-session-buffer each, --export-buffer in all) and writes each failed \
            attempt's own pcap and Markdown report the moment it is reported, as analyze --export \
            does (--redact rewrites both). A directory that cannot be written is said once; the \
            capture goes on. --keylog FILE is read again as it grows (a client writes it during the \
            session): a connection whose secrets come late holds its encrypted records (1 MiB at \
            most) and reads them once they come.

            The default capture filter, compiled into the kernel, lets through TCP and UDP to and from \
            port 3389 and every --port, DNS, and ICMP/ICMPv6 errors. RDP on any other port is only \
            detected (by its first bytes) if --filter lets that port through, e.g. --filter 'tcp or icmp \
            or icmp6 or udp port 53'. On a host that forwards the traffic (a router), capture on one \
            interface (-i), not on 'any', which sees each forwarded packet twice.

            Needs capture rights: root, or CAP_NET_RAW and CAP_NET_ADMIN (setcap on the binary, or \
            AmbientCapabilities in a systemd unit). Exit codes as for analyze: 0 every attempt healthy, \
            1 failures seen, 2 bad usage, no permission, unknown interface, or a capture that stopped \
            (the interface went down), 3 no RDP attempt seen.
            """)

    @Option(name: .shortAndLong, help: "Interface to capture on ('any': every interface, on Linux).")
    public var interface: String = "any"

    @Flag(name: .long, help: "List the interfaces that can be captured on, and exit.")
    public var listInterfaces = false

    @Option(name: .long, help: "Capture filter (BPF) replacing the default (see below).")
    public var filter: String?

    @Option(name: .shortAndLong, help: "Another TCP port carrying RDP (repeatable; 3389 is always included).")
    public var port: [Int] = []

    @Option(name: .long, help: "Seconds after a connection's last SYN before it is reported as unanswered (the Windows client gives up after about 21).")
    public var synTimeout: Double = 21

    @Option(name: .long, help: "Output: text (a block per attempt) or ndjson (a JSON object per attempt, then a summary object).")
    public var format: String = "text"

    @Option(name: .long, help: "Stop after this many seconds.")
    public var duration: Double?

    @Option(name: .long, help: "Stop after this many attempts were reported.")
    public var count: Int?

    @Option(name: .long, help: "Serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9110; :9110 for every address).")
    public var metrics: String?

    @Flag(name: .long, help: "Replace addresses, host and user names with consistent pseudonyms.")
    public var redact = false

    @Option(name: .long, help: "Colour: auto, always or never.")
    public var color: String = "auto"

    @Flag(name: .long, help: "Only follow the listed ports (do not look for RDP on other ports).")
    public var noDetect = false

    @Flag(name: .long, help: "Show only failed attempts (the summary still counts every attempt).")
    public var failuresOnly = false

    @Option(name: .long, help: "Text: attempts shown one by one per server and verdict; the rest are counted (0: show all).")
    public var maxRepeats: Int = 20

    @Option(name: .long, help: "Most connections followed at once; past it the oldest half-open one (a SYN flood) is reported as it stands.")
    public var maxSessions: Int = 10_000

    @Option(name: .long, help: "Most bytes one session direction may hold for reassembly.")
    public var maxSessionBuffer: ByteSize = ByteSize(256 * 1024)

    @Option(name: .long, help: "Most bytes all sessions together may hold for reassembly.")
    public var maxBuffer: ByteSize = ByteSize(256 << 20)

    @Option(name: .long, help: "The kernel's capture buffer (libpcap's buffer size): what absorbs a burst while rdptriage catches up.")
    public var captureBuffer: ByteSize = ByteSize(32 << 20)

    @Option(name: .long, help: ArgumentHelp("Write each failed attempt's own pcap and Markdown report into this directory as it is reported.", valueName: "dir"))
    public var export: String?

    @Option(name: .long, help: "With --export: bytes of frames kept per open connection (its first frames, then a ring of its latest).")
    public var exportSessionBuffer: ByteSize = ByteSize(1 << 20)

    @Option(name: .long, help: "With --export: bytes of frames kept over all open connections (allocated once).")
    public var exportBuffer: ByteSize = ByteSize(128 << 20)

    @Option(
        name: .long,
        help: ArgumentHelp("NSS key log (SSLKEYLOGFILE; repeatable), read again as it grows: decrypts TLS as analyze --keylog does.", valueName: "file"))
    public var keylog: [String] = []

    public init() {}

    public func validate() throws {
        if LiveReport.Format(rawValue: format) == nil { throw ValidationError("--format must be text or ndjson") }
        if ColorMode(rawValue: color) == nil { throw ValidationError("--color must be auto, always or never") }
        for p in port where p < 1 || p > 65535 { throw ValidationError("--port \(p) is not a TCP port") }
        if !(synTimeout >= 1 && synTimeout <= 3600) { throw ValidationError("--syn-timeout must be between 1 and 3600 seconds") }
        if let d = duration, !(d > 0 && d <= 1e9) { throw ValidationError("--duration must be a positive number of seconds") }
        if let c = count, c < 1 { throw ValidationError("--count must be at least 1") }
        if maxSessionBuffer.bytes < 4096 { throw ValidationError("--max-session-buffer must be at least 4096") }
        if maxBuffer.bytes < maxSessionBuffer.bytes { throw ValidationError("--max-buffer must be at least --max-session-buffer") }
        if maxSessions < 16 { throw ValidationError("--max-sessions must be at least 16") }
        if maxRepeats < 0 { throw ValidationError("--max-repeats must be 0 (show all) or more") }
        if interface.isEmpty { throw ValidationError("--interface needs a name") }
        if captureBuffer.bytes < 1 << 20 || captureBuffer.bytes > 1 << 31 - 1 {
            throw ValidationError("--capture-buffer must be between 1M and 2047M")
        }
        if exportSessionBuffer.bytes < 65536 { throw ValidationError("--export-session-buffer must be at least 64K") }
        if exportBuffer.bytes < exportSessionBuffer.bytes {
            throw ValidationError("--export-buffer must be at least --export-session-buffer")
        }
        if !keylog.isEmpty && redact && export != nil {
            throw ValidationError(
                "--export with --keylog cannot be used with --redact: the keys would let the recipient decrypt the original names from the exported frames")
        }
    }

    public func run() throws {
        throw ExitCode(runReturningStatus())
    }

    public func runReturningStatus() -> Int32 {
        if listInterfaces { return Self.printInterfaces() }
        var ports: [UInt16] = [3389]
        for p in port where !ports.contains(UInt16(p)) { ports.append(UInt16(p)) }
        var options = EngineOptions()
        options.warn = { printError("rdptriage: " + $0) }
        options.tracker.ports = ports
        options.tracker.detectRDPOnAnyPort = !noDetect
        options.tracker.streamLimits.perStream = maxSessionBuffer.bytes
        options.tracker.memoryLimit = maxBuffer.bytes
        options.tracker.maxSessions = maxSessions
        options.tracker.handshakeTimeout = synTimeout
        // A verdict about a second after the attempt ends: stragglers after a FIN or RST come
        // within milliseconds on a live wire, and the clock is swept four times a second.
        options.tracker.closeLinger = 1
        options.tracker.sweepInterval = 0.25

        var reportOptions = ReportOptions()
        reportOptions.color = ColorMode(rawValue: color) ?? .auto
        reportOptions.maxRepeats = maxRepeats
        reportOptions.failuresOnly = failuresOnly
        if redact { reportOptions.redactor = Redactor() }

        // Before the capture starts, so that no signal is missed; SIGPIPE ignored, so that a
        // reader that left (`| head`) ends the run quietly instead of killing it mid-write.
        Self.installSignalHandlers()
        let source: LiveSource
        do {
            source = try LiveSource(
                interface: interface, filter: filter ?? LiveSource.defaultFilter(ports: ports), bufferBytes: captureBuffer.bytes)
        } catch {
            printError("rdptriage: \(error)")
            return ExitStatus.inputError
        }
        var metricsServer: MetricsServer?
        let liveMetrics = metrics.map { _ in LiveMetrics(interface: interface) }
        if let metrics, let liveMetrics {
            do { metricsServer = try MetricsServer(metrics, metrics: liveMetrics) } catch {
                printError("rdptriage: \(error)")
                return ExitStatus.inputError
            }
        }
        let out = ReportOutput.standardOutput()
        let report = LiveReport(
            output: out, format: LiveReport.Format(rawValue: format) ?? .text, options: reportOptions, stopAfter: count)
        report.captureStats = { source.stats() }
        let deadline = duration.map { LiveSource.now().nanoseconds &+ Int64($0 * 1e9) }
        var control = LiveControl(
            shouldStop: {
                if liveStopRequested.load(ordering: .relaxed) != 0 || report.reachedCount || report.readerLeft { return true }
                if let deadline { return LiveSource.now().nanoseconds >= deadline }
                return false
            },
            takeSummaryRequest: { liveSummaryRequested.exchange(0, ordering: .relaxed) != 0 },
            progress: { summary, open in report.progress(summary, openSessions: open) },
            stopping: { report.openAtStop = $0 },
            gauges: liveMetrics.map { m in { m.update($0, capture: source.stats()) } })
        var watcher: KeyLogWatcher?
        if !keylog.isEmpty {
            let w = KeyLogWatcher(paths: keylog, keepLines: export != nil)
            w.poll()
            for path in keylog where !FileManager.default.fileExists(atPath: path) {
                printError("rdptriage: \(path): no key log yet; read once it appears")
            }
            var keys = TLSKeyMaterial()
            keys.growing = w.table
            options.keys = keys
            watcher = w
        }
        var liveExport: LiveExport?
        if let export {
            let started = Date().formatted(.iso8601.year().month().day().dateSeparator(.omitted).time(includingFractionalSeconds: false).timeSeparator(.omitted))
            let base = "live-\(interface.replacingOccurrences(of: "/", with: "_"))-\(started)"
            liveExport = LiveExport(
                directory: export, base: base, input: interface, keyLines: watcher?.table, redactor: reportOptions.redactor)
        }
        var hooks: [(Attempt) -> Void] = []
        if let liveMetrics { hooks.append { liveMetrics.record($0) } }
        if let liveExport {
            hooks.append { liveExport.attemptReported($0) }
            report.exportStats = { liveExport.stats }
        }
        if !hooks.isEmpty { report.afterAttempt = { a in for h in hooks { h(a) } } }
        control.tick = watcher.map { w in { _ in w.poll() } }
        control.keysGrowing = watcher != nil
        if let liveExport {
            var limits = FrameHoldLimits()
            limits.perSession = exportSessionBuffer.bytes
            limits.total = exportBuffer.bytes
            control.hold = limits
            control.heldFrames = liveExport.handoff
        }
        if let liveMetrics, let liveExport {
            let previous = control.gauges
            control.gauges = { g in
                previous?(g)
                liveMetrics.update(g, capture: nil, export: liveExport.stats)
            }
        }
        if let metricsServer {
            metricsServer.start()
            printError("rdptriage: metrics at http://\(metricsServer.address)/metrics")
        }
        printError("rdptriage: listening on \(interface) (\(source.linkType)), capture filter: \(source.filter)")
        let summary = Engine(options: options).analyzeLive(source: source, sink: report, control: control)
        var status: Int32 =
            summary.error != nil
            ? ExitStatus.inputError
            : summary.failures > 0 ? ExitStatus.failures : summary.attempts == 0 ? ExitStatus.nothingFound : ExitStatus.healthy
        report.finish(exitCode: status)
        if let e = summary.error { printError("rdptriage: \(reportOptions.redactor?.apply(e.description) ?? e.description)") }
        if let e = out.finish(), !out.readerLeft {
            printError("rdptriage: \(e)")
            status = ExitStatus.inputError
        }
        return status
    }

    static func installSignalHandlers() {
        signal(SIGINT) { _ in liveStopRequested.store(1, ordering: .relaxed) }
        signal(SIGTERM) { _ in liveStopRequested.store(1, ordering: .relaxed) }
        signal(SIGUSR1) { _ in liveSummaryRequested.store(1, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN)
        // A parent may have blocked them (the mask survives exec): a service manager's
        // SIGTERM must still reach us.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGUSR1] { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    static func printInterfaces() -> Int32 {
        let list: [(name: String, description: String?, up: Bool)]
        do { list = try LiveSource.interfaces() } catch {
            printError("rdptriage: \(error)")
            return ExitStatus.inputError
        }
        let out = ReportOutput.standardOutput()
        for i in list {
            var line = Printable.escapingControls(i.name)
            if !i.up { line += " (down)" }
            if let d = i.description { line += "  " + Printable.escapingControls(d) }
            out.line(line)
        }
        if let e = out.finish(), !out.readerLeft {
            printError("rdptriage: \(e)")
            return ExitStatus.inputError
        }
        return ExitStatus.healthy
    }
}
