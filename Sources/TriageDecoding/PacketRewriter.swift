import TriageCapture

/// How to disguise a frame before it leaves in an exported capture: pseudonyms for
/// addresses, and for names at the places parsers found them (a DNS name here, a cookie or
/// certificate name in `PayloadEdit`s), written with the same length so no length field or
/// sequence number changes. Nothing is found by searching a payload for a name's text: a
/// short name would match inside unrelated bytes.
public struct PacketRewrite {
    public var address: (IPAddress) -> IPAddress
    /// Replacement for a six-byte MAC address (Ethernet, Linux cooked headers).
    public var mac: ([UInt8]) -> [UInt8]
    /// The pseudonym of a name (`host-3`); `NameField.replacement` fits it to the field.
    public var name: (NameField) -> String

    public init(address: @escaping (IPAddress) -> IPAddress, mac: @escaping ([UInt8]) -> [UInt8],
                name: @escaping (NameField) -> String) {
        self.address = address
        self.mac = mac
        self.name = name
    }
}

/// Bytes to write over a frame's transport payload, at an offset into that payload
/// (negative when the field began in an earlier segment); only the part inside is written.
public struct PayloadEdit: Sendable, Equatable {
    public var offset: Int
    public var bytes: [UInt8]
    public init(offset: Int, bytes: [UInt8]) {
        self.offset = offset
        self.bytes = bytes
    }
}

/// Rewrites a captured frame in place. The frame keeps its length; IPv4 header, TCP, UDP,
/// ICMP and ICMPv6 checksums are recomputed when the datagram was captured whole.
public enum PacketRewriter {
    public static func rewrite(_ frame: inout [UInt8], linkType: LinkType, _ rw: PacketRewrite, payload edits: [PayloadEdit] = []) {
        var p = DecodedPacket()
        frame.withUnsafeBytes { PacketDecoder.decode($0, linkType: linkType, into: &p) }
        rewriteLinkAddresses(&frame, linkType: linkType, rw)
        guard p.network == .ipv4 || p.network == .ipv6 else { return }
        let net = p.networkOffset
        let v6 = p.network == .ipv6
        rewriteIPAddresses(&frame, at: net, v6: v6, rw)
        if !p.problem.blocksTransport {
            applyEdits(&frame, from: p.payloadOffset, count: p.payloadLength, edits)
        }
        if p.transport == IPProto.udp && !p.problem.blocksTransport && (p.udpSourcePort == 53 || p.udpDestinationPort == 53) {
            rewriteDNSAddresses(&frame, from: p.payloadOffset, count: p.payloadLength, rw)
            rewriteDNSNames(&frame, from: p.payloadOffset, count: p.payloadLength, rw)
        }
        if (p.transport == IPProto.icmp || p.transport == IPProto.icmpv6), p.icmp.isError {
            // The quoted datagram starts right after the 8-byte ICMP header.
            let inner = p.payloadOffset
            if inner < frame.count {
                let innerV6 = frame[inner] >> 4 == 6
                rewriteIPAddresses(&frame, at: inner, v6: innerV6, rw)
                if !innerV6 { fixIPv4HeaderChecksum(&frame, at: inner) }
                fixQuotedChecksum(&frame, at: inner)
            }
        }
        if !v6 { fixIPv4HeaderChecksum(&frame, at: net) }
        if !p.truncated && p.problem == .none && !p.isFragment {
            fixTransportChecksum(&frame, p)
        }
    }

    static func rewriteLinkAddresses(_ f: inout [UInt8], linkType: LinkType, _ rw: PacketRewrite) {
        switch linkType {
        case .ethernet:
            guard f.count >= 12 else { return }
            for start in [0, 6] { f.replaceSubrange(start..<start + 6, with: rw.mac(Array(f[start..<start + 6]))) }
        case .linuxSLL:
            // Address length at 4, address at 6.
            guard f.count >= 16, f[4] == 0, f[5] == 6 else { return }
            f.replaceSubrange(6..<12, with: rw.mac(Array(f[6..<12])))
        case .linuxSLL2:
            guard f.count >= 20, f[11] == 6 else { return }
            f.replaceSubrange(12..<18, with: rw.mac(Array(f[12..<18])))
        default: return
        }
    }

    static func rewriteIPAddresses(_ f: inout [UInt8], at net: Int, v6: Bool, _ rw: PacketRewrite) {
        if v6 {
            guard net + 40 <= f.count else { return }
            for start in [net + 8, net + 24] {
                let a = readIPv6(f, start)
                writeIPv6(&f, start, rw.address(a))
            }
        } else {
            guard net + 20 <= f.count else { return }
            for start in [net + 12, net + 16] {
                var v: UInt32 = 0
                for i in 0..<4 { v = v << 8 | UInt32(f[start + i]) }
                let n = rw.address(IPAddress(ipv4: v)).ipv4
                for i in 0..<4 { f[start + i] = UInt8(truncatingIfNeeded: n >> (24 - 8 * UInt32(i))) }
            }
        }
    }

    /// The addresses in DNS A and AAAA answers.
    static func rewriteDNSAddresses(_ f: inout [UInt8], from start: Int, count: Int, _ rw: PacketRewrite) {
        let end = min(f.count, start + max(0, count))
        guard start >= 0, start < end else { return }
        let records = f.withUnsafeBytes { raw in
            DNSMessage.addressRecordOffsets(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
        }
        for (offset, v6) in records {
            let at = start + offset
            if v6 {
                guard at + 16 <= f.count else { continue }
                writeIPv6(&f, at, rw.address(readIPv6(f, at)))
            } else {
                guard at + 4 <= f.count else { continue }
                var v: UInt32 = 0
                for i in 0..<4 { v = v << 8 | UInt32(f[at + i]) }
                let n = rw.address(IPAddress(ipv4: v)).ipv4
                for i in 0..<4 { f[at + i] = UInt8(truncatingIfNeeded: n >> (24 - 8 * UInt32(i))) }
            }
        }
    }

    static func readIPv6(_ f: [UInt8], _ at: Int) -> IPAddress {
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(f[at + i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(f[at + i]) }
        return IPAddress(ipv6High: hi, low: lo)
    }

    static func writeIPv6(_ f: inout [UInt8], _ at: Int, _ a: IPAddress) {
        for i in 0..<8 { f[at + i] = UInt8(truncatingIfNeeded: a.high >> (56 - 8 * UInt64(i))) }
        for i in 0..<8 { f[at + 8 + i] = UInt8(truncatingIfNeeded: a.low >> (56 - 8 * UInt64(i))) }
    }

    static func applyEdits(_ f: inout [UInt8], from start: Int, count: Int, _ edits: [PayloadEdit]) {
        let end = min(f.count, start + max(0, count))
        guard start >= 0, start < end else { return }
        for e in edits {
            for (i, b) in e.bytes.enumerated() {
                let at = start + e.offset + i
                if at >= start && at < end { f[at] = b }
            }
        }
    }

    /// The names in a DNS message, label by label.
    static func rewriteDNSNames(_ f: inout [UInt8], from start: Int, count: Int, _ rw: PacketRewrite) {
        let end = min(f.count, start + max(0, count))
        guard start >= 0, start < end else { return }
        let fields = f.withUnsafeBytes { raw in DNSMessage.nameFields(UnsafeRawBufferPointer(rebasing: raw[start..<end])) }
        for field in fields.map({ $0.shifted(by: start) }) {
            guard let parts = field.replacement(for: rw.name(field), in: f) else { continue }
            for (r, bytes) in zip(field.ranges, parts) { f.replaceSubrange(r, with: bytes) }
        }
    }

    /// RFC 1071 one's-complement sum.
    static func sum(_ f: [UInt8], _ range: Range<Int>, initial: UInt32 = 0) -> UInt32 {
        var s = initial
        var i = range.lowerBound
        while i + 1 < range.upperBound {
            s &+= UInt32(f[i]) << 8 | UInt32(f[i + 1])
            i += 2
        }
        if i < range.upperBound { s &+= UInt32(f[i]) << 8 }
        return s
    }

    static func fold(_ s: UInt32) -> UInt16 {
        var s = s
        while s >> 16 != 0 { s = (s & 0xffff) &+ (s >> 16) }
        return ~UInt16(s)
    }

    /// The quoted datagram's own transport checksum, when the error quotes it whole.
    static func fixQuotedChecksum(_ f: inout [UInt8], at inner: Int) {
        var quoted = Array(f[inner...])
        var q = DecodedPacket()
        quoted.withUnsafeBytes { PacketDecoder.decode($0, linkType: .raw, into: &q) }
        guard q.problem == .none, !q.truncated, !q.isFragment, q.transport == IPProto.tcp || q.transport == IPProto.udp
        else { return }
        fixTransportChecksum(&quoted, q)
        f.replaceSubrange(inner..<f.count, with: quoted)
    }

    static func fixIPv4HeaderChecksum(_ f: inout [UInt8], at net: Int) {
        guard net + 20 <= f.count else { return }
        let ihl = Int(f[net] & 0x0f) * 4
        guard ihl >= 20, net + ihl <= f.count else { return }
        f[net + 10] = 0
        f[net + 11] = 0
        let c = fold(sum(f, net..<(net + ihl)))
        f[net + 10] = UInt8(c >> 8)
        f[net + 11] = UInt8(c & 0xff)
    }

    static func fixTransportChecksum(_ f: inout [UInt8], _ p: DecodedPacket) {
        let t = p.transportOffset
        let end = p.payloadOffset + p.payloadLength
        guard t < end, end <= f.count else { return }
        let field: Int
        var pseudo = true
        switch p.transport {
        case IPProto.tcp: field = t + 16
        case IPProto.udp: field = t + 6
        case IPProto.icmp:
            field = t + 2
            pseudo = false
        case IPProto.icmpv6: field = t + 2
        default: return
        }
        guard field + 2 <= end else { return }
        f[field] = 0
        f[field + 1] = 0
        var s: UInt32 = 0
        if pseudo {
            let net = p.networkOffset
            let length = UInt32(end - t)
            if p.network == .ipv4 {
                s = sum(f, (net + 12)..<(net + 20)) &+ UInt32(p.transport) &+ length
            } else {
                s = sum(f, (net + 8)..<(net + 40)) &+ (length >> 16) &+ (length & 0xffff) &+ UInt32(p.transport)
            }
        }
        var c = fold(sum(f, t..<end, initial: s))
        if p.transport == IPProto.udp && c == 0 { c = 0xffff }
        f[field] = UInt8(c >> 8)
        f[field + 1] = UInt8(c & 0xff)
    }
}
