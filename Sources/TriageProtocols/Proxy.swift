import TriageCapture
import TriageDecoding
import TriageFlows

// Proxy preambles a client may send before RDP's X.224 Connection Request: SOCKS4 and its
// 4a extension (the SOCKS 4 protocol description, "SOCKS 4A" extension), SOCKS5 (RFC 1928,
// with RFC 1929 username/password authentication) and HTTP CONNECT (RFC 9110 9.3.6). Pure
// parsers: bytes in, value or `ParseError` out; a failed read leaves the cursor where it was.
// Credentials (a SOCKS5 password, a Proxy-Authorization header) are skipped, never kept.

/// Which proxy protocol a preamble speaks.
public enum ProxyKind: String, Sendable, Codable, Hashable {
    case socks4
    /// SOCKS4 with the destination as a name (DSTIP 0.0.0.x, x ≠ 0).
    case socks4a
    case socks5
    /// An HTTP proxy's CONNECT method.
    case http

    /// How a report names it: "SOCKS5", "HTTP CONNECT".
    public var display: String {
        switch self {
        case .socks4: "SOCKS4"
        case .socks4a: "SOCKS4a"
        case .socks5: "SOCKS5"
        case .http: "HTTP CONNECT"
        }
    }
}

/// What a client asked a proxy for: a TCP connection to `host:port`.
public struct ProxyRequest: Sendable, Codable, Equatable {
    public var kind: ProxyKind
    /// SOCKS command (1 CONNECT, 2 BIND, 3 UDP ASSOCIATE); 1 for HTTP CONNECT.
    public var command: UInt8
    /// An address (`198.51.100.20`, `2001:db8::1`) or a name, as the request gave it
    /// (printable ASCII only, at most 255 characters).
    public var host: String
    public var port: UInt16

    public init(kind: ProxyKind, command: UInt8 = 1, host: String, port: UInt16) {
        self.kind = kind
        self.command = command
        self.host = host
        self.port = port
    }

    /// `198.51.100.20:3389`, `[2001:db8::1]:3389`.
    public var target: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A proxy's answer to the request: SOCKS5 REP (RFC 1928 section 6), SOCKS4 CD (90..93), or
/// an HTTP status code.
public struct ProxyReply: Sendable, Codable, Equatable {
    public var kind: ProxyKind
    public var code: Int
    /// The HTTP reason phrase (printable, at most 80 characters); nil for SOCKS.
    public var reason: String?

    public init(kind: ProxyKind, code: Int, reason: String? = nil) {
        self.kind = kind
        self.code = code
        self.reason = reason
    }

    /// Codes outside the SOCKS5 REP range for refusals before the request: the proxy
    /// accepted none of the client's authentication methods (METHOD 0xFF), or refused its
    /// username and password (RFC 1929 STATUS ≠ 0).
    public static let noAcceptableMethod = 0x1FF
    public static let credentialsRefused = 0x101

    /// The proxy opened the tunnel.
    public var granted: Bool {
        switch kind {
        case .socks5: code == 0
        case .socks4, .socks4a: code == 90
        case .http: (200..<300).contains(code)
        }
    }

    /// The name the protocol gives the code: `connection refused`, `403 Forbidden`.
    public var name: String {
        switch kind {
        case .socks5:
            switch code {
            case 0: return "succeeded"
            case 1: return "general SOCKS server failure"
            case 2: return "connection not allowed by ruleset"
            case 3: return "network unreachable"
            case 4: return "host unreachable"
            case 5: return "connection refused"
            case 6: return "TTL expired"
            case 7: return "command not supported"
            case 8: return "address type not supported"
            case Self.noAcceptableMethod: return "no acceptable authentication method"
            case Self.credentialsRefused: return "username and password refused"
            default: return "reply 0x" + String(code, radix: 16)
            }
        case .socks4, .socks4a:
            switch code {
            case 90: return "request granted"
            case 91: return "request rejected or failed"
            case 92: return "rejected: the proxy cannot reach the client's identd"
            case 93: return "rejected: identd reports a different user"
            default: return "reply \(code)"
            }
        case .http:
            return reason.map { $0.isEmpty ? "\(code)" : "\(code) \($0)" } ?? "\(code)"
        }
    }

    /// The code as the protocol writes it: `0x05` for SOCKS5, `91` for SOCKS4, `403` for HTTP.
    public var codeText: String {
        kind == .socks5 ? "0x" + (code < 16 ? "0" : "") + String(code, radix: 16) : String(code)
    }

    /// What the answer says about the target, for the diagnosis.
    public enum Meaning: Sendable, Equatable {
        case granted
        /// The target answered and refused (SOCKS5 0x05; HTTP 502 is too vague for this).
        case targetRefused
        /// The proxy could not reach the target (no route, no host, time-out).
        case targetUnreachable
        /// The proxy's own policy or authentication said no.
        case deniedByProxy
        /// The client asked for something the proxy does not do.
        case unsupported
        /// A failure that says nothing more (SOCKS5 0x01, SOCKS4 91, other HTTP codes).
        case failed
    }

    public var meaning: Meaning {
        if granted { return .granted }
        switch (kind, code) {
        case (.socks5, 5): return .targetRefused
        case (.socks5, 3), (.socks5, 4), (.socks5, 6), (.http, 504): return .targetUnreachable
        case (.socks5, 2), (.socks5, Self.noAcceptableMethod), (.socks5, Self.credentialsRefused), (.socks4, 92), (.socks4, 93), (.socks4a, 92), (.socks4a, 93),
            (.http, 401), (.http, 403), (.http, 407):
            return .deniedByProxy
        case (.socks5, 7), (.socks5, 8), (.http, 400), (.http, 405), (.http, 501): return .unsupported
        default: return .failed
        }
    }
}

/// The proxy preamble of one connection, with the frames that carried it.
public struct ProxyFacts: Sendable, Codable, Equatable {
    public var kind: ProxyKind
    /// The SOCKS5 greeting (nil when not captured, or for other kinds).
    public var greetingAt: FrameRef?
    /// SOCKS5: the method the proxy chose (0 none, 2 username/password, 0xFF none acceptable).
    public var method: UInt8?
    public var request: ProxyRequest?
    public var requestAt: FrameRef?
    public var reply: ProxyReply?
    public var replyAt: FrameRef?

    public init(kind: ProxyKind) { self.kind = kind }

    /// The proxy opened the tunnel: the bytes after the preamble are the target's.
    public var tunnelOpen: Bool { reply?.granted == true }
}

/// What a client's first bytes look like, as far as proxies go.
public enum ProxyStart: Equatable, Sendable {
    /// Not a proxy preamble.
    case none
    /// Too few bytes to tell.
    case needMore
    case socks4
    case socks5Greeting
    case http

    /// The protocol it starts (SOCKS4 may turn out to be 4a once the request is read).
    public var kind: ProxyKind? {
        switch self {
        case .none, .needMore: nil
        case .socks4: .socks4
        case .socks5Greeting: .socks5
        case .http: .http
        }
    }
}

public enum ProxyPreamble {
    static let connect = Array("CONNECT ".utf8)
    /// Longest HTTP request or response head read (request line and headers).
    public static let maxHTTPHead = 8192
    /// Longest SOCKS4 user id or 4a host name read.
    static let maxSOCKS4String = 255

    /// Whether the stream's first client bytes start a proxy preamble. Checks every fixed
    /// field, so an RDP or TLS stream (first byte 3 or 22) never matches.
    public static func start(_ c: ByteCursor) -> ProxyStart {
        guard let first = c.peekUInt8() else { return .needMore }
        switch first {
        case 4:
            guard let cd = c.peekUInt8(at: 1) else { return .needMore }
            return cd == 1 || cd == 2 ? .socks4 : .none
        case 5:
            guard let n = c.peekUInt8(at: 1) else { return .needMore }
            // A greeting holds exactly its methods; a client waits for the choice before
            // saying more, so the segment ends there (or a pipelined request starts with 5).
            guard n >= 1 else { return .none }
            guard c.remaining >= 2 + Int(n) else { return .needMore }
            if c.remaining == 2 + Int(n) || c.peekUInt8(at: 2 + Int(n)) == 5 || c.peekUInt8(at: 2 + Int(n)) == 1 {
                return .socks5Greeting
            }
            return .none
        case UInt8(ascii: "C"):
            for (i, b) in connect.enumerated() {
                guard let x = c.peekUInt8(at: i) else { return .needMore }
                if x != b { return .none }
            }
            return .http
        default:
            return .none
        }
    }

    // MARK: - SOCKS4 / 4a

    /// SOCKS4 request: VN 4, CD, DSTPORT, DSTIP, USERID NUL (4a: then the host name NUL
    /// when DSTIP is 0.0.0.x with x ≠ 0). The user id is skipped.
    public static func readSOCKS4Request(_ c: inout ByteCursor) throws(ParseError) -> ProxyRequest {
        var r = c
        guard let vn = r.readUInt8() else { throw .needMore(atLeast: 1) }
        guard vn == 4 else { throw .malformed("SOCKS4 version \(vn)", offset: 0) }
        guard let cd = r.readUInt8(), let port = r.readUInt16BE(), let ip = r.readUInt32BE() else {
            throw .needMore(atLeast: 9)
        }
        guard cd == 1 || cd == 2 else { throw .malformed("SOCKS4 command \(cd)", offset: 1) }
        _ = try readNulTerminated(&r, what: "SOCKS4 user id")
        var kind = ProxyKind.socks4
        var host = IPAddress(ipv4: ip).description
        if ip != 0 && ip <= 0xFF {
            kind = .socks4a
            host = try readNulTerminated(&r, what: "SOCKS4a host name")
        }
        c = r
        return ProxyRequest(kind: kind, command: cd, host: host, port: port)
    }

    /// SOCKS4 reply: VN 0, CD (90 granted, 91..93 rejected), DSTPORT, DSTIP: 8 bytes.
    public static func readSOCKS4Reply(_ c: inout ByteCursor, kind: ProxyKind = .socks4) throws(ParseError) -> ProxyReply {
        guard c.remaining >= 8 else { throw .needMore(atLeast: 8) }
        guard c.peekUInt8() == 0 else { throw .malformed("SOCKS4 reply version \(c.peekUInt8() ?? 0)", offset: 0) }
        let cd = c.peekUInt8(at: 1) ?? 0
        _ = c.skip(8)
        return ProxyReply(kind: kind, code: Int(cd))
    }

    static func readNulTerminated(_ c: inout ByteCursor, what: String) throws(ParseError) -> String {
        let start = c.offset
        var n = 0
        while true {
            guard let b = c.peekUInt8(at: n) else {
                if n > maxSOCKS4String { throw .malformed("\(what) longer than \(maxSOCKS4String) bytes", offset: start) }
                throw .needMore(atLeast: start + n + 1)
            }
            if b == 0 { break }
            n += 1
            if n > maxSOCKS4String { throw .malformed("\(what) longer than \(maxSOCKS4String) bytes", offset: start) }
        }
        let text = printable(c.peekSlice(n))
        _ = c.skip(n + 1)
        return text
    }

    // MARK: - SOCKS5 (RFC 1928, RFC 1929)

    /// Greeting: VER 5, NMETHODS, METHODS. Returns the methods offered.
    public static func readSOCKS5Greeting(_ c: inout ByteCursor) throws(ParseError) -> [UInt8] {
        guard let ver = c.peekUInt8() else { throw .needMore(atLeast: 1) }
        guard ver == 5 else { throw .malformed("SOCKS5 version \(ver)", offset: 0) }
        guard let n = c.peekUInt8(at: 1) else { throw .needMore(atLeast: 2) }
        guard n >= 1 else { throw .malformed("SOCKS5 greeting offers no method", offset: 1) }
        guard c.remaining >= 2 + Int(n) else { throw .needMore(atLeast: 2 + Int(n)) }
        _ = c.skip(2)
        return c.readBytes(Int(n)) ?? []
    }

    /// Method selection: VER 5, METHOD.
    public static func readSOCKS5MethodChoice(_ c: inout ByteCursor) throws(ParseError) -> UInt8 {
        guard c.remaining >= 2 else { throw .needMore(atLeast: 2) }
        guard c.peekUInt8() == 5 else { throw .malformed("SOCKS5 version \(c.peekUInt8() ?? 0)", offset: 0) }
        let m = c.peekUInt8(at: 1) ?? 0xFF
        _ = c.skip(2)
        return m
    }

    /// RFC 1929 username/password request (VER 1, ULEN, UNAME, PLEN, PASSWD): skipped whole,
    /// since it holds the password.
    public static func skipSOCKS5Credentials(_ c: inout ByteCursor) throws(ParseError) {
        guard let ver = c.peekUInt8() else { throw .needMore(atLeast: 1) }
        guard ver == 1 else { throw .malformed("SOCKS5 username/password version \(ver)", offset: 0) }
        guard let ulen = c.peekUInt8(at: 1) else { throw .needMore(atLeast: 2) }
        guard let plen = c.peekUInt8(at: 2 + Int(ulen)) else { throw .needMore(atLeast: 3 + Int(ulen)) }
        let total = 3 + Int(ulen) + Int(plen)
        guard c.remaining >= total else { throw .needMore(atLeast: total) }
        _ = c.skip(total)
    }

    /// RFC 1929 status: VER 1, STATUS (0 success).
    public static func readSOCKS5AuthStatus(_ c: inout ByteCursor) throws(ParseError) -> UInt8 {
        guard c.remaining >= 2 else { throw .needMore(atLeast: 2) }
        guard c.peekUInt8() == 1 else { throw .malformed("SOCKS5 auth status version \(c.peekUInt8() ?? 0)", offset: 0) }
        let s = c.peekUInt8(at: 1) ?? 0xFF
        _ = c.skip(2)
        return s
    }

    /// Request: VER 5, CMD, RSV 0, ATYP (1 IPv4, 3 name, 4 IPv6), DST.ADDR, DST.PORT.
    public static func readSOCKS5Request(_ c: inout ByteCursor) throws(ParseError) -> ProxyRequest {
        var r = c
        guard let ver = r.readUInt8() else { throw .needMore(atLeast: 1) }
        guard ver == 5 else { throw .malformed("SOCKS5 version \(ver)", offset: 0) }
        guard let cmd = r.readUInt8() else { throw .needMore(atLeast: 2) }
        guard (1...3).contains(cmd) else { throw .malformed("SOCKS5 command \(cmd)", offset: 1) }
        let (host, port) = try readSOCKS5Address(&r, base: 2)
        c = r
        return ProxyRequest(kind: .socks5, command: cmd, host: host, port: port)
    }

    /// Reply: VER 5, REP, RSV, ATYP, BND.ADDR, BND.PORT.
    public static func readSOCKS5Reply(_ c: inout ByteCursor) throws(ParseError) -> ProxyReply {
        var r = c
        guard let ver = r.readUInt8() else { throw .needMore(atLeast: 1) }
        guard ver == 5 else { throw .malformed("SOCKS5 version \(ver)", offset: 0) }
        guard let rep = r.readUInt8() else { throw .needMore(atLeast: 2) }
        _ = try readSOCKS5Address(&r, base: 2)
        c = r
        return ProxyReply(kind: .socks5, code: Int(rep))
    }

    /// RSV, ATYP, address, port; `base` is the offset of RSV in the message.
    static func readSOCKS5Address(_ r: inout ByteCursor, base: Int) throws(ParseError) -> (String, UInt16) {
        guard r.readUInt8() != nil, let atyp = r.readUInt8() else { throw .needMore(atLeast: base + 2) }
        let host: String
        switch atyp {
        case 1:
            guard let ip = r.readUInt32BE() else { throw .needMore(atLeast: base + 6) }
            host = IPAddress(ipv4: ip).description
        case 3:
            guard let n = r.readUInt8() else { throw .needMore(atLeast: base + 3) }
            guard let name = r.readSlice(Int(n)) else { throw .needMore(atLeast: base + 3 + Int(n)) }
            host = printable(name)
        case 4:
            guard let hi = r.readUInt64BE(), let lo = r.readUInt64BE() else { throw .needMore(atLeast: base + 18) }
            host = IPAddress(ipv6High: hi, low: lo).description
        default:
            throw .malformed("SOCKS5 address type \(atyp)", offset: base + 1)
        }
        guard let port = r.readUInt16BE() else { throw .needMore(atLeast: r.offset + 2) }
        return (host, port)
    }

    // MARK: - HTTP CONNECT

    /// `CONNECT host:port HTTP/1.x` and its headers, up to the empty line. Headers are
    /// skipped unread (Proxy-Authorization holds credentials).
    public static func readHTTPConnect(_ c: inout ByteCursor) throws(ParseError) -> ProxyRequest {
        let head = try httpHead(c)
        guard let line = head.firstLine, line.count >= 3, line[0] == "CONNECT" else {
            throw .malformed("not an HTTP CONNECT request line", offset: 0)
        }
        guard line[2].hasPrefix("HTTP/") else { throw .malformed("no HTTP version in the request line", offset: 0) }
        let authority = line[1]
        let host: Substring
        let portText: Substring
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .malformed("no port in the CONNECT target", offset: 8) }
            portText = rest.dropFirst()
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            throw .malformed("no port in the CONNECT target", offset: 8)
        }
        guard !host.isEmpty, let port = UInt16(portText) else { throw .malformed("bad CONNECT target", offset: 8) }
        _ = c.skip(head.length)
        return ProxyRequest(kind: .http, host: String(host), port: port)
    }

    /// `HTTP/1.x NNN reason` and its headers, up to the empty line (a refusal's body, if
    /// any, is not read: the tunnel never opens after it).
    public static func readHTTPReply(_ c: inout ByteCursor) throws(ParseError) -> ProxyReply {
        let head = try httpHead(c)
        guard let line = head.firstLine, line.count >= 2, line[0].hasPrefix("HTTP/"), line[1].count == 3,
            let code = Int(line[1])
        else { throw .malformed("not an HTTP status line", offset: 0) }
        let reason = line.dropFirst(2).joined(separator: " ")
        _ = c.skip(head.length)
        return ProxyReply(kind: .http, code: code, reason: String(reason.prefix(80)))
    }

    struct HTTPHead {
        /// The first line split at spaces (printable ASCII only).
        var firstLine: [String]?
        /// Bytes up to and including the empty line.
        var length: Int
    }

    static func httpHead(_ c: ByteCursor) throws(ParseError) -> HTTPHead {
        var lineEnd: Int?
        var i = 0
        while true {
            guard let b = c.peekUInt8(at: i) else {
                if i >= maxHTTPHead { throw .unsupported("HTTP head longer than \(maxHTTPHead) bytes", offset: 0) }
                throw .needMore(atLeast: i + 1)
            }
            if b == 0x0A {
                if lineEnd == nil { lineEnd = i }
                // An empty line (LF or CR LF) ends the head.
                if i >= 1, c.peekUInt8(at: i - 1) == 0x0A { break }
                if i >= 2, c.peekUInt8(at: i - 1) == 0x0D, c.peekUInt8(at: i - 2) == 0x0A { break }
            } else if lineEnd == nil && b != 0x0D && !(b >= 0x20 && b < 0x7F) {
                throw .malformed("control byte 0x\(String(b, radix: 16)) in the HTTP start line", offset: i)
            }
            i += 1
            if i > maxHTTPHead { throw .unsupported("HTTP head longer than \(maxHTTPHead) bytes", offset: 0) }
        }
        let first = printable(c.peekSlice(lineEnd ?? 0))
        let words = first.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        return HTTPHead(firstLine: words, length: i + 1)
    }

    /// Printable ASCII of a slice; other bytes dropped (a name from the wire reaches reports).
    static func printable(_ s: ByteCursor?) -> String {
        guard let s else { return "" }
        var out = ""
        out.reserveCapacity(s.remaining)
        for i in 0..<s.remaining {
            if let b = s.peekUInt8(at: i), b >= 0x20 && b < 0x7F { out.unicodeScalars.append(Unicode.Scalar(b)) }
        }
        return out
    }
}
