import SwiftASN1
import TriageDecoding

/// A CredSSP TSRequest (MS-CSSP 2.2.1), DER:
/// `TSRequest ::= SEQUENCE { version [0] INTEGER, negoTokens [1] NegoData OPTIONAL,
/// authInfo [2] OCTET STRING OPTIONAL, pubKeyAuth [3] OCTET STRING OPTIONAL,
/// errorCode [4] INTEGER OPTIONAL, clientNonce [5] OCTET STRING OPTIONAL }`,
/// `NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }`.
/// authInfo and pubKeyAuth are encrypted credentials and proofs: only their presence is kept.
public struct TSRequest: Sendable, Equatable {
    public var version: Int
    /// The negoToken of each NegoData entry (SPNEGO, NTLM or Kerberos).
    public var negoTokens: [[UInt8]]
    public var hasAuthInfo: Bool
    public var hasPubKeyAuth: Bool
    /// An NTSTATUS or SSPI status (MS-CSSP 2.2.1, versions 3, 4 and 6).
    public var errorCode: UInt32?
    public var hasClientNonce: Bool

    /// The length of the DER element at the start of `bytes` (header included), nil while
    /// its header is incomplete; a malformed header throws.
    public static func elementLength(_ bytes: [UInt8]) throws(ParseError) -> Int? {
        guard bytes.count >= 2 else { return nil }
        guard bytes[0] == 0x30 else { throw .malformed("TSRequest does not start with a SEQUENCE", offset: 0) }
        let first = bytes[1]
        if first & 0x80 == 0 { return 2 + Int(first) }
        let count = Int(first & 0x7F)
        guard (1...3).contains(count) else { throw .malformed("TSRequest length of \(count) bytes", offset: 1) }
        guard bytes.count >= 2 + count else { return nil }
        var length = 0
        for i in 0..<count { length = length << 8 | Int(bytes[2 + i]) }
        return 2 + count + length
    }

    /// Parses one complete TSRequest.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> TSRequest {
        do {
            let root = try DER.parse(bytes)
            return try DER.sequence(root, identifier: .sequence) { nodes in
                let version = try DER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                let tokens: [[UInt8]] =
                    try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { node in
                        try DER.sequence(node, identifier: .sequence) { entries in
                            var out: [[UInt8]] = []
                            while let entry = entries.next() {
                                let token = try DER.sequence(entry, identifier: .sequence) { inner in
                                    try DER.explicitlyTagged(&inner, tagNumber: 0, tagClass: .contextSpecific) {
                                        try ASN1OctetString(derEncoded: $0)
                                    }
                                }
                                out.append(Array(token.bytes))
                            }
                            return out
                        }
                    } ?? []
                let authInfo = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) {
                    try ASN1OctetString(derEncoded: $0)
                }
                let pubKeyAuth = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 3, tagClass: .contextSpecific) {
                    try ASN1OctetString(derEncoded: $0)
                }
                let errorCode = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 4, tagClass: .contextSpecific) {
                    try Int64(derEncoded: $0)
                }
                let nonce = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 5, tagClass: .contextSpecific) {
                    try ASN1OctetString(derEncoded: $0)
                }
                // Later fields of a newer version are skipped, as the spec's extensibility asks.
                while nodes.next() != nil {}
                return TSRequest(
                    version: version, negoTokens: tokens, hasAuthInfo: authInfo != nil, hasPubKeyAuth: pubKeyAuth != nil,
                    errorCode: errorCode.map { UInt32(truncatingIfNeeded: $0) }, hasClientNonce: nonce != nil)
            }
        } catch let error as ParseError {
            throw error
        } catch {
            throw .malformed("TSRequest: \(error)", offset: 0)
        }
    }
}

/// The authentication mechanism inside a negoToken.
public enum AuthMechanism: String, Sendable, Codable, Equatable {
    case ntlm
    case kerberos
    /// SPNEGO without a recognisable inner mechanism.
    case spnego
    case unknown
}

/// An NTLM message (MS-NLMP 2.2.1): the names it carries, never its responses or keys. Also
/// the fact a TSRequest keeps (`TSRequestFacts.ntlm`): encoded without its flags.
public struct NTLMMessage: Sendable, Equatable, Codable {
    /// 1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE.
    public var messageType: UInt32
    public var flags: UInt32?
    /// AUTHENTICATE: the account tried (MS-NLMP 2.2.1.3).
    public var domain: String?
    public var user: String?
    public var workstation: String?
    /// CHALLENGE: TargetName and the AV pairs of TargetInfo (MS-NLMP 2.2.2.1).
    public var targetName: String?
    public var netbiosComputer: String?
    public var netbiosDomain: String?
    public var dnsComputer: String?
    public var dnsDomain: String?

    static let signature: [UInt8] = Array("NTLMSSP".utf8) + [0]
    static let negotiateUnicode: UInt32 = 0x0000_0001

    /// Finds and parses the NTLM message inside a token (bare, or wrapped in SPNEGO/GSS-API).
    public static func find(in token: [UInt8]) -> (AuthMechanism, NTLMMessage?) {
        if let at = index(of: signature, in: token) { return (.ntlm, try? parse(Array(token[at...]))) }
        // Kerberos OIDs 1.2.840.113554.1.2.2 and 1.2.840.48018.1.2.2 (MS-SPNG 3.1.5.2).
        let krb5: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02]
        let msKrb5: [UInt8] = [0x2A, 0x86, 0x48, 0x82, 0xF7, 0x12, 0x01, 0x02, 0x02]
        if index(of: krb5, in: token) != nil || index(of: msKrb5, in: token) != nil { return (.kerberos, nil) }
        if let first = token.first, first == 0x60 || first == 0xA0 || first == 0xA1 { return (.spnego, nil) }
        return (.unknown, nil)
    }

    static func index(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle {
            return i
        }
        return nil
    }

    /// Parses a message starting with the NTLMSSP signature.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> NTLMMessage {
        do {
            return try withCursor(bytes) { c in try parseMessage(c) }
        } catch let e as ParseError {
            throw e
        } catch {
            throw .malformed("NTLM message", offset: 0)
        }
    }

    static func parseMessage(_ start: ByteCursor) throws(ParseError) -> NTLMMessage {
        do {
            var c = start
            let all = c
            let sig = try c.slice(8, "NTLM signature")
            guard sig.copyRemaining() == signature else { throw .malformed("not an NTLMSSP message", offset: 0) }
            let type = try c.u32le("NTLM MessageType")
            var m = NTLMMessage(messageType: type)
            switch type {
            case 1:
                m.flags = try c.u32le("NTLM NegotiateFlags")
            case 2:
                let target = try field(&c)
                let flags = try c.u32le("NTLM NegotiateFlags")
                m.flags = flags
                try c.skipBytes(16, "ServerChallenge and Reserved")
                let unicode = flags & negotiateUnicode != 0
                m.targetName = try string(all, target, unicode: unicode)
                if c.remaining >= 8 {
                    let info = try field(&c)
                    if let pairs = try slice(all, info) { m.readTargetInfo(pairs) }
                }
            case 3:
                _ = try field(&c)  // LmChallengeResponse: secret
                _ = try field(&c)  // NtChallengeResponse: secret
                let domain = try field(&c)
                let user = try field(&c)
                let workstation = try field(&c)
                _ = try field(&c)  // EncryptedRandomSessionKey: secret
                let flags = try c.u32le("NTLM NegotiateFlags")
                m.flags = flags
                let unicode = flags & negotiateUnicode != 0
                m.domain = try string(all, domain, unicode: unicode)
                m.user = try string(all, user, unicode: unicode)
                m.workstation = try string(all, workstation, unicode: unicode)
            default:
                break
            }
            return m
        }
    }

    init(messageType: UInt32) { self.messageType = messageType }

    enum CodingKeys: String, CodingKey {
        case messageType, domain, user, workstation, targetName, netbiosComputer, netbiosDomain, dnsComputer, dnsDomain
    }

    /// `DOMAIN\user`, or the user alone when no domain was sent.
    public var qualifiedUser: String? {
        guard let user else { return nil }
        guard let domain, !domain.isEmpty else { return user }
        return "\(domain)\\\(user)"
    }

    /// A (Len, MaxLen, BufferOffset) field (MS-NLMP 2.2.1).
    static func field(_ c: inout ByteCursor) throws(ParseError) -> (length: Int, offset: Int) {
        let length = Int(try c.u16le("NTLM field length"))
        _ = try c.u16le("NTLM field MaxLen")
        let offset = Int(try c.u32le("NTLM field offset"))
        return (length, offset)
    }

    static func slice(_ message: ByteCursor, _ f: (length: Int, offset: Int)) throws(ParseError) -> ByteCursor? {
        guard f.length > 0 else { return nil }
        guard f.offset <= message.remaining, f.length <= message.remaining - f.offset else {
            throw .malformed("NTLM field outside the message", offset: f.offset)
        }
        var c = message
        _ = c.skip(f.offset)
        return c.readSlice(f.length)
    }

    static func string(_ message: ByteCursor, _ f: (length: Int, offset: Int), unicode: Bool) throws(ParseError) -> String? {
        guard let s = try slice(message, f) else { return nil }
        return unicode ? utf16String(s) : Printable.escaping(s.remainingBytes)
    }

    /// AV_PAIRs (MS-NLMP 2.2.2.1) up to MsvAvEOL.
    mutating func readTargetInfo(_ pairs: ByteCursor) {
        var c = pairs
        while let id = c.readUInt16LE(), let length = c.readUInt16LE(), id != 0, let value = c.readSlice(Int(length)) {
            switch id {
            case 1: netbiosComputer = utf16String(value)
            case 2: netbiosDomain = utf16String(value)
            case 3: dnsComputer = utf16String(value)
            case 4: dnsDomain = utf16String(value)
            default: break
            }
        }
    }
}
