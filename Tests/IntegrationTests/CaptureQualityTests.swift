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

    /// A capture cut short inside its last record, as tcpdump leaves it when killed while
    /// writing: `bytes` fewer of the file.
    static func cutShort(_ w: WireScript, _ name: String, by bytes: Int = 7) throws -> String {
        let path = try w.file(name)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Every complete frame is analysed; the report and standard error carry a warning; the
    /// exit code follows the verdicts (1: the refused logon failed), not the input (2).
    @Test func lastRecordCutShortIsAWarningNotAnUnreadableInput() throws {
        let w = WireScript()
        RealWindowsTests.refusedLogon(w, tls13: false)
        // The cut record is the server's final RST; the alert and the client's FIN are whole.
        let path = try Self.cutShort(w, "cut-refusal")
        let r = try Run.program(Repo.executable, ["analyze", "--color", "never", path])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.contains("credssp-failure"))
        #expect(r.stdout.contains("warning:") && r.stdout.contains("cut in the middle of frame \(w.frames.count)"), "\(r.stdout)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("rdptriage: warning: \(path):"), "\(r.stderr)")
        // JSON: the warning beside a null error; the run's exit code is the verdicts'.
        let j = try Run.program(Repo.executable, ["analyze", "--format", "json", path])
        #expect(j.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        let input = try #require((doc["inputs"] as? [[String: Any]])?.first)
        #expect(input["error"] is NSNull)
        #expect((input["warning"] as? [String: Any])?["kind"] as? String == "truncated")
        #expect((doc["summary"] as? [String: Any])?["input_errors"] as? Int == 0)
        // A healthy capture cut the same way is still healthy.
        let good = WireScript()
        RealWindowsTests.goodLogon(good)
        let healthy = try Run.program(Repo.executable, ["analyze", try Self.cutShort(good, "cut-good")])
        #expect(healthy.status == 0, "\(healthy.stdout)")
        // A file cut inside its header is unreadable: 2, as before.
        let header = try w.file("cut-header")
        try Data(try Data(contentsOf: URL(fileURLWithPath: header)).prefix(12)).write(to: URL(fileURLWithPath: header))
        #expect(try Run.program(Repo.executable, ["analyze", header]).status == 2)
    }
}
