import TriageCapture

public enum NetworkProtocol: UInt8, Sendable {
    case none
    case ipv4
    case ipv6
    case other
}

/// IP protocol numbers (IANA) we look at.
public enum IPProto {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let icmpv6: UInt8 = 58
}

/// TCP header flags (RFC 9293 section 3.1).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    // Computed and inlinable rather than stored: other modules test flags on every packet,
    // and a stored static is reached through a lazy-initialisation accessor call each time.
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
}

/// TCP options that matter for diagnosis (RFC 9293, RFC 7323, RFC 2018). Plain values,
/// so decoding options allocates nothing.
public struct TCPOptions: Sendable {
    public var mss: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted = false
    /// Number of SACK blocks and the first two (left, right) edges.
    public var sackBlockCount: UInt8 = 0
    public var sack1: (UInt32, UInt32) = (0, 0)
    public var sack2: (UInt32, UInt32) = (0, 0)
    public var timestampValue: UInt32?
    public var timestampEcho: UInt32?
    /// The option bytes ran past the header or had a bad length.
    public var malformed = false

    public init() {}
}

/// A TCP header (RFC 9293 section 3.1).
public struct TCPHeader: Sendable {
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    public var sequence: UInt32 = 0
    public var acknowledgment: UInt32 = 0
    public var headerLength: UInt8 = 0
    public var flags = TCPFlags()
    public var window: UInt16 = 0
    public var options = TCPOptions()
    public init() {}
}

/// The original datagram quoted inside an ICMP or ICMPv6 error (RFC 792, RFC 4443):
/// enough of its IP and transport headers to find the session it answers.
public struct QuotedDatagram: Sendable {
    public var source = IPAddress.none
    public var destination = IPAddress.none
    public var proto: UInt8 = 0
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    /// TCP sequence number of the quoted segment, when at least 8 transport bytes are quoted.
    public var tcpSequence: UInt32?
    public var hasPorts = false
    public init() {}
}

/// An ICMP or ICMPv6 message. `isError` marks the error types that quote a datagram.
public struct ICMPMessage: Sendable {
    public var isV6 = false
    public var type: UInt8 = 0
    public var code: UInt8 = 0
    public var isError = false
    /// ICMPv4 "fragmentation needed" next-hop MTU, or ICMPv6 "packet too big" MTU.
    public var mtu: UInt32?
    public var quoted: QuotedDatagram?
    public init() {}
}

/// Everything the decoder learned about one frame. It is a plain value filled in place,
/// so the hot path allocates nothing; the payload is an offset into the frame's bytes.
public struct DecodedPacket: Sendable {
    public var network = NetworkProtocol.none
    public var source = IPAddress.none
    public var destination = IPAddress.none
    /// IPv4 TTL or IPv6 hop limit.
    public var ttl: UInt8 = 0
    /// IPv4 identification; for IPv6 the fragment header's identification when present.
    public var ipID: UInt32 = 0
    public var dontFragment = false
    public var ipOptionsLength: UInt16 = 0
    /// The datagram is an IP fragment (first or later); later fragments carry no transport header.
    public var isFragment = false
    public var fragmentOffset: UInt16 = 0
    /// Transport protocol after the IP header and any IPv6 extension headers.
    public var transport: UInt8 = 0
    public var vlanCount: UInt8 = 0
    public var tcp = TCPHeader()
    public var udpSourcePort: UInt16 = 0
    public var udpDestinationPort: UInt16 = 0
    public var icmp = ICMPMessage()
    /// Offsets of the IP header and of the transport header inside the captured bytes.
    public var networkOffset = 0
    public var transportOffset = 0
    /// Offset and length of the transport payload inside the captured bytes.
    public var payloadOffset = 0
    public var payloadLength = 0
    /// Payload length according to the IP header; more than `payloadLength` when the
    /// snapshot length cut the frame.
    public var payloadWireLength = 0
    /// The snapshot length (or a bad length field) cut this frame before its end.
    public var truncated = false
    /// Where decoding stopped, when it could not decode the whole stack.
    public var problem = DecodeProblem.none

    public init() {}
}

/// Why decoding of a frame stopped early. Not an error for the run: the frame is counted.
public enum DecodeProblem: UInt8, Sendable {
    case none
    /// Link header cut short.
    case truncatedLink
    /// Not IP (ARP, LLDP, ...).
    case notIP
    case truncatedIP
    case badIPHeader
    /// A later IP fragment: no transport header to decode.
    case laterFragment
    case truncatedTransport
    case badTransportHeader
    case unsupportedLinkType

    public var blocksTransport: Bool {
        switch self {
        case .none: false
        default: true
        }
    }
}
