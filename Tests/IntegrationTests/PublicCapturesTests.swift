import Foundation
import TestSupport
import Testing
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// Real Windows traffic from peers' test suites (../shared/captures-public), checked against
/// what the peers' own tests expect of it (Zeek's rdp.log, Suricata's eve checks, nDPI's
/// flow summary, the brute-force package's description). The verdicts follow from how each
/// trace was cut: a trace that stops mid-sequence is `incomplete`, not a failure.
@Suite(.enabled(if: Prerequisite.runs(Repo.publicCaptureFiles != nil), "../shared/captures-public is absent: public captures skipped"))
struct PublicCapturesTests {
    func load(_ name: String) throws -> Collect {
        let path = Repo.publicCaptures + "/" + name
        try #require(FileManager.default.fileExists(atPath: path), "missing prerequisite: \(path)")
        let c = analyze(path)
        #expect(c.summaries.first?.error == nil)
        return c
    }

    func expectVerdict(_ a: Attempt, _ label: Label, _ cause: Cause, _ stage: Stage, _ ender: Ender,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.verdict.label == label, "rule \(a.verdict.rule): \(a.verdict.summary)", sourceLocation: sourceLocation)
        #expect(a.verdict.cause == cause, sourceLocation: sourceLocation)
        #expect(a.verdict.stage == stage, sourceLocation: sourceLocation)
        #expect(a.verdict.endedBy == ender, sourceLocation: sourceLocation)
    }

    /// zeek/rdp-x509.rdp.log: cookie JOHN-PC, result Success, security RDP, channels
    /// rdpdr,rdpsnd,cliprdr,drdynvc, English - United States, RDP 8.1, JOHN-PC-LAPTOP,
    /// 1920x1080, X.509 with 2 certificates, Client compatible, 128bit.
    @Test func zeekX509() throws {
        let c = try load("zeek/rdp-x509.pcap")
        try #require(c.attempts.count == 1)
        let a = c.attempts[0]
        let r = a.facts.rdp
        #expect(r.connectionRequest?.cookie?.trimmingCharacters(in: .whitespaces) == "JOHN-PC")
        #expect(r.connectionConfirm?.selectedProtocol?.rawValue == 0)
        let ci = try #require(r.mcsConnectInitial)
        #expect(ci.channels == ["rdpdr", "rdpsnd", "cliprdr", "drdynvc"])
        #expect(ci.keyboardLayout == 0x409)
        #expect(ci.clientBuild == 9600)
        #expect(ci.clientName == "JOHN-PC-LAPTOP")
        #expect(ci.desktopWidth == 1920 && ci.desktopHeight == 1080)
        let cr = try #require(r.mcsConnectResponse)
        #expect(cr.result == 0)
        #expect(cr.certificateKind == "x509")
        // zeek/rdp-x509.x509.log: fingerprints, serials, 512-bit RSA keys, sha1WithRSA.
        #expect(Set(cr.certificates.map(\.sha256)) == [
            "e3859c4a77098a7b84589e0cb1171662d15699fc84c19d3421f7d52dc0dc59c9",
            "bd97671306086c3393a1bd835340a68043557a7ae131b8ee72f4d015287024ba",
        ])
        #expect(Set(cr.certificates.map(\.serialNumber)) == ["59EB28CB02B1A0D4", "0100000001"])
        #expect(cr.certificates.allSatisfy { $0.keyType == "RSA" && $0.keyBits == 512 && $0.signatureAlgorithm == "sha1WithRSA" })
        #expect(cr.certificates.first { $0.serialNumber == "59EB28CB02B1A0D4" }?.notBefore == Timestamp(seconds: 1_423_664_106, nanos: 0))
        #expect(cr.encryptionLevel == 2)
        #expect(cr.encryptionMethod == 0x02)
        // The trace stops right after the server's MCS Connect Response.
        #expect(a.facts.tcp.outcome == .open)
        expectVerdict(a, .incomplete, .none, .mcsConnect, .none)
    }

    /// zeek/rdp-unknown-keyboard.rdp.log: keyboard layout 263198 (unknown), no result: the
    /// server's answer to the client data is not in the trace.
    @Test func zeekUnknownKeyboard() throws {
        let c = try load("zeek/rdp-unknown-keyboard.pcap")
        try #require(c.attempts.count == 1)
        let a = c.attempts[0]
        #expect(a.facts.rdp.mcsConnectInitial?.keyboardLayout == 263_198)
        #expect(a.facts.rdp.mcsConnectInitial?.clientName == "JOHN-PC-LAPTOP")
        #expect(a.facts.rdp.mcsConnectResponse == nil)
        #expect(a.facts.tcp.handshake.synCount == 2)
        #expect(a.facts.tcp.handshake.synAckCount == 2)
        #expect(a.facts.tcp.clientSide.retransmissions + a.facts.tcp.serverSide.retransmissions >= 2)
        expectVerdict(a, .incomplete, .none, .mcsConnect, .none)
    }

    /// suricata/RDP-003.test.yaml: cookie A70067, Windows XP (v5) client, ISD2-KM84178,
    /// height 864, channels rdpdr, cliprdr, rdpsnd; a full session the client closes.
    @Test func suricataWindowsXP() throws {
        let c = try load("suricata/RDP-003.pcap")
        try #require(c.attempts.count == 1)
        let a = c.attempts[0]
        let r = a.facts.rdp
        #expect(r.connectionRequest?.cookie == "A70067")
        #expect(r.connectionRequest?.hasNegotiationRequest == false)
        let ci = try #require(r.mcsConnectInitial)
        #expect(ci.clientBuild == 2600)
        #expect(ci.version == 0x0008_0004)
        #expect(ci.clientName == "ISD2-KM84178")
        #expect(ci.desktopHeight == 864)
        #expect(ci.channels == ["rdpdr", "cliprdr", "rdpsnd"])
        #expect(a.facts.tcp.outcome == .closed)
        expectVerdict(a, .success, .none, .session, .client)
    }

    /// ndpi/rdp.pcap: BSD loopback, HYBRID_EX over TLS 1.2, 13 client and 7 server packets,
    /// a normal start: the trace ends right after NLA.
    @Test func ndpiHybridEx() throws {
        let c = try load("ndpi/rdp.pcap")
        try #require(c.attempts.count == 1)
        let a = c.attempts[0]
        let r = a.facts.rdp
        #expect(r.connectionRequest?.cookie == nil)
        #expect(r.connectionRequest?.requestedProtocols?.contains(.hybridEx) == true)
        #expect(r.connectionConfirm?.selectedProtocol == .hybridEx)
        #expect(r.tls?.serverHello?.version == 0x0303)
        #expect(a.facts.tcp.clientSide.packets == 13)
        #expect(a.facts.tcp.serverSide.packets == 7)
        #expect(a.facts.tcp.clientSide.frameBytes + a.facts.tcp.serverSide.frameBytes == 3658)
        expectVerdict(a, .incomplete, .none, .mcsConnect, .none)
    }

    /// initconf/RDP-bruteforce.pcap: 71 attempts from an internet brute-forcer, 6 of them
    /// without SYN-ACK (the package's description and `tshark -z conv,tcp`). Independently
    /// of rdptriage (tshark fields and a short script over `tcp.payload`): the 60 Connection
    /// Requests all carry RDP_NEG_REQ asking for PROTOCOL_HYBRID, and 2 ServerHellos choose
    /// TLS 1.0, 32 TLS 1.2 (`tshark -o tcp.analyze_sequence_numbers:FALSE`, one per stream: one
    /// ServerHello only arrives as a late retransmission). (The README's "26 requests without RDP_NEG_REQ" does not hold:
    /// every request in the trace has one.)
    @Test func bruteForce() throws {
        let c = try load("initconf/RDP-bruteforce.pcap")
        #expect(c.attempts.count == 71)
        #expect(c.attempts.filter { $0.facts.tcp.outcome == .synUnanswered }.count == 6)
        #expect(c.attempts.filter { $0.verdict.label == .synUnanswered }.count == 6)
        let requests = c.attempts.compactMap { $0.facts.rdp.connectionRequest }
        #expect(requests.count == 60)
        #expect(requests.allSatisfy { $0.hasNegotiationRequest && $0.requestedProtocols == .hybrid })
        let versions = c.attempts.compactMap { $0.facts.rdp.tls?.serverHello?.version }
        #expect(versions.filter { $0 == 0x0301 }.count == 2)
        #expect(versions.filter { $0 == 0x0303 }.count == 32)
        // Nanosecond file: the first frame is at 1534789457.000114000.
        #expect(c.attempts.first?.facts.tcp.first.time == Timestamp(seconds: 1_534_789_457, nanos: 114_000))
        // TCP outcomes as tshark shows them (first FIN or RST of each tcp.stream, SYN-ACK or
        // not; counted by hand from `tshark -T fields -e tcp.stream -e tcp.flags.*`): 53 streams
        // end with a FIN, 12 with a RST (3 of them before the client's ACK of the SYN-ACK was
        // seen), 6 SYNs never answered.
        func outcomes(_ o: TCPOutcome) -> Int { c.attempts.filter { $0.facts.tcp.outcome == o }.count }
        #expect(outcomes(.closed) == 53)
        #expect(outcomes(.reset) == 12)
        #expect(outcomes(.synUnanswered) == 6)
        #expect(c.attempts.filter { $0.facts.tcp.established }.count == 62)
        // Verdicts read by hand from the wire (tshark -d tcp.port==3389,tls).
        func attempt(clientPort: UInt16) throws -> Attempt {
            try #require(c.attempts.first { $0.facts.tcp.client.port == clientPort }, "no attempt from port \(clientPort)")
        }
        // Frames 1-8: the client's Connection Request (frame 4) carries its FIN; the server
        // still confirms HYBRID (6) and resets: the client gave up on its own, a scanner's probe.
        expectVerdict(try attempt(clientPort: 51460), .clientAbort, .clientSide, .x224Negotiation, .client)
        // Frames 31-52: TLS completes (both Finished, frames 45-46), then the client resets
        // (47) without sending a byte of CredSSP: it refused the server after the handshake.
        expectVerdict(try attempt(clientPort: 60076), .clientAbort, .clientSide, .tlsHandshake, .client)
        // Frames 294-295: two SYNs, nothing comes back.
        expectVerdict(try attempt(clientPort: 58008), .synUnanswered, .networkBlockade, .tcpHandshake, .none)
    }

    /// The TCP-level outcome of each of the 71 brute-force attempts against tshark's view of
    /// each TCP stream (SYN-ACK or not, and which of FIN and RST came first, from whom).
    @Test(.enabled(if: Prerequisite.runs(Tshark.path != nil), "tshark is not installed"))
    func bruteForceTCPOutcomesAgreeWithTshark() throws {
        let file = Repo.publicCaptures + "/initconf/RDP-bruteforce.pcap"
        let c = try load("initconf/RDP-bruteforce.pcap")
        let rows = try Tshark.run(
            ["-r", file, "-T", "fields", "-E", "separator=\t", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.flags.syn",
             "-e", "tcp.flags.ack", "-e", "tcp.flags.fin", "-e", "tcp.flags.reset"]
        ).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(rows.count > 900)
        // `established`: the client acknowledged the SYN-ACK (an ACK without SYN after it).
        struct Stream { var clientPort = ""; var synAck = false; var established = false; var end: (String, String)? }
        var streams: [String: Stream] = [:]
        for r in rows {
            try #require(r.count == 6, "tshark row \(r)")
            var s = streams[r[0]] ?? Stream()
            let fromServer = r[1] == "3389"
            if s.clientPort.isEmpty && !fromServer { s.clientPort = r[1] }
            if s.synAck && !fromServer && r[2] == "0" && r[3] == "1" { s.established = true }
            if r[2] == "1" && r[3] == "1" && fromServer { s.synAck = true }
            if s.end == nil && (r[4] == "1" || r[5] == "1") {
                s.end = (r[5] == "1" ? "reset" : "closed", fromServer ? "server" : "client")
            }
            streams[r[0]] = s
        }
        #expect(streams.count == c.attempts.count)
        for a in c.attempts {
            let t = a.facts.tcp
            guard let s = streams.values.first(where: { $0.clientPort == String(t.client.port) }) else {
                Issue.record("no tshark stream for client port \(t.client.port)")
                continue
            }
            let want: (String, String?)
            switch (s.synAck, s.end) {
            case (false, nil): want = ("syn-unanswered", nil)
            case (false, let e?): want = (e.1 == "server" && e.0 == "reset" ? "refused" : e.0, e.1)
            case (true, nil): want = (s.established ? "open" : "handshake-incomplete", nil)
            case (true, let e?): want = (e.0, e.1)
            }
            #expect(t.outcome.rawValue == want.0, "port \(t.client.port): \(t.outcome.rawValue), tshark says \(want.0)")
            #expect(t.established == s.established, "port \(t.client.port): established")
            #expect(t.endedBy?.rawValue == want.1, "port \(t.client.port): ended by \(t.endedBy?.rawValue ?? "-")")
        }
    }

    /// RDP-bruteforce.pcap read by hand (`tshark -d tcp.port==3389,tls`, by client port):
    /// - NLA refusals: after the client's third CredSSP record (741-832 bytes) the server sends
    ///   an Encrypted Alert record (content type 21: 26 bytes under AES-GCM, 32 under TLS 1.0,
    ///   64 under CBC), then the client's FIN and the server's RST (or the client's RST).
    ///   60404's AUTHENTICATE is not in the capture, but the server acknowledged its 805 bytes.
    ///   64800 and 63803: the alert is not in the capture, but after the AUTHENTICATE the
    ///   client acknowledges 69 server bytes never captured (Ack=1690 / 1694 against 1621 /
    ///   1625 captured: the size of the 64-byte alert records this server family sends).
    /// - 50227, 65163, 64551: the server retransmits its SYN-ACK after the client's ACK
    ///   ("previous segment not captured": the client had sent 41-44 bytes), the client
    ///   resends its request with FIN for minutes and resets.
    /// - 53254: the server's Connection Confirm (HYBRID, frame 839), the client's ACKs, then
    ///   nothing until the server's RST (frame 843) 90 s later.
    @Test func bruteForceRealWindowsShapes() throws {
        let c = try load("initconf/RDP-bruteforce.pcap")
        func attempt(_ port: UInt16) throws -> Attempt {
            try #require(c.attempts.first { $0.facts.tcp.client.port == port }, "no attempt from port \(port)")
        }
        let refusals: [UInt16: Int] = [
            61736: 257, 52320: 283, 52795: 353, 61488: 397, 62822: 458, 58332: 488, 18591: 522, 50668: 665,
            56199: 761, 57627: 826, 60404: 185,
            // The alert itself is missing; the client's FIN (64800) or RST (63803) acknowledges
            // 69 server bytes past the capture, after the AUTHENTICATE.
            64800: 944, 63803: 75,
            // The ClientHello (client bytes 45-211) is missing; the server's ServerHello
            // (frame 773) answers it, and the rest of the exchange is whole.
            61518: 784,
        ]
        for (port, alert) in refusals.sorted(by: { $0.key < $1.key }) {
            let a = try attempt(port)
            expectVerdict(a, .credsspFailure, .tlsCredSSP, .credssp, .server)
            #expect(a.verdict.evidence.dropFirst(2).first?.frame == alert, "port \(port)")
        }
        for port: UInt16 in [50227, 65163, 64551] {
            let a = try attempt(port)
            #expect(a.verdict.label.rawValue == "path-loss", "port \(port): \(a.verdict.summary)")
            #expect(a.verdict.cause == .networkBlockade)
            #expect(a.verdict.endedBy == .client)
            let text = ([a.verdict.summary] + a.verdict.details).joined(separator: " ")
            #expect(!text.contains(" 0 µs") && !text.contains("after -"), "port \(port): \(text)")
        }
        // 54466: the Connection Request is not captured (the client's ACK in frame 950 is at
        // Seq=46), its ClientHello (frame 952) and the TLS handshake are; the client resets
        // (frame 960) right after the server's Finished.
        let missedRequest = try attempt(54466)
        expectVerdict(missedRequest, .clientAbort, .clientSide, .tlsHandshake, .client)
        let stalled = try attempt(53254)
        expectVerdict(stalled, .clientAbort, .clientSide, .x224Negotiation, .server)
        #expect(stalled.verdict.evidence.map(\.frame) == [834, 835, 839, 843])
        #expect(stalled.verdict.summary.contains("90.000 s"))
    }
}
