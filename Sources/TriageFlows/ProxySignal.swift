/// What a connection's first client bytes on a port not known for RDP say about a proxy in
/// front of RDP: a SOCKS4/4a or HTTP CONNECT request names its target port at once, a SOCKS5
/// greeting makes the request (and its port) come next. A few byte compares, run only on the
/// first payload segments of candidate connections, never on established sessions.
/// The full parsers are in TriageProtocols (`ProxyPreamble`).
enum ProxySignal: Equatable {
    case none
    /// A request for a TCP connection to this port.
    case names(UInt16)
    case socks5Greeting

    /// SOCKS4/4a CONNECT (VN 4, CD 1, DSTPORT), SOCKS5 greeting (VER 5, NMETHODS, exactly
    /// that many methods), or `CONNECT host:port HTTP/1.x`.
    static func firstBytes(_ b: UnsafeRawBufferPointer) -> ProxySignal {
        guard b.count >= 3 else { return .none }
        switch b[0] {
        case 4:
            guard b.count >= 9, b[1] == 1, b[b.count - 1] == 0 else { return .none }
            return .names(UInt16(b[2]) << 8 | UInt16(b[3]))
        case 5:
            return b[1] >= 1 && b.count == 2 + Int(b[1]) ? .socks5Greeting : .none
        case UInt8(ascii: "C"):
            return httpConnect(b)
        default:
            return .none
        }
    }

    /// SOCKS5 CONNECT request: VER 5, CMD 1, RSV 0, ATYP with its address, then the port,
    /// filling the segment exactly.
    static func socks5Request(_ b: UnsafeRawBufferPointer) -> ProxySignal {
        guard b.count >= 10, b[0] == 5, b[1] == 1, b[2] == 0 else { return .none }
        let portAt: Int
        switch b[3] {
        case 1: portAt = 8
        case 3: portAt = 5 + Int(b[4])
        case 4: portAt = 20
        default: return .none
        }
        guard b.count == portAt + 2 else { return .none }
        return .names(UInt16(b[portAt]) << 8 | UInt16(b[portAt + 1]))
    }

    /// The proxy's method choice: VER 5, METHOD.
    static func isSOCKS5Choice(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count == 2 && b[0] == 5
    }

    static let connect = Array("CONNECT ".utf8)

    /// The port of `CONNECT host:port HTTP/1.x` (the authority ends at the next space).
    static func httpConnect(_ b: UnsafeRawBufferPointer) -> ProxySignal {
        guard b.count > connect.count + 2 else { return .none }
        for i in 0..<connect.count where b[i] != connect[i] { return .none }
        var end = connect.count
        while end < b.count && end < 300 && b[end] != 0x20 { end += 1 }
        guard end < b.count && b[end] == 0x20 else { return .none }
        var port = 0
        var digits = 0
        var i = end - 1
        while i > connect.count && b[i] >= 0x30 && b[i] <= 0x39 && digits < 5 {
            i -= 1
            digits += 1
        }
        guard digits > 0, b[i] == UInt8(ascii: ":") else { return .none }
        for j in (i + 1)..<end { port = port * 10 + Int(b[j] - 0x30) }
        return port <= 0xFFFF ? .names(UInt16(port)) : .none
    }
}
