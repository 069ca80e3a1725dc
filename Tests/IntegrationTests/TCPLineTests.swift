import TestSupport
import Testing
import TriageDiagnosis
import TriageEngine
import TriageFlows

@testable import TriageReports

/// The TCP summary line is written straight into the report's bytes; the reference here is
/// the string building it replaced. Facts come from every committed capture, with their
/// counters changed at random (large, zero, and the optional parts on and off).
@Suite struct TCPLineTests {
    static func reference(_ t: TCPFacts) -> String {
        var parts = ["TCP " + t.outcome.rawValue + (t.endedBy.map { " by " + $0.rawValue } ?? "")]
        let h = t.handshake
        if h.synCount > 0 { parts.append("SYN ×\(h.synCount)") }
        if let d = h.synAckDelay { parts.append("SYN-ACK after " + Format.seconds(d)) }
        parts.append("client \(t.clientSide.packets) pkts/" + Format.bytes(t.clientSide.payloadBytes))
        parts.append("server \(t.serverSide.packets) pkts/" + Format.bytes(t.serverSide.payloadBytes))
        let retrans = t.clientSide.retransmissions + t.serverSide.retransmissions
        if retrans > 0 { parts.append("\(retrans) retransmissions") }
        let dups = t.clientSide.duplicates + t.serverSide.duplicates
        if dups > 0 { parts.append("\(dups) duplicate frames") }
        let zw = t.clientSide.zeroWindows + t.serverSide.zeroWindows
        if zw > 0 { parts.append("\(zw) zero windows") }
        if !t.icmp.isEmpty { parts.append("\(t.icmp.count) ICMP errors") }
        parts.append("frames \(t.first.frame)–\(t.last.frame)")
        parts.append(Format.seconds(t.durationSeconds))
        if t.idle { parts.append("idle") }
        return parts.joined(separator: " · ")
    }

    @Test func agreesWithPlainStringBuilding() throws {
        var rng = SplitMix(seed: 0x7C9)
        func count() -> Int { [0, 1, 7, 12_345, Int.max / 4][Int(rng.next() % 5)] }
        func bytes() -> Int64 { [0, 9_999, 10_000, 9_999_999, 10_000_000, 1 << 40][Int(rng.next() % 6)] }
        var checked = 0
        for path in Repo.committedCaptures {
            for a in analyze(path).attempts {
                let original = a.facts.tcp
                #expect(Format.tcpLine(original) == Self.reference(original))
                for _ in 0..<50 {
                    var t = original
                    t.handshake.synCount = count()
                    t.handshake.synAckDelay = rng.next() % 2 == 0 ? nil : Double(rng.next() % 5_000_000) / 1e6
                    t.clientSide.packets = count()
                    t.serverSide.packets = count()
                    t.clientSide.payloadBytes = bytes()
                    t.serverSide.payloadBytes = bytes()
                    t.clientSide.retransmissions = count()
                    t.serverSide.duplicates = count()
                    t.clientSide.zeroWindows = count()
                    #expect(Format.tcpLine(t) == Self.reference(t))
                    checked += 1
                }
            }
        }
        #expect(checked > 1_000)
    }
}
