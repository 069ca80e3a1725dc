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
    public var account: NTLMMessage? { tsRequests.first { $0.ntlm?.messageType == 3 }?.ntlm }
    /// The server's names (from the NTLM CHALLENGE).
    public var serverNames: NTLMMessage? { tsRequests.first { $0.ntlm?.messageType == 2 }?.ntlm }
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
    public var ntlm: NTLMMessage?
    /// SPNEGO's offer or answer, when the token is SPNEGO.
    public var spnego: SPNEGOFacts?
    /// The Kerberos message inside (AP-REQ, AP-REP, KRB-ERROR): names and codes only.
    public var kerberos: KerberosFacts?
    public var authInfo: Bool
    public var pubKeyAuth: Bool
    public var clientNonce: Bool
    public var errorCode: UInt32?
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

extension ByteCursor {
    func peekUInt16LE(at delta: Int = 0) -> UInt16? {
        guard let lo = peekUInt8(at: delta), let hi = peekUInt8(at: delta + 1) else { return nil }
        return UInt16(lo) | UInt16(hi) << 8
    }
}
