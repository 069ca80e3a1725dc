import TestSupport
import Testing
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// The in-order bytes of one direction of a recorded exchange (retransmissions dropped).
func streamBytes(_ segments: [FixtureSegment], _ d: Direction) -> [UInt8] {
    var out: [UInt8] = []
    for s in segments where s.direction == d {
        let end = s.seq + Int64(s.bytes.count)
        guard end > Int64(out.count), s.seq <= Int64(out.count) else { continue }
        out.append(contentsOf: s.bytes[Int(Int64(out.count) - s.seq)...])
    }
    return out
}

/// The `index`-th TPKT packet of a stream, whole.
func tpktPacket(_ stream: [UInt8], index: Int) -> [UInt8]? {
    var at = 0
    for i in 0...index {
        guard at + 4 <= stream.count, stream[at] == 3 else { return nil }
        let length = Int(stream[at + 2]) << 8 | Int(stream[at + 3])
        guard at + length <= stream.count else { return nil }
        if i == index { return Array(stream[at..<at + length]) }
        at += length
    }
    return nil
}

/// An X.224 DT packet's MCS user data.
func mcsUserData(_ packet: [UInt8]) -> [UInt8] { Array(packet.dropFirst(7)) }

/// MCS Connect Initial / Response with GCC blocks (MS-RDPBCGR 2.2.1.3, 2.2.1.4). Expected
/// values are those tshark 4.0's RDP dissector shows for the same frames.
@Suite struct MCSTests {
    static let zeekClient = streamBytes(CaptureFixtures.zeekX509, .clientToServer)
    static let zeekServer = streamBytes(CaptureFixtures.zeekX509, .serverToClient)

    @Test func connectInitialOfZeekCapture() throws {
        let packet = try #require(tpktPacket(Self.zeekClient, index: 1))
        let ci = try #require(value(parse(mcsUserData(packet)) { c throws(ParseError) in try MCSConnectInitial.parse(&c) }))
        let core = try #require(ci.clientData.core)
        // tshark: versionMajor 4 / versionMinor 8, 1920x1080, keyboardLayout 1033,
        // clientBuild 9600, clientName JOHN-PC-LAPTOP, serverSelectedProtocol 0.
        #expect(core.version == 0x0008_0004)
        #expect(core.desktopWidth == 1920)
        #expect(core.desktopHeight == 1080)
        #expect(core.keyboardLayout == 1033)
        #expect(core.clientBuild == 9600)
        #expect(core.clientName == "JOHN-PC-LAPTOP")
        #expect(core.serverSelectedProtocol == 0)
        #expect(core.clientDigProductId == "3c571ed0-3415-474b-ae94-74e151b")
        // tshark: encryptionMethods 1b000000; channels rdpdr, rdpsnd, cliprdr, drdynvc.
        #expect(ci.clientData.security?.encryptionMethods == 0x1B)
        #expect(ci.clientData.network?.channels.map(\.name) == ["rdpdr", "rdpsnd", "cliprdr", "drdynvc"])
        #expect(ci.targetParameters.maxChannelIds == 34)
        #expect(ci.upwardFlag)
    }

    @Test func connectResponseOfZeekCapture() throws {
        let packet = try #require(tpktPacket(Self.zeekServer, index: 1))
        let cr = try #require(value(parse(mcsUserData(packet)) { c throws(ParseError) in try MCSConnectResponse.parse(&c) }))
        // tshark: result rt-successful, versionMajor 4 / minor 8, clientRequestedProtocols 0,
        // encryptionMethod 128-bit RC4 (2), encryptionLevel Client Compatible (2).
        #expect(cr.result == .successful)
        #expect(cr.result.name == "rt-successful")
        let data = try #require(cr.serverData)
        #expect(data.core?.version == 0x0008_0004)
        #expect(data.core?.clientRequestedProtocols == 0)
        #expect(data.security?.encryptionMethod == 2)
        #expect(data.security?.encryptionLevel == 2)
        #expect(data.network?.channelIds.count == 4)
        guard case .x509(let chain, let temporary) = data.security?.certificate else {
            Issue.record("no X.509 chain")
            return
        }
        #expect(chain.count == 2)
        #expect(temporary)
    }

    @Test func connectPDUsEveryPrefixIsMalformedNotATrap() throws {
        // Inside a complete TPKT packet a short MCS PDU contradicts its own lengths: every
        // strict prefix must fail cleanly (malformed, never a trap or a success).
        let ci = mcsUserData(try #require(tpktPacket(Self.zeekClient, index: 1)))
        let cr = mcsUserData(try #require(tpktPacket(Self.zeekServer, index: 1)))
        for n in 0..<ci.count {
            let r = parse(Array(ci[0..<n])) { c throws(ParseError) in try MCSConnectInitial.parse(&c) }
            #expect(failure(r) != nil, "prefix \(n)")
        }
        for n in 0..<cr.count {
            let r = parse(Array(cr[0..<n])) { c throws(ParseError) in try MCSConnectResponse.parse(&c) }
            #expect(failure(r) != nil, "prefix \(n)")
        }
    }

    @Test func connectInitialCorruptions() throws {
        let ci = mcsUserData(try #require(tpktPacket(Self.zeekClient, index: 1)))
        // The Connect-Initial's BER length (0x82 01 b2) one byte too long.
        var long = ci
        long[4] = 0xB3
        #expect(isMalformed(failure(parse(long) { c throws(ParseError) in try MCSConnectInitial.parse(&c) })))
        // A GCC key other than T.124's: not malformed, just not ours.
        let keyAt = try #require(findSubsequence(ci, [0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01]))
        var key = ci
        key[keyAt + 4] = 0x7D
        #expect(isUnsupported(failure(parse(key) { c throws(ParseError) in try MCSConnectInitial.parse(&c) })))
        // channelCount 200.
        let netAt = try #require(findSubsequence(ci, [0x03, 0xC0]))
        var channels = ci
        channels[netAt + 4] = 200
        #expect(isMalformed(failure(parse(channels) { c throws(ParseError) in try MCSConnectInitial.parse(&c) })))
    }

    @Test func mutatedConnectPDUsNeverTrap() throws {
        let ci = mcsUserData(try #require(tpktPacket(Self.zeekClient, index: 1)))
        let cr = mcsUserData(try #require(tpktPacket(Self.zeekServer, index: 1)))
        var rng = SplitMix(seed: 99)
        for round in 0..<2000 {
            var bytes = round % 2 == 0 ? ci : cr
            for _ in 0..<Int(rng.next() % 4 + 1) {
                bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            _ = parse(bytes) { c throws(ParseError) in try MCSConnectInitial.parse(&c) }
            _ = parse(bytes) { c throws(ParseError) in try MCSConnectResponse.parse(&c) }
        }
    }

    @Test func disconnectProviderUltimatum() throws {
        // T.125 DPUm with reason rn-user-requested: 0x21 0x80 (MS-RDPBCGR 2.2.2.3).
        let pdu = try #require(value(parse([0x21, 0x80]) { c throws(ParseError) in try MCSDomainPDU.parse(&c) }))
        #expect(pdu.type == .disconnectProviderUltimatum)
        #expect(pdu.reason == 3)
        #expect(ProtocolTables.mcsReasons[3] == "rn-user-requested")
        let attach = try #require(value(parse([0x28]) { c throws(ParseError) in try MCSDomainPDU.parse(&c) }))
        #expect(attach.type == .attachUserRequest)
    }

    @Test func proprietaryCertificate() throws {
        // MS-RDPBCGR 4.1.4 layout: dwVersion 1, RSA sig/key algs, BB_RSA_KEY_BLOB with a
        // 512-bit key (keylen 72, bitlen 512, datalen 63, exponent 65537).
        var blob = hexBytes("01000000" + "01000000" + "01000000" + "0600" + "5c00")
        blob += hexBytes("52534131" + "48000000" + "00020000" + "3f000000" + "01000100")
        blob += [UInt8](repeating: 0xAB, count: 72)
        blob += hexBytes("0800" + "4800") + [UInt8](repeating: 0xCD, count: 72)
        let cert = try #require(value(parse(blob) { c throws(ParseError) in try ServerCertificate.parse(&c) }))
        guard case .proprietary(let p, let temporary) = cert else { Issue.record("not proprietary"); return }
        #expect(p.keyBits == 512)
        #expect(p.publicExponent == 65537)
        #expect(!temporary)
        var badMagic = blob
        badMagic[16] = 0x51
        #expect(isMalformed(failure(parse(badMagic) { c throws(ParseError) in try ServerCertificate.parse(&c) })))
    }
}

func findSubsequence(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
    guard needle.count <= haystack.count else { return nil }
    for i in 0...(haystack.count - needle.count) where Array(haystack[i..<i + needle.count]) == needle { return i }
    return nil
}

/// Names in client data are UTF-16LE up to a NUL; ASCII ones take a short path. Both paths
/// must give what transcoding the units gives (control characters escaped), on random names
/// (ASCII, DEL and C1 controls, Latin, CJK, emoji halves, lone surrogates) with and without a NUL.
@Suite struct UTF16StringTests {
    @Test func agreesWithTranscoding() {
        var rng = SplitMix(seed: 0x0716)
        let pool: [UInt16] = [0x41, 0x7A, 0x2D, 0x20, 0x7F, 0x80, 0xE9, 0x4E2D, 0xD83D, 0xDE00, 0xDC00, 0xFFFF]
        for _ in 0..<3_000 {
            var units = (0..<Int(rng.next() % 20)).map { _ in
                rng.next() % 3 == 0 ? pool[Int(rng.next() % UInt64(pool.count))] : UInt16(0x20 + rng.next() % 95)
            }
            let want = Printable.escapingControls(String(decoding: units.prefix { $0 != 0 }, as: UTF16.self))
            if rng.next() % 2 == 0 { units += [0] + units }  // a NUL, then bytes that must be ignored
            var bytes: [UInt8] = []
            for u in units { bytes += [UInt8(u & 0xFF), UInt8(u >> 8)] }
            if rng.next() % 4 == 0 { bytes.append(0x41) }  // an odd byte at the end
            let got = withCursor(bytes) { utf16String($0) }
            #expect(got == want, "\(units)")
        }
    }
}
