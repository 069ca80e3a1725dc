import Foundation
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// TSRequest (MS-CSSP 2.2.1) in every shape a peer sends, as hand-built DER, and the NTLM
/// messages inside (MS-NLMP 2.2.1), byte by byte.
@Suite struct TSRequestTests {
    /// A DER TLV with a short or long length.
    static func tlv(_ tag: UInt8, _ body: [UInt8]) -> [UInt8] {
        let n = body.count
        let length: [UInt8] = n < 0x80 ? [UInt8(n)] : n < 0x100 ? [0x81, UInt8(n)] : [0x82, UInt8(n >> 8), UInt8(n & 0xFF)]
        return [tag] + length + body
    }

    static func request(version: UInt8 = 6, fields: [[UInt8]]) -> [UInt8] {
        tlv(0x30, tlv(0xA0, [0x02, 0x01, version]) + fields.flatMap { $0 })
    }

    static func negoTokens(_ token: [UInt8]) -> [UInt8] {
        tlv(0xA1, tlv(0x30, tlv(0x30, tlv(0xA0, tlv(0x04, token)))))
    }

    static func utf16(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    static let lmResponse = [UInt8](repeating: 0xA1, count: 24)
    static let ntResponse: [UInt8] = (0..<48).map { UInt8(0x40 + $0) }
    static let sessionKey = [UInt8](repeating: 0x5C, count: 16)

    /// An NTLM AUTHENTICATE with Unicode names.
    static func authenticate(domain: String, user: String, workstation: String) -> [UInt8] {
        let payloads = [lmResponse, ntResponse, utf16(domain), utf16(user), utf16(workstation), sessionKey]
        var header: [UInt8] = Array("NTLMSSP".utf8) + [0, 3, 0, 0, 0]
        var offset = 64
        var body: [UInt8] = []
        for p in payloads {
            header += [UInt8(p.count & 0xFF), UInt8(p.count >> 8), UInt8(p.count & 0xFF), UInt8(p.count >> 8)]
            header += [UInt8(offset & 0xFF), UInt8(offset >> 8), 0, 0]
            offset += p.count
            body += p
        }
        header += [0x01, 0x82, 0x08, 0xA2]  // NTLMSSP_NEGOTIATE_UNICODE | ...
        header += [UInt8](repeating: 0, count: 64 - header.count)
        return header + body
    }

    /// An NTLM CHALLENGE with a target name and target info (MS-NLMP 2.2.1.2).
    static func challenge() -> [UInt8] {
        let target = utf16("CORP")
        func av(_ id: UInt16, _ s: String) -> [UInt8] {
            let v = utf16(s)
            return [UInt8(id), 0, UInt8(v.count), 0] + v
        }
        let info = av(2, "CORP") + av(1, "RDS01") + av(4, "corp.example") + av(3, "rds01.corp.example") + [0, 0, 0, 0]
        var m: [UInt8] = Array("NTLMSSP".utf8) + [0, 2, 0, 0, 0]
        m += [UInt8(target.count), 0, UInt8(target.count), 0, 56, 0, 0, 0]
        m += [0x01, 0x82, 0x89, 0xE2]
        m += [UInt8](repeating: 0x88, count: 8) + [UInt8](repeating: 0, count: 8)
        m += [UInt8(info.count), 0, UInt8(info.count), 0, UInt8(56 + target.count), 0, 0, 0]
        m += [UInt8](repeating: 0, count: 56 - m.count)
        return m + target + info
    }

    @Test func versionOnly() throws {
        let r = try TSRequest.parse(Self.request(fields: []))
        #expect(r.version == 6 && r.negoTokens.isEmpty && !r.hasAuthInfo && !r.hasPubKeyAuth && r.errorCode == nil && !r.hasClientNonce)
    }

    @Test func negotiateToken() throws {
        let negotiate: [UInt8] = Array("NTLMSSP".utf8) + [0, 1, 0, 0, 0, 0xB7, 0x82, 0x08, 0xE2] + [UInt8](repeating: 0, count: 16)
        let bytes = Self.request(fields: [Self.negoTokens(negotiate)])
        let r = try TSRequest.parse(bytes)
        #expect(r.negoTokens == [negotiate])
        let (mechanism, message) = NTLMMessage.find(in: r.negoTokens[0])
        #expect(mechanism == .ntlm)
        #expect(message?.messageType == 1 && message?.flags == 0xE208_82B7)
        #expect(try TSRequest.elementLength(bytes) == bytes.count)
    }

    @Test func challengeNames() throws {
        let m = try NTLMMessage.parse(Self.challenge())
        #expect(m.messageType == 2)
        #expect(m.targetName == "CORP")
        #expect(m.netbiosDomain == "CORP" && m.netbiosComputer == "RDS01")
        #expect(m.dnsDomain == "corp.example" && m.dnsComputer == "rds01.corp.example")
    }

    @Test func authenticateNamesAndNoSecrets() throws {
        let auth = Self.authenticate(domain: "CORP", user: "alice", workstation: "WS7")
        // AUTHENTICATE with pubKeyAuth and clientNonce (version 6), wrapped in SPNEGO-like bytes.
        let token = [0xA1, 0x82, 0x01, 0x00] + auth
        let bytes = Self.request(fields: [
            Self.negoTokens(token), Self.tlv(0xA3, Self.tlv(0x04, [UInt8](repeating: 0xEE, count: 300))),
            Self.tlv(0xA5, Self.tlv(0x04, [UInt8](repeating: 0x0E, count: 32))),
        ])
        let r = try TSRequest.parse(bytes)
        #expect(r.hasPubKeyAuth && r.hasClientNonce && !r.hasAuthInfo)
        let (mechanism, message) = NTLMMessage.find(in: r.negoTokens[0])
        #expect(mechanism == .ntlm)
        let m = try #require(message)
        #expect(m.domain == "CORP" && m.user == "alice" && m.workstation == "WS7")
        #expect(m.qualifiedUser == "CORP\\alice")
        // As a fact it holds names only: no response, key or flags byte survives into it.
        let json = String(decoding: try JSONEncoder().encode(m), as: UTF8.self)
        #expect(!json.contains("flags"))
        for secret in [Self.ntResponse, Self.lmResponse, Self.sessionKey] {
            #expect(!json.contains(hexString(secret)))
        }
        #expect(!json.lowercased().contains("response") && !json.lowercased().contains("key"))
    }

    @Test func errorCodeEncodings() throws {
        // NTSTATUS as DER INTEGER: negative four bytes (most peers) or positive five.
        let negative = Self.request(fields: [Self.tlv(0xA4, [0x02, 0x04, 0xC0, 0x00, 0x00, 0x6D])])
        #expect(try TSRequest.parse(negative).errorCode == 0xC000_006D)
        let positive = Self.request(fields: [Self.tlv(0xA4, [0x02, 0x05, 0x00, 0xC0, 0x00, 0x02, 0x34])])
        #expect(try TSRequest.parse(positive).errorCode == 0xC000_0234)
        let sspi = Self.request(version: 3, fields: [Self.tlv(0xA4, [0x02, 0x04, 0x80, 0x09, 0x03, 0x0C])])
        #expect(try TSRequest.parse(sspi).errorCode == 0x8009_030C)
    }

    @Test func authInfo() throws {
        let r = try TSRequest.parse(Self.request(fields: [Self.tlv(0xA2, Self.tlv(0x04, [1, 2, 3, 4]))]))
        #expect(r.hasAuthInfo && !r.hasPubKeyAuth)
    }

    @Test func everyPrefixAndCorruptionIsAnErrorNotATrap() {
        let full = Self.request(fields: [
            Self.negoTokens(Self.authenticate(domain: "D", user: "u", workstation: "w")),
            Self.tlv(0xA4, [0x02, 0x04, 0xC0, 0x00, 0x00, 0x6D]),
        ])
        for n in 0..<full.count {
            let prefix = Array(full[0..<n])
            _ = try? TSRequest.elementLength(prefix)
            #expect((try? TSRequest.parse(prefix)) == nil)
        }
        var rng = SplitMix(seed: 13)
        for _ in 0..<500 {
            var b = full
            b[Int(rng.next() % UInt64(b.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            _ = try? TSRequest.parse(b)
            if let r = try? TSRequest.parse(b), let t = r.negoTokens.first { _ = NTLMMessage.find(in: t) }
        }
        let auth = Self.authenticate(domain: "D", user: "u", workstation: "w")
        for n in 0..<auth.count { _ = try? NTLMMessage.parse(Array(auth[0..<n])) }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The layer inside TLS: CredSSP, then the RDP PDUs the server states its reasons in.
@Suite struct PlaintextLayerTests {
    static let at = FrameRef(frame: 9, time: Timestamp(nanoseconds: 0))

    /// A server PDU on the I/O channel: TPKT, X.224 Data, MCS Send Data Indication.
    static func sendDataIndication(_ userData: [UInt8]) -> [UInt8] {
        let mcs: [UInt8] = [26 << 2, 0x00, 0x06, 0x03, 0xEB, 0x70, UInt8(userData.count)] + userData
        let length = 4 + 3 + mcs.count
        return [3, 0, UInt8(length >> 8), UInt8(length & 0xFF), 2, 0xF0, 0x80] + mcs
    }

    /// A Share Data PDU (MS-RDPBCGR 2.2.8.1.1.1.2) with a 4-byte payload.
    static func shareData(type2: UInt8, value: UInt32) -> [UInt8] {
        let v: [UInt8] = [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
        return [22, 0, 0x17, 0x00, 0xEA, 0x03] + [0xEA, 0x03, 0x01, 0x00, 0, 1, 4, 0, type2, 0, 0, 0] + v
    }

    @Test func credsspThenServerReasons() {
        var layer = PlaintextLayer()
        layer.hybridEx = true
        let challenge = TSRequestTests.request(fields: [TSRequestTests.negoTokens(TSRequestTests.challenge())])
        let auth = TSRequestTests.request(fields: [
            TSRequestTests.negoTokens(TSRequestTests.authenticate(domain: "CORP", user: "bob", workstation: "PC1"))
        ])
        let credentials = TSRequestTests.request(fields: [TSRequestTests.tlv(0xA2, TSRequestTests.tlv(0x04, [9, 9]))])
        let pubKeyAuth = TSRequestTests.request(fields: [TSRequestTests.tlv(0xA3, TSRequestTests.tlv(0x04, [7, 7]))])
        // One byte at a time: the layer reassembles.
        for b in challenge { layer.receive([b], from: .server, at: Self.at) }
        layer.receive(auth + [], from: .client, at: Self.at)
        layer.receive(pubKeyAuth, from: .server, at: Self.at)
        layer.receive(credentials, from: .client, at: Self.at)
        // HYBRID_EX: the Early User Authorization Result, then the session's PDUs.
        layer.receive([5, 0, 0, 0], from: .server, at: Self.at)
        let license: [UInt8] = [0x80, 0x00, 0x00, 0x00, 0xFF, 0x03, 0x10, 0x00, 0x06, 0, 0, 0, 0x02, 0, 0, 0, 0x04, 0x00, 0x00, 0x00]
        layer.receive(Self.sendDataIndication(license), from: .server, at: Self.at)
        layer.receive(Self.sendDataIndication(Self.shareData(type2: 0x26, value: 1)), from: .server, at: Self.at)
        layer.receive(Self.sendDataIndication(Self.shareData(type2: 0x2F, value: 0x9)), from: .server, at: Self.at)
        layer.receive([3, 0, 0, 9, 2, 0xF0, 0x80, 0x21, 0x80], from: .server, at: Self.at)
        let f = layer.facts
        #expect(f.tsRequests.map(\.from) == [.server, .client, .server, .client])
        #expect(f.serverNames?.netbiosComputer == "RDS01")
        #expect(f.account?.qualifiedUser == "CORP\\bob" && f.account?.workstation == "PC1")
        #expect(f.tsRequests[3].authInfo && f.tsRequests[2].pubKeyAuth)
        #expect(f.earlyUserAuthorization?.result == 5)
        #expect(f.license?.errorCode == 6)
        #expect(f.logon?.infoType == 1)
        #expect(f.errorInfo?.code == 9)
        #expect(f.disconnectProviderUltimatum?.reason == 3 && f.disconnectProviderUltimatum?.from == .server)
    }

    @Test func garbageNeverTraps() {
        var rng = SplitMix(seed: 7)
        for _ in 0..<300 {
            var layer = PlaintextLayer()
            for _ in 0..<4 {
                let n = Int(rng.next() % 64)
                var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if rng.next() % 2 == 0 && !bytes.isEmpty { bytes[0] = rng.next() % 2 == 0 ? 0x30 : 0x03 }
                layer.receive(bytes, from: rng.next() % 2 == 0 ? .client : .server, at: Self.at)
            }
        }
    }
}
