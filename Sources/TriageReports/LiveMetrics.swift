import Synchronization
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows

/// A live run's figures for Prometheus (text exposition format 0.0.4): attempts by label,
/// cause and server, libpcap's counters, and the tracker's gauges. Written by the report and
/// packet threads, read by the metrics server's; one lock around a small state.
public final class LiveMetrics: Sendable {
    struct AttemptKey: Hashable {
        var label: Label
        var cause: Cause
        var server: String
    }

    struct State {
        var attempts: [AttemptKey: Int] = [:]
        var failures = 0
        var gauges: LiveGauges?
        var capture: LiveCaptureStats?
        var export: LiveExportStats?
    }

    private let state = Mutex(State())
    let interface: String
    /// Most (label, cause, server) series; past it new servers are counted as "other", so a
    /// scan cannot grow the exposition without bound.
    static let maxSeries = 2048

    public init(interface: String) { self.interface = interface }

    public func record(_ a: Attempt) {
        state.withLock { s in
            var key = AttemptKey(label: a.verdict.label, cause: a.verdict.cause, server: a.facts.tcp.server.description)
            if s.attempts[key] == nil && s.attempts.count >= Self.maxSeries { key.server = "other" }
            s.attempts[key, default: 0] += 1
            if a.verdict.isFailure { s.failures += 1 }
        }
    }

    public func update(_ g: LiveGauges, capture: LiveCaptureStats?, export: LiveExportStats? = nil) {
        state.withLock { s in
            s.gauges = g
            if let capture { s.capture = capture }
            if let export { s.export = export }
        }
    }

    /// The exposition text.
    public func render() -> String {
        let s = state.withLock { $0 }
        var out = ""
        let iface = "interface=\"\(Self.escape(interface))\""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Int)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name){\(labels)} \(value)\n" }
        }
        let series = s.attempts.sorted {
            ($0.key.server, $0.key.label.rawValue, $0.key.cause.rawValue) < ($1.key.server, $1.key.label.rawValue, $1.key.cause.rawValue)
        }
        metric(
            "rdptriage_attempts_total", "counter", "RDP connection attempts by verdict label, cause and server.",
            series.map {
                ("\(iface),label=\"\($0.key.label.rawValue)\",cause=\"\($0.key.cause.rawValue)\",server=\"\(Self.escape($0.key.server))\"", $0.value)
            })
        metric("rdptriage_failures_total", "counter", "RDP connection attempts that failed.", [(iface, s.failures)])
        if let c = s.capture {
            metric("rdptriage_packets_received_total", "counter", "Packets the capture filter accepted (pcap_stats).", [(iface, Int(clamping: c.received))])
            metric(
                "rdptriage_packets_dropped_kernel_total", "counter", "Packets dropped because the capture buffer was full.",
                [(iface, Int(clamping: c.droppedByKernel))])
            metric(
                "rdptriage_packets_dropped_interface_total", "counter", "Packets dropped by the interface or its driver.",
                [(iface, Int(clamping: c.droppedByInterface))])
        }
        if let g = s.gauges {
            metric("rdptriage_frames_total", "counter", "Frames analysed.", [(iface, g.frames)])
            metric("rdptriage_sessions_total", "counter", "TCP connections followed.", [(iface, g.sessions)])
            metric("rdptriage_sessions_open", "gauge", "TCP connections followed at the moment.", [(iface, g.openSessions)])
            metric("rdptriage_reassembly_bytes", "gauge", "Bytes held in reassembly buffers.", [(iface, g.reassemblyBytes)])
            metric(
                "rdptriage_sessions_evicted_total", "counter", "Connections reported early because --max-sessions were open.",
                [(iface, g.sessionsEvicted)])
        }
        if let e = s.export {
            metric("rdptriage_export_attempts_total", "counter", "Failed attempts exported (pcap and report).", [(iface, e.attemptsExported)])
            metric("rdptriage_export_failures_total", "counter", "Failed attempts that could not be exported.", [(iface, e.exportFailures)])
            metric(
                "rdptriage_export_frames_evicted_total", "counter",
                "Held frames of open connections overwritten by their newer frames (--export-session-buffer).",
                [(iface, e.hold.framesEvicted)])
            metric(
                "rdptriage_export_sessions_evicted_total", "counter",
                "Open connections whose held frames were given up for room (--export-buffer).", [(iface, e.hold.sessionsEvicted)])
        }
        return out
    }

    /// A label value as the exposition format quotes it.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
