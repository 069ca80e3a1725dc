import TriageCapture

/// Decodes a captured frame, link layer to transport, into a `DecodedPacket` in place.
///
/// A pure function of the bytes: no allocation, no state, no trap on any input.
/// It decodes as far as the bytes go and records where and why it stopped.
public enum PacketDecoder {
    /// Ethertypes (IEEE 802) we follow.
    enum EtherType {
        static let ipv4: UInt16 = 0x0800
        static let ipv6: UInt16 = 0x86DD
        static let vlan: UInt16 = 0x8100  // 802.1Q
        static let qinq: UInt16 = 0x88A8  // 802.1ad
        static let qinqOld: UInt16 = 0x9100
    }

    /// The most VLAN tags we walk through before calling the frame malformed.
    static let maxVLANTags = 8
    /// The most IPv6 extension headers we walk through.
    static let maxExtensionHeaders = 16

    public static func decode(_ bytes: UnsafeRawBufferPointer, linkType: LinkType, into p: inout DecodedPacket) {
        p = DecodedPacket()
        var c = ByteCursor(bytes)
        switch linkType {
        case .ethernet:
            guard c.skip(12), var type = c.readUInt16BE() else { return fail(&p, .truncatedLink) }
            var tags = 0
            while type == EtherType.vlan || type == EtherType.qinq || type == EtherType.qinqOld {
                tags += 1
                guard tags <= maxVLANTags else { return fail(&p, .notIP) }
                guard c.skip(2), let inner = c.readUInt16BE() else { return fail(&p, .truncatedLink) }
                type = inner
            }
            p.vlanCount = UInt8(tags)
            decodeEtherPayload(type: type, &c, &p)
        case .linuxSLL:
            guard c.skip(14), let type = c.readUInt16BE() else { return fail(&p, .truncatedLink) }
            decodeEtherPayload(type: type, &c, &p)
        case .linuxSLL2:
            guard let type = c.readUInt16BE(), c.skip(18) else { return fail(&p, .truncatedLink) }
            decodeEtherPayload(type: type, &c, &p)
        case .null, .loop:
            guard let b0 = c.readUInt8(), let b1 = c.readUInt8(), let b2 = c.readUInt8(), let b3 = c.readUInt8() else {
                return fail(&p, .truncatedLink)
            }
            // The family is in the capturing host's byte order for NULL; accept either order.
            let le = UInt32(b0) | UInt32(b1) << 8 | UInt32(b2) << 16 | UInt32(b3) << 24
            let be = UInt32(b3) | UInt32(b2) << 8 | UInt32(b1) << 16 | UInt32(b0) << 24
            let family = le < 256 ? le : be
            switch family {
            case 2: decodeIPv4(&c, &p)
            case 10, 24, 28, 30: decodeIPv6(&c, &p)
            default: fail(&p, .notIP)
            }
        case .raw, .rawOpenBSD, .ipv4, .ipv6:
            guard let first = c.peekUInt8() else { return fail(&p, .truncatedIP) }
            switch first >> 4 {
            case 4: decodeIPv4(&c, &p)
            case 6: decodeIPv6(&c, &p)
            default: fail(&p, .notIP)
            }
        default:
            fail(&p, .unsupportedLinkType)
        }
    }

    @inline(__always)
    static func fail(_ p: inout DecodedPacket, _ problem: DecodeProblem) {
        p.problem = problem
        if problem == .truncatedLink || problem == .truncatedIP || problem == .truncatedTransport {
            p.truncated = true
        }
    }

    static func decodeEtherPayload(type: UInt16, _ c: inout ByteCursor, _ p: inout DecodedPacket) {
        switch type {
        case EtherType.ipv4: decodeIPv4(&c, &p)
        case EtherType.ipv6: decodeIPv6(&c, &p)
        default: fail(&p, .notIP)
        }
    }

    /// RFC 791 section 3.1.
    static func decodeIPv4(_ c: inout ByteCursor, _ p: inout DecodedPacket) {
        p.network = .ipv4
        p.networkOffset = c.offset
        guard let vihl = c.peekUInt8() else { return fail(&p, .truncatedIP) }
        guard vihl >> 4 == 4 else { return fail(&p, .badIPHeader) }
        let headerLength = Int(vihl & 0x0f) * 4
        guard headerLength >= 20 else { return fail(&p, .badIPHeader) }
        guard c.remaining >= 20,
            let totalLength = c.peekUInt16BE(at: 2),
            let id = c.peekUInt16BE(at: 4),
            let fragField = c.peekUInt16BE(at: 6),
            let ttl = c.peekUInt8(at: 8),
            let proto = c.peekUInt8(at: 9),
            let src = c.peekUInt32BE(at: 12),
            let dst = c.peekUInt32BE(at: 16)
        else { return fail(&p, .truncatedIP) }
        p.source = IPAddress(ipv4: src)
        p.destination = IPAddress(ipv4: dst)
        p.ttl = ttl
        p.ipID = UInt32(id)
        p.transport = proto
        p.dontFragment = fragField & 0x4000 != 0
        let moreFragments = fragField & 0x2000 != 0
        p.fragmentOffset = fragField & 0x1fff
        p.isFragment = moreFragments || p.fragmentOffset != 0
        p.ipOptionsLength = UInt16(headerLength - 20)
        guard Int(totalLength) >= headerLength else { return fail(&p, .badIPHeader) }
        guard c.remaining >= headerLength else { return fail(&p, .truncatedIP) }
        // The datagram ends at its total length (Ethernet may pad short frames) or where
        // the capture was cut.
        let wirePayload = Int(totalLength) - headerLength
        let start = c.offset + headerLength
        let capturedEnd = min(c.end, c.offset + Int(totalLength))
        if c.offset + Int(totalLength) > c.end { p.truncated = true }
        var body = ByteCursor(c.base, from: start, to: capturedEnd)
        if p.fragmentOffset != 0 {
            p.payloadOffset = start
            p.payloadLength = body.remaining
            p.payloadWireLength = wirePayload
            return fail(&p, .laterFragment)
        }
        decodeTransport(proto: proto, wirePayload: wirePayload, &body, &p)
    }

    /// RFC 8200 sections 3 and 4.
    static func decodeIPv6(_ c: inout ByteCursor, _ p: inout DecodedPacket) {
        p.network = .ipv6
        p.networkOffset = c.offset
        guard let v = c.peekUInt8() else { return fail(&p, .truncatedIP) }
        guard v >> 4 == 6 else { return fail(&p, .badIPHeader) }
        guard c.remaining >= 40,
            let payloadLength = c.peekUInt16BE(at: 4),
            let nextHeader = c.peekUInt8(at: 6),
            let hopLimit = c.peekUInt8(at: 7),
            let s0 = c.peekUInt32BE(at: 8), let s1 = c.peekUInt32BE(at: 12),
            let s2 = c.peekUInt32BE(at: 16), let s3 = c.peekUInt32BE(at: 20),
            let d0 = c.peekUInt32BE(at: 24), let d1 = c.peekUInt32BE(at: 28),
            let d2 = c.peekUInt32BE(at: 32), let d3 = c.peekUInt32BE(at: 36)
        else { return fail(&p, .truncatedIP) }
        p.source = IPAddress(ipv6High: UInt64(s0) << 32 | UInt64(s1), low: UInt64(s2) << 32 | UInt64(s3))
        p.destination = IPAddress(ipv6High: UInt64(d0) << 32 | UInt64(d1), low: UInt64(d2) << 32 | UInt64(d3))
        p.ttl = hopLimit
        let start = c.offset + 40
        // Payload length 0 means a jumbogram (RFC 2675): take what was captured.
        let declared = payloadLength == 0 ? c.remaining - 40 : Int(payloadLength)
        if start + declared > c.end { p.truncated = true }
        var body = ByteCursor(c.base, from: start, to: min(c.end, start + declared))
        var wirePayload = declared
        var next = nextHeader
        var walked = 0
        while true {
            switch next {
            case 0, 43, 60:  // hop-by-hop, routing, destination options
                guard let nh = body.peekUInt8(), let len = body.peekUInt8(at: 1) else {
                    return fail(&p, .truncatedIP)
                }
                let size = (Int(len) + 1) * 8
                guard body.skip(size) else { return fail(&p, .truncatedIP) }
                wirePayload -= size
                next = nh
            case 44:  // fragment
                guard let nh = body.peekUInt8(), let off = body.peekUInt16BE(at: 2), let id = body.peekUInt32BE(at: 4)
                else { return fail(&p, .truncatedIP) }
                _ = body.skip(8)
                wirePayload -= 8
                p.isFragment = true
                p.fragmentOffset = off >> 3
                p.ipID = id
                next = nh
                if p.fragmentOffset != 0 {
                    p.transport = next
                    p.payloadOffset = body.offset
                    p.payloadLength = body.remaining
                    p.payloadWireLength = max(0, wirePayload)
                    return fail(&p, .laterFragment)
                }
            case 51:  // authentication header, length in 4-octet units minus 2
                guard let nh = body.peekUInt8(), let len = body.peekUInt8(at: 1) else {
                    return fail(&p, .truncatedIP)
                }
                let size = (Int(len) + 2) * 4
                guard body.skip(size) else { return fail(&p, .truncatedIP) }
                wirePayload -= size
                next = nh
            default:
                p.transport = next
                guard wirePayload >= 0 else { return fail(&p, .badIPHeader) }
                decodeTransport(proto: next, wirePayload: wirePayload, &body, &p)
                return
            }
            walked += 1
            if walked > maxExtensionHeaders { return fail(&p, .badIPHeader) }
        }
    }

    static func decodeTransport(proto: UInt8, wirePayload: Int, _ c: inout ByteCursor, _ p: inout DecodedPacket) {
        p.transportOffset = c.offset
        switch proto {
        case IPProto.tcp: decodeTCP(wirePayload: wirePayload, &c, &p)
        case IPProto.udp: decodeUDP(wirePayload: wirePayload, &c, &p)
        case IPProto.icmp: decodeICMP(v6: false, &c, &p)
        case IPProto.icmpv6: decodeICMP(v6: true, &c, &p)
        default:
            p.payloadOffset = c.offset
            p.payloadLength = c.remaining
            p.payloadWireLength = wirePayload
        }
    }

    /// RFC 9293 section 3.1.
    static func decodeTCP(wirePayload: Int, _ c: inout ByteCursor, _ p: inout DecodedPacket) {
        guard wirePayload >= 20 else { return fail(&p, .badTransportHeader) }
        guard let sport = c.peekUInt16BE(), let dport = c.peekUInt16BE(at: 2),
            let seq = c.peekUInt32BE(at: 4), let ack = c.peekUInt32BE(at: 8),
            let offFlags = c.peekUInt16BE(at: 12), let window = c.peekUInt16BE(at: 14)
        else { return fail(&p, .truncatedTransport) }
        var h = TCPHeader()
        h.sourcePort = sport
        h.destinationPort = dport
        h.sequence = seq
        h.acknowledgment = ack
        h.window = window
        h.flags = TCPFlags(rawValue: UInt8(truncatingIfNeeded: offFlags))
        let headerLength = Int(offFlags >> 12) * 4
        h.headerLength = UInt8(headerLength)
        p.tcp = h
        guard headerLength >= 20 else { return fail(&p, .badTransportHeader) }
        guard wirePayload >= headerLength else { return fail(&p, .badTransportHeader) }
        guard var options = c.peekSlice(headerLength) else {
            // The snapshot length cut the options: ports, numbers and flags are still good.
            p.truncated = true
            var rest = c.readRest()
            _ = rest.skip(20)
            decodeTCPOptions(&rest, &p.tcp.options)
            p.payloadOffset = c.offset
            p.payloadLength = 0
            p.payloadWireLength = wirePayload - headerLength
            return
        }
        _ = options.skip(20)
        decodeTCPOptions(&options, &p.tcp.options)
        _ = c.skip(headerLength)
        p.payloadOffset = c.offset
        p.payloadLength = c.remaining
        p.payloadWireLength = max(0, wirePayload - headerLength)
        if p.payloadLength > p.payloadWireLength { p.payloadLength = p.payloadWireLength }
    }

    /// RFC 9293 section 3.2, RFC 7323, RFC 2018.
    static func decodeTCPOptions(_ c: inout ByteCursor, _ o: inout TCPOptions) {
        while let kind = c.readUInt8() {
            switch kind {
            case 0: return
            case 1: continue
            default:
                guard let len = c.readUInt8(), len >= 2, let body = c.readSlice(Int(len) - 2) else {
                    o.malformed = true
                    return
                }
                var b = body
                switch kind {
                case 2 where len == 4: o.mss = b.readUInt16BE()
                case 3 where len == 3: o.windowScale = b.readUInt8()
                case 4 where len == 2: o.sackPermitted = true
                case 5 where len >= 10 && (len - 2) % 8 == 0:
                    o.sackBlockCount = (len - 2) / 8
                    if let l = b.readUInt32BE(), let r = b.readUInt32BE() { o.sack1 = (l, r) }
                    if let l = b.readUInt32BE(), let r = b.readUInt32BE() { o.sack2 = (l, r) }
                case 8 where len == 10:
                    o.timestampValue = b.readUInt32BE()
                    o.timestampEcho = b.readUInt32BE()
                case 2, 3, 4, 5, 8:
                    o.malformed = true
                default: break
                }
            }
        }
    }

    /// RFC 768.
    static func decodeUDP(wirePayload: Int, _ c: inout ByteCursor, _ p: inout DecodedPacket) {
        guard let sport = c.readUInt16BE(), let dport = c.readUInt16BE(), let len = c.readUInt16BE(), c.skip(2)
        else { return fail(&p, .truncatedTransport) }
        p.udpSourcePort = sport
        p.udpDestinationPort = dport
        let declared = Int(len) - 8
        guard declared >= 0 else { return fail(&p, .badTransportHeader) }
        p.payloadOffset = c.offset
        p.payloadWireLength = min(declared, max(0, wirePayload - 8))
        p.payloadLength = min(c.remaining, p.payloadWireLength)
    }

    /// RFC 792 and RFC 4443: the header, and for error messages the quoted datagram.
    static func decodeICMP(v6: Bool, _ c: inout ByteCursor, _ p: inout DecodedPacket) {
        guard let type = c.readUInt8(), let code = c.readUInt8(), c.skip(2), let rest = c.readUInt32BE() else {
            return fail(&p, .truncatedTransport)
        }
        var m = ICMPMessage()
        m.isV6 = v6
        m.type = type
        m.code = code
        if v6 {
            m.isError = type >= 1 && type <= 4
            if type == 2 { m.mtu = rest }
        } else {
            m.isError = type == 3 || type == 4 || type == 5 || type == 11 || type == 12
            if type == 3 && code == 4 { m.mtu = rest & 0xffff }
        }
        p.payloadOffset = c.offset
        p.payloadLength = c.remaining
        p.payloadWireLength = c.remaining
        if m.isError {
            m.quoted = decodeQuoted(&c)
        }
        p.icmp = m
    }

    /// The datagram inside an ICMP error: its IP header and the first transport bytes.
    /// Quoted datagrams are cut short on purpose, so their length fields are not trusted.
    static func decodeQuoted(_ c: inout ByteCursor) -> QuotedDatagram? {
        guard let v = c.peekUInt8() else { return nil }
        var q = QuotedDatagram()
        var transport: ByteCursor
        switch v >> 4 {
        case 4:
            let ihl = Int(v & 0x0f) * 4
            guard ihl >= 20, let proto = c.peekUInt8(at: 9), let s = c.peekUInt32BE(at: 12),
                let d = c.peekUInt32BE(at: 16), c.remaining >= ihl
            else { return nil }
            q.proto = proto
            q.source = IPAddress(ipv4: s)
            q.destination = IPAddress(ipv4: d)
            transport = ByteCursor(c.base, from: c.offset + ihl, to: c.end)
        case 6:
            guard c.remaining >= 40, var next = c.peekUInt8(at: 6),
                let s0 = c.peekUInt32BE(at: 8), let s1 = c.peekUInt32BE(at: 12),
                let s2 = c.peekUInt32BE(at: 16), let s3 = c.peekUInt32BE(at: 20),
                let d0 = c.peekUInt32BE(at: 24), let d1 = c.peekUInt32BE(at: 28),
                let d2 = c.peekUInt32BE(at: 32), let d3 = c.peekUInt32BE(at: 36)
            else { return nil }
            q.source = IPAddress(ipv6High: UInt64(s0) << 32 | UInt64(s1), low: UInt64(s2) << 32 | UInt64(s3))
            q.destination = IPAddress(ipv6High: UInt64(d0) << 32 | UInt64(d1), low: UInt64(d2) << 32 | UInt64(d3))
            transport = ByteCursor(c.base, from: c.offset + 40, to: c.end)
            var walked = 0
            extensionLoop: while walked < maxExtensionHeaders {
                walked += 1
                switch next {
                case 0, 43, 60:
                    guard let nh = transport.peekUInt8(), let len = transport.peekUInt8(at: 1),
                        transport.skip((Int(len) + 1) * 8)
                    else { break extensionLoop }
                    next = nh
                case 44:
                    guard let nh = transport.peekUInt8(), transport.skip(8) else { break extensionLoop }
                    next = nh
                default: break extensionLoop
                }
            }
            q.proto = next
        default:
            return nil
        }
        if let sp = transport.peekUInt16BE(), let dp = transport.peekUInt16BE(at: 2),
            q.proto == IPProto.tcp || q.proto == IPProto.udp
        {
            q.sourcePort = sp
            q.destinationPort = dp
            q.hasPorts = true
            if q.proto == IPProto.tcp { q.tcpSequence = transport.peekUInt32BE(at: 4) }
        }
        return q
    }
}
