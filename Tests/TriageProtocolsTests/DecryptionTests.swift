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

    /// The SHA-384 vector posted with the SHA-256 one (IETF TLS list, msg03416).
    @Test func tls12PRFSHA384() {
        let out = TLSKeySchedule.prf(
            .sha384, secret: hexBytes("b80b733d6ceefcdc71566ea48e5567df"), label: "test label",
            seed: hexBytes("cd665cf6a8447dd6ff8b27555edb7465"), count: 148)
        #expect(
            out
                == hexBytes(
                    """
                    7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0
                    e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425
                    9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d
                    73e56f
                    """))
    }

    /// NIST CAVP SP 800-135 TLS KDF, [TLS 1.0/1.1] COUNT=0: the master secret from the
    /// pre-master secret, then the 104-byte key block (also what `openssl kdf -kdfopt
    /// digest:MD5-SHA1 TLS1-PRF` gives).
    @Test func tls10PRFNISTVector() {
        let master = TLSKeySchedule.prf(
            .tls10,
            secret: hexBytes("bded7fa5c1699c010be23dd06ada3a48349f21e5f86263d512c0c5cc379f0e780ec55d9844b2f1db02a96453513568d0"),
            label: "master secret",
            seed: hexBytes("e5acaf549cd25c22d964c0d930fa4b5261d2507fad84c33715b7b9a864020693")
                + hexBytes("135e4d557fdf3aa6406d82975d5c606a9734c9334b42136e96990fbd5358cdb2"), count: 48)
        #expect(master == hexBytes("2f6962dfbc744c4b2138bb6b3d33054c5ecc14f24851d9896395a44ab3964efc2090c5bf51a0891209f46c1e1e998f62"))
        let block = TLSKeySchedule.prf(
            .tls10, secret: master, label: "key expansion",
            seed: hexBytes("67267e650eb32444119d222a368c191af3082888dc35afe8368e638c828874be")
                + hexBytes("d58a7b1cd4fedaa232159df652ce188f9d997e061b9bf48e83b62990440931f6"), count: 104)
        #expect(
            block
                == hexBytes(
                    """
                    3088825988e77fce68d19f756e18e43eb7fe672433504feaf99b3c503d9091b164f166db301d70c9fc0870b4a945639
                    07bee1a61fb786cb717576890bcc51cb9ead97e01d0a2fea99c953377b195205ff07b369589178796edc963fd80fdbe5
                    18a2fc1c35c18ae8d
                    """))
        // An odd-length secret: the halves share its middle byte (RFC 2246 5).
        let odd = TLSKeySchedule.prf(.tls10, secret: [1, 2, 3], label: "x", seed: [], count: 20)
        let md5 = TLSKeySchedule.pHash(.md5, secret: [1, 2], seed: Array("x".utf8), count: 20)
        let sha1 = TLSKeySchedule.pHash(.sha1, secret: [2, 3], seed: Array("x".utf8), count: 20)
        #expect(odd == zip(md5, sha1).map { $0 ^ $1 })
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
        let keyLog = "CLIENT_RANDOM \(hexString(Self.clientRandom)) \(String(repeating: "00", count: 48))"
        // 3DES; SSL 3.0; a SHA-256 CBC suite, or an AEAD suite, which exist only in TLS 1.2.
        for (version, suite) in [(UInt16(0x0303), UInt16(0x000A)), (0x0300, 0x002F), (0x0302, 0x003C), (0x0301, 0xC02F)] {
            var d = TLSDecryptor(material: TLSKeyMaterial(keyLog: keyLog))
            d.clientHello(random: Self.clientRandom)
            d.serverHello(random: Self.serverRandom, version: version, cipherSuite: suite)
            guard case .unsupported = d.status else {
                Issue.record("version \(version) suite \(suite): \(d.status)")
                continue
            }
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

/// CBC records sealed with the openssl CLI alone (`openssl kdf` for the key block, `openssl
/// dgst -mac HMAC` for the MAC, `openssl enc -nopad` for AES-CBC; scripts/cbc-record-vectors
/// prints them): master secret 00 01 .. 2f, client random 11.., server random 22.., the
/// client's first two records after its ChangeCipherSpec: a Finished-shaped handshake record,
/// then application data (an X.224 Data TPKT), the second with 16 bytes more padding than
/// needed in the TLS 1.0 case.
@Suite struct CBCRecordTests {
    static let contents = [
        hexBytes("1400000c000102030405060708090a0b"),
        hexBytes("0300001302f0807f6582010a616263646566676162636465666761626364656667"),
    ]

    struct Case {
        var version: UInt16
        var suite: UInt16
        var encryptThenMAC: Bool
        var records: [String]
    }

    static let cases: [String: Case] = [
        // TLS 1.0, TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, MAC-then-encrypt, IV chained from record to record.
        "tls10": Case(
            version: 0x0301, suite: 0xC014, encryptThenMAC: false,
            records: [
                "16030100305211ed23b9194d5ea0cb56b16c06144da8e8366931c258f0505af076b540f7ae5fe986f9b5bb5ec105683cf5b3b9fbc5",
                "170301005077d867dc40a45747675dc0a93545cf5860a416a8cbc4133a162b2392ea89a850f2996fd568bcb51d8bfef0692b4e288b8376"
                    + "15fb1d5668db330ed12ac1c7faf1cef4dfad6518a183cf5cbd0e6a48823f",
            ]),
        // TLS 1.2, TLS_RSA_WITH_AES_128_CBC_SHA, MAC-then-encrypt, explicit IV.
        "tls12-mte": Case(
            version: 0x0303, suite: 0x002F, encryptThenMAC: false,
            records: [
                "1603030040a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0df51e008750aa69b459b7d1968ecb6e2959ccfe609e0b78d87ce64811498cbe1fcaa"
                    + "93cf3392fc4a52d43bde711612e5",
                "1703030050a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1b38d6d053d52afa2acd1dbac4e45664aa563d983d35389c9201a452c89ce1397fb13"
                    + "0ec346e1717fa412c9f8016e1a0495d53488be801d47d079f15e8bdeef30",
            ]),
        // TLS 1.2, TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 (SHA-384 PRF, HMAC-SHA384), encrypt_then_mac.
        "tls12-etm": Case(
            version: 0x0303, suite: 0xC028, encryptThenMAC: true,
            records: [
                "1603030060b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0d2d0372323c155904ec349c2348266561a641489e57d779488bb5c3e54b99a6ff50f"
                    + "68e9c0b2e72072b2ab2821b856566ece1bfe02a1aafb990a39d3b6ab0a207d41b844233959dd9f05944bf79c43c4",
                "1703030070b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1d3dd0866b134b8073782df2efb183d901eb59b8c3503897be14ee665b77e6c48f784"
                    + "94c410f804ed0746679a07911ed01c563868af6bdbdeb390e69b31ca48beca409c938b06c7fb7010c5952a76e68ff63cff14bfe1a4"
                    + "f1b752c6d3ffa8f5de",
            ]),
    ]

    static func decryptor(_ c: Case, encryptThenMAC: Bool? = nil) -> TLSDecryptor {
        let master = (0..<48).map { UInt8($0) }
        var d = TLSDecryptor(
            material: TLSKeyMaterial(keyLog: "CLIENT_RANDOM \(hexString(RecordDecryptionTests.clientRandom)) \(hexString(master))"))
        d.clientHello(random: RecordDecryptionTests.clientRandom)
        d.serverHello(
            random: RecordDecryptionTests.serverRandom, version: c.version, cipherSuite: c.suite,
            encryptThenMAC: encryptThenMAC ?? c.encryptThenMAC)
        d.changeCipherSpec(from: .client)
        return d
    }

    @Test(arguments: ["tls10", "tls12-mte", "tls12-etm"])
    func opensRecordsMadeWithOpenSSL(_ name: String) throws {
        let c = try #require(Self.cases[name])
        var d = Self.decryptor(c)
        #expect(d.status == .active)
        #expect(openRecord(&d, hexBytes(c.records[0]), from: .client) == .plaintext(contentType: 22, bytes: Self.contents[0]))
        #expect(openRecord(&d, hexBytes(c.records[1]), from: .client) == .plaintext(contentType: 23, bytes: Self.contents[1]))
        #expect(d.openedRecords.client == 2)
        // The server's records use the server's keys: the client's do not open there.
        var other = Self.decryptor(c)
        other.changeCipherSpec(from: .server)
        #expect(openRecord(&other, hexBytes(c.records[0]), from: .server) == .failedAuthentication)
    }

    /// Any flipped bit (IV, ciphertext, MAC, or the header the MAC covers), a record out of
    /// order, or the wrong encrypt_then_mac setting is the wrong-keys finding, never a trap.
    @Test(arguments: ["tls10", "tls12-mte", "tls12-etm"])
    func damageIsAFinding(_ name: String) throws {
        let c = try #require(Self.cases[name])
        let record = hexBytes(c.records[0])
        for i in 0..<record.count where i != 3 && i != 4 {
            var damaged = record
            damaged[i] ^= 0x01
            var d = Self.decryptor(c)
            let opened = openRecord(&d, damaged, from: .client)
            #expect(opened == .failedAuthentication, "\(name): byte \(i) flipped")
            #expect(d.status == .failed(.client))
        }
        var skipped = Self.decryptor(c)
        #expect(openRecord(&skipped, hexBytes(c.records[1]), from: .client) == .failedAuthentication)
        var wrongMode = Self.decryptor(c, encryptThenMAC: !c.encryptThenMAC)
        #expect(openRecord(&wrongMode, record, from: .client) == .failedAuthentication)
        // Every length of fragment, however short or unaligned.
        for n in 0..<(record.count + 20) {
            var d = Self.decryptor(c)
            let fragment = [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: n)
            #expect(openRecord(&d, [23, 3, 3, UInt8(n >> 8), UInt8(n & 0xFF)] + fragment, from: .client) == .failedAuthentication)
        }
    }
}
