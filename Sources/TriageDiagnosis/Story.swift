import TriageCapture
import TriageDecoding
import TriageFlows
import TriageProtocols

/// The little a story needs to remember of each attempt (kept for every attempt of a run,
/// so it stays small).
public struct AttemptSummary: Sendable, Codable, Equatable {
    public var id: Int
    public var client: Endpoint
    public var server: Endpoint
    public var label: Label
    public var cause: Cause
    public var stage: Stage
    public var summary: String
    public var start: FrameRef
    public var end: FrameRef
    public var clientReport: ClientReport?
    public var negotiationFailure: String?

    public init(id: Int, facts: AttemptFacts, verdict: Verdict) {
        self.id = id
        client = facts.tcp.client
        server = facts.tcp.server
        label = verdict.label
        cause = verdict.cause
        stage = verdict.stage
        summary = verdict.summary
        start = facts.tcp.first
        end = facts.tcp.last
        clientReport = verdict.clientReport
        negotiationFailure = facts.rdp.connectionConfirm?.failure?.name
    }
}

/// Several attempts from one client to one server, told as one story.
public struct Story: Sendable, Codable, Equatable {
    public var client: IPAddress
    public var server: Endpoint
    /// Attempt ids (1-based numbers as reports show them are id + 1).
    public var attempts: [Int]
    /// The overall outcome: success if the last attempt succeeded.
    public var outcome: Label
    public var cause: Cause
    public var narrative: String

    /// Groups attempts by client address and server endpoint; a group of two or more
    /// becomes a story. Ordered by first attempt.
    public static func build(_ attempts: [AttemptSummary]) -> [Story] {
        var groups: [String: [AttemptSummary]] = [:]
        var order: [String] = []
        for a in attempts.sorted(by: { $0.start.frame < $1.start.frame }) {
            let key = "\(a.client.address)|\(a.server)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(a)
        }
        return order.compactMap { key in
            guard let g = groups[key], g.count >= 2, let first = g.first, let last = g.last else { return nil }
            return story(first: first, last: last, group: g)
        }
    }

    static func story(first: AttemptSummary, last: AttemptSummary, group g: [AttemptSummary]) -> Story {
        var parts: [String] = []
        var previous: AttemptSummary?
        for a in g {
            var what = "#\(a.id + 1) " + (a.label == .success ? "succeeded" : a.label.rawValue)
            if let neg = a.negotiationFailure { what += " (\(neg))" }
            if let p = previous {
                what += " \(String(format3: max(0, a.start.time.seconds(since: p.end.time)))) s later"
            }
            parts.append(what)
            previous = a
        }
        let failures = g.filter { $0.label != .success }
        let outcome: Label
        let cause: Cause
        var narrative: String
        if last.label == .success {
            outcome = .success
            cause = .none
            narrative = failures.isEmpty
                ? "\(g.count) attempts from \(first.client.address) to \(first.server), all successful: "
                : "\(first.client.address) reached \(first.server) after \(failures.count) failed attempt\(failures.count == 1 ? "" : "s"): "
        } else {
            outcome = last.label
            cause = last.cause
            narrative = "\(first.client.address) never reached \(first.server) in \(g.count) attempts: "
        }
        narrative += parts.joined(separator: ", ") + "."
        if let neg = failures.last?.negotiationFailure, last.label == .success {
            narrative += " The client changed its security settings after \(neg)."
        }
        if last.label != .success { narrative += " The last one: " + last.summary }
        return Story(
            client: first.client.address, server: first.server, attempts: g.map(\.id), outcome: outcome, cause: cause,
            narrative: narrative)
    }
}

/// The code a user saw in the Windows client (`--reported 0x904/0x7`, `0x904`, `2308`).
public struct ReportedCode: Sendable, Codable, Equatable, CustomStringConvertible {
    public var code: UInt32
    public var extended: UInt32?

    /// Accepts hex (`0x904`) or decimal (`2308`), optionally `/extended`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: " ")
        }
        guard parts.count == 1 || parts.count == 2, let c = Self.number(parts[0]) else { return nil }
        code = c
        if parts.count == 2 {
            guard let e = Self.number(parts[1]) else { return nil }
            extended = e
        }
    }

    static func number(_ s: Substring) -> UInt32? {
        let t = s.lowercased()
        if t.hasPrefix("0x") { return UInt32(t.dropFirst(2), radix: 16) }
        return UInt32(t)
    }

    public var description: String {
        "0x" + String(code, radix: 16, uppercase: true) + (extended.map { "/0x" + String($0, radix: 16, uppercase: true) } ?? "")
    }

    /// Whether an attempt's likely client report is consistent with this code.
    public func matches(_ report: ClientReport?) -> Bool {
        guard let report, let c = Self.number(Substring(report.code)) else { return false }
        guard c == code else { return false }
        guard let e = extended else { return true }
        guard let re = report.extended.flatMap({ Self.number(Substring($0)) }) else { return false }
        return re == e
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}
