import TestSupport
import Testing
import TriageCapture
import TriageDiagnosis
import TriageEngine
import TriageFlows

@testable import TriageReports

/// The TCP summary line, written straight into the report's bytes. Expected lines are written
/// by hand: from the capture as tshark shows it (rst-refused: SYN in frame 1, the server's
/// RST/ACK in frame 2, 39 µs later), and for facts set by hand, from the documented rules
/// (sizes under 10,000 in bytes, then KB and MB with one decimal; times under 1 ms in µs,
/// under 1 s in ms with one decimal, else seconds with three).
@Suite struct TCPLineTests {
    static func template() throws -> TCPFacts {
        try #require(analyze(Repo.captures + "/rst-refused.pcap").attempts.first).facts.tcp
    }

    static func at(_ frame: Int, _ seconds: Double) -> FrameRef {
        FrameRef(frame: frame, time: Timestamp(nanoseconds: 1_764_000_000_000_000_000 + Int64(seconds * 1e9)))
    }

    @Test func refusedAsCaptured() throws {
        let t = try Self.template()
        // tshark -r captures/rst-refused.pcap: 1 SYN (0 bytes of payload), 2 RST/ACK, frame 2
        // at +0.000039 s.
        #expect(Format.tcpLine(t) == "TCP refused by server · SYN ×1 · client 1 pkts/0 B · server 1 pkts/0 B · frames 1–2 · 39 µs")
    }

    @Test func everyOptionalPartAndUnit() throws {
        var t = try Self.template()
        t.outcome = .closed
        t.endedBy = .client
        t.handshake.synCount = 3
        t.handshake.synAckDelay = 0.0123
        t.clientSide.packets = 12
        t.clientSide.payloadBytes = 9_999
        t.serverSide.packets = 7
        t.serverSide.payloadBytes = 10_000
        t.clientSide.retransmissions = 2
        t.serverSide.retransmissions = 1
        t.clientSide.duplicates = 4
        t.serverSide.zeroWindows = 5
        t.first = Self.at(10, 0)
        t.last = Self.at(99, 3.5)
        #expect(
            Format.tcpLine(t)
                == "TCP closed by client · SYN ×3 · SYN-ACK after 12.3 ms · client 12 pkts/9999 B · server 7 pkts/10.0 KB"
                + " · 3 retransmissions · 4 duplicate frames · 5 zero windows · frames 10–99 · 3.500 s")

        t.outcome = .open
        t.endedBy = nil
        t.handshake.synCount = 0
        t.handshake.synAckDelay = nil
        t.clientSide.payloadBytes = 9_999_900
        t.serverSide.payloadBytes = 10_000_000
        t.clientSide.retransmissions = 0
        t.serverSide.retransmissions = 0
        t.clientSide.duplicates = 0
        t.serverSide.zeroWindows = 0
        t.last = Self.at(99, 0.25)
        t.idle = true
        #expect(
            Format.tcpLine(t)
                == "TCP open · client 12 pkts/9999.9 KB · server 7 pkts/10.0 MB · frames 10–99 · 250.0 ms · idle")
    }

    @Test func icmpErrorsAreCounted() throws {
        let a = try #require(analyze(Repo.captures + "/icmp-admin-prohibited.pcap").attempts.first)
        // tshark: the first attempt's two SYNs (frames 1 and 3) each get an ICMP 3/13 (2 and 4).
        #expect(Format.tcpLine(a.facts.tcp).contains(" · 2 ICMP errors · frames 1–4 · "))
    }
}
