import TestSupport
import Testing
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// TPKT and X.224 with RDP negotiation (MS-RDPBCGR 2.2.1.1, 2.2.1.2). Fixtures are real
/// PDUs from the public captures (values cross-checked with tshark's RDP dissector) or
/// built from the spec's field layout.
@Suite struct TPKTTests {
    /// zeek rdp-x509.pcap frame 6: cookie `JOHN-PC  `, RDP_NEG_REQ PROTOCOL_RDP.
    static let crZeek = hexBytes(
        "0300002f2ae00000000000436f6f6b69653a206d737473686173683d4a4f484e2d504320200d0a0100080000000000")
    /// ndpi rdp.pcap frame 4: no cookie, requestedProtocols SSL|HYBRID|HYBRID_EX.
    static let crNdpi = hexBytes("030000130ee00000000000010008000b000000")
    /// ndpi rdp.pcap frame 5: RDP_NEG_RSP flags 0x1f, selectedProtocol HYBRID_EX.
    static let ccNdpi = hexBytes("030000130ed00000123400021f080008000000")
    /// RDP_NEG_FAILURE HYBRID_REQUIRED_BY_SERVER (MS-RDPBCGR 2.2.1.2.2 layout).
    static let ccFailure = hexBytes("030000130ed000001234000300080005000000")
    /// A Connection Confirm without negotiation data (pre-Vista server, 4.1.2 example).
    static let ccBare = hexBytes("0300000b06d00000123400")
    /// CR with RDP_NEG_REQ flag CORRELATION_INFO_PRESENT and RDP_NEG_CORRELATION_INFO
    /// (MS-RDPBCGR 2.2.1.1.2): id 00112233-4455-6677-8899-aabbccddeeff (little-endian fields).
    static let crCorrelation = hexBytes(
        "0300003732e00000000000010808000300000006002400" + "33221100554477668899aabbccddeeff"
            + "00000000000000000000000000000000")
    /// CR with a load-balancing routing token line instead of a cookie.
    static let crRoutingToken = hexBytes(
        "0300003732e00000000000" + "436f6f6b69653a206d7374733d333634303230353232382e31353632392e303030300d0a"
            + "0100080003000000")
    /// X.224 Disconnect Request, reason 128 (normal).
    static let dr = hexBytes("0300000b06800000123480")

    @Test func connectionRequestWithCookie() throws {
        let tpdu = try #require(value(parse(Self.crZeek) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionRequest(let cr) = tpdu else { Issue.record("not a CR: \(tpdu)"); return }
        #expect(cr.cookie == "JOHN-PC  ")
        #expect(cr.routingToken == nil)
        #expect(!cr.unterminatedLine)
        #expect(cr.negotiationRequest?.requestedProtocols == SecurityProtocols(rawValue: 0))
        #expect(cr.negotiationRequest?.flags.rawValue == 0)
        #expect(cr.trailingBytes == 0)
    }

    @Test func connectionRequestWithoutCookie() throws {
        let tpdu = try #require(value(parse(Self.crNdpi) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionRequest(let cr) = tpdu else { Issue.record("not a CR"); return }
        #expect(cr.cookie == nil)
        #expect(cr.negotiationRequest?.requestedProtocols == [.ssl, .hybrid, .hybridEx])
        #expect(cr.negotiationRequest?.requestedProtocols.names == "PROTOCOL_SSL|PROTOCOL_HYBRID|PROTOCOL_HYBRID_EX")
    }

    @Test func connectionRequestWithCorrelationInfo() throws {
        let tpdu = try #require(value(parse(Self.crCorrelation) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionRequest(let cr) = tpdu else { Issue.record("not a CR"); return }
        #expect(cr.negotiationRequest?.flags.contains(.correlationInfoPresent) == true)
        #expect(cr.correlationInfo?.correlationID == "00112233-4455-6677-8899-aabbccddeeff")
        #expect(cr.trailingBytes == 0)
    }

    @Test func connectionRequestWithRoutingToken() throws {
        let tpdu = try #require(value(parse(Self.crRoutingToken) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionRequest(let cr) = tpdu else { Issue.record("not a CR"); return }
        #expect(cr.cookie == nil)
        #expect(cr.routingToken == "Cookie: msts=3640205228.15629.0000")
        #expect(cr.negotiationRequest?.requestedProtocols == [.ssl, .hybrid])
    }

    @Test func connectionRequestOfAnOldClient() throws {
        // suricata RDP-003.pcap frame 4 (Windows XP): cookie, no RDP_NEG_REQ.
        let bytes = hexBytes("030000241fe00000000000436f6f6b69653a206d737473686173683d4137303036370d0a")
        let tpdu = try #require(value(parse(bytes) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionRequest(let cr) = tpdu else { Issue.record("not a CR"); return }
        #expect(cr.cookie == "A70067")
        #expect(cr.negotiationRequest == nil)
    }

    @Test func cookieWithoutLineEnd() throws {
        // Scanners send `Cookie: mstshash=NAME` without CR LF, followed by RDP_NEG_REQ.
        let bytes = hexBytes("0300002924e00000000000436f6f6b69653a206d737473686173683d61646d696e0100080001000000")
        let tpdu = try #require(value(parse(bytes) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionRequest(let cr) = tpdu else { Issue.record("not a CR"); return }
        #expect(cr.cookie == "admin")
        #expect(cr.unterminatedLine)
        #expect(cr.negotiationRequest?.requestedProtocols == .ssl)
    }

    @Test func connectionConfirmResponse() throws {
        let tpdu = try #require(value(parse(Self.ccNdpi) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionConfirm(let cc) = tpdu else { Issue.record("not a CC"); return }
        #expect(cc.negotiation == .response(flags: NegotiationResponseFlags(rawValue: 0x1F), selectedProtocol: .hybridEx))
    }

    @Test func connectionConfirmFailure() throws {
        let tpdu = try #require(value(parse(Self.ccFailure) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionConfirm(let cc) = tpdu else { Issue.record("not a CC"); return }
        #expect(cc.negotiation == .failure(flags: 0, code: .hybridRequiredByServer))
        #expect(NegotiationFailureCode.hybridRequiredByServer.name == "HYBRID_REQUIRED_BY_SERVER")
    }

    @Test func unknownFailureCodeStillRenders() throws {
        var bytes = Self.ccFailure
        bytes[15] = 7
        let tpdu = try #require(value(parse(bytes) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionConfirm(let cc) = tpdu, case .failure(_, let code) = cc.negotiation else {
            Issue.record("not a failure")
            return
        }
        #expect(code.rawValue == 7)
        #expect(code.name == "failureCode-7")
        #expect(X224TPDUCode(rawValue: 0x50).name == "tpdu-0x50")
    }

    @Test func connectionConfirmWithoutNegotiation() throws {
        let tpdu = try #require(value(parse(Self.ccBare) { c throws(ParseError) in try X224.parse(&c) }))
        guard case .connectionConfirm(let cc) = tpdu else { Issue.record("not a CC"); return }
        #expect(cc.negotiation == .none)
    }

    @Test func disconnectRequest() throws {
        let tpdu = try #require(value(parse(Self.dr) { c throws(ParseError) in try X224.parse(&c) }))
        #expect(tpdu == .disconnectRequest(X224DisconnectRequest(destinationReference: 0, sourceReference: 0x1234, reason: 128)))
    }

    @Test func dataTPDU() throws {
        let bytes = hexBytes("0300000902f0802180")
        let tpdu = try #require(value(parse(bytes) { c throws(ParseError) in try X224.parse(&c) }))
        #expect(tpdu == .data(userDataOffset: 3, userDataLength: 2))
    }

    @Test(arguments: [crZeek, crNdpi, ccNdpi, ccFailure, ccBare, crCorrelation, crRoutingToken, dr])
    func everyPrefixNeedsMore(_ bytes: [UInt8]) {
        #expect(prefixesNotNeedingMore(bytes) { c throws(ParseError) in try X224.parse(&c) } == [])
    }

    @Test func corruptedLengthsAreMalformed() {
        // TPKT version 4.
        var v = Self.crNdpi
        v[0] = 4
        #expect(isMalformed(failure(parse(v) { c throws(ParseError) in try X224.parse(&c) })))
        // TPKT length smaller than a header.
        var l = Self.crNdpi
        l[3] = 5
        #expect(isMalformed(failure(parse(l) { c throws(ParseError) in try X224.parse(&c) })))
        // X.224 length indicator past the packet.
        var li = Self.crNdpi
        li[4] = 0x40
        #expect(isMalformed(failure(parse(li) { c throws(ParseError) in try X224.parse(&c) })))
        // RDP_NEG_RSP length 9.
        var neg = Self.ccNdpi
        neg[13] = 9
        #expect(isMalformed(failure(parse(neg) { c throws(ParseError) in try X224.parse(&c) })))
        // RDP_NEG_CORRELATION_INFO length 35.
        var corr = Self.crCorrelation
        corr[21] = 35
        #expect(isMalformed(failure(parse(corr) { c throws(ParseError) in try X224.parse(&c) })))
    }

    @Test func fastPathFraming() throws {
        #expect(try RDPFraming.peek(withBytes: [0x00, 0x05, 1, 2, 3]) == .fastPath(length: 5))
        #expect(try RDPFraming.peek(withBytes: [0x04, 0x81, 0x02]) == .fastPath(length: 0x102))
        #expect(try RDPFraming.peek(withBytes: Self.ccNdpi) == .tpkt(length: 19))
        #expect(throws: ParseError.needMore(atLeast: 3)) { try RDPFraming.peek(withBytes: [0x04, 0x81]) }
        #expect(throws: ParseError.self) { try RDPFraming.peek(withBytes: [0x16, 0x03, 0x01]) }
    }
}

extension RDPFraming {
    static func peek(withBytes bytes: [UInt8]) throws(ParseError) -> RDPFraming {
        var result: Result<RDPFraming, ParseError> = .failure(.needMore(atLeast: 0))
        bytes.withUnsafeBytes { raw in
            do throws(ParseError) {
                result = .success(try RDPFraming.peek(ByteCursor(raw)))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }
}

/// Cookies, names and hostnames are made text by `asciiString`: printable ASCII kept, any
/// other byte as `\xNN`, at most `limit` bytes. Checked against a scalar-by-scalar build
/// on random bytes, mostly printable, at every limit.
@Suite struct ASCIIStringTests {
    static func reference(_ bytes: [UInt8], limit: Int) -> String {
        var out = ""
        for b in bytes.prefix(max(0, limit)) {
            if b >= 0x20 && b < 0x7F {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "\\x" + String(b, radix: 16).leftPadded(to: 2)
            }
        }
        return out
    }

    @Test func agreesWithScalarBuilding() {
        var rng = SplitMix(seed: 0xA5C11)
        var cases: [[UInt8]] = [[], [0], [0x7F], [0x20, 0x7E], Array("Cookie: mstshash=JOHN".utf8), Array(0...255)]
        for _ in 0..<2_000 {
            let n = Int(rng.next() % 40)
            cases.append((0..<n).map { _ in
                let r = rng.next()
                return r % 5 == 0 ? UInt8(truncatingIfNeeded: r >> 8) : UInt8(0x20 + (r >> 8) % 95)
            })
        }
        for bytes in cases {
            for limit in [-1, 0, 1, 3, 16, 1000] {
                let got = withCursor(bytes) { $0.asciiString(limit: limit) }
                #expect(got == Self.reference(bytes, limit: limit), "\(bytes) limit \(limit)")
            }
        }
        // A cursor part-way through its bytes reads from where it is.
        let tail = withCursor(Array("ab\u{1}cd".utf8)) { c -> String in
            _ = c.skip(2)
            return c.asciiString(limit: 10)
        }
        #expect(tail == "\\x01cd")
    }
}

extension String {
    fileprivate func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
