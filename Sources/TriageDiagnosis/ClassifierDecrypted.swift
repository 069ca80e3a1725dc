import TriageDecoding
import TriageFlows
import TriageProtocols

/// What a key log adds to a verdict: the account tried, the server's CredSSP errorCode
/// explained, the Early User Authorization Result, licensing and Set Error Info codes, and
/// the logon itself. Only attempts analysed with key material have decrypted facts; the
/// others are untouched.
extension Classifier {
    static func insideTLS(_ v: inout Verdict, _ r: Reading) {
        guard let d = r.facts.rdp.decrypted else { return }
        switch d.status {
        case .noSecrets:
            v.details.append(
                "Key log: no secrets for this connection (its ClientHello random is not in the key log), so nothing inside TLS was read.")
            return
        case .unsupported:
            v.details.append("Key log: not decrypted, \(d.detail ?? "unsupported").")
            return
        case .wrongKeys:
            let side = d.failedFrom?.rawValue ?? "a"
            v.details.append(
                "Wrong key log for this connection: the \(side)'s record\(d.failedAt.map { " in frame \($0.frame)" } ?? "") failed authentication, so reading inside TLS stopped there.")
            if let at = d.failedAt { v.evidence.append(Evidence(at, "TLS record that failed authentication with the key log's secrets")) }
        case .decrypted:
            break
        }
        if let detail = d.detail, d.status == .decrypted { v.details.append("Key log: \(detail).") }
        credsspInside(&v, d, r)
        if !d.tsRequests.isEmpty {
            // The key log read what the shape could only guess at.
            v.details.removeAll { $0 == Knowledge.lookAlikeWithoutKeys }
        }
        if let e = d.earlyUserAuthorization {
            if e.result == 0 {
                v.evidence.append(Evidence(e.at, "Early User Authorization Result: SUCCESS (decrypted)"))
            } else {
                let denied = e.result == 5
                v.evidence.append(Evidence(e.at, "Early User Authorization Result: \(denied ? "ACCESS_DENIED" : Knowledge.hex(e.result)) (decrypted)"))
                v.details.append(
                    "The server's Early User Authorization Result is \(denied ? "ACCESS_DENIED: the account authenticated but may not log on through Remote Desktop" : Knowledge.hex(e.result)).")
                // The stated-refusal rule's own steps (logon-not-granted) already say so.
                if v.rule != "stated-refusal" {
                    v.remediation.insert(
                        "Add the user to \"Remote Desktop Users\" on the server, or grant \"Allow log on through Remote Desktop Services\" (and remove any \"Deny log on through Remote Desktop Services\").",
                        at: 0)
                }
            }
        }
        if let m = d.mcsConnectResponse { v.evidence.append(Evidence(m, "MCS Connect Response from the server (decrypted)")) }
        if let l = d.license {
            let name = Knowledge.licenseError[l.errorCode] ?? Knowledge.hex(l.errorCode)
            if l.errorCode == 0x07 {
                v.evidence.append(Evidence(l.at, "licensing: STATUS_VALID_CLIENT, no license needed (decrypted)"))
            } else {
                v.evidence.append(Evidence(l.at, "licensing error \(name) from the server (decrypted)"))
                v.details.append("The server's licensing ended with \(name): check the RD Licensing configuration (license server, CALs, grace period).")
            }
        }
        if let e = d.errorInfo {
            let text = Knowledge.describeErrorInfo(e.code)
            v.evidence.append(Evidence(e.at, "Set Error Info PDU from the server: \(text) (decrypted)"))
            v.details.append("The server stated its reason for ending the connection (Set Error Info PDU, frame \(e.at.frame)): \(text).")
            if v.isFailure && !Knowledge.errorInfoNormalEnd.contains(e.code) {
                // The client shows the server's reason, not the 0x904/0x7 guess (FACTS.md 1).
                v.clientReport = ClientReport(
                    .errorInfo(e.code),
                    meaning: "the server's own reason (Set Error Info), shown as the extended disconnect reason: \(Knowledge.errorInfo[e.code]?.meaning ?? "see MS-RDPBCGR 2.2.5.1.1")")
            }
            if e.code == 0x9 {
                v.remediation.insert(
                    "Grant the user \"Allow log on through Remote Desktop Services\" or add them to \"Remote Desktop Users\" on the server.", at: 0)
            } else if (0x100...0x10A).contains(e.code) {
                v.remediation.insert("Check the RD Licensing configuration: license server reachable, CALs installed, licensing mode set.", at: 0)
            }
        }
        if let l = d.logon {
            let type = Knowledge.logonInfoType[l.infoType] ?? Knowledge.hex(l.infoType)
            v.evidence.append(Evidence(l.at, "Save Session Info (\(type)) from the server: the user logged on (decrypted)"))
            v.details.append("The user really logged on: the server sent its logon notification (Save Session Info, frame \(l.at.frame)).")
            if v.label == .success {
                v.confidence = Confidence(.high, "the server's logon notification, read with the key log")
            }
        }
        if let u = d.disconnectProviderUltimatum {
            v.evidence.append(Evidence(u.at, "MCS Disconnect Provider Ultimatum from the \(u.from.rawValue)\(u.reason.map { ", reason \(mcsReason($0))" } ?? "") (decrypted)"))
        }
        for a in d.alerts {
            let name = a.description.flatMap { ProtocolTables.tlsAlertDescriptions[$0] } ?? "alert"
            let level = a.level == 2 ? "fatal" : a.level == 1 ? "warning" : "level \(a.level ?? 0)"
            v.evidence.append(Evidence(a.at, "TLS alert from the \(a.from.rawValue): \(level) \(name) (decrypted)"))
        }
        if d.recordLimitReached {
            v.details.append("Key log: reading inside TLS stopped after \(RDPConnectionParser.maxDecryptedRecordsPerDirection) records of a direction.")
        }
    }

    /// The server's own stated refusal after the security handshake, read with the key log:
    /// an Early User Authorization Result other than SUCCESS, a licensing error other than
    /// STATUS_VALID_CLIENT, or a Set Error Info that is not a normal end, before the user
    /// logged on. The traffic's shape alone can pass for a session (MS-RDPBCGR 1.3.1.1: the
    /// refusal comes after MCS and the Client Info PDU), so this rule comes before `success`.
    static func statedRefusal(_ r: Reading) -> Verdict? {
        guard let d = r.facts.rdp.decrypted, d.status == .decrypted, d.logon == nil else { return nil }
        let eua = d.earlyUserAuthorization.flatMap { $0.result != 0 ? $0 : nil }
        let license = d.license.flatMap { $0.errorCode != 0x07 ? $0 : nil }
        let info = d.errorInfo.flatMap { Knowledge.errorInfoNormalEnd.contains($0.code) ? nil : $0 }
        guard eua != nil || license != nil || info != nil else { return nil }
        var said: [String] = []
        var evidence: [Evidence] = []
        var client = closedDuringSetup(r)
        var stage = Stage.mcsConnect
        if let e = eua {
            said.append("its Early User Authorization Result \(e.result == 5 ? "ACCESS_DENIED" : Knowledge.hex(e.result)) (frame \(e.at.frame))")
            stage = .credssp
        }
        if let l = license {
            let transition = l.stateTransition == 1 ? ", ST_TOTAL_ABORT" : ""
            said.append("a licensing error \(Knowledge.licenseError[l.errorCode] ?? Knowledge.hex(l.errorCode))\(transition) (frame \(l.at.frame))")
            client = Knowledge.licensingFailed
        }
        if let i = info {
            said.append("a Set Error Info PDU \(Knowledge.errorInfo[i.code]?.name ?? Knowledge.hex(i.code)) (frame \(i.at.frame))")
        }
        let end = d.disconnectProviderUltimatum.map { $0.from == .server ? ", then MCS Disconnect Provider Ultimatum" : "" } ?? ""
        let ending = r.endingFrame.map { [Evidence($0, Wording.ended(r.tcp.outcome, by: r.ender))] } ?? []
        evidence += ending
        return make(
            r, .earlyDisconnect, .hostNotAccepting,
            "\(r.serverName) refused the connection and said why: \(said.joined(separator: " and "))\(end), read with the key log.",
            Confidence(.high, "the server's own refusal, read with the key log"), stage: stage, ender: .server,
            client: client, remedy: eua != nil && license == nil && info == nil ? .logonNotGranted : .serverRefused,
            evidence: evidence)
    }

    /// The server's TSRequest errorCode, read with the key log, answering any of the client's
    /// CredSSP tokens (MS-CSSP 2.2.1: sent when the SPNEGO exchange fails on the server). A
    /// Kerberos refusal comes after the client's first token (the AP-REQ), so `credsspAlert`,
    /// which waits for an NTLM AUTHENTICATE, does not see it; the client's close that follows
    /// the errorCode is its reaction to the refusal, not its own decision.
    static func credsspErrorCode(_ r: Reading) -> Verdict? {
        guard r.usesCredSSP, r.tls?.handshakeComplete == true, !r.reachedSession, let d = r.facts.rdp.decrypted,
            let reply = d.tsRequests.first(where: { $0.from == .server && $0.errorCode != nil }), let code = reply.errorCode,
            r.ender == .client || r.ender == .server, let end = r.endingFrame, end.frame > reply.at.frame
        else { return nil }
        let status = Knowledge.ntstatus[code]?.name ?? "NTSTATUS 0x\(String(code, radix: 16, uppercase: true))"
        let asked = d.tsRequests.last { $0.from == .client && $0.at.frame < reply.at.frame }
        let token: String
        switch (asked?.kerberos?.message, asked?.ntlm?.messageType) {
        case (.apReq?, _): token = "Kerberos AP-REQ"
        case (_, 1?): token = "NTLM NEGOTIATE"
        case (_, 3?): token = "NTLM AUTHENTICATE"
        default: token = "CredSSP token"
        }
        let how = r.endedByRST ? "reset" : "closed"
        let close = r.ender == .server ? " and \(how) the connection" : "; the client then \(how) the connection"
        var details: [String] = []
        if r.ender == .client {
            details.append(
                "The client's \(r.endedByRST ? "RST" : "FIN") (frame \(end.frame)) came after the server's errorCode (frame \(reply.at.frame)): the client was closing because the server refused it.")
        }
        return make(
            r, .credsspFailure, .tlsCredSSP,
            "\(r.serverName) refused the authentication: it answered the client's \(token)\(asked.map { " (frame \($0.at.frame))" } ?? "") with a TSRequest errorCode \(status) (frame \(reply.at.frame), read with the key log)\(close).",
            Confidence(.high, "the server's TSRequest errorCode, read with the key log"), stage: .credssp, ender: .server,
            client: Knowledge.ntstatus[code].map(Knowledge.logonFailure) ?? Knowledge.logonFailure, remedy: .credsspFailure,
            details: details, evidence: [Evidence(end, "the \(r.ender == .server ? "server" : "client")'s \(r.endedByRST ? "RST" : "FIN"), after the server's errorCode")])
    }

    static func mcsReason(_ r: UInt8) -> String {
        switch r {
        case 0: "rn-domain-disconnected"
        case 1: "rn-provider-initiated"
        case 2: "rn-token-purged"
        case 3: "rn-user-requested"
        case 4: "rn-channel-purged"
        default: "\(r)"
        }
    }

    /// CredSSP as read: versions, the account tried, the server's names and its errorCode.
    static func credsspInside(_ v: inout Verdict, _ d: DecryptedFacts, _ r: Reading) {
        guard !d.tsRequests.isEmpty else { return }
        let clientVersion = d.tsRequests.first { $0.from == .client }?.version
        let serverVersion = d.tsRequests.first { $0.from == .server }?.version
        var line = "CredSSP read with the key log: TSRequest version \(clientVersion.map(String.init) ?? "?") from the client, \(serverVersion.map(String.init) ?? "?") from the server"
        if let t = d.tsRequests.first(where: { $0.mechanism != nil }), let m = t.mechanism {
            line += ", \(m.rawValue.uppercased())\(m == .ntlm && t.spnego != nil ? " inside SPNEGO" : "")"
        }
        v.details.append(line + ".")
        if let c = clientVersion, let s = serverVersion, (c >= 5) != (s >= 5) {
            let old = c < 5 ? "client" : "server"
            v.details.append(
                "The \(old) speaks CredSSP \(min(c, s)), before the CVE-2018-0886 fix (version 5): under \"Encryption Oracle Remediation\" (AllowEncryptionOracle 0 or 1) the updated side refuses it. Install the CredSSP update on the \(old).")
        }
        if let s = d.serverNames {
            let names = [s.netbiosComputer.map { "\($0) (NetBIOS)" }, s.dnsComputer.map { "\($0) (DNS)" }, s.netbiosDomain.map { "domain \($0)" }]
                .compactMap { $0 }
            if !names.isEmpty { v.details.append("The server named itself \(names.joined(separator: ", ")) in its NTLM CHALLENGE.") }
        }
        if let auth = d.tsRequests.first(where: { $0.ntlm?.messageType == 3 }), let a = auth.ntlm, let who = a.qualifiedUser {
            let workstation = a.workstation.map { " from workstation \($0)" } ?? ""
            v.details.append("The account tried: \(who)\(workstation) (NTLM AUTHENTICATE, frame \(auth.at.frame)).")
            v.evidence.append(Evidence(auth.at, "NTLM AUTHENTICATE for \(who) (decrypted)"))
        }
        if let reply = d.tsRequests.first(where: { $0.from == .server && $0.errorCode != nil }), let code = reply.errorCode {
            v.evidence.append(Evidence(reply.at, "TSRequest errorCode \(Knowledge.describeStatus(code)) from the server (decrypted)"))
            if let remedy = Knowledge.ntstatusMeaning[code]?.remedy { v.remediation.insert(remedy, at: 0) }
        } else if v.label == .credsspFailure, d.account != nil {
            if !d.tsRequests.contains(where: { $0.from == .server && $0.pubKeyAuth }) {
                v.confidence = Confidence(
                    .high, "read with the key log: the client's NTLM AUTHENTICATE, then the server ended the connection without accepting it (no pubKeyAuth)")
            }
            v.details.append(
                "The server sent no errorCode before closing (FreeRDP's and xrdp's servers, and Windows up to Server 2012, just close): the reason is in the server's log (Windows: Security event 4625 with its Status and Sub Status).")
        }
        if let pk = d.tsRequests.first(where: { $0.from == .server && $0.pubKeyAuth }) {
            v.evidence.append(Evidence(pk.at, "the server's pubKeyAuth: it accepted the credentials (decrypted)"))
        }
        kerberosInside(&v, d, r)
    }

    /// Kerberos inside SPNEGO: the realm and service principal the client asked a ticket for,
    /// the server's answer, and whether the principal names this server at all.
    static func kerberosInside(_ v: inout Verdict, _ d: DecryptedFacts, _ r: Reading) {
        let request = d.kerberosRequestMessage
        if let req = request, let k = req.kerberos {
            let spn = k.servicePrincipal ?? "?"
            let realm = k.realm.map { " in realm \($0)" } ?? ""
            v.evidence.append(Evidence(req.at, "Kerberos AP-REQ for \(spn)\(realm) (decrypted)"))
            v.details.append("The client presented a Kerberos ticket for \(spn)\(realm) (AP-REQ, frame \(req.at.frame)).")
        }
        // The server's SPNEGO answer to it.
        if let answer = d.tsRequests.first(where: { $0.from == .server && $0.spnego?.negState != nil && $0.at.frame >= (request?.at.frame ?? 0) }),
            let state = answer.spnego?.negState, request != nil || answer.kerberos != nil
        {
            v.evidence.append(Evidence(answer.at, "SPNEGO negState \(state) from the server (decrypted)"))
            if state == "reject" { v.details.append("The server rejected the Kerberos authentication (SPNEGO negState reject, frame \(answer.at.frame)).") }
        }
        if let (at, e) = d.kerberosError, let code = e.errorCode {
            let text = Knowledge.describeKerberosError(code)
            v.evidence.append(Evidence(at, "Kerberos KRB-ERROR \(text) from the server (decrypted)"))
            v.details.append("The server answered the Kerberos ticket with KRB-ERROR \(text) (frame \(at.frame)).")
            if let remedy = Knowledge.kerberosError[code]?.remedy, v.isFailure { v.remediation.insert(remedy, at: 0) }
        }
        guard let k = request?.kerberos, let host = k.serviceHost else { return }
        // A principal naming an address: only the address the client reached can be its own.
        if let address = IPAddress(host) {
            guard address != r.tcp.server.address else { return }
            v.details.append(
                "The ticket names \(k.servicePrincipal ?? host), an address other than the server's \(r.tcp.server.address): the client was sent elsewhere than it asked (a port forward or NAT in between).")
            return
        }
        let own = serverOwnNames(d, r)
        // DNS answers that led to this address give the client's names for the server, not the
        // server's own: a wrong record shows as a principal matching DNS but not the server.
        let resolved = r.facts.dns.filter { $0.address == r.tcp.server.address }
        let dnsNames = Set(resolved.flatMap { [$0.name] + $0.aliases }.map { $0.lowercased() })
        let mismatch: String
        if !own.isEmpty {
            guard !Self.nameMatches(host, own) else { return }
            let known = own.sorted().joined(separator: ", ")
            var text = "The ticket names \(k.servicePrincipal ?? host), but this server calls itself \(known)"
            if let answer = resolved.first(where: { Self.nameMatches(host, [$0.name.lowercased()]) }) {
                text += "; DNS answered \(answer.name) with this server's address (frame \(answer.response.frame))"
            }
            mismatch = text + ": the name the client used leads to another host (DNS or a port forward pointing at the wrong server), and the server cannot read a ticket made for another."
        } else if !dnsNames.isEmpty, !Self.nameMatches(host, dnsNames) {
            let names = dnsNames.sorted().joined(separator: ", ")
            mismatch =
                "The ticket names \(k.servicePrincipal ?? host), but the client reached this server by resolving \(names): the name it authenticates for and the name it connected by differ."
        } else {
            return
        }
        v.details.append(mismatch)
        if v.isFailure {
            v.cause = .resolutionMismatch
            let own = own.isEmpty ? "" : " (\(own.sorted().joined(separator: ", ")))"
            v.remediation.insert(
                "Check that \(host) resolves to this server (and that no port forward sends its port elsewhere), or connect by the server's own name\(own); `setspn -Q TERMSRV/\(host)` shows which computer account holds the principal.",
                at: 0)
        }
    }

    /// The server's own names: its certificate (subject CN and DNS SANs) and its NTLM target
    /// info, lower-cased.
    static func serverOwnNames(_ d: DecryptedFacts, _ r: Reading) -> Set<String> {
        var names: Set<String> = []
        for c in r.tls?.certificates ?? [] {
            for part in c.subject.split(separator: ",") {
                let p = part.trimmingCharacters(in: " ")
                if p.hasPrefix("CN=") { names.insert(String(p.dropFirst(3)).lowercased()) }
            }
            for san in c.subjectAlternativeNames where san.hasPrefix("DNS:") { names.insert(String(san.dropFirst(4)).lowercased()) }
        }
        if let s = d.serverNames {
            for n in [s.netbiosComputer, s.dnsComputer] { if let n, !n.isEmpty { names.insert(n.lowercased()) } }
        }
        // An address is not a host name a ticket could be made for.
        return names.filter { IPAddress($0) == nil && !$0.isEmpty }
    }

    /// The same host: equal names, or the same first label (a short name against its FQDN).
    static func nameMatches(_ host: String, _ names: Set<String>) -> Bool {
        let h = host.hasSuffix(".") ? String(host.dropLast()) : host
        let label = h.split(separator: ".").first.map(String.init) ?? h
        for n in names {
            let m = n.hasSuffix(".") ? String(n.dropLast()) : n
            if m == h { return true }
            let l = m.split(separator: ".").first.map(String.init) ?? m
            // A short name matches an FQDN with the same first label, never two different FQDNs.
            if l == label && (!m.contains(".") || !h.contains(".")) { return true }
        }
        return false
    }
}
