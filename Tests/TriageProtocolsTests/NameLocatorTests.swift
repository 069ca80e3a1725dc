import TestSupport
import Testing
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// Where the names lie in a connection's first bytes, for a redacted export to overwrite
/// them and nothing else.
@Suite struct NameLocatorTests {
    /// One direction of a fixture as a stream (the first copy of retransmitted bytes).
    static func stream(_ segments: [FixtureSegment], _ d: Direction) -> [UInt8] {
        var out: [UInt8] = []
        for s in segments where s.direction == d {
            let start = Int(s.seq)
            guard start <= out.count else { break }
            if start + s.bytes.count > out.count { out += s.bytes[(out.count - start)...] }
        }
        return out
    }

    /// Writes every field's replacement for `pseudonym`, as the exporter does.
    static func redacted(_ stream: [UInt8], _ fields: [NameField], _ pseudonym: String = "host-1") -> [UInt8] {
        var out = stream
        for f in fields {
            guard let parts = f.replacement(for: pseudonym, in: out) else { continue }
            for (r, b) in zip(f.ranges, parts) { out.replaceSubrange(r, with: b) }
        }
        return out
    }

    static func utf16(_ s: String, bigEndian: Bool = false) -> [UInt8] {
        s.utf16.flatMap { bigEndian ? [UInt8($0 >> 8), UInt8($0 & 0xff)] : [UInt8($0 & 0xff), UInt8($0 >> 8)] }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// Standard RDP security: the cookie, and the client name in the MCS Connect Initial.
    @Test func cookieAndClientName() throws {
        let client = Self.stream(CaptureFixtures.zeekX509, .clientToServer)
        let fields = NameLocator.clientStream(client)
        let cookie = try #require(fields.first { $0.kind == .user })
        #expect(cookie.shown == "JOHN-PC  ")
        #expect(Array(client[cookie.ranges[0]]) == Array("JOHN-PC  ".utf8))
        let name = try #require(fields.first { $0.encoding == .utf16LE })
        #expect(name.shown == "JOHN-PC-LAPTOP")
        #expect(Array(client[name.ranges[0]]) == Self.utf16("JOHN-PC-LAPTOP"))
        let out = Self.redacted(client, fields)
        #expect(Self.contains(out, Array("Cookie: mstshash=".utf8)))
        #expect(!Self.contains(out, Array("JOHN".utf8)) && !Self.contains(out, Self.utf16("JOHN")))
        #expect(out.count == client.count)
    }

    /// `DOMAIN\user` is two fields; a one-letter cookie is one field of one byte.
    @Test func cookieParts() throws {
        func cr(_ cookie: String) -> [UInt8] {
            let line = Array("Cookie: mstshash=\(cookie)\r\n".utf8)
            let x224: [UInt8] = [UInt8(6 + line.count), 0xE0, 0, 0, 0, 0, 0] + line
            return [3, 0, 0, UInt8(4 + x224.count)] + x224
        }
        let f = NameLocator.clientStream(cr("CORP\\bob"))
        #expect(f.map(\.kind) == [.domain, .user])
        #expect(f.map(\.shown) == ["CORP", "bob"])
        #expect(f.map(\.ranges) == [[28..<32], [33..<36]])
        let e = NameLocator.clientStream(cr("e"))
        #expect(e.map(\.ranges) == [[28..<29]])
        let out = Self.redacted(cr("e"), e, "user-1")
        #expect(out == cr("u"), "only the cookie's byte changes")
    }

    /// The X.509 chain of SC_SECURITY: serials, BMPString names, and the NetBIOS name that
    /// Windows repeats as UTF-16LE inside its licensing extensions.
    @Test func standardSecurityCertificateChain() throws {
        let server = Self.stream(CaptureFixtures.zeekX509, .serverToClient)
        let fields = NameLocator.serverStream(server)
        #expect(fields.filter { $0.kind == .serial }.count == 2)
        #expect(fields.contains { $0.encoding == .utf16BE && $0.shown == "SERVR" })
        #expect(fields.contains { $0.encoding == .utf16BE && $0.shown == "TURNBKL" })
        #expect(fields.contains { $0.encoding == .utf16LE && $0.shown == "SERVR" })
        let out = Self.redacted(server, fields)
        for name in ["SERVR", "TURNBKL"] {
            #expect(!Self.contains(out, Self.utf16(name)), "\(name) as UTF-16LE")
            #expect(!Self.contains(out, Self.utf16(name, bigEndian: true)), "\(name) as BMPString")
        }
        // The certificates still parse, with the pseudonym's letters in place of the names.
        #expect(Self.contains(out, Self.utf16("Microsoft Corporation")), "other text in the extensions stays")
        var c = 0
        for i in 0..<server.count where out[i] != server[i] { c += 1 }
        #expect(c > 0 && c < 200, "\(c) bytes changed")
    }

    /// TLS 1.2: the SNI (an IP literal) in a ClientHello, certificate names and serial in a
    /// Certificate message.
    @Test func tlsServerNameAndCertificate() throws {
        let client = Self.stream(CaptureFixtures.ndpiHybridEx, .clientToServer)
        let sni = try #require(NameLocator.clientStream(client).first { $0.kind == .host })
        #expect(sni.shown == "192.168.2.142")
        #expect(Array(client[sni.ranges[0]]) == Array(sni.shown.utf8))
        let server = Self.stream(CaptureFixtures.bruteHybrid, .serverToClient)
        let fields = NameLocator.serverStream(server)
        let facts = StreamPlayer.play(CaptureFixtures.bruteHybrid, .asCaptured)
        let cert = try #require(facts.tls?.certificates.first)
        #expect(fields.contains { $0.kind == .serial && $0.shown == cert.serialNumber })
        let cn = String(cert.subject.split(separator: ",").first { $0.hasPrefix("CN=") }?.dropFirst(3) ?? "")
        #expect(!cn.isEmpty && fields.contains { $0.shown == cn })
        let out = Self.redacted(server, fields)
        #expect(!Self.contains(out, Array(cn.utf8)))
        #expect(out.count == server.count)
    }

    /// The same handshake cut into small records: a name split between two records is
    /// still found, as ranges that skip the record header between its parts.
    @Test func certificateSplitAcrossRecords() throws {
        let server = Self.stream(CaptureFixtures.bruteHybrid, .serverToClient)
        // The X.224 Connection Confirm, then the handshake records.
        let tpkt = Int(server[2]) << 8 | Int(server[3])
        var handshake: [UInt8] = []
        var at = tpkt
        while at + 5 <= server.count, server[at] == 22 {
            let length = Int(server[at + 3]) << 8 | Int(server[at + 4])
            guard at + 5 + length <= server.count else { break }
            handshake += server[(at + 5)..<(at + 5 + length)]
            at += 5 + length
        }
        let whole = NameLocator.serverStream(server)
        #expect(!whole.isEmpty)
        var spanning = 0
        for size in [7, 13, 37, 61, 100] {
            var split = Array(server[..<tpkt])
            for chunk in stride(from: 0, to: handshake.count, by: size) {
                let part = handshake[chunk..<min(chunk + size, handshake.count)]
                split += [22, 3, 3, UInt8(part.count >> 8), UInt8(part.count & 0xff)] + part
            }
            let cut = NameLocator.serverStream(split)
            #expect(cut.map(\.shown) == whole.map(\.shown), "records of \(size) bytes")
            spanning += cut.filter { $0.ranges.count > 1 }.count
            for (a, b) in zip(whole, cut) {
                #expect(a.ranges.flatMap { Array(server[$0]) } == b.ranges.flatMap { Array(split[$0]) }, "\(size): \(a.shown)")
            }
        }
        #expect(spanning > 0, "some name spans two records")
    }

    /// Mutated and cut streams: the locator never traps, and every range it gives lies
    /// inside the stream.
    @Test func hostileStreamsNeverTrap() {
        var rng = SplitMix(seed: 12)
        let inputs = [
            Self.stream(CaptureFixtures.zeekX509, .clientToServer), Self.stream(CaptureFixtures.zeekX509, .serverToClient),
            Self.stream(CaptureFixtures.bruteHybrid, .clientToServer), Self.stream(CaptureFixtures.bruteHybrid, .serverToClient),
        ]
        for i in 0..<2000 {
            var bytes = inputs[i % inputs.count]
            for _ in 0..<4 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
            for f in NameLocator.clientStream(bytes) + NameLocator.serverStream(bytes) {
                #expect(f.ranges.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= bytes.count }, "input \(i)")
                _ = f.replacement(for: "host-1", in: bytes)
            }
        }
    }
}
