import TestSupport
import Testing
import TriageCapture

@testable import TriageDecoding

/// Byte-literal frames. Checksums are zero: the decoder does not verify them (captures
/// taken on the sending host carry offloaded, wrong checksums anyway).
enum Frames {
    static let ethernetHeader: [UInt8] = [
        0x02, 0, 0, 0, 0, 0x02,  // destination
        0x02, 0, 0, 0, 0, 0x01,  // source
    ]

    /// IPv4 192.0.2.10 → 198.51.100.20, TTL 64, ID 0x1234, DF.
    static func ipv4(proto: UInt8, payload: [UInt8], ttl: UInt8 = 64, options: [UInt8] = [], fragment: UInt16 = 0x4000)
        -> [UInt8]
    {
        let ihl = (20 + options.count) / 4
        let total = 20 + options.count + payload.count
        return [0x40 | UInt8(ihl), 0x00, UInt8(total >> 8), UInt8(total & 0xff), 0x12, 0x34,
                UInt8(fragment >> 8), UInt8(fragment & 0xff), ttl, proto, 0, 0,
                192, 0, 2, 10, 198, 51, 100, 20] + options + payload
    }

    /// TCP 43210 → 3389 SYN, seq 0x01020304, with MSS 1460, SACK permitted, timestamps, window scale 7.
    static let tcpSYN: [UInt8] = [
        0xA8, 0xCA, 0x0D, 0x3D,  // ports 43210 → 3389
        0x01, 0x02, 0x03, 0x04,  // seq
        0x00, 0x00, 0x00, 0x00,  // ack
        0xA0, 0x02, 0xFA, 0xF0,  // data offset 10 words, SYN, window 64240
        0x00, 0x00, 0x00, 0x00,  // checksum, urgent
        0x02, 0x04, 0x05, 0xB4,  // MSS 1460
        0x04, 0x02,  // SACK permitted
        0x08, 0x0A, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,  // timestamps 4096, 0
        0x01,  // NOP
        0x03, 0x03, 0x07,  // window scale 7
    ]

    static func tcp(flags: UInt8, seq: UInt32 = 100, ack: UInt32 = 0, payload: [UInt8] = [], sport: UInt16 = 43210,
                    dport: UInt16 = 3389) -> [UInt8]
    {
        [UInt8(sport >> 8), UInt8(sport & 0xff), UInt8(dport >> 8), UInt8(dport & 0xff),
         UInt8(seq >> 24), UInt8(seq >> 16 & 0xff), UInt8(seq >> 8 & 0xff), UInt8(seq & 0xff),
         UInt8(ack >> 24), UInt8(ack >> 16 & 0xff), UInt8(ack >> 8 & 0xff), UInt8(ack & 0xff),
         0x50, flags, 0x10, 0x00, 0, 0, 0, 0] + payload
    }

    static func ethernet(_ ip: [UInt8], type: [UInt8] = [0x08, 0x00]) -> [UInt8] { ethernetHeader + type + ip }

    /// X.224 Connection Request with cookie and RDP_NEG_REQ (TLS|HYBRID), as mstsc sends it.
    static let connectionRequest: [UInt8] =
        [0x03, 0x00, 0x00, 0x2a, 0x25, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00] + Array("Cookie: mstshash=alice\r\n".utf8)
        + [0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00]
}

func decode(_ bytes: [UInt8], _ link: LinkType) -> DecodedPacket {
    var p = DecodedPacket()
    bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: link, into: &p) }
    return p
}

@Suite struct DecoderTests {
    @Test func ethernetIPv4TCPSYNWithOptions() {
        let p = decode(Frames.ethernet(Frames.ipv4(proto: 6, payload: Frames.tcpSYN)), .ethernet)
        #expect(p.problem == .none)
        #expect(p.network == .ipv4)
        #expect(p.source.description == "192.0.2.10")
        #expect(p.destination.description == "198.51.100.20")
        #expect(p.ttl == 64)
        #expect(p.ipID == 0x1234)
        #expect(p.dontFragment)
        #expect(!p.isFragment)
        #expect(p.transport == 6)
        #expect(p.tcp.sourcePort == 43210)
        #expect(p.tcp.destinationPort == 3389)
        #expect(p.tcp.sequence == 0x0102_0304)
        #expect(p.tcp.flags == .syn)
        #expect(p.tcp.window == 64240)
        #expect(p.tcp.options.mss == 1460)
        #expect(p.tcp.options.sackPermitted)
        #expect(p.tcp.options.timestampValue == 4096)
        #expect(p.tcp.options.windowScale == 7)
        #expect(!p.tcp.options.malformed)
        #expect(p.payloadLength == 0)
        #expect(!p.truncated)
    }

    @Test func payloadOffsetAndEthernetPaddingIgnored() {
        let payload: [UInt8] = [1, 2, 3]
        var frame = Frames.ethernet(Frames.ipv4(proto: 6, payload: Frames.tcp(flags: 0x18, payload: payload)))
        frame += [0, 0, 0, 0, 0, 0]  // Ethernet padding after the IP datagram
        let p = decode(frame, .ethernet)
        #expect(p.payloadLength == 3)
        #expect(p.payloadWireLength == 3)
        #expect(Array(frame[p.payloadOffset..<(p.payloadOffset + 3)]) == payload)
    }

    @Test func vlanAndQinQTags() {
        let ip = Frames.ipv4(proto: 6, payload: Frames.tcpSYN)
        let single = Frames.ethernetHeader + [0x81, 0x00, 0x00, 0x64, 0x08, 0x00] + ip
        let double = Frames.ethernetHeader + [0x88, 0xA8, 0x00, 0x0A, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00] + ip
        #expect(decode(single, .ethernet).vlanCount == 1)
        #expect(decode(single, .ethernet).tcp.destinationPort == 3389)
        #expect(decode(double, .ethernet).vlanCount == 2)
        #expect(decode(double, .ethernet).tcp.options.mss == 1460)
    }

    @Test func linuxCookedV1AndV2() {
        let ip = Frames.ipv4(proto: 6, payload: Frames.tcpSYN)
        // SLL: packet type, ARPHRD_ETHER, address length 6, address (8), protocol.
        let sll: [UInt8] = [0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00] + ip
        // SLL2: protocol, reserved, interface index, ARPHRD, packet type, address length, address (8).
        let sll2: [UInt8] = [0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x06,
                             2, 0, 0, 0, 0, 1, 0, 0] + ip
        #expect(decode(sll, .linuxSLL).tcp.sequence == 0x0102_0304)
        #expect(decode(sll2, .linuxSLL2).tcp.sequence == 0x0102_0304)
    }

    @Test func bsdLoopbackBothByteOrders() {
        let ip = Frames.ipv4(proto: 6, payload: Frames.tcpSYN)
        #expect(decode([2, 0, 0, 0] + ip, .null).network == .ipv4)
        #expect(decode([0, 0, 0, 2] + ip, .loop).network == .ipv4)
        #expect(decode([9, 0, 0, 0] + ip, .null).problem == .notIP)
    }

    /// IPv6 with hop-by-hop and destination options before TCP.
    static let ipv6WithExtensions: [UInt8] = {
        let tcp = Frames.tcp(flags: 0x02, seq: 7)
        let hop: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]  // next: destination options, len 0 (8 bytes), PadN
        let dst: [UInt8] = [6, 0, 1, 4, 0, 0, 0, 0]  // next: TCP
        let body = hop + dst + tcp
        let header: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(body.count), 0, 63,
                               0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
                               0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20]
        return header + body
    }()

    @Test func rawIPv6WithExtensionHeaders() {
        let p = decode(Self.ipv6WithExtensions, .raw)
        #expect(p.problem == .none)
        #expect(p.network == .ipv6)
        #expect(p.source.description == "2001:db8:1::10")
        #expect(p.destination.description == "2001:db8:2::20")
        #expect(p.ttl == 63)
        #expect(p.transport == 6)
        #expect(p.tcp.sequence == 7)
    }

    @Test func ipv4FragmentsAreFlagged() {
        let first = decode(Frames.ethernet(Frames.ipv4(proto: 6, payload: Frames.tcpSYN, fragment: 0x2000)), .ethernet)
        #expect(first.isFragment)
        #expect(first.problem == .none)
        #expect(first.tcp.destinationPort == 3389)
        let later = decode(Frames.ethernet(Frames.ipv4(proto: 6, payload: [1, 2, 3, 4, 5, 6, 7, 8], fragment: 0x0003)), .ethernet)
        #expect(later.isFragment)
        #expect(later.fragmentOffset == 3)
        #expect(later.problem == .laterFragment)
        #expect(later.problem.blocksTransport)
    }

    @Test func ipv4OptionsAreSkipped() {
        let p = decode(Frames.ethernet(Frames.ipv4(proto: 6, payload: Frames.tcpSYN, options: [0x94, 0x04, 0, 0])), .ethernet)
        #expect(p.ipOptionsLength == 4)
        #expect(p.tcp.options.mss == 1460)
    }

    @Test func icmpUnreachableQuotesTheSYN() {
        // Router 192.0.2.1 → client: type 3 code 13, quoting the client's SYN (IP header + 8 bytes).
        let quoted = Array(Frames.ipv4(proto: 6, payload: Frames.tcpSYN).prefix(28))
        let icmp: [UInt8] = [3, 13, 0, 0, 0, 0, 0, 0] + quoted
        var ip = Frames.ipv4(proto: 1, payload: icmp)
        ip[12...15] = [192, 0, 2, 1]
        ip[16...19] = [192, 0, 2, 10]
        let p = decode(Frames.ethernet(ip), .ethernet)
        #expect(p.transport == 1)
        #expect(p.icmp.isError)
        #expect(p.icmp.type == 3)
        #expect(p.icmp.code == 13)
        let q = p.icmp.quoted
        #expect(q?.source.description == "192.0.2.10")
        #expect(q?.destination.description == "198.51.100.20")
        #expect(q?.sourcePort == 43210)
        #expect(q?.destinationPort == 3389)
        #expect(q?.tcpSequence == 0x0102_0304)
    }

    @Test func icmpFragmentationNeededCarriesMTU() {
        let quoted = Array(Frames.ipv4(proto: 6, payload: Frames.tcpSYN).prefix(28))
        let icmp: [UInt8] = [3, 4, 0, 0, 0, 0, 0x02, 0x40] + quoted
        let p = decode(Frames.ethernet(Frames.ipv4(proto: 1, payload: icmp)), .ethernet)
        #expect(p.icmp.mtu == 576)
    }

    @Test func icmpv6DestinationUnreachable() {
        let inner = Array(Self.ipv6WithExtensions.prefix(40 + 16 + 8))
        let icmp: [UInt8] = [1, 1, 0, 0, 0, 0, 0, 0] + inner
        let header: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(icmp.count), 58, 64,
                               0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
                               0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]
        let p = decode(header + icmp, .ipv6)
        #expect(p.icmp.isV6)
        #expect(p.icmp.isError)
        #expect(p.icmp.code == 1)
        #expect(p.icmp.quoted?.destinationPort == 3389)
        #expect(p.icmp.quoted?.proto == 6)
        #expect(p.icmp.quoted?.tcpSequence == 7)
    }

    @Test func snapshotLengthCutIsFlaggedNotFatal() {
        let full = Frames.ethernet(Frames.ipv4(proto: 6, payload: Frames.tcp(flags: 0x18, payload: Frames.connectionRequest)))
        let cut = Array(full.prefix(14 + 20 + 20 + 5))
        let p = decode(cut, .ethernet)
        #expect(p.truncated)
        #expect(p.problem == .none)
        #expect(p.payloadLength == 5)
        #expect(p.payloadWireLength == Frames.connectionRequest.count)
    }

    @Test func tcpHeaderCutInsideOptionsStillGivesPorts() {
        let full = Frames.ethernet(Frames.ipv4(proto: 6, payload: Frames.tcpSYN))
        let p = decode(Array(full.prefix(14 + 20 + 22)), .ethernet)
        #expect(p.truncated)
        #expect(p.tcp.destinationPort == 3389)
        #expect(p.tcp.flags == .syn)
        #expect(p.tcp.options.mss == nil)
    }

    @Test func badLengthsAreMalformedNotTraps() {
        var ip = Frames.ipv4(proto: 6, payload: Frames.tcpSYN)
        ip[2] = 0
        ip[3] = 10  // total length shorter than the header
        #expect(decode(Frames.ethernet(ip), .ethernet).problem == .badIPHeader)
        var tcp = Frames.tcpSYN
        tcp[12] = 0x30  // data offset 3 words
        #expect(decode(Frames.ethernet(Frames.ipv4(proto: 6, payload: tcp)), .ethernet).problem == .badTransportHeader)
        var opts = Frames.tcpSYN
        opts[21] = 40  // MSS option claims 40 bytes
        #expect(decode(Frames.ethernet(Frames.ipv4(proto: 6, payload: opts)), .ethernet).tcp.options.malformed)
    }

    @Test func unsupportedLinkTypeIsReported() {
        #expect(decode([1, 2, 3], LinkType(rawValue: 147)).problem == .unsupportedLinkType)
    }

    @Test(arguments: [LinkType.ethernet, .linuxSLL, .linuxSLL2, .null, .raw, .ipv6])
    func everyPrefixDecodesWithoutTrapping(_ link: LinkType) {
        let ip = Frames.ipv4(proto: 6, payload: Frames.tcpSYN + Frames.connectionRequest)
        let frame: [UInt8]
        switch link {
        case .ethernet: frame = Frames.ethernet(ip)
        case .linuxSLL: frame = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00] + ip
        case .linuxSLL2: frame = [0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0] + ip
        case .null: frame = [2, 0, 0, 0] + ip
        case .ipv6: frame = Self.ipv6WithExtensions
        default: frame = ip
        }
        for n in 0..<frame.count {
            let p = decode(Array(frame.prefix(n)), link)
            #expect(p.truncated || p.problem != .none, "prefix of \(n) bytes")
        }
        let whole = decode(frame, link)
        #expect(!whole.truncated && whole.problem == .none)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix(seed: 0x5eed)
        let links: [LinkType] = [.ethernet, .linuxSLL, .linuxSLL2, .null, .loop, .raw, .ipv4, .ipv6]
        var decodedTransport = 0
        for i in 0..<20_000 {
            let n = Int(rng.next() % 200)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var link = links[i % links.count]
            // Half the inputs are IPv4 datagrams with a random payload and two bytes changed
            // anywhere, so the transport decoders are reached; a TCP header gets a plausible
            // data offset.
            if n > 40 && i % 2 == 0 {
                let proto: UInt8 = [1, 6, 17, 58][(i / 2) % 4]
                var payload = Array(bytes[20...])
                if proto == 6 { payload[12] = 0x50 }
                bytes = Frames.ipv4(proto: proto, payload: payload)
                for _ in 0..<2 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                link = .raw
            }
            let p = decode(bytes, link)
            // Whatever was decoded lies inside the captured bytes, layers in order.
            #expect(p.payloadOffset >= 0 && p.payloadLength >= 0 && p.payloadOffset + p.payloadLength <= bytes.count, "input \(i)")
            if p.problem == .none && (p.transport == 6 || p.transport == 17) {
                #expect(p.networkOffset < p.transportOffset && p.transportOffset < p.payloadOffset, "input \(i)")
                #expect(p.network == .ipv4 || p.network == .ipv6, "input \(i)")
                decodedTransport += 1
            }
        }
        #expect(decodedTransport > 100, "enough inputs reach TCP/UDP for the checks to mean something")
    }
}

