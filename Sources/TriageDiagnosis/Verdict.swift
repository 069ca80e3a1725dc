import TriageCapture
import TriageFlows

/// Stable verdict labels (documented in the README; scripts grep for them).
public enum Label: String, Sendable, Codable, CaseIterable {
    case success
    case synUnanswered = "syn-unanswered"
    case rstRefused = "rst-refused"
    case icmpUnreachable = "icmp-unreachable"
    case resetByMiddlebox = "reset-by-middlebox"
    case reset
    case mtuBlackhole = "mtu-blackhole"
    /// The client's packets stop reaching the server after the handshake.
    case pathLoss = "path-loss"
    case negotiationFailure = "negotiation-failure"
    case tlsAlert = "tls-alert"
    case tlsRejected = "tls-rejected"
    case credsspFailure = "credssp-failure"
    case earlyDisconnect = "early-disconnect"
    case clientAbort = "client-abort"
    case nonRDPService = "non-rdp-service"
    /// A SOCKS or HTTP proxy in front of RDP answered the client's request with a refusal.
    case proxyRefused = "proxy-refused"
    case incomplete
}

/// The five causes of the 0x904/0x7 taxonomy (FACTS.md section 6), or none.
public enum Cause: String, Sendable, Codable, CaseIterable {
    case networkBlockade = "network-blockade"
    case tlsCredSSP = "tls-credssp"
    case hostNotAccepting = "host-not-accepting"
    case resolutionMismatch = "resolution-mismatch"
    case clientSide = "client-side"
    case none
}

/// Where in the connection sequence the attempt stopped.
public enum Stage: String, Sendable, Codable, CaseIterable {
    case tcpHandshake = "tcp-handshake"
    case x224Negotiation = "x224-negotiation"
    case tlsHandshake = "tls-handshake"
    case credssp
    case mcsConnect = "mcs-connect"
    case session
}

/// Who ended the connection.
public enum Ender: String, Sendable, Codable, CaseIterable {
    case client
    case server
    /// A router, firewall or anything between that answered or forged a packet.
    case middlebox
    /// Nobody: no answer, or the capture ended first.
    case none
}

public struct Confidence: Sendable, Codable, Equatable {
    public enum Level: String, Sendable, Codable, Comparable {
        case low
        case medium
        case high

        var rank: Int { self == .low ? 0 : self == .medium ? 1 : 2 }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }
    public var level: Level
    public var reason: String

    public init(_ level: Level, _ reason: String) {
        self.level = level
        self.reason = reason
    }
}

/// One piece of evidence: a frame (when there is one) and what it shows.
public struct Evidence: Sendable, Codable, Equatable {
    public var frame: Int?
    public var time: Timestamp?
    public var what: String

    public init(_ ref: FrameRef?, _ what: String) {
        frame = ref?.frame
        time = ref?.time
        self.what = what
    }
}

/// What the Windows Remote Desktop client most likely reported for this attempt.
public struct ClientReport: Sendable, Codable, Equatable {
    /// Disconnect reason, e.g. `0x904`.
    public var code: String
    /// Extended disconnect reason, e.g. `0x7`, when one applies.
    public var extended: String?
    public var meaning: String

    public init(code: String, extended: String? = nil, meaning: String) {
        self.code = code
        self.extended = extended
        self.meaning = meaning
    }

    /// `0x904/0x7` or `0x204`.
    public var display: String { extended.map { "\(code)/\($0)" } ?? code }
}

/// The diagnosis of one attempt.
public struct Verdict: Sendable, Codable, Equatable {
    public var label: Label
    public var cause: Cause
    public var stage: Stage
    public var endedBy: Ender
    public var confidence: Confidence
    /// One sentence for the summary line.
    public var summary: String
    /// Supporting facts in plain language, most important first.
    public var details: [String]
    public var evidence: [Evidence]
    public var clientReport: ClientReport?
    public var remediation: [String]
    /// The rule that decided (for reviewers and tests).
    public var rule: String

    /// A failed attempt. `incomplete` is not one: the capture ended before the outcome (or
    /// the attempt was no RDP request), and the exit status should not claim a failure.
    public var isFailure: Bool { label != .success && label != .incomplete }
}

extension Ender {
    /// The party in a sentence ("the client", "a device between client and server"); nil
    /// when nobody ended the attempt.
    public var party: String? {
        switch self {
        case .client: "the client"
        case .server: "the server"
        case .middlebox: "a device between client and server"
        case .none: nil
        }
    }
}

/// The sentences about how a connection ended, in one place: every rule and report says it
/// the same way, and none can name "the none" or blame the server for a forged RST.
public enum Wording {
    /// "connection ended by the server" (with `verb` "reset", "closed", ...); when nobody
    /// ended it, what the capture shows instead.
    public static func ended(_ outcome: TCPOutcome, by ender: Ender, verb: String = "ended") -> String {
        if let party = ender.party { return "connection \(verb) by \(party)" }
        switch outcome {
        case .open: return "connection still open when the capture ended"
        case .synUnanswered: return "no answer to the SYN before the capture ended"
        case .handshakeIncomplete: return "handshake not completed before the capture ended"
        case .icmpUnreachable: return "ICMP error answering the SYN"
        case .refused, .reset: return "connection reset"
        case .closed: return "connection closed"
        }
    }

    /// The TCP close as the reports' TCP line says it: "reset by server", or, for an RST
    /// the verdict found forged, "reset by middlebox (posing as server)".
    public static func tcpClose(_ outcome: TCPOutcome, by side: Side?, verdictEnder: Ender?) -> String {
        guard let side else { return outcome.rawValue }
        if verdictEnder == .middlebox && (outcome == .reset || outcome == .refused) {
            return "\(outcome.rawValue) by middlebox (posing as \(side.rawValue))"
        }
        return "\(outcome.rawValue) by \(side.rawValue)"
    }
}
