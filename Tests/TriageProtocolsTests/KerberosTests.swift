import Foundation
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// Kerberos inside SPNEGO inside a CredSSP TSRequest, as hand-built DER from the structures of
/// RFC 4178 4.2 (SPNEGO), RFC 2743 3.1 and RFC 4121 4.1 (the GSS-API framing and TOK_ID) and
/// RFC 4120 5.5.1, 5.3, 5.9.1 (AP-REQ, Ticket, KRB-ERROR); not from our parser's output.
@Suite struct KerberosTests {
    static func tlv(_ tag: UInt8, _ body: [UInt8]) -> [UInt8] { TSRequestTests.tlv(tag, body) }
    static func int(_ v: UInt8) -> [UInt8] { v < 0x80 ? [0x02, 0x01, v] : [0x02, 0x02, 0x00, v] }
    static func general(_ s: String) -> [UInt8] { tlv(0x1B, Array(s.utf8)) }

    static let spnegoOID: [UInt8] = [0x06, 0x06, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x02]
    static let krb5OID: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02]
    static let msKrb5OID: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x82, 0xF7, 0x12, 0x01, 0x02, 0x02]
    static let ntlmOID: [UInt8] = [0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0A]

    /// Bytes that stand for secrets: the ticket's enc-part and the authenticator.
    static let ticketCipher: [UInt8] = (0..<96).map { UInt8(0x30 + ($0 % 0x40)) ^ 0xA5 }
    static let authenticatorCipher: [UInt8] = (0..<64).map { UInt8(truncatingIfNeeded: 0xC3 &+ $0 &* 7) }

    /// `PrincipalName ::= SEQUENCE { name-type [0] Int32, name-string [1] SEQUENCE OF KerberosString }`.
    static func principal(_ type: UInt8, _ names: [String]) -> [UInt8] {
        tlv(0x30, tlv(0xA0, int(type)) + tlv(0xA1, tlv(0x30, names.flatMap(general))))
    }

    /// `EncryptedData ::= SEQUENCE { etype [0] Int32, kvno [1] UInt32 OPTIONAL, cipher [2] OCTET STRING }`.
    static func encrypted(_ cipher: [UInt8], kvno: UInt8? = 3) -> [UInt8] {
        tlv(0x30, tlv(0xA0, int(18)) + (kvno.map { tlv(0xA1, int($0)) } ?? []) + tlv(0xA2, tlv(0x04, cipher)))
    }

    /// `AP-REQ ::= [APPLICATION 14] SEQUENCE { pvno [0], msg-type [1], ap-options [2], ticket [3], authenticator [4] }`,
    /// `Ticket ::= [APPLICATION 1] SEQUENCE { tkt-vno [0], realm [1], sname [2], enc-part [3] }`.
    static func apReq(realm: String = "CORP.EXAMPLE", sname: [String] = ["TERMSRV", "rds01.corp.example"], pvno: UInt8 = 5, msgType: UInt8 = 14)
        -> [UInt8]
    {
        let ticket = tlv(
            0x61, tlv(0x30, tlv(0xA0, int(5)) + tlv(0xA1, general(realm)) + tlv(0xA2, principal(2, sname)) + tlv(0xA3, encrypted(ticketCipher))))
        let apOptions: [UInt8] = [0x03, 0x05, 0x00, 0x20, 0x00, 0x00, 0x00]  // mutual-required
        return tlv(
            0x6E,
            tlv(
                0x30,
                tlv(0xA0, int(pvno)) + tlv(0xA1, int(msgType)) + tlv(0xA2, apOptions) + tlv(0xA3, ticket)
                    + tlv(0xA4, encrypted(authenticatorCipher, kvno: nil))))
    }

    /// `KRB-ERROR ::= [APPLICATION 30] SEQUENCE { pvno [0], msg-type [1], ctime [2] OPT, cusec [3] OPT,
    /// stime [4], susec [5], error-code [6], crealm [7] OPT, cname [8] OPT, realm [9], sname [10], e-text [11] OPT, e-data [12] OPT }`.
    static func krbError(_ code: UInt8, client: Bool = false) -> [UInt8] {
        let time = tlv(0x18, Array("20261205060000Z".utf8))
        var body = tlv(0xA0, int(5)) + tlv(0xA1, int(30)) + tlv(0xA4, time) + tlv(0xA5, int(0)) + tlv(0xA6, int(code))
        if client { body += tlv(0xA7, general("CORP.EXAMPLE")) + tlv(0xA8, principal(1, ["alice"])) }
        body += tlv(0xA9, general("CORP.EXAMPLE")) + tlv(0xAA, principal(2, ["TERMSRV", "rds01.corp.example"]))
        body += tlv(0xAB, general("clock skew too great")) + tlv(0xAC, tlv(0x04, [0x30, 0x03, 0x02, 0x01, 0x02]))
        return tlv(0x7E, tlv(0x30, body))
    }

    /// `AP-REP ::= [APPLICATION 15] SEQUENCE { pvno [0], msg-type [1], enc-part [2] }`.
    static func apRep() -> [UInt8] {
        tlv(0x6F, tlv(0x30, tlv(0xA0, int(5)) + tlv(0xA1, int(15)) + tlv(0xA2, encrypted([0x11, 0x22, 0x33, 0x44]))))
    }

    /// RFC 4121 4.1: `[APPLICATION 0]` { KRB5 OID, TOK_ID, message }.
    static func gss(_ tokID: [UInt8], _ message: [UInt8], oid: [UInt8] = krb5OID) -> [UInt8] {
        tlv(0x60, oid + tokID + message)
    }

    /// The client's first SPNEGO token: framing, then `negTokenInit [0]` with mechTypes and mechToken.
    static func negTokenInit(mechs: [[UInt8]] = [msKrb5OID, krb5OID, ntlmOID], mechToken: [UInt8]?) -> [UInt8] {
        var fields = tlv(0xA0, tlv(0x30, mechs.flatMap { $0 }))
        if let mechToken { fields += tlv(0xA2, tlv(0x04, mechToken)) }
        return tlv(0x60, spnegoOID + tlv(0xA0, tlv(0x30, fields)))
    }

    /// `negTokenResp [1]` { negState [0] ENUMERATED, supportedMech [1], responseToken [2] }.
    static func negTokenResp(state: UInt8?, mech: [UInt8]? = krb5OID, token: [UInt8]?) -> [UInt8] {
        var fields: [UInt8] = []
        if let state { fields += tlv(0xA0, [0x0A, 0x01, state]) }
        if let mech { fields += tlv(0xA1, mech) }
        if let token { fields += tlv(0xA2, tlv(0x04, token)) }
        return tlv(0xA1, tlv(0x30, fields))
    }

    static var clientToken: [UInt8] { negTokenInit(mechToken: gss([0x01, 0x00], apReq())) }

    @Test func apReqInsideSPNEGO() throws {
        let (spnego, kerberos) = NegoTokenReader.read(Self.clientToken)
        let s = try #require(spnego)
        #expect(s.kind == .negTokenInit)
        #expect(s.mechTypes == ["1.2.840.48018.1.2.2", "1.2.840.113554.1.2.2", "1.3.6.1.4.1.311.2.2.10"])
        let k = try #require(kerberos)
        #expect(k.kind == .apReq && k.realm == "CORP.EXAMPLE" && k.serviceName == ["TERMSRV", "rds01.corp.example"] && k.serviceNameType == 2)
        #expect(k.errorCode == nil && k.clientName.isEmpty)
        let facts = KerberosFacts(k)
        #expect(facts.servicePrincipal == "TERMSRV/rds01.corp.example" && facts.serviceHost == "rds01.corp.example")
    }

    @Test func microsoftKerberosOIDAndBareToken() throws {
        let framed = Self.gss([0x01, 0x00], Self.apReq(), oid: Self.msKrb5OID)
        #expect(try KerberosMessage.parseToken(framed).realm == "CORP.EXAMPLE")
        // A Kerberos token without SPNEGO around it.
        let (spnego, kerberos) = NegoTokenReader.read(framed)
        #expect(spnego == nil && kerberos?.kind == .apReq)
        // The message alone (no framing).
        #expect(try KerberosMessage.parseToken(Self.apReq()).serviceName == ["TERMSRV", "rds01.corp.example"])
    }

    @Test func krbErrorInNegTokenResp() throws {
        let token = Self.negTokenResp(state: 2, token: Self.gss([0x03, 0x00], Self.krbError(37, client: true)))
        let (spnego, kerberos) = NegoTokenReader.read(token)
        #expect(spnego?.kind == .negTokenResp && spnego?.negState == 2 && spnego?.supportedMech == "1.2.840.113554.1.2.2")
        let k = try #require(kerberos)
        #expect(k.kind == .krbError && k.errorCode == 37 && k.realm == "CORP.EXAMPLE" && k.clientRealm == "CORP.EXAMPLE")
        #expect(k.clientName == ["alice"] && k.serviceName == ["TERMSRV", "rds01.corp.example"])
        // Without the optional client fields, KRB_AP_ERR_MODIFIED.
        let bare = try KerberosMessage.parseToken(Self.gss([0x03, 0x00], Self.krbError(41)))
        #expect(bare.errorCode == 41 && bare.clientRealm == nil && bare.clientName.isEmpty)
    }

    @Test func acceptCompletedWithAPRep() throws {
        let (spnego, kerberos) = NegoTokenReader.read(Self.negTokenResp(state: 0, token: Self.gss([0x02, 0x00], Self.apRep())))
        #expect(spnego?.negState == 0 && kerberos?.kind == .apRep && kerberos?.realm == nil)
        let f = SPNEGOFacts(try #require(spnego))
        #expect(f.negState == "accept-completed" && f.kind == .negTokenResp && f.mechTypes == nil)
        // negState alone (the last leg, nothing inside).
        let (only, none) = NegoTokenReader.read(Self.negTokenResp(state: 0, mech: nil, token: nil))
        #expect(only?.negState == 0 && none == nil)
    }

    @Test func userToUserTokenIsNamedNotParsed() throws {
        let m = try KerberosMessage.parseToken(Self.gss([0x04, 0x00], [0x30, 0x00]))
        #expect(m.kind == .tgtReq && m.realm == nil)
    }

    @Test func ntlmInsideSPNEGOHasNoKerberos() {
        let ntlm: [UInt8] = Array("NTLMSSP".utf8) + [0, 1, 0, 0, 0, 0xB7, 0x82, 0x08, 0xE2] + [UInt8](repeating: 0, count: 16)
        let (spnego, kerberos) = NegoTokenReader.read(Self.negTokenInit(mechs: [Self.ntlmOID], mechToken: ntlm))
        #expect(spnego?.mechTypes == ["1.3.6.1.4.1.311.2.2.10"] && kerberos == nil)
    }

    /// Wrong values in right places: each a typed error, never a trap.
    @Test func mutationsGiveTypedErrors() {
        func error(_ bytes: [UInt8]) -> ParseError? {
            do {
                _ = try KerberosMessage.parseToken(bytes)
                return nil
            } catch {
                return error
            }
        }
        // pvno 4: a version we do not read.
        if case .unsupported? = error(Self.apReq(pvno: 4)) {} else { Issue.record("pvno 4 should be unsupported") }
        // msg-type 15 inside [APPLICATION 14].
        if case .malformed? = error(Self.apReq(msgType: 15)) {} else { Issue.record("msg-type mismatch should be malformed") }
        // TOK_ID says AP-REP, the message is an AP-REQ.
        if case .malformed? = error(Self.gss([0x02, 0x00], Self.apReq())) {} else { Issue.record("TOK_ID mismatch should be malformed") }
        // Unknown TOK_ID.
        if case .unsupported? = error(Self.gss([0x07, 0x00], Self.apReq())) {} else { Issue.record("TOK_ID 07 00 should be unsupported") }
        // The NTLM OID in a Kerberos framing.
        if case .unsupported? = error(Self.gss([0x01, 0x00], Self.apReq(), oid: Self.ntlmOID)) {} else { Issue.record("NTLM OID should be unsupported") }
        // The realm as a UTF8String instead of a GeneralString.
        var utf8Realm = Self.apReq()
        if let i = utf8Realm.firstIndex(of: 0x1B) { utf8Realm[i] = 0x0C }
        if case .malformed? = error(utf8Realm) {} else { Issue.record("a UTF8String realm should be malformed") }
        // A framing length that disagrees with the bytes.
        var long = Self.gss([0x01, 0x00], Self.apReq())
        long.append(0x00)
        if case .malformed? = error(long) {} else { Issue.record("trailing bytes should be malformed") }
        // A five-byte length.
        if case .malformed? = error([0x60, 0x85, 0, 0, 0, 0, 1, 0]) {} else { Issue.record("a 5-byte length should be malformed") }
        // SPNEGO under another mechanism's OID.
        let wrongOuter = Self.tlv(0x60, Self.krb5OID + Self.tlv(0xA0, Self.tlv(0x30, [])))
        #expect(throws: ParseError.self) { try SPNEGOToken.parse(wrongOuter) }
        // negState that is not an ENUMERATED.
        let badState = Self.tlv(0xA1, Self.tlv(0x30, Self.tlv(0xA0, [0x02, 0x01, 0x00])))
        #expect(throws: ParseError.self) { try SPNEGOToken.parse(badState) }
        // Each rejected token is also just "nothing" for the reader.
        #expect(NegoTokenReader.read(badState).spnego == nil)
    }

    /// Every strict prefix, and every single-byte change, of each token shape: no trap, and a
    /// prefix never parses as the whole.
    @Test func truncationsAndByteFlipsNeverTrap() {
        let shapes: [[UInt8]] = [
            Self.clientToken,
            Self.negTokenResp(state: 2, token: Self.gss([0x03, 0x00], Self.krbError(37, client: true))),
            Self.negTokenResp(state: 0, token: Self.gss([0x02, 0x00], Self.apRep())),
            Self.gss([0x01, 0x00], Self.apReq()),
        ]
        for shape in shapes {
            for n in 0..<shape.count {
                let prefix = Array(shape[0..<n])
                let (s, k) = NegoTokenReader.read(prefix)
                #expect(s == nil && k == nil, "prefix of \(n) bytes")
                #expect(throws: ParseError.self) { try KerberosMessage.parseToken(prefix) }
            }
            for i in 0..<shape.count {
                for flip: UInt8 in [0xFF, 0x01, 0x80] {
                    var m = shape
                    m[i] ^= flip
                    _ = NegoTokenReader.read(m)
                    _ = try? KerberosMessage.parseToken(m)
                    _ = try? SPNEGOToken.parse(m)
                }
            }
        }
    }

    /// Through the plaintext layer as a TSRequest: facts carry names and codes, never the
    /// ticket's or the authenticator's bytes.
    @Test func tsRequestFactsKeepNoSecrets() throws {
        var layer = PlaintextLayer()
        let at = FrameRef(frame: 12, time: Timestamp(seconds: 1, nanos: 0))
        layer.receive(TSRequestTests.request(fields: [TSRequestTests.negoTokens(Self.clientToken)]), from: .client, at: at)
        let reply = Self.negTokenResp(state: 2, token: Self.gss([0x03, 0x00], Self.krbError(41)))
        layer.receive(TSRequestTests.request(fields: [TSRequestTests.negoTokens(reply)]), from: .server, at: FrameRef(frame: 14, time: at.time))
        let d = layer.facts
        #expect(d.tsRequests.count == 2)
        #expect(d.tsRequests[0].mechanism == .kerberos && d.tsRequests[0].spnego?.kind == .negTokenInit)
        #expect(d.kerberosRequest?.servicePrincipal == "TERMSRV/rds01.corp.example" && d.kerberosRequest?.realm == "CORP.EXAMPLE")
        #expect(d.kerberosError?.facts.errorCode == 41 && d.kerberosError?.at.frame == 14)
        #expect(d.tsRequests[1].spnego?.negState == "reject")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let json = try encoder.encode(d)
        let text = String(decoding: json, as: UTF8.self)
        for secret in [Self.ticketCipher, Self.authenticatorCipher] {
            #expect(!text.contains(Data(secret).base64EncodedString()))
            #expect(!text.contains(secret.map { String(format: "%02x", $0) }.joined()))
            #expect(json.range(of: Data(secret.prefix(16))) == nil)
        }
        #expect(text.contains("TERMSRV/rds01.corp.example"))
    }
}

/// Tokens a real Kerberos stack sent (MIT 1.20.1 through SPNEGO), against what tshark read of
/// the same ticket from the KDC.
@Suite struct RealKerberosTokenTests {
    @Test func mitClientAPReqThroughSPNEGO() throws {
        let token = RealKerberosTokens.bytes(RealKerberosTokens.clientHex)
        #expect(token.count == 738)
        let (spnego, kerberos) = NegoTokenReader.read(token)
        #expect(spnego?.kind == .negTokenInit && spnego?.mechTypes == ["1.2.840.113554.1.2.2"])
        let k = try #require(kerberos)
        #expect(k.kind == .apReq && k.realm == "LAB.TEST" && k.serviceName == ["host", "rds01.lab.test"] && k.serviceNameType == 3)
        // Nothing of the token's encrypted parts reaches the facts: its last 64 bytes are the
        // authenticator's cipher, and bytes 200-264 lie inside the ticket's enc-part.
        let encoder = JSONEncoder()
        let json = try encoder.encode(KerberosFacts(k))
        for secret in [Array(token.suffix(64)), Array(token[200..<264])] {
            #expect(json.range(of: Data(secret.prefix(8))) == nil)
            #expect(!String(decoding: json, as: UTF8.self).contains(Data(secret).base64EncodedString()))
        }
    }

    @Test func mitServerAcceptCompleted() throws {
        let token = RealKerberosTokens.bytes(RealKerberosTokens.serverHex)
        #expect(token.count == 186)
        let (spnego, kerberos) = NegoTokenReader.read(token)
        #expect(spnego?.kind == .negTokenResp && spnego?.negState == 0 && spnego?.supportedMech == "1.2.840.113554.1.2.2")
        #expect(kerberos?.kind == .apRep)
    }

    @Test func realTokenPrefixesNeverTrap() {
        let token = RealKerberosTokens.bytes(RealKerberosTokens.clientHex)
        for n in stride(from: 0, to: token.count, by: 7) {
            let (s, k) = NegoTokenReader.read(Array(token[0..<n]))
            #expect(s == nil && k == nil)
        }
    }
}
