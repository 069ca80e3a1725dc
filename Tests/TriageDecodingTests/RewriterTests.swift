import TestSupport
import Testing
import TriageCapture

@testable import TriageDecoding

@Suite struct RewriterTests {
    static var rewrite: PacketRewrite { PacketRewrite(
        address: { a in a.isIPv6 ? IPAddress(ipv6High: 0x2001_0db8_ffff_0000, low: a.low & 0xff) : IPAddress(ipv4: 0xC612_0000 | (a.ipv4 & 0xff)) },
        mac: { _ in [2, 0, 0, 0, 0, 9] },
        name: { _ in "user-1" }) }

    /// RFC 1071: a correct checksum makes the sum over the covered bytes 0xffff.
    func verifies(_ f: [UInt8], _ range: Range<Int>, pseudo: UInt32) -> Bool {
        PacketRewriter.fold(PacketRewriter.sum(f, range, initial: pseudo)) == 0
    }

    /// The cookie is written where the caller's parser found it (11 bytes of X.224 header,
    /// then `Cookie: mstshash=`), and nowhere else.
    @Test func addressesCookieAndChecksums() {
        let tcp = Frames.tcp(flags: 0x18, payload: Frames.connectionRequest)
        var frame = Frames.ethernet(Frames.ipv4(proto: 6, payload: tcp))
        let before = frame.count
        let original = frame
        let edit = PayloadEdit(offset: 11 + 17, bytes: Array("user1".utf8))
        PacketRewriter.rewrite(&frame, linkType: .ethernet, Self.rewrite, payload: [edit])
        #expect(frame.count == before)
        let p = decode(frame, .ethernet)
        #expect(p.source.description == "198.18.0.10")
        #expect(p.destination.description == "198.18.0.20")
        #expect(Array(frame[0..<12]) == [2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 9])
        let payload = String(decoding: frame[p.payloadOffset...], as: UTF8.self)
        #expect(payload.contains("mstshash=user1\r\n"))
        #expect(!payload.contains("alice"))
        // Every payload byte outside the cookie is the original one.
        for i in p.payloadOffset..<frame.count where !(p.payloadOffset + 28..<p.payloadOffset + 33).contains(i) {
            #expect(frame[i] == original[i], "byte \(i)")
        }
        #expect(verifies(frame, 14..<34, pseudo: 0))
        let pseudo = PacketRewriter.sum(frame, 26..<34) &+ 6 &+ UInt32(frame.count - 34)
        #expect(verifies(frame, 34..<frame.count, pseudo: pseudo))
    }

    @Test func icmpQuotedDatagramIsRewrittenToo() {
        let quoted = Frames.ipv4(proto: 6, payload: Frames.tcpSYN)
        var frame = Frames.ethernet(Frames.ipv4(proto: 1, payload: [3, 1, 0, 0, 0, 0, 0, 0] + quoted))
        PacketRewriter.rewrite(&frame, linkType: .ethernet, Self.rewrite)
        let p = decode(frame, .ethernet)
        #expect(p.icmp.quoted?.source.description == "198.18.0.10")
        #expect(p.icmp.quoted?.destination.description == "198.18.0.20")
        #expect(verifies(frame, 34..<frame.count, pseudo: 0))  // ICMP checksum
        #expect(verifies(frame, 42..<62, pseudo: 0))  // quoted IPv4 header
    }

    /// An edit that starts in an earlier segment or runs past this one writes only its
    /// part inside the payload.
    @Test func editsAreClippedToThePayload() {
        var frame = Frames.ethernet(Frames.ipv4(proto: 6, payload: Frames.tcp(flags: 0x18, payload: Array("abcdef".utf8))))
        PacketRewriter.rewrite(&frame, linkType: .ethernet, Self.rewrite,
                               payload: [PayloadEdit(offset: -2, bytes: Array("XYZ".utf8)), PayloadEdit(offset: 5, bytes: Array("QR".utf8))])
        #expect(Array(frame.suffix(6)) == Array("Zbcde".utf8) + [UInt8(ascii: "Q")])
    }

    @Test func dnsAnswersAreRewritten() {
        var udp: [UInt8] = [0, 53, 0xc3, 0x50, 0, UInt8(8 + DNSTests.response.count), 0, 0] + DNSTests.response
        var frame = Frames.ethernet(Frames.ipv4(proto: 17, payload: udp))
        PacketRewriter.rewrite(&frame, linkType: .ethernet, Self.rewrite)
        let p = decode(frame, .ethernet)
        let m = frame.withUnsafeBytes { raw in try? DNSMessage.decode(UnsafeRawBufferPointer(rebasing: raw[p.payloadOffset...])) }
        #expect(m?.answers[1].address?.description == "198.18.0.99")
        #expect(m?.answers[2].address?.description == "2001:db8:ffff::99")
        // Names are overwritten label by label (the test's pseudonym is user-1); lengths,
        // pointers, types and the rest of the message stay as they were.
        // (The CNAME target shares `example.test` with the question: written last, it wins.)
        #expect(m?.answers[0].target == "user.1xxxxxx.xxxx", "\(String(describing: m?.answers[0].target))")
        #expect(m?.questionName == "use.1xxxxxx.xxxx", "\(String(describing: m?.questionName))")
        let message = Array(frame[(p.payloadOffset)...])
        #expect(message.count == DNSTests.response.count)
        #expect(!String(decoding: message, as: UTF8.self).contains("example"))
        #expect(!String(decoding: message, as: UTF8.self).contains("rdp"))
        let fields = DNSTests.response.withUnsafeBytes { DNSMessage.nameFields($0) }
        var rewritten = Set(fields.flatMap { $0.ranges.flatMap { Array($0) } })
        for (at, v6) in DNSTests.response.withUnsafeBytes({ DNSMessage.addressRecordOffsets($0) }) {
            rewritten.formUnion(at..<(at + (v6 ? 16 : 4)))
        }
        for i in 0..<message.count where !rewritten.contains(i) {
            #expect(message[i] == DNSTests.response[i], "byte \(i) of the DNS message")
        }
        udp = Array(frame[34...])
        let pseudo = PacketRewriter.sum(frame, 26..<34) &+ 17 &+ UInt32(udp.count)
        #expect(verifies(frame, 34..<frame.count, pseudo: pseudo))
    }

    /// Mutated and cut frames: the rewriter never traps and never changes a frame's length;
    /// frames that still decode as IPv4 carry rewritten addresses.
    @Test func hostileFramesNeverTrap() {
        var rng = SplitMix(seed: 11)
        var rewrittenIPv4 = 0
        for i in 0..<5000 {
            var bytes = Frames.ethernet(Frames.ipv4(proto: [1, 6, 17][i % 3], payload: Frames.tcpSYN + Frames.connectionRequest))
            for _ in 0..<3 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
            let original = bytes
            PacketRewriter.rewrite(&bytes, linkType: .ethernet, Self.rewrite)
            #expect(bytes.count == original.count)
            // MAC addresses identify hosts: rewritten whenever both are there, whatever follows.
            if original.count < 12 {
                #expect(bytes == original, "frame \(i): cut inside its MAC addresses, left alone")
            } else {
                #expect(Array(bytes[0..<12]) == [2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 9], "frame \(i): MAC addresses")
            }
            let before = decode(original, .ethernet)
            if before.network == .ipv4 && before.problem == .none {
                let after = decode(bytes, .ethernet)
                // The test's rewrite maps every IPv4 address into 198.18.0.0/24.
                #expect(after.source.ipv4 & 0xFFFF_FF00 == 0xC612_0000, "frame \(i): source \(after.source)")
                #expect(after.destination.ipv4 & 0xFFFF_FF00 == 0xC612_0000, "frame \(i): destination \(after.destination)")
                rewrittenIPv4 += 1
            }
        }
        #expect(rewrittenIPv4 > 500, "enough mutated frames still decode for the check to mean something")
    }
}
