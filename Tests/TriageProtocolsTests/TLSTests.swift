import Testing
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// TLS record layer and clear-text handshake (RFC 5246, RFC 8446). Real records from the
/// ndpi capture, checked against tshark 4.0 (`-d tcp.port==3389,tls`): ClientHello
/// record version 0x0301, body 0x0303, SNI 192.168.2.142, 22 cipher suites starting
/// 0x00ff, 0xc02c; ServerHello 0x0303 with 0xc030.
@Suite struct TLSTests {
    static let ndpiClient = streamBytes(CaptureFixtures.ndpiHybridEx, .clientToServer)
    static let ndpiServer = streamBytes(CaptureFixtures.ndpiHybridEx, .serverToClient)
    /// The ClientHello record (after the 19-byte X.224 CR).
    static var clientHelloRecord: [UInt8] { recordAt(ndpiClient, 19) }
    /// The record with ServerHello, Certificate, ServerKeyExchange and ServerHelloDone.
    static var serverFlightRecord: [UInt8] { recordAt(ndpiServer, 19) }

    static func recordAt(_ stream: [UInt8], _ at: Int) -> [UInt8] {
        guard at + 5 <= stream.count else { return [] }
        let length = Int(stream[at + 3]) << 8 | Int(stream[at + 4])
        return Array(stream[at..<min(stream.count, at + 5 + length)])
    }

    /// The handshake messages of a record, parsed with `body`.
    static func message<T>(_ record: [UInt8], type: UInt8, _ body: (inout ByteCursor) throws(ParseError) -> T) -> T? {
        var at = 5
        while at + 4 <= record.count {
            let length = Int(record[at + 1]) << 16 | Int(record[at + 2]) << 8 | Int(record[at + 3])
            if record[at] == type { return value(parse(Array(record[(at + 4)..<min(record.count, at + 4 + length)]), body)) }
            at += 4 + length
        }
        return nil
    }

    @Test func recordHeader() throws {
        let (header, _) = try #require(
            value(parse(Self.clientHelloRecord) { c throws(ParseError) in try TLSRecord.read(&c) }))
        #expect(header.contentType == .handshake)
        #expect(header.version == .tls10)
        #expect(header.length == 168)
    }

    @Test func clientHello() throws {
        let hello = try #require(
            Self.message(Self.clientHelloRecord, type: 1) { c throws(ParseError) in try TLSClientHello.parse(&c) })
        #expect(hello.legacyVersion == .tls12)
        #expect(hello.serverName == "192.168.2.142")
        #expect(hello.cipherSuites.count == 22)
        #expect(hello.cipherSuites.prefix(2) == [0x00FF, 0xC02C])
        #expect(hello.supportedVersions == [])
        #expect(TLSCipherSuite(rawValue: 0xC02C).name == "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
        #expect(TLSCipherSuite(rawValue: 0x1234).name == "0x1234")
    }

    @Test func serverHello() throws {
        let hello = try #require(
            Self.message(Self.serverFlightRecord, type: 2) { c throws(ParseError) in try TLSServerHello.parse(&c) })
        #expect(hello.version == .tls12)
        #expect(hello.cipherSuite.rawValue == 0xC030)
        #expect(!hello.isHelloRetryRequest)
    }

    @Test func certificateMessage() throws {
        let message = try #require(
            Self.message(Self.serverFlightRecord, type: 11) { c throws(ParseError) in try TLSCertificateMessage.parse(&c) })
        #expect(message.certificates.count == 1)
        #expect(message.certificates.first?.count == 742)
    }

    /// A TLS 1.3 ServerHello: supported_versions selects 0x0304 (RFC 8446 4.2.1).
    static let tls13ServerHello = hexBytes(
        "0303" + String(repeating: "11", count: 32) + "00" + "1301" + "00" + "0006" + "002b00020304")

    @Test func tls13ServerHello() throws {
        let hello = try #require(value(parse(Self.tls13ServerHello) { c throws(ParseError) in try TLSServerHello.parse(&c) }))
        #expect(hello.legacyVersion == .tls12)
        #expect(hello.version == .tls13)
        #expect(hello.version.name == "TLS 1.3")
        #expect(hello.cipherSuite.name == "TLS_AES_128_GCM_SHA256")
    }

    @Test func helloRetryRequest() throws {
        var bytes = Self.tls13ServerHello
        bytes.replaceSubrange(2..<34, with: TLSServerHello.helloRetryRequestRandom)
        let hello = try #require(value(parse(bytes) { c throws(ParseError) in try TLSServerHello.parse(&c) }))
        #expect(hello.isHelloRetryRequest)
    }

    @Test func tls13ClientHelloExtensions() throws {
        // legacy 0x0303, no session id, one suite, null compression, SNI "rdp.example",
        // supported_versions [GREASE 0x3a3a, 0x0304, 0x0303].
        let sni = "0000" + "0010" + "000e" + "00" + "000b" + "7264702e6578616d706c65"
        let versions = "002b" + "0007" + "06" + "3a3a03040303"
        let exts = sni + versions
        let body = "0303" + String(repeating: "22", count: 32) + "00" + "00021301" + "0100" + hex4(exts.count / 2) + exts
        let hello = try #require(value(parse(hexBytes(body)) { c throws(ParseError) in try TLSClientHello.parse(&c) }))
        #expect(hello.serverName == "rdp.example")
        #expect(hello.supportedVersions == [0x3A3A, 0x0304, 0x0303])
        #expect(TLSVersion(rawValue: 0x3A3A).isGREASE)
        #expect(hello.extensions == [0, 43])
    }

    @Test func alerts() throws {
        let record = hexBytes("15030300020228")
        let (header, fragment) = try #require(value(parse(record) { c throws(ParseError) in try TLSRecord.read(&c) }))
        #expect(header.contentType == .alert)
        var f = fragment
        let alert = try TLSAlert.parse(&f)
        #expect(alert.level == .fatal)
        #expect(alert.description.name == "handshake_failure")
        #expect(TLSAlertDescription(rawValue: 70).name == "protocol_version")
        #expect(TLSAlertDescription(rawValue: 200).name == "alert-200")
        #expect(TLSAlertLevel(rawValue: 9).name == "level-9")
    }

    @Test(arguments: [clientHelloRecord, serverFlightRecord, hexBytes("15030300020228"), hexBytes("140303000101")])
    func everyPrefixNeedsMore(_ record: [UInt8]) {
        #expect(prefixesNotNeedingMore(record) { c throws(ParseError) in try TLSRecord.read(&c) } == [])
    }

    @Test func badRecordHeaders() {
        // Length 2^14 + 2049.
        #expect(isMalformed(failure(parse(hexBytes("1703034801")) { c throws(ParseError) in try TLSRecord.read(&c) })))
        // Content type 99.
        #expect(isMalformed(failure(parse(hexBytes("6303030002aaaa")) { c throws(ParseError) in try TLSRecord.read(&c) })))
        // Major version 2.
        #expect(isMalformed(failure(parse(hexBytes("1602000002aaaa")) { c throws(ParseError) in try TLSRecord.read(&c) })))
        // SSL 2.0-compatible ClientHello: not malformed, not supported.
        let ssl2 = hexBytes("802e0103010015000000100100800300800700c0")
        #expect(isUnsupported(failure(parse(ssl2) { c throws(ParseError) in try TLSRecord.read(&c) })))
    }

    @Test func handshakeBodiesWithBadLengthsAreMalformed() {
        // ClientHello whose cipher_suites length runs past the body.
        let body = hexBytes("0303" + String(repeating: "00", count: 32) + "00" + "00ff1301")
        #expect(isMalformed(failure(parse(body) { c throws(ParseError) in try TLSClientHello.parse(&c) })))
        // Odd cipher_suites length.
        let odd = hexBytes("0303" + String(repeating: "00", count: 32) + "00" + "0003130113" + "0100")
        #expect(isMalformed(failure(parse(odd) { c throws(ParseError) in try TLSClientHello.parse(&c) })))
        // Certificate list length past the message.
        #expect(isMalformed(failure(parse(hexBytes("0000ff000003aaaaaa")) { c throws(ParseError) in
            try TLSCertificateMessage.parse(&c)
        })))
    }

    @Test func recordOverheadEstimates() {
        #expect(RecordOverhead.estimate(version: 0x0304, cipherSuite: 0x1301).typical == 17)
        #expect(RecordOverhead.estimate(version: 0x0303, cipherSuite: 0xC030).typical == 24)
        #expect(RecordOverhead.estimate(version: 0x0303, cipherSuite: 0xCCA8).typical == 16)
        #expect(RecordOverhead.estimate(version: 0x0301, cipherSuite: 0x002F) == RecordOverhead(typical: 28, splitsRecords: true))
        #expect(RecordOverhead.estimate(version: 0x0303, cipherSuite: 0x002F) == RecordOverhead(typical: 44, splitsRecords: false))
    }
}

func hex4(_ n: Int) -> String {
    let s = String(n, radix: 16)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}
