import Foundation
import TestSupport
import Testing
import TriageCapture
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// Captures that begin on a running session: no SYN, none of the connection sequence, TLS
/// records or fast-path PDUs both ways. Expected values come from how each capture was
/// written (or from tshark's reading of the committed capture it is cut from).
@Suite struct MidSessionTests {
    typealias W = WireScript

    /// Sentences no report of a running session may carry.
    static let forbidden = ["no RDP request", "never sent an RDP Connection Request", "lost its place"]

    static func sentences(_ a: Attempt) -> [String] {
        let v = a.verdict
        return [v.summary, v.confidence.reason] + v.details + v.evidence.map(\.what) + v.remediation + a.facts.rdp.notes.map(\.description)
    }

    static func checkRunningSession(_ a: Attempt, _ context: String) {
        let v = a.verdict
        #expect(v.stage == .session, "\(context): \(v.rule): \(v.summary)")
        #expect(v.summary.contains("The capture started after the connection was set up"), "\(context): \(v.summary)")
        for s in sentences(a) {
            for f in forbidden { #expect(!s.contains(f), "\(context): \(s)") }
        }
        #expect(a.facts.rdp.lostSync.isEmpty, "\(context)")
    }

    func only(_ path: String) throws -> Attempt {
        let c = analyze(path)
        try #require(c.attempts.count == 1)
        return c.attempts[0]
    }

    /// Fast-path input (MS-RDPBCGR 2.2.8.1.2): fpInputHeader (action 0, numEvents 1), a one-
    /// byte length below 0x80 or a two-byte one with the high bit set, then filler events.
    static func fastPathInput(_ length: Int) -> [UInt8] {
        let header: [UInt8] = length < 0x80 ? [0x04, UInt8(length)] : [0x04, 0x80 | UInt8(length >> 8), UInt8(length & 0xFF)]
        return header + [UInt8](repeating: 0x5A, count: length - header.count)
    }

    /// Fast-path output (2.2.9.1.2): fpOutputHeader 0 (action 0, reserved 0, no flags).
    static func fastPathOutput(_ length: Int) -> [UInt8] {
        let header: [UInt8] = length < 0x80 ? [0x00, UInt8(length)] : [0x00, 0x80 | UInt8(length >> 8), UInt8(length & 0xFF)]
        return header + [UInt8](repeating: 0x11, count: length - header.count)
    }

    /// (a) TLS application data both ways, no handshake; the server's first captured segment
    /// is the last 37 bytes of a record the capture began inside. The client closes.
    @Test func tlsSessionWithoutItsStart() throws {
        let w = W()
        w.data(.s, [UInt8](repeating: 0xA5, count: 37))
        let firstClient = w.data(.c, RDPBytes.application(120))!
        let firstServer = w.data(.s, RDPBytes.application(300) + RDPBytes.application(64))!
        for i in 0..<6 {
            w.data(.c, RDPBytes.application(40 + i))
            w.data(.s, RDPBytes.application(500 + i))
        }
        let fin = w.send(.c, W.fin | W.ack, after: 2)!
        w.send(.s, W.fin | W.ack, after: 0.001)
        w.send(.c, W.ack, after: 0.0003)
        let a = try only(try w.file("midsession-tls"))
        Self.checkRunningSession(a, "tls")
        let v = a.verdict
        #expect(v.label == .success)
        #expect(v.cause == Cause.none)
        #expect(v.endedBy == .client)
        #expect(v.rule == "mid-session")
        let m = try #require(a.facts.rdp.midStream)
        #expect(m.client?.framing == .tls && m.server?.framing == .tls)
        #expect(m.client?.skippedBytes == 0)
        #expect(m.server?.skippedBytes == 37)
        #expect(m.client?.at.frame == firstClient)
        #expect(m.server?.at.frame == firstServer)
        #expect(a.facts.rdp.tls?.applicationRecords.filter { $0.from == .server }.count == 8)
        #expect(v.evidence.contains { $0.frame == fin })
    }

    /// (b) Standard RDP security: fast-path PDUs both ways, one- and two-byte lengths, PDUs
    /// split across segments and segments holding the end of one PDU and the start of the
    /// next; the client's first captured segment is the tail of an input PDU.
    @Test func fastPathSessionWithoutItsStart() throws {
        let w = W()
        w.data(.c, [0x13, 0x37, 0x01, 0x02, 0x03])
        let firstServer = w.data(.s, Self.fastPathOutput(9))!
        let firstClient = w.data(.c, Self.fastPathInput(7))!
        // A 1,500-byte update split 1,000 / 500, then two PDUs cut across one boundary.
        let big = Self.fastPathOutput(1500)
        w.data(.s, Array(big[..<1000]))
        w.data(.s, Array(big[1000...]))
        let pair = Self.fastPathOutput(200) + Self.fastPathOutput(60)
        w.data(.s, Array(pair[..<230]))
        w.data(.s, Array(pair[230...]))
        let input = Self.fastPathInput(300) + Self.fastPathInput(12)
        w.data(.c, Array(input[..<150]))
        w.data(.c, Array(input[150...]))
        w.data(.c, Self.fastPathInput(16))
        w.data(.s, Self.fastPathOutput(127))
        w.send(.c, W.fin | W.ack, after: 1)
        w.send(.s, W.fin | W.ack, after: 0.001)
        w.send(.c, W.ack, after: 0.0003)
        let a = try only(try w.file("midsession-fastpath"))
        Self.checkRunningSession(a, "fast-path")
        let v = a.verdict
        #expect(v.label == .success)
        #expect(v.endedBy == .client)
        let m = try #require(a.facts.rdp.midStream)
        #expect(m.client?.framing == .fastPath && m.server?.framing == .fastPath)
        #expect(m.client?.skippedBytes == 5)
        #expect(m.server?.skippedBytes == 0)
        #expect(m.client?.at.frame == firstClient)
        #expect(m.server?.at.frame == firstServer)
        #expect(m.client?.pdus == 4 && m.client?.fastPathPDUs == 4)
        #expect(m.server?.pdus == 5 && m.server?.fastPathPDUs == 5)
    }

    /// Fast-path output from the server only (the client's input is not captured): the
    /// session was running, but one side's traffic cannot say how it went.
    @Test func oneWayFastPathIsIncompleteAtTheSessionStage() throws {
        let w = W()
        for i in 0..<4 { w.data(.s, Self.fastPathOutput(40 + i), ackedBy: 0.0002) }
        let a = try only(try w.file("midsession-oneway"))
        Self.checkRunningSession(a, "one-way")
        #expect(a.verdict.label == .incomplete)
        #expect(a.facts.rdp.midStream?.server?.fastPathPDUs == 4)
    }

    /// The server resets a running session: `reset`, still at the session stage.
    @Test func serverResetOfARunningSession() throws {
        let w = W()
        for i in 0..<3 {
            w.data(.c, RDPBytes.application(50 + i))
            w.data(.s, RDPBytes.application(400 + i))
        }
        let rst = w.send(.s, W.rst | W.ack, after: 0.5)!
        let a = try only(try w.file("midsession-reset"))
        Self.checkRunningSession(a, "reset")
        #expect(a.verdict.label == .reset)
        #expect(a.verdict.endedBy == .server)
        #expect(a.verdict.evidence.contains { $0.frame == rst })
    }

    /// neg-xrdp-rdp-only.pcap from frame 5 on: the SYN and the client's Connection Request
    /// (frame 4) are cut off; tshark shows the server's Negotiate Response in frame 6 (new
    /// frame 2) and the client's FIN in frame 8 (new 4). The request was sent, before the
    /// capture: nothing may say it never was.
    @Test(.enabled(if: Prerequisite.runs(Run.tool("editcap") != nil), "editcap (wireshark-common) is not installed"))
    func captureBeginningAfterTheRequest() throws {
        let editcap = try #require(Run.tool("editcap"))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("rdptriage-after-request-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try Run.program(editcap, ["-r", Repo.captures + "/neg-xrdp-rdp-only.pcap", out, "5-10"])
        try #require(r.status == 0, "editcap: \(r.stderr)")
        let a = try only(out)
        let v = a.verdict
        for s in Self.sentences(a) {
            for f in Self.forbidden { #expect(!s.contains(f), "\(s)") }
        }
        #expect(v.rule != "no-rdp-request")
        #expect(a.facts.rdp.connectionConfirm?.at.frame == 2)
        #expect(v.evidence.contains { $0.frame == 2 } && v.evidence.contains { $0.frame == 4 })
        #expect(v.stage == .x224Negotiation)
        #expect(v.endedBy == .client)
    }

    /// (c) success-tls.pcap without its first frames (`editcap -r ... N-161`; it has 161 frames). From tshark's
    /// reading of the original: frames 41 (client) and 42 (server) start whole TLS records;
    /// from frame 69 on, the server's stream begins inside a record that started in frame 67
    /// (sequence 3908, 5 + 7125 bytes), so the next record starts in frame 77 at sequence
    /// 11038, 5682 bytes after frame 69's 5356. The client's FIN is frame 159.
    @Test(
        .enabled(if: Prerequisite.runs(Run.tool("editcap") != nil), "editcap (wireshark-common) is not installed"),
        arguments: [(40, 41, 42, Int64(0)), (69, nil, 77, Int64(5682))] as [(Int, Int?, Int, Int64)])
    func realCaptureCutMidSession(first: Int, clientRecord: Int?, serverRecord: Int, skipped: Int64) throws {
        let editcap = try #require(Run.tool("editcap"))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("rdptriage-midsession-\(first)-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try Run.program(editcap, ["-r", Repo.captures + "/success-tls.pcap", out, "\(first)-161"])
        try #require(r.status == 0, "editcap: \(r.stderr)")
        let a = try only(out)
        let renumber = { (frame: Int) in frame - first + 1 }
        Self.checkRunningSession(a, "success-tls from \(first)")
        let v = a.verdict
        #expect(v.label == .success)
        #expect(v.endedBy == .client)
        let m = try #require(a.facts.rdp.midStream)
        #expect(m.server?.skippedBytes == skipped)
        #expect(m.server?.at.frame == renumber(serverRecord))
        if let clientRecord { #expect(m.client?.at.frame == renumber(clientRecord)) }
        #expect(v.evidence.contains { $0.frame == renumber(159) })
        // The text report says the same.
        let text = try Run.program(Repo.executable, ["analyze", out])
        #expect(text.stdout.contains("The capture started after the connection was set up"))
        for f in Self.forbidden { #expect(!text.stdout.contains(f), "\(f) in\n\(text.stdout)") }
    }
}
