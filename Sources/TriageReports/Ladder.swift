import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// A ladder (sequence) diagram of one attempt: who sent what and when, built from the facts
/// the parsers kept (frames, times, sides), never from report text, so a change of wording
/// cannot change the picture. Drawn as a Mermaid `sequenceDiagram`, which GitHub, GitLab,
/// Azure DevOps and Jira render from a ```` ```mermaid ```` block.
struct Ladder: Equatable {
    enum Party: String {
        case client = "C"
        case middlebox = "M"
        case server = "S"
    }

    struct Message: Equatable {
        var from: Party
        var to: Party
        var frame: Int
        var time: Timestamp
        var text: String
        /// Sent but never answered (SYNs to a silent server): drawn with a cross.
        var lost = false
    }

    var client: String
    var server: String
    /// The router or device between that spoke (an ICMP error, a forged reset); nil when none did.
    var middlebox: String?
    var origin: Timestamp
    var messages: [Message]
    /// The message that decided the verdict, highlighted.
    var decisiveFrame: Int?
    /// Messages past `maxMessages`, counted in a note instead of drawn.
    var omitted = 0
    /// "credssp-failure, ended by server".
    var verdictNote: String

    /// A diagram past this many arrows is no longer read; the rest is counted.
    static let maxMessages = 40
    /// Repeated legs of one kind (SYN retries, CredSSP records, resets) drawn one by one.
    static let maxRepeats = 6

    static func build(_ a: Attempt) -> Ladder {
        let t = a.facts.tcp
        let r = a.facts.rdp
        let v = a.verdict
        var messages: [Message] = []
        var middlebox: String?
        func party(_ s: Side) -> Party { s == .client ? .client : .server }
        func add(_ from: Party, to: Party? = nil, _ ref: FrameRef?, _ text: String, lost: Bool = false) {
            guard let ref else { return }
            let to = to ?? (from == .client ? .server : .client)
            messages.append(Message(from: from, to: to, frame: ref.frame, time: ref.time, text: text, lost: lost))
        }

        let h = t.handshake
        let synLost = t.outcome == .synUnanswered
        for (i, syn) in h.syns.prefix(maxRepeats).enumerated() {
            add(.client, syn, i == 0 ? "SYN" : "SYN again (retry \(i))", lost: synLost)
        }
        if h.syns.count > maxRepeats, let last = h.syns.last {
            let between = h.synCount - maxRepeats - 1
            add(.client, last, "last SYN (\(h.synCount) in all\(between > 0 ? ", \(between) not drawn" : ""))", lost: synLost)
        }
        add(.server, h.synAck, h.synAckCount > 1 ? "SYN-ACK (×\(h.synAckCount))" : "SYN-ACK")

        for e in t.icmp.prefix(maxRepeats) {
            let name = "ICMP \(Knowledge.icmpName(isV6: e.isV6, type: e.type, code: e.code))"
            if e.reporter == t.server.address {
                add(.server, to: party(e.about), e.at, name)
            } else {
                if middlebox == nil { middlebox = "Router \(e.reporter)" }
                let from = "Router \(e.reporter)" == middlebox ? "" : " from \(e.reporter)"
                add(.middlebox, to: party(e.about), e.at, name + from)
            }
        }

        // Through a proxy the TCP peer is the proxy: its own refusal comes from a lane of its
        // own (the device between); otherwise the far lane is the target, reached through it.
        var serverName = "Server \(t.server)"
        if let p = r.proxy {
            let target = p.request?.target
            let proxyLane: Party
            if v.endedBy == .middlebox {
                middlebox = "\(p.kind.display) proxy \(t.server)"
                proxyLane = .middlebox
                if let target { serverName = "Server \(target)" }
            } else {
                proxyLane = .server
                serverName = target.map { "Server \($0) via \(p.kind.display) proxy \(t.server)" } ?? "\(p.kind.display) proxy \(t.server)"
            }
            add(.client, to: proxyLane, p.requestAt, "\(p.kind.display) request" + (target.map { " for \($0)" } ?? ""))
            if let reply = p.reply {
                add(proxyLane, to: .client, p.replyAt, "\(p.kind.display) reply \(reply.codeText): \(reply.name)")
            }
        }

        if let cr = r.connectionRequest {
            add(.client, cr.at, "X.224 Connection Request (\(cr.requestedProtocols?.names ?? "no RDP_NEG_REQ"))")
        }
        if let cc = r.connectionConfirm {
            let what =
                if let f = cc.failure { "X.224 Connection Confirm: RDP_NEG_FAILURE \(f.name)" }
                else if let p = cc.selectedProtocol { "X.224 Connection Confirm: \(p.names)" }
                else { "X.224 Connection Confirm" }
            add(.server, cc.at, what)
        }
        if let at = r.serverBannerAt, r.connectionConfirm == nil {
            add(.server, at, "not RDP: \(r.firstServerPayload?.rawValue ?? "another service") answer")
        }

        if let tls = r.tls {
            if let ch = tls.clientHello {
                add(.client, ch.at, "TLS ClientHello" + (ch.serverName.map { " (SNI \($0))" } ?? ""))
            }
            if let sh = tls.serverHello {
                add(.server, sh.at, "TLS ServerHello (\(ProtocolTables.tlsVersions[sh.version] ?? "version 0x\(String(sh.version, radix: 16))"))")
            }
            if let c = tls.certificateFrame, c != tls.serverHello?.at { add(.server, c, "TLS Certificate") }
            for al in tls.alerts.prefix(maxRepeats) {
                let what: String
                if al.encrypted {
                    what = "TLS alert (encrypted)"
                } else {
                    let level = al.level == 2 ? "fatal" : al.level == 1 ? "warning" : "level \(al.level.map(String.init) ?? "?")"
                    let name = al.description.map { ProtocolTables.tlsAlertDescriptions[$0] ?? "alert \($0)" } ?? "?"
                    what = "TLS alert: \(level) \(name)"
                }
                add(party(al.from), al.at, what)
            }
        }

        if let cs = r.credssp {
            // Without keys a record's size and direction are all there is: only the record
            // the shape reader placed (`reachedAt`, `likelyErrorReply`) gets a leg's name.
            for rec in cs.records.prefix(maxRepeats) {
                var what = "CredSSP record, \(rec.length) bytes"
                if rec.at == cs.likelyErrorReply {
                    what += ": small, likely an errorCode or alert"
                } else if rec.at == cs.reachedAt, let leg = legName(cs.phase) {
                    what += ": \(leg)"
                }
                add(party(rec.from), rec.at, what)
            }
            if let e = cs.likelyErrorReply, !cs.records.prefix(maxRepeats).contains(where: { $0.at == e }) {
                add(.server, e, "CredSSP record: small, likely an errorCode or alert")
            }
            // Where the exchange got to (a HYBRID_EX result is the seventh record when a TLS
            // 1.3 session ticket counts as one) is drawn past the repeats too.
            if let at = cs.reachedAt, let leg = legName(cs.phase), let rec = cs.records.first(where: { $0.at == at }),
                !cs.records.prefix(maxRepeats).contains(where: { $0.at == at })
            {
                add(party(rec.from), at, "CredSSP record, \(rec.length) bytes: \(leg)")
            }
        }

        if let m = r.mcsConnectInitial { add(.client, m.at, "MCS Connect Initial") }
        if let m = r.mcsConnectResponse { add(.server, m.at, "MCS Connect Response") }
        if let at = r.disconnectRequest { add(party(r.disconnectRequestFrom ?? .server), at, "X.224 Disconnect Request") }
        if let at = r.disconnectProviderUltimatum {
            add(party(r.disconnectProviderUltimatumFrom ?? .server), at, "MCS Disconnect Provider Ultimatum")
        }

        if let f = t.clientSide.fin { add(.client, f.at, "FIN") }
        if let f = t.serverSide.fin { add(.server, f.at, "FIN") }
        // A reset the verdict found forged comes from the device between, whatever address
        // it carries.
        let forged = v.endedBy == .middlebox && r.proxy == nil
        for e in t.resets.prefix(maxRepeats) {
            let claimed = party(e.from)
            let to: Party = claimed == .client ? .server : .client
            if forged && (e.at == t.decisive || v.label == .resetByMiddlebox) {
                if middlebox == nil { middlebox = "Device between (forged RST)" }
                add(.middlebox, to: to, e.at, "RST claiming to come from the \(e.from.rawValue) (TTL \(e.ttl))")
            } else {
                add(claimed, e.at, e.answersSYN ? "RST answering the SYN" : "RST (TTL \(e.ttl))")
            }
        }

        if r.proxy != nil && v.endedBy == .middlebox {
            // The target never spoke: everything from the TCP peer is the proxy's.
            for i in messages.indices {
                if messages[i].from == .server { messages[i].from = .middlebox }
                if messages[i].to == .server { messages[i].to = .middlebox }
            }
        }
        messages.sort { ($0.frame, $0.time) < ($1.frame, $1.time) }
        var omitted = 0
        if messages.count > maxMessages {
            omitted = messages.count - maxMessages
            // Keep the start and the end, where failures happen.
            let head = maxMessages - 10
            messages = Array(messages.prefix(head) + messages.suffix(10))
        }
        let ender = v.endedBy.party.map { ", ended by \($0)" } ?? ""
        return Ladder(
            client: "Client \(t.client)", server: serverName, middlebox: middlebox, origin: t.first.time,
            messages: messages, decisiveFrame: decisiveFrame(a), omitted: omitted,
            verdictNote: "\(v.label.rawValue)\(ender)")
    }

    /// The CredSSP leg a phase is reached by (MS-CSSP 3.1.5).
    static func legName(_ p: CredSSPFacts.Phase) -> String? {
        switch p {
        case .none, .session: nil
        case .negotiate: "NEGOTIATE"
        case .challenge: "CHALLENGE"
        case .authenticate: "AUTHENTICATE + pubKeyAuth"
        case .serverPubKeyAuth: "server pubKeyAuth (credentials accepted)"
        case .credentials: "credentials (authInfo)"
        case .earlyUserAuthorization: "Early User Authorization Result"
        }
    }

    /// The frame of the message that decided the verdict: the packet the label names.
    static func decisiveFrame(_ a: Attempt) -> Int? {
        let t = a.facts.tcp
        let r = a.facts.rdp
        switch a.verdict.label {
        case .negotiationFailure: return r.connectionConfirm?.at.frame ?? t.decisive?.frame
        case .tlsAlert: return r.tls?.alerts.first(where: { $0.level == 2 || $0.encrypted })?.at.frame ?? t.decisive?.frame
        case .credsspFailure:
            return r.credssp?.likelyErrorReply?.frame ?? r.tls?.alerts.first?.at.frame ?? t.decisive?.frame
        case .nonRDPService: return r.serverBannerAt?.frame ?? t.decisive?.frame
        case .icmpUnreachable: return t.icmp.first?.at.frame ?? t.decisive?.frame
        case .proxyRefused: return r.proxy?.replyAt?.frame ?? t.decisive?.frame
        default: return t.decisive?.frame
        }
    }

    /// The Mermaid source, one line each, without the code fence. `clean` is applied to text
    /// from the capture and from the facts before it is escaped for Mermaid (redaction must see
    /// the names as they are).
    func mermaid(clean: (String) -> String = { $0 }) -> [String] {
        func text(_ s: String) -> String { Self.escape(clean(s)) }
        var lines = ["sequenceDiagram"]
        lines.append("    participant C as \(text(client))")
        if let m = middlebox { lines.append("    participant M as \(text(m))") }
        lines.append("    participant S as \(text(server))")
        for m in messages {
            let arrow = m.lost ? "-x" : (m.from == .client ? "->>" : "-->>")
            let time = Numbers.fixed(m.time.seconds(since: origin), 6, sign: true)
            let line = "    \(m.from.rawValue)\(arrow)\(m.to.rawValue): frame \(m.frame), \(time) s: \(text(m.text))"
            if m.frame == decisiveFrame {
                lines.append("    rect rgb(255, 221, 221)")
                lines.append("    " + line + " (decisive)")
                lines.append("    end")
            } else {
                lines.append(line)
            }
        }
        if omitted > 0 { lines.append("    Note over C,S: \(omitted) more messages in the middle, not drawn") }
        lines.append("    Note over C,S: \(text(verdictNote))")
        return lines
    }

    /// Text that Mermaid shows as written: `;` ends a statement, `#` starts an entity code,
    /// `%%` a comment, `<`/`>`/`&` are HTML to the renderer, and a backtick run could close the
    /// Markdown fence around the diagram. Each becomes a Mermaid entity code (`#59;`), which
    /// renders as the character itself.
    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { needsEntity($0) || $0 < 0x20 }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for c in s.unicodeScalars {
            switch c {
            case "\n", "\r", "\t": out.append(" ")
            case "<": out.append("#lt;")
            case ">": out.append("#gt;")
            case "&": out.append("#amp;")
            case "\"": out.append("#quot;")
            case _ where c.value < 0x20: out.append(" ")
            case _ where c.value < 0x80 && needsEntity(UInt8(c.value)): out.append("#\(c.value);")
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func needsEntity(_ b: UInt8) -> Bool {
        b == UInt8(ascii: ";") || b == UInt8(ascii: "#") || b == UInt8(ascii: "%") || b == UInt8(ascii: "<")
            || b == UInt8(ascii: ">") || b == UInt8(ascii: "&") || b == UInt8(ascii: "`") || b == UInt8(ascii: "\"")
    }
}
