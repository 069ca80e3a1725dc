import Foundation
import Testing
@testable import TriageDiagnosis
import TriageCapture
import TriageDecoding
import TriageEngine
@testable import TriageFlows

/// RDP's UDP transport beside a TCP attempt (MS-RDPEMT 1.3, MS-RDPEUDP 3.1.5.1.1): the
/// client's SYN datagrams to the server's port 3389, answered or not. Captures are written
/// byte by byte; expected values come from the script.
@Suite struct UDPSideChannelTests {
    typealias W = WireScript

    /// RDPUDP_FEC_HEADER with RDPUDP_FLAG_SYN (and ACK for the server's answer) and
    /// RDPUDP_SYNDATA_PAYLOAD, zero-padded to 1232 bytes as MS-RDPEUDP 3.1.5.1.1 requires.
    static func rdpudpSYN(ack: Bool) -> [UInt8] {
        let header: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x40, 0x00, ack ? 0x05 : 0x01]
        let syndata: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x04, 0xD0, 0x04, 0xD0]
        return header + syndata + [UInt8](repeating: 0, count: 1232 - header.count - syndata.count)
    }

    /// A working NLA session; after CredSSP the client tries UDP three times (answered by
    /// the server when `answered`), then the session goes on over TCP and the client closes.
    static func session(_ w: W, udp: Bool, answered: Bool) -> (firstClient: Int?, firstServer: Int?) {
        RealWindowsTests.upToCredSSP(w, tls13: false)
        w.data(.c, RDPBytes.application(81), after: 0.3)
        w.data(.s, RDPBytes.application(239))
        w.data(.c, RDPBytes.application(761), after: 0.2)
        w.data(.s, RDPBytes.application(90))
        w.data(.c, RDPBytes.application(150))
        var first: (Int?, Int?) = (nil, nil)
        for i in 0..<10 {
            w.data(.c, RDPBytes.application(200 + i))
            w.data(.s, RDPBytes.application(300 + i))
            if udp && i < 3 {
                let f = w.udp(.c, rdpudpSYN(ack: false), after: 0.3)
                if first.0 == nil { first.0 = f }
                if answered && i == 0 { first.1 = w.udp(.s, rdpudpSYN(ack: true), after: 0.0005) }
            }
        }
        w.send(.c, W.fin | W.ack, after: 5)
        w.send(.s, W.fin | W.ack, after: 0.001)
        w.send(.c, W.ack, after: 0.0003)
        return first
    }

    func only(_ path: String) throws -> Attempt {
        let c = analyze(path)
        try #require(c.attempts.count == 1)
        return c.attempts[0]
    }

    @Test func unansweredUDPIsAHintNotAFailure() throws {
        let w = W()
        let (firstClient, _) = Self.session(w, udp: true, answered: false)
        let a = try only(try w.file("udp-unanswered"))
        let plain = W()
        _ = Self.session(plain, udp: false, answered: false)
        let b = try only(try plain.file("udp-none"))
        let v = a.verdict
        // The verdict is the one the same session without UDP gets.
        #expect(v.label == .success && b.verdict.label == .success)
        #expect(v.cause == b.verdict.cause && v.stage == b.verdict.stage && v.endedBy == b.verdict.endedBy)
        let u = try #require(a.facts.tcp.udpTransport)
        #expect(u.fromClient == 3 && u.fromServer == 0)
        #expect(u.firstFromClient.frame == firstClient)
        #expect(v.details.contains { $0.contains("UDP transport is blocked or unanswered") }, "\(v.details)")
        #expect(v.evidence.contains { $0.frame == firstClient })
        #expect(!b.verdict.details.contains { $0.contains("UDP") })
        #expect(b.facts.tcp.udpTransport == nil)
    }

    @Test func answeredUDPWorks() throws {
        let w = W()
        let (firstClient, firstServer) = Self.session(w, udp: true, answered: true)
        let a = try only(try w.file("udp-answered"))
        let v = a.verdict
        #expect(v.label == .success)
        let u = try #require(a.facts.tcp.udpTransport)
        #expect(u.fromClient == 3 && u.fromServer == 1)
        #expect(u.firstFromServer?.frame == firstServer)
        #expect(v.details.contains { $0.contains("UDP transport works") }, "\(v.details)")
        #expect(!v.details.contains { $0.contains("blocked") })
        #expect(v.evidence.contains { $0.frame == firstClient } && v.evidence.contains { $0.frame == firstServer })
    }

    /// An attempt found on another port by its Connection Request: UDP to that port counts;
    /// UDP from another client, or to another port, does not.
    @Test func theAttemptsOwnPort() throws {
        let w = W()
        w.server.port = 3390
        let (firstClient, _) = Self.session(w, udp: true, answered: false)
        w.client.ip = [192, 0, 2, 77]
        w.udp(.c, Self.rdpudpSYN(ack: false), after: 0.1)
        let a = try only(try w.file("udp-other-port"))
        #expect(a.facts.tcp.server.port == 3390)
        let u = try #require(a.facts.tcp.udpTransport)
        #expect(u.fromClient == 3 && u.firstFromClient.frame == firstClient)
        #expect(a.verdict.label == .success)
    }

    /// The table keeps at most its capacity of (client, server) pairs, the oldest forgotten.
    @Test func tableIsBounded() throws {
        let table = UDPSideChannelTable(capacity: 4)
        let server = Endpoint(IPAddress(ipv4: 0xC633_6414), 3389)
        for i in 0..<10 {
            let t = Timestamp(nanoseconds: Int64(i) * 1_000_000)
            table.record(
                source: Endpoint(IPAddress(ipv4: 0xC000_0200 + UInt32(i)), 50_000), destination: server,
                sourceIsRDPPort: false, destinationIsRDPPort: true, at: FrameRef(frame: i + 1, time: t))
        }
        #expect(table.count == 4)
        let all = Timestamp(nanoseconds: Int64.max)
        #expect(table.take(client: IPAddress(ipv4: 0xC000_0200), server: server, from: Timestamp(nanoseconds: 0), to: all) == nil)
        #expect(table.take(client: IPAddress(ipv4: 0xC000_0209), server: server, from: Timestamp(nanoseconds: 0), to: all)?.firstFromClient.frame == 10)
    }
}
