import Foundation
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// The JSON schema's name and versions. Bump the version on any incompatible change and
/// describe it in the README.
public enum ReportSchema {
    public static let name = "rdptriage.report"
    /// Schema 1's version: the document `--schema 1` still writes.
    public static let version = 1
    /// Versions `--schema` accepts; the first is the default.
    public static let versions = [2, 1]
    public static let generator = "rdptriage 0.1.0"
}

public enum ReportFormat: String, Sendable, CaseIterable {
    case text
    case json
    case markdown
    /// One compact JSON line per attempt, then one per input (schema 2's line shapes).
    case ndjson
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
    /// Attempts shown one by one per server and verdict; the rest are counted (0: all).
    public var maxRepeats = 20
    /// Show only failed attempts (`--failures-only`); the summary still counts them all.
    public var failuresOnly = false
    /// Show only these attempts, by their 1-based numbers (`--attempt N`, repeatable).
    public var onlyAttempts: Set<Int>?
    /// JSON schema version (`--schema`): 2, or 1 for the previous release's document.
    public var schema = 2

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

/// Attempts with one verdict at one server beyond the first few: counted, not shown one by
/// one (a scan or flood would otherwise make a report as large as the capture).
public struct RepeatedVerdicts: Sendable, Encodable {
    /// `address:port`, or nil when too many servers were seen to keep each apart.
    public var server: String?
    public var label: Label
    public var cause: Cause
    public var stage: Stage
    public var endedBy: Ender
    /// Attempts not shown, and the numbers (1-based) of the first and last of them.
    public var notShown: Int
    public var firstNotShown: Int
    public var lastNotShown: Int
    /// Distinct client addresses among them, counted up to `clientsCounted`.
    public var clients: Int
    public var moreClients: Bool

    var sentence: String {
        let who = clients == 1 ? "1 client" : (moreClients ? "more than \(clients) clients" : "\(clients) clients")
        return "\(server ?? "other servers"): \(notShown) more \(label.rawValue) attempt\(notShown == 1 ? "" : "s") "
            + "(\(cause.rawValue), \(stage.rawValue), ended by \(endedBy.rawValue)), #\(firstNotShown)–#\(lastNotShown), from \(who)"
    }
}

/// What every report format gathers about an input while its attempts stream past: label
/// counts, stories, `--reported` matches and repeated verdicts, in bounded memory.
final class InputDigest {
    let reported: ReportedCode?
    let maxRepeats: Int
    private(set) var labelCounts: [Label: Int] = [:]
    private(set) var total = 0
    private var stories = StoryBuilder()
    private var hits: [AttemptSummary] = []
    private var near: [AttemptSummary] = []
    static let maxMatches = 1000

    struct RepeatKey: Hashable {
        var server: Endpoint?
        var label: Label
        var cause: Cause
        var stage: Stage
        var endedBy: Ender
    }
    struct RepeatCount {
        var seen = 0
        var notShown = 0
        var first = 0
        var last = 0
        var clients: Set<IPAddress> = []
        var moreClients = false
    }
    private var repeats: [RepeatKey: RepeatCount] = [:]
    /// Distinct servers kept apart, distinct clients counted: past these, "other servers" and
    /// "more than N clients".
    static let maxRepeatKeys = 65_536
    static let clientsCounted = 1_024
    /// Every client address of the input, counted up to `maxClients`, and attempts a server answered.
    private var clients: Set<IPAddress> = []
    private(set) var moreClients = false
    static let maxClients = 65_536
    private(set) var answered = 0
    private(set) var notShown = 0

    /// For the summary table: per label, the first attempts' numbers and whether each is shown.
    private(set) var labelFirst: [Label: [(number: Int, shown: Bool)]] = [:]
    static let numbersPerLabel = 6
    /// Attempts by server and label, for the first `maxServers` servers; the rest together.
    private(set) var serverCounts: [Endpoint: [Label: Int]] = [:]
    private(set) var serverOrder: [Endpoint] = []
    private(set) var otherServers: [Label: Int] = [:]
    static let maxServers = 32
    /// Attempts `--reported` matched that the report shows one by one (a pointer can name them).
    private(set) var shownMatches: Set<Int> = []
    /// Failed attempts whose deciding facts stayed inside TLS for want of keys: one note for
    /// all of them in the summary, not one per attempt.
    private(set) var hiddenAttempts: [Int] = []
    private(set) var hiddenCount = 0
    private(set) var hiddenFacts: Set<HiddenFacts.Fact> = []
    private(set) var hiddenSources: Set<HiddenFacts.Source> = []
    static let hiddenNumbers = 6

    let failuresOnly: Bool
    let onlyAttempts: Set<Int>?
    /// Attempts the user's filters left out of the report.
    private(set) var filteredOut = 0

    init(reported: ReportedCode?, maxRepeats: Int = 20, failuresOnly: Bool = false, onlyAttempts: Set<Int>? = nil) {
        self.reported = reported
        self.maxRepeats = maxRepeats
        self.failuresOnly = failuresOnly
        self.onlyAttempts = onlyAttempts
    }

    convenience init(_ options: ReportOptions) {
        self.init(
            reported: options.reported, maxRepeats: options.maxRepeats, failuresOnly: options.failuresOnly,
            onlyAttempts: options.onlyAttempts)
    }

    /// What the report was asked to leave out, for its summary ("failed attempts only").
    var filterLine: String? {
        var what: [String] = []
        if failuresOnly { what.append("failed attempts only (--failures-only)") }
        if let only = onlyAttempts { what.append("attempts " + only.sorted().map { "#\($0)" }.joined(separator: ", ") + " (--attempt)") }
        guard !what.isEmpty else { return nil }
        return "Shown: " + what.joined(separator: " and ") + "; \(filteredOut) other attempt\(filteredOut == 1 ? "" : "s") counted above but not shown"
    }

    /// Takes an attempt; returns whether the report shows it one by one.
    @discardableResult
    func add(_ a: Attempt) -> Bool {
        let s = AttemptSummary(id: a.facts.tcp.id, facts: a.facts, verdict: a.verdict)
        labelCounts[s.label, default: 0] += 1
        total += 1
        if a.facts.tcp.handshake.synAck != nil || a.facts.tcp.serverSide.packets > 0 { answered += 1 }
        // Clients are only named when attempts are left out: with every attempt shown
        // (--max-repeats 0) the set is not kept.
        if maxRepeats > 0 {
            if clients.count < Self.maxClients {
                clients.insert(s.client.address)
            } else if !clients.contains(s.client.address) {
                moreClients = true
            }
        }
        stories.add(s)
        let matched = noteMatch(s)
        let show: Bool
        if (failuresOnly && !a.verdict.isFailure) || onlyAttempts.map({ !$0.contains(s.id + 1) }) == true {
            filteredOut += 1
            show = false
        } else {
            show = noteRepeat(a)
        }
        noteSummary(a, shown: show)
        if matched && show { shownMatches.insert(s.id + 1) }
        if let h = HiddenFacts.of(a.facts, a.verdict) {
            hiddenCount += 1
            if hiddenAttempts.count < Self.hiddenNumbers { hiddenAttempts.append(s.id + 1) }
            hiddenFacts.formUnion(h.facts)
            hiddenSources.formUnion(h.sources)
        }
        return show
    }

    private func noteSummary(_ a: Attempt, shown: Bool) {
        let label = a.verdict.label
        if labelFirst[label, default: []].count < Self.numbersPerLabel {
            labelFirst[label, default: []].append((a.facts.tcp.id + 1, shown))
        }
        let server = a.facts.tcp.server
        if serverCounts[server] != nil {
            serverCounts[server]![label, default: 0] += 1
        } else if serverOrder.count < Self.maxServers {
            serverOrder.append(server)
            serverCounts[server] = [label: 1]
        } else {
            otherServers[label, default: 0] += 1
        }
    }

    /// "Hidden without TLS keys (#2, #3): ...": what a key log would show, and where to get one.
    var hiddenNote: (attempts: String, single: Bool, facts: String, how: String)? {
        guard hiddenCount > 0 else { return nil }
        let numbers = hiddenAttempts.map { "#\($0)" }.joined(separator: ", ") + (hiddenCount > hiddenAttempts.count ? ", …" : "")
        return (numbers, hiddenCount == 1, Knowledge.hiddenList(hiddenFacts.sorted()), Knowledge.hiddenHow(hiddenSources.sorted()))
    }

    /// Where to get the hidden facts, one item each.
    var hiddenWays: [String] { hiddenSources.sorted().compactMap { Knowledge.hiddenSourceItem[$0] } }

    /// The summary table's rows: failures first (most frequent first), then incomplete and
    /// success.
    func verdictRows() -> [(label: Label, count: Int, first: [(number: Int, shown: Bool)])] {
        func rank(_ l: Label) -> Int { l == .success ? 2 : l == .incomplete ? 1 : 0 }
        return labelCounts.map { (label: $0.key, count: $0.value, first: labelFirst[$0.key] ?? []) }
            .sorted { (rank($0.label), -$0.count, $0.label.rawValue) < (rank($1.label), -$1.count, $1.label.rawValue) }
    }

    /// Per server: "3 failed of 4: 2 rst-refused, 1 client-abort, 1 success", most failures
    /// first; "other servers" for those past `maxServers`.
    func serverRows() -> [(server: String, attempts: Int, failed: Int, labels: String)] {
        func row(_ name: String, _ counts: [Label: Int]) -> (server: String, attempts: Int, failed: Int, labels: String) {
            let total = counts.values.reduce(0, +)
            let failed = counts.filter { $0.key != .success && $0.key != .incomplete }.values.reduce(0, +)
            let labels = counts.sorted { ($1.value, $0.key.rawValue) < ($0.value, $1.key.rawValue) }
                .map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
            return (name, total, failed, labels)
        }
        // Most failures first; ties in the order the servers were first seen.
        var rows = serverOrder.enumerated().map { (i, server) in (i, row(server.description, serverCounts[server] ?? [:])) }
            .sorted { ($1.1.failed, $1.1.attempts, $0.0) < ($0.1.failed, $0.1.attempts, $1.0) }.map { $0.1 }
        if !otherServers.isEmpty { rows.append(row("other servers", otherServers)) }
        return rows
    }

    var clientCount: Int { clients.count }

    private func noteRepeat(_ a: Attempt) -> Bool {
        guard maxRepeats > 0 else { return true }
        let v = a.verdict
        var key = RepeatKey(server: a.facts.tcp.server, label: v.label, cause: v.cause, stage: v.stage, endedBy: v.endedBy)
        if repeats[key] == nil && repeats.count >= Self.maxRepeatKeys { key.server = nil }
        var r = repeats[key] ?? RepeatCount()
        r.seen += 1
        let show = r.seen <= maxRepeats
        if !show {
            let number = a.facts.tcp.id + 1
            if r.notShown == 0 { r.first = number }
            r.notShown += 1
            r.last = number
            notShown += 1
            let client = a.facts.tcp.client.address
            if r.clients.count < Self.clientsCounted { r.clients.insert(client) } else if !r.clients.contains(client) { r.moreClients = true }
        }
        repeats[key] = r
        return show
    }

    /// The verdicts counted instead of shown, largest first.
    func repeatedVerdicts() -> [RepeatedVerdicts] {
        repeats.filter { $0.value.notShown > 0 }.map { key, r in
            RepeatedVerdicts(
                server: key.server.map { "\($0)" }, label: key.label, cause: key.cause, stage: key.stage,
                endedBy: key.endedBy, notShown: r.notShown, firstNotShown: r.first, lastNotShown: r.last,
                clients: r.clients.count, moreClients: r.moreClients)
        }.sorted { ($0.notShown, $1.firstNotShown) > ($1.notShown, $0.firstNotShown) }
    }

    /// "1000000 attempts from 200 clients, 0 answered by a server; 999980 not shown one by one",
    /// when some were not shown.
    var repeatsLine: String? {
        guard notShown > 0 else { return nil }
        let who = moreClients ? "more than \(clients.count) clients" : "\(clients.count) client\(clients.count == 1 ? "" : "s")"
        return "\(total) attempts from \(who), \(answered) answered by a server; \(notShown) not shown one by one (--max-repeats \(maxRepeats))"
    }

    /// Whether the attempt is one `reportedMatch` will name.
    private func noteMatch(_ s: AttemptSummary) -> Bool {
        guard let code = reported else { return false }
        if code.matches(s.clientReport) {
            if hits.count < Self.maxMatches {
                hits.append(s)
                return true
            }
        } else if hits.isEmpty, let r = s.clientReport, r.code.code == code.code, near.count < Self.maxMatches {
            near.append(s)
            return true
        }
        return false
    }

    /// "3 rst-refused, 1 success", sorted by label.
    var labelList: [String] { labelCounts.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key.rawValue)" } }

    func finishStories() -> [Story] { stories.finish() }
    /// Stories past the builder's limit (known once `finishStories` ran).
    var storiesOmitted: Int { stories.storiesOmitted }
    /// Repeated-verdict lines a report lists; past it, the rest are counted.
    static let maxRepeatLines = 100

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

/// What to paste into Wireshark to see one attempt: a display filter by addresses and ports
/// (`tcp.stream` numbers depend on the file: an exported pcap or a filtered capture numbers
/// its streams anew) and, when Wireshark would not decode the attempt's RDP or TLS by itself,
/// the `-d` (Decode As) option that makes it.
public struct WiresharkHint: Sendable, Equatable {
    /// `ip.addr==192.0.2.10 && ip.addr==198.51.100.20 && tcp.port==44282 && tcp.port==3389`;
    /// also matches the ICMP errors about the connection (Wireshark decodes their quoted headers).
    public var displayFilter: String
    /// `-d tcp.port==N,tls` or `-d tcp.port==N,tpkt`, with what it shows.
    public var decodeAs: (option: String, shows: String)?

    public static func == (a: WiresharkHint, b: WiresharkHint) -> Bool {
        a.displayFilter == b.displayFilter && a.decodeAs?.option == b.decodeAs?.option && a.decodeAs?.shows == b.decodeAs?.shows
    }

    public init(_ facts: AttemptFacts) {
        var b = OutputBytes(capacity: 128)
        Self.writeFilter(facts.tcp, into: &b)
        displayFilter = b.text(from: 0)
        decodeAs = Self.decodeOption(facts)
    }

    /// The display filter, written straight into a report's bytes (text writes one per attempt).
    static func writeFilter(_ t: TCPFacts, into b: inout OutputBytes) {
        let ip = t.client.address.isIPv6 ? "ipv6.addr==" : "ip.addr=="
        b.append(ip)
        b.append(address: t.client.address)
        b.append(" && ")
        b.append(ip)
        b.append(address: t.server.address)
        b.append(" && tcp.port==")
        b.append(decimal: Int(t.client.port))
        if t.server.port != t.client.port {
            b.append(" && tcp.port==")
            b.append(decimal: Int(t.server.port))
        }
    }

    /// Wireshark 4.0 decodes 3389 as RDP and then shows the TLS that follows the X.224
    /// exchange as "TPKT Continuation"; on another port it finds the TLS by itself but does
    /// not decode the X.224 exchange.
    static func decodeOption(_ facts: AttemptFacts) -> (option: String, shows: String)? {
        let port = facts.tcp.server.port
        if port == 3389 {
            guard facts.rdp.tls?.clientHello != nil else { return nil }
            return ("-d tcp.port==3389,tls", "the TLS handshake instead of \"TPKT Continuation\"")
        }
        guard facts.rdp.connectionRequest != nil else { return nil }
        return ("-d tcp.port==\(port),tpkt", "the X.224 negotiation as RDP on a port it does not know as RDP's")
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

/// What a JSON document's closing summary counts over the run's inputs.
struct RunTotals {
    var inputs = 0
    var errors = 0
    var attempts = 0
    var failures = 0

    mutating func add(_ s: InputSummary) {
        inputs += 1
        if s.error != nil { errors += 1 }
        attempts += s.attempts
        failures += s.failures
    }
}
