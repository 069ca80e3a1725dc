import TriageCapture
import TriageDecoding
import TriageFlows
import TriageProtocols

/// Facts derived once from an attempt, in the terms the rules use: how far the connection
/// sequence got, who ended it and with what packet. Pure functions of `AttemptFacts`.
struct Reading {
    let facts: AttemptFacts
    var tcp: TCPFacts { facts.tcp }
    var rdp: RDPFacts { facts.rdp }

    init(_ facts: AttemptFacts) { self.facts = facts }

    // MARK: Who ended it

    /// The RST that ended the attempt, if an RST did.
    var endingReset: ResetEvent? { tcp.outcome == .reset || tcp.outcome == .refused ? tcp.resets.first : nil }

    /// The FIN that ended the attempt, if a FIN did.
    var endingFin: FinEvent? {
        guard tcp.outcome == .closed else { return nil }
        return [tcp.clientSide.fin, tcp.serverSide.fin].compactMap { $0 }.min { $0.at.frame < $1.at.frame }
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
    func applicationRecords(from side: Side) -> Int { tls?.applicationRecords.filter { $0.from == side }.count ?? 0 }

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

    /// The furthest stage the attempt reached.
    var stage: Stage {
        if !tcp.established { return .tcpHandshake }
        if reachedSession { return .session }
        guard let c = confirm else { return .x224Negotiation }
        if c.failure != nil { return .x224Negotiation }
        if usesTLS {
            if tls?.handshakeComplete != true { return clientHello == nil ? .x224Negotiation : .tlsHandshake }
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
        if tcp.roleSource != .syn { out.append("the capture started after the connection was opened") }
        if !rdp.lostSync.isEmpty { out.append("the parser lost its place in the \(rdp.lostSync.map(\.rawValue).joined(separator: "/")) stream") }
        return out
    }

    // MARK: Words

    var serverName: String {
        if let d = facts.dns.last { return "\(d.name) (\(tcp.server.address))" }
        return tcp.server.address.description
    }

    func frameText(_ f: FrameRef?) -> String { f.map { "frame \($0.frame)" } ?? "no frame" }

    func seconds(_ s: Double) -> String {
        if s < 0.001 { return String(format3: s * 1_000_000) + " µs" }
        if s < 1 { return String(format3: s * 1000) + " ms" }
        return String(format3: s) + " s"
    }

    func bytes(_ n: Int64) -> String { n == 1 ? "1 byte" : "\(n) bytes" }
}

extension SideFacts {
    /// Whether the side kept talking after `frame`: its last data frame is later and it sent
    /// a handful of packets (the connection sequence continued).
    func dataSegments(after frame: Int, total: Int) -> Bool {
        (lastDataFrame?.frame ?? 0) > frame && total >= 6
    }
}

extension String {
    /// Three significant decimals without Foundation's formatters.
    init(format3 v: Double) {
        guard v.isFinite else {
            self = "∞"
            return
        }
        let scaled = (v * 1000).rounded()
        let whole = Int64(scaled / 1000)
        let frac = Int64(abs(scaled)) % 1000
        var f = String(frac)
        while f.count < 3 { f = "0" + f }
        while f.hasSuffix("0") { f.removeLast() }
        self = f.isEmpty ? "\(whole)" : "\(whole).\(f)"
    }
}
