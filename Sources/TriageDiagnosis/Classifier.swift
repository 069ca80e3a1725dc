import TriageCapture
import TriageDecoding
import TriageFlows
import TriageProtocols

/// Turns an attempt's facts into a verdict. It reads facts, never packets.
///
/// The rules are tried in order, earliest stage first, and the first that matches decides;
/// they read like the taxonomy of FACTS.md section 6:
///
/// | rule | label | cause |
/// |---|---|---|
/// | RST answers the SYN | rst-refused | host-not-accepting |
/// | ICMP error answers the SYN | icmp-unreachable | network-blockade (resolution-mismatch when DNS pointed at a dead address) |
/// | SYNs unanswered | syn-unanswered | network-blockade |
/// | RST whose TTL is not its sender's | reset-by-middlebox | network-blockade |
/// | server only repeats its SYN-ACK while the client sends | path-loss | network-blockade |
/// | a SOCKS / HTTP CONNECT proxy refuses the request (or closes without answering) | proxy-refused | host-not-accepting (the target refused), network-blockade, client-side (a request the proxy does not support) |
/// | server speaks something else than RDP | non-rdp-service | resolution-mismatch |
/// | capture began on a running session | success (reset when the server reset it; incomplete when one-way) | none |
/// | RDP_NEG_FAILURE | negotiation-failure | tls-credssp |
/// | server times out a client silent on its turn | client-abort | client-side |
/// | server closes after the request, before TLS | early-disconnect | host-not-accepting |
/// | client closes after a valid answer | client-abort | client-side |
/// | certificate from a TLS-inspection product | (any TLS failure) | client-side |
/// | TLS fatal alert | tls-alert | tls-credssp |
/// | large server segments never arrive | mtu-blackhole | network-blockade |
/// | server closes the TLS handshake without alert | tls-rejected | tls-credssp |
/// | server alert after the client's CredSSP credentials | credssp-failure | tls-credssp |
/// | server closes after CredSSP credentials | credssp-failure | tls-credssp |
/// | server closes after MCS / early authorization | early-disconnect | host-not-accepting |
/// | key log: the server's EUA denial, licensing error or Set Error Info before logon | early-disconnect | host-not-accepting |
/// | reached the session | success | none |
public enum Classifier {
    /// A rule: its name (shown in verdicts and tests) and the test that may decide.
    struct Rule: Sendable {
        let name: String
        let decide: @Sendable (Reading) -> Verdict?
    }

    static let rules: [Rule] = [
        Rule(name: "refused", decide: refused),
        Rule(name: "icmp-unreachable", decide: icmpUnreachable),
        Rule(name: "syn-unanswered", decide: synUnanswered),
        Rule(name: "handshake-incomplete", decide: handshakeIncomplete),
        Rule(name: "reset-by-middlebox", decide: resetByMiddlebox),
        Rule(name: "path-loss", decide: pathLoss),
        Rule(name: "proxy-refused", decide: proxyRefused),
        Rule(name: "non-rdp-service", decide: nonRDPService),
        Rule(name: "mid-session", decide: midSession),
        Rule(name: "no-rdp-request", decide: noRDPRequest),
        Rule(name: "negotiation-failure", decide: negotiationFailure),
        Rule(name: "client-stalled", decide: clientStalled),
        Rule(name: "x224-unanswered", decide: x224Unanswered),
        Rule(name: "after-confirm", decide: afterConfirm),
        Rule(name: "tls-alert", decide: tlsAlert),
        Rule(name: "mtu-blackhole", decide: mtuBlackhole),
        Rule(name: "tls-handshake", decide: tlsHandshake),
        Rule(name: "credssp-alert", decide: credsspAlert),
        Rule(name: "credssp-error-code", decide: credsspErrorCode),
        Rule(name: "refused-after-tls", decide: refusedAfterHandshake),
        Rule(name: "credssp", decide: credssp),
        Rule(name: "stated-refusal", decide: statedRefusal),
        Rule(name: "success", decide: success),
        Rule(name: "after-security", decide: afterSecurity),
        Rule(name: "fallback", decide: fallback),
    ]

    /// `running`: live, the connection is still open and goes on (an early success), so an
    /// open connection is not one the capture's end cut short.
    public static func classify(_ facts: AttemptFacts, running: Bool = false) -> Verdict {
        let r = Reading(facts, running: running)
        for rule in rules {
            if var v = rule.decide(r) {
                v.rule = rule.name
                return finish(v, r)
            }
        }
        // `fallback` always decides; this is only reached if the table above changes.
        return finish(make(r, .incomplete, .none, "the attempt could not be classified", .low("no rule matched")), r)
    }

    // MARK: - Building verdicts

    static func make(
        _ r: Reading, _ label: Label, _ cause: Cause, _ summary: String, _ confidence: Confidence,
        stage: Stage? = nil, ender: Ender? = nil, client: ClientReport? = nil, remedy: Remedy? = nil,
        details: [String] = [], evidence: [Evidence] = []
    ) -> Verdict {
        Verdict(
            label: label, cause: cause, stage: stage ?? r.stage, endedBy: ender ?? r.ender, confidence: confidence,
            summary: summary, details: details, evidence: evidence, clientReport: client,
            remediation: remediationSteps(remedy ?? label.remedy, r), rule: "")
    }

    /// Adds what every verdict carries: the DNS story, capture caveats, the handshake frames.
    static func finish(_ v: Verdict, _ r: Reading) -> Verdict {
        var v = v
        if let d = r.facts.dns.last {
            let via = d.aliases.isEmpty ? "" : " via \(d.aliases.joined(separator: " → "))"
            v.details.append(
                "DNS: \(d.name)\(via) → \(d.address) (answer from \(d.resolver) in frame \(d.response.frame)); the client then connected to \(r.tcp.server)")
            v.evidence.insert(Evidence(d.response, "DNS answer \(d.name) → \(d.address)"), at: 0)
        }
        udpTransport(&v, r)
        proxyPreamble(&v, r)
        insideTLS(&v, r)
        let caveats = r.captureCaveats
        if !caveats.isEmpty {
            v.details.append("Capture caveats: " + caveats.joined(separator: "; ") + ".")
            if v.confidence.level == .high && (r.tcp.clientSide.gapBytes + r.tcp.serverSide.gapBytes > 0) && v.label != .mtuBlackhole {
                v.confidence = Confidence(.medium, v.confidence.reason + "; lowered: the capture misses bytes")
            }
        }
        // The handshake frames first, then the rule's own evidence, in frame order.
        // One array, sized once: this runs for every attempt of a large capture.
        var merged: [Evidence] = []
        merged.reserveCapacity(v.evidence.count + 2)
        if let syn = r.tcp.handshake.syns.first { merged.append(Evidence(syn, "SYN from \(r.tcp.client) to \(r.tcp.server)")) }
        if let sa = r.tcp.handshake.synAck { merged.append(Evidence(sa, "SYN-ACK from the server")) }
        let base = merged.count
        for e in v.evidence {
            // A rule's own line for a handshake frame gives way to the handshake's.
            if let f = e.frame, merged[..<base].contains(where: { $0.frame == f }) { continue }
            merged.append(e)
        }
        merged.sort { ($0.frame ?? Int.max) < ($1.frame ?? Int.max) }
        v.evidence = merged
        return v
    }

    /// A proxy preamble before the RDP bytes: every verdict says which proxy carried the
    /// attempt and to which target, since the capture's "server" is the proxy.
    static func proxyPreamble(_ v: inout Verdict, _ r: Reading) {
        guard let p = r.rdp.proxy else { return }
        let target = p.request.map { " to \($0.target)" } ?? ""
        var line = "Through \(p.kind == .http ? "an" : "a") \(p.kind.display) proxy at \(r.tcp.server)\(target)"
        if let reply = p.reply {
            line += ": the proxy answered \(reply.codeText == String(reply.code) && p.kind == .http ? reply.name : "\(reply.codeText) \(reply.name)")"
            if let at = p.replyAt { line += " (frame \(at.frame))" }
        } else if p.request != nil {
            line += "; no answer from the proxy was captured"
        }
        v.details.append(line + (p.tunnelOpen ? "; the RDP connection ran inside the tunnel." : "."))
        var own = Set(v.evidence.compactMap(\.frame))
        if let at = p.requestAt, let q = p.request, own.insert(at.frame).inserted {
            v.evidence.append(Evidence(at, "\(p.kind.display) request to the proxy: connect to \(q.target)"))
        }
        if let at = p.replyAt, let reply = p.reply, own.insert(at.frame).inserted {
            v.evidence.append(Evidence(at, "\(p.kind.display) reply from the proxy: \(Self.replyText(reply))"))
        }
    }

    /// `0x05 connection refused` (SOCKS5), `91 request rejected or failed` (SOCKS4), `403 Forbidden` (HTTP).
    static func replyText(_ reply: ProxyReply) -> String {
        switch reply.kind {
        case .http: reply.name
        case .socks5 where reply.code > 0xFF: reply.name
        default: "\(reply.codeText) \(reply.name)"
        }
    }

    // MARK: - Proxy

    /// The proxy in front of RDP said no (RFC 1928 section 6 REP, SOCKS4 CD, an HTTP status), or
    /// closed after the request without answering. Its answer is the verdict: the target
    /// refused, was unreachable, or the proxy's own policy refused.
    static func proxyRefused(_ r: Reading) -> Verdict? {
        guard let p = r.rdp.proxy, p.reply?.granted != true else { return nil }
        let target = p.request?.target ?? "the target"
        let via = "the \(p.kind.display) proxy at \(r.tcp.server)"
        guard let reply = p.reply else {
            guard p.request != nil, r.tcp.outcome == .closed || r.tcp.outcome == .reset, let side = r.tcp.endedBy else { return nil }
            return make(
                r, .proxyRefused, side == .client ? .clientSide : .networkBlockade,
                "\(side == .client ? "The client" : "The proxy") closed the connection after asking \(via) for \(target), before the proxy answered.",
                Confidence(.medium, "the proxy request has no answer and the connection ended"), stage: .tcpHandshake,
                ender: side == .client ? .client : .middlebox, client: Knowledge.proxyConnectFailed, remedy: .proxyFailed)
        }
        let text = replyText(reply)
        var evidence = p.replyAt.map { [Evidence($0, "\(p.kind.display) reply from the proxy: \(text)")] } ?? []
        if let end = r.endingFrame, end.frame != p.replyAt?.frame {
            let who = r.tcp.endedBy == .client ? "the client" : "the proxy"
            evidence.append(Evidence(end, "\(who) \(r.endedByRST ? "reset" : "closed") the connection"))
        }
        let sure = Confidence(.high, "the proxy's answer says so in clear text")
        switch reply.meaning {
        case .targetRefused:
            return make(
                r, .proxyRefused, .hostNotAccepting,
                "\(target) refused the connection, as \(via) reports (\(text)): nothing listens there, or a firewall rejects.",
                sure, stage: .tcpHandshake, ender: .server, client: Knowledge.proxyConnectFailed, remedy: .proxyRefused,
                evidence: evidence)
        case .targetUnreachable:
            return make(
                r, .proxyRefused, .networkBlockade,
                "\(via.prefix(1).uppercased() + via.dropFirst()) could not reach \(target) (\(text)).",
                sure, stage: .tcpHandshake, ender: .middlebox, client: Knowledge.proxyConnectFailed, remedy: .proxyUnreachable,
                evidence: evidence)
        case .deniedByProxy:
            return make(
                r, .proxyRefused, .networkBlockade,
                "\(via.prefix(1).uppercased() + via.dropFirst()) refused to connect to \(target) (\(text)): its policy or authentication blocks it.",
                sure, stage: .tcpHandshake, ender: .middlebox, client: Knowledge.proxyConnectFailed, remedy: .proxyDenied,
                evidence: evidence)
        case .unsupported:
            return make(
                r, .proxyRefused, .clientSide,
                "\(via.prefix(1).uppercased() + via.dropFirst()) does not support the client's request for \(target) (\(text)).",
                sure, stage: .tcpHandshake, ender: .middlebox, client: Knowledge.proxyConnectFailed, remedy: .proxyUnsupported,
                evidence: evidence)
        case .failed, .granted:
            return make(
                r, .proxyRefused, .networkBlockade,
                "\(via.prefix(1).uppercased() + via.dropFirst()) failed to connect to \(target) (\(text)).",
                sure, stage: .tcpHandshake, ender: .middlebox, client: Knowledge.proxyConnectFailed, remedy: .proxyFailed,
                evidence: evidence)
        }
    }

    /// RDP's UDP transport (MS-RDPEMT 1.3) beside the attempt: a performance hint, never the
    /// verdict. Unanswered datagrams to the server's port mean UDP is blocked on the path or
    /// off on the server, and the session runs over TCP alone.
    static func udpTransport(_ v: inout Verdict, _ r: Reading) {
        guard let u = r.tcp.udpTransport else { return }
        let port = r.tcp.server.port
        let sent = u.fromClient == 1 ? "1 UDP datagram" : "\(u.fromClient) UDP datagrams"
        if let answer = u.firstFromServer {
            v.details.append(
                "RDP's UDP transport works: the client sent \(sent) to port \(port) and the server answered (\(u.fromServer) back).")
            v.evidence.append(Evidence(u.firstFromClient, "the client's first UDP datagram to port \(port)"))
            v.evidence.append(Evidence(answer, "the server's first UDP datagram back: UDP transport works"))
        } else {
            v.details.append(
                "UDP transport is blocked or unanswered: the client sent \(sent) to port \(port) and nothing came back, so the session runs over TCP alone (slower on lossy or distant paths; not why a connection fails).")
            v.evidence.append(Evidence(u.firstFromClient, "the client's first UDP datagram to port \(port), never answered"))
            v.remediation += remediationSteps(.udpUnanswered, r)
        }
    }

    static func remediationSteps(_ remedy: Remedy?, _ r: Reading) -> [String] {
        guard let remedy else { return [] }
        let steps = templates[remedy.name] ?? []
        assert(!steps.isEmpty || remedy == .success, "no remediation entry \(remedy.name)")
        // Placeholder values are made only when a step names them.
        func value(_ name: Placeholder) -> String? {
            switch name {
            case .server: r.facts.dns.last?.name ?? r.tcp.server.address.description
            case .address: r.tcp.server.address.description
            case .port: String(r.tcp.server.port)
            case .reporter: r.tcp.icmp.first.map { $0.reporter.description } ?? "the router"
            case .time: r.tcp.first.time.iso8601
            case .issuer: r.tls?.certificates.first?.issuer ?? "the inspection product"
            case .name: r.facts.dns.last?.name ?? r.tcp.server.address.description
            case .target: r.rdp.proxy?.request?.target ?? "the target"
            }
        }
        // Steps quote names inside code spans (`Resolve-DnsName {server}`): a backtick from the
        // capture would close the span, so it is written as the other escapes are.
        func quoted(_ name: Placeholder) -> String? {
            guard let v = value(name) else { return nil }
            guard v.contains("`") else { return v }
            var out = ""
            for c in v { if c == "`" { out += "\\x60" } else { out.append(c) } }
            return out
        }
        return steps.map { $0.render(quoted) }
    }

    /// The names a remediation step may use as `{name}`.
    enum Placeholder: String, Sendable {
        case server, address, port, reporter, time, issuer, name
        /// The host and port a proxy was asked to connect to.
        case target
    }

    /// A remediation step split once into text and placeholders: steps are long and every
    /// attempt of a large capture gets some, and scanning them for braces each time was
    /// 6 % of a run's instructions.
    struct Template: Sendable {
        enum Piece: Sendable {
            case text(String)
            case placeholder(Placeholder)
        }
        let pieces: [Piece]
        let textLength: Int

        /// `{name}` for a known name is a placeholder; anything else (an unknown name, a
        /// lone brace) is text as written.
        init(_ template: String) {
            var pieces: [Piece] = []
            var text = ""
            var rest = template.utf8[...]
            while let open = rest.firstIndex(of: UInt8(ascii: "{")) {
                text += Substring(rest[..<open])
                let after = rest.index(after: open)
                if let close = rest[after...].firstIndex(of: UInt8(ascii: "}")),
                    let name = Placeholder(rawValue: String(Substring(rest[after..<close])))
                {
                    if !text.isEmpty { pieces.append(.text(text)) }
                    text = ""
                    pieces.append(.placeholder(name))
                    rest = rest[rest.index(after: close)...]
                } else {
                    text += "{"
                    rest = rest[after...]
                }
            }
            text += Substring(rest)
            if !text.isEmpty { pieces.append(.text(text)) }
            self.pieces = pieces
            textLength = template.utf8.count
        }

        /// The step with its placeholders replaced; one without a value stays as written.
        func render(_ value: (Placeholder) -> String?) -> String {
            if pieces.count == 1, case .text(let t) = pieces[0] { return t }
            var out = ""
            out.reserveCapacity(textLength + 32)
            for p in pieces {
                switch p {
                case .text(let t): out += t
                case .placeholder(let name): out += value(name) ?? "{\(name.rawValue)}"
                }
            }
            return out
        }
    }

    /// `Knowledge.remediation`, split into templates once.
    static let templates: [String: [Template]] = Knowledge.remediation.mapValues { $0.map(Template.init) }

    /// Replaces `{key}` placeholders; unknown keys stay as written.
    static func fill(_ template: String, _ value: (Substring) -> String?) -> String {
        Template(template).render { value(Substring($0.rawValue)) }
    }

    /// What the server said in clear before closing, when it said anything: an X.224
    /// Disconnect Request or an MCS Disconnect Provider Ultimatum.
    static func serverGoodbye(_ r: Reading) -> (Evidence, String)? {
        if let at = r.rdp.disconnectProviderUltimatum, r.rdp.disconnectProviderUltimatumFrom == .server {
            let reason = r.rdp.disconnectProviderUltimatumReason.map { $0 == 1 ? " (rn-provider-initiated)" : $0 == 3 ? " (rn-user-requested)" : " (reason \($0))" } ?? ""
            return (Evidence(at, "MCS Disconnect Provider Ultimatum from the server\(reason)"),
                    "Before closing, the server sent an MCS Disconnect Provider Ultimatum\(reason) in clear text: it gave up on the connection itself.")
        }
        if let at = r.rdp.disconnectRequest, r.rdp.disconnectRequestFrom == .server {
            return (Evidence(at, "X.224 Disconnect Request from the server"), "Before closing, the server sent an X.224 Disconnect Request.")
        }
        return nil
    }

    /// The client code for an established attempt the server side ended during setup.
    static func closedDuringSetup(_ r: Reading) -> ClientReport {
        r.endedByRST ? Knowledge.socketClosed : Knowledge.socketClosedByFIN
    }

    // MARK: - TCP handshake

    static func refused(_ r: Reading) -> Verdict? {
        guard r.tcp.outcome == .refused, let rst = r.tcp.resets.first else { return nil }
        return make(
            r, .rstRefused, .hostNotAccepting,
            "\(r.serverName) refused TCP port \(r.tcp.server.port): the SYN was answered with an RST (nothing listening, or a firewall rejecting).",
            Confidence(.high, "an RST answered the client's SYN"), stage: .tcpHandshake, ender: .server,
            client: Knowledge.connectFailed,
            details: ["RST from \(r.tcp.server.address) with TTL \(rst.ttl) \(r.seconds(rst.at.time.seconds(since: r.tcp.first.time))) after the first SYN; \(r.tcp.handshake.synCount) SYN(s) sent."],
            evidence: [Evidence(rst.at, "RST/ACK from \(r.tcp.server.address) answering the SYN (TTL \(rst.ttl))")])
    }

    static func icmpUnreachable(_ r: Reading) -> Verdict? {
        guard r.tcp.outcome == .icmpUnreachable,
            let e = r.tcp.icmp.first(where: { $0.about == .client && TCPFacts.isUnreachable($0) })
        else { return nil }
        let name = Knowledge.icmpName(isV6: e.isV6, type: e.type, code: e.code)
        let kind = "ICMP\(e.isV6 ? "v6" : "") \(e.type)/\(e.code) \(name)"
        let fromServer = e.reporter == r.tcp.server.address
        let ender: Ender = fromServer ? .server : .middlebox
        let evidence = [Evidence(e.at, "\(kind) from \(e.reporter), quoting the client's SYN")]
        if Knowledge.icmpIsAdministrative(isV6: e.isV6, type: e.type, code: e.code) {
            return make(
                r, .icmpUnreachable, .networkBlockade,
                "\(e.reporter) blocked the connection to \(r.serverName):\(r.tcp.server.port) with \(kind).",
                Confidence(.high, "an ICMP administratively-prohibited error quoted the client's SYN"),
                stage: .tcpHandshake, ender: ender, client: Knowledge.connectFailed, remedy: .icmpAdmin,
                details: ["The filter is at \(e.reporter)\(fromServer ? " (the server itself)" : ", a router on the path")."],
                evidence: evidence)
        }
        if Knowledge.icmpIsNoHost(isV6: e.isV6, type: e.type, code: e.code) {
            if let d = r.facts.dns.last {
                return make(
                    r, .icmpUnreachable, .resolutionMismatch,
                    "DNS sent the client to \(d.address) for \(d.name), and no host answers there: \(e.reporter) reported \(kind).",
                    Confidence(.high, "the DNS answer in the capture led to an address the router reports as unreachable"),
                    stage: .tcpHandshake, ender: ender, client: Knowledge.connectFailed, remedy: .icmpNoHost,
                    details: ["The name resolved to an address where nothing lives: a stale or wrong DNS record, or the host is down."],
                    evidence: evidence)
            }
            return make(
                r, .icmpUnreachable, .networkBlockade,
                "\(e.reporter) reported \(kind) for \(r.serverName): no host answers at that address.",
                Confidence(.high, "an ICMP unreachable error quoted the client's SYN"), stage: .tcpHandshake,
                ender: ender, client: Knowledge.connectFailed, remedy: .icmpNoHost,
                details: ["No DNS answer for this address is in the capture; check that the client used the right address."],
                evidence: evidence)
        }
        return make(
            r, .icmpUnreachable, .networkBlockade,
            "\(e.reporter) answered the connection to \(r.serverName):\(r.tcp.server.port) with \(kind).",
            Confidence(.high, "an ICMP error quoted the client's SYN"), stage: .tcpHandshake, ender: ender,
            client: Knowledge.connectFailed, remedy: .icmpOther, evidence: evidence)
    }

    static func synUnanswered(_ r: Reading) -> Verdict? {
        guard r.tcp.outcome == .synUnanswered else { return nil }
        let h = r.tcp.handshake
        let spacing = h.synIntervals.map { r.seconds($0) }.joined(separator: ", ")
        let retries = h.synCount > 1 ? " (\(h.synCount) SYNs, retried after \(spacing))" : " (a single SYN)"
        let level: Confidence.Level = h.synCount > 1 ? .high : .medium
        let within = r.tcp.durationSeconds > 0 ? "within \(r.seconds(r.tcp.durationSeconds))" : "before the capture ended"
        var details = ["No SYN-ACK, RST or ICMP error came back \(within)\(retries)."]
        if h.synCount == 1 { details.append("Only one SYN was captured: the capture may have stopped before the client retried.") }
        return make(
            r, .synUnanswered, .networkBlockade,
            "No answer from \(r.serverName) on TCP port \(r.tcp.server.port): the SYN was dropped on the way or by the server's firewall.",
            Confidence(level, h.synCount > 1 ? "the client retried the SYN and nothing answered" : "one unanswered SYN"),
            stage: .tcpHandshake, ender: Ender.none, client: Knowledge.connectFailed, details: details,
            evidence: h.syns.dropFirst().map { Evidence($0, "SYN retransmitted, no answer") })
    }

    static func handshakeIncomplete(_ r: Reading) -> Verdict? {
        guard !r.tcp.established, r.tcp.roleSource == .syn else { return nil }
        if let rst = r.tcp.resets.first, rst.from == .client {
            return make(
                r, .clientAbort, .clientSide,
                "The client reset the connection during the TCP handshake, after the server's SYN-ACK.",
                Confidence(.medium, "the client's own RST ended the handshake"), stage: .tcpHandshake, ender: .client,
                client: Knowledge.connectFailed, remedy: .handshakeIncomplete,
                evidence: [Evidence(rst.at, "RST from the client")])
        }
        return make(
            r, .incomplete, .clientSide,
            "The server answered (SYN-ACK) but the client never completed the handshake.",
            Confidence(.low, "the SYN-ACK is in the capture but no ACK from the client followed"), stage: .tcpHandshake,
            client: Knowledge.connectFailed, remedy: .handshakeIncomplete,
            evidence: [Evidence(r.tcp.handshake.synAck, "SYN-ACK with no ACK from the client")])
    }

    // MARK: - Established connections

    static func resetByMiddlebox(_ r: Reading) -> Verdict? {
        guard let rst = r.forgedReset, let lo = rst.sameSideTTLMin, let hi = rst.sameSideTTLMax else { return nil }
        let claimed = rst.from == .server ? "the server" : "the client"
        let range = lo == hi ? "\(lo)" : "\(lo)–\(hi)"
        var details = [
            "The RST carries \(claimed)'s address but TTL \(rst.ttl), while \(claimed)'s \(rst.sameSidePackets) earlier packets all had TTL \(range): it was sent from a different distance, by another device.",
            "It came after \(r.bytes(rst.clientBytesBefore)) from the client and \(r.bytes(rst.serverBytesBefore)) from the server, at the \(r.stage.rawValue) stage.",
        ]
        if let id = rst.sameSideLastIPID, !rst.isIPv6 {
            details.append("IP ID \(rst.ipID) against \(id) in \(claimed)'s previous packet.")
        }
        let initial: [UInt8] = [64, 128, 255]
        if initial.contains(rst.ttl) {
            details.append("TTL \(rst.ttl) is an initial value: the device that sent it is on the capture point's own network segment.")
        }
        return make(
            r, .resetByMiddlebox, .networkBlockade,
            "A device between client and server reset the connection at the \(r.stage.rawValue) stage, posing as \(claimed).",
            Confidence(.high, "the RST's TTL differs from every other packet of \(claimed)"), ender: .middlebox,
            client: Knowledge.socketClosed, details: details,
            evidence: [Evidence(rst.at, "RST claiming to be from \(claimed), TTL \(rst.ttl) (\(claimed)'s packets: TTL \(range))")])
    }

    /// The client completed the handshake and sent, but the server only ever repeated its
    /// SYN-ACK: it never received the client's ACK or data. Loss on the client-to-server
    /// path, not a server that stopped answering.
    static func pathLoss(_ r: Reading) -> Verdict? {
        let h = r.tcp.handshake
        let s = r.tcp.serverSide
        let c = r.tcp.clientSide
        guard r.tcp.established, r.tcp.roleSource == .syn, let completed = h.completed, h.synAckCount >= 2,
            s.packets == h.synAckCount, s.payloadBytes == 0, c.payloadBytes > 0, r.ender != .server
        else { return nil }
        // The client's last packet: how long it kept trying.
        let clientEnd = r.tcp.resets.first(where: { $0.from == .client })?.at ?? r.tcp.last
        let tried = clientEnd.time.seconds(since: completed.time)
        var details = [
            "The server sent \(h.synAckCount) SYN-ACKs and nothing else: it never received the client's ACK (frame \(completed.frame)) nor its \(r.bytes(c.streamBytes)) of data, although they reached the capture point.",
        ]
        details.append("The client kept resending for \(r.seconds(tried)) before it gave up (\(c.retransmissions) retransmission\(c.retransmissions == 1 ? "" : "s") captured).")
        details.append("A filter or a lossy link between the capture point and the server drops the client's packets while the server's reach the client.")
        var evidence = [Evidence(completed, "the client's ACK completing the handshake (the server never acknowledges it)")]
        if let req = r.request {
            evidence.append(Evidence(req.at, "X.224 Connection Request, never acknowledged by the server"))
        } else if let re = c.firstRetransmission {
            evidence.append(Evidence(re, "the client retransmits its data"))
        }
        evidence.append(Evidence(clientEnd, "the client gives up, \(r.seconds(tried)) after the handshake"))
        return make(
            r, .pathLoss, .networkBlockade,
            "The client's packets never reached \(r.serverName): the server kept repeating its SYN-ACK while the client sent its ACK and request, then retransmitted for \(r.seconds(tried)) and gave up.",
            Confidence(c.retransmissions > 0 ? .high : .medium, "the server retransmitted its SYN-ACK after the client's ACK and never acknowledged the client's data"),
            stage: .tcpHandshake, ender: r.ender, client: Knowledge.timedOut, remedy: .pathLoss, details: details,
            evidence: evidence)
    }

    /// The server answered and the client owed the next message, sent nothing for a long
    /// time, and the server closed: a handshake timeout of a stalled client (a hung client,
    /// or a scanner that opens connections and waits).
    static func clientStalled(_ r: Reading) -> Verdict? {
        guard r.tcp.established, r.ender == .server, !r.reachedSession, let end = r.endingFrame,
            let serverLast = r.tcp.serverSide.lastDataFrame, serverLast.frame > (r.tcp.clientSide.lastDataFrame?.frame ?? 0),
            r.tls?.alerts.contains(where: { $0.from == .server }) != true, serverGoodbye(r) == nil,
            end.time.seconds(since: serverLast.time) >= stallSeconds
        else { return nil }
        // The server's message the client had to answer, and what was due.
        let message: FrameRef
        let what: String
        let due: String
        if let c = r.confirm, c.failure == nil, !r.tlsStarted, r.rdp.mcsConnectInitial == nil {
            message = c.at
            what = "the server's X.224 Connection Confirm (\((r.selected ?? SecurityProtocols(rawValue: 0)).names))"
            due = "its TLS ClientHello"
        } else if let sh = r.serverHello, r.tls?.handshakeComplete != true {
            message = r.tls?.serverHelloDone ?? sh.at
            what = "the server's TLS handshake messages"
            due = "its key exchange and Finished"
        } else if r.usesCredSSP, r.tls?.handshakeComplete == true, r.credsspPhase == .challenge, let at = r.rdp.credssp?.reachedAt {
            message = at
            what = "the server's CredSSP CHALLENGE"
            due = "its AUTHENTICATE"
        } else {
            return nil
        }
        let silence = end.time.seconds(since: message.time)
        let how = r.endedByRST ? "RST" : "FIN"
        return make(
            r, .clientAbort, .clientSide,
            "The client stalled: it sent nothing for \(r.seconds(silence)) after \(what), and \(r.serverName) timed the handshake out with an \(how).",
            Confidence(.medium, "\(r.seconds(silence)) of silence from the client on its turn, then the server's \(how)"),
            ender: .server, client: closedDuringSetup(r), remedy: .clientStall,
            details: ["After \(what) it was the client's turn to send \(due); it only acknowledged. The server's \(how) is its handshake timeout, not a refusal."],
            evidence: [
                Evidence(message, "\(what.prefix(1).uppercased() + what.dropFirst()): the client's turn"),
                Evidence(end, "\(how) from the server after \(r.seconds(silence)) with nothing from the client"),
            ])
    }

    /// A server that refuses does so within a second or two of the request; one that closes
    /// this long after its own answer has waited for the client.
    static let stallSeconds = 20.0

    static func nonRDPService(_ r: Reading) -> Verdict? {
        let kind = r.rdp.firstServerPayload
        let rdpAnswer = kind == .x224ConnectionConfirm || kind == .x224Other
        guard r.tcp.established, let kind, !rdpAnswer, r.confirm == nil else { return nil }
        if kind == .tls && r.request == nil { return nil }
        let banner = r.rdp.serverBanner.map { " (\"\($0)\")" } ?? ""
        let what: String
        switch kind {
        case .ssh: what = "an SSH server"
        case .http: what = "an HTTP server"
        case .tls: what = "a TLS service that does not speak RDP's X.224"
        default:
            let b = r.rdp.serverBanner?.lowercased() ?? ""
            what = b.hasPrefix("<!doctype html") || b.hasPrefix("<html") ? "a web server (it answered with an HTML page)" : "a service that is not RDP"
        }
        return make(
            r, .nonRDPService, .resolutionMismatch,
            "\(r.serverName):\(r.tcp.server.port) is \(what)\(banner), not an RDP server.",
            Confidence(.high, "the server's first bytes are \(kind.rawValue), not an X.224 Connection Confirm"),
            stage: .x224Negotiation, ender: .server, client: Knowledge.protocolError,
            details: ["A port forward, NAT rule or DNS record sends RDP to the wrong host or port, or RDP listens elsewhere."],
            evidence: nonRDPServiceEvidence(r, kind: kind, banner: banner))
    }

    /// What the client asked in RDP (when it did) and what came back instead.
    static func nonRDPServiceEvidence(_ r: Reading, kind: PayloadKind, banner: String) -> [Evidence] {
        var evidence = [Evidence(r.rdp.serverBannerAt, "server's first bytes: \(kind.rawValue)\(banner)")]
        if let req = r.request { evidence.insert(Evidence(req.at, "X.224 Connection Request"), at: 0) }
        return evidence
    }

    /// The capture began after the connection was opened and holds none of its setup: no
    /// rule about the setup applies. Session traffic both ways (or fast-path PDUs, which
    /// only a set-up connection carries) shows the session was running.
    static func midSession(_ r: Reading) -> Verdict? {
        guard r.tcp.established, r.startedAfterSetup else { return nil }
        let m = r.rdp.midStream
        func traffic(_ side: Side) -> String? {
            guard let s = m?[side], s.pdus > 0 else { return nil }
            switch s.framing {
            case .tls: return "TLS records"
            case .tpkt, .fastPath:
                return s.fastPathPDUs == s.pdus ? "RDP fast-path PDUs" : s.fastPathPDUs == 0 ? "RDP PDUs in TPKT" : "RDP PDUs (fast-path and TPKT)"
            }
        }
        let fromClient = traffic(.client)
        let fromServer = traffic(.server)
        let seen: String
        switch (fromClient, fromServer) {
        case let (c?, s?): seen = c == s ? "\(c) both ways" : "\(c) from the client, \(s) from the server"
        case let (c?, nil): seen = "\(c) from the client only"
        case let (nil, s?): seen = "\(s) from the server only"
        case (nil, nil): seen = r.tcp.clientSide.payloadBytes + r.tcp.serverSide.payloadBytes > 0 ? "no RDP PDU the parser could frame" : "no data"
        }
        var evidence: [Evidence] = []
        var details: [String] = []
        for side in [Side.client, Side.server] {
            guard let s = m?[side], s.pdus > 0 else { continue }
            let unit = s.framing == .tls ? "TLS record" : s.framing == .tpkt ? "TPKT PDU" : "fast-path PDU"
            evidence.append(Evidence(s.at, "first whole \(unit) from the \(side.rawValue) in the capture"))
            if s.skippedBytes > 0 {
                details.append("The capture began inside a PDU of the \(side.rawValue)'s stream: its first \(r.bytes(s.skippedBytes)) were skipped to the first PDU boundary.")
            }
        }
        let (ender, disconnect) = answeredDisconnect(r, if: !r.endedByRST)
        if let disconnect { details.append(disconnect) }
        let ending: String
        switch r.tcp.outcome {
        case .open: ending = "it was still open when the capture ended"
        case .closed: ending = ender.party.map { "\($0) closed it" } ?? "it was closed"
        default: ending = ender.party.map { "\($0) reset it" } ?? "it was reset"
        }
        if let e = r.endingFrame, r.tcp.outcome != .open { evidence.append(Evidence(e, Wording.ended(r.tcp.outcome, by: ender))) }
        details.insert("The SYN and the connection sequence (X.224, the security handshake, MCS) happened before the capture began: how the connection was set up cannot be judged from it.", at: 0)
        guard r.joinedMidSession else {
            return make(
                r, .incomplete, .none,
                "The capture started after the connection to \(r.serverName):\(r.tcp.server.port) was opened and holds none of its setup (\(seen)); \(ending).",
                Confidence(.low, "no connection sequence and no session traffic both ways in the capture"),
                ender: ender, remedy: .midSession, details: details, evidence: evidence)
        }
        guard !(ender == .server && r.endedByRST) else {
            return make(
                r, .reset, .hostNotAccepting,
                "The capture started after the connection was set up: the RDP session with \(r.serverName) was running (\(seen)), then the server reset it.",
                Confidence(.low, "the server reset a running session; the capture does not show why"), stage: .session,
                ender: .server, client: Knowledge.socketClosed, remedy: .sessionReset, details: details, evidence: evidence)
        }
        let bothWays = fromClient != nil && fromServer != nil
        return make(
            r, bothWays ? .success : .incomplete, .none,
            "The capture started after the connection was set up: the RDP session with \(r.serverName) was running (\(seen)); \(ending).",
            bothWays
                ? Confidence(.medium, "session traffic flowed both ways; the connection sequence is not in the capture")
                : Confidence(.low, "fast-path PDUs show a running session, but only one side's traffic could be read"),
            stage: .session, ender: ender, remedy: bothWays ? .success : .midSession, details: details,
            evidence: evidence)
    }

    static func noRDPRequest(_ r: Reading) -> Verdict? {
        // Without the SYN the capture may have begun after the request; a Confirm answers one.
        guard r.tcp.established, r.tcp.roleSource == .syn, r.request == nil, r.confirm == nil, r.rdp.firstClientPayload == nil || r.rdp.firstClientPayload != .x224ConnectionRequest && r.rdp.firstClientPayload != .tls else { return nil }
        // A TLS handshake on the connection means the request was sent and the capture missed it.
        if r.tlsStarted { return nil }
        if r.tcp.outcome == .open && r.tcp.clientSide.payloadBytes == 0 {
            return make(
                r, .incomplete, .none, "The connection was opened but no RDP request was sent before the capture ended.",
                Confidence(.low, "no client bytes"), stage: .x224Negotiation, remedy: .incomplete)
        }
        let sent = r.rdp.firstClientPayload.map { " (it sent \($0.rawValue))" } ?? ""
        return make(
            r, .incomplete, .none,
            "The client opened TCP to \(r.serverName):\(r.tcp.server.port) and never sent an RDP Connection Request\(sent).",
            Confidence(.medium, "no X.224 Connection Request from the client"), stage: .x224Negotiation,
            remedy: .noRDPRequest, evidence: [Evidence(r.endingFrame, Wording.ended(r.tcp.outcome, by: r.ender))])
    }

    static func negotiationFailure(_ r: Reading) -> Verdict? {
        guard let c = r.confirm, let code = c.failure else { return nil }
        let requested = r.request?.requestedProtocols?.names ?? "standard RDP security"
        return make(
            r, .negotiationFailure, .tlsCredSSP,
            "The server refused the client's security protocols: RDP_NEG_FAILURE \(code.name).",
            Confidence(.high, "the Connection Confirm carries RDP_NEG_FAILURE \(code.name)"), stage: .x224Negotiation,
            ender: .server, client: Knowledge.negotiationError,
            remedy: .negotiation(code),
            details: ["The client asked for \(requested); the server answered failure code \(code.rawValue) (\(code.name)); \(r.ender.party.map { "the TCP connection was then closed by \($0)" } ?? "the TCP connection was still open when the capture ended")."],
            evidence: [
                Evidence(r.request?.at, "X.224 Connection Request, requested \(requested)"),
                Evidence(c.at, "X.224 Connection Confirm with RDP_NEG_FAILURE \(code.name)"),
                Evidence(r.endingFrame, Wording.ended(r.tcp.outcome, by: r.ender, verb: "closed")),
            ])
    }

    /// A Connection Request with no Connection Confirm.
    static func x224Unanswered(_ r: Reading) -> Verdict? {
        guard r.tcp.established, let req = r.request, r.confirm == nil else { return nil }
        let requested = req.requestedProtocols?.names ?? "no negotiation (old client)"
        let evidence = [Evidence(req.at, "X.224 Connection Request (\(requested))"), Evidence(r.endingFrame, Wording.ended(r.tcp.outcome, by: r.ender))]
        switch r.ender {
        case .server:
            return make(
                r, .earlyDisconnect, .hostNotAccepting,
                "\(r.serverName) accepted TCP, then \(r.endedByRST ? "reset" : "closed") the connection right after the client's X.224 Connection Request, without answering it.",
                Confidence(.high, "the server itself ended the connection after the request, with no Connection Confirm"),
                stage: .x224Negotiation, ender: .server, client: closedDuringSetup(r), remedy: .earlyDisconnect,
                details: ["This is the case the client's 0x904/0x7 guess was written for: connections disabled, the session limit reached, or an unhealthy listener."],
                evidence: evidence)
        case .client:
            // Waited from the request to the client's last word (its RST, else the close); a
            // request sent with the FIN, or only captured at its close, shows no wait at all.
            let gaveUp = r.tcp.resets.first(where: { $0.from == .client })?.at ?? r.endingFrame
            let waited = gaveUp.map { $0.time.seconds(since: req.at.time) } ?? 0
            let wait = waited > 0 ? " after \(r.seconds(waited))" : ""
            return make(
                r, .earlyDisconnect, .hostNotAccepting,
                "\(r.serverName) accepted TCP but never answered the X.224 Connection Request; the client gave up\(wait).",
                Confidence(.medium, "no Connection Confirm came back; the client ended the connection"),
                stage: .x224Negotiation, ender: .client, client: Knowledge.timedOut, remedy: .earlyDisconnect,
                evidence: evidence)
        default:
            return make(
                r, .incomplete, .none,
                "The client sent its X.224 Connection Request; the capture ended before an answer.",
                Confidence(.low, "no Connection Confirm before the end of the capture"), stage: .x224Negotiation,
                evidence: evidence)
        }
    }

    /// A successful Connection Confirm, and then the connection ended before TLS started.
    static func afterConfirm(_ r: Reading) -> Verdict? {
        guard let c = r.confirm, c.failure == nil, !r.tlsStarted, r.rdp.mcsConnectInitial == nil,
            r.tcp.outcome != .open
        else { return nil }
        let selected = r.selected ?? SecurityProtocols(rawValue: 0)
        let requested = r.request?.requestedProtocols
        var evidence = [Evidence(c.at, "X.224 Connection Confirm selecting \(selected.names)")]
        if let req = r.request { evidence.insert(Evidence(req.at, "X.224 Connection Request (\(requested?.names ?? "no negotiation"))"), at: 0) }
        evidence.append(Evidence(r.endingFrame, Wording.ended(r.tcp.outcome, by: r.ender)))
        if let requested, !selectionIsValid(selected, requested) {
            return make(
                r, .negotiationFailure, .tlsCredSSP,
                "The server selected \(selected.names), which the client did not offer (\(requested.names)): a security-layer mismatch without a failure code.",
                Confidence(.high, "the Connection Confirm selects a protocol outside the client's request"),
                stage: .x224Negotiation, client: Knowledge.negotiationError,
                remedy: .negotiation(selected.rawValue == 0 ? .sslNotAllowedByServer : nil),
                details: ["A compliant server answers RDP_NEG_FAILURE here (SSL_NOT_ALLOWED_BY_SERVER when it only has standard RDP security); this one selected a protocol anyway\(r.ender.party.map { " and the connection was closed by \($0)" } ?? "; the capture ended with the connection open")."],
                evidence: evidence)
        }
        if r.ender == .client {
            if let requested, requested.usesCredSSP && !selected.usesCredSSP {
                // The guide's cause 2: client and server cannot agree on the security layer.
                return make(
                    r, .clientAbort, .tlsCredSSP,
                    "The client offered Network Level Authentication (\(requested.names)); the server chose \(selected.names) without it, and the client closed the connection: a security-layer policy mismatch.",
                    Confidence(.high, "the client ended the connection right after a Connection Confirm without CredSSP"),
                    stage: .x224Negotiation, ender: .client,
                    client: Knowledge.localNLARequired,
                    remedy: .nlaPolicyMismatch,
                    details: ["The server validly chose \(selected.names): it does not offer NLA (CredSSP), or is set to a lower security layer, while the client requires it."],
                    evidence: evidence)
            }
            return make(
                r, .clientAbort, .clientSide,
                "The server answered the negotiation (\(selected.names)) and the client closed the connection instead of continuing.",
                Confidence(.high, "the client ended the connection after a valid Connection Confirm"),
                stage: .x224Negotiation, ender: .client,
                client: Knowledge.localSecurity,
                remedy: .clientAbort, evidence: evidence)
        }
        return make(
            r, .earlyDisconnect, .hostNotAccepting,
            "\(r.serverName) confirmed the negotiation (\(selected.names)) and then \(r.endedByRST ? "reset" : "closed") the connection before the security handshake.",
            Confidence(.medium, "the server ended the connection after its Connection Confirm, before any TLS"),
            stage: .x224Negotiation, client: closedDuringSetup(r), remedy: .earlyDisconnect, evidence: evidence)
    }

    /// A server that closes within a second of the client's last message is answering the
    /// client's disconnect (its close_notify or Disconnect Provider Ultimatum): the client
    /// ended the attempt. Returns who ended it and, when that changed, the sentence saying why.
    static func answeredDisconnect(_ r: Reading, if applies: Bool) -> (Ender, String?) {
        guard r.ender == .server, applies, let end = r.endingFrame, let last = r.tcp.clientSide.lastDataFrame,
            last.frame < end.frame, end.time.seconds(since: last.time) <= 1
        else { return (r.ender, nil) }
        return (.client, "The client disconnected first (its last message in frame \(last.frame)); the server then closed the TCP connection.")
    }

    /// RDP_NEG_RSP may only select a protocol the client offered; standard RDP security
    /// (0) only when the client asked for nothing else (MS-RDPBCGR 3.3.5.3.1).
    static func selectionIsValid(_ selected: SecurityProtocols, _ requested: SecurityProtocols) -> Bool {
        if selected.rawValue == 0 { return requested.rawValue == 0 }
        return selected.rawValue & ~requested.rawValue == 0
    }

    /// The TLS handshake completed, then the client closed (usually with an alert) before
    /// sending anything of its own: it refused the server, typically its certificate.
    static func refusedAfterHandshake(_ r: Reading) -> Verdict? {
        guard let tls = r.tls, tls.handshakeComplete, r.ender == .client, !r.reachedSession else { return nil }
        let clientRecords = tls.applicationRecords.filter { $0.from == .client }
        let clientBytes = clientRecords.reduce(0) { $0 + $1.length }
        guard clientBytes <= 64, r.credsspPhase == .none || r.credsspPhase == .negotiate && clientRecords.count <= 1 else {
            return nil
        }
        let alert = tls.alerts.first { $0.from == .client }
        var evidence = [Evidence(r.clientHello?.at, "TLS ClientHello"), Evidence(r.serverHello?.at, "TLS ServerHello (\(r.serverHello.map { TLSVersion(rawValue: $0.version).name } ?? "?"))")]
        if let a = alert { evidence.append(Evidence(a.at, a.encrypted ? "the client's encrypted alert (close_notify or a certificate alert)" : "TLS alert \(a.description.map { TLSAlertDescription(rawValue: $0).name } ?? "?") from the client")) }
        evidence.append(Evidence(r.endingFrame, "the client closes the connection"))
        var details = certificateDetails(r)
        if r.tls?.certificates.isEmpty != false && r.serverHello?.version == 0x0304 {
            details.append("TLS 1.3 encrypts the certificate, so its name and issuer are not visible in the capture (a key log would show them).")
        }
        if let cert = tls.certificates.first, let product = cert.inspectionProduct {
            return make(
                r, .clientAbort, .clientSide,
                "The client refused the server after the TLS handshake; the certificate came from \(product) TLS inspection, not from the server.",
                Confidence(.high, "the certificate's issuer names a TLS-inspection product"), stage: .tlsHandshake,
                ender: .client, client: Knowledge.securityError, remedy: .tlsInspection, details: details,
                evidence: evidence.filter { $0.frame != nil })
        }
        return make(
            r, .clientAbort, .clientSide,
            "The TLS handshake with \(r.serverName) completed, then the client closed the connection without sending any RDP data: it refused the server, most likely its certificate.",
            Confidence(.medium, "the client ended the connection right after the TLS handshake, \(alert != nil ? "with an alert" : "without data")"),
            stage: .tlsHandshake, ender: .client,
            client: Knowledge.localCertificate,
            remedy: .tlsAlertCertificate, details: details, evidence: evidence.filter { $0.frame != nil })
    }

    static func tlsAlert(_ r: Reading) -> Verdict? {
        guard let a = r.fatalAlert, r.tls?.handshakeComplete != true || a.encrypted == false && a.level == 2 else { return nil }
        if a.encrypted && r.tls?.handshakeComplete == true { return nil }
        let who = a.from == .server ? "server" : "client"
        let name = a.description.map { TLSAlertDescription(rawValue: $0).name }
        let desc = name.map { "\($0) (\(a.description!))" } ?? "encrypted alert (description hidden)"
        var details: [String] = []
        if let ch = r.clientHello {
            let offered = (ch.supportedVersions.isEmpty ? [ch.legacyVersion] : ch.supportedVersions).filter { !TLSVersion(rawValue: $0).isGREASE }
            details.append("The client offered \(offered.map { TLSVersion(rawValue: $0).name }.joined(separator: ", ")).")
        }
        if let sh = r.serverHello { details.append("The server chose \(TLSVersion(rawValue: sh.version).name).") }
        let certAlert = [42, 43, 44, 45, 46, 48].contains(a.description ?? 0)
        if let cert = r.tls?.certificates.first, let product = cert.inspectionProduct {
            return make(
                r, .tlsAlert, .clientSide,
                "The \(who) sent a fatal TLS alert (\(desc)); the certificate came from \(product) TLS inspection, not from the server.",
                Confidence(.high, "the certificate's issuer names a TLS-inspection product"), stage: .tlsHandshake,
                ender: a.from == .server ? .server : .client, client: Knowledge.securityError, remedy: .tlsInspection,
                details: details + ["Issuer: \(cert.issuer)."], evidence: [Evidence(a.at, "TLS alert \(desc) from the \(who)")])
        }
        let remedy: Remedy
        switch a.description {
        case 70?: remedy = .tlsAlertProtocolVersion
        case 40?, 71?: remedy = .tlsAlertHandshakeFailure
        default: remedy = certAlert ? .tlsAlertCertificate : .tlsAlertOther
        }
        return make(
            r, .tlsAlert, .tlsCredSSP,
            "The TLS handshake failed: the \(who) sent a fatal alert, \(desc).",
            Confidence(a.encrypted ? .medium : .high, a.encrypted ? "an encrypted alert record ended the handshake" : "a plain-text fatal alert"),
            stage: .tlsHandshake, ender: a.from == .server ? .server : .client, client: Knowledge.securityError,
            remedy: remedy, details: details,
            evidence: [
                Evidence(r.clientHello?.at, "TLS ClientHello"),
                Evidence(r.serverHello?.at, r.serverHello.map { "TLS ServerHello (\(TLSVersion(rawValue: $0.version).name))" } ?? ""),
                Evidence(a.at, "TLS alert \(desc) from the \(who)"),
            ].filter { !$0.what.isEmpty && $0.frame != nil })
    }

    /// Large segments from one side never arrive while small ones do (FACTS.md section 6).
    static func mtuBlackhole(_ r: Reading) -> Verdict? {
        guard r.tcp.established, r.tcp.roleSource == .syn, r.tls?.handshakeComplete != true, r.fatalAlert == nil,
            let ch = r.clientHello, r.ender != .server
        else { return nil }
        let s = r.tcp.serverSide
        let c = r.tcp.clientSide
        let serverMSS = Int(s.mss ?? 1460)
        let holes = s.gaps.filter { $0.reason != .snaplen }
        // Data acknowledged or sent after a hole that never filled: the classic signature.
        if !holes.isEmpty, r.serverHello == nil || r.tls?.certificates.isEmpty == true {
            let missing = holes.reduce(Int64(0)) { $0 + $1.length }
            var details = [
                "\(missing) bytes of the server's TLS answer never reached the capture point, while \(s.packets) smaller server packets did (largest \(s.largestSegment) bytes, MSS \(serverMSS)).",
            ]
            if c.duplicateAcks > 0 || c.sackBlocks > 0 {
                details.append("The client asked for the missing bytes again and again (\(c.duplicateAcks) duplicate ACKs, \(c.sackBlocks) with SACK).")
            }
            if s.retransmissions > 0 {
                details.append("The server retransmitted \(s.retransmissions) time\(s.retransmissions == 1 ? "" : "s").")
            }
            return make(
                r, .mtuBlackhole, .networkBlockade,
                "Large packets from \(r.serverName) never arrive: a path MTU black hole ate the server's TLS certificate flight.",
                Confidence(.high, "a hole in the server's stream was never filled while smaller segments after it arrived"),
                stage: .tlsHandshake, ender: r.ender, client: Knowledge.timedOut, remedy: .mtuBlackhole, details: details,
                evidence: [Evidence(ch.at, "TLS ClientHello")] + holes.prefix(3).map { Evidence(FrameRef(frame: $0.frame, time: r.tcp.last.time), "\($0.length) server bytes missing at stream offset \($0.offset)") })
        }
        // Only ACKs came back after the ClientHello, then silence until the client gave up.
        guard r.serverHello == nil, s.streamBytes <= (r.confirm?.at != nil ? Int64(19) : 0) + Int64(r.tcp.serverSide.gapBytes) || s.payloadBytes <= 64,
            let end = r.endingFrame ?? Optional(r.tcp.last)
        else { return nil }
        let waited = end.time.seconds(since: ch.at.time)
        guard waited >= 5 else { return nil }
        let serverAcked = r.tcp.serverSide.packets > 0 && (s.lastDataFrame?.frame ?? 0) < ch.at.frame
        guard serverAcked else { return nil }
        var details = [
            "After the ClientHello the server sent only small packets (largest \(s.largestSegment) bytes) and no TLS answer for \(r.seconds(waited)); the client then \(r.ender == .client ? "gave up" : "was still waiting when the capture ended").",
            "A server that ACKs the ClientHello but whose answer never arrives is the mark of large packets being dropped on the way back (its MSS is \(serverMSS)).",
        ]
        if c.retransmissions > 0 {
            details.append("The client retransmitted \(c.retransmissions) time\(c.retransmissions == 1 ? "" : "s").")
        }
        details.append("A hung TLS stack on the server looks the same from the client side: a capture on the server would show its answer leaving and being retransmitted.")
        return make(
            r, .mtuBlackhole, .networkBlockade,
            "\(r.serverName) acknowledged the TLS ClientHello but its answer never arrived: most likely a path MTU black hole dropping the server's large packets.",
            Confidence(.medium, "the server's TCP acknowledgments arrived but no TLS answer for \(r.seconds(waited))"),
            stage: .tlsHandshake, ender: r.ender, client: Knowledge.timedOut, remedy: .mtuBlackhole, details: details,
            evidence: [
                Evidence(ch.at, "TLS ClientHello"),
                // The proof the server answered: its sequence number moved past every byte captured from it.
                Evidence(s.sentUnseenAt, "the server's sequence number is \(r.bytes(s.sentUnseenBytes ?? 0)) past what was captured from it: it sent its answer, which never arrived"),
                Evidence(r.endingFrame, r.ender == .client ? "the client gives up" : "last frame"),
            ].filter { $0.frame != nil })
    }

    /// TLS started and did not complete, without an alert.
    static func tlsHandshake(_ r: Reading) -> Verdict? {
        // A ServerHello answers a ClientHello even when the capture missed it.
        guard r.tlsStarted, r.tls?.handshakeComplete != true else { return nil }
        var evidence: [Evidence] = []
        if let ch = r.clientHello { evidence.append(Evidence(ch.at, "TLS ClientHello")) }
        if let sh = r.serverHello { evidence.append(Evidence(sh.at, "TLS ServerHello (\(TLSVersion(rawValue: sh.version).name))")) }
        if let cf = r.tls?.certificateFrame { evidence.append(Evidence(cf, "server certificate")) }
        evidence.append(Evidence(r.endingFrame, Wording.ended(r.tcp.outcome, by: r.ender)))
        switch r.ender {
        case .server:
            if r.serverHello == nil, let acked = r.serverAcknowledgedAtEnd, let start = r.clientHello?.streamOffset, acked <= start {
                // The closing packet does not acknowledge the ClientHello: the server closed regardless.
                return make(
                    r, .earlyDisconnect, .hostNotAccepting,
                    "\(r.serverName) accepted the connection and the negotiation, then \(r.endedByRST ? "reset" : "closed") it without reading the TLS ClientHello.",
                    Confidence(.medium, "the server's closing packet does not acknowledge the ClientHello"),
                    stage: .x224Negotiation, ender: .server, client: closedDuringSetup(r), remedy: .earlyDisconnect,
                    evidence: evidence)
            }
            if let cert = r.tls?.certificates.first, let product = cert.inspectionProduct {
                return make(
                    r, .tlsRejected, .clientSide,
                    "The TLS handshake was cut; the certificate came from \(product) TLS inspection, not from the server.",
                    Confidence(.medium, "the certificate's issuer names a TLS-inspection product"), stage: .tlsHandshake,
                    client: closedDuringSetup(r), remedy: .tlsInspection, evidence: evidence)
            }
            var details = ["A server whose RDP certificate's private key is unusable behaves like this (Schannel event 36870)."]
            if let (e, text) = serverGoodbye(r) {
                evidence.append(e)
                details.insert(text, at: 0)
            }
            return make(
                r, .tlsRejected, .tlsCredSSP,
                r.serverHello == nil
                    ? "\(r.serverName) read the TLS ClientHello and \(r.endedByRST ? "reset" : "closed") the connection without an answer or alert."
                    : "\(r.serverName) \(r.endedByRST ? "reset" : "closed") the connection in the middle of the TLS handshake, without an alert.",
                Confidence(
                    .medium,
                    r.serverHello == nil
                        ? "the server ended the TLS handshake without a ServerHello or alert"
                        : "the server ended the TLS handshake after its ServerHello, without an alert"),
                stage: .tlsHandshake, ender: .server, client: closedDuringSetup(r), remedy: .tlsRejected,
                details: details, evidence: evidence.sorted { ($0.frame ?? 0) < ($1.frame ?? 0) })
        case .client:
            if let cert = r.tls?.certificates.first, let product = cert.inspectionProduct {
                return make(
                    r, .clientAbort, .clientSide,
                    "The client abandoned the TLS handshake after receiving a certificate issued by \(product) TLS inspection.",
                    Confidence(.high, "the certificate's issuer names a TLS-inspection product"), stage: .tlsHandshake,
                    ender: .client, client: Knowledge.securityError, remedy: .tlsInspection,
                    details: ["Issuer: \(cert.issuer)."], evidence: evidence)
            }
            if r.serverHello != nil {
                return make(
                    r, .clientAbort, .clientSide,
                    "The client abandoned the TLS handshake after the server's answer (ServerHello and certificate), without an alert.",
                    Confidence(.medium, "the client ended the connection after a valid server TLS answer"), stage: .tlsHandshake,
                    ender: .client, client: Knowledge.localRefusedCertificate,
                    remedy: .clientAbort,
                    details: certificateDetails(r), evidence: evidence)
            }
            return make(
                r, .incomplete, .none,
                "The client closed the connection after its ClientHello without any TLS answer from the server.",
                Confidence(.low, "no server answer and no sign of why"), stage: .tlsHandshake, ender: .client,
                evidence: evidence)
        default:
            return make(
                r, .incomplete, .none, "The TLS handshake had not finished when the capture ended.",
                Confidence(.low, "the capture ends mid-handshake"), stage: .tlsHandshake, evidence: evidence)
        }
    }

    static func certificateDetails(_ r: Reading) -> [String] {
        guard let cert = r.tls?.certificates.first else { return [] }
        var out = ["Server certificate: subject \(cert.subject), issuer \(cert.issuer)\(cert.selfSigned ? " (self-signed)" : ""), valid \(cert.notBefore.iso8601) to \(cert.notAfter.iso8601)."]
        if cert.notAfter < r.tcp.first.time { out.append("The certificate had expired at the time of the capture.") }
        if cert.notBefore > r.tcp.first.time { out.append("The certificate was not yet valid at the time of the capture.") }
        if cert.selfSigned { out.append("A self-signed certificate makes clients warn or refuse unless it is trusted.") }
        return out
    }

    /// How Windows servers refuse NLA credentials (FACTS.md section 4): an alert record
    /// right after the client's AUTHENTICATE, then a reset. The client's FIN often lands
    /// between the two, so the TCP close alone would blame the client; the alert came first
    /// and from the server.
    static func credsspAlert(_ r: Reading) -> Verdict? {
        guard r.usesCredSSP, let tls = r.tls, tls.handshakeComplete, let credssp = r.rdp.credssp else { return nil }
        guard let alert = tls.alerts.first(where: { $0.from == .server && $0.encrypted }) else {
            return credsspAnswerUnseen(r, credssp)
        }
        // The client's reset before the alert means the client ended it; the alert is then moot.
        if let rst = r.tcp.resets.first(where: { $0.from == .client }), rst.at.frame < alert.at.frame { return nil }
        let authenticate: FrameRef?
        let unseen: Int64
        switch credssp.phase {
        case .authenticate:
            guard let at = credssp.reachedAt, at.frame < alert.at.frame else { return nil }
            authenticate = at
            unseen = 0
        case .challenge:
            // The capture missed the client's third message, but the server acknowledged
            // client bytes past everything captured before its alert: the AUTHENTICATE reached it.
            guard let challenge = credssp.reachedAt, challenge.frame < alert.at.frame else { return nil }
            let missed = r.tcp.clientSide.gaps.filter { $0.reason == .missing && $0.frame > challenge.frame }
            unseen = missed.reduce(Int64(0)) { $0 + $1.length }
            guard unseen > 0 else { return nil }
            authenticate = nil
        default:
            return nil
        }
        let authRecord = authenticate.flatMap { at in credssp.records.first { $0.at == at } }
        let answering = authRecord.map { "the client's CredSSP AUTHENTICATE (frame \($0.at.frame), \(r.bytes(Int64($0.length))))" }
            ?? "the client's CredSSP AUTHENTICATE (not captured: the server acknowledged \(r.bytes(unseen)) the capture missed)"
        let hidden = tls.isTLS13
        // Read with the key log: a TSRequest errorCode before the alert was the real answer.
        let errorReply = r.facts.rdp.decrypted?.tsRequests.first {
            $0.from == .server && $0.errorCode != nil && $0.at.frame < alert.at.frame && $0.at.frame > (authenticate?.frame ?? 0)
        }
        // Without keys: a server record too small for pubKeyAuth, before the alert, is the
        // size of an errorCode TSRequest (CredSSPShape): the answer.
        let sizedReply = errorReply == nil
            ? credssp.likelyErrorReply.flatMap { $0.frame < alert.at.frame && $0.frame > (authenticate?.frame ?? 0) ? $0 : nil } : nil
        let answer = errorReply?.at ?? sizedReply ?? alert.at
        var evidence = [Evidence(
            alert.at,
            errorReply != nil || sizedReply != nil
                ? "the server's closing alert, after its \(errorReply != nil ? "errorCode" : "answer") (frame \(answer.frame))"
                : hidden
                ? "the server's last record, too small for anything but an alert (TLS 1.3 hides its type), answering \(answering)"
                : "TLS alert record from the server (content type 21, body encrypted), answering \(answering)")]
        if let s = sizedReply {
            evidence.insert(Evidence(s, "a server record too small for pubKeyAuth, the size of a TSRequest errorCode, answering \(answering)"), at: 0)
        }
        var details: [String] = []
        // The server's own close: its FIN or RST, whichever came first.
        let serverEnd = [r.tcp.resets.first(where: { $0.from == .server })?.at, r.tcp.serverSide.fin?.at]
            .compactMap { $0 }.min { $0.frame < $1.frame }
        if let fin = r.tcp.clientSide.fin {
            let what = errorReply != nil ? "errorCode" : sizedReply != nil ? "answer" : "alert"
            if fin.at.frame > answer.frame {
                evidence.append(Evidence(fin.at, "the client's FIN, after the server's \(what)"))
                details.append("The client's FIN (frame \(fin.at.frame)) came after the server's \(what) (frame \(answer.frame)): the client was closing because the server refused it.")
            } else {
                details.append("The client half-closed (FIN, frame \(fin.at.frame)) right after sending its credentials; the server's alert in frame \(alert.at.frame) is still its answer to them.")
            }
        }
        if let end = serverEnd {
            let how = r.tcp.resets.contains { $0.from == .server && $0.at == end } ? "RST" : "FIN"
            evidence.append(Evidence(end, "\(how) from the server"))
        }
        let status = credssp.errorCode.map { code in
            Knowledge.ntstatus[code]?.name ?? "NTSTATUS 0x\(String(code, radix: 16, uppercase: true))"
        }
        let client: ClientReport
        if let code = credssp.errorCode, let k = Knowledge.ntstatus[code] {
            client = Knowledge.logonFailure(k)
        } else {
            client = Knowledge.logonFailure
        }
        details.append(Knowledge.lookAlikeWithoutKeys)
        let confidence: Confidence
        if status != nil {
            confidence = Confidence(.high, "the server's TSRequest errorCode")
        } else if sizedReply != nil {
            confidence = Confidence(.medium, "a server record the size of a TSRequest errorCode right after the client's AUTHENTICATE, then the close (encrypted: read by size)")
        } else if hidden {
            confidence = Confidence(.medium, "TLS 1.3 hides the alert: a record too small for anything else, the server's last, right after the client's AUTHENTICATE")
        } else if authenticate == nil {
            confidence = Confidence(.medium, "a TLS alert record from the server after the CredSSP challenge; the client's AUTHENTICATE is missing from the capture")
        } else {
            confidence = Confidence(.high, "a TLS alert record from the server right after the client's AUTHENTICATE")
        }
        // With a key log the alert TLS 1.3 hides is read: name it.
        let alertText: String
        if let e = errorReply {
            alertText = "a TSRequest errorCode \(status ?? "") (frame \(e.at.frame), read with the key log)"
        } else if let s = sizedReply {
            alertText = "a record the size of a TSRequest errorCode (frame \(s.frame), encrypted)"
        } else if let a = r.facts.rdp.decrypted?.alerts.first(where: { $0.from == .server }), let d = a.description {
            alertText = "a TLS \(ProtocolTables.tlsAlertDescriptions[d] ?? "\(d)") alert (read with the key log)"
        } else {
            alertText = "a TLS alert" + (hidden ? " (hidden by TLS 1.3)" : "")
        }
        let close: String
        if let e = serverEnd {
            close = r.tcp.resets.contains { $0.at == e } ? " and reset the connection" : " and closed the connection"
        } else if let rst = r.tcp.resets.first(where: { $0.from == .client }) {
            close = "; the client then reset the connection"
            evidence.append(Evidence(rst.at, "RST from the client, after the server's \(errorReply != nil ? "errorCode and alert" : "alert")"))
        } else {
            close = ""
        }
        return make(
            r, .credsspFailure, .tlsCredSSP,
            "\(r.serverName) refused the credentials: it answered the client's CredSSP AUTHENTICATE with \(alertText)\(errorReply == nil ? status.map { " (\($0))" } ?? "" : "")\(close).",
            confidence, stage: .credssp, ender: .server, client: client, remedy: .credsspFailure,
            details: details, evidence: evidence)
    }

    /// The same refusal when the capture missed the server's answer: after the client's
    /// AUTHENTICATE the client acknowledged a few dozen server bytes the capture never saw
    /// (one alert record is 31 to 69 bytes with its header), and nothing else came.
    static func credsspAnswerUnseen(_ r: Reading, _ credssp: CredSSPFacts) -> Verdict? {
        guard credssp.phase == .authenticate, credssp.likelyErrorReply == nil, let auth = credssp.reachedAt,
            (r.tcp.serverSide.lastDataFrame?.frame ?? 0) < auth.frame
        else { return nil }
        let s = r.tcp.serverSide
        // Each sign of the unseen answer: the client acknowledging past it, or the server's
        // own sequence number past it.
        var signs: [(at: FrameRef, bytes: Int64, what: String)] = []
        for e in [r.tcp.clientSide.fin.map { ($0.at, $0.acknowledgedPeerBytes, $0.serverBytesBefore, "FIN") }]
            + r.tcp.resets.filter({ $0.from == .client }).map({ ($0.at, $0.acknowledgedPeerBytes, $0.serverBytesBefore, "RST") })
        {
            if let (at, acked, seen, how) = e, let acked, acked > seen {
                signs.append((at, acked - seen, "the client's \(how) acknowledges \(r.bytes(acked - seen)) from the server that the capture missed"))
            }
        }
        if let at = s.sentUnseenAt, let n = s.sentUnseenBytes {
            signs.append((at, n, "the server's sequence number is \(r.bytes(n)) past what was captured from it"))
        }
        signs = signs.filter { $0.at.frame > auth.frame }.sorted { $0.at.frame < $1.at.frame }
        guard let first = signs.first, let unseen = signs.map(\.bytes).max(), unseen <= maxUnseenAnswer else { return nil }
        let authRecord = credssp.records.first { $0.at == auth }
        var evidence = [Evidence(
            first.at,
            "\(first.what): the answer to the client's CredSSP AUTHENTICATE (frame \(auth.frame)\(authRecord.map { ", \(r.bytes(Int64($0.length)))" } ?? ""))")]
        let serverEnd = [r.tcp.resets.first(where: { $0.from == .server })?.at, s.fin?.at].compactMap { $0 }
            .min { $0.frame < $1.frame }
        let close: String
        if let e = serverEnd {
            let how = r.tcp.resets.contains { $0.at == e } ? "RST" : "FIN"
            evidence.append(Evidence(e, "\(how) from the server"))
            close = how == "RST" ? "; the server then reset the connection" : "; the server then closed the connection"
        } else if let rst = r.tcp.resets.first(where: { $0.from == .client }) {
            if rst.at != first.at { evidence.append(Evidence(rst.at, "RST from the client")) }
            close = "; the client then reset the connection"
        } else {
            close = ""
        }
        var details = [
            "Windows answers refused NLA credentials with one TLS alert record and a reset; a successful logon answers with pubKeyAuth and the connection goes on.",
            Knowledge.lookAlikeWithoutKeys,
        ]
        if let fin = r.tcp.clientSide.fin, fin.at.frame < first.at.frame {
            details.insert("The client half-closed (FIN, frame \(fin.at.frame)) before the server's answer; the answer still came.", at: 0)
        }
        return make(
            r, .credsspFailure, .tlsCredSSP,
            "\(r.serverName) refused the credentials: its answer to the client's CredSSP AUTHENTICATE (\(r.bytes(unseen)), the size of a TLS alert record) is missing from the capture, but the client acknowledged it\(close).",
            Confidence(.medium, "the capture missed the server's answer; its size and the close after it match a refusal"),
            stage: .credssp, ender: .server, client: Knowledge.logonFailure, remedy: .credsspFailure,
            details: details, evidence: evidence)
    }

    /// One TLS alert record, with its header, under the costliest cipher (CBC, explicit IV,
    /// SHA-384 MAC) is under 100 bytes; an errorCode TSRequest too.
    static let maxUnseenAnswer: Int64 = 100

    static func credssp(_ r: Reading) -> Verdict? {
        guard r.usesCredSSP, r.tls?.handshakeComplete == true else { return nil }
        let phase = r.credsspPhase
        switch phase {
        case .credentials, .earlyUserAuthorization, .session: return nil
        default: break
        }
        let records = r.rdp.credssp?.records ?? []
        var evidence = records.prefix(6).map { Evidence($0.at, "CredSSP record from the \($0.from.rawValue) (\($0.length) bytes)") }
        evidence.append(Evidence(r.endingFrame, Wording.ended(r.tcp.outcome, by: r.ender)))
        let status = r.rdp.credssp?.errorCode.map { code -> String in
            let n = Knowledge.ntstatus[code]?.name ?? "NTSTATUS 0x\(String(code, radix: 16, uppercase: true))"
            return n
        }
        switch r.ender {
        case .server:
            let client: ClientReport
            if let code = r.rdp.credssp?.errorCode, let k = Knowledge.ntstatus[code] {
                client = Knowledge.logonFailure(k)
            } else {
                client = Knowledge.logonFailure
            }
            if phase == .authenticate {
                return make(
                    r, .credsspFailure, .tlsCredSSP,
                    "\(r.serverName) refused the credentials: it ended the connection right after the client's CredSSP AUTHENTICATE\(status.map { " (\($0))" } ?? "").",
                    Confidence(status == nil ? .medium : .high, status == nil ? "the server closed after the client's authentication record (seen by size; encrypted)" : "the server's TSRequest errorCode"),
                    stage: .credssp, ender: .server, client: client, remedy: .credsspFailure,
                    details: [Knowledge.lookAlikeWithoutKeys],
                    evidence: evidence)
            }
            return make(
                r, .credsspFailure, .tlsCredSSP,
                phase == .none
                    ? "\(r.serverName) ended the connection after the TLS handshake, before CredSSP (NLA) began."
                    : "\(r.serverName) ended CredSSP (NLA) at the \(phase.rawValue) step, before the client sent its credentials.",
                Confidence(.medium, "the server closed during the CredSSP exchange"), stage: .credssp, ender: .server,
                client: closedDuringSetup(r), remedy: .credsspEarly, evidence: evidence)
        case .client:
            return make(
                r, .clientAbort, .clientSide,
                phase == .none
                    ? "The client ended the connection after the TLS handshake, before CredSSP (NLA) began."
                    : "The client ended CredSSP (NLA) at the \(phase.rawValue) step, after the server's answer.",
                Confidence(.medium, "the client closed during the CredSSP exchange"), stage: .credssp, ender: .client,
                client: Knowledge.localCredSSP,
                remedy: .credsspEarly, evidence: evidence)
        default:
            return make(
                r, .incomplete, .none, "CredSSP (NLA) was under way when the capture ended.",
                Confidence(.low, "the capture ends during CredSSP"), stage: .credssp, evidence: evidence)
        }
    }

    static func success(_ r: Reading) -> Verdict? {
        let authOnly = r.usesCredSSP && r.tls?.handshakeComplete == true
            && (r.credsspPhase == .credentials || r.credsspPhase == .earlyUserAuthorization) && r.ender == .client
        guard r.reachedSession || authOnly else { return nil }
        if r.reachedSession && r.ender == .server && r.endedByRST && r.tcp.durationSeconds < 30 {
            return nil
        }
        var details: [String] = []
        if let c = r.confirm, let s = c.selectedProtocol { details.append("Security: \(s.names)\(r.serverHello.map { ", \(TLSVersion(rawValue: $0.version).name)" } ?? "").") }
        if authOnly && !r.reachedSession {
            details.append("The client completed Network Level Authentication and then closed the connection itself (an authentication-only check, or the user cancelled).")
        }
        let (ender, disconnect) = answeredDisconnect(r, if: r.reachedSession)
        if let disconnect { details.append(disconnect) }
        if r.running {
            details.append(
                "Reported while the connection is open, once the logon went through; should it then fail, it is reported again with the same attempt number.")
        }
        let ending: String
        switch r.tcp.outcome {
        case .open: ending = r.running ? "still open" : "still open when the capture ended"
        case .closed: ending = ender.party.map { "closed by \($0)" } ?? "closed"
        case .reset: ending = ender.party.map { "reset by \($0)" } ?? "reset"
        default: ending = r.tcp.outcome.rawValue
        }
        return make(
            r, .success, .none,
            authOnly && !r.reachedSession
                ? "Connected to \(r.serverName) and authenticated (NLA); the client then closed the connection."
                : "Connected to \(r.serverName): the RDP connection sequence completed (\(r.running ? "the session is running" : ending)).",
            Confidence(.high, r.reachedSession ? "the session data flowed both ways after the security handshake" : "CredSSP completed with the client's credentials"),
            stage: authOnly && !r.reachedSession ? .credssp : .session, ender: ender, details: details,
            evidence: [Evidence(r.confirm?.at, "X.224 Connection Confirm"), Evidence(r.endingFrame, "connection \(ending)")].filter { $0.frame != nil })
    }

    /// After the security handshake, before the session: MCS, licensing, early user authorization.
    static func afterSecurity(_ r: Reading) -> Verdict? {
        guard r.tcp.established, r.confirm != nil else { return nil }
        let evidence = [Evidence(r.endingFrame, Wording.ended(r.tcp.outcome, by: r.ender))]
        switch r.ender {
        case .server:
            if r.reachedSession {
                return make(
                    r, .reset, .hostNotAccepting,
                    "\(r.serverName) reset the session shortly after it started.",
                    Confidence(.low, "the server reset an established session"), stage: .session, ender: .server,
                    client: Knowledge.socketClosed, remedy: .sessionReset, evidence: evidence)
            }
            let what = r.credsspPhase == .earlyUserAuthorization
                ? "after the Early User Authorization result (the user may not be allowed to log on)"
                : r.rdp.mcsConnectResponse != nil ? "after the MCS Connect Response" : "after the security handshake, during MCS connect or licensing"
            return make(
                r, .earlyDisconnect, .hostNotAccepting,
                "\(r.serverName) \(r.endedByRST ? "reset" : "closed") the connection \(what).",
                Confidence(.medium, "the server ended the connection before the session started"), stage: .mcsConnect,
                ender: .server, client: closedDuringSetup(r), remedy: .earlyDisconnect, evidence: evidence)
        case .client:
            return make(
                r, .clientAbort, .clientSide,
                "The client closed the connection after the security handshake, before the session started.",
                Confidence(.low, "the client ended the connection during MCS connect or licensing"), stage: .mcsConnect,
                ender: .client, client: Knowledge.localDecision,
                remedy: .clientAbort, evidence: evidence)
        default:
            return make(
                r, .incomplete, .none, "The capture ended during the RDP connection sequence (\(r.stage.rawValue)).",
                Confidence(.low, "the capture ends before the session started"), evidence: evidence)
        }
    }

    static func fallback(_ r: Reading) -> Verdict? {
        switch r.tcp.outcome {
        case .reset:
            return make(
                r, .reset, r.ender == .server ? .hostNotAccepting : r.ender == .client ? .clientSide : .none,
                "\(r.ender.party.map { "The connection was reset by \($0)" } ?? "The connection was reset") at the \(r.stage.rawValue) stage.",
                Confidence(.low, "an RST with no further explanation in the capture"), client: Knowledge.socketClosed,
                evidence: [Evidence(r.endingFrame, r.ender.party.map { "RST from \($0)" } ?? "RST")])
        default:
            return make(
                r, .incomplete, .none,
                "The attempt did not finish in the capture (\(r.tcp.outcome.rawValue) at the \(r.stage.rawValue) stage).",
                Confidence(.low, "no decisive packet"), evidence: [Evidence(r.endingFrame, "last decisive frame")])
        }
    }
}

extension Confidence {
    static func low(_ reason: String) -> Confidence { Confidence(.low, reason) }
}
