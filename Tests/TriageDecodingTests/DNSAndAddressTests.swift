import TestSupport
import Testing

@testable import TriageDecoding

@Suite struct DNSTests {
    /// A response for rdp.example.test: CNAME to host.example.test, then A 198.51.100.99 and
    /// AAAA 2001:db8:2::99, names compressed with pointers.
    static let response: [UInt8] = {
        var m: [UInt8] = [0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0]
        m += [3] + Array("rdp".utf8) + [7] + Array("example".utf8) + [4] + Array("test".utf8) + [0]  // at 12
        m += [0, 1, 0, 1]
        // CNAME rdp.example.test → host.example.test (host + pointer to "example.test" at 16)
        m += [0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 7, 4] + Array("host".utf8) + [0xc0, 16]
        let hostAt = m.count - 7
        m += [0xc0, UInt8(hostAt), 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 99]
        m += [0xc0, UInt8(hostAt), 0, 28, 0, 1, 0, 0, 0, 60, 0, 16,
              0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99]
        return m
    }()

    func decode(_ b: [UInt8]) throws -> DNSMessage {
        try b.withUnsafeBytes { raw in try DNSMessage.decode(raw) }
    }

    @Test func responseWithCompressionAndCNAME() throws {
        let m = try decode(Self.response)
        #expect(m.id == 0xbeef)
        #expect(m.isResponse)
        #expect(m.rcode == 0)
        #expect(m.questionName == "rdp.example.test")
        #expect(m.questionType == 1)
        #expect(m.answers.count == 3)
        #expect(m.answers[0].target == "host.example.test")
        #expect(m.answers[1].name == "host.example.test")
        #expect(m.answers[1].address?.description == "198.51.100.99")
        #expect(m.answers[2].address?.description == "2001:db8:2::99")
    }

    @Test func nxdomainKeepsTheName() throws {
        var b = Array(Self.response.prefix(12 + 18 + 4))
        b[3] = 0x83  // rcode 3
        b[7] = 0  // no answers
        let m = try decode(b)
        #expect(m.rcode == 3)
        #expect(m.questionName == "rdp.example.test")
    }

    @Test func pointerLoopIsAnError() {
        var b: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]
        b += [0xc0, 12, 0, 1, 0, 1]  // the name points at itself
        #expect(throws: DNSMessage.DecodeError.badName) { try decode(b) }
    }

    @Test func everyPrefixFailsCleanly() {
        for n in 0..<Self.response.count {
            #expect(throws: DNSMessage.DecodeError.self) { try decode(Array(Self.response.prefix(n))) }
        }
    }

    /// Names are decoded from their bytes at once: the same text as escaping each label
    /// (printable ASCII kept, other bytes as \xNN) and joining them with dots, also for labels
    /// that are not valid UTF-8 or hold dots, and through a compression pointer.
    @Test func namesDecodeLikeLabelByLabel() throws {
        var rng = SplitMix(seed: 0xD45)
        let pool: [UInt8] = [0x61, 0x7A, 0x2E, 0x2D, 0x30, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0x80, 0xFF, 0xF0, 0x9F]
        for _ in 0..<2_000 {
            let labels: [[UInt8]] = (0..<Int(1 + rng.next() % 4)).map { _ in
                (0..<Int(1 + rng.next() % 6)).map { _ in pool[Int(rng.next() % UInt64(pool.count))] }
            }
            let want = labels.map { Printable.escaping($0) }.joined(separator: ".")
            // The last label sits at offset 0 and the name at 8 points at it after the others.
            let tail = [UInt8(labels.last!.count)] + labels.last! + [0]
            var message = tail + [UInt8](repeating: 0, count: max(0, 8 - tail.count))
            let start = message.count
            for l in labels.dropLast() { message += [UInt8(l.count)] + l }
            message += [0xC0, 0]
            let got = try message.withUnsafeBytes { raw throws(DNSMessage.DecodeError) -> String in
                var c = ByteCursor(raw, from: start, to: raw.count)
                return try DNSMessage.readName(&c, message: raw)
            }
            #expect(got == want, "\(labels)")
        }
    }

    /// Mutated responses decode or fail with a DecodeError, never trap; what decodes agrees
    /// with the header bytes, and a mutation that changed nothing gives the original answers.
    @Test func randomBytesNeverTrap() throws {
        let original = try decode(Self.response)
        var rng = SplitMix(seed: 53)
        var decoded = 0
        var failed = 0
        for i in 0..<20_000 {
            var b = Self.response
            for _ in 0..<4 { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            do {
                let m = try decode(b)
                decoded += 1
                #expect(m.id == UInt16(b[0]) << 8 | UInt16(b[1]), "input \(i)")
                #expect(m.isResponse == (b[2] & 0x80 != 0), "input \(i)")
                #expect(m.rcode == b[3] & 0x0F, "input \(i)")
                #expect(m.answers.count <= Int(UInt16(b[6]) << 8 | UInt16(b[7])), "input \(i)")
                for a in m.answers where a.address != nil {
                    #expect(a.type == 1 ? a.address?.isIPv6 == false : a.type == 28 && a.address?.isIPv6 == true, "input \(i)")
                }
                if b == Self.response { #expect(m == original) }
            } catch {
                failed += 1
            }
        }
        #expect(decoded > 1_000 && failed > 1_000, "both outcomes are exercised: \(decoded) decoded, \(failed) failed")
    }
}

@Suite struct AddressTests {
    @Test(arguments: [
        "192.0.2.10", "0.0.0.0", "255.255.255.255", "10.100.9.99", "1.20.100.0", "2001:db8::1", "::1", "::", "2001:db8:1::10",
        "fe80::1:2:3:4", "2001:db8:0:1:1:1:1:1", "1::", "2001:0:0:1::1",
    ])
    func roundTrip(_ text: String) {
        #expect(IPAddress(text)?.description == text)
    }

    @Test func rfc5952Compression() {
        #expect(IPAddress("2001:0db8:0000:0000:0001:0000:0000:0001")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("2001:db8:0:0:0:0:2:1")?.description == "2001:db8::2:1")
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.256", "1::2::3", "12345::", "g::1", "1.2.3.4.5"])
    func rejectsNonsense(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    /// Endpoints are written byte by byte into a buffer: checked against plain interpolation
    /// of the octets at the edges (0, 255, ports 0 and 65535) and on random values.
    @Test func endpointText() {
        func reference(_ v: UInt32, _ port: UInt16) -> String {
            "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff):\(port)"
        }
        var cases: [(UInt32, UInt16)] = [(0, 0), (0xffff_ffff, 65535), (0x0a00_0001, 3389), (0x6400_0a09, 10), (0x0102_0304, 9)]
        var rng = SplitMix(seed: 7)
        for _ in 0..<5_000 {
            let r = rng.next()
            cases.append((UInt32(truncatingIfNeeded: r), UInt16(truncatingIfNeeded: r >> 40)))
        }
        for (v, port) in cases {
            #expect(Endpoint(IPAddress(ipv4: v), port).description == reference(v, port))
        }
        #expect(Endpoint(IPAddress("2001:db8::1")!, 3389).description == "[2001:db8::1]:3389")
    }

    @Test func ordering() {
        #expect(IPAddress("10.0.0.1")! < IPAddress("10.0.0.2")!)
        #expect(IPAddress("255.0.0.1")! < IPAddress("::1")!)
    }
}

@Suite struct CursorTests {
    @Test func readsNeverPassTheEnd() {
        let bytes: [UInt8] = [1, 2, 3]
        withCursor(bytes) { c in
            let a = c.readUInt32BE()
            #expect(a == nil)
            #expect(c.offset == 0)
            let b = c.readUInt16BE()
            #expect(b == 0x0102)
            let d = c.readUInt16LE()
            #expect(d == nil)
            let e = c.readUInt8()
            #expect(e == 3)
            let f = c.readUInt8()
            #expect(f == nil)
            let g = c.readBytes(1)
            #expect(g == nil)
            let h = c.skip(1)
            #expect(!h)
            let i = c.readSlice(-1)
            #expect(i == nil)
        }
    }

    @Test func transactionRollsBack() {
        withCursor([0, 5, 1, 2] as [UInt8]) { c in
            let v: [UInt8]? = c.transaction { t in
                guard let n = t.readUInt16BE() else { return nil }
                return t.readBytes(Int(n))
            }
            #expect(v == nil)
            #expect(c.offset == 0)
        }
    }
}
