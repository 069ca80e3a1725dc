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
}

/// What every report format gathers about an input while its attempts stream past: label
/// counts, stories and `--reported` matches, in bounded memory.
final class InputDigest {
    let reported: ReportedCode?
    private(set) var labelCounts: [Label: Int] = [:]
    private(set) var total = 0
    private var stories = StoryBuilder()
    private var hits: [AttemptSummary] = []
    private var near: [AttemptSummary] = []
    static let maxMatches = 1000

    init(reported: ReportedCode?) { self.reported = reported }

    func add(_ a: Attempt) {
        let s = AttemptSummary(id: a.facts.tcp.id, facts: a.facts, verdict: a.verdict)
        labelCounts[s.label, default: 0] += 1
        total += 1
        stories.add(s)
        guard let code = reported else { return }
        if code.matches(s.clientReport) {
            if hits.count < Self.maxMatches { hits.append(s) }
        } else if let r = s.clientReport, let c = ReportedCode(r.code), c.code == code.code, near.count < Self.maxMatches {
            near.append(s)
        }
    }

    /// "3 rst-refused, 1 success", sorted by label.
    var labelList: [String] { labelCounts.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" } }

    func finishStories() -> [Story] { stories.finish() }

    /// What `--reported` found, when it was given.
    func reportedMatch() -> ReportedMatch? {
        guard let code = reported else { return nil }
        if !hits.isEmpty {
            let list = hits.map { "#\($0.id + 1) \($0.label.rawValue)" }.joined(separator: ", ")
            return ReportedMatch(
                code: code.description, attempts: hits.map { $0.id + 1 },
                explanation: "Consistent with \(code): \(list). \(hits[0].summary)")
        }
        // Same disconnect reason with another extended reason is still worth naming.
        if !near.isEmpty {
            let list = near.map { "#\($0.id + 1) \($0.label.rawValue) (\($0.clientReport?.display ?? "?"))" }
                .joined(separator: ", ")
            return ReportedMatch(
                code: code.description, attempts: near.map { $0.id + 1 },
                explanation: "Nothing matches \(code) exactly; the same disconnect reason with another extended code: \(list).")
        }
        if total == 0 {
            return ReportedMatch(
                code: code.description, attempts: [],
                explanation: "Nothing in this capture matches \(code): it holds no RDP connection attempt. Was it taken on the client (or on the path) while the error happened, with the right port?")
        }
        return ReportedMatch(
            code: code.description, attempts: [],
            explanation: "Nothing in this capture matches \(code): its attempts ended as \(labelList.joined(separator: ", ")). The capture may have been taken in the wrong place or at the wrong time, or the error came from another connection.")
    }
}

/// Small formatting helpers shared by the formats.
enum Format {
    static func seconds(_ s: Double) -> String { Numbers.duration(s) }

    /// Seconds from the attempt's first frame, signed (DNS answers come before it).
    static func relative(_ t: Timestamp?, from origin: Timestamp) -> String {
        guard let t else { return "" }
        return Numbers.fixed(t.seconds(since: origin), 6, sign: true)
    }

    static func bytes(_ n: Int64) -> String {
        var b = OutputBytes(capacity: 32)
        bytes(n, into: &b)
        return b.text(from: 0)
    }

    static func tcpLine(_ t: TCPFacts, verdictEnder: Ender? = nil) -> String {
        var b = OutputBytes(capacity: 256)
        tcpLine(t, verdictEnder: verdictEnder, into: &b)
        return b.text(from: 0)
    }

    /// The TCP summary line, appended to `b` (once per attempt in every report: written
    /// straight into the report's bytes, where appending to a String cost several times more).
    /// `verdictEnder` is who the verdict found ended it: an RST it found forged is not
    /// called the server's (or the client's) here either.
    static func tcpLine(_ t: TCPFacts, verdictEnder: Ender? = nil, into b: inout OutputBytes) {
        b.append("TCP ")
        if verdictEnder == .middlebox {
            b.append(Wording.tcpClose(t.outcome, by: t.endedBy, verdictEnder: verdictEnder))
        } else {
            b.append(t.outcome.rawValue)
            if let by = t.endedBy {
                b.append(" by ")
                b.append(by.rawValue)
            }
        }
        let h = t.handshake
        if h.synCount > 0 {
            b.append(" · SYN ×")
            b.append(decimal: h.synCount)
        }
        if let d = h.synAckDelay {
            b.append(" · SYN-ACK after ")
            b.append(seconds(d))
        }
        b.append(" · client ")
        b.append(decimal: t.clientSide.packets)
        b.append(" pkts/")
        bytes(t.clientSide.payloadBytes, into: &b)
        b.append(" · server ")
        b.append(decimal: t.serverSide.packets)
        b.append(" pkts/")
        bytes(t.serverSide.payloadBytes, into: &b)
        let retrans = t.clientSide.retransmissions + t.serverSide.retransmissions
        if retrans > 0 {
            b.append(" · ")
            b.append(decimal: retrans)
            b.append(" retransmissions")
        }
        let dups = t.clientSide.duplicates + t.serverSide.duplicates
        if dups > 0 {
            b.append(" · ")
            b.append(decimal: dups)
            b.append(" duplicate frames")
        }
        let zw = t.clientSide.zeroWindows + t.serverSide.zeroWindows
        if zw > 0 {
            b.append(" · ")
            b.append(decimal: zw)
            b.append(" zero windows")
        }
        if !t.icmp.isEmpty {
            b.append(" · ")
            b.append(decimal: t.icmp.count)
            b.append(" ICMP errors")
        }
        b.append(" · frames ")
        b.append(decimal: t.first.frame)
        b.append("–")
        b.append(decimal: t.last.frame)
        b.append(" · ")
        // The clock note is already on the SYN-ACK when the handshake ran backwards too.
        b.append(t.durationSeconds < 0 && (h.synAckDelay ?? 0) < 0 ? "duration unknown" : seconds(t.durationSeconds))
        if t.idle { b.append(" · idle") }
    }

    static func bytes(_ n: Int64, into b: inout OutputBytes) {
        if n < 10_000 {
            b.append(decimal: n)
            b.append(" B")
        } else if n < 10_000_000 {
            b.append(Numbers.fixed(Double(n) / 1000, 1))
            b.append(" KB")
        } else {
            b.append(Numbers.fixed(Double(n) / 1_000_000, 1))
            b.append(" MB")
        }
    }
}
