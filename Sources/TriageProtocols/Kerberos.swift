import SwiftASN1
import TriageDecoding

/// A SPNEGO token (RFC 4178 4.2) as CredSSP's negoTokens carry it: the client's first token
/// inside the GSS-API framing (RFC 2743 3.1: `[APPLICATION 0]`, the SPNEGO OID 1.3.6.1.5.5.2,
/// then `negTokenInit [0]`), the later ones a bare `negTokenResp [1]`.
/// `NegTokenInit ::= SEQUENCE { mechTypes [0] MechTypeList, reqFlags [1] ContextFlags OPTIONAL,
/// mechToken [2] OCTET STRING OPTIONAL, mechListMIC [3] OCTET STRING OPTIONAL }` (MS-SPNG 2.2.1
/// adds `negHints [3]` and moves mechListMIC to [4]: tags past [2] are skipped unread).
/// `NegTokenResp ::= SEQUENCE { negState [0] ENUMERATED OPTIONAL, supportedMech [1] MechType
/// OPTIONAL, responseToken [2] OCTET STRING OPTIONAL, mechListMIC [3] OCTET STRING OPTIONAL }`.
public struct SPNEGOToken: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, Equatable {
        case negTokenInit = "neg-token-init"
        case negTokenResp = "neg-token-resp"
    }

    public var kind: Kind
    /// The mechanisms the initiator offers, most preferred first (dotted OIDs).
    public var mechTypes: [String] = []
    /// negState (RFC 4178 4.2.2): 0 accept-completed, 1 accept-incomplete, 2 reject, 3 request-mic.
    public var negState: UInt8?
    public var supportedMech: String?
    /// mechToken (init) or responseToken (resp): the inner mechanism's token.
    public var innerToken: [UInt8]?

    public init(kind: Kind) { self.kind = kind }

    static let oid = "1.3.6.1.5.5.2"
    static let negStateNames: [UInt8: String] = [0: "accept-completed", 1: "accept-incomplete", 2: "reject", 3: "request-mic"]
    /// Mechanism OIDs by name (RFC 4121, MS-SPNG 3.1.5.2, MS-NLMP 1.9, MS-NEGOEX).
    public static let mechanismNames: [String: String] = [
        "1.2.840.113554.1.2.2": "Kerberos 5", "1.2.840.48018.1.2.2": "Kerberos 5 (Microsoft OID)",
        "1.2.840.113554.1.2.2.3": "Kerberos 5 user-to-user", "1.3.6.1.4.1.311.2.2.10": "NTLM",
        "1.3.6.1.4.1.311.2.2.30": "NEGOEX",
    ]
    /// At most this many mechTypes are kept; a longer list is still parsed.
    static let maxMechTypes = 8

    /// Parses a SPNEGO token: the framed initial token, or a bare negTokenInit / negTokenResp.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> SPNEGOToken {
        do {
            let root = try DER.parse(bytes)
            if root.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .application) {
                guard case .constructed(let nodes) = root.content else { throw ParseError.malformed("GSS-API token is primitive", offset: 0) }
                var it = nodes.makeIterator()
                guard let mech = it.next() else { throw ParseError.malformed("GSS-API token without a mechanism", offset: 0) }
                let oid = try ASN1ObjectIdentifier(derEncoded: mech).description
                guard oid == Self.oid else { throw ParseError.unsupported("GSS-API mechanism \(oid), not SPNEGO", offset: 0) }
                guard let inner = it.next(), it.next() == nil else { throw ParseError.malformed("GSS-API SPNEGO token without exactly one NegotiationToken", offset: 0) }
                return try negotiationToken(inner)
            }
            return try negotiationToken(root)
        } catch let e as ParseError {
            throw e
        } catch {
            throw .malformed("SPNEGO: \(error)", offset: 0)
        }
    }

    /// `NegotiationToken ::= CHOICE { negTokenInit [0], negTokenResp [1] }`.
    static func negotiationToken(_ node: ASN1Node) throws -> SPNEGOToken {
        if node.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            return try DER.explicitlyTagged(node, tagNumber: 0, tagClass: .contextSpecific) { seq in
                try DER.sequence(seq, identifier: .sequence) { nodes in
                    var t = SPNEGOToken(kind: .negTokenInit)
                    while let field = nodes.next() {
                        guard field.identifier.tagClass == .contextSpecific else {
                            throw ParseError.malformed("negTokenInit field \(field.identifier)", offset: 0)
                        }
                        switch field.identifier.tagNumber {
                        case 0:
                            t.mechTypes = try DER.explicitlyTagged(field, tagNumber: 0, tagClass: .contextSpecific) { list in
                                try DER.sequence(list, identifier: .sequence) { oids in
                                    var out: [String] = []
                                    while let o = oids.next() {
                                        let s = try ASN1ObjectIdentifier(derEncoded: o).description
                                        if out.count < Self.maxMechTypes { out.append(s) }
                                    }
                                    return out
                                }
                            }
                        case 2:
                            t.innerToken = try DER.explicitlyTagged(field, tagNumber: 2, tagClass: .contextSpecific) {
                                Array(try ASN1OctetString(derEncoded: $0).bytes)
                            }
                        default:
                            // reqFlags, negHints, mechListMIC: nothing the diagnosis needs.
                            break
                        }
                    }
                    return t
                }
            }
        }
        if node.identifier == ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific) {
            return try DER.explicitlyTagged(node, tagNumber: 1, tagClass: .contextSpecific) { seq in
                try DER.sequence(seq, identifier: .sequence) { nodes in
                    var t = SPNEGOToken(kind: .negTokenResp)
                    t.negState = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { n in
                        guard n.identifier == .enumerated, case .primitive(let v) = n.content, v.count == 1, let b = v.first else {
                            throw ParseError.malformed("negState is not a one-byte ENUMERATED", offset: 0)
                        }
                        return b
                    }
                    t.supportedMech = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) {
                        try ASN1ObjectIdentifier(derEncoded: $0).description
                    }
                    t.innerToken = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) {
                        Array(try ASN1OctetString(derEncoded: $0).bytes)
                    }
                    // mechListMIC [3] is a checksum: skipped unread.
                    while nodes.next() != nil {}
                    return t
                }
            }
        }
        throw ParseError.malformed("not a SPNEGO NegotiationToken (\(node.identifier))", offset: 0)
    }
}

/// A Kerberos message as the GSS-API Kerberos mechanism carries it (RFC 4121 4.1): the
/// GSS-API framing with the KRB5 OID, a two-byte TOK_ID (01 00 KRB_AP_REQ, 02 00 KRB_AP_REP,
/// 03 00 KRB_ERROR; 04 00 TGT-REQ and 04 01 TGT-REP for user-to-user, MS-KILE 3.3.5.7.8),
/// then the message (RFC 4120 5.5.1, 5.5.2, 5.9.1). Only names and codes are kept: the
/// ticket's enc-part, the authenticator and the AP-REP's enc-part are never read.
public struct KerberosMessage: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, Equatable {
        case apReq = "ap-req"
        case apRep = "ap-rep"
        case krbError = "krb-error"
        case tgtReq = "tgt-req"
        case tgtRep = "tgt-rep"
    }

    public var kind: Kind
    /// AP-REQ: the ticket's realm; KRB-ERROR: the service's realm.
    public var realm: String?
    /// The service principal's name-string (`TERMSRV`, `host.example`) and name-type.
    public var serviceName: [String] = []
    public var serviceNameType: Int?
    /// KRB-ERROR: error-code (RFC 4120 7.5.9) and the client's realm and name when sent.
    public var errorCode: Int32?
    public var clientRealm: String?
    public var clientName: [String] = []

    public init(kind: Kind) { self.kind = kind }

    /// Kerberos 5 (RFC 4121), Microsoft's legacy Kerberos OID (MS-KILE 3.1.5.10) and user-to-user.
    static let mechanisms: Set<String> = ["1.2.840.113554.1.2.2", "1.2.840.48018.1.2.2", "1.2.840.113554.1.2.2.3"]
    static let maxNameComponents = 8

    /// Parses a Kerberos mechanism token: the GSS-API framed form, or a bare message.
    public static func parseToken(_ bytes: [UInt8]) throws(ParseError) -> KerberosMessage {
        guard bytes.first == 0x60 else { return try parse(bytes) }
        do {
            return try withCursor(bytes) { c in try framed(&c) }
        } catch let e as ParseError {
            throw e
        } catch {
            throw .malformed("Kerberos token: \(error)", offset: 0)
        }
    }

    static func framed(_ c: inout ByteCursor) throws(ParseError) -> KerberosMessage {
        do {
            // The framing holds a non-DER TOK_ID, so it is walked by hand and only the
            // message after it goes to the DER parser.
            _ = try c.u8("GSS-API tag")
            let length = try derLength(&c)
            guard length == c.remaining else { throw .malformed("GSS-API token length \(length), \(c.remaining) bytes follow", offset: c.offset) }
            guard try c.u8("mechanism tag") == 0x06 else { throw .malformed("GSS-API token without a mechanism OID", offset: c.offset - 1) }
            let oidLength = try derLength(&c)
            let oidStart = c.offset
            guard oidLength < 0x80, let oidBody = c.readSlice(oidLength) else { throw .malformed("mechanism OID of \(oidLength) bytes", offset: oidStart) }
            let oid: String
            do {
                oid = try ASN1ObjectIdentifier(derEncoded: [0x06, UInt8(truncatingIfNeeded: oidLength)] + oidBody.copyRemaining()).description
            } catch {
                throw .malformed("mechanism OID: \(error)", offset: oidStart)
            }
            guard mechanisms.contains(oid) else { throw .unsupported("GSS-API mechanism \(oid), not Kerberos", offset: oidStart) }
            let id = try c.u16be("TOK_ID")
            let kind: Kind
            switch id {
            case 0x0100: kind = .apReq
            case 0x0200: kind = .apRep
            case 0x0300: kind = .krbError
            case 0x0400: kind = .tgtReq
            case 0x0401: kind = .tgtRep
            default: throw .unsupported("Kerberos TOK_ID 0x\(String(id, radix: 16))", offset: c.offset - 2)
            }
            let message = c.copyRemaining()
            if kind == .tgtReq || kind == .tgtRep { return KerberosMessage(kind: kind) }
            let m = try parse(message)
            guard m.kind == kind else { throw .malformed("TOK_ID says \(kind.rawValue), the message is \(m.kind.rawValue)", offset: c.offset) }
            return m
        }
    }

    /// A DER length (short or long form, at most 3 bytes), checked against the bytes left.
    static func derLength(_ c: inout ByteCursor) throws(ParseError) -> Int {
        let first = try c.u8("DER length")
        var length = Int(first)
        if first & 0x80 != 0 {
            let count = Int(first & 0x7F)
            guard (1...3).contains(count) else { throw .malformed("DER length of \(count) bytes", offset: c.offset - 1) }
            length = 0
            for _ in 0..<count { length = length << 8 | Int(try c.u8("DER length")) }
        }
        guard length <= c.remaining else { throw .malformed("DER length \(length) past the token's end", offset: c.offset) }
        return length
    }

    /// Parses AP-REQ `[APPLICATION 14]`, AP-REP `[APPLICATION 15]` or KRB-ERROR `[APPLICATION 30]`.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> KerberosMessage {
        do {
            let root = try DER.parse(bytes)
            guard root.identifier.tagClass == .application else { throw ParseError.malformed("not a Kerberos message (\(root.identifier))", offset: 0) }
            switch root.identifier.tagNumber {
            case 14: return try apReq(root)
            case 15: return try apRep(root)
            case 30: return try krbError(root)
            default: throw ParseError.unsupported("Kerberos message [APPLICATION \(root.identifier.tagNumber)]", offset: 0)
            }
        } catch let e as ParseError {
            throw e
        } catch {
            throw .malformed("Kerberos: \(error)", offset: 0)
        }
    }

    /// `AP-REQ ::= [APPLICATION 14] SEQUENCE { pvno [0] INTEGER (5), msg-type [1] INTEGER (14),
    /// ap-options [2] APOptions, ticket [3] Ticket, authenticator [4] EncryptedData }`.
    static func apReq(_ root: ASN1Node) throws -> KerberosMessage {
        try DER.explicitlyTagged(root, tagNumber: 14, tagClass: .application) { seq in
            try DER.sequence(seq, identifier: .sequence) { nodes in
                try header(&nodes, msgType: 14)
                _ = try DER.explicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) { $0 }
                var m = KerberosMessage(kind: .apReq)
                try DER.explicitlyTagged(&nodes, tagNumber: 3, tagClass: .contextSpecific) { ticket in
                    // `Ticket ::= [APPLICATION 1] SEQUENCE { tkt-vno [0] INTEGER (5), realm [1] Realm,
                    // sname [2] PrincipalName, enc-part [3] EncryptedData }`.
                    try DER.explicitlyTagged(ticket, tagNumber: 1, tagClass: .application) { t in
                        try DER.sequence(t, identifier: .sequence) { fields in
                            let vno = try DER.explicitlyTagged(&fields, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                            guard vno == 5 else { throw ParseError.unsupported("ticket version \(vno)", offset: 0) }
                            m.realm = try DER.explicitlyTagged(&fields, tagNumber: 1, tagClass: .contextSpecific, kerberosString)
                            (m.serviceNameType, m.serviceName) = try DER.explicitlyTagged(&fields, tagNumber: 2, tagClass: .contextSpecific, principalName)
                            // enc-part: encrypted with the service's key; skipped unread.
                            _ = try DER.explicitlyTagged(&fields, tagNumber: 3, tagClass: .contextSpecific) { $0 }
                            while fields.next() != nil {}
                        }
                    }
                }
                // The authenticator is encrypted with the session key: skipped unread.
                _ = try DER.explicitlyTagged(&nodes, tagNumber: 4, tagClass: .contextSpecific) { $0 }
                while nodes.next() != nil {}
                return m
            }
        }
    }

    /// `AP-REP ::= [APPLICATION 15] SEQUENCE { pvno [0], msg-type [1] (15), enc-part [2] }`.
    static func apRep(_ root: ASN1Node) throws -> KerberosMessage {
        try DER.explicitlyTagged(root, tagNumber: 15, tagClass: .application) { seq in
            try DER.sequence(seq, identifier: .sequence) { nodes in
                try header(&nodes, msgType: 15)
                _ = try DER.explicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) { $0 }
                while nodes.next() != nil {}
                return KerberosMessage(kind: .apRep)
            }
        }
    }

    /// `KRB-ERROR ::= [APPLICATION 30] SEQUENCE { pvno [0], msg-type [1] (30), ctime [2] OPTIONAL,
    /// cusec [3] OPTIONAL, stime [4], susec [5], error-code [6] Int32, crealm [7] OPTIONAL,
    /// cname [8] OPTIONAL, realm [9], sname [10], e-text [11] OPTIONAL, e-data [12] OPTIONAL }`.
    static func krbError(_ root: ASN1Node) throws -> KerberosMessage {
        try DER.explicitlyTagged(root, tagNumber: 30, tagClass: .application) { seq in
            try DER.sequence(seq, identifier: .sequence) { nodes in
                try header(&nodes, msgType: 30)
                var m = KerberosMessage(kind: .krbError)
                _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) { $0 }
                _ = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 3, tagClass: .contextSpecific) { $0 }
                _ = try DER.explicitlyTagged(&nodes, tagNumber: 4, tagClass: .contextSpecific) { $0 }
                _ = try DER.explicitlyTagged(&nodes, tagNumber: 5, tagClass: .contextSpecific) { $0 }
                m.errorCode = try DER.explicitlyTagged(&nodes, tagNumber: 6, tagClass: .contextSpecific) { try Int32(derEncoded: $0) }
                m.clientRealm = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 7, tagClass: .contextSpecific, kerberosString)
                if let c = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 8, tagClass: .contextSpecific, principalName) {
                    m.clientName = c.1
                }
                m.realm = try DER.explicitlyTagged(&nodes, tagNumber: 9, tagClass: .contextSpecific, kerberosString)
                (m.serviceNameType, m.serviceName) = try DER.explicitlyTagged(&nodes, tagNumber: 10, tagClass: .contextSpecific, principalName)
                // e-text and e-data: free text and mechanism data, not kept.
                while nodes.next() != nil {}
                return m
            }
        }
    }

    /// pvno [0] INTEGER (5) and msg-type [1] INTEGER.
    static func header(_ nodes: inout ASN1NodeCollection.Iterator, msgType: Int) throws {
        let pvno = try DER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
        guard pvno == 5 else { throw ParseError.unsupported("Kerberos pvno \(pvno)", offset: 0) }
        let type = try DER.explicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
        guard type == msgType else { throw ParseError.malformed("msg-type \(type) in a message tagged \(msgType)", offset: 0) }
    }

    /// `PrincipalName ::= SEQUENCE { name-type [0] Int32, name-string [1] SEQUENCE OF KerberosString }`.
    static func principalName(_ node: ASN1Node) throws -> (Int?, [String]) {
        try DER.sequence(node, identifier: .sequence) { nodes in
            let type = try DER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
            let names = try DER.explicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { list in
                try DER.sequence(list, identifier: .sequence) { strings in
                    var out: [String] = []
                    while let s = strings.next() {
                        let v = try kerberosString(s)
                        if out.count < maxNameComponents { out.append(v) }
                    }
                    return out
                }
            }
            return (type, names)
        }
    }

    /// `KerberosString ::= GeneralString (IA5String)` (RFC 4120 5.2.1), shown escaped.
    static func kerberosString(_ node: ASN1Node) throws -> String {
        guard node.identifier == ASN1Identifier(tagWithNumber: 27, tagClass: .universal), case .primitive(let bytes) = node.content else {
            throw ParseError.malformed("KerberosString is not a GeneralString (\(node.identifier))", offset: 0)
        }
        return Printable.escaping(Array(bytes))
    }

    /// `TERMSRV/host.example` (name-string joined with `/`).
    public var servicePrincipal: String? { serviceName.isEmpty ? nil : serviceName.joined(separator: "/") }
}

/// What a negoToken's authentication layer says: SPNEGO's offer or answer and the Kerberos
/// message inside, when there is one. NTLM is read by `NTLMMessage`.
public enum NegoTokenReader {
    /// Reads a negoToken; nil parts where the token is not SPNEGO or holds no Kerberos message.
    /// Never throws: a token that is not understood just adds nothing.
    public static func read(_ token: [UInt8]) -> (spnego: SPNEGOToken?, kerberos: KerberosMessage?) {
        guard let first = token.first else { return (nil, nil) }
        var spnego: SPNEGOToken?
        var inner = token
        if first == 0x60 || first == 0xA0 || first == 0xA1 {
            if let s = try? SPNEGOToken.parse(token) {
                spnego = s
                inner = s.innerToken ?? []
            }
        }
        let kerberos = inner.isEmpty ? nil : try? KerberosMessage.parseToken(inner)
        return (spnego, kerberos)
    }
}
