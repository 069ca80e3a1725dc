import TriageCapture
import TriageDecoding
import TriageFlows
import TriageProtocols

/// Facts derived once from an attempt, in the terms the rules use: how far the connection
/// sequence got, who ended it and with what packet. Pure functions of `AttemptFacts`.
struct Reading {
    let facts: AttemptFacts
    // Yielded in place: a getter would copy the whole struct (retaining each of its arrays and
    // strings) for every `r.tcp.x` a rule reads.
    var tcp: TCPFacts { _read { yield facts.tcp } }
    var rdp: RDPFacts { _read { yield facts.rdp } }

    /// Live: the connection goes on (see `Classifier.classify`).
    let running: Bool

    init(_ facts: AttemptFacts, running: Bool = false) {
        self.facts = facts
        self.running = running
    }

    // MARK: Who ended it

    /// The RST that ended the attempt, if an RST did.
    var endingReset: ResetEvent? { tcp.outcome == .reset || tcp.outcome == .refused ? tcp.resets.first : nil }

    /// The FIN that ended the attempt, if a FIN did.
    var endingFin: FinEvent? {
        guard tcp.outcome == .closed else { return nil }
        return FinEvent.first(tcp.clientSide.fin, tcp.serverSide.fin)
    }

    /// An RST whose TTL is outside the range of its claimed sender's other packets: not
    /// sent by that host (FACTS.md section 6, network blockade).
    var forgedReset: ResetEvent? {
        guard let r = endingReset, let lo = r.sameSideTTLMin, let hi = r.sameSideTTLMax, r.sameSidePackets > 0 else {
            return nil
        }
        return r.ttl < lo || r.ttl > hi ? r : nil
    }

    /// Who ended it, with forged RSTs attributed to a middlebox.
    var ender: Ender {
        if forgedReset != nil { return .middlebox }
        switch tcp.endedBy {
        case .client: return .client
        case .server: return .server
        case nil: return .none
        }
    }

    /// The packet that ended it.
    var endingFrame: FrameRef? { endingReset?.at ?? endingFin?.at ?? tcp.decisive }

    /// How much of the client's stream the server had acknowledged when it ended the
    /// connection: tells "closed after reading X" from "closed regardless".
    var serverAcknowledgedAtEnd: Int64? {
        if let r = endingReset, r.from == .server { return r.acknowledgedPeerBytes }
        if let f = endingFin, f.from == .server { return f.acknowledgedPeerBytes }
        return nil
    }

    var endedByRST: Bool { endingReset != nil }

    // MARK: How far it got

    var request: ConnectionRequestFacts? { rdp.connectionRequest }
    var confirm: ConnectionConfirmFacts? { rdp.connectionConfirm }
    var tls: TLSFacts? { rdp.tls }
    var clientHello: TLSFacts.ClientHello? { tls?.clientHello }
    var serverHello: TLSFacts.ServerHello? { tls?.serverHello }
    /// TLS began: a ClientHello, or a ServerHello answering one the capture missed.
    var tlsStarted: Bool { clientHello != nil || serverHello != nil }
    var selected: SecurityProtocols? {
        guard let c = confirm, c.failure == nil else { return nil }
        return c.selectedProtocol ?? SecurityProtocols(rawValue: 0)
    }
    var usesTLS: Bool { selected?.usesTLS ?? (clientHello != nil) }
    var usesCredSSP: Bool { selected?.usesCredSSP ?? false }

    /// Plain-text fatal alerts first, then encrypted ones.
    var fatalAlert: TLSAlertFacts? {
        let alerts = tls?.alerts ?? []
        if let a = alerts.first(where: { !$0.encrypted && $0.level == 2 }) { return a }
        if let a = alerts.first(where: { !$0.encrypted && $0.description != nil && $0.description != 0 && $0.level != 1 }) {
            return a
        }
        return alerts.first(where: { $0.encrypted })
    }

    var credsspPhase: CredSSPFacts.Phase { rdp.credssp?.phase ?? .none }

    /// Encrypted records after the TLS handshake, per side.
    func applicationRecords(from side: Side) -> Int {
        tls?.applicationRecords.reduce(0) { $1.from == side ? $0 + 1 : $0 } ?? 0
    }

    /// The server sent enough after the security handshake to be in the session (MCS
    /// response, licensing, demand active and graphics take well over eight records).
    var reachedSession: Bool {
        if let r = rdp.mcsConnectResponse {
            // Standard RDP security: a successful response followed by the rest of the sequence.
            return (r.result ?? 0) == 0 && tcp.serverSide.dataSegments(after: r.at.frame, total: tcp.serverSide.packets)
        }
        guard usesTLS, tls?.handshakeComplete == true else { return false }
        if usesCredSSP {
            guard credsspPhase == .credentials || credsspPhase == .earlyUserAuthorization || credsspPhase == .session
            else { return false }
            let afterCredSSP = (tls?.applicationRecords.count ?? 0) - (rdp.credssp?.records.count ?? 0)
            return afterCredSSP >= 8 || credsspPhase == .session && applicationRecords(from: .server) >= 6
        }
        return applicationRecords(from: .server) >= 8
    }

    // MARK: A capture that began mid-session

    /// The SYN was not captured and nothing of the connection sequence was: the capture
    /// began after the connection was set up (or at least opened).
    var startedAfterSetup: Bool {
        tcp.roleSource != .syn && request == nil && confirm == nil && !tlsStarted && rdp.mcsConnectInitial == nil
            && rdp.mcsConnectResponse == nil
    }

    /// Whole PDUs (TLS records, TPKT or fast-path PDUs) a side sent after the capture joined
    /// its stream.
    func joinedPDUs(_ side: Side) -> Int { rdp.midStream?[side]?.pdus ?? 0 }

    var joinedFastPath: Bool { (rdp.midStream?.client?.fastPathPDUs ?? 0) + (rdp.midStream?.server?.fastPathPDUs ?? 0) > 0 }

    /// The capture began on a running session: none of the setup in it, and RDP traffic
    /// both ways, or fast-path PDUs (MS-RDPBCGR 2.2.9.1.2: sent only once the connection
    /// sequence is done) either way.
    var joinedMidSession: Bool {
        startedAfterSetup && (joinedFastPath || joinedPDUs(.client) > 0 && joinedPDUs(.server) > 0)
    }

    /// The furthest stage the attempt reached.
    var stage: Stage {
        if !tcp.established { return .tcpHandshake }
        if joinedMidSession { return .session }
        if reachedSession { return .session }
        guard let c = confirm else { return .x224Negotiation }
        if c.failure != nil { return .x224Negotiation }
        if usesTLS {
            if tls?.handshakeComplete != true { return tlsStarted ? .tlsHandshake : .x224Negotiation }
            if usesCredSSP {
                switch credsspPhase {
                case .credentials, .earlyUserAuthorization, .session: return .mcsConnect
                default: return .credssp
                }
            }
            return .mcsConnect
        }
        return .mcsConnect
    }

    // MARK: Capture quality

    /// Problems with the capture that weaken any conclusion.
    var captureCaveats: [String] {
        var out: [String] = []
        let gaps = tcp.clientSide.gapBytes + tcp.serverSide.gapBytes
        if gaps > 0 { out.append("\(gaps) bytes missing from the capture (gaps in the streams)") }
        let cut = tcp.clientSide.cutBytes + tcp.serverSide.cutBytes
        if cut > 0 { out.append("\(cut) bytes not reassembled (memory limit)") }
        if tcp.clientSide.cutFrames + tcp.serverSide.cutFrames > 0 {
            out.append("frames cut by the snapshot length")
        }
        let copies = tcp.clientSide.duplicates + tcp.serverSide.duplicates
        if copies > 0 {
            // Same IP ID, sequence and payload: one packet seen twice, not sent twice.
            out.append("\(copies) frame\(copies == 1 ? "" : "s") recorded twice (a SPAN port or two capture points), counted once and not as retransmissions")
        }
        if tcp.roleSource != .syn { out.append("the capture started after the connection was opened") }
        if tcp.evicted == true {
            out.append("reported before it ended: too many connections were open at once (--max-sessions), so the oldest were reported as they stood")
        }
        for name in ["client", "server"] {
            // Read in place: an array of the two sides would copy both for every attempt.
            guard let n = name == "client" ? tcp.clientSide.implausibleSegments : tcp.serverSide.implausibleSegments else { continue }
            let nonsense = name == "client" ? tcp.clientSide.sequenceNonsense : tcp.serverSide.sequenceNonsense
            out.append(
                nonsense == true
                    ? "the \(name)'s TCP sequence numbers make no sense (\(n) segments far outside its stream: forged or corrupt), so its byte counters are left out"
                    : "\(n) \(name) segment\(n == 1 ? "" : "s") with a sequence number far outside the stream, ignored")
        }
        if !rdp.lostSync.isEmpty { out.append("the parser lost its place in the \(rdp.lostSync.map(\.rawValue).joined(separator: "/")) stream") }
        return out
    }

    // MARK: Words

    var serverName: String {
        if let d = facts.dns.last { return "\(d.name) (\(tcp.server.address))" }
        return tcp.server.address.description
    }


    func seconds(_ s: Double) -> String { Numbers.duration(s) }

    func bytes(_ n: Int64) -> String { n == 1 ? "1 byte" : "\(n) bytes" }
}

extension SideFacts {
    /// Whether the side kept talking after `frame`: its last data frame is later and it sent
    /// a handful of packets (the connection sequence continued).
    func dataSegments(after frame: Int, total: Int) -> Bool {
        (lastDataFrame?.frame ?? 0) > frame && total >= 6
    }
}

/// Fixed-point number text without Foundation's formatters (which are slow and
/// locale-dependent).
public enum Numbers {
    /// `v` with `places` decimals; `trim` drops trailing zeros, `sign` writes `+` for
    /// positive values.
    public static func fixed(_ v: Double, _ places: Int, trim: Bool = false, sign: Bool = false) -> String {
        guard v.isFinite else { return "?" }
        var scale: Int64 = 1
        for _ in 0..<max(0, min(places, 12)) { scale *= 10 }
        let magnitude = abs(v) * Double(scale)
        guard magnitude < 9e18 else { return v < 0 ? "-∞" : "∞" }
        let scaled = Int64(magnitude.rounded())
        let fraction = max(0, places)
        // Written in one pass into a stack buffer, then copied into a string: most results fit
        // a small string, which needs no allocation (reports call this several times per
        // attempt). Writing straight into `String(unsafeUninitializedCapacity:)` allocated
        // every time: its capacity is beyond a small string's whatever the result.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 23 + fraction) { out in
            let count = write(into: out)
            return String(decoding: UnsafeBufferPointer(rebasing: out[..<count]), as: UTF8.self)
        }

        func write(into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
            var n = 0
            if v < 0 && scaled != 0 {
                out[n] = UInt8(ascii: "-")
                n += 1
            } else if sign {
                out[n] = UInt8(ascii: "+")
                n += 1
            }
            n = writeDecimal(UInt64(scaled / scale), into: UnsafeMutableRawBufferPointer(out), at: n)
            guard fraction > 0 else { return n }
            // The fraction's digits, zero-padded on the left to `places`.
            var f = scaled % scale
            var i = n + fraction
            while i > n {
                out[i] = UInt8(truncatingIfNeeded: f % 10) &+ 0x30
                f /= 10
                i -= 1
            }
            var end = n + fraction + 1
            if trim { while end > n + 1 && out[end - 1] == UInt8(ascii: "0") { end -= 1 } }
            guard end > n + 1 else { return n }
            out[n] = UInt8(ascii: ".")
            return end
        }
    }

    /// A duration in µs, ms or s. A negative one comes from a capture whose clock went back
    /// (time stamps out of order): no sentence may say "after -1.000 s", so it says that.
    public static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        if s < 0 && fixed(-s * 1_000_000, 0) != "0" {
            return "an unknown time (the capture's clock went back \(duration(-s)))"
        }
        if abs(s) < 0.001 { return fixed(s * 1_000_000, 0) + " µs" }
        if abs(s) < 1 { return fixed(s * 1000, 1) + " ms" }
        return fixed(s, 3) + " s"
    }
}
