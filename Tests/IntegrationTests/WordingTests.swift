import Foundation
import Testing
import TriageCapture
@testable import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols
@testable import TriageReports

/// Every sentence about how an attempt ended, rendered against every label and every ender:
/// none may name "the none", blame a side for a forged RST, or describe a wait of nothing.
@Suite struct WordingTests {
    /// Words no sentence may carry: an ender's raw value where a party belongs, a wait of
    /// zero or less.
    static let forbidden = ["the none", "by none", "none's", " after 0 µs", "for 0 µs", "within 0 µs", "after -", "for -"]

    static func check(_ text: String, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for word in forbidden {
            #expect(!text.contains(word), "\(context): \"\(word)\" in: \(text)", sourceLocation: sourceLocation)
        }
    }

    /// The ending templates themselves, for every TCP outcome, ender and verb.
    @Test func endingTemplates() {
        for outcome in TCPOutcome.allCases {
            for ender in Ender.allCases {
                for verb in ["ended", "closed", "reset"] {
                    let t = Wording.ended(outcome, by: ender, verb: verb)
                    Self.check(t, "\(outcome)/\(ender)/\(verb)")
                    if let party = ender.party { #expect(t.contains(party)) }
                    if ender == .middlebox { #expect(!t.contains("the server") && !t.contains("the client")) }
                }
                for side in [Side.client, Side.server, nil] {
                    let line = Wording.tcpClose(outcome, by: side, verdictEnder: ender)
                    #expect(!line.contains("none"))
                    if ender == .middlebox, let side, outcome == .reset || outcome == .refused {
                        #expect(line == "\(outcome.rawValue) by middlebox (posing as \(side.rawValue))")
                    }
                }
            }
        }
    }

    /// Facts of every committed capture, the public ones when present, and scripted shapes.
    static func allFacts() throws -> [AttemptFacts] {
        var paths = Repo.committedCaptures + (Repo.publicCaptureFiles ?? [])
        let refusal = WireScript()
        RealWindowsTests.refusedLogon(refusal, tls13: false)
        let lost = WireScript()
        RealWindowsTests.clientPathLoss(lost)
        // A session the server resets within seconds of starting (label `reset`).
        let reset = WireScript()
        RealWindowsTests.upToCredSSP(reset, tls13: false)
        for length in [81, 239, 761, 90, 150] { reset.data(length == 239 || length == 90 ? .s : .c, RDPBytes.application(length)) }
        for i in 0..<10 {
            reset.data(.c, RDPBytes.application(200 + i))
            reset.data(.s, RDPBytes.application(300 + i))
        }
        reset.send(.s, WireScript.rst | WireScript.ack, after: 0.5)
        // A capture that began on a running TLS session (rule mid-session), which the client closes.
        let mid = WireScript()
        for i in 0..<4 {
            mid.data(.c, RDPBytes.application(60 + i))
            mid.data(.s, RDPBytes.application(400 + i))
        }
        mid.send(.c, WireScript.fin | WireScript.ack, after: 1)
        mid.send(.s, WireScript.fin | WireScript.ack, after: 0.001)
        paths += [
            try refusal.file("wording-refusal"), try lost.file("wording-path-loss"), try reset.file("wording-reset"),
            try mid.file("wording-mid-session"),
        ]
        return paths.flatMap { analyze($0).attempts.map(\.facts) }
    }

    /// Each attempt's facts, also with its end given to each party in turn (an RST made a
    /// forgery by its TTL for the middlebox), classified and rendered in every format: every
    /// label and every ender is met, and no sentence contradicts who the verdict says ended
    /// the attempt.
    @Test func verdictSentencesAgreeWithTheirFacts() throws {
        var labels = Set<Label>()
        var enders = Set<Ender>()
        for f in try Self.allFacts() {
            for ender in Ender.allCases {
                var g = f
                switch ender {
                case .client: g.tcp.endedBy = .client
                case .server: g.tcp.endedBy = .server
                case .none: g.tcp.endedBy = nil
                case .middlebox:
                    guard g.tcp.outcome == .reset, !g.tcp.resets.isEmpty, let hi = g.tcp.resets[0].sameSideTTLMax else { continue }
                    g.tcp.resets[0].ttl = hi &+ 40
                }
                let v = Classifier.classify(g)
                labels.insert(v.label)
                enders.insert(v.endedBy)
                let context = "\(f.tcp.input) #\(f.tcp.id) as \(ender): \(v.label.rawValue) by \(v.endedBy.rawValue)"
                let sentences = [v.summary, v.confidence.reason] + v.details + v.evidence.map(\.what) + v.remediation
                let line = Format.tcpLine(g.tcp, verdictEnder: v.endedBy)
                for s in sentences + [line] { Self.check(s, context) }
                // "ended by" names the party the verdict names, and nobody else.
                for other in Ender.allCases where other != v.endedBy {
                    guard let party = other.party else { continue }
                    for s in sentences {
                        #expect(!s.contains("ended by \(party)"), "\(context): \(s)")
                    }
                }
                if v.endedBy == .middlebox, g.tcp.outcome == .reset, g.tcp.endedBy != nil {
                    #expect(line.contains("middlebox"), "\(context): \(line)")
                }
                if v.endedBy == .middlebox {
                    for s in sentences {
                        #expect(!s.contains("reset by the server") && !s.contains("reset by the client"), "\(context): \(s)")
                    }
                }
            }
        }
        #expect(labels == Set(Label.allCases), "labels never met: \(Set(Label.allCases).subtracting(labels))")
        #expect(enders == Set(Ender.allCases))
    }

    /// mtu-blackhole.pcap read with tshark: the server's captured bytes end at relative
    /// sequence 20 (its 19-byte Connection Confirm), and its ACK in frame 10 carries
    /// Seq=1367 ("previous segment not captured"): it had sent 1347 bytes the capture never saw.
    @Test func mtuBlackholeShowsTheServersUnseenBytes() throws {
        let a = try #require(analyze(Repo.captures + "/mtu-blackhole.pcap").attempts.first)
        #expect(a.verdict.label == .mtuBlackhole)
        let e = a.verdict.evidence.first { $0.frame == 10 }
        #expect(e?.what.contains("1347 bytes") == true, "\(a.verdict.evidence.map(\.what))")
    }

    /// reset-injected.pcap: the RST carries the server's address with TTL 64 where the
    /// server's packets have 63. The report's TCP line must not call it the server's.
    @Test func forgedResetIsNotTheServersInTheTCPLine() throws {
        let r = try Run.program(Repo.executable, ["analyze", "--color", "never", Repo.captures + "/reset-injected.pcap"])
        #expect(r.stdout.contains("reset-by-middlebox"))
        #expect(!r.stdout.contains("TCP reset by server"), "\(r.stdout)")
        #expect(r.stdout.contains("TCP reset by middlebox (posing as server)"))
    }
}
