import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// X.509 facts (RFC 5280). Expected values for the zeek chain come from zeek's own
/// x509.log for the same capture (fingerprint = SHA-256 of the DER, serial, validity,
/// key type and size, signature algorithm); the TLS certificate's from tshark.
@Suite struct CertificateTests {
    /// The X.509 chain of the zeek capture's Server Security Data, wire order (root first).
    static func zeekChain() -> [[UInt8]] {
        let server = streamBytes(CaptureFixtures.zeekX509, .serverToClient)
        guard let packet = tpktPacket(server, index: 1),
            let cr = value(parse(mcsUserData(packet)) { c throws(ParseError) in try MCSConnectResponse.parse(&c) }),
            case .x509(let chain, _) = cr.serverData?.security?.certificate
        else { return [] }
        return chain
    }

    /// The server certificate of the ndpi capture's TLS Certificate message (frame 8).
    static func ndpiLeaf() -> [UInt8]? {
        let server = streamBytes(CaptureFixtures.ndpiHybridEx, .serverToClient)
        // CC (19 bytes), then the TLS record with ServerHello, Certificate, ...
        guard server.count > 19 + 5 else { return nil }
        let record = Array(server[19...])
        var at = 5
        while at + 4 <= record.count {
            let type = record[at]
            let length = Int(record[at + 1]) << 16 | Int(record[at + 2]) << 8 | Int(record[at + 3])
            if type == 11 {
                let first = at + 4 + 3
                let certLength = Int(record[first]) << 16 | Int(record[first + 1]) << 8 | Int(record[first + 2])
                return Array(record[(first + 3)..<(first + 3 + certLength)])
            }
            at += 4 + length
        }
        return nil
    }

    @Test func zeekRootCertificate() throws {
        let chain = Self.zeekChain()
        try #require(chain.count == 2)
        let root = try #require(value(parse([]) { _ throws(ParseError) in try CertificateParser.facts(der: chain[0]) }))
        // zeek: e3859c4a..., serial 59EB28CB02B1A0D4, 1423664106..1431388800, rsa 512, sha1WithRSA.
        #expect(root.sha256 == "e3859c4a77098a7b84589e0cb1171662d15699fc84c19d3421f7d52dc0dc59c9")
        #expect(root.serialNumber == "59EB28CB02B1A0D4")
        #expect(root.subject == "CN=SERVR+L=TURNBKL")
        #expect(root.issuer == root.subject)
        #expect(root.notBefore == Timestamp(seconds: 1_423_664_106, nanos: 0))
        #expect(root.notAfter == Timestamp(seconds: 1_431_388_800, nanos: 0))
        #expect(root.keyType == "RSA")
        #expect(root.keyBits == 512)
        #expect(root.signatureAlgorithm == "sha1WithRSA")
        #expect(root.selfSigned)
        #expect(root.inspectionProduct == nil)
    }

    @Test func zeekLicensingCertificate() throws {
        let chain = Self.zeekChain()
        try #require(chain.count == 2)
        let leaf = try #require(value(parse([]) { _ throws(ParseError) in try CertificateParser.facts(der: chain[1]) }))
        // zeek: bd976713..., serial 0100000001, 1365174955..1483228799, key under the
        // md5WithRSAEncryption OID but RSA 512.
        #expect(leaf.sha256 == "bd97671306086c3393a1bd835340a68043557a7ae131b8ee72f4d015287024ba")
        #expect(leaf.serialNumber == "0100000001")
        #expect(leaf.subject == "CN=ncalrpc:SERVR+L=ncalrpc:SERVR+serialNumber=1BcKefYSF97EvkaiCqahPY8uPd0=\\0D\\0A")
        #expect(leaf.issuer == "CN=SERVR+L=TURNBKL")
        #expect(leaf.notBefore == Timestamp(seconds: 1_365_174_955, nanos: 0))
        #expect(leaf.notAfter == Timestamp(seconds: 1_483_228_799, nanos: 0))
        #expect(leaf.keyType == "RSA")
        #expect(leaf.keyBits == 512)
        #expect(!leaf.selfSigned)
    }

    @Test func tlsServerCertificate() throws {
        let der = try #require(Self.ndpiLeaf())
        let cert = try #require(value(parse([]) { _ throws(ParseError) in try CertificateParser.facts(der: der) }))
        // tshark: CN=OFFICE-WIN10-VM, serial 3dde271223f54fa148cca5d217d88b33,
        // sha256WithRSAEncryption, rsaEncryption 2048 bits, 2019-03-19 .. 2019-09-18.
        #expect(cert.subject == "CN=OFFICE-WIN10-VM")
        #expect(cert.issuer == "CN=OFFICE-WIN10-VM")
        #expect(cert.serialNumber == "3DDE271223F54FA148CCA5D217D88B33")
        #expect(cert.signatureAlgorithm == "sha256WithRSAEncryption")
        #expect(cert.keyType == "RSA")
        #expect(cert.keyBits == 2048)
        // A 2048-bit self-signed certificate: swift-certificates verifies the signature.
        #expect(cert.selfSigned)
        #expect(cert.notBefore == Timestamp(seconds: 1_552_992_431, nanos: 0))
        #expect(cert.notAfter == Timestamp(seconds: 1_568_803_631, nanos: 0))
        // openssl x509 -fingerprint -sha256 of the same DER.
        #expect(cert.sha256 == "93cb25f0e7bf324e8dfeda4e410a02e296c631ef859e615b0ec29424790b412c")
    }

    @Test func sha256KnownAnswers() {
        // FIPS 180-4 examples.
        #expect(Digests.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digests.sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Digests.sha256Hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func inspectionProducts() {
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=FortiGate CA,O=Fortinet,C=US") == "Fortinet FortiGate")
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=Zscaler Intermediate Root CA (zscaler.net)") == "Zscaler")
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=DO_NOT_TRUST_FiddlerRoot,O=DO_NOT_TRUST") == "Fiddler")
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=mitmproxy,O=mitmproxy") == "mitmproxy")
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=ESET SSL Filter CA") == "ESET")
        // Word boundaries: "reset" is not ESET, a server named Avastor is not Avast.
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=reset-host") == nil)
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=Avastor") == nil)
        #expect(ProtocolTables.inspectionProduct(inIssuer: "CN=SERVER01") == nil)
    }

    @Test func garbageIsMalformed() {
        let r = parse([]) { _ throws(ParseError) in try CertificateParser.facts(der: [0x30, 0x03, 0x02, 0x01]) }
        #expect(isMalformed(failure(r)))
        let empty = parse([]) { _ throws(ParseError) in try CertificateParser.facts(der: []) }
        #expect(isMalformed(failure(empty)))
    }

    @Test func everyTruncationOfACertificateFailsCleanly() throws {
        let chain = Self.zeekChain()
        try #require(!chain.isEmpty)
        let der = chain[0]
        for n in 0..<der.count {
            let r = parse([]) { _ throws(ParseError) in try CertificateParser.facts(der: Array(der[0..<n])) }
            #expect(failure(r) != nil, "prefix \(n)")
        }
    }

    /// A certificate whose RSA key neither of swift-crypto's key readers accepts (here a
    /// negative modulus) is read without it, every time: swift-crypto 3.12.3 freed such a key
    /// twice (scripts/fuzz-coverage found the abort; most rounds it only wrote into freed
    /// memory, so this test passed with 3.12.3 here too: it guards the path, the fix is the
    /// dependency's).
    @Test func unreadableRSAKeyFailsCleanly() throws {
        var der = try #require(Self.ndpiLeaf())
        // The modulus INTEGER of a 2048-bit key: 257 bytes, a leading zero keeping it positive.
        let marker: [UInt8] = [0x02, 0x82, 0x01, 0x01, 0x00]
        func find(_ m: [UInt8], from: Int) -> Int? {
            (from...(der.count - m.count)).first { Array(der[$0..<($0 + m.count)]) == m }
        }
        // rsaEncryption's OID starts the subject public key info; the modulus comes after it.
        let spki = try #require(find([0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01], from: 0))
        let at = try #require(find(marker, from: spki))
        der[at + 4] = 0x80
        // `parse`, not the caching `facts`: each round reaches swift-certificates again (for the
        // self-signed check, since the names are equal).
        for _ in 0..<200 {
            let cert = try #require(value(parse([]) { _ throws(ParseError) in try CertificateParser.parse(der: der) }))
            // The names still say self-signed; the signature could not be checked without the key.
            #expect(cert.subject == "CN=OFFICE-WIN10-VM" && cert.selfSigned)
        }
    }
}
