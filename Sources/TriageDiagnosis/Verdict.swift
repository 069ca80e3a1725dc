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

/// What the Windows client shows for an attempt (FACTS.md section 1): a disconnect reason,
/// with an extended reason when one applies, or an error the client names without a fixed
/// number. A schema maps it to `{code: "0x904" | null, extended, kind}`.
public enum ClientCode: Sendable, Hashable, CustomStringConvertible {
    /// A disconnect reason (`0x904`) and, when one applies, the extended reason (`0x7`).
    case reason(UInt32, extended: UInt32?)
    /// An error without a fixed number.
    case kind(Kind)
    /// The server's own reason (a Set Error Info PDU, read with a key log): the client shows
    /// it as the extended reason, beside a disconnect reason the capture cannot tell.
    case errorInfo(UInt32)

    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// The client's own decision or policy (a refused certificate, NLA required).
        case local
        /// A security negotiation error naming the RDP_NEG_FAILURE code.
        case negotiation
        /// A TLS / security-layer error.
        case security
        /// A protocol error: the answer is not RDP.
        case `protocol`
    }

    public static func reason(_ code: UInt32) -> ClientCode { .reason(code, extended: nil) }

    /// The disconnect reason, nil for a kind.
    public var code: UInt32? { if case .reason(let c, _) = self { c } else { nil } }
    public var extended: UInt32? {
        switch self {
        case .reason(_, let e): e
        case .errorInfo(let e): e
        case .kind: nil
        }
    }
    /// The kind of an error without a number; `.reason` codes have none.
    public var kind: Kind? { if case .kind(let k) = self { k } else { nil } }

    /// `0x904/0x7`, `0x204`, `local`, `errorInfo/0x9`.
    public var description: String { codeText + (extendedText.map { "/" + $0 } ?? "") }
    /// `0x904`, or the kind's name.
    public var codeText: String {
        switch self {
        case .reason(let c, _): Self.hex(c)
        case .kind(let k): k.rawValue
        case .errorInfo: "errorInfo"
        }
    }
    /// `0x7`, when an extended reason applies.
    public var extendedText: String? { extended.map(Self.hex) }

    static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16, uppercase: true) }

    /// Reads `codeText` and `extendedText` back (`0x904`, `local`).
    public init?(code: String, extended: String?) {
        if code == "errorInfo" {
            guard let extended, let e = ReportedCode.number(Substring(extended)) else { return nil }
            self = .errorInfo(e)
            return
        }
        if let k = Kind(rawValue: code) {
            guard extended == nil else { return nil }
            self = .kind(k)
            return
        }
        guard let c = ReportedCode.number(Substring(code)) else { return nil }
        if let extended {
            guard let e = ReportedCode.number(Substring(extended)) else { return nil }
            self = .reason(c, extended: e)
        } else {
            self = .reason(c, extended: nil)
        }
    }
}

/// What the Windows Remote Desktop client most likely reported for this attempt.
public struct ClientReport: Sendable, Codable, Equatable {
    public var code: ClientCode
    public var meaning: String

    public init(_ code: ClientCode, meaning: String) {
        self.code = code
        self.meaning = meaning
    }

    /// `0x904/0x7` or `0x204`.
    public var display: String { code.description }

    // The JSON keeps the report's first form: `code` as text (`0x904` or a kind), `extended`
    // only when there is one.
    enum CodingKeys: String, CodingKey { case code, extended, meaning }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(code.codeText, forKey: .code)
        if let e = code.extendedText { try c.encode(e, forKey: .extended) }
        try c.encode(meaning, forKey: .meaning)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let text = try c.decode(String.self, forKey: .code)
        let extended = try c.decodeIfPresent(String.self, forKey: .extended)
        guard let code = ClientCode(code: text, extended: extended) else {
            throw DecodingError.dataCorruptedError(forKey: .code, in: c, debugDescription: "not a client code: \(text)")
        }
        self.code = code
        meaning = try c.decode(String.self, forKey: .meaning)
    }
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
