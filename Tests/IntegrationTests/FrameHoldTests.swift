import TriageCapture
import TriageDecoding
@testable import TriageEngine
import TriageFlows
import Testing

/// `live --export`'s frame hold: bounded per connection (the first frames kept, a ring of the
/// latest after them) and over all connections (the quietest gives its slot up), with what it
/// dropped counted, and every frame it hands back byte for byte as it came.
@Suite struct FrameHoldTests {
    /// A raw IPv4 (LINKTYPE_IPV4) TCP segment from 192.0.2.10:`port` to 198.51.100.20:3389
    /// carrying `payload` bytes, each the frame number's low byte.
    static func frame(port: UInt16, number: Int, payload: Int) -> [UInt8] {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        let tcp: [UInt8] = be16(Int(port)) + be16(3389) + [0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]
        let body = [UInt8](repeating: UInt8(truncatingIfNeeded: number), count: payload)
        return [0x45, 0] + be16(20 + tcp.count + body.count) + [0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 10, 198, 51, 100, 20]
            + tcp + body
    }

    static func add(_ hold: FrameHold, port: UInt16, number: Int, payload: Int) {
        let bytes = frame(port: port, number: number, payload: payload)
        bytes.withUnsafeBytes { raw in
            var decoded = DecodedPacket()
            PacketDecoder.decode(raw, linkType: LinkType.ipv4, into: &decoded)
            hold.add(
                decoded,
                RawPacket(
                    frameNumber: number, timestamp: Timestamp(nanoseconds: Int64(number) * 1_000_000), capturedLength: raw.count,
                    originalLength: raw.count, linkType: LinkType.ipv4, bytes: raw))
        }
    }

    static func key(_ port: UInt16) -> FlowKey {
        FlowKey(Endpoint(IPAddress("192.0.2.10")!, port), Endpoint(IPAddress("198.51.100.20")!, 3389))
    }

    static func numbers(_ held: HeldFrames) throws -> [Int] {
        let source = held.source(name: "test")
        var out: [Int] = []
        while let p = try source.next() {
            // Byte for byte as it came: the payload repeats the frame number.
            #expect(Array(p.bytes) == frame(port: 50000, number: p.frameNumber, payload: p.bytes.count - 40))
            out.append(p.frameNumber)
        }
        return out
    }

    @Test func oneConnectionKeepsItsFirstAndLatestFrames() throws {
        var limits = FrameHoldLimits()
        limits.perSession = 64 << 10
        limits.total = 64 << 10
        let hold = FrameHold(limits: limits, snapshotLength: 65535)
        for n in 1...3000 { Self.add(hold, port: 50000, number: n, payload: 60 + n % 200) }
        let held = try #require(hold.take(Self.key(50000), first: FrameRef(frame: 1, time: Timestamp(nanoseconds: 0)),
                                          last: FrameRef(frame: 3000, time: Timestamp(nanoseconds: 3_000_000_000))))
        let kept = try Self.numbers(held)
        #expect(kept.first == 1 && kept.last == 3000)
        #expect(kept == kept.sorted() && Set(kept).count == kept.count)
        // The head is contiguous from the first frame, then a gap, then the latest frames.
        let head = kept.prefix { $0 == kept.firstIndex(of: $0)! + 1 }
        #expect(head.count > 20 && head.count < kept.count)
        let tail = kept.dropFirst(head.count)
        #expect(Array(tail) == Array(tail.first!...3000), "the ring holds the latest frames without a hole")
        let bytes = kept.reduce(0) { $0 + 40 + 60 + $1 % 200 + FrameHold.header }
        #expect(bytes <= 64 << 10)
        #expect(hold.stats.framesEvicted == 3000 - kept.count)
        #expect(hold.take(Self.key(50000), first: FrameRef(frame: 1, time: Timestamp(nanoseconds: 0)),
                          last: FrameRef(frame: 3000, time: Timestamp(nanoseconds: 0))) == nil, "taken once")
    }

    @Test func theQuietestConnectionGivesItsSlotUp() throws {
        var limits = FrameHoldLimits()
        limits.perSession = 64 << 10
        limits.total = 128 << 10
        let hold = FrameHold(limits: limits, snapshotLength: 65535)
        #expect(hold.connections == 2)
        Self.add(hold, port: 50001, number: 1, payload: 10)
        Self.add(hold, port: 50002, number: 2, payload: 10)
        Self.add(hold, port: 50001, number: 3, payload: 10)
        Self.add(hold, port: 50003, number: 4, payload: 10)
        #expect(hold.stats.sessionsEvicted == 1)
        let first = FrameRef(frame: 1, time: Timestamp(nanoseconds: 0))
        let last = FrameRef(frame: 4, time: Timestamp(nanoseconds: 4_000_000))
        #expect(hold.take(Self.key(50002), first: first, last: last) == nil, "the quietest connection lost its frames")
        #expect(hold.take(Self.key(50001), first: first, last: last)?.count == 2)
        #expect(hold.take(Self.key(50003), first: first, last: last)?.count == 1)
    }

    @Test func aFrameLargerThanTheRingIsCounted() {
        var limits = FrameHoldLimits()
        limits.perSession = 64 << 10
        limits.total = 64 << 10
        let hold = FrameHold(limits: limits, snapshotLength: 262_144)
        Self.add(hold, port: 50000, number: 1, payload: 100)
        Self.add(hold, port: 50000, number: 2, payload: 65_535 - 40)
        #expect(hold.stats.framesTooLarge == 1)
        Self.add(hold, port: 50000, number: 3, payload: 30_000)
        #expect(hold.stats.framesTooLarge == 1)
    }

    /// Beside the connections, only ICMP errors (and DNS) are held: an echo request, ICMPv4 as
    /// well as ICMPv6, takes no room in the side ring.
    @Test func onlyICMPErrorsAreHeldBesideTheConnections() throws {
        var limits = FrameHoldLimits()
        limits.perSession = 64 << 10
        limits.total = 64 << 10
        let hold = FrameHold(limits: limits, snapshotLength: 65535)
        func icmp(_ number: Int, type: UInt8, code: UInt8) {
            // 198.51.100.1 to 192.0.2.10; an error quotes an IP header and 8 bytes.
            let body: [UInt8] = [type, code, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 28)
            let bytes: [UInt8] = [0x45, 0, 0, UInt8(20 + body.count), 0, 1, 0x40, 0, 64, 1, 0, 0, 198, 51, 100, 1, 192, 0, 2, 10] + body
            bytes.withUnsafeBytes { raw in
                var decoded = DecodedPacket()
                PacketDecoder.decode(raw, linkType: LinkType.ipv4, into: &decoded)
                hold.add(
                    decoded,
                    RawPacket(
                        frameNumber: number, timestamp: Timestamp(nanoseconds: Int64(number) * 1_000_000),
                        capturedLength: raw.count, originalLength: raw.count, linkType: LinkType.ipv4, bytes: raw))
            }
        }
        Self.add(hold, port: 50000, number: 1, payload: 10)
        icmp(2, type: 8, code: 0)  // echo request
        icmp(3, type: 3, code: 13)  // destination unreachable, administratively prohibited
        Self.add(hold, port: 50000, number: 4, payload: 10)
        let held = try #require(hold.take(Self.key(50000), first: FrameRef(frame: 1, time: Timestamp(nanoseconds: 0)),
                                          last: FrameRef(frame: 4, time: Timestamp(nanoseconds: 4_000_000))))
        let source = held.source(name: "test")
        var numbers: [Int] = []
        while let p = try source.next() { numbers.append(p.frameNumber) }
        #expect(numbers.sorted() == [1, 3, 4])
    }
}
