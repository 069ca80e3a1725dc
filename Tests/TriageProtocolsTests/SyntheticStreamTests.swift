import TestSupport
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// Exchanges built from the specs' layouts for cases the public captures lack: TLS 1.3,
/// non-RDP services, negotiation failures, clear-text alerts, losses in the capture, and
/// garbage. Each is also checked under every segmentation.
@Suite struct SyntheticStreamTests {
    /// Segments from (direction, bytes) parts: one frame each, numbered from 1.
    static func exchange(_ parts: [(FixtureSegment.D, [UInt8])]) -> [FixtureSegment] {
        var offsets: [FixtureSegment.D: Int64] = [.c: 0, .s: 0]
        var out: [FixtureSegment] = []
        for (i, part) in parts.enumerated() {
            let seq = offsets[part.0] ?? 0
            var s = FixtureSegment(part.0, frame: i + 1, time: Int64(i) * 1_000_000, seq: seq, "")
            s.bytes = part.1
            out.append(s)
            offsets[part.0] = seq + Int64(part.1.count)
        }
        return out
    }

    static func record(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        [type, 0x03, 0x03, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    static func encrypted(_ length: Int, fill: UInt8 = 0x5A) -> [UInt8] { record(23, [UInt8](repeating: fill, count: length)) }

    static func handshake(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        [type, 0, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    static let clientHello13: [UInt8] = {
        let versions = hexBytes("002b0005" + "0403040303")
        let body = hexBytes("0303") + [UInt8](repeating: 0x22, count: 32) + [0] + hexBytes("00021301" + "0100")
            + [0, UInt8(versions.count)] + versions
        return record(22, handshake(1, body))
    }()
    static let serverHello13 = record(22, handshake(2, TLSTests.tls13ServerHello))
    static let ccs = hexBytes("140303000101")
    static let crHybrid = TPKTTests.crNdpi
    static let ccHybrid = hexBytes("030000130ed000001234000200080002000000")
    static let ccHybridEx = TPKTTests.ccNdpi

    static func assertSegmentationFree(_ segments: [FixtureSegment], _ label: String) -> RDPFacts {
        let reference = StreamPlayer.play(segments, .asCaptured)
        for how in StreamTests.cuts {
            #expect(StreamPlayer.play(segments, how) == reference, "\(label), \(how)")
        }
        return reference
    }

    @Test func tls13CredSSPEndsWithHiddenAlert() throws {
        let segments = Self.exchange([
            (.c, Self.crHybrid), (.s, Self.ccHybrid), (.c, Self.clientHello13),
            (.s, Self.serverHello13 + Self.ccs + Self.encrypted(900)),
            (.c, Self.ccs + Self.encrypted(53) + Self.encrypted(74)),
            (.s, Self.encrypted(250)), (.c, Self.encrypted(600)), (.s, Self.encrypted(19)),
        ])
        let f = Self.assertSegmentationFree(segments, "tls13 hidden alert")
        let tls = try #require(f.tls)
        #expect(tls.isTLS13)
        #expect(tls.clientHello?.supportedVersions == [0x0304, 0x0303])
        #expect(tls.certificates.isEmpty)
        #expect(tls.handshakeComplete)
        // The client's Finished (53) is not application data; the server's flight neither.
        #expect(tls.applicationRecords.map(\.length) == [74, 250, 600, 19])
        // The eighth segment (exchange() numbers frames from 1, a millisecond apart).
        let at = FrameRef(frame: 8, time: Timestamp(nanoseconds: 7_000_000))
        #expect(tls.alerts == [TLSAlertFacts(at: at, from: .server, level: nil, description: nil, encrypted: true)])
        #expect(f.credssp?.phase == .authenticate)
        #expect(f.credssp?.likelyErrorReply == nil)
    }

    @Test func tls13ClientRefusesTheServer() throws {
        let segments = Self.exchange([
            (.c, Self.crHybrid), (.s, Self.ccHybrid), (.c, Self.clientHello13),
            (.s, Self.serverHello13 + Self.ccs + Self.encrypted(900)), (.c, Self.ccs + Self.encrypted(19)),
        ])
        let f = Self.assertSegmentationFree(segments, "tls13 client alert")
        let tls = try #require(f.tls)
        #expect(!tls.handshakeComplete)
        #expect(tls.applicationRecords.isEmpty)
        #expect(tls.alerts.map(\.from) == [.client])
        #expect(tls.alerts.first?.encrypted == true)
        #expect(tls.alerts.first?.at.frame == 5)
    }

    @Test func tls13EarlyUserAuthorizationIsNotAnAlert() throws {
        let segments = Self.exchange([
            (.c, Self.crHybrid), (.s, Self.ccHybridEx), (.c, Self.clientHello13),
            (.s, Self.serverHello13 + Self.encrypted(900)), (.c, Self.encrypted(53) + Self.encrypted(74)),
            (.s, Self.encrypted(250)), (.c, Self.encrypted(600)), (.s, Self.encrypted(76)), (.c, Self.encrypted(93)),
            (.s, Self.encrypted(21)),
        ])
        let f = Self.assertSegmentationFree(segments, "tls13 EUA")
        #expect(f.credssp?.phase == .earlyUserAuthorization)
        #expect(f.credssp?.reachedAt?.frame == 10)
        #expect(f.tls?.alerts == [])
    }

    @Test func helloRetryRequestIsNoted() throws {
        var hrr = TLSTests.tls13ServerHello
        hrr.replaceSubrange(2..<34, with: TLSServerHello.helloRetryRequestRandom)
        let segments = Self.exchange([
            (.c, Self.crHybrid), (.s, Self.ccHybrid), (.c, Self.clientHello13),
            (.s, Self.record(22, Self.handshake(2, hrr)) + Self.ccs), (.c, Self.ccs + Self.clientHello13),
            (.s, Self.serverHello13),
        ])
        let f = Self.assertSegmentationFree(segments, "HRR")
        #expect(f.tls?.helloRetryRequest?.frame == 4)
        #expect(f.tls?.serverHello?.at.frame == 6)
        #expect(f.tls?.isTLS13 == true)
    }

    @Test func clearTextAlertFromTheServer() throws {
        let ccSSL = hexBytes("030000130ed000001234000200080001000000")
        let segments = Self.exchange([
            (.c, Self.crHybrid), (.s, ccSSL), (.c, Self.clientHello13), (.s, hexBytes("15030300020246")),
        ])
        let f = Self.assertSegmentationFree(segments, "clear alert")
        let alert = try #require(f.tls?.alerts.first)
        #expect(alert == TLSAlertFacts(at: alert.at, from: .server, level: 2, description: 70, encrypted: false))
        #expect(alert.at.frame == 4)
        #expect(f.credssp == nil)
    }

    /// A capture that starts mid-stream with nothing but a server alert: the alert is still
    /// reported, with TLS facts around it (they are made by the first record of any kind).
    @Test func alertAloneStartsTheTLSFacts() throws {
        let segments = Self.exchange([(.s, hexBytes("15030300020228"))])
        let f = StreamPlayer.play(segments, .asCaptured, startsMidStream: true)
        let tls = try #require(f.tls)
        #expect(tls.alerts.map(\.description) == [40])
        #expect(tls.clientHello == nil && tls.applicationRecords.isEmpty)
    }

    @Test func negotiationFailure() throws {
        let f = Self.assertSegmentationFree(
            Self.exchange([(.c, TPKTTests.crZeek), (.s, TPKTTests.ccFailure)]), "neg failure")
        #expect(f.connectionConfirm?.failure == .hybridRequiredByServer)
        #expect(f.connectionConfirm?.selectedProtocol == nil)
        #expect(f.connectionConfirm?.at.frame == 2)
    }

    @Test func disconnectRequestFromTheServer() throws {
        let f = Self.assertSegmentationFree(Self.exchange([(.c, TPKTTests.crZeek), (.s, TPKTTests.dr)]), "DR")
        #expect(f.disconnectRequest?.frame == 2)
        #expect(f.disconnectRequestFrom == .server)
        #expect(f.disconnectRequestReason == 128)
        #expect(f.connectionConfirm == nil)
    }

    @Test func sshOnTheRDPPort() throws {
        let banner = Array("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".utf8)
        let f = Self.assertSegmentationFree(Self.exchange([(.s, banner), (.c, TPKTTests.crZeek)]), "ssh")
        #expect(f.firstServerPayload == .ssh)
        #expect(f.serverBanner == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")
        #expect(f.serverBannerAt?.frame == 1)
        #expect(f.firstClientPayload == .x224ConnectionRequest)
        #expect(f.connectionRequest?.cookie == "JOHN-PC  ")
    }

    @Test func httpAnswer() throws {
        let answer = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8)
        let f = Self.assertSegmentationFree(Self.exchange([(.c, TPKTTests.crZeek), (.s, answer)]), "http")
        #expect(f.firstServerPayload == .http)
        #expect(f.serverBanner == "HTTP/1.1 400 Bad Request")
        #expect(f.connectionConfirm == nil)
    }

    @Test func shortBinaryAnswer() throws {
        let f = Self.assertSegmentationFree(Self.exchange([(.c, TPKTTests.crZeek), (.s, [0x00, 0x00, 0xFF, 0x13])]), "binary")
        #expect(f.firstServerPayload == .binary)
        #expect(f.serverBanner == nil)
    }

    @Test func garbageAfterTheConfirmIsNotALossOfSync() throws {
        let f = Self.assertSegmentationFree(
            Self.exchange([(.c, TPKTTests.crZeek), (.s, TPKTTests.ccBare), (.c, [0x01, 0x02, 0x03, 0x04, 0x05, 0x06])]),
            "garbage")
        #expect(f.lostSync == [])
        #expect(f.notes.contains { $0.description.hasPrefix("client frame 3:") })
    }

    @Test func captureStartingInsideTheStreams() throws {
        // The SYN was missed: the server's first captured bytes are the middle of a record,
        // the client's start at a record boundary.
        let segments = Self.exchange([(.s, [0x9C, 0x41, 0x07, 0xEE, 0x00, 0x12, 0x88, 0x90]), (.c, Self.encrypted(90))])
        let f = StreamPlayer.play(segments, .asCaptured, startsMidStream: true)
        #expect(f.firstServerPayload == nil)
        #expect(f.serverBanner == nil)
        // Not a loss of place: the capture began inside a record, and no boundary came after.
        #expect(f.lostSync == [])
        #expect(f.midStream?.server == nil)
        #expect(f.midStream?.client?.framing == .tls)
        #expect(f.firstClientPayload == .tls)
        #expect(f.tls?.applicationRecords.map(\.length) == [90])
        // Without the flag the same bytes read as a binary service.
        #expect(StreamPlayer.play(segments, .asCaptured).firstServerPayload == .binary)
    }

    /// PDU boundaries a capture that began mid-stream may join at (MS-RDPBCGR 2.2.8.1.2,
    /// 2.2.9.1.2; RFC 1006; RFC 5246 6.2.1), from header bytes as the specs lay them out.
    @Test func midStreamBoundaries() {
        func at(_ bytes: [UInt8], _ d: Direction) -> RDPConnectionParser.Boundary {
            bytes.withUnsafeBytes { RDPConnectionParser.boundary(ByteCursor($0), direction: d) }
        }
        #expect(at([0x17, 0x03, 0x03, 0x00, 0x20], .serverToClient) == .found(.tls))
        // TLS record version 3.5 and length 0 are not records.
        #expect(at([0x17, 0x03, 0x05, 0x00, 0x20, 0, 0], .serverToClient) == .none)
        #expect(at([0x17, 0x03], .clientToServer) == .needMore)
        // TPKT + X.224 Data (LI 2, DT 0xF0, EOT): slow-path MCS.
        #expect(at([0x03, 0x00, 0x00, 0x0C, 0x02, 0xF0, 0x80, 0x64, 0, 0, 0, 0], .clientToServer) == .found(.tpkt))
        #expect(at([0x03, 0x00, 0x00, 0x0C, 0x02, 0x40, 0x80], .clientToServer) == .none)
        // fpOutputHeader 0x00 / 0x80 (encrypted flag), one- and two-byte lengths.
        #expect(at([0x00, 0x09, 0x01, 0x02, 0x00], .serverToClient) == .found(.fastPath))
        #expect(at([0x80, 0x81, 0x2C], .serverToClient) == .found(.fastPath))
        // The output header's reserved bits must be 0; the input header's numEvents may not be.
        #expect(at([0x04, 0x09, 0x01], .serverToClient) == .none)
        #expect(at([0x04, 0x09, 0x01], .clientToServer) == .found(.fastPath))
        // Action bits 1 (not fast-path), a length too small for one event, too few bytes.
        #expect(at([0x05, 0x09, 0x01], .clientToServer) == .none)
        #expect(at([0x04, 0x02, 0x01], .clientToServer) == .none)
        #expect(at([0x04, 0x81], .clientToServer) == .needMore)
        #expect(at([], .clientToServer) == .needMore)
    }

    // MARK: - Losses

    /// The ndpi exchange with a hole cut out of one segment (`drop` bytes after `keep`).
    static func ndpiWithHole(frame: Int, keep: Int, drop: Int) -> [FixtureSegment] {
        var out: [FixtureSegment] = []
        for s in CaptureFixtures.ndpiHybridEx {
            guard s.frame == frame else {
                out.append(s)
                continue
            }
            var head = s
            head.bytes = Array(s.bytes[0..<keep])
            var tail = s
            tail.seq = s.seq + Int64(keep + drop)
            tail.bytes = Array(s.bytes[(keep + drop)...])
            if !head.bytes.isEmpty { out.append(head) }
            out.append(tail)
        }
        return out
    }

    @Test func holeInsideAnApplicationRecordKeepsItsShape() {
        // Frame 16 carries the client's 567-byte record; 100 of its bytes are lost.
        let reference = StreamPlayer.play(CaptureFixtures.ndpiHybridEx, .asCaptured)
        let holed = Self.ndpiWithHole(frame: 16, keep: 50, drop: 100)
        for how in [Segmentation.asCaptured, .oneByte, .random(seed: 3)] {
            #expect(StreamPlayer.play(holed, how) == reference, "\(how)")
        }
    }

    @Test func holeInsideTheServerFlight() {
        // Frame 8 holds ServerHello, Certificate, ServerKeyExchange and ServerHelloDone.
        let f = StreamPlayer.play(Self.ndpiWithHole(frame: 8, keep: 100, drop: 200), .asCaptured)
        #expect(f.lostSync == [])
        #expect(f.tls?.serverHello == nil)
        #expect(f.tls?.handshakeComplete == true)
        #expect(f.credssp?.phase == .earlyUserAuthorization)
        #expect(f.notes.contains { $0.description.contains("partly lost") })
    }

    @Test func lostWholeRecordResynchronises() {
        // Frame 13 (the client's 81-byte record, exactly one record) is not in the capture.
        let segments = CaptureFixtures.ndpiHybridEx.filter { $0.frame != 13 }
        let f = StreamPlayer.play(segments, .asCaptured)
        #expect(f.lostSync == [])
        #expect(f.notes.contains { $0.description.contains("resynchronised") })
        #expect(f.tls?.applicationRecords.map(\.length) == [286, 567, 83, 100, 28])
        for how in [Segmentation.oneByte, .random(seed: 5)] {
            #expect(StreamPlayer.play(segments, how) == f, "\(how)")
        }
    }

    @Test func holeAtARecordBoundaryLosesTheDirection() {
        // The first 10 bytes of frame 16 (the record header among them) are lost.
        let f = StreamPlayer.play(Self.ndpiWithHole(frame: 16, keep: 0, drop: 10), .asCaptured)
        #expect(f.lostSync == [.client])
        #expect(f.tls?.applicationRecords.filter { $0.from == .client }.map(\.length) == [81])
        #expect(f.notes.contains { $0.description.contains("no PDU header after a gap") })
    }

    // MARK: - Garbage never traps

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix(seed: 2024)
        for round in 0..<200 {
            var parts: [(FixtureSegment.D, [UInt8])] = []
            for _ in 0..<Int(rng.next() % 8 + 1) {
                let n = Int(rng.next() % 300)
                var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                // Half the rounds start like RDP or TLS so the parsers get past the first byte.
                if round % 2 == 0 && !bytes.isEmpty { bytes[0] = [0x03, 0x16, 0x17, 0x15][Int(rng.next() % 4)] }
                parts.append((rng.next() % 2 == 0 ? .c : .s, bytes))
            }
            let f = StreamPlayer.play(Self.exchange(parts), .random(seed: UInt64(round)))
            #expect(f.notes.count <= RDPConnectionParser.maxNotes)
            #expect((f.tls?.alerts.count ?? 0) <= RDPConnectionParser.maxAlerts)
        }
    }

    @Test func mutatedCapturesNeverTrap() {
        var rng = SplitMix(seed: 77)
        let sources = [CaptureFixtures.zeekX509, CaptureFixtures.ndpiHybridEx, CaptureFixtures.suricataXP]
        for round in 0..<150 {
            var segments = sources[round % sources.count]
            for _ in 0..<4 {
                let i = Int(rng.next() % UInt64(segments.count))
                guard !segments[i].bytes.isEmpty else { continue }
                let j = Int(rng.next() % UInt64(segments[i].bytes.count))
                segments[i].bytes[j] = UInt8(truncatingIfNeeded: rng.next())
            }
            let f = StreamPlayer.play(segments, .asCaptured)
            #expect(f.notes.count <= RDPConnectionParser.maxNotes)
        }
    }
}
