import Foundation
import Testing
import TriageCapture
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// RDP behind a SOCKS or HTTP CONNECT proxy on a port not known for RDP, written byte for byte
/// from the protocols' layouts: which connections become attempts without `--port`, and the
/// verdict each proxy answer makes. The lab's captures (socks5-success, socks5-refused,
/// http-connect-forbidden) cover the same rules with real proxies.
@Suite struct ProxyIntegrationTests {
    static let cr = hexBytes("0300002f2ae00000000000436f6f6b69653a206d737473686173683d4a4f484e2d504320200d0a0100080001000000")
    static let cc = hexBytes("030000130ed000001234000200080001000000")

    static func hexBytes(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static func proxied(port: UInt16 = 1080, _ exchange: (WireScript) -> Void) -> WireScript {
        let w = WireScript()
        w.server.port = port
        w.handshake()
        exchange(w)
        return w
    }

    /// SOCKS5 on 1080, CONNECT to 3389 answered "connection refused": one attempt, found
    /// without --port, whose verdict is the proxy's answer.
    @Test func socks5RefusedWithoutPortOption() throws {
        let w = Self.proxied { w in
            w.data(.c, [5, 1, 0])
            w.data(.s, [5, 0])
            w.data(.c, Self.hexBytes("05010001c63364140d3d"))
            w.data(.s, Self.hexBytes("05050001000000000000"), ackedBy: nil)
            w.send(.s, WireScript.fin | WireScript.ack, after: 0.0001)
            w.send(.c, WireScript.fin | WireScript.ack, after: 0.001)
        }
        let c = analyze(try w.file("socks5-refused-generated"))
        try #require(c.attempts.count == 1)
        let a = c.attempts[0]
        #expect(a.verdict.label == .proxyRefused)
        #expect(a.verdict.cause == .hostNotAccepting)
        #expect(a.verdict.endedBy == .server)
        #expect(a.facts.tcp.established)
        #expect(a.facts.tcp.handshake.completed?.frame == 3)
        #expect(a.facts.rdp.proxy?.request?.target == "198.51.100.20:3389")
        #expect(a.facts.rdp.proxy?.greetingAt == nil, "the greeting went by while the connection was a candidate")
        #expect(a.verdict.evidence.contains { $0.frame == 10 && $0.what.contains("0x05 connection refused") }, "\(a.verdict.evidence)")
    }

    /// The same with --port 1080: the stream is followed from its SYN, greeting included.
    @Test func socks5RefusedOnAListedPort() throws {
        let w = Self.proxied { w in
            w.data(.c, [5, 1, 0])
            w.data(.s, [5, 0])
            w.data(.c, Self.hexBytes("05010001c63364140d3d"))
            w.data(.s, Self.hexBytes("05050001000000000000"))
        }
        let c = analyze(try w.file("socks5-refused-listed"), ports: [3389, 1080])
        try #require(c.attempts.count == 1)
        #expect(c.attempts[0].verdict.label == .proxyRefused)
        #expect(c.attempts[0].facts.rdp.proxy?.greetingAt?.frame == 4)
    }

    /// A SOCKS5 or CONNECT request for another port is someone's web browsing through the
    /// proxy, not an RDP attempt.
    @Test func requestsForOtherPortsAreNotAttempts() throws {
        let socks = Self.proxied { w in
            w.data(.c, [5, 1, 0])
            w.data(.s, [5, 0])
            w.data(.c, Self.hexBytes("05010001c633641401bb"))
            w.data(.s, Self.hexBytes("05000001000000000000"))
            w.data(.c, [0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0])
        }
        #expect(analyze(try socks.file("socks5-https")).attempts.isEmpty)
        let http = Self.proxied(port: 3128) { w in
            w.data(.c, Array("CONNECT example.org:443 HTTP/1.1\r\n\r\n".utf8))
            w.data(.s, Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
        }
        #expect(analyze(try http.file("connect-https")).attempts.isEmpty)
    }

    /// HTTP CONNECT granted, then RDP inside: the X.224 exchange is read from the tunnel.
    @Test func httpConnectThenRDP() throws {
        let w = Self.proxied(port: 8080) { w in
            w.data(.c, Array("CONNECT rdp.corp.example:3389 HTTP/1.1\r\nHost: rdp.corp.example:3389\r\n\r\n".utf8))
            w.data(.s, Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8))
            w.data(.c, Self.cr)
            w.data(.s, Self.cc)
            w.send(.s, WireScript.rst | WireScript.ack, after: 0.01)
        }
        let c = analyze(try w.file("connect-rdp"))
        try #require(c.attempts.count == 1)
        let a = c.attempts[0]
        #expect(a.facts.rdp.proxy?.tunnelOpen == true)
        #expect(a.facts.rdp.connectionConfirm?.selectedProtocol == .ssl)
        #expect(a.verdict.label != .proxyRefused && a.verdict.label != .nonRDPService, "\(a.verdict.label)")
        #expect(a.verdict.details.contains { $0.contains("Through an HTTP CONNECT proxy at 198.51.100.20:8080 to rdp.corp.example:3389") })
    }

    /// SOCKS4a to a name, rejected (91), and a 407 from an HTTP proxy: what each says.
    @Test func socks4aAndProxyAuthentication() throws {
        let s4 = Self.proxied { w in
            w.data(.c, Self.hexBytes("04010d3d00000001" + "00" + "7264702e636f72702e6578616d706c6500"))
            w.data(.s, Self.hexBytes("005b000000000000"))
        }
        let a = try #require(analyze(try s4.file("socks4a-rejected")).attempts.first)
        #expect(a.verdict.label == .proxyRefused && a.verdict.cause == .networkBlockade)
        #expect(a.facts.rdp.proxy?.kind == .socks4a)
        #expect(a.verdict.summary.contains("rdp.corp.example:3389") && a.verdict.summary.contains("91"), "\(a.verdict.summary)")
        let auth = Self.proxied(port: 3128) { w in
            w.data(.c, Array("CONNECT 198.51.100.20:3389 HTTP/1.1\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n".utf8))
            w.data(.s, Array("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n".utf8))
        }
        let b = try #require(analyze(try auth.file("connect-407")).attempts.first)
        #expect(b.verdict.label == .proxyRefused && b.verdict.endedBy == .middlebox)
        #expect(b.verdict.remediation.first?.contains("policy or authentication") == true)
        #expect(!String(describing: b).contains("c2VjcmV0"), "the Proxy-Authorization header reached the facts")
    }
}
