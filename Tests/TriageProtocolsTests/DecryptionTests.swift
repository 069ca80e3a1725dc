import Crypto
import Foundation
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// The TLS key schedules against published vectors (RFC 8448 section 3; the TLS 1.2
/// SHA-256 PRF vector of the IETF TLS working group), then record decryption against
/// records sealed here with swift-crypto the way a peer seals them (RFC 8446 5.2,
/// RFC 5288 3).
@Suite struct KeyScheduleTests {
    @Test func tls13TrafficKeysRFC8448() {
        let cases: [(secret: String, key: String, iv: String)] = [
            // server handshake traffic secret
            ("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38", "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30"),
            // client handshake traffic secret
            ("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21", "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f"),
            // server application traffic secret 0
            ("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643", "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984"),
        ]
        for c in cases {
            let k = TLSKeySchedule.trafficKeys(.sha256, secret: hexBytes(c.secret), keyLength: 16)
            #expect(k.key == hexBytes(c.key))
            #expect(k.iv == hexBytes(c.iv))
        }
    }

    @Test func tls12PRFSHA256() {
        let out = TLSKeySchedule.prf(
            .sha256, secret: hexBytes("9bbe436ba940f017b17652849a71db35"), label: "test label",
            seed: hexBytes("a0ba9f936cda311827a6f796ffd5198c"), count: 100)
        #expect(
            out
                == hexBytes(
                    """
                    e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af
                    0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
                    87347b66
                    """))
    }

    @Test func keyLogParsing() {
        let r = String(repeating: "ab", count: 32)
        let k = TLSKeyMaterial(
            keyLog: """
                # comment
                CLIENT_HANDSHAKE_TRAFFIC_SECRET \(r) 0011
                SERVER_TRAFFIC_SECRET_0 \(r.uppercased()) 2233
                CLIENT_RANDOM zz 00
                EXPORTER_SECRET \(r) 4455
                """)
        let s = k.secrets(clientRandom: [UInt8](repeating: 0xAB, count: 32))
        #expect(s?.clientHandshake == [0x00, 0x11])
        #expect(s?.serverTraffic == [0x22, 0x33])
        #expect(s?.masterSecret == nil)
        #expect(k.malformedLines == 1)
    }
}

/// A peer's record protection, written apart from TLSDecryptor's (nonce, AAD, padding).
struct Sealer {
    var key: [UInt8]
    var iv: [UInt8]
    var sequence: UInt64 = 0
    var tls13 = true

    mutating func seal(type: UInt8, _ plaintext: [UInt8], padding: Int = 0) -> [UInt8] {
        var seq = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { seq[i] = UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64(i))) }
        defer { sequence += 1 }
        if tls13 {
            var nonce = iv
            for i in 0..<8 { nonce[4 + i] ^= seq[i] }
            let inner = plaintext + [type] + [UInt8](repeating: 0, count: padding)
            let length = inner.count + 16
            let header: [UInt8] = [23, 3, 3, UInt8(length >> 8), UInt8(length & 0xFF)]
            let box = try! AES.GCM.seal(inner, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce), authenticating: header)
            return header + Array(box.ciphertext) + Array(box.tag)
        }
        let nonce = iv + seq
        let aad = seq + [type, 3, 3, UInt8(plaintext.count >> 8), UInt8(plaintext.count & 0xFF)]
        let box = try! AES.GCM.seal(plaintext, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
        let body = seq + Array(box.ciphertext) + Array(box.tag)
        return [type, 3, 3, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }
}

func openRecord(_ d: inout TLSDecryptor, _ record: [UInt8], from side: Side) -> TLSDecryptor.Opened {
    record.withUnsafeBytes { raw in
        d.open(
            contentType: record[0], version: UInt16(record[1]) << 8 | UInt16(record[2]),
            fragment: UnsafeRawBufferPointer(rebasing: raw[5...]), from: side)
    }
}

@Suite struct RecordDecryptionTests {
    static let clientRandom = [UInt8](repeating: 0x11, count: 32)
    static let serverRandom = [UInt8](repeating: 0x22, count: 32)
    static let secrets = (
        ch: [UInt8](repeating: 0x31, count: 32), sh: [UInt8](repeating: 0x32, count: 32),
        ct: [UInt8](repeating: 0x33, count: 32), st: [UInt8](repeating: 0x34, count: 32)
    )

    static var keyLog: String {
        let r = hexString(clientRandom)
        return """
            CLIENT_HANDSHAKE_TRAFFIC_SECRET \(r) \(hexString(secrets.ch))
            SERVER_HANDSHAKE_TRAFFIC_SECRET \(r) \(hexString(secrets.sh))
            CLIENT_TRAFFIC_SECRET_0 \(r) \(hexString(secrets.ct))
            SERVER_TRAFFIC_SECRET_0 \(r) \(hexString(secrets.st))
            """
    }

    static func sealer(_ secret: [UInt8]) -> Sealer {
        let k = TLSKeySchedule.trafficKeys(.sha256, secret: secret, keyLength: 16)
        return Sealer(key: k.key, iv: k.iv)
    }

    @Test func tls13HandshakeThenTrafficKeys() {
        var d = TLSDecryptor(material: TLSKeyMaterial(keyLog: Self.keyLog))
        d.clientHello(random: Self.clientRandom)
        d.serverHello(random: Self.serverRandom, version: 0x0304, cipherSuite: 0x1301)
        #expect(d.status == .active)
        var serverHS = Self.sealer(Self.secrets.sh)
        // EncryptedExtensions then Finished (type 20) split over two records.
        let finished: [UInt8] = [20, 0, 0, 32] + [UInt8](repeating: 0xF1, count: 32)
        let ee: [UInt8] = [8, 0, 0, 2, 0, 0]
        let flight = ee + finished
        #expect(openRecord(&d, serverHS.seal(type: 22, Array(flight[0..<10])), from: .server) == .plaintext(contentType: 22, bytes: Array(flight[0..<10])))
        #expect(openRecord(&d, serverHS.seal(type: 22, Array(flight[10...]), padding: 7), from: .server) == .plaintext(contentType: 22, bytes: Array(flight[10...])))
        // After its Finished the server uses its traffic secret.
        var serverAP = Self.sealer(Self.secrets.st)
        let data: [UInt8] = [0x30, 0x03, 0xA0, 0x01, 0x06]
        #expect(openRecord(&d, serverAP.seal(type: 23, data), from: .server) == .plaintext(contentType: 23, bytes: data))
        // The client still on its handshake keys: its Finished, then application data.
        var clientHS = Self.sealer(Self.secrets.ch)
        #expect(openRecord(&d, clientHS.seal(type: 22, finished), from: .client) == .plaintext(contentType: 22, bytes: finished))
        var clientAP = Self.sealer(Self.secrets.ct)
        #expect(openRecord(&d, clientAP.seal(type: 21, [1, 0]), from: .client) == .plaintext(contentType: 21, bytes: [1, 0]))
        #expect(d.openedRecords.client == 2 && d.openedRecords.server == 3)
    }

    @Test func wrongKeysAreAFindingNotACrash() {
        var d = TLSDecryptor(material: TLSKeyMaterial(keyLog: Self.keyLog))
        d.clientHello(random: Self.clientRandom)
        d.serverHello(random: Self.serverRandom, version: 0x0304, cipherSuite: 0x1301)
        var wrong = Self.sealer([UInt8](repeating: 0x99, count: 32))
        #expect(openRecord(&d, wrong.seal(type: 22, [20, 0, 0, 0]), from: .server) == .failedAuthentication)
        #expect(d.status == .failed(.server))
        // Nothing is opened after a failure, and short or empty records never trap.
        var right = Self.sealer(Self.secrets.sh)
        #expect(openRecord(&d, right.seal(type: 22, [20, 0, 0, 0]), from: .server) == .notProtected)
        var fresh = TLSDecryptor(material: TLSKeyMaterial(keyLog: Self.keyLog))
        fresh.clientHello(random: Self.clientRandom)
        fresh.serverHello(random: Self.serverRandom, version: 0x0304, cipherSuite: 0x1301)
        for n in 0..<20 {
            var f = fresh
            let record: [UInt8] = [23, 3, 3, 0, UInt8(n)] + [UInt8](repeating: 0xAA, count: n)
            #expect(openRecord(&f, record, from: .client) == .failedAuthentication)
        }
    }

    @Test func unknownConnectionAndUnsupportedSuite() {
        var d = TLSDecryptor(material: TLSKeyMaterial(keyLog: Self.keyLog))
        d.clientHello(random: [UInt8](repeating: 0x77, count: 32))
        #expect(d.status == .noSecrets)
        var cbc = TLSDecryptor(material: TLSKeyMaterial(keyLog: "CLIENT_RANDOM \(hexString(Self.clientRandom)) \(String(repeating: "00", count: 48))"))
        cbc.clientHello(random: Self.clientRandom)
        cbc.serverHello(random: Self.serverRandom, version: 0x0303, cipherSuite: 0x002F)
        guard case .unsupported = cbc.status else {
            Issue.record("TLS_RSA_WITH_AES_128_CBC_SHA: \(cbc.status)")
            return
        }
    }

    @Test func tls12AESGCM() {
        let master = [UInt8](repeating: 0x42, count: 48)
        var d = TLSDecryptor(material: TLSKeyMaterial(keyLog: "CLIENT_RANDOM \(hexString(Self.clientRandom)) \(hexString(master))"))
        d.clientHello(random: Self.clientRandom)
        d.serverHello(random: Self.serverRandom, version: 0x0303, cipherSuite: 0xC02F)
        #expect(d.status == .active)
        // key_block = PRF(master, "key expansion", server_random + client_random) (RFC 5246 6.3).
        let block = TLSKeySchedule.prf(.sha256, secret: master, label: "key expansion", seed: Self.serverRandom + Self.clientRandom, count: 40)
        var client = Sealer(key: Array(block[0..<16]), iv: Array(block[32..<36]), tls13: false)
        let finished: [UInt8] = [20, 0, 0, 12] + [UInt8](repeating: 7, count: 12)
        // Before its ChangeCipherSpec a side's records are clear text.
        #expect(openRecord(&d, [22, 3, 3, 0, 4, 20, 0, 0, 0], from: .client) == .notProtected)
        d.changeCipherSpec(from: .client)
        #expect(openRecord(&d, client.seal(type: 22, finished), from: .client) == .plaintext(contentType: 22, bytes: finished))
        #expect(openRecord(&d, client.seal(type: 23, [1, 2, 3]), from: .client) == .plaintext(contentType: 23, bytes: [1, 2, 3]))
    }
}
