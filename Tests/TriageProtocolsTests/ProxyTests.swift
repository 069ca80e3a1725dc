import TestSupport
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// Proxy preambles written byte for byte from their specifications (SOCKS 4 and its 4A
/// extension, RFC 1928 and 1929 for SOCKS5, RFC 9110 9.3.6 for HTTP CONNECT): each message
/// alone, every strict prefix asking for more, broken fields rejected, and a whole exchange
/// before RDP under every segmentation.
@Suite struct ProxyTests {
    // 198.51.100.20:3389 = c6 33 64 14, 0d 3d
    static let socks4Request = hexBytes("04010d3dc6336414" + "616c69636500")  // user id "alice"
    static let socks4aRequest = hexBytes("04010d3d00000001" + "00" + "7264702e636f72702e6578616d706c6500")  // rdp.corp.example
    static let socks4Granted = hexBytes("005a000000000000")
    static let socks4Rejected = hexBytes("005b000000000000")
    static let socks5Greeting = hexBytes("05020002")
    static let socks5ChoiceNone = hexBytes("0500")
    static let socks5ChoicePassword = hexBytes("0502")
    static let socks5Credentials = hexBytes("0105" + "616c696365" + "06" + "736563726574")  // alice / secret
    static let socks5RequestV4 = hexBytes("05010001c63364140d3d")
    static let socks5RequestName = hexBytes("050100031072" + "64702e636f72702e6578616d706c65" + "0d3d")
    static let socks5RequestV6 = hexBytes("0501000420010db8000200000000000000000020" + "0d3d")
    static let socks5Succeeded = hexBytes("05000001c0000201" + "c350")
    static let socks5Refused = hexBytes("05050001000000000000")
    static let connect = Array("CONNECT 198.51.100.20:3389 HTTP/1.1\r\nHost: 198.51.100.20:3389\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n".utf8)
    static let connectV6 = Array("CONNECT [2001:db8:2::20]:3389 HTTP/1.0\r\n\r\n".utf8)
    static let ok = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)
    static let forbidden = Array("HTTP/1.1 403 Access violation\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n".utf8)

    @Test func socks4AndSocks4a() {
        let r = value(parse(Self.socks4Request, ProxyPreamble.readSOCKS4Request))
        #expect(r == ProxyRequest(kind: .socks4, command: 1, host: "198.51.100.20", port: 3389))
        let a = value(parse(Self.socks4aRequest, ProxyPreamble.readSOCKS4Request))
        #expect(a == ProxyRequest(kind: .socks4a, command: 1, host: "rdp.corp.example", port: 3389))
        let g = value(parse(Self.socks4Granted) { (c: inout ByteCursor) throws(ParseError) in try ProxyPreamble.readSOCKS4Reply(&c) })
        #expect(g?.granted == true && g?.name == "request granted")
        let no = value(parse(Self.socks4Rejected) { (c: inout ByteCursor) throws(ParseError) in try ProxyPreamble.readSOCKS4Reply(&c) })
        #expect(no?.granted == false && no?.code == 91 && no?.meaning == .failed)
        #expect(prefixesNotNeedingMore(Self.socks4Request, ProxyPreamble.readSOCKS4Request).isEmpty)
        #expect(prefixesNotNeedingMore(Self.socks4aRequest, ProxyPreamble.readSOCKS4Request).isEmpty)
        #expect(isMalformed(failure(parse(hexBytes("04090d3dc633641400"), ProxyPreamble.readSOCKS4Request))))
        // A user id that never ends is refused once it passes 255 bytes, not buffered forever.
        let endless = hexBytes("04010d3dc6336414") + [UInt8](repeating: 0x61, count: 300)
        #expect(isMalformed(failure(parse(endless, ProxyPreamble.readSOCKS4Request))))
    }

    @Test func socks5Messages() {
        #expect(value(parse(Self.socks5Greeting, ProxyPreamble.readSOCKS5Greeting)) == [0, 2])
        #expect(value(parse(Self.socks5ChoicePassword, ProxyPreamble.readSOCKS5MethodChoice)) == 2)
        let skipped = parse(Self.socks5Credentials, ProxyPreamble.skipSOCKS5Credentials)
        #expect(skipped.1 == Self.socks5Credentials.count)
        #expect(value(parse(Self.socks5RequestV4, ProxyPreamble.readSOCKS5Request))?.target == "198.51.100.20:3389")
        #expect(value(parse(Self.socks5RequestName, ProxyPreamble.readSOCKS5Request))?.target == "rdp.corp.example:3389")
        #expect(value(parse(Self.socks5RequestV6, ProxyPreamble.readSOCKS5Request))?.target == "[2001:db8:2::20]:3389")
        let refused = value(parse(Self.socks5Refused, ProxyPreamble.readSOCKS5Reply))
        #expect(refused?.code == 5 && refused?.name == "connection refused" && refused?.meaning == .targetRefused)
        #expect(refused?.codeText == "0x05")
        #expect(value(parse(Self.socks5Succeeded, ProxyPreamble.readSOCKS5Reply))?.granted == true)
        for bytes in [Self.socks5Greeting, Self.socks5RequestV4, Self.socks5RequestName, Self.socks5RequestV6, Self.socks5Refused] {
            #expect(prefixesNotNeedingMore(bytes) { (c: inout ByteCursor) throws(ParseError) in
                if bytes == Self.socks5Greeting { _ = try ProxyPreamble.readSOCKS5Greeting(&c) }
                else if bytes == Self.socks5Refused { _ = try ProxyPreamble.readSOCKS5Reply(&c) }
                else { _ = try ProxyPreamble.readSOCKS5Request(&c) }
            }.isEmpty)
        }
        #expect(prefixesNotNeedingMore(Self.socks5Credentials, ProxyPreamble.skipSOCKS5Credentials).isEmpty)
        #expect(isMalformed(failure(parse(hexBytes("05010009c63364140d3d"), ProxyPreamble.readSOCKS5Request))))
        #expect(isMalformed(failure(parse(hexBytes("0500"), ProxyPreamble.readSOCKS5Greeting))))
    }

    @Test func httpConnect() {
        let r = value(parse(Self.connect, ProxyPreamble.readHTTPConnect))
        #expect(r == ProxyRequest(kind: .http, host: "198.51.100.20", port: 3389))
        #expect(parse(Self.connect, ProxyPreamble.readHTTPConnect).1 == Self.connect.count)
        #expect(value(parse(Self.connectV6, ProxyPreamble.readHTTPConnect))?.target == "[2001:db8:2::20]:3389")
        let f = value(parse(Self.forbidden, ProxyPreamble.readHTTPReply))
        #expect(f?.code == 403 && f?.name == "403 Access violation" && f?.meaning == .deniedByProxy)
        #expect(value(parse(Self.ok, ProxyPreamble.readHTTPReply))?.granted == true)
        #expect(prefixesNotNeedingMore(Self.connect, ProxyPreamble.readHTTPConnect).isEmpty)
        #expect(prefixesNotNeedingMore(Self.forbidden, ProxyPreamble.readHTTPReply).isEmpty)
        #expect(isMalformed(failure(parse(Array("CONNECT nowhere HTTP/1.1\r\n\r\n".utf8), ProxyPreamble.readHTTPConnect))))
        #expect(isMalformed(failure(parse(Array("CONNECT a:99999 HTTP/1.1\r\n\r\n".utf8), ProxyPreamble.readHTTPConnect))))
        let huge = Array("CONNECT a:1 HTTP/1.1\r\nX: ".utf8) + [UInt8](repeating: 0x61, count: 9000)
        #expect(isUnsupported(failure(parse(huge, ProxyPreamble.readHTTPConnect))))
    }

    @Test func firstBytes() {
        func start(_ b: [UInt8]) -> ProxyStart { withCursor(b) { ProxyPreamble.start($0) } }
        #expect(start(Self.socks4Request) == .socks4)
        #expect(start(Self.socks5Greeting) == .socks5Greeting)
        #expect(start(Self.connect) == .http)
        #expect(start(Array("CONN".utf8)) == .needMore)
        #expect(start(hexBytes("0300002f2ae0")) == .none)
        #expect(start(hexBytes("160301")) == .none)
        #expect(start(Array("GET / HTTP/1.1\r\n".utf8)) == .none)
    }

    static let cr = hexBytes("0300002f2ae00000000000436f6f6b69653a206d737473686173683d4a4f484e2d504320200d0a0100080001000000")
    static let cc = hexBytes("030000130ed000001234000200080001000000")

    static func segmentations() -> [Segmentation] {
        [.asCaptured, .oneByte, .coalesced, .wholeStreams, .random(seed: 7), .random(seed: 11)]
    }

    /// SOCKS5 with username/password, then RDP inside the tunnel: the proxy facts, and the
    /// X.224 exchange read as if the stream began after the preamble.
    @Test(arguments: segmentations())
    func socks5ThenRDP(_ how: Segmentation) {
        let segs = SyntheticStreamTests.exchange([
            (.c, Self.socks5Greeting), (.s, Self.socks5ChoicePassword), (.c, Self.socks5Credentials), (.s, hexBytes("0100")),
            (.c, Self.socks5RequestName), (.s, Self.socks5Succeeded), (.c, Self.cr), (.s, Self.cc),
        ])
        let f = StreamPlayer.play(segs, how)
        #expect(f.proxy?.kind == .socks5, "\(how)")
        #expect(f.proxy?.method == 2)
        #expect(f.proxy?.request?.target == "rdp.corp.example:3389")
        #expect(f.proxy?.greetingAt?.frame == 1)
        #expect(f.proxy?.requestAt?.frame == 5)
        #expect(f.proxy?.replyAt?.frame == 6)
        #expect(f.proxy?.tunnelOpen == true)
        #expect(f.connectionRequest?.at.frame == 7, "\(how)")
        #expect(f.connectionConfirm?.selectedProtocol == .ssl, "\(how)")
        #expect(f.firstClientPayload == .x224ConnectionRequest)
        #expect(f.notes.isEmpty, "\(f.notes)")
        // The password never reaches the facts.
        #expect(!"\(f)".contains("secret"))
    }

    @Test(arguments: segmentations())
    func refusals(_ how: Segmentation) {
        let socks = StreamPlayer.play(
            SyntheticStreamTests.exchange([
                (.c, Self.socks5Greeting), (.s, Self.socks5ChoiceNone), (.c, Self.socks5RequestV4), (.s, Self.socks5Refused),
            ]), how)
        #expect(socks.proxy?.reply?.meaning == .targetRefused, "\(how)")
        #expect(socks.proxy?.replyAt?.frame == 4)
        #expect(socks.connectionRequest == nil)
        let http = StreamPlayer.play(
            SyntheticStreamTests.exchange([(.c, Self.connect), (.s, Self.forbidden + Array("Nope!".utf8))]), how)
        #expect(http.proxy?.reply?.code == 403, "\(how)")
        #expect(http.proxy?.request?.target == "198.51.100.20:3389")
        #expect(!"\(http)".contains("YWxpY2U6c2VjcmV0"))
        let s4 = StreamPlayer.play(SyntheticStreamTests.exchange([(.c, Self.socks4aRequest), (.s, Self.socks4Rejected)]), how)
        #expect(s4.proxy?.kind == .socks4a && s4.proxy?.reply?.code == 91, "\(how)")
    }

    /// A stream followed from the SOCKS5 request (the tracker saw the greeting while the
    /// connection was only a candidate).
    @Test func afterGreeting() {
        var p = StreamPlayer()
        p.parser = RDPConnectionParser(afterSOCKS5Greeting: true)
        p.run(
            SyntheticStreamTests.exchange([
                (.c, Self.socks5RequestV4), (.s, Self.socks5Succeeded), (.c, Self.cr), (.s, Self.cc),
            ]), .asCaptured)
        let f = p.parser.facts
        #expect(f.proxy?.request?.target == "198.51.100.20:3389")
        #expect(f.proxy?.greetingAt == nil)
        #expect(f.connectionConfirm?.at.frame == 4)
    }

    /// A redacted export overwrites the names a preamble holds (the SOCKS5 user, the target,
    /// the proxy's bound address) and the cookie inside the tunnel, at their stream offsets.
    @Test func namesInPreambles() {
        let client = NameLocator.clientStream(Self.socks5Greeting + Self.socks5Credentials + Self.socks5RequestV4 + Self.cr)
        #expect(client.contains { $0.kind == .user && $0.shown == "alice" && $0.ranges == [6..<11] }, "\(client)")
        let request = Self.socks5Greeting.count + Self.socks5Credentials.count
        #expect(client.contains { $0.encoding == .address && $0.shown == "198.51.100.20" && $0.ranges == [(request + 4)..<(request + 8)] })
        let cookieAt = request + Self.socks5RequestV4.count + 11 + 17  // TPKT and X.224 header, "Cookie: mstshash="
        #expect(client.contains { $0.shown.hasPrefix("JOHN-PC") && $0.ranges.first?.lowerBound == cookieAt }, "\(client)")
        #expect(!client.contains { $0.shown.contains("secret") })
        let server = NameLocator.serverStream(Self.socks5ChoicePassword + hexBytes("0100") + Self.socks5Succeeded + Self.cc)
        #expect(server.contains { $0.encoding == .address && $0.shown == "192.0.2.1" }, "\(server)")
        let http = NameLocator.clientStream(Self.connect + Self.cr)
        #expect(http.filter { $0.shown == "198.51.100.20" }.count == 2, "the CONNECT line and the Host header")
        let s4 = NameLocator.clientStream(Self.socks4aRequest)
        #expect(s4.contains { $0.kind == .host && $0.shown == "rdp.corp.example" })
        #expect(NameLocator.clientStream(Self.socks4Request).contains { $0.kind == .user && $0.shown == "alice" })
    }

    /// Garbage after a granted reply is the tunnel's business (non-RDP), and a broken
    /// preamble is a note, never a trap.
    @Test func brokenPreambles() {
        let junk = StreamPlayer.play(SyntheticStreamTests.exchange([(.c, hexBytes("0501ff")), (.s, hexBytes("05ff"))]), .oneByte)
        #expect(junk.proxy?.reply?.meaning == .deniedByProxy)
        let bad = StreamPlayer.play(SyntheticStreamTests.exchange([(.c, Self.socks5Greeting), (.s, hexBytes("0400"))]), .asCaptured)
        #expect(bad.proxy?.reply == nil)
        #expect(bad.notes.contains { $0.description == "server frame 2: proxy preamble: malformed at +0: SOCKS5 version 4" }, "\(bad.notes)")
        #expect(bad.notes.contains { if case .proxyPreamble(.malformed) = $0.event { $0.side == .server } else { false } })
        var rng = SplitMix(seed: 3)
        for _ in 0..<300 {
            var bytes = Self.socks5Greeting + Self.socks5RequestName + Self.cr
            for _ in 0..<3 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            _ = StreamPlayer.play(SyntheticStreamTests.exchange([(.c, bytes), (.s, Self.socks5Succeeded + Self.cc)]), .random(seed: rng.next()))
        }
    }
}
