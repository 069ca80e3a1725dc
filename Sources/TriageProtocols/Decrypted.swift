import TriageCapture
import TriageDecoding
import TriageFlows

/// What a key log made readable inside TLS (nil without key material). Names of the
/// account are evidence; responses, keys and credentials are never kept (README, Secrets).
public struct DecryptedFacts: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable {
        /// Records opened with the key log's secrets.
        case decrypted
        /// The key log has no secret for this connection's ClientHello random.
        case noSecrets = "no-secrets"
        /// The negotiated version or cipher suite is not one rdptriage decrypts.
        case unsupported
        /// A record failed authentication: the key log is not this connection's.
        case wrongKeys = "wrong-keys"
    }

    public var status: Status
    public var detail: String?
    /// The record that failed authentication.
    public var failedAt: FrameRef?
    public var failedFrom: Side?
    public var clientRecords = 0
    public var serverRecords = 0
    public var tsRequests: [TSRequestFacts] = []
    public var earlyUserAuthorization: EarlyUserAuthorizationFacts?
    public var mcsConnectResponse: FrameRef?
    public var license: LicenseFacts?
    public var errorInfo: ErrorInfoFacts?
    public var logon: LogonFacts?
    public var disconnectProviderUltimatum: DisconnectFacts?
    /// Alerts whose content decryption revealed (TLS 1.3 hides their type).
    public var alerts: [TLSAlertFacts] = []
    /// Reading stopped at the per-direction record limit before the connection ended.
    public var recordLimitReached = false

    public init(status: Status) { self.status = status }

    /// The account the client tried (from the NTLM AUTHENTICATE).
    public var account: NTLMFacts? { tsRequests.first { $0.ntlm?.messageType == 3 }?.ntlm }
    /// The server's names (from the NTLM CHALLENGE).
    public var serverNames: NTLMFacts? { tsRequests.first { $0.ntlm?.messageType == 2 }?.ntlm }
    /// The client's TSRequest carrying its Kerberos AP-REQ.
    public var kerberosRequestMessage: TSRequestFacts? { tsRequests.first { $0.from == .client && $0.kerberos?.message == .apReq } }
    /// The client's Kerberos AP-REQ (realm and service principal).
    public var kerberosRequest: KerberosFacts? { kerberosRequestMessage?.kerberos }
    /// The server's KRB-ERROR, when it sent one.
    public var kerberosError: (at: FrameRef, facts: KerberosFacts)? {
        guard let r = tsRequests.first(where: { $0.from == .server && $0.kerberos?.message == .krbError }), let k = r.kerberos else { return nil }
        return (r.at, k)
    }
}

/// One TSRequest (MS-CSSP 2.2.1) as facts.
public struct TSRequestFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    public var from: Side
    public var version: Int
    public var negoTokens: Int
    public var mechanism: AuthMechanism?
    public var ntlm: NTLMFacts?
    /// SPNEGO's offer or answer, when the token is SPNEGO.
    public var spnego: SPNEGOFacts?
    /// The Kerberos message inside (AP-REQ, AP-REP, KRB-ERROR): names and codes only.
    public var kerberos: KerberosFacts?
    public var authInfo: Bool
    public var pubKeyAuth: Bool
    public var clientNonce: Bool
    public var errorCode: UInt32?
}

/// The names an NTLM message carries (MS-NLMP 2.2.1); never its responses or keys.
public struct NTLMFacts: Sendable, Codable, Equatable {
    /// 1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE.
    public var messageType: UInt32
    public var domain: String?
    public var user: String?
    public var workstation: String?
    public var targetName: String?
    public var netbiosComputer: String?
    public var netbiosDomain: String?
    public var dnsComputer: String?
    public var dnsDomain: String?

    init(_ m: NTLMMessage) {
        messageType = m.type
        domain = m.domain
        user = m.user
        workstation = m.workstation
        targetName = m.targetName
        netbiosComputer = m.netbiosComputer
        netbiosDomain = m.netbiosDomain
        dnsComputer = m.dnsComputer
        dnsDomain = m.dnsDomain
    }

    /// `DOMAIN\user`, or the user alone when no domain was sent.
    public var qualifiedUser: String? {
        guard let user else { return nil }
        guard let domain, !domain.isEmpty else { return user }
        return "\(domain)\\\(user)"
    }
}

/// A SPNEGO token (RFC 4178 4.2) as facts; the inner token itself is not kept (it holds the
/// Kerberos ticket and authenticator).
public struct SPNEGOFacts: Sendable, Codable, Equatable {
    public var kind: SPNEGOToken.Kind
    /// The initiator's mechanisms, most preferred first (dotted OIDs).
    public var mechTypes: [String]?
    /// `accept-completed`, `accept-incomplete`, `reject`, `request-mic`.
    public var negState: String?
    public var supportedMech: String?

    init(_ t: SPNEGOToken) {
        kind = t.kind
        mechTypes = t.mechTypes.isEmpty ? nil : t.mechTypes
        negState = t.negState.map { SPNEGOToken.negStateNames[$0] ?? "\($0)" }
        supportedMech = t.supportedMech
    }
}

/// A Kerberos message (RFC 4120) as facts: the realm and principal names and the error code;
/// never the ticket's enc-part, the authenticator or any key.
public struct KerberosFacts: Sendable, Codable, Equatable {
    public var message: KerberosMessage.Kind
    /// AP-REQ: the ticket's realm; KRB-ERROR: the service's realm.
    public var realm: String?
    /// `TERMSRV/host.example`.
    public var servicePrincipal: String?
    public var serviceNameType: Int?
    /// KRB-ERROR error-code (RFC 4120 7.5.9).
    public var errorCode: Int32?
    public var clientRealm: String?
    public var clientName: String?

    init(_ m: KerberosMessage) {
        message = m.kind
        realm = m.realm
        servicePrincipal = m.servicePrincipal
        serviceNameType = m.serviceNameType
        errorCode = m.errorCode
        clientRealm = m.clientRealm
        clientName = m.clientName.isEmpty ? nil : m.clientName.joined(separator: "/")
    }

    /// The host of a `SERVICE/host` principal, lower-cased, without a `:port` or `@REALM`.
    public var serviceHost: String? {
        guard let spn = servicePrincipal else { return nil }
        let parts = spn.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2 else { return nil }
        var host = parts[1]
        if let at = host.firstIndex(of: "@") { host = host[..<at] }
        if let colon = host.firstIndex(of: ":") { host = host[..<colon] }
        return host.isEmpty ? nil : host.lowercased()
    }
}

/// HYBRID_EX Early User Authorization Result (MS-RDPBCGR 2.2.10.2).
public struct EarlyUserAuthorizationFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    /// 0x00000000 SUCCESS, 0x00000005 ACCESS_DENIED.
    public var result: UInt32
}

/// A licensing error message (MS-RDPBCGR 2.2.1.12.1.3, LICENSE_ERROR_MESSAGE).
public struct LicenseFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    /// dwErrorCode: 0x07 STATUS_VALID_CLIENT is the normal "no license needed" answer.
    public var errorCode: UInt32
    public var stateTransition: UInt32
}

/// Set Error Info PDU (MS-RDPBCGR 2.2.5.1.1).
public struct ErrorInfoFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    public var code: UInt32
}

/// Save Session Info PDU (MS-RDPBCGR 2.2.10.1): the user logged on.
public struct LogonFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    /// 0 INFOTYPE_LOGON, 1 LOGON_LONG, 2 LOGON_PLAINNOTIFY, 3 LOGON_EXTENDED_INFO.
    public var infoType: UInt32
}

/// MCS Disconnect Provider Ultimatum (MS-RDPBCGR 2.2.2.3).
public struct DisconnectFacts: Sendable, Codable, Equatable {
    public var at: FrameRef
    public var from: Side
    public var reason: UInt8?
}

/// The protocol inside TLS, fed with plaintext in stream order: CredSSP TSRequests, the
/// HYBRID_EX Early User Authorization Result, then TPKT/MCS and the RDP PDUs of the
/// connection sequence (Zeek's child analyzer, STYLE.md "Analyzers that nest").
struct PlaintextLayer: Sendable {
    /// Where one direction is.
    enum Mode: Sendable, Equatable {
        /// Nothing read yet: a DER SEQUENCE starts CredSSP, anything else is RDP.
        case start
        case credssp
        /// The server's 4-byte Early User Authorization Result is due (HYBRID_EX).
        case earlyUserAuthorization
        /// TPKT and fast-path PDUs.
        case rdp
        case stopped
    }

    static let maxBuffer = 64 * 1024
    static let maxTSRequests = 16

    var client = Mode.start
    var server = Mode.start
    var clientBuffer: [UInt8] = []
    var serverBuffer: [UInt8] = []
    var hybridEx = false
    var facts = DecryptedFacts(status: .decrypted)

    mutating func receive(_ bytes: [UInt8], from side: Side, at: FrameRef) {
        var mode = side == .client ? client : server
        guard mode != .stopped else { return }
        var buffer: [UInt8] = []
        if side == .client { swap(&buffer, &clientBuffer) } else { swap(&buffer, &serverBuffer) }
        buffer += bytes
        var used = 0
        while used < buffer.count && mode != .stopped {
            let rest = Array(buffer[used...])
            guard let n = step(&mode, rest, from: side, at: at) else { break }
            used += n
        }
        buffer.removeFirst(min(used, buffer.count))
        if buffer.count > Self.maxBuffer { mode = .stopped }
        if mode == .stopped { buffer = [] }
        if side == .client {
            client = mode
            clientBuffer = buffer
        } else {
            server = mode
            serverBuffer = buffer
        }
    }

    /// Reads one unit; the bytes used, nil when more are needed.
    mutating func step(_ mode: inout Mode, _ b: [UInt8], from side: Side, at: FrameRef) -> Int? {
        switch mode {
        case .start:
            mode = b.first == 0x30 ? .credssp : .rdp
            return 0
        case .credssp:
            guard b.first == 0x30 else {
                mode = side == .server && hybridEx ? .earlyUserAuthorization : .rdp
                return 0
            }
            let length: Int
            do {
                guard let l = try TSRequest.elementLength(b) else { return nil }
                length = l
            } catch {
                mode = .stopped
                return nil
            }
            guard b.count >= length else { return nil }
            readTSRequest(Array(b[0..<length]), from: side, at: at)
            return length
        case .earlyUserAuthorization:
            guard b.count >= 4 else { return nil }
            let result = UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
            if facts.earlyUserAuthorization == nil { facts.earlyUserAuthorization = EarlyUserAuthorizationFacts(at: at, result: result) }
            mode = .rdp
            return 4
        case .rdp:
            return readRDP(&mode, b, from: side, at: at)
        case .stopped:
            return nil
        }
    }

    mutating func readTSRequest(_ bytes: [UInt8], from side: Side, at: FrameRef) {
        guard let request = try? TSRequest.parse(bytes) else { return }
        var f = TSRequestFacts(
            at: at, from: side, version: request.version, negoTokens: request.negoTokens.count, mechanism: nil, ntlm: nil,
            authInfo: request.hasAuthInfo, pubKeyAuth: request.hasPubKeyAuth, clientNonce: request.hasClientNonce,
            errorCode: request.errorCode)
        if let token = request.negoTokens.first {
            let (mechanism, message) = NTLMMessage.find(in: token)
            f.mechanism = mechanism
            f.ntlm = message.map(NTLMFacts.init)
            if mechanism != .ntlm {
                let (spnego, kerberos) = NegoTokenReader.read(token)
                f.spnego = spnego.map(SPNEGOFacts.init)
                f.kerberos = kerberos.map(KerberosFacts.init)
                if kerberos != nil { f.mechanism = .kerberos }
            }
        }
        if facts.tsRequests.count < Self.maxTSRequests { facts.tsRequests.append(f) }
        // The client's credentials end its CredSSP; the server's last TSRequest (pubKeyAuth)
        // comes before them, so its side switches on its next non-DER bytes.
        if side == .client && request.hasAuthInfo { client = .rdp }
    }

    /// One TPKT or fast-path PDU (MS-RDPBCGR 2.2.8.1.2, 2.2.9.1.2).
    mutating func readRDP(_ mode: inout Mode, _ b: [UInt8], from side: Side, at: FrameRef) -> Int? {
        guard let first = b.first else { return nil }
        if first == TPKTHeader.version {
            guard b.count >= 4 else { return nil }
            let length = Int(b[2]) << 8 | Int(b[3])
            guard length >= 7 else {
                mode = .stopped
                return nil
            }
            guard b.count >= length else { return nil }
            withCursor(Array(b[0..<length])) { c in readTPKT(&c, from: side, at: at) }
            return length
        }
        guard first & 0x03 == 0, b.count >= 2 else {
            if first & 0x03 != 0 { mode = .stopped }
            return nil
        }
        let length: Int
        if b[1] & 0x80 != 0 {
            guard b.count >= 3 else { return nil }
            length = Int(b[1] & 0x7F) << 8 | Int(b[2])
        } else {
            length = Int(b[1])
        }
        guard length >= 2 else {
            mode = .stopped
            return nil
        }
        guard b.count >= length else { return nil }
        return length
    }

    mutating func readTPKT(_ c: inout ByteCursor, from side: Side, at: FrameRef) {
        guard case .data(let userDataOffset, let userDataLength)? = try? X224.parse(&c) else { return }
        let from = TPKTHeader.size + userDataOffset
        var data = ByteCursor(c.base, from: from, to: min(c.base.count, from + userDataLength))
        if data.peekUInt8() == 0x7F, data.peekUInt8(at: 1) == 0x66 {
            if side == .server && facts.mcsConnectResponse == nil { facts.mcsConnectResponse = at }
            return
        }
        guard let first = data.readUInt8() else { return }
        let type = MCSDomainPDUType(rawValue: first >> 2)
        if type == .disconnectProviderUltimatum {
            let reason = data.readUInt8().map { (first & 0x03) << 1 | $0 >> 7 }
            if facts.disconnectProviderUltimatum == nil {
                facts.disconnectProviderUltimatum = DisconnectFacts(at: at, from: side, reason: reason)
            }
            return
        }
        guard type == .sendDataIndication || type == .sendDataRequest else { return }
        // initiator (2), channelId (2), dataPriority and segmentation (1), PER length.
        guard data.skip(5), let l0 = data.readUInt8() else { return }
        if l0 & 0x80 != 0 { guard data.readUInt8() != nil else { return } }
        readSlowPath(data, from: side, at: at)
    }

    /// The MCS user data: a licensing PDU (with its security header), or a Share Control
    /// PDU (MS-RDPBCGR 2.2.8.1.1.1.1). The Client Info PDU (it holds the password) is skipped
    /// unread.
    mutating func readSlowPath(_ data: ByteCursor, from side: Side, at: FrameRef) {
        var c = data
        guard let first = c.peekUInt16LE(), let second = c.peekUInt16LE(at: 2) else { return }
        // Share Control Header: totalLength, pduType with version 1 in bits 4-15.
        if second & 0xFFF0 == 0x0010, Int(first) == c.remaining {
            guard second & 0x000F == 7, side == .server else { return }
            // Share Data Header (2.2.8.1.1.1.2): pduType2 at offset 14 from the PDU's start.
            guard c.skip(14), let type2 = c.readUInt8(), c.skip(3), let value = c.readUInt32LE() else { return }
            switch type2 {
            case 0x2F:
                if value != 0 && facts.errorInfo == nil { facts.errorInfo = ErrorInfoFacts(at: at, code: value) }
            case 0x26:
                if facts.logon == nil { facts.logon = LogonFacts(at: at, infoType: value) }
            default:
                break
            }
            return
        }
        // Basic security header flags: SEC_LICENSE_PKT 0x0080 (2.2.1.12), SEC_INFO_PKT 0x0040.
        guard first & 0x0080 != 0, side == .server else { return }
        guard c.skip(4), let msgType = c.readUInt8(), c.skip(3) else { return }
        // ERROR_ALERT (0xFF): dwErrorCode, dwStateTransition (2.2.1.12.1.3).
        guard msgType == 0xFF, let code = c.readUInt32LE(), let transition = c.readUInt32LE() else { return }
        if facts.license == nil { facts.license = LicenseFacts(at: at, errorCode: code, stateTransition: transition) }
    }
}

extension ByteCursor {
    func peekUInt16LE(at delta: Int = 0) -> UInt16? {
        guard let lo = peekUInt8(at: delta), let hi = peekUInt8(at: delta + 1) else { return nil }
        return UInt16(lo) | UInt16(hi) << 8
    }
}
