import HeapModule
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

    public init(id: Int, facts: borrowing AttemptFacts, verdict: borrowing Verdict) {
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
        let b = StoryBuilder()
        for a in attempts.sorted(by: { $0.start.frame < $1.start.frame }) { b.add(a) }
        return b.finish()
    }

    static func story(first: AttemptSummary, last: AttemptSummary, group g: [AttemptSummary]) -> Story {
        var parts: [String] = []
        var previous: AttemptSummary?
        for a in g {
            var what = "#\(a.id + 1) " + (a.label == .success ? "succeeded" : a.label.rawValue)
            if let neg = a.negotiationFailure { what += " (\(neg))" }
            if let p = previous {
                what += " \(Numbers.fixed(max(0, a.start.time.seconds(since: p.end.time)), 3, trim: true)) s later"
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
        // FACTS.md section 4: users retry with another password seconds after "The logon
        // attempt failed".
        if last.label == .success, g.count >= 2, g[g.count - 2].label == .credsspFailure {
            narrative += " A retry after a failed logon succeeded: the user most likely corrected the password or user name."
        }
        if last.label != .success { narrative += " The last one: " + last.summary }
        return Story(
            client: first.client.address, server: first.server, attempts: g.map(\.id), outcome: outcome, cause: cause,
            narrative: narrative)
    }
}

/// Builds stories as attempts arrive, in bounded memory: a client/server pair quiet for
/// longer than `idleSeconds` of capture time is closed (its story kept when it had two or
/// more attempts, forgotten otherwise), so a capture with 100,000 one-off connections does
/// not keep them all.
public final class StoryBuilder {
    struct Key: Hashable {
        var client: IPAddress
        var server: Endpoint
    }

    /// When an attempt ended, for the group it was then the last of (stale once the group
    /// grows or closes).
    struct Ending: Comparable {
        var end: Timestamp
        var attempt: Int
        var key: Key
        static func < (a: Ending, b: Ending) -> Bool { (a.end, a.attempt) < (b.end, b.attempt) }
        static func == (a: Ending, b: Ending) -> Bool { a.end == b.end && a.attempt == b.attempt }
    }

    let idleSeconds: Double
    private var groups: [Key: [AttemptSummary]] = [:]
    /// Open groups by the end of their last attempt, earliest first, so that closing the idle
    /// ones does not walk every open group.
    private var endings = Heap<Ending>()
    private var closed: [(Int, Story)] = []
    private var latest = Timestamp(nanoseconds: Int64.min)
    private var added = 0

    public init(idleSeconds: Double = 900) { self.idleSeconds = idleSeconds }

    public func add(_ a: AttemptSummary) {
        let key = Key(client: a.client.address, server: a.server)
        // Only the last attempt's summary is ever told; earlier ones keep their label.
        if let n = groups[key]?.count, n > 0 { groups[key]![n - 1].summary = "" }
        groups[key, default: []].append(a)
        endings.insert(Ending(end: a.end.time, attempt: a.id, key: key))
        if a.start.time > latest { latest = a.start.time }
        added += 1
        if added % 1024 == 0 { closeIdle() }
    }

    /// Closes every group whose last attempt ended more than `idleSeconds` before the latest
    /// start seen.
    private func closeIdle() {
        while let first = endings.min, latest.seconds(since: first.end) > idleSeconds {
            endings.removeMin()
            guard let g = groups[first.key], g.last?.id == first.attempt else { continue }  // stale
            groups[first.key] = nil
            keep(g)
        }
    }

    private func keep(_ g: [AttemptSummary]) {
        guard g.count >= 2, let first = g.first, let last = g.last else { return }
        closed.append((first.start.frame, Story.story(first: first, last: last, group: g)))
    }

    /// Every story, ordered by its first attempt.
    public func finish() -> [Story] {
        for g in groups.values { keep(g) }
        groups.removeAll()
        endings = Heap()
        let out = closed.sorted { $0.0 < $1.0 }.map(\.1)
        closed.removeAll()
        return out
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
    /// Drops `set` at both ends.
    public func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}
