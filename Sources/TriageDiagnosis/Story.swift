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
    /// Ids of the attempts the narrative names (1-based numbers as reports show them are id + 1):
    /// all of them, or the first and last few of a long series.
    public var attempts: [Int]
    /// How many attempts the story covers.
    public var attemptCount: Int
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

    /// The story of a group: its first attempts and its last one told one by one, those in
    /// between (a flood's thousands) only counted.
    static func story(_ g: StoryGroup) -> Story {
        var parts: [String] = []
        func told(_ a: AttemptSummary, after previous: AttemptSummary?) -> String {
            var what = "#\(a.id + 1) " + (a.label == .success ? "succeeded" : a.label.rawValue)
            if let neg = a.negotiationFailure { what += " (\(neg))" }
            if let p = previous {
                // Never "0 s later": attempts that overlap, or follow within half a millisecond,
                // are said to.
                let gap = a.start.time.seconds(since: p.end.time)
                what += gap < 0 ? " while #\(p.id + 1) was still open" : gap < 0.0005 ? " right after" : " \(Numbers.fixed(gap, 3, trim: true)) s later"
            }
            return what
        }
        var previous: AttemptSummary?
        for a in g.told {
            parts.append(told(a, after: previous))
            previous = a
        }
        if g.omitted > 0 {
            let labels = g.omittedLabels.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }
                .map { "\($0.value) \($0.key == .success ? "succeeded" : $0.key.rawValue)" }
            parts.append("… \(g.omitted) more (\(labels.joined(separator: ", "))) …")
        }
        // After the counted ones, the next told attempt has no told predecessor to time from.
        if g.omitted > 0 { previous = nil }
        for a in g.tail {
            parts.append(told(a, after: previous))
            previous = a
        }
        let first = g.first
        let last = g.last
        let outcome: Label
        let cause: Cause
        var narrative: String
        if last.label == .success {
            outcome = .success
            cause = .none
            narrative = g.failures == 0
                ? "\(g.count) attempts from \(first.client.address) to \(first.server), all successful: "
                : "\(first.client.address) reached \(first.server) after \(g.failures) failed attempt\(g.failures == 1 ? "" : "s"): "
        } else {
            outcome = last.label
            cause = last.cause
            narrative = "\(first.client.address) never reached \(first.server) in \(g.count) attempts: "
        }
        narrative += parts.joined(separator: ", ") + "."
        if let neg = g.lastFailureNegotiation, last.label == .success {
            narrative += " The client changed its security settings after \(neg)."
        }
        // FACTS.md section 4: users retry with another password seconds after "The logon
        // attempt failed".
        if last.label == .success, g.attemptBeforeLast?.label == .credsspFailure {
            narrative += " A retry after a failed logon succeeded: the user most likely corrected the password or user name."
        }
        if last.label != .success { narrative += " The last one: " + last.summary }
        let ids = g.told.map(\.id) + g.tail.map(\.id)
        return Story(
            client: first.client.address, server: first.server, attempts: ids, attemptCount: g.count, outcome: outcome,
            cause: cause, narrative: narrative)
    }
}

/// What a story keeps of its group: the first attempts and the last two whole, the rest
/// counted, so a client retrying 50,000 times costs no more than one retrying ten times. A
/// class, one allocation: most groups of a large capture hold a single attempt.
final class StoryGroup {
    /// Attempts told one by one at the start of the story.
    static let headCount = 4
    let first: AttemptSummary
    /// The attempts after the first that are told at the start (up to `headCount - 1`).
    private(set) var head: [AttemptSummary] = []
    /// The one before the last (it decides "a retry after a failed logon"), and the last.
    private(set) var beforeLast: AttemptSummary?
    private(set) var last: AttemptSummary
    private(set) var count = 1
    private(set) var failures = 0
    /// Attempts neither at the start nor among the last two: counted by label.
    private(set) var omittedLabels: [Label: Int] = [:]
    private(set) var omitted = 0
    private(set) var lastFailureNegotiation: String?

    init(_ a: AttemptSummary) {
        first = a
        last = a
        note(a)
    }

    /// The id of the last attempt told at the start.
    var headEnd: Int { head.last?.id ?? first.id }

    /// The attempts told one by one at the start, in order.
    var told: [AttemptSummary] { [first] + head }

    /// The attempt just before the last one, wherever it is kept.
    var attemptBeforeLast: AttemptSummary? {
        if let b = beforeLast { return b }
        if head.count >= 2 { return head[head.count - 2] }
        return head.isEmpty ? nil : first
    }

    /// The last two attempts not already told at the start, in order.
    var tail: [AttemptSummary] { [beforeLast, last].compactMap { $0 }.filter { $0.id > headEnd } }

    func add(_ a: AttemptSummary) {
        count += 1
        note(a)
        if let leaving = beforeLast, leaving.id > headEnd {
            omitted += 1
            omittedLabels[leaving.label, default: 0] += 1
        }
        if head.count < Self.headCount - 1 {
            head.append(a)
        } else {
            beforeLast = last
            // Only the last attempt's summary is ever told.
            beforeLast?.summary = ""
        }
        last = a
    }

    private func note(_ a: AttemptSummary) {
        if a.label != .success {
            failures += 1
            lastFailureNegotiation = a.negotiationFailure
        }
    }
}

/// Builds stories as attempts arrive, in bounded memory: a client/server pair quiet for
/// longer than `idleSeconds` of capture time is closed (its story kept when it had two or
/// more attempts, forgotten otherwise), so a capture with 100,000 one-off connections does
/// not keep them all. At most `maxGroups` pairs are open (past it the one idle longest is
/// closed) and `maxStories` stories are kept (the rest are counted).
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
    let maxGroups: Int
    let maxStories: Int
    private var groups: [Key: StoryGroup] = [:]
    /// Open groups by the end of their last attempt, earliest first, so that closing the idle
    /// ones does not walk every open group.
    private var endings = Heap<Ending>()
    private var closed: [(Int, Story)] = []
    private var latest = Timestamp(nanoseconds: Int64.min)
    private var added = 0
    /// Stories told beyond `maxStories`: counted, not kept.
    public private(set) var storiesOmitted = 0

    public init(idleSeconds: Double = 900, maxGroups: Int = 65_536, maxStories: Int = 1_000) {
        self.idleSeconds = idleSeconds
        self.maxGroups = maxGroups
        self.maxStories = maxStories
    }

    public func add(_ a: AttemptSummary) {
        let key = Key(client: a.client.address, server: a.server)
        if let g = groups[key] {
            g.add(a)
        } else {
            if groups.count >= maxGroups { closeOldest() }
            groups[key] = StoryGroup(a)
        }
        endings.insert(Ending(end: a.end.time, attempt: a.id, key: key))
        if a.start.time > latest { latest = a.start.time }
        added += 1
        if added % 1024 == 0 { closeIdle() }
        // Stale entries pile up when groups keep growing: rebuild from the open groups.
        if endings.count > 4 * max(groups.count, 1024) {
            endings = Heap(groups.map { Ending(end: $0.value.last.end.time, attempt: $0.value.last.id, key: $0.key) })
        }
    }

    /// Closes every group whose last attempt ended more than `idleSeconds` before the latest
    /// start seen.
    private func closeIdle() {
        while let first = endings.min, latest.seconds(since: first.end) > idleSeconds {
            endings.removeMin()
            guard let g = groups[first.key], g.last.id == first.attempt else { continue }  // stale
            groups[first.key] = nil
            keep(g)
        }
    }

    /// Closes the group whose last attempt ended first.
    private func closeOldest() {
        while let first = endings.popMin() {
            guard let g = groups[first.key], g.last.id == first.attempt else { continue }  // stale
            groups[first.key] = nil
            keep(g)
            return
        }
    }

    private func keep(_ g: StoryGroup) {
        guard g.count >= 2 else { return }
        guard closed.count < maxStories else {
            storiesOmitted += 1
            return
        }
        closed.append((g.first.start.frame, Story.story(g)))
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
        // The server's Set Error Info is what the client shows as the extended reason; the
        // disconnect reason beside it is not on the wire, so any is consistent.
        if case .errorInfo(let e)? = report?.code { return extended == e }
        guard let report, report.code.code == code else { return false }
        guard let e = extended else { return true }
        return report.code.extended == e
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
