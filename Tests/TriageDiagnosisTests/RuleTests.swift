import Foundation
import Testing
import TriageCapture
import TriageDecoding
@testable import TriageDiagnosis
@testable import TriageFlows
@testable import TriageProtocols

/// Facts built by hand, the way a protocol layer would hand them over: each test states one
/// situation of FACTS.md section 6 and the verdict the taxonomy gives it, rule by rule,
/// without a capture. The end-to-end tests on the lab's captures check the same rules on
/// real traffic.
enum Build {
    static let client = Endpoint(IPAddress("192.0.2.10")!, 50_000)
    static let server = Endpoint(IPAddress("198.51.100.20")!, 3389)

    /// Frame `n`, `ms` milliseconds into the attempt.
    static func at(_ n: Int, _ ms: Int64 = 0) -> FrameRef {
        FrameRef(frame: n, time: Timestamp(seconds: 1_700_000_000, nanos: ms * 1_000_000))
    }

    static func side(ttl: UInt8? = nil, payload: Int64 = 0, fin: FinEvent? = nil) -> SideFacts {
        SideFacts(
            frames: 1, frameBytes: 60, packets: 1, payloadBytes: payload, streamBytes: payload, retransmissions: 0,
            firstRetransmission: nil, duplicates: 0, zeroWindows: 0, firstZeroWindow: nil, duplicateAcks: 0, sackBlocks: 0,
            outOfOrder: 0, largestSegment: Int(payload), mss: 1460, windowScale: nil, sackPermitted: true, timestamps: false,
            ttlMin: ttl, ttlMax: ttl, cutFrames: 0, fin: fin, rstCount: 0, gaps: [], gapCount: 0, gapBytes: 0,
            acknowledgedUnseen: 0, overlapBytes: 0, conflictingOverlapBytes: 0, cutBytes: 0, lastDataFrame: nil)
    }

    /// An attempt's TCP facts: `syns` SYN frames from frame 1, the SYN-ACK and ACK when
    /// `established`, and how it ended.
    static func tcp(
        syns: Int = 1, established: Bool = true, outcome: TCPOutcome, endedBy: Side? = nil, decisive: FrameRef? = nil,
        last: Int = 10, resets: [ResetEvent] = [], icmp: [ICMPEvent] = [], clientSide: SideFacts? = nil,
        serverSide: SideFacts? = nil
    ) -> TCPFacts {
        let synFrames = (0..<syns).map { at($0 + 1, Int64($0) * 1000) }
        let synAck = established ? at(syns + 1, Int64(syns) * 1000) : nil
        return TCPFacts(
            input: "built", id: 0, client: client, server: server, roleSource: .syn, outcome: outcome, established: established,
            endedBy: endedBy, decisive: decisive, first: synFrames[0], last: at(last, 5000),
            handshake: HandshakeFacts(
                synCount: syns, syns: synFrames, synIntervals: Array(repeating: 1.0, count: syns - 1), synAck: synAck,
                synAckCount: established ? 1 : 0, completed: established ? at(syns + 2, Int64(syns) * 1000 + 1) : nil),
            clientSide: clientSide ?? side(ttl: 128), serverSide: serverSide ?? side(ttl: 117), resets: resets, icmp: icmp,
            fragments: 0, idle: false, supersededBy: nil)
    }

    static func reset(_ n: Int, from: Side, ttl: UInt8, sameSideTTL: UInt8?, answersSYN: Bool = false) -> ResetEvent {
        ResetEvent(
            at: at(n, 2000), from: from, ttl: ttl, ipID: 0, isIPv6: false, beforeEstablished: answersSYN, answersSYN: answersSYN,
            sameSideTTLMin: sameSideTTL, sameSideTTLMax: sameSideTTL, sameSideLastIPID: nil, sameSidePackets: sameSideTTL == nil ? 0 : 3,
            clientBytesBefore: 0, serverBytesBefore: 0, acknowledgedPeerBytes: nil)
    }

    static func fin(_ n: Int, from: Side) -> FinEvent {
        FinEvent(at: at(n, 3000), from: from, clientBytesBefore: 0, serverBytesBefore: 0, acknowledgedPeerBytes: nil)
    }

    static func request(_ n: Int, protocols: SecurityProtocols = [.ssl, .hybrid]) -> ConnectionRequestFacts {
        ConnectionRequestFacts(
            at: at(n, 1500), cookie: nil, routingToken: nil, hasNegotiationRequest: true, requestedProtocols: protocols, flags: 0,
            correlationID: nil)
    }

    static func attempt(_ tcp: TCPFacts, _ edit: (inout RDPFacts) -> Void = { _ in }) -> AttemptFacts {
        var rdp = RDPFacts()
        edit(&rdp)
        return AttemptFacts(tcp: tcp, rdp: rdp, dns: [])
    }
}

@Suite struct TCPRuleTests {
    /// FACTS.md section 6, host not accepting sessions: an RST answers the SYN.
    @Test func rstAnsweringTheSYN() {
        let rst = Build.reset(2, from: .server, ttl: 117, sameSideTTL: nil, answersSYN: true)
        let v = Classifier.classify(
            Build.attempt(Build.tcp(established: false, outcome: .refused, endedBy: .server, decisive: rst.at, last: 2, resets: [rst])))
        #expect(v.rule == "refused")
        #expect(v.label == .rstRefused && v.cause == .hostNotAccepting && v.stage == .tcpHandshake && v.endedBy == .server)
        #expect(v.clientReport?.code == .reason(0x204))
        #expect(v.remediation.count == Knowledge.remediation["rst-refused"]?.count)
        #expect(v.evidence.contains { $0.frame == 2 })
    }

    /// Network blockade: SYNs retried with no answer at all; one SYN alone is less sure.
    @Test func unansweredSYNs() {
        let three = Classifier.classify(Build.attempt(Build.tcp(syns: 3, established: false, outcome: .synUnanswered, last: 3)))
        #expect(three.rule == "syn-unanswered" && three.label == .synUnanswered && three.cause == .networkBlockade)
        #expect(three.endedBy == Ender.none && three.confidence.level == .high)
        let one = Classifier.classify(Build.attempt(Build.tcp(syns: 1, established: false, outcome: .synUnanswered, last: 1)))
        #expect(one.label == .synUnanswered && one.confidence.level == .medium)
    }

    /// An administratively-prohibited ICMP error from a router quoting the SYN: a filter there.
    @Test func icmpAdministrativelyProhibited() {
        let e = ICMPEvent(
            at: Build.at(2, 10), isV6: false, type: 3, code: 13, reporter: IPAddress("192.0.2.1")!, ttl: 64, about: .client,
            quotesSYN: true, mtu: nil)
        let v = Classifier.classify(
            Build.attempt(Build.tcp(established: false, outcome: .icmpUnreachable, decisive: e.at, last: 2, icmp: [e])))
        #expect(v.label == .icmpUnreachable && v.cause == .networkBlockade && v.endedBy == .middlebox)
        #expect(v.remediation.first?.contains("192.0.2.1") == true, "the icmp-admin steps name the router")
    }

    /// An RST claiming to be the server's whose TTL is not the server's: forged on the path.
    @Test func forgedReset() {
        let rst = Build.reset(6, from: .server, ttl: 64, sameSideTTL: 117)
        let v = Classifier.classify(
            Build.attempt(Build.tcp(outcome: .reset, endedBy: .server, decisive: rst.at, resets: [rst])) { $0.connectionRequest = Build.request(4) })
        #expect(v.rule == "reset-by-middlebox")
        #expect(v.label == .resetByMiddlebox && v.endedBy == .middlebox && v.cause == .networkBlockade)
        // The same RST with the server's own TTL is the server's.
        let own = Build.reset(6, from: .server, ttl: 117, sameSideTTL: 117)
        let w = Classifier.classify(
            Build.attempt(Build.tcp(outcome: .reset, endedBy: .server, decisive: own.at, resets: [own])) { $0.connectionRequest = Build.request(4) })
        #expect(w.label != .resetByMiddlebox && w.endedBy == .server)
    }
}

@Suite struct RDPRuleTests {
    /// RDP_NEG_FAILURE: a negotiation failure the client reports as such, with the code's own
    /// remediation, or the general one for a code without.
    @Test(arguments: [
        (NegotiationFailureCode.hybridRequiredByServer, "negotiation-HYBRID_REQUIRED_BY_SERVER"),
        (NegotiationFailureCode.inconsistentFlags, "negotiation-other"),
        (NegotiationFailureCode(rawValue: 99), "negotiation-other"),
    ])
    func negotiationFailure(_ code: NegotiationFailureCode, _ entry: String) {
        let fin = Build.fin(7, from: .server)
        let f = Build.attempt(
            Build.tcp(outcome: .closed, endedBy: .server, decisive: fin.at, serverSide: Build.side(ttl: 117, payload: 19, fin: fin))
        ) {
            $0.connectionRequest = Build.request(4)
            $0.connectionConfirm = ConnectionConfirmFacts(
                at: Build.at(6, 1600), selectedProtocol: nil, flags: 0, failure: code, noNegotiationData: false)
        }
        let v = Classifier.classify(f)
        #expect(v.rule == "negotiation-failure")
        #expect(v.label == .negotiationFailure && v.cause == .tlsCredSSP && v.stage == .x224Negotiation)
        #expect(v.clientReport?.code == .kind(.negotiation))
        #expect(Remedy.negotiation(code).name == entry)
        #expect(v.remediation.count == Knowledge.remediation[entry]?.count)
    }

    /// The server speaks SSH on the RDP port: the port leads to the wrong service.
    @Test func foreignService() {
        let fin = Build.fin(7, from: .server)
        let f = Build.attempt(Build.tcp(outcome: .closed, endedBy: .server, decisive: fin.at)) {
            $0.firstClientPayload = .x224ConnectionRequest
            $0.connectionRequest = Build.request(4)
            $0.firstServerPayload = .ssh
            $0.serverBanner = "SSH-2.0-OpenSSH_9.2p1"
            $0.serverBannerAt = Build.at(5, 1550)
        }
        let v = Classifier.classify(f)
        #expect(v.label == .nonRDPService && v.cause == .resolutionMismatch && v.endedBy == .server)
        #expect(v.summary.contains("SSH"), "\(v.summary)")
    }
}

@Suite struct ProxyRuleTests {
    static func refused(_ kind: ProxyKind, _ code: Int, reason: String? = nil) -> Verdict {
        let fin = Build.fin(10, from: .server)
        let f = Build.attempt(Build.tcp(outcome: .closed, endedBy: .server, decisive: fin.at)) {
            var p = ProxyFacts(kind: kind)
            p.request = ProxyRequest(kind: kind, host: "198.51.100.20", port: 3389)
            p.requestAt = Build.at(8, 12)
            p.reply = ProxyReply(kind: kind, code: code, reason: reason)
            p.replyAt = Build.at(9, 13)
            $0.proxy = p
        }
        return Classifier.classify(f)
    }

    /// The proxy's answer is the verdict: what it says about the target decides cause and
    /// who ended the attempt.
    @Test(arguments: [
        (ProxyKind.socks5, 5, Cause.hostNotAccepting, Ender.server, "proxy-refused"),
        (.socks5, 4, .networkBlockade, .middlebox, "proxy-unreachable"),
        (.socks5, 2, .networkBlockade, .middlebox, "proxy-denied"),
        (.socks5, 8, .clientSide, .middlebox, "proxy-unsupported"),
        (.socks5, 1, .networkBlockade, .middlebox, "proxy-failed"),
        (.socks4, 91, .networkBlockade, .middlebox, "proxy-failed"),
        (.http, 403, .networkBlockade, .middlebox, "proxy-denied"),
        (.http, 502, .networkBlockade, .middlebox, "proxy-failed"),
        (.http, 504, .networkBlockade, .middlebox, "proxy-unreachable"),
    ])
    func answer(_ kind: ProxyKind, _ code: Int, _ cause: Cause, _ ender: Ender, _ entry: String) {
        let v = Self.refused(kind, code)
        #expect(v.rule == "proxy-refused")
        #expect(v.label == .proxyRefused && v.stage == .tcpHandshake)
        #expect(v.cause == cause && v.endedBy == ender, "\(kind) \(code)")
        #expect(v.confidence.level == .high)
        #expect(v.clientReport?.code == .reason(0x204))
        #expect(v.remediation.count == Knowledge.remediation[entry]?.count, "\(kind) \(code) → \(entry)")
        #expect(v.evidence.contains { $0.frame == 9 })
        #expect(v.details.contains { $0.contains("198.51.100.20:3389") })
    }

    /// A granted tunnel is no verdict by itself: the RDP inside decides.
    @Test func grantedTunnelIsNotARefusal() {
        let v = Self.refused(.socks5, 0)
        #expect(v.label != .proxyRefused)
        #expect(v.details.contains { $0.contains("Through a SOCKS5 proxy") })
    }

    /// Asked, never answered, and the client hung up: the client gave up on the proxy.
    @Test func unansweredRequest() {
        let fin = Build.fin(9, from: .client)
        let f = Build.attempt(Build.tcp(outcome: .closed, endedBy: .client, decisive: fin.at)) {
            var p = ProxyFacts(kind: .http)
            p.request = ProxyRequest(kind: .http, host: "rdp.corp.example", port: 3389)
            p.requestAt = Build.at(4, 1)
            $0.proxy = p
        }
        let v = Classifier.classify(f)
        #expect(v.label == .proxyRefused && v.cause == .clientSide && v.endedBy == .client)
        #expect(v.confidence.level == .medium)
    }
}

/// The typed vocabulary the rules use, and the text it renders to.
@Suite struct VocabularyTests {
    @Test func clientCodes() throws {
        #expect(ClientCode.reason(0x904, extended: 0x7).description == "0x904/0x7")
        #expect(ClientCode.reason(0x204).description == "0x204")
        #expect(ClientCode.kind(.local).description == "local")
        #expect(ClientCode.kind(.security).code == nil && ClientCode.kind(.security).kind == .security)
        #expect(ClientCode(code: "0x904", extended: "0x7") == .reason(0x904, extended: 0x7))
        #expect(ClientCode(code: "protocol", extended: nil) == .kind(.protocol))
        #expect(ClientCode(code: "local", extended: "0x7") == nil)
        #expect(ClientCode(code: "nonsense", extended: nil) == nil)
        // The JSON keeps its first form: code as text, extended only when there is one.
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        let json = String(decoding: try e.encode(Knowledge.socketClosed), as: UTF8.self)
        #expect(json.hasPrefix(#"{"code":"0x904","extended":"0x7","meaning":"#), "\(json)")
        let local = String(decoding: try e.encode(Knowledge.localDecision), as: UTF8.self)
        #expect(local.hasPrefix(#"{"code":"local","meaning":"#), "\(local)")
        #expect(try JSONDecoder().decode(ClientReport.self, from: Data(json.utf8)) == Knowledge.socketClosed)
        // --reported compares numbers, not text.
        #expect(ReportedCode("2308/7")?.matches(Knowledge.socketClosed) == true)
        #expect(ReportedCode("0x904")?.matches(Knowledge.socketClosedByFIN) == true)
        #expect(ReportedCode("0x904/0x8")?.matches(Knowledge.socketClosed) == false)
        #expect(ReportedCode("0x204")?.matches(Knowledge.localDecision) == false)
    }

    /// Every remedy a rule can name has steps in the knowledge base (no silent fallback to an
    /// empty list), and every label's default too.
    @Test func remediesHaveEntries() {
        var all: [Remedy] = [
            .synUnanswered, .rstRefused, .icmpAdmin, .icmpNoHost, .icmpOther, .resetByMiddlebox, .mtuBlackhole, .pathLoss,
            .clientStall, .tlsAlertProtocolVersion, .tlsAlertHandshakeFailure, .tlsAlertCertificate, .tlsAlertOther,
            .tlsRejected, .tlsInspection, .credsspFailure, .credsspEarly, .earlyDisconnect, .serverRefused, .logonNotGranted, .nlaPolicyMismatch,
            .clientAbort,
            .nonRDPService, .reset, .sessionReset, .incomplete, .handshakeIncomplete, .udpUnanswered, .midSession,
            .noRDPRequest, .proxyRefused, .proxyDenied, .proxyUnreachable, .proxyUnsupported, .proxyFailed, .success,
            .negotiation(nil),
        ]
        all += (1...6).map { .negotiation(NegotiationFailureCode(rawValue: $0)) }
        all += Label.allCases.compactMap(\.remedy)
        for r in all { #expect(Knowledge.remediation[r.name] != nil, "\(r) → \(r.name)") }
        // And every entry is reachable from some remedy.
        let names = Set(all.map(\.name))
        #expect(Set(Knowledge.remediation.keys).subtracting(names).isEmpty, "\(Set(Knowledge.remediation.keys).subtracting(names))")
    }

    @Test func gapReasonsKeepTheirNames() {
        #expect(GapReason.missing.rawValue == "missing")
        #expect(GapReason.snaplen.rawValue == "snaplen")
        #expect(GapReason.unfilled.rawValue == "unfilled")
    }
}
