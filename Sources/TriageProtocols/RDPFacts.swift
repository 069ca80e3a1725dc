import TriageCapture
import TriageDecoding
import TriageFlows

// The facts the protocol layer hands to the diagnosis: plain, Codable values with the
// frames that prove them. Nothing here is a secret: no passwords, NTLM responses,
// hashes or key material are ever stored.

/// Security protocols of RDP_NEG_REQ / RDP_NEG_RSP (MS-RDPBCGR 2.2.1.1.1).
public struct SecurityProtocols: OptionSet, Sendable, Codable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// PROTOCOL_RDP (0): standard RDP security, no bits set.
    public static let ssl = SecurityProtocols(rawValue: 0x01)
    public static let hybrid = SecurityProtocols(rawValue: 0x02)
    public static let rdstls = SecurityProtocols(rawValue: 0x04)
    public static let hybridEx = SecurityProtocols(rawValue: 0x08)
    public static let rdsaad = SecurityProtocols(rawValue: 0x10)

    /// Spec names, e.g. `PROTOCOL_SSL|PROTOCOL_HYBRID`; `PROTOCOL_RDP` for 0.
    public var names: String {
        if rawValue == 0 { return "PROTOCOL_RDP" }
        var out: [String] = []
        if contains(.ssl) { out.append("PROTOCOL_SSL") }
        if contains(.hybrid) { out.append("PROTOCOL_HYBRID") }
        if contains(.rdstls) { out.append("PROTOCOL_RDSTLS") }
        if contains(.hybridEx) { out.append("PROTOCOL_HYBRID_EX") }
        if contains(.rdsaad) { out.append("PROTOCOL_RDSAAD") }
        let unknown = rawValue & ~0x1f
        if unknown != 0 { out.append("0x" + String(unknown, radix: 16)) }
        return out.joined(separator: "|")
    }

    /// TLS runs on the connection after the Connection Confirm.
    public var usesTLS: Bool { rawValue != 0 }
    /// CredSSP (NLA) runs inside TLS.
    public var usesCredSSP: Bool { contains(.hybrid) || contains(.hybridEx) }
}

/// RDP_NEG_FAILURE failureCode (MS-RDPBCGR 2.2.1.2.2).
public struct NegotiationFailureCode: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let sslRequiredByServer = NegotiationFailureCode(rawValue: 0x1)
    public static let sslNotAllowedByServer = NegotiationFailureCode(rawValue: 0x2)
    public static let sslCertNotOnServer = NegotiationFailureCode(rawValue: 0x3)
    public static let inconsistentFlags = NegotiationFailureCode(rawValue: 0x4)
    public static let hybridRequiredByServer = NegotiationFailureCode(rawValue: 0x5)
    public static let sslWithUserAuthRequiredByServer = NegotiationFailureCode(rawValue: 0x6)

    /// The spec name, or `failureCode-N` for an unknown value.
    public var name: String {
        switch rawValue {
        case 1: "SSL_REQUIRED_BY_SERVER"
        case 2: "SSL_NOT_ALLOWED_BY_SERVER"
        case 3: "SSL_CERT_NOT_ON_SERVER"
        case 4: "INCONSISTENT_FLAGS"
        case 5: "HYBRID_REQUIRED_BY_SERVER"
        case 6: "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER"
        default: "failureCode-\(rawValue)"
        }
    }
}

/// X.224 Connection Request with its RDP payload (MS-RDPBCGR 2.2.1.1).
public struct ConnectionRequestFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    /// The `mstshash=` cookie value (often the user name, possibly truncated).
    public var cookie: String?
    /// A routing token (load balancer), when present instead of a cookie.
    public var routingToken: String?
    /// RDP_NEG_REQ present (absent for pre-Vista clients).
    public var hasNegotiationRequest: Bool
    public var requestedProtocols: SecurityProtocols?
    public var flags: UInt8?
    /// RDP_NEG_CORRELATION_INFO correlation id as a GUID string.
    public var correlationID: String?
}

/// X.224 Connection Confirm (MS-RDPBCGR 2.2.1.2).
public struct ConnectionConfirmFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    /// RDP_NEG_RSP selectedProtocol.
    public var selectedProtocol: SecurityProtocols?
    public var flags: UInt8?
    /// RDP_NEG_FAILURE failureCode.
    public var failure: NegotiationFailureCode?
    /// The confirm carried no negotiation data (old server or old client).
    public var noNegotiationData: Bool
}

/// An X.509 certificate as a report shows it (from swift-certificates).
public struct CertificateFacts: Sendable, Codable, Equatable {
    public var subject: String
    public var issuer: String
    public var serialNumber: String
    public var notBefore: Timestamp
    public var notAfter: Timestamp
    public var selfSigned: Bool
    /// e.g. `RSA`, `ECDSA P-256`, `Ed25519`.
    public var keyType: String
    public var keyBits: Int?
    public var subjectAlternativeNames: [String]
    public var signatureAlgorithm: String
    /// SHA-256 of the DER encoding, hex (what Windows shows as the thumbprint is SHA-1; both are public).
    public var sha256: String
    /// Names a TLS-inspection product in the issuer (client-side interference), when recognised.
    public var inspectionProduct: String?
}

/// A TLS alert (RFC 5246 7.2, RFC 8446 6).
public struct TLSAlertFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    public var from: Side
    /// Level and description when the alert was in clear text; nil when encrypted.
    public var level: UInt8?
    public var description: UInt8?
    /// Recognised as an alert by record type (21) after encryption started, or by size and
    /// position in TLS 1.3 (content hidden).
    public var encrypted: Bool
}

/// What the TLS handshake showed (RFC 5246, RFC 8446).
public struct TLSFacts: Sendable, Codable, Equatable {
    public struct ClientHello: Sendable, Codable, Equatable {
        public var at: FrameRef
        /// legacy_version of the ClientHello body (0x0303 for TLS 1.2 and 1.3).
        public var legacyVersion: UInt16
        /// supported_versions extension (43), highest first as sent.
        public var supportedVersions: [UInt16]
        public var serverName: String?
        public var cipherSuites: [UInt16]
        /// Offset of the ClientHello's first byte in the client's stream (the length of what
        /// came before it): a peer that acknowledged no more than this never read it.
        public var streamOffset: Int64? = nil
        /// The client random in hex (public; it finds the connection's lines in a key log).
        public var random: String? = nil
    }
    public struct ServerHello: Sendable, Codable, Equatable {
        public var at: FrameRef
        public var legacyVersion: UInt16
        /// The negotiated version: supported_versions when present, else legacy_version.
        public var version: UInt16
        public var cipherSuite: UInt16
    }
    public struct RecordRun: Sendable, Codable, Equatable {
        public var at: FrameRef
        public var from: Side
        /// Record content type (23 application data, 22 handshake after encryption, ...).
        public var contentType: UInt8
        public var length: Int
    }

    public var clientHello: ClientHello?
    public var serverHello: ServerHello?
    /// The server's chain, leaf first (TLS 1.2 and earlier: in clear; TLS 1.3: encrypted, absent).
    public var certificates: [CertificateFacts] = []
    /// The frame carrying the server's Certificate message; in TLS 1.3, where it is
    /// encrypted, the frame of the server's second encrypted handshake record (the one after
    /// EncryptedExtensions).
    public var certificateFrame: FrameRef?
    public var serverHelloDone: FrameRef?
    /// A HelloRetryRequest (RFC 8446 4.1.4) came before the real ServerHello.
    public var helloRetryRequest: FrameRef?
    public var alerts: [TLSAlertFacts] = []
    /// ChangeCipherSpec per side.
    public var clientChangeCipherSpec: FrameRef?
    public var serverChangeCipherSpec: FrameRef?
    /// Both sides finished the handshake (Finished seen or application data both ways).
    public var handshakeComplete: Bool = false
    /// The first encrypted records after the handshake, both directions in stream order
    /// (bounded): CredSSP's shape, or the start of the RDP session.
    public var applicationRecords: [RecordRun] = []
    public var clientApplicationBytes: Int64 = 0
    public var serverApplicationBytes: Int64 = 0
    /// The bytes in a direction stopped parsing as TLS records.
    public var malformed: [String] = []

    public init() {}

    public var isTLS13: Bool { serverHello?.version == 0x0304 }
}

/// CredSSP (MS-CSSP) seen by shape inside TLS after a HYBRID negotiation.
public struct CredSSPFacts: Sendable, Codable, Equatable {
    /// How far the exchange got, from record sizes and directions.
    public enum Phase: String, Sendable, Codable {
        case none
        /// Client's first TSRequest (NTLM NEGOTIATE / Kerberos AP-REQ).
        case negotiate
        /// Server's answer (NTLM CHALLENGE).
        case challenge
        /// Client's AUTHENTICATE with pubKeyAuth.
        case authenticate
        /// Server's pubKeyAuth: the server accepted the credentials.
        case serverPubKeyAuth = "server-pubkeyauth"
        /// Client's encrypted credentials (authInfo): NLA done.
        case credentials
        /// HYBRID_EX Early User Authorization Result (4 bytes).
        case earlyUserAuthorization = "early-user-authorization"
        /// RDP traffic after CredSSP.
        case session
    }

    public var phase: Phase = .none
    /// Records attributed to CredSSP, in stream order.
    public var records: [TLSFacts.RecordRun] = []
    /// Only with a key log (read inside TLS): the server's TSRequest errorCode.
    public var errorCode: UInt32?
    /// Decrypted only: TSRequest version each side spoke.
    public var clientVersion: Int?
    public var serverVersion: Int?
    /// The record that reached `phase`.
    public var reachedAt: FrameRef?
    /// A server record where the CHALLENGE or the pubKeyAuth was due, too small for
    /// either (estimated plaintext under 40 bytes) and not followed by the client's next
    /// leg: a TSRequest carrying only errorCode, how recent Windows servers refuse
    /// credentials. The code itself is encrypted (readable with a key log only).
    public var likelyErrorReply: FrameRef?

    public init() {}
}

/// MCS Connect Initial with GCC client data, standard RDP security (MS-RDPBCGR 2.2.1.3).
public struct MCSConnectInitialFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    public var clientName: String?
    public var clientBuild: UInt32?
    public var keyboardLayout: UInt32?
    public var desktopWidth: UInt16?
    public var desktopHeight: UInt16?
    /// RDP version of TS_UD_CS_CORE (e.g. 0x00080004 for RDP 5.0+).
    public var version: UInt32?
    /// serverSelectedProtocol echoed in TS_UD_CS_CORE, when present.
    public var serverSelectedProtocol: UInt32?
    public var channels: [String]
    public var encryptionMethods: UInt32?
}

/// MCS Connect Response with GCC server data (MS-RDPBCGR 2.2.1.4).
public struct MCSConnectResponseFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    /// T.125 Result (0 rt-successful).
    public var result: UInt8?
    public var version: UInt32?
    public var clientRequestedProtocols: UInt32?
    public var encryptionMethod: UInt32?
    public var encryptionLevel: UInt32?
    /// Proprietary certificate (MS-RDPBCGR 2.2.1.4.3.1.1) or an X.509 chain.
    public var certificateKind: String?
    /// The X.509 chain, leaf first (the wire order of MS-RDPELE 2.2.1.4.2 is root first).
    public var certificates: [CertificateFacts]
    /// RSA key size of a proprietary certificate (512 for Windows' built-in key).
    public var proprietaryKeyBits: Int? = nil
    /// dwVersion's t bit: the server's certificate is temporary (MS-RDPBCGR 2.2.1.4.3.1).
    public var temporaryCertificate: Bool? = nil
}

/// What the first bytes each way were, to tell RDP from another service on the port.
public enum PayloadKind: String, Sendable, Codable {
    case x224ConnectionRequest = "x224-connection-request"
    case x224ConnectionConfirm = "x224-connection-confirm"
    case x224Other = "x224-other"
    case tls
    case http
    case ssh
    case text
    case binary
}

/// Something the connection parser noticed, named with its values (Suricata's app-layer
/// events, Zeek's weirds); `text` is the one place it becomes a sentence.
public enum ParserEvent: Sendable, Equatable {
    case resynchronisedAfterGap
    case pduPartlyLostInGap
    case noHeaderAfterGap
    case notAtPDUBoundary
    case reassemblyLimit(offset: Int64)
    case proxyPreamble(ParseError)
    case notRDP(PayloadKind)
    /// The capture began inside a PDU and no boundary showed in this many segments.
    case noPDUBoundary(segments: Int)
    case joinedMidStream(skippedBytes: Int64)
    case tpktFraming(ParseError)
    case neitherTPKTNorTLS
    case x224(ParseError)
    case connectionRequestFromServer
    case cookieWithoutCRLF
    case connectionConfirmFromClient
    case unknownNegotiationType(UInt8)
    case unexpectedTPDU(X224TPDUCode)
    case mcsConnect(ParseError)
    case serverCertificate(ParseError)
    case tlsRecord(ParseError)
    case handshakeMessageTooLarge(limit: Int)
    case tlsCertificate(ParseError)
    case tlsHandshakeMessage(TLSHandshakeType, ParseError)
    /// With a key log: the TLS 1.3 Certificate message, or one certificate in it, unreadable.
    case decryptedCertificateMessage(ParseError)
    case decryptedCertificate(ParseError)

    public var text: String {
        switch self {
        case .resynchronisedAfterGap: "resynchronised after a gap"
        case .pduPartlyLostInGap: "a PDU was partly lost in a gap"
        case .noHeaderAfterGap: "no PDU header after a gap"
        case .notAtPDUBoundary: "stream does not start at a PDU boundary"
        case .reassemblyLimit(let offset): "reassembly limit reached at offset \(offset)"
        case .proxyPreamble(let e): "proxy preamble: \(e.summary)"
        case .notRDP(let kind): "not RDP: first bytes are \(kind.rawValue)"
        case .noPDUBoundary(let n): "the capture began inside a PDU; no PDU boundary in the first \(n) segments"
        case .joinedMidStream(let n): "the capture began inside a PDU: \(n) bytes skipped to the first PDU boundary"
        case .tpktFraming(let e): "TPKT framing: \(e.summary)"
        case .neitherTPKTNorTLS: "neither TPKT nor TLS where X.224 or MCS was due"
        case .x224(let e): "X.224: \(e.summary)"
        case .connectionRequestFromServer: "X.224 Connection Request from the server"
        case .cookieWithoutCRLF: "cookie line without CR LF"
        case .connectionConfirmFromClient: "X.224 Connection Confirm from the client"
        case .unknownNegotiationType(let t): "Connection Confirm with negotiation type \(t)"
        case .unexpectedTPDU(let code): "X.224 \(code.name)"
        case .mcsConnect(let e): "MCS connect PDU: \(e.summary)"
        case .serverCertificate(let e): "server certificate: \(e.summary)"
        case .tlsRecord(let e): "TLS record: \(e.summary)"
        case .handshakeMessageTooLarge(let limit): "TLS handshake message larger than \(limit) bytes; not parsed"
        case .tlsCertificate(let e): "TLS certificate: \(e.summary)"
        case .tlsHandshakeMessage(let type, let e): "TLS \(type.name): \(e.summary)"
        case .decryptedCertificateMessage(let e): "TLS 1.3 Certificate (decrypted): \(e.summary)"
        case .decryptedCertificate(let e): "TLS certificate (decrypted): \(e.summary)"
        }
    }
}

/// A parser event with the side that sent the bytes and the frame that carried them. In JSON
/// it is its sentence (`server frame 6: not RDP: first bytes are text`), as reports print it.
public struct ParserNote: Sendable, Equatable, Codable, CustomStringConvertible {
    public var side: Side
    public var at: FrameRef?
    public var event: ParserEvent

    public init(side: Side, at: FrameRef?, event: ParserEvent) {
        self.side = side
        self.at = at
        self.event = event
    }

    public var description: String { "\(side.rawValue)\(at.map { " frame \($0.frame)" } ?? ""): \(event.text)" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Notes are written for people, not read back: the sentence does not keep the event's values.
    public init(from decoder: any Decoder) throws {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "parser notes are not read back"))
    }
}

/// How a side's stream was joined when the capture began inside the connection (its SYN
/// was not captured): where the first PDU boundary was and what followed it.
public struct MidStreamFacts: Sendable, Codable, Equatable {
    /// The framing found at the first PDU boundary.
    public enum Framing: String, Sendable, Codable {
        /// TLS records (RFC 5246 6.2.1): under TLS everything after the handshake.
        case tls
        /// TPKT (RFC 1006): X.224 and slow-path MCS PDUs.
        case tpkt
        /// Fast-path PDUs (MS-RDPBCGR 2.2.9.1.2 output, 2.2.8.1.2 input): only after the
        /// connection sequence.
        case fastPath = "fast-path"
    }
    public struct SideStart: Sendable, Codable, Equatable {
        public var framing: Framing
        /// Bytes of this side's captured stream before the first PDU boundary (the capture
        /// began inside a PDU).
        public var skippedBytes: Int64
        /// The frame where the first whole PDU starts.
        public var at: FrameRef
        /// Whole PDUs read from this side (bounded by the parser's reading limits).
        public var pdus: Int
        /// Of them, fast-path PDUs.
        public var fastPathPDUs: Int
    }
    public var client: SideStart?
    public var server: SideStart?

    public init() {}

    public subscript(_ side: Side) -> SideStart? {
        get { side == .client ? client : server }
        set { if side == .client { client = newValue } else { server = newValue } }
    }
}

/// Everything the protocol parsers learned about one session.
public struct RDPFacts: Sendable, Codable, Equatable {
    public var firstClientPayload: PayloadKind?
    public var firstServerPayload: PayloadKind?
    /// The first server bytes when they are not RDP: printable prefix (≤ 80 characters),
    /// e.g. `SSH-2.0-OpenSSH_9.2p1` or `HTTP/1.0 400 Bad Request`.
    public var serverBanner: String?
    public var serverBannerAt: FrameRef?
    public var connectionRequest: ConnectionRequestFacts?
    public var connectionConfirm: ConnectionConfirmFacts?
    /// X.224 Disconnect Request, by side.
    public var disconnectRequest: FrameRef?
    public var disconnectRequestFrom: Side?
    /// Its reason (X.224 13.5.3 e; 0 unspecified, 128 normal).
    public var disconnectRequestReason: UInt8?
    /// MCS Disconnect Provider Ultimatum (MS-RDPBCGR 2.2.2.3; T.125), by side, with its
    /// Reason (3 rn-user-requested, 1 rn-provider-initiated). Visible in clear text with
    /// standard RDP security only.
    public var disconnectProviderUltimatum: FrameRef?
    public var disconnectProviderUltimatumFrom: Side?
    public var disconnectProviderUltimatumReason: UInt8?
    public var mcsConnectInitial: MCSConnectInitialFacts?
    public var mcsConnectResponse: MCSConnectResponseFacts?
    public var tls: TLSFacts?
    public var credssp: CredSSPFacts?
    /// What the parser noticed (malformed PDUs, gaps, PDUs in the wrong direction), each
    /// with its side and frame, in frame order, for the report.
    public var notes: [ParserNote] = []
    /// A gap in a direction made the parser lose its place.
    public var lostSync: [Side] = []
    /// The capture began inside the streams: how each side's stream was joined (nil when
    /// the session's start was captured).
    public var midStream: MidStreamFacts?
    /// A SOCKS or HTTP CONNECT preamble before the RDP bytes: the proxy, the target asked
    /// for, and the proxy's answer.
    @Boxed public var proxy: ProxyFacts?
    /// What a key log made readable inside TLS; nil when no key material was given.
    @Boxed public var decrypted: DecryptedFacts?

    public init() {}
}

/// An optional member held behind a reference. `RDPFacts` is copied whole for every
/// session; its rare members (a proxy preamble, what a key log decrypted) would add hundreds
/// of bytes to each copy. A changed value gets a box of its own (copy on write).
@propertyWrapper
public struct Boxed<Value: Sendable & Equatable & Codable>: Sendable, Equatable {
    private final class Box: Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }
    private var box: Box?

    public init(wrappedValue: Value?) { box = wrappedValue.map(Box.init) }

    public var wrappedValue: Value? {
        get { box?.value }
        set { box = newValue.map(Box.init) }
    }

    public static func == (a: Self, b: Self) -> Bool { a.wrappedValue == b.wrappedValue }
}

extension Boxed: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        self.init(wrappedValue: c.decodeNil() ? nil : try c.decode(Value.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(wrappedValue)
    }
}

extension KeyedDecodingContainer {
    /// An absent key is a nil member, as for a plain optional.
    public func decode<V>(_: Boxed<V>.Type, forKey key: Key) throws -> Boxed<V> {
        Boxed(wrappedValue: try decodeIfPresent(V.self, forKey: key))
    }
}

extension RDPFacts {
    /// Written by hand, in declaration order: absent optionals (most of them, for most
    /// attempts) cost no call. The synthesized form made one for each, with a generic
    /// metadata look-up, for every attempt of a JSON report.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let v = firstClientPayload { try c.encode(v, forKey: .firstClientPayload) }
        if let v = firstServerPayload { try c.encode(v, forKey: .firstServerPayload) }
        if let v = serverBanner { try c.encode(v, forKey: .serverBanner) }
        if let v = serverBannerAt { try c.encode(v, forKey: .serverBannerAt) }
        if let v = connectionRequest { try c.encode(v, forKey: .connectionRequest) }
        if let v = connectionConfirm { try c.encode(v, forKey: .connectionConfirm) }
        if let v = disconnectRequest { try c.encode(v, forKey: .disconnectRequest) }
        if let v = disconnectRequestFrom { try c.encode(v, forKey: .disconnectRequestFrom) }
        if let v = disconnectRequestReason { try c.encode(v, forKey: .disconnectRequestReason) }
        if let v = disconnectProviderUltimatum { try c.encode(v, forKey: .disconnectProviderUltimatum) }
        if let v = disconnectProviderUltimatumFrom { try c.encode(v, forKey: .disconnectProviderUltimatumFrom) }
        if let v = disconnectProviderUltimatumReason { try c.encode(v, forKey: .disconnectProviderUltimatumReason) }
        if let v = mcsConnectInitial { try c.encode(v, forKey: .mcsConnectInitial) }
        if let v = mcsConnectResponse { try c.encode(v, forKey: .mcsConnectResponse) }
        if let v = tls { try c.encode(v, forKey: .tls) }
        if let v = credssp { try c.encode(v, forKey: .credssp) }
        try c.encode(notes, forKey: .notes)
        try c.encode(lostSync, forKey: .lostSync)
        if let v = midStream { try c.encode(v, forKey: .midStream) }
        if let v = proxy { try c.encode(v, forKey: .proxy) }
        if let v = decrypted { try c.encode(v, forKey: .decrypted) }
    }
}
