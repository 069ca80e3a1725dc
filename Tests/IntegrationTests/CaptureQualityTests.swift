import Foundation
import Testing
import TriageCapture
@testable import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// Captures whose recording is itself imperfect: frames recorded twice, a last record cut
/// short. Built byte for byte; the expected results follow from how they were written.
@Suite struct CaptureQualityTests {
    /// Every frame of `w` twice, as a SPAN port or two capture points record it: the copy
    /// carries other MAC addresses (and one hop less TTL when `hop`), the same IP ID, TCP
    /// sequence and payload, `lag` frames later.
    static func doubled(_ w: WireScript, lag: Int, hop: Bool) -> WireScript {
        let out = WireScript()
        var pending: [(bytes: [UInt8], time: Int64)] = []
        for f in w.frames {
            out.append(f)
            var copy = f.bytes
            copy.replaceSubrange(0..<12, with: [2, 0, 0, 0, 0, 0xA1, 2, 0, 0, 0, 0, 0xA2])
            if hop { copy[14 + 8] -= 1 }
            pending.append((copy, f.time + 50_000))
            if pending.count > lag { out.append(pending.removeFirst()) }
        }
        for p in pending { out.append(p) }
        return out
    }

    @Test(arguments: [(0, false), (0, true), (6, false), (12, true)])
    func framesRecordedTwiceAreDuplicatesNotRetransmissions(lag: Int, hop: Bool) throws {
        let w = WireScript()
        RealWindowsTests.goodLogon(w)
        let single = try #require(analyze(try w.file("single")).attempts.first)
        let c = analyze(try Self.doubled(w, lag: lag, hop: hop).file("doubled-\(lag)-\(hop)"))
        try #require(c.attempts.count == 1)
        let a = c.attempts[0]
        let t = a.facts.tcp
        #expect(t.clientSide.retransmissions == 0 && t.serverSide.retransmissions == 0, "lag \(lag)")
        #expect(t.clientSide.duplicates + t.serverSide.duplicates == w.frames.count, "lag \(lag)")
        #expect(t.clientSide.packets + t.serverSide.packets == w.frames.count)
        #expect(a.verdict.label == single.verdict.label)
        #expect(a.verdict.details.contains { $0.contains("recorded twice") }, "\(a.verdict.details)")
    }
}
