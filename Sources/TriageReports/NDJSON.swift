import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// Schema 2's two line shapes (schema/rdptriage-report-v2.schema.json, `$defs/attempt` and
/// `$defs/input`): one attempt as one compact line, and one line summing up an input. The
/// ndjson report writes them as they come; the JSON document holds the same objects; live
/// capture streams them.
///
/// Feed one input at a time: `begin`, each attempt through `attempt(_:)`, then `summary`.
public final class NDJSONLines {
    let options: ReportOptions
    private var digest: InputDigest
    private(set) var linkType: String?

    public init(options: ReportOptions) {
        self.options = options
        digest = InputDigest(options)
    }

    /// Starts an input: what its summary line will count.
    public func begin(_ input: InputInfo) {
        digest = InputDigest(options)
        linkType = input.linkType
    }

    /// Counts the attempt into the input's summary and returns its line (newline included), or
    /// nil when the report's filters (`--failures-only`, `--attempt`, `--max-repeats`) leave it
    /// out. Redacted when the options say so.
    public func attempt(_ a: Attempt) -> [UInt8]? {
        if let redactor = options.redactor {
            // Redaction learns the attempt's names first, then rewrites its text.
            redactor.register(a)
            guard digest.add(a) else { return nil }
            return redacted(Self.line(a))
        }
        guard digest.add(a) else { return nil }
        return Self.line(a)
    }

    /// Counts an attempt whose line was made ahead (by `line(_:)` on another thread); returns
    /// whether the report shows it.
    func take(_ a: Attempt) -> Bool { digest.add(a) }

    /// One attempt's line, without counting it (any thread; never redacted).
    public static func line(_ a: Attempt) -> [UInt8] {
        var j = JSONLine(capacity: 4096)
        SchemaV2.attempt(a, into: &j)
        return j.finish(newline: true)
    }

    /// The input's summary line (newline included).
    public func summary(_ s: InputSummary) -> [UInt8] {
        var j = JSONLine(capacity: 1024)
        j.open()
        SchemaV2.inputHead(s.input, linkType: linkType, into: &j)
        summaryFields(s, into: &j)
        j.close()
        return redacted(j.finish(newline: true))
    }

    /// The summary's members without the braces: the JSON document adds its attempts to them.
    func summaryFields(_ s: InputSummary, into j: inout JSONLine) {
        SchemaV2.inputSummary(s, digest: digest, into: &j)
    }

    func redacted(_ bytes: [UInt8]) -> [UInt8] {
        guard let redactor = options.redactor else { return bytes }
        return Array(redactor.apply(String(decoding: bytes, as: UTF8.self)).utf8)
    }
}

/// The report that writes `NDJSONLines`: one attempt per line as each is ready, then one
/// summary line per input (`--format ndjson`).
public final class NDJSONReport: AnalysisSink {
    let out: ReportOutput
    let lines: NDJSONLines
    /// A reader on a pipe or terminal (a log shipper, `jq -c`) gets each line as it is made;
    /// a file gets whole buffers.
    private let flushEachLine: Bool

    public init(output: ReportOutput, options: ReportOptions) {
        out = output
        lines = NDJSONLines(options: options)
        flushEachLine = output.isStream
    }

    public func begin(_ input: InputInfo) { lines.begin(input) }

    public func attempt(_ a: Attempt) {
        guard let line = lines.attempt(a) else { return }
        write(line)
    }

    public func end(_ s: InputSummary) { write(lines.summary(s)) }

    private func write(_ line: [UInt8]) {
        out.write(bytes: line)
        if flushEachLine { out.flush() }
    }
}

extension NDJSONReport: PrerenderingSink {
    public var prerender: (@Sendable (Attempt) -> [UInt8])? {
        guard lines.options.redactor == nil else { return nil }
        return { @Sendable a in NDJSONLines.line(a) }
    }

    public func attempt(_ a: Attempt, prerendered: [UInt8]) {
        guard lines.take(a) else { return }
        write(prerendered)
    }
}

/// Schema 2's objects, written member by member.
enum SchemaV2 {
    static let version = 2

    /// The Windows client code as schema 2 writes it: the number the client shows, or null for
    /// a client-side error without a fixed number, whose kind says which.
    static func clientCode(_ r: ClientReport) -> (code: String?, extended: String?, kind: String) {
        switch r.code {
        case .reason: (r.code.codeText, r.code.extendedText, "disconnect-reason")
        case .kind(let k): (nil, nil, k.rawValue)
        case .errorInfo: (nil, r.code.extendedText, "server-error-info")
        }
    }

    static func outcome(_ l: Label) -> String {
        switch l {
        case .success: "success"
        case .incomplete: "unknown"
        default: "failure"
        }
    }

    static func attempt(_ a: Attempt, into j: inout JSONLine) {
        let t = a.facts.tcp
        let v = a.verdict
        j.open()
        j.string("type", "attempt")
        j.int("schema_version", version)
        j.string("input", t.input)
        j.int("attempt", t.id + 1)

        j.object("event")
        j.time("start", t.first.time)
        j.time("end", t.last.time)
        let ns = t.last.time.nanoseconds - t.first.time.nanoseconds
        j.key("duration")
        if ns >= 0 { j.int(ns) } else { j.null() }
        j.string("outcome", outcome(v.label))
        j.close()

        endpoint("source", t.client, t.clientSide, into: &j)
        endpoint("destination", t.server, t.serverSide, into: &j)
        j.object("network")
        j.string("transport", "tcp")
        j.string("type", t.client.address.isIPv6 ? "ipv6" : "ipv4")
        j.close()

        j.object("verdict")
        j.string("label", v.label.rawValue)
        j.string("cause", v.cause.rawValue)
        j.string("stage", v.stage.rawValue)
        j.string("ended_by", v.endedBy.rawValue)
        j.string("confidence", v.confidence.level.rawValue)
        j.string("confidence_reason", v.confidence.reason)
        j.string("summary", v.summary)
        j.strings("details", v.details)
        j.close()

        j.key("client_code")
        if let r = v.clientReport {
            let c = clientCode(r)
            j.open()
            j.string("code", orNull: c.code)
            j.string("extended", orNull: c.extended)
            j.string("kind", c.kind)
            j.string("display", r.display)
            j.string("meaning", r.meaning)
            j.close()
        } else {
            j.null()
        }
        j.strings("remediation", v.remediation)
        j.array("evidence")
        for e in v.evidence {
            j.element()
            j.open()
            j.key("frame")
            if let f = e.frame { j.int(f) } else { j.null() }
            j.key("time")
            if let time = e.time { j.time(time) } else { j.null() }
            j.string("description", e.what)
            j.close()
        }
        j.closeArray()
        if let h = HiddenFacts.of(a.facts, v) {
            j.object("hidden")
            j.strings("facts", h.facts.map(\.rawValue))
            j.strings("sources", h.sources.map(\.rawValue))
            j.close()
        }

        tcp(t, into: &j)
        rdp(a.facts.rdp, into: &j)
        if let tls = a.facts.rdp.tls { self.tls(tls, into: &j) }
        if let c = a.facts.rdp.credssp, c.phase != .none || c.errorCode != nil { credssp(c, into: &j) }
        if let p = a.facts.rdp.proxy { proxy(p, into: &j) }
        if !a.facts.dns.isEmpty {
            j.array("dns")
            for d in a.facts.dns {
                j.element()
                j.open()
                j.string("name", d.name)
                j.string("address", d.address.description)
                j.int("ttl", d.ttl)
                j.strings("aliases", d.aliases)
                j.string("resolver", d.resolver.description)
                frame("response", d.response, into: &j)
                j.close()
            }
            j.closeArray()
        }
        j.close()
    }

    static func endpoint(_ k: StaticString, _ e: Endpoint, _ side: SideFacts, into j: inout JSONLine) {
        j.object(k)
        j.string("ip", e.address.description)
        j.int("port", e.port)
        j.int("packets", side.packets)
        j.int("bytes", side.frameBytes)
        j.close()
    }

    /// `"frame": N, "time": "..."` in the object being written.
    static func frameMembers(_ f: FrameRef, into j: inout JSONLine) {
        j.int("frame", f.frame)
        j.time("time", f.time)
    }

    /// `{"frame": N, "time": "..."}` under `k`.
    static func frame(_ k: StaticString, _ f: FrameRef, into j: inout JSONLine) {
        j.object(k)
        frameMembers(f, into: &j)
        j.close()
    }

    static func frame(_ k: StaticString, ifPresent f: FrameRef?, into j: inout JSONLine) {
        if let f { frame(k, f, into: &j) }
    }

    static func tcp(_ t: TCPFacts, into j: inout JSONLine) {
        j.object("tcp")
        j.string("outcome", t.outcome.rawValue)
        j.bool("established", t.established)
        j.string("closed_by", orNull: t.endedBy?.rawValue)
        frame("first", t.first, into: &j)
        frame("last", t.last, into: &j)
        frame("decisive", ifPresent: t.decisive, into: &j)
        let h = t.handshake
        j.object("handshake")
        j.int("syn_count", h.synCount)
        frame("syn_ack", ifPresent: h.synAck, into: &j)
        if let d = h.synAckDelay { j.double("syn_ack_delay", d) }
        j.close()
        side("client", t.clientSide, into: &j)
        side("server", t.serverSide, into: &j)
        j.array("resets")
        for r in t.resets {
            j.element()
            j.open()
            frameMembers(r.at, into: &j)
            j.string("from", r.from.rawValue)
            j.int("ttl", r.ttl)
            j.bool("answers_syn", r.answersSYN)
            j.bool("before_established", r.beforeEstablished)
            j.close()
        }
        j.closeArray()
        j.array("icmp")
        for i in t.icmp {
            j.element()
            j.open()
            frameMembers(i.at, into: &j)
            j.string("version", i.isV6 ? "icmpv6" : "icmp")
            j.int("type", i.type)
            j.int("code", i.code)
            j.string("from", i.reporter.description)
            j.string("about", i.about.rawValue)
            j.bool("quotes_syn", i.quotesSYN)
            j.int("mtu", ifPresent: i.mtu)
            j.close()
        }
        j.closeArray()
        if t.idle { j.bool("idle", true) }
        if t.evicted == true { j.bool("evicted", true) }
        j.close()
    }

    static func side(_ k: StaticString, _ s: SideFacts, into j: inout JSONLine) {
        j.object(k)
        j.int("payload_bytes", s.payloadBytes)
        j.int("retransmissions", s.retransmissions)
        j.int("duplicates", s.duplicates)
        j.int("zero_windows", s.zeroWindows)
        j.int("gap_bytes", s.gapBytes)
        j.int("mss", ifPresent: s.mss)
        j.int("ttl", ifPresent: s.ttlMin)
        j.close()
    }

    static func protocols(_ p: SecurityProtocols) -> [String] {
        p.names.split(separator: "|").map(String.init)
    }

    static func proxy(_ p: ProxyFacts, into j: inout JSONLine) {
        j.object("proxy")
        j.string("kind", p.kind.rawValue)
        if let r = p.request, let at = p.requestAt {
            j.object("request")
            frameMembers(at, into: &j)
            j.string("host", r.host)
            j.int("port", r.port)
            j.close()
        }
        if let r = p.reply, let at = p.replyAt {
            j.object("reply")
            frameMembers(at, into: &j)
            j.string("code", r.codeText)
            j.string("name", r.name)
            j.bool("granted", r.granted)
            j.close()
        }
        j.close()
    }

    static func alerts(_ list: [TLSAlertFacts], into j: inout JSONLine) {
        j.array("alerts")
        for a in list {
            j.element()
            j.open()
            frameMembers(a.at, into: &j)
            j.string("from", a.from.rawValue)
            j.bool("encrypted", a.encrypted)
            if let l = a.level { j.string("level", l == 2 ? "fatal" : l == 1 ? "warning" : "\(l)") }
            if let d = a.description {
                j.int("code", d)
                j.string("name", ProtocolTables.tlsAlertDescriptions[d] ?? "alert-\(d)")
            }
            j.close()
        }
        j.closeArray()
    }

    /// A protocol code read inside TLS: `{"code": "0xC000006D", "name": ..., "meaning": ...}`.
    static func code(_ k: StaticString, _ c: UInt32, digits: Int = 8, name: String?, meaning: String? = nil, into j: inout JSONLine) {
        j.object(k)
        j.string("code", hex(c, digits))
        j.string("name", ifPresent: name)
        j.string("meaning", ifPresent: meaning)
        j.close()
    }

    /// What a key log made readable inside TLS (README: Key logs): names and codes with their
    /// meaning, never responses or keys. Written member by member, like the rest of schema 2.
    static func decrypted(_ d: DecryptedFacts, into j: inout JSONLine) {
        j.object("decrypted")
        j.string("status", d.status.rawValue)
        j.string("detail", ifPresent: d.detail)
        if let at = d.failedAt {
            j.object("failed_record")
            frameMembers(at, into: &j)
            if let from = d.failedFrom { j.string("from", from.rawValue) }
            j.close()
        }
        j.object("records")
        j.int("client", d.clientRecords)
        j.int("server", d.serverRecords)
        j.close()
        if d.recordLimitReached { j.bool("record_limit_reached", true) }
        if let a = d.account, let user = a.user {
            j.object("account")
            j.string("user", user)
            j.string("domain", ifPresent: a.domain)
            j.string("workstation", ifPresent: a.workstation)
            j.close()
        }
        j.array("credssp")
        for t in d.tsRequests {
            j.element()
            j.open()
            frameMembers(t.at, into: &j)
            j.string("from", t.from.rawValue)
            j.int("version", t.version)
            j.int("nego_tokens", t.negoTokens)
            if let m = t.mechanism { j.string("mechanism", m.rawValue) }
            if let n = t.ntlm { ntlm(n, into: &j) }
            if let sp = t.spnego {
                j.object("spnego")
                j.string("kind", sp.kind.rawValue)
                if let m = sp.mechTypes { j.strings("mech_types", m) }
                j.string("neg_state", ifPresent: sp.negState)
                j.string("supported_mech", ifPresent: sp.supportedMech)
                j.close()
            }
            if let k = t.kerberos { kerberos(k, into: &j) }
            j.bool("auth_info", t.authInfo)
            j.bool("pub_key_auth", t.pubKeyAuth)
            j.bool("client_nonce", t.clientNonce)
            if let c = t.errorCode {
                code("error_code", c, name: Knowledge.ntstatus[c]?.name, meaning: Knowledge.ntstatusMeaning[c]?.meaning, into: &j)
            }
            j.close()
        }
        j.closeArray()
        if let e = d.earlyUserAuthorization {
            j.object("early_user_authorization")
            frameMembers(e.at, into: &j)
            code("result", e.result, name: e.result == 0 ? "SUCCESS" : e.result == 5 ? "ACCESS_DENIED" : nil, into: &j)
            j.close()
        }
        frame("mcs_connect_response", ifPresent: d.mcsConnectResponse, into: &j)
        if let l = d.license {
            j.object("license_error")
            frameMembers(l.at, into: &j)
            code("error_code", l.errorCode, digits: 1, name: Knowledge.licenseError[l.errorCode], into: &j)
            j.int("state_transition", l.stateTransition)
            j.close()
        }
        if let e = d.errorInfo {
            j.object("set_error_info")
            frameMembers(e.at, into: &j)
            code("error_info", e.code, digits: 1, name: Knowledge.errorInfo[e.code]?.name, meaning: Knowledge.errorInfo[e.code]?.meaning, into: &j)
            j.close()
        }
        if let l = d.logon {
            j.object("logon")
            frameMembers(l.at, into: &j)
            j.int("info_type", l.infoType)
            j.string("name", ifPresent: Knowledge.logonInfoType[l.infoType])
            j.close()
        }
        if let u = d.disconnectProviderUltimatum {
            j.object("disconnect_provider_ultimatum")
            frameMembers(u.at, into: &j)
            j.string("from", u.from.rawValue)
            j.int("reason", ifPresent: u.reason)
            j.close()
        }
        alerts(d.alerts, into: &j)
        j.close()
    }

    static func kerberos(_ k: KerberosFacts, into j: inout JSONLine) {
        j.object("kerberos")
        j.string("message", k.message.rawValue)
        j.string("realm", ifPresent: k.realm)
        j.string("service_principal", ifPresent: k.servicePrincipal)
        j.int("service_name_type", ifPresent: k.serviceNameType)
        if let c = k.errorCode {
            j.object("error_code")
            j.int("code", c)
            j.string("name", ifPresent: Knowledge.kerberosError[c]?.name)
            j.string("meaning", ifPresent: Knowledge.kerberosError[c]?.meaning)
            j.close()
        }
        j.string("client_realm", ifPresent: k.clientRealm)
        j.string("client_name", ifPresent: k.clientName)
        j.close()
    }

    static func ntlm(_ n: NTLMMessage, into j: inout JSONLine) {
        j.object("ntlm")
        j.string("message", n.messageType == 1 ? "NEGOTIATE" : n.messageType == 2 ? "CHALLENGE" : n.messageType == 3 ? "AUTHENTICATE" : "\(n.messageType)")
        j.string("domain", ifPresent: n.domain)
        j.string("user", ifPresent: n.user)
        j.string("workstation", ifPresent: n.workstation)
        j.string("target_name", ifPresent: n.targetName)
        j.string("netbios_computer", ifPresent: n.netbiosComputer)
        j.string("netbios_domain", ifPresent: n.netbiosDomain)
        j.string("dns_computer", ifPresent: n.dnsComputer)
        j.string("dns_domain", ifPresent: n.dnsDomain)
        j.close()
    }

    static func rdp(_ r: RDPFacts, into j: inout JSONLine) {
        j.object("rdp")
        if let d = r.decrypted { decrypted(d, into: &j) }
        if let k = r.firstServerPayload { j.string("server_answer", k.rawValue) }
        j.string("server_banner", ifPresent: r.serverBanner)
        if let cr = r.connectionRequest {
            j.object("connection_request")
            frameMembers(cr.at, into: &j)
            j.string("cookie", ifPresent: cr.cookie)
            j.string("routing_token", ifPresent: cr.routingToken)
            if let p = cr.requestedProtocols { j.strings("requested_protocols", protocols(p)) }
            j.close()
        }
        if let cc = r.connectionConfirm {
            j.object("connection_confirm")
            frameMembers(cc.at, into: &j)
            if let p = cc.selectedProtocol { j.string("selected_protocol", protocols(p).joined(separator: "|")) }
            if let f = cc.failure {
                j.object("negotiation_failure")
                j.int("code", f.rawValue)
                j.string("name", f.name)
                j.close()
            }
            j.close()
        }
        if let m = r.mcsConnectInitial {
            j.object("client_info")
            j.int("frame", m.at.frame)
            j.string("name", ifPresent: m.clientName)
            j.int("build", ifPresent: m.clientBuild)
            j.close()
        }
        if let m = r.mcsConnectResponse {
            // Standard RDP security: the server's choice and certificate travel in clear text.
            j.object("server_security")
            j.int("frame", m.at.frame)
            if let v = m.encryptionMethod { j.string("encryption_method", ProtocolTables.encryptionMethods[v] ?? hex(v, 8)) }
            if let v = m.encryptionLevel { j.string("encryption_level", ProtocolTables.encryptionLevels[v] ?? hex(v, 8)) }
            j.string("certificate_kind", ifPresent: m.certificateKind)
            if let c = m.certificates.first { certificate(c, into: &j) }
            j.close()
        }
        if let at = r.disconnectRequest {
            j.object("disconnect_request")
            j.int("frame", at.frame)
            j.string("from", ifPresent: r.disconnectRequestFrom?.rawValue)
            j.close()
        }
        j.close()
    }

    static func tls(_ t: TLSFacts, into j: inout JSONLine) {
        j.object("tls")
        let version = t.serverHello.map { $0.version }
        if let version { j.string("version", ProtocolTables.tlsVersions[version] ?? hex(UInt32(version), 4)) }
        if let ch = t.clientHello {
            frame("client_hello", ch.at, into: &j)
            j.string("server_name", ifPresent: ch.serverName)
        }
        if let sh = t.serverHello {
            frame("server_hello", sh.at, into: &j)
            j.string("cipher_suite", ProtocolTables.cipherSuites[sh.cipherSuite]?.name ?? hex(UInt32(sh.cipherSuite), 4))
        }
        j.bool("handshake_complete", t.handshakeComplete)
        alerts(t.alerts, into: &j)
        if let c = t.certificates.first { certificate(c, into: &j) }
        j.close()
    }

    /// The server's (leaf) certificate.
    static func certificate(_ c: CertificateFacts, into j: inout JSONLine) {
        j.object("certificate")
        j.string("subject", c.subject)
        j.string("issuer", c.issuer)
        j.string("serial_number", c.serialNumber)
        j.time("not_before", c.notBefore)
        j.time("not_after", c.notAfter)
        j.bool("self_signed", c.selfSigned)
        j.string("sha256", c.sha256)
        j.strings("subject_alternative_names", c.subjectAlternativeNames)
        j.string("inspection_product", ifPresent: c.inspectionProduct)
        j.close()
    }

    static func credssp(_ c: CredSSPFacts, into j: inout JSONLine) {
        j.object("credssp")
        j.string("phase", c.phase.rawValue)
        j.int("records", c.records.count)
        if let e = c.errorCode {
            j.string("error_code", hex(e, 8))
            j.string("error_name", ifPresent: Knowledge.ntstatus[e]?.name)
        }
        j.int("client_version", ifPresent: c.clientVersion)
        j.int("server_version", ifPresent: c.serverVersion)
        j.close()
    }

    /// `0x0304`-style, upper-case digits, at least `digits` of them.
    static func hex(_ v: UInt32, _ digits: Int) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, digits - s.count)) + s
    }

    /// The members that name an input (the JSON document writes them before its attempts).
    static func inputHead(_ input: String, linkType: String?, into j: inout JSONLine) {
        j.string("type", "input")
        j.int("schema_version", version)
        j.string("input", input)
        j.string("link_type", orNull: linkType)
    }

    /// The rest of the input's summary members (no braces).
    static func inputSummary(_ s: InputSummary, digest: InputDigest, into j: inout JSONLine) {
        j.int("frames", s.stats.frames)
        j.object("counts")
        j.int("attempts", s.attempts)
        j.int("failures", s.failures)
        j.object("by_label")
        for (label, n) in digest.labelCounts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            j.key(string: label.rawValue)
            j.int(n)
        }
        j.close()
        j.int("not_shown", digest.notShown)
        j.int("filtered_out", digest.filteredOut)
        j.close()

        j.array("stories")
        for story in digest.finishStories() {
            j.element()
            j.open()
            j.string("client", story.client.description)
            j.object("server")
            j.string("ip", story.server.address.description)
            j.int("port", story.server.port)
            j.close()
            j.array("attempts")
            for id in story.attempts {
                j.element()
                j.int(id + 1)
            }
            j.closeArray()
            j.int("attempt_count", story.attemptCount)
            j.string("outcome", story.outcome.rawValue)
            j.string("cause", story.cause.rawValue)
            j.string("narrative", story.narrative)
            j.close()
        }
        j.closeArray()
        j.int("stories_not_shown", digest.storiesOmitted)

        j.array("repeated_verdicts")
        for r in digest.repeatedVerdicts().prefix(InputDigest.maxRepeatLines) {
            j.element()
            j.open()
            j.string("server", orNull: r.server)
            j.string("label", r.label.rawValue)
            j.string("cause", r.cause.rawValue)
            j.string("stage", r.stage.rawValue)
            j.string("ended_by", r.endedBy.rawValue)
            j.int("not_shown", r.notShown)
            j.int("first_not_shown", r.firstNotShown)
            j.int("last_not_shown", r.lastNotShown)
            j.int("clients", r.clients)
            j.bool("more_clients", r.moreClients)
            j.string("description", r.sentence)
            j.close()
        }
        j.closeArray()

        j.key("reported")
        if let m = digest.reportedMatch() {
            j.open()
            j.string("code", m.code)
            j.array("attempts")
            for n in m.attempts {
                j.element()
                j.int(n)
            }
            j.closeArray()
            j.string("explanation", m.explanation)
            j.close()
        } else {
            j.null()
        }
        problem("error", s.error, into: &j)
        problem("warning", s.warning, into: &j)

        let st = s.stats
        j.object("stats")
        j.int("cut_frames", st.cutFrames)
        j.int("not_ip", st.notIP)
        j.int("undecodable", st.undecodable)
        j.int("ip_fragments", st.ipFragments)
        j.int("tcp_frames", st.tcpFrames)
        j.int("udp_frames", st.udpFrames)
        j.int("icmp_frames", st.icmpFrames)
        j.int("sessions", st.sessions)
        j.int("sessions_evicted", st.sessionsEvicted)
        j.int("candidates_evicted", st.candidatesEvicted)
        j.int("dns_responses", st.dnsResponses)
        j.int("filtered_out", s.filteredOut)
        j.int("peak_reassembly_bytes", s.peakReassemblyBytes)
        j.close()
    }

    static func problem(_ k: StaticString, _ e: CaptureError?, into j: inout JSONLine) {
        j.key(k)
        guard let e else { return j.null() }
        j.open()
        j.string("kind", e.kind.rawValue)
        j.string("detail", e.detail)
        j.int("byte_offset", ifPresent: e.byteOffset)
        j.string("message", e.description)
        j.close()
    }
}
