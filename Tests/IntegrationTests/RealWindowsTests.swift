import Foundation
import Testing
import TriageCapture
@testable import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// Shapes of real Windows traffic (FACTS.md section 4; public captures of Windows servers),
/// written frame by frame as the shape describes them. Expected verdicts follow from the
/// script, not from the tool.
@Suite struct RealWindowsTests {
    typealias W = WireScript

    /// X.224 with HYBRID, then a TLS handshake, TLS 1.2 (AES-GCM) or 1.3.
    static func upToCredSSP(_ w: W, tls13: Bool) {
        w.handshake()
        w.data(.c, RDPBytes.requestHybrid, after: 0.3)
        w.data(.s, RDPBytes.confirmHybrid)
        tlsAfterConfirm(w, tls13: tls13)
    }

    /// The TLS handshake, TLS 1.2 (AES-GCM) or 1.3.
    static func tlsAfterConfirm(_ w: W, tls13: Bool) {
        w.data(.c, RDPBytes.clientHello(tls13: tls13), after: 0.2)
        if tls13 {
            w.data(.s, RDPBytes.serverHello(tls13: true) + RDPBytes.changeCipherSpec + RDPBytes.application(900))
            w.data(.c, RDPBytes.changeCipherSpec + RDPBytes.application(53), after: 0.3)
        } else {
            w.data(.s, RDPBytes.serverHello() + RDPBytes.serverHelloDone)
            w.data(.c, RDPBytes.clientKeyExchange + RDPBytes.changeCipherSpec + RDPBytes.finished, after: 0.3)
            w.data(.s, RDPBytes.changeCipherSpec + RDPBytes.finished)
        }
    }

    struct Refusal {
        var authenticate: Int
        var alert: Int
        var clientFIN: Int
        var serverRST: Int
    }

    /// FACTS.md section 4, how Windows refuses NLA credentials: NEGOTIATE, CHALLENGE, the
    /// client's AUTHENTICATE (large); the server's alert record; the client's FIN; the
    /// server's RST.
    @discardableResult
    static func refusedLogon(_ w: W, tls13: Bool) -> Refusal {
        upToCredSSP(w, tls13: tls13)
        w.data(.c, RDPBytes.application(81), after: 0.3)
        w.data(.s, RDPBytes.application(239))
        let authenticate = w.data(.c, RDPBytes.application(761), after: 0.2)!
        // TLS 1.3 hides the alert in an application_data record: 2 bytes, the inner type, the tag.
        let alert = w.data(.s, tls13 ? RDPBytes.application(19) : RDPBytes.encryptedAlert(26), after: 1.0, ackedBy: nil)!
        let fin = w.send(.c, W.fin | W.ack, after: 0.2)!
        w.send(.s, W.ack, after: 0.0003)
        let rst = w.send(.s, W.rst | W.ack, after: 0.00004)!
        return Refusal(authenticate: authenticate, alert: alert, clientFIN: fin, serverRST: rst)
    }

    /// A logon that works: NLA completes and the session's records flow both ways.
    static func goodLogon(_ w: W) {
        upToCredSSP(w, tls13: false)
        w.data(.c, RDPBytes.application(81), after: 0.3)
        w.data(.s, RDPBytes.application(239))
        w.data(.c, RDPBytes.application(761), after: 0.2)
        w.data(.s, RDPBytes.application(90))
        w.data(.c, RDPBytes.application(150))
        for i in 0..<10 {
            w.data(.c, RDPBytes.application(200 + i))
            w.data(.s, RDPBytes.application(300 + i))
        }
        w.send(.c, W.fin | W.ack, after: 5)
        w.send(.s, W.fin | W.ack, after: 0.001)
        w.send(.c, W.ack, after: 0.0003)
    }

    func only(_ path: String) throws -> Attempt {
        let c = analyze(path)
        try #require(c.attempts.count == 1)
        return c.attempts[0]
    }

    /// TLS 1.2: the alert record's type is visible; the client's FIN lands between the alert
    /// and the server's RST. The server ended it: a CredSSP failure, not a client abort.
    @Test func windowsRefusesCredentialsWithAnAlertThenReset() throws {
        let w = W()
        let frames = Self.refusedLogon(w, tls13: false)
        let a = try only(try w.file("nla-refused-tls12"))
        let v = a.verdict
        #expect(v.label == .credsspFailure, "rule \(v.rule): \(v.summary)")
        #expect(v.cause == .tlsCredSSP)
        #expect(v.stage == .credssp)
        #expect(v.endedBy == .server)
        #expect(v.confidence.level == .high)
        // After the handshake frames every verdict carries, the alert is the first evidence.
        let own = v.evidence.filter { $0.frame != a.facts.tcp.handshake.syns.first?.frame && $0.frame != a.facts.tcp.handshake.synAck?.frame }
        #expect(own.first?.frame == frames.alert)
        #expect(v.evidence.contains { $0.frame == frames.serverRST })
        #expect(!v.summary.contains("before the client sent its credentials"))
        #expect(!v.remediation.joined().contains("before the client sent its credentials"))
        #expect(v.remediation.first?.contains("4625") == true)
    }

    /// The same with the server's RST and no client FIN: still the server's refusal, with the
    /// same evidence.
    @Test func refusalWithoutTheClientsFIN() throws {
        let w = W()
        Self.upToCredSSP(w, tls13: false)
        w.data(.c, RDPBytes.application(81), after: 0.3)
        w.data(.s, RDPBytes.application(239))
        w.data(.c, RDPBytes.application(761), after: 0.2)
        let alert = w.data(.s, RDPBytes.encryptedAlert(26), after: 1.0, ackedBy: nil)!
        w.send(.s, W.rst | W.ack, after: 0.001)
        let v = try only(try w.file("nla-refused-nofin")).verdict
        #expect(v.label == .credsspFailure)
        #expect(v.endedBy == .server)
        #expect(v.evidence.dropFirst(2).first?.frame == alert)
    }

    /// TLS 1.3 hides the alert in an application_data record: the shape (a small final server
    /// record right after the AUTHENTICATE, then the server's RST) says the same with less
    /// certainty.
    @Test func tls13RefusalIsReadFromTheShape() throws {
        let w = W()
        let frames = Self.refusedLogon(w, tls13: true)
        let a = try only(try w.file("nla-refused-tls13"))
        let v = a.verdict
        #expect(v.label == .credsspFailure, "rule \(v.rule): \(v.summary)")
        #expect(v.cause == .tlsCredSSP)
        #expect(v.stage == .credssp)
        #expect(v.endedBy == .server)
        #expect(v.confidence.level == .medium)
        #expect(v.confidence.reason.contains("TLS 1.3"))
        #expect(v.evidence.dropFirst(2).first?.frame == frames.alert)
    }

    /// The refusal with the server's alert lost before the capture point: the client's FIN
    /// acknowledges the 31 bytes (a 26-byte alert record and its header) the capture never
    /// saw; then the server's RST.
    @Test(arguments: [31, 400])
    func refusalWithTheAlertMissingFromTheCapture(answer: Int) throws {
        let w = W()
        Self.upToCredSSP(w, tls13: false)
        w.data(.c, RDPBytes.application(81), after: 0.3)
        w.data(.s, RDPBytes.application(239))
        w.data(.c, RDPBytes.application(761), after: 0.2)
        w.send(.s, W.psh | W.ack, RDPBytes.encryptedAlert(answer - 5), after: 1.0, captured: false)
        let fin = w.send(.c, W.fin | W.ack, after: 0.2)!
        w.send(.s, W.ack, after: 0.0003)
        let rst = w.send(.s, W.rst | W.ack, after: 0.00004)!
        let v = try only(try w.file("nla-refused-unseen-\(answer)")).verdict
        if answer > 100 {
            // Too large for an alert: not this rule's to decide.
            #expect(v.rule != "credssp-alert")
            return
        }
        #expect(v.label == .credsspFailure, "rule \(v.rule): \(v.summary)")
        #expect(v.cause == .tlsCredSSP)
        #expect(v.endedBy == .server)
        #expect(v.confidence.level == .medium)
        #expect(v.evidence.dropFirst(2).first?.frame == fin)
        #expect(v.evidence.dropFirst(2).first?.what.contains("the client's FIN acknowledges 31 bytes") == true)
        #expect(v.evidence.contains { $0.frame == rst })
    }

    /// The ClientHello lost before the capture point (RDP-bruteforce.pcap, client port 61518):
    /// the server's ServerHello answers it, so TLS began; the rest is the refusal's shape.
    @Test func refusalWithTheClientHelloMissingFromTheCapture() throws {
        let w = W()
        w.handshake()
        w.data(.c, RDPBytes.requestHybrid, after: 0.3)
        w.data(.s, RDPBytes.confirmHybrid)
        w.send(.c, W.psh | W.ack, RDPBytes.clientHello(), after: 0.2, captured: false)
        w.data(.s, RDPBytes.serverHello() + RDPBytes.serverHelloDone)
        w.data(.c, RDPBytes.clientKeyExchange + RDPBytes.changeCipherSpec + RDPBytes.finished, after: 0.3)
        w.data(.s, RDPBytes.changeCipherSpec + RDPBytes.finished)
        w.data(.c, RDPBytes.application(81), after: 0.3)
        w.data(.s, RDPBytes.application(239))
        w.data(.c, RDPBytes.application(761), after: 0.2)
        let alert = w.data(.s, RDPBytes.encryptedAlert(26), after: 1.0, ackedBy: nil)!
        w.send(.c, W.fin | W.ack, after: 0.2)
        w.send(.s, W.rst | W.ack, after: 0.001)
        let v = try only(try w.file("nla-refused-no-clienthello")).verdict
        #expect(v.label == .credsspFailure, "rule \(v.rule): \(v.summary)")
        #expect(v.stage == .credssp)
        #expect(v.endedBy == .server)
        #expect(v.evidence.dropFirst(2).first?.frame == alert)
    }

    /// The same loss, and the client resets after the server's TLS answer: the client left
    /// during the TLS handshake, not after the negotiation (client port 64279).
    @Test func clientLeavingAfterTheServerHelloWithTheClientHelloMissing() throws {
        let w = W()
        w.handshake()
        w.data(.c, RDPBytes.requestHybrid, after: 0.3)
        w.data(.s, RDPBytes.confirmHybrid)
        w.send(.c, W.psh | W.ack, RDPBytes.clientHello(), after: 0.2, captured: false)
        w.data(.s, RDPBytes.serverHello() + RDPBytes.serverHelloDone, ackedBy: nil)
        w.send(.c, W.rst | W.ack, after: 2)
        let v = try only(try w.file("client-leaves-no-clienthello")).verdict
        #expect(v.label == .clientAbort, "rule \(v.rule): \(v.summary)")
        #expect(v.stage == .tlsHandshake)
        #expect(v.endedBy == .client)
    }

    /// The X.224 exchange lost before the capture point (client port 54466): the client's
    /// ClientHello follows 19 bytes the server acknowledged, so a request was sent; the
    /// client resets after the TLS handshake.
    @Test func requestMissingFromTheCaptureIsNotANeverSentRequest() throws {
        let w = W()
        w.handshake()
        w.send(.c, W.psh | W.ack, RDPBytes.requestHybrid, after: 0.3, captured: false)
        w.send(.s, W.psh | W.ack, RDPBytes.confirmHybrid, after: 0.001, captured: false)
        Self.tlsAfterConfirm(w, tls13: false)
        w.send(.c, W.rst | W.ack, after: 0.3)
        let v = try only(try w.file("request-missing")).verdict
        #expect(!v.summary.contains("never sent an RDP Connection Request"), "\(v.summary)")
        #expect(v.label == .clientAbort, "rule \(v.rule): \(v.summary)")
        #expect(v.stage == .tlsHandshake)
    }

    /// A client that closes during CredSSP with no alert from the server stays a client abort.
    @Test func clientClosingWithoutAnAlertIsStillTheClients() throws {
        let w = W()
        Self.upToCredSSP(w, tls13: false)
        w.data(.c, RDPBytes.application(81), after: 0.3)
        w.data(.s, RDPBytes.application(239))
        w.send(.c, W.fin | W.ack, after: 2)
        w.send(.s, W.rst | W.ack, after: 0.001)
        let v = try only(try w.file("nla-client-closes")).verdict
        #expect(v.label == .clientAbort)
        #expect(v.endedBy == .client)
    }

    /// A user who mistyped the password and retried seconds later: the story says so.
    @Test func retryAfterFailedLogonIsTold() throws {
        let w = W(clientPort: 50_000)
        Self.refusedLogon(w, tls13: false)
        let retry = W(clientPort: 50_001, start: w.now + 6_000_000_000)
        Self.goodLogon(retry)
        // One capture: the second attempt's frames after the first's.
        let both = W()
        for f in w.frames + retry.frames { both.append(f) }
        let c = analyze(try both.file("nla-retry"))
        try #require(c.attempts.count == 2)
        #expect(c.attempts.map(\.verdict.label) == [.credsspFailure, .success])
        let stories = Story.build(c.attempts.enumerated().map { AttemptSummary(id: $0.offset, facts: $0.element.facts, verdict: $0.element.verdict) })
        try #require(stories.count == 1)
        #expect(stories[0].outcome == .success)
        #expect(stories[0].narrative.lowercased().contains("a retry after a failed logon succeeded"), "\(stories[0].narrative)")
    }

    /// Loss on the client-to-server path (the shape of RDP-bruteforce.pcap attempt #22): the
    /// client's ACK and request never reach the server, which keeps repeating its SYN-ACK; the
    /// client retransmits its request for minutes and gives up with an RST.
    struct PathLoss {
        var ack: Int
        var retries: [Int]
        var rst: Int
    }

    /// The client's handshake ACK and request never reach the server, which repeats its
    /// SYN-ACK; the client resends its request with FIN for minutes and resets.
    @discardableResult
    static func clientPathLoss(_ w: W) -> PathLoss {
        w.send(.c, W.syn, after: 0, ack: 0, options: [2, 4, 0x05, 0xAC])
        w.send(.s, W.syn | W.ack, after: 0.0007, options: [2, 4, 0x05, 0xB4])
        let clientISN = w.client.next &- 1
        let serverISN = w.server.next &- 1
        let synAckAgain = { (after: Double) in
            _ = w.send(.s, W.syn | W.ack, after: after, seq: serverISN, ack: clientISN &+ 1, options: [2, 4, 0x05, 0xB4])
        }
        synAckAgain(3)
        // The handshake ACK and the request leave the client unseen; a later ACK is captured.
        w.send(.c, W.ack, after: 0.2, captured: false)
        w.send(.c, W.psh | W.ack, RDPBytes.requestHybrid, after: 0.001, captured: false)
        let ack = w.send(.c, W.ack, after: 0.001)!
        synAckAgain(6)
        var retries: [Int] = []
        for wait in [14.0, 23.0, 71.0] {
            retries.append(w.send(.c, W.fin | W.psh | W.ack, RDPBytes.requestHybrid, after: wait, seq: clientISN &+ 1)!)
        }
        let rst = w.send(.c, W.rst | W.ack, after: 60, seq: clientISN &+ 2 &+ UInt32(RDPBytes.requestHybrid.count))!
        return PathLoss(ack: ack, retries: retries, rst: rst)
    }

    @Test func clientPacketsLostOnTheWayToTheServer() throws {
        let w = W()
        let lost = Self.clientPathLoss(w)
        let (ack, retries, rst) = (lost.ack, lost.retries, lost.rst)
        let c = analyze(try w.file("client-path-loss"))
        try #require(c.attempts.count == 1)
        let v = c.attempts[0].verdict
        let f = c.attempts[0].facts.tcp
        #expect(v.label.rawValue == "path-loss", "rule \(v.rule): \(v.summary)")
        #expect(v.cause == .networkBlockade)
        #expect(v.endedBy == .client)
        #expect(v.evidence.contains { $0.frame == rst })
        #expect(v.evidence.contains { $0.frame == retries[0] })
        // The client gave up after minutes of retransmissions, counted from its handshake ACK.
        let completed = try #require(f.handshake.completed)
        let tried = try #require(f.resets.first?.at.time.seconds(since: completed.time))
        #expect(f.handshake.completed?.frame == ack)
        #expect(tried > 160)
        let text = ([v.summary] + v.details + v.evidence.map(\.what)).joined(separator: "\n")
        #expect(text.contains(Numbers.duration(tried)), "\(text)")
        #expect(!text.contains(" 0 µs"))
    }

    /// A silent client the server times out (RDP-bruteforce.pcap attempt #61): the server
    /// confirmed HYBRID, the client acknowledged and sent nothing for 90 s, the server reset.
    @Test func silentClientTimedOutByTheServer() throws {
        let w = W()
        w.handshake()
        w.data(.c, RDPBytes.requestHybrid, after: 7)
        let confirm = w.data(.s, RDPBytes.confirmHybrid, after: 0.008)!
        let rst = w.send(.s, W.rst | W.ack, after: 90)!
        let c = analyze(try w.file("client-stall"))
        try #require(c.attempts.count == 1)
        let v = c.attempts[0].verdict
        #expect(v.label == .clientAbort, "rule \(v.rule): \(v.summary)")
        #expect(v.cause == .clientSide)
        #expect(v.stage == .x224Negotiation)
        #expect(v.evidence.contains { $0.frame == confirm })
        #expect(v.evidence.contains { $0.frame == rst })
        #expect(v.summary.contains(Numbers.duration(90.0002)) || v.summary.contains(Numbers.duration(90.0)), "\(v.summary)")
    }

    /// A server that closes right after its Confirm has not waited for anyone: still its own
    /// early disconnect.
    @Test func quickCloseAfterConfirmStaysTheServers() throws {
        let w = W()
        w.handshake()
        w.data(.c, RDPBytes.requestHybrid, after: 0.2)
        w.data(.s, RDPBytes.confirmHybrid, after: 0.008)
        w.send(.s, W.rst | W.ack, after: 0.5)
        let c = analyze(try w.file("quick-close"))
        let v = try #require(c.attempts.first).verdict
        #expect(v.label == .earlyDisconnect)
        #expect(v.cause == .hostNotAccepting)
    }
}
