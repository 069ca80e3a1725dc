import Foundation
import TestSupport
import Testing
import TriageCapture
@testable import TriageDiagnosis
import TriageEngine
import TriageFlows
@testable import TriageProtocols

/// Rules the lab cannot stage with real software, checked by changing one fact of a real
/// capture's facts: everything else stays as recorded.
@Suite struct ClassifierRuleTests {
    func facts(_ name: String) throws -> AttemptFacts {
        let c = analyze(Repo.captures + "/\(name).pcap")
        return try #require(c.attempts.first).facts
    }

    static let fortigate = CertificateFacts(
        subject: "CN=rdp.corp.example", issuer: "CN=FortiGate CA, O=Fortinet, C=US", serialNumber: "01",
        notBefore: Timestamp(seconds: 1_700_000_000, nanos: 0), notAfter: Timestamp(seconds: 1_900_000_000, nanos: 0),
        selfSigned: false, keyType: "RSA", keyBits: 2048, subjectAlternativeNames: [], signatureAlgorithm: "sha256WithRSA",
        sha256: String(repeating: "0", count: 64), inspectionProduct: "Fortinet FortiGate")

    /// Live reports a success while its connection is open (`running`): the classifier words
    /// it as a session that goes on; after the capture's end the same facts read as cut short.
    @Test func openSuccessIsWordedForWhetherItRuns() throws {
        var f = try facts("success-nla")
        f.tcp.outcome = .open
        let ended = Classifier.classify(f)
        #expect(ended.label == .success)
        #expect(ended.summary.contains("(still open when the capture ended)"))
        #expect(!ended.details.contains { $0.hasPrefix("Reported while the connection is open") })
        let running = Classifier.classify(f, running: true)
        #expect(running.label == .success)
        #expect(running.summary.contains("(the session is running)"))
        #expect(!running.summary.contains("capture ended"))
        #expect(running.details.contains { $0.hasPrefix("Reported while the connection is open") })
        #expect(running.evidence.allSatisfy { !$0.what.contains("capture ended") })
    }

    /// The client refuses after the TLS handshake, and the certificate is a TLS-inspection
    /// product's: client-side interference, not the server.
    @Test func inspectionCertificateMakesItClientSide() throws {
        var f = try facts("cert-rejected")
        #expect(Classifier.classify(f).cause == .clientSide)
        f.rdp.tls?.certificates = [Self.fortigate]
        let v = Classifier.classify(f)
        #expect(v.label == .clientAbort)
        #expect(v.cause == .clientSide)
        #expect(v.summary.contains("Fortinet FortiGate"))
        #expect(v.remediation.first?.contains("TLS-inspection product") == true)
    }

    /// Sentences say what the facts say (issue 12 point 9): a server that closes the TLS
    /// handshake after its ServerHello is not said to have closed it "without a ServerHello".
    @Test func serverCloseAfterServerHelloIsSaidSo() throws {
        var f = try facts("close-after-clienthello")
        let before = Classifier.classify(f)
        try #require(before.label == .tlsRejected)
        #expect(before.confidence.reason.contains("without a ServerHello"))
        let at = FrameRef(frame: 9, time: f.tcp.first.time)
        f.rdp.tls?.serverHello = TLSFacts.ServerHello(at: at, legacyVersion: 0x0303, version: 0x0303, cipherSuite: 0xC02F)
        let v = Classifier.classify(f)
        #expect(v.label == .tlsRejected)
        for sentence in [v.summary, v.confidence.reason] + v.details {
            #expect(!sentence.contains("without a ServerHello"), "\(sentence)")
            #expect(!sentence.contains("without an answer"), "\(sentence)")
        }
    }

    /// A fatal alert with an inspection product's certificate is blamed on the inspection.
    @Test func alertWithInspectionCertificate() throws {
        var f = try facts("tls-no-shared-cipher")
        #expect(Classifier.classify(f).cause == .tlsCredSSP)
        f.rdp.tls?.certificates = [Self.fortigate]
        let v = Classifier.classify(f)
        #expect(v.label == .tlsAlert)
        #expect(v.cause == .clientSide)
    }

    /// An RST with the server's own TTL is the server's; change only its TTL and it becomes a
    /// middlebox's.
    @Test func resetTTLDecidesWhoSentIt() throws {
        var f = try facts("close-after-clienthello")
        try #require(f.tcp.outcome == .reset)
        #expect(Classifier.classify(f).endedBy == .server)
        f.tcp.resets[0].ttl = 250
        let v = Classifier.classify(f)
        #expect(v.label == .resetByMiddlebox)
        #expect(v.cause == .networkBlockade)
        #expect(v.endedBy == .middlebox)
    }

    /// A CredSSP failure whose TSRequest named the NTSTATUS (a key log would show it) maps
    /// to the client code for that status.
    @Test func ntstatusNamesTheClientCode() throws {
        var f = try facts("credssp-unknown-user")
        f.rdp.credssp?.errorCode = 0xC000_0064
        let v = Classifier.classify(f)
        #expect(v.label == .credsspFailure)
        #expect(v.clientReport?.code == .reason(0xA07, extended: nil))
        #expect(v.summary.contains("STATUS_NO_SUCH_USER"))
        #expect(v.confidence.level == .high)
    }

    /// Without any DNS answer in the capture, a host-unreachable is a network problem, not
    /// a resolution one.
    @Test func hostUnreachableWithoutDNSIsNetwork() throws {
        var f = try facts("icmp-host-unreachable")
        #expect(Classifier.classify(f).cause == .resolutionMismatch)
        f.dns = []
        #expect(Classifier.classify(f).cause == .networkBlockade)
    }
}

/// `--reported CODE` against what each capture really shows.
@Suite struct ReportedCodeTests {
    func json(_ args: [String]) throws -> [String: Any] {
        let r = try Run.program(Repo.executable, ["analyze", "--format", "json"] + args)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    func reported(_ doc: [String: Any]) -> [String: Any]? {
        ((doc["inputs"] as? [[String: Any]])?.first)?["reported"] as? [String: Any]
    }

    /// The server reset the TLS handshake: the abortive close the client reports as 0x904/0x7.
    @Test func matchingAttempt() throws {
        let r = try #require(reported(try json(["--reported", "0x904/0x7", Repo.captures + "/close-after-clienthello.pcap"])))
        #expect(r["attempts"] as? [Int] == [1])
        #expect((r["explanation"] as? String)?.hasPrefix("Consistent with 0x904/0x7") == true)
        // Decimal with no extended code works too.
        let d = try #require(reported(try json(["--reported", "2308", Repo.captures + "/close-after-clienthello.pcap"])))
        #expect(d["attempts"] as? [Int] == [1])
    }

    /// A capture where the connection worked cannot explain a 0x904/0x7.
    @Test func nothingMatches() throws {
        let r = try #require(reported(try json(["--reported", "0x904/0x7", Repo.captures + "/success-tls.pcap"])))
        #expect((r["attempts"] as? [Int])?.isEmpty == true)
        #expect((r["explanation"] as? String)?.contains("Nothing in this capture matches") == true)
    }

    /// SYNs that were refused are 0x204, not 0x904.
    @Test func connectFailures() throws {
        let r = try #require(reported(try json(["--reported", "0x204", Repo.captures + "/rst-refused.pcap"])))
        #expect(r["attempts"] as? [Int] == [1, 2])
    }

    /// The server's stated reason, read with the key log, is what the user saw (FACTS.md 1):
    /// a Set Error Info is the extended reason (not the 0x7 guess), a CredSSP errorCode names
    /// its own code, a licensing error is 0x808.
    @Test func serverStatedReasons() throws {
        func attempts(_ code: String, _ name: String) throws -> [Int]? {
            let capture = Repo.captures + "/" + name
            let keys = ((capture as NSString).deletingPathExtension) + ".keys"
            return try #require(reported(try json(["--reported", code, "--keylog", keys, capture])))["attempts"] as? [Int]
        }
        for name in ["errorinfo-insufficient-privileges.pcap", "errorinfo-nla-insufficient-privileges.pcap"] {
            #expect(try attempts("0x904/0x9", name) == [1], "\(name)")
            #expect(try attempts("0x3/9", name) == [1], "\(name): any disconnect reason beside the errorInfo")
            #expect(try attempts("0x904/0x7", name) == [], "\(name): the server said 0x9, the client did not guess 0x7")
            #expect(try attempts("0x904", name) == [], "\(name)")
        }
        #expect(try attempts("0xD07", "credssp-errorcode-locked-out.pcap") == [1])
        #expect(try attempts("0x807", "credssp-errorcode-locked-out.pcap") == [])
        #expect(try attempts("0x807", "credssp-errorcode-logon-failure.pcap") == [1])
        #expect(try attempts("0x808", "license-no-license-server.pcap") == [1, 2])
        #expect(try attempts("0x904/0x7", "license-no-license-server.pcap") == [])
    }

    @Test func parsing() {
        #expect(ReportedCode("0x904/0x7") == ReportedCode("2308/7"))
        #expect(ReportedCode("0x904")?.extended == nil)
        #expect(ReportedCode("0x904/") == nil)
        #expect(ReportedCode("banana") == nil)
    }

    /// Remediation templates: placeholders replaced, anything else kept as written.
    @Test func remediationPlaceholders() {
        let values: [Substring: String] = ["server": "rdp.example", "port": "3389", "time": "2026-11-25T10:00:00Z"]
        let fill = { (t: String) in Classifier.fill(t, { values[$0] }) }
        #expect(fill("Check {server}:{port} at {time}.") == "Check rdp.example:3389 at 2026-11-25T10:00:00Z.")
        #expect(fill("no placeholders") == "no placeholders")
        #expect(fill("{unknown} and {server}") == "{unknown} and rdp.example")
        #expect(fill("an open { brace and {server}") == "an open { brace and rdp.example")
        #expect(fill("unterminated {server") == "unterminated {server")
        #expect(fill("{server}{port}") == "rdp.example3389")
        #expect(fill("→ {server} ✓") == "→ rdp.example ✓")
    }

    /// Templates are split once and rendered per attempt: the result must be what a plain
    /// scan of the template gives, on every step in the knowledge base and on random ones
    /// made of braces, names and text, with values present or missing.
    @Test func splitTemplatesRenderLikeAScan() {
        func scan(_ template: String, _ value: (Substring) -> String?) -> String {
            var out = ""
            var rest = Substring(template)
            while let open = rest.firstIndex(of: "{") {
                out += rest[..<open]
                let after = rest.index(after: open)
                if let close = rest[after...].firstIndex(of: "}"), let v = value(rest[after..<close]) {
                    out += v
                    rest = rest[rest.index(after: close)...]
                } else {
                    out += "{"
                    rest = rest[after...]
                }
            }
            return out + rest
        }
        let names = ["server", "address", "port", "reporter", "time", "issuer", "name"]
        let all = { (n: Substring) -> String? in names.contains(String(n)) ? "<\(n)>" : nil }
        let some = { (n: Substring) -> String? in n == "port" || n == "time" ? "<\(n)>" : nil }
        func check(_ t: String) {
            for v in [all, some] {
                #expect(Classifier.fill(t, v) == scan(t, v), "\(t)")
            }
        }
        for steps in Knowledge.remediation.values { steps.forEach(check) }
        var rng = SplitMix(seed: 11)
        let parts = ["{", "}", "{server}", "{port}", "{bogus}", "server", "text ", "é", "→", "{{", "}}", "{time"]
        for _ in 0..<3_000 {
            let n = Int(rng.next() % 8)
            check((0..<n).map { _ in parts[Int(rng.next() % UInt64(parts.count))] }.joined())
        }
    }
}

/// The rule `stated-refusal` on the real Set Error Info capture, with its decrypted facts
/// changed one at a time: each refusal the server can state decides alone, a normal end or a
/// logon does not; and on the real Early User Authorization denial.
@Suite struct StatedRefusalTests {
    @Test func eachStatedReasonDecides() throws {
        let base = Repo.captures + "/errorinfo-nla-insufficient-privileges"
        let facts = try #require(analyze(base + ".pcap", keyLog: base + ".keys").attempts.first?.facts)
        let read = try #require(facts.rdp.decrypted)
        let at = try #require(read.errorInfo?.at)
        func classify(_ change: (inout DecryptedFacts) -> Void) -> Verdict {
            var f = facts
            var d = read
            d.errorInfo = nil
            d.license = nil
            change(&d)
            f.rdp.decrypted = d
            return Classifier.classify(f)
        }
        let errorInfo = classify { $0.errorInfo = read.errorInfo }
        #expect(errorInfo.rule == "stated-refusal" && errorInfo.label == .earlyDisconnect && errorInfo.cause == .hostNotAccepting)
        #expect(errorInfo.clientReport?.code == .errorInfo(9))
        let eua = classify { $0.earlyUserAuthorization = EarlyUserAuthorizationFacts(at: at, result: 5) }
        #expect(eua.rule == "stated-refusal" && eua.stage == .credssp && eua.endedBy == .server)
        #expect(eua.summary.contains("ACCESS_DENIED"))
        #expect(eua.remediation.first?.contains("Remote Desktop Users") == true)
        let license = classify { $0.license = LicenseFacts(at: at, errorCode: 0x02, stateTransition: 1) }
        #expect(license.rule == "stated-refusal" && license.clientReport?.code == .reason(0x808))
        #expect(license.summary.contains("ERR_NO_LICENSE") && license.summary.contains("ST_TOTAL_ABORT"))
        // Not refusals: no license needed, an EUA SUCCESS, a normal end, or a user who logged on.
        #expect(classify { $0.license = LicenseFacts(at: at, errorCode: 0x07, stateTransition: 2) }.rule != "stated-refusal")
        #expect(classify { $0.earlyUserAuthorization = EarlyUserAuthorizationFacts(at: at, result: 0) }.rule != "stated-refusal")
        #expect(classify { $0.errorInfo = ErrorInfoFacts(at: at, code: 0xC) }.rule != "stated-refusal")
        #expect(classify {
            $0.errorInfo = read.errorInfo
            $0.logon = LogonFacts(at: at, infoType: 1)
        }.rule != "stated-refusal")
    }

    /// aardwolf against the peer's HYBRID_EX denial: with the key log the server's 4-byte
    /// result decides; without it the shape reaches the result's record, but 4 encrypted bytes
    /// could as well be a SUCCESS, so no refusal is stated.
    @Test func realEarlyUserAuthorizationDenial() throws {
        let base = Repo.captures + "/eua-access-denied"
        let keyed = try #require(analyze(base + ".pcap", keyLog: base + ".keys").attempts.first)
        let result = try #require(keyed.facts.rdp.decrypted?.earlyUserAuthorization)
        #expect(result.result == 5)
        #expect(keyed.verdict.rule == "stated-refusal" && keyed.verdict.label == .earlyDisconnect && keyed.verdict.stage == .credssp)
        #expect(keyed.verdict.summary.contains("ACCESS_DENIED (frame \(result.at.frame))"))
        #expect(keyed.verdict.evidence.contains { $0.frame == result.at.frame })
        #expect(keyed.verdict.remediation.first?.contains("Remote Desktop Users") == true)
        let plain = try #require(analyze(base + ".pcap").attempts.first)
        #expect(plain.facts.rdp.credssp?.phase == .earlyUserAuthorization)
        #expect(plain.facts.rdp.credssp?.reachedAt == result.at)
        #expect(plain.verdict.rule != "stated-refusal")
    }
}
