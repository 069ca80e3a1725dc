import Foundation
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// The JSON schema's name and version. Bump the version on any incompatible change and
/// describe it in the README.
public enum ReportSchema {
    public static let name = "rdptriage.report"
    public static let version = 1
    public static let generator = "rdptriage 0.1.0"
}

public enum ReportFormat: String, Sendable, CaseIterable {
    case text
    case json
    case markdown
}

public enum ColorMode: String, Sendable, CaseIterable {
    case auto
    case always
    case never
}

/// Options every report format shares.
public struct ReportOptions {
    public var reported: ReportedCode?
    public var color: ColorMode = .auto
    public var redactor: Redactor?
    /// Show every detail (text format).
    public var verbose = false

    public init() {}
}

/// One attempt as the JSON report writes it.
struct AttemptRecord: Encodable {
    var number: Int
    var client: String
    var server: String
    var verdict: Verdict
    var tcp: TCPFacts
    var rdp: RDPFacts
    var dns: [DNSResolution]

    init(_ a: Attempt) {
        number = a.facts.tcp.id + 1
        client = a.facts.tcp.client.description
        server = a.facts.tcp.server.description
        verdict = a.verdict
        tcp = a.facts.tcp
        rdp = a.facts.rdp
        dns = a.facts.dns
    }
}

/// What `--reported CODE` found in one input.
public struct ReportedMatch: Sendable, Encodable {
    public var code: String
    /// Attempt numbers (1-based) consistent with the code.
    public var attempts: [Int]
    public var explanation: String

    static func find(_ code: ReportedCode, in attempts: [AttemptSummary]) -> ReportedMatch {
        let hits = attempts.filter { code.matches($0.clientReport) }
        if !hits.isEmpty {
            let list = hits.map { "#\($0.id + 1) \($0.label.rawValue)" }.joined(separator: ", ")
            return ReportedMatch(
                code: code.description, attempts: hits.map { $0.id + 1 },
                explanation: "Consistent with \(code): \(list). \(hits[0].summary)")
        }
        // Same disconnect reason with another extended reason is still worth naming.
        let near = attempts.filter { a in
            guard let r = a.clientReport, let c = ReportedCode(r.code) else { return false }
            return c.code == code.code
        }
        if !near.isEmpty {
            let list = near.map { "#\($0.id + 1) \($0.label.rawValue) (\($0.clientReport?.display ?? "?"))" }
                .joined(separator: ", ")
            return ReportedMatch(
                code: code.description, attempts: near.map { $0.id + 1 },
                explanation: "Nothing matches \(code) exactly; the same disconnect reason with another extended code: \(list).")
        }
        if attempts.isEmpty {
            return ReportedMatch(
                code: code.description, attempts: [],
                explanation: "Nothing in this capture matches \(code): it holds no RDP connection attempt. Was it taken on the client (or on the path) while the error happened, with the right port?")
        }
        let seen = Dictionary(grouping: attempts, by: { $0.label.rawValue }).map { "\($0.value.count) \($0.key)" }.sorted()
            .joined(separator: ", ")
        return ReportedMatch(
            code: code.description, attempts: [],
            explanation: "Nothing in this capture matches \(code): its attempts ended as \(seen). The capture may have been taken in the wrong place or at the wrong time, or the error came from another connection.")
    }
}

/// Small formatting helpers shared by the formats.
enum Format {
    static func seconds(_ s: Double) -> String {
        if !s.isFinite { return "?" }
        if abs(s) < 0.001 { return String(format: "%.0f µs", s * 1_000_000) }
        if abs(s) < 1 { return String(format: "%.1f ms", s * 1000) }
        return String(format: "%.3f s", s)
    }

    /// Seconds from the attempt's first frame, signed (DNS answers come before it).
    static func relative(_ t: Timestamp?, from origin: Timestamp) -> String {
        guard let t else { return "" }
        return String(format: "%+.6f", t.seconds(since: origin))
    }

    static func bytes(_ n: Int64) -> String {
        if n < 10_000 { return "\(n) B" }
        if n < 10_000_000 { return String(format: "%.1f KB", Double(n) / 1000) }
        return String(format: "%.1f MB", Double(n) / 1_000_000)
    }

    static func tcpLine(_ t: TCPFacts) -> String {
        var parts = ["TCP \(t.outcome.rawValue)"]
        if let by = t.endedBy { parts[0] += " by \(by.rawValue)" }
        let h = t.handshake
        if h.synCount > 0 { parts.append("SYN ×\(h.synCount)") }
        if let d = h.synAckDelay { parts.append("SYN-ACK after \(seconds(d))") }
        parts.append("client \(t.clientSide.packets) pkts/\(bytes(t.clientSide.payloadBytes))")
        parts.append("server \(t.serverSide.packets) pkts/\(bytes(t.serverSide.payloadBytes))")
        let retrans = t.clientSide.retransmissions + t.serverSide.retransmissions
        if retrans > 0 { parts.append("\(retrans) retransmissions") }
        let dups = t.clientSide.duplicates + t.serverSide.duplicates
        if dups > 0 { parts.append("\(dups) duplicate frames") }
        let zw = t.clientSide.zeroWindows + t.serverSide.zeroWindows
        if zw > 0 { parts.append("\(zw) zero windows") }
        if !t.icmp.isEmpty { parts.append("\(t.icmp.count) ICMP errors") }
        parts.append("frames \(t.first.frame)–\(t.last.frame)")
        parts.append(seconds(t.durationSeconds))
        if t.idle { parts.append("idle") }
        return parts.joined(separator: " · ")
    }
}
