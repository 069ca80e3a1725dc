import Foundation
import TestSupport
import Testing
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageReports

@testable import TriageProtocols

/// JSON schema 2 and ndjson (schema/rdptriage-report-v2.schema.json): every report of every
/// capture validates against the schema (Python's jsonschema, an implementation of its own),
/// and what the lines say matches how the lab made each capture.
@Suite struct SchemaV2Tests {
    static let validator = Repo.root + "/scripts/validate-report"

    /// Python with jsonschema, or nil (a message saying what is missing).
    static var python: (path: String?, missing: String?) {
        guard let py = Prerequisite.tool("python3") else { return (nil, "python3") }
        let r = try? Run.program(py, ["-c", "import jsonschema"])
        return r?.status == 0 ? (py, nil) : (nil, "Python's jsonschema (apt python3-jsonschema, or pip install jsonschema)")
    }

    static func parse(_ line: Substring) throws -> [String: Any] {
        let v = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(v as? [String: Any], "not an object: \(line.prefix(200))")
    }

    /// Runs the validator over `files`; records its complaints.
    static func validate(_ files: [String]) throws {
        let (py, missing) = python
        guard let py else {
            Issue.record("missing prerequisite: \(missing ?? "")")
            return
        }
        let r = try Run.program(py, [validator] + files)
        #expect(r.status == 0, "schema violations:\n\(r.stdout.prefix(4000))\(r.stderr.prefix(2000))")
    }

    /// Writes the json and ndjson reports of `capture` (with `extra` options) into `dir`.
    static func reports(_ capture: String, _ extra: [String], into dir: String, tag: String) throws -> [String] {
        var files: [String] = []
        for format in ["json", "ndjson"] {
            let r = try Run.program(Repo.executable, ["analyze", "--format", format] + extra + [capture])
            #expect(r.status != 2 || capture.contains("missing"), "\(capture) \(format): \(r.stderr)")
            let name = dir + "/" + (capture as NSString).lastPathComponent + "." + tag + "." + format
            try r.stdout.write(toFile: name, atomically: true, encoding: .utf8)
            files.append(name)
        }
        return files
    }

    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "rdptriage-schema-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Every committed capture, in both formats and under the options that change what an
    /// input's summary holds: --reported, --redact, filters and repeat limits.
    @Test(.enabled(if: Prerequisite.runs(python.path != nil)))
    func everyCommittedReportValidates() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files: [String] = []
        let variants: [(String, [String])] = [
            ("plain", []), ("reported", ["--reported", "0x904/0x7"]), ("redact", ["--redact"]),
            ("narrow", ["--failures-only", "--max-repeats", "1", "--attempt", "2"]),
        ]
        for capture in Repo.committedCaptures {
            for (tag, extra) in variants { files += try Self.reports(capture, extra, into: dir, tag: tag) }
            // With its key log: `rdp.decrypted`, plain and redacted.
            let keys = (capture as NSString).deletingPathExtension + ".keys"
            if FileManager.default.fileExists(atPath: keys) {
                files += try Self.reports(capture, ["--keylog", keys], into: dir, tag: "keys")
                files += try Self.reports(capture, ["--keylog", keys, "--redact"], into: dir, tag: "keys-redact")
            }
        }
        // Several inputs in one run, one of them unreadable: its error object.
        let several = Repo.committedCaptures.prefix(2) + [dir + "/missing.pcap"]
        for format in ["json", "ndjson"] {
            let r = try Run.program(Repo.executable, ["analyze", "--format", format] + several)
            #expect(r.status == 2)
            let name = dir + "/several." + format
            try r.stdout.write(toFile: name, atomically: true, encoding: .utf8)
            files.append(name)
        }
        try Self.validate(files)
    }

    @Test(.enabled(if: Prerequisite.runs(python.path != nil && Repo.publicCaptureFiles != nil)))
    func everyPublicReportValidates() throws {
        let captures = try #require(Repo.publicCaptureFiles, "missing prerequisite: the public captures in \(Repo.publicCaptures)")
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files: [String] = []
        for capture in captures { files += try Self.reports(capture, ["--max-repeats", "3"], into: dir, tag: "public") }
        try Self.validate(files)
    }

    /// Every member of `rdp.decrypted` a key log can fill, on one attempt, named as the
    /// specifications name them and valid: the lab's captures show only some of them.
    @Test(.enabled(if: Prerequisite.runs(python.path != nil)))
    func everyDecryptedMemberValidates() throws {
        var a = try #require(analyze(Repo.captures + "/success-tls.pcap").attempts.first)
        let at = a.facts.tcp.last
        var d = DecryptedFacts(status: .wrongKeys)
        d.detail = "a record failed authentication"
        (d.failedAt, d.failedFrom) = (at, .server)
        (d.clientRecords, d.serverRecords, d.recordLimitReached) = (3, 4, true)
        d.tsRequests = [
            TSRequestFacts(
                at: at, from: .server, version: 6, negoTokens: 0, mechanism: .ntlm, ntlm: nil, authInfo: false, pubKeyAuth: false,
                clientNonce: false, errorCode: 0xC000_006D),
            TSRequestFacts(
                at: at, from: .server, version: 2, negoTokens: 1, mechanism: .kerberos, ntlm: nil, authInfo: true, pubKeyAuth: true,
                clientNonce: false, errorCode: 0x1234_5678),
        ]
        var spnego = SPNEGOToken(kind: .negTokenResp)
        (spnego.negState, spnego.supportedMech) = (2, "1.2.840.113554.1.2.2")
        var krbError = KerberosMessage(kind: .krbError)
        (krbError.errorCode, krbError.realm, krbError.serviceName) = (37, "LAB.TEST", ["TERMSRV", "rds01.lab.test"])
        var kerberos = d.tsRequests[1]
        (kerberos.spnego, kerberos.kerberos) = (SPNEGOFacts(spnego), KerberosFacts(krbError))
        d.tsRequests.append(kerberos)
        d.earlyUserAuthorization = EarlyUserAuthorizationFacts(at: at, result: 5)
        d.mcsConnectResponse = at
        d.license = LicenseFacts(at: at, errorCode: 0x6, stateTransition: 2)
        d.errorInfo = ErrorInfoFacts(at: at, code: 0x9)
        d.logon = LogonFacts(at: at, infoType: 1)
        d.disconnectProviderUltimatum = DisconnectFacts(at: at, from: .server, reason: 3)
        a.facts.rdp.decrypted = d
        let text = String(decoding: NDJSONLines.line(a), as: UTF8.self)
        let line = try Self.parse(text.dropLast())
        let rdp = try #require(line["rdp"] as? [String: Any])
        let got = try #require(rdp["decrypted"] as? [String: Any])
        let credssp = try #require(got["credssp"] as? [[String: Any]])
        let status = credssp.first?["error_code"] as? [String: Any]
        #expect(status?["code"] as? String == "0xC000006D" && status?["name"] as? String == "STATUS_LOGON_FAILURE")
        #expect((credssp[1]["error_code"] as? [String: Any])?["name"] == nil, "an unknown NTSTATUS has no name")
        let krb = credssp.last?["kerberos"] as? [String: Any]
        #expect(krb?["service_principal"] as? String == "TERMSRV/rds01.lab.test")
        #expect((krb?["error_code"] as? [String: Any])?["name"] as? String == "KRB_AP_ERR_SKEW")
        let errorInfo = (got["set_error_info"] as? [String: Any])?["error_info"] as? [String: Any]
        #expect(errorInfo?["code"] as? String == "0x9" && errorInfo?["name"] as? String == "ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES")
        let eua = (got["early_user_authorization"] as? [String: Any])?["result"] as? [String: Any]
        #expect(eua?["name"] as? String == "ACCESS_DENIED")
        let license = (got["license_error"] as? [String: Any])?["error_code"] as? [String: Any]
        #expect(license?["name"] as? String == "ERR_NO_LICENSE_SERVER")
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: dir + "/decrypted.ndjson", atomically: true, encoding: .utf8)
        try Self.validate([dir + "/decrypted.ndjson"])
    }

    /// Live's summary line, with the export member, validates against `$defs/live_summary`.
    @Test(.enabled(if: Prerequisite.runs(python.path != nil && getuid() == 0)))
    func liveSummaryValidates() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Run.program(
            Repo.executable, ["live", "-i", "lo", "--duration", "1", "--format", "ndjson", "--export", dir + "/export"])
        #expect(r.status == 3, "no RDP on lo in a second: \(r.stderr)")
        let last = try #require(r.stdout.split(separator: "\n").last)
        let summary = try Self.parse(last)
        #expect(summary["type"] as? String == "summary" && summary["export"] != nil)
        try r.stdout.write(toFile: dir + "/live.ndjson", atomically: true, encoding: .utf8)
        try Self.validate([dir + "/live.ndjson"])
    }

    /// The validator is no rubber stamp: a report with a wrong member fails it.
    @Test(.enabled(if: Prerequisite.runs(python.path != nil)))
    func validatorRejectsBrokenReports() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Run.program(Repo.executable, ["analyze", "--format", "ndjson", Repo.captures + "/rst-refused.pcap"]).stdout
        let broken: [String: String] = [
            "label": good.replacingOccurrences(of: "\"label\":\"rst-refused\"", with: "\"label\":\"refused\""),
            "port": good.replacingOccurrences(of: "\"port\":3389", with: "\"port\":\"3389\""),
            "extra": good.replacingOccurrences(of: "{\"type\":\"attempt\",", with: "{\"type\":\"attempt\",\"id\":0,"),
            "code": good.replacingOccurrences(of: "\"code\":\"0x204\"", with: "\"code\":null"),
        ]
        for (what, text) in broken.sorted(by: { $0.key < $1.key }) {
            #expect(text != good, "\(what): the test's replacement found nothing")
            let name = dir + "/\(what).ndjson"
            try text.write(toFile: name, atomically: true, encoding: .utf8)
            let (py, _) = Self.python
            let r = try Run.program(try #require(py), [Self.validator, name])
            #expect(r.status == 1, "\(what) passed the schema")
        }
    }

    /// The ndjson lines of every lab capture against how the lab made it (its expected file).
    @Test(arguments: Expected.scenarios)
    func linesMatchTheLab(_ name: String) throws {
        let expected = try Expected.load(Repo.captures + "/\(name).expected.json")
        let ports = LabExpectationsTests.expectedPorts(expected).filter { $0 != 3389 }.flatMap { ["-p", String($0)] }
        let keys = expected.verdictNeedsKeys == true ? ["--keylog", Repo.captures + "/\(name).keys"] : []
        let r = try Run.program(Repo.executable, ["analyze", "--format", "ndjson"] + ports + keys + [Repo.captures + "/\(name).pcap"])
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        try #require(lines.last == "", "\(name): output does not end with a newline")
        let objects = try lines.dropLast().map(Self.parse)
        let attempts = objects.filter { $0["type"] as? String == "attempt" }
        let inputs = objects.filter { $0["type"] as? String == "input" }
        try #require(attempts.count == expected.attempts.count, "\(name): \(attempts.count) attempt lines")
        try #require(inputs.count == 1 && objects.last?["type"] as? String == "input", "\(name): one summary line, last")
        for (i, (got, want)) in zip(attempts, expected.attempts).enumerated() {
            let at = "\(name) attempt \(i + 1)"
            let source = got["source"] as? [String: Any]
            let destination = got["destination"] as? [String: Any]
            let verdict = got["verdict"] as? [String: Any]
            let tcp = got["tcp"] as? [String: Any]
            #expect(got["attempt"] as? Int == i + 1, "\(at) number")
            #expect(source?["ip"] as? String == want.client, "\(at) source.ip")
            #expect(destination?["ip"] as? String == want.server, "\(at) destination.ip")
            #expect(destination?["port"] as? Int == want.serverPort, "\(at) destination.port")
            #expect(tcp?["outcome"] as? String == want.tcp.outcome, "\(at) tcp.outcome")
            #expect(tcp?["established"] as? Bool == want.tcp.established, "\(at) tcp.established")
            #expect(verdict?["label"] as? String == want.label, "\(at) label")
            #expect(verdict?["cause"] as? String == want.cause, "\(at) cause")
            #expect(verdict?["stage"] as? String == want.stage, "\(at) stage")
            #expect(verdict?["ended_by"] as? String == want.endedBy, "\(at) ended_by")
            if let c = want.confidence { #expect(verdict?["confidence"] as? String == c, "\(at) confidence") }
            let outcome = (got["event"] as? [String: Any])?["outcome"] as? String
            #expect(outcome == (want.label == "success" ? "success" : want.label == "incomplete" ? "unknown" : "failure"), "\(at) event.outcome")
            // The client code: a number (0x904/0x7) is code + extended; a word is the kind, with code null.
            switch want.clientCode {
            case .string(let s)?:
                let c = got["client_code"] as? [String: Any]
                if s.hasPrefix("errorInfo/") {
                    // The server's Set Error Info: the extended reason, no disconnect reason.
                    #expect(c?["kind"] as? String == "server-error-info", "\(at) client_code.kind")
                    #expect(c?["code"] is NSNull, "\(at) client_code.code is null")
                    #expect(c?["extended"] as? String == String(s.dropFirst("errorInfo/".count)), "\(at) client_code.extended")
                } else if s.hasPrefix("0x") {
                    let parts = s.split(separator: "/").map(String.init)
                    #expect(c?["kind"] as? String == "disconnect-reason", "\(at) client_code.kind")
                    #expect(c?["code"] as? String == parts[0], "\(at) client_code.code")
                    #expect(c?["extended"] as? String == (parts.count > 1 ? parts[1] : nil), "\(at) client_code.extended")
                } else {
                    #expect(c?["kind"] as? String == s, "\(at) client_code.kind")
                    #expect(c?["code"] is NSNull, "\(at) client_code.code is null")
                }
            case .null?: #expect(got["client_code"] is NSNull, "\(at) client_code is null")
            default: break
            }
            // Key frames the verdict must show are in the evidence, with their times.
            let evidence = (got["evidence"] as? [[String: Any]]) ?? []
            for key in want.evidence ?? [] {
                guard let f = want.keyFrames[key] else { continue }
                let e = evidence.first { $0["frame"] as? Int == f }
                #expect(e != nil && e?["time"] is String, "\(at) evidence frame \(f) (\(key))")
            }
        }
        let counts = inputs[0]["counts"] as? [String: Any]
        #expect(counts?["attempts"] as? Int == expected.attempts.count)
        let byLabel = counts?["by_label"] as? [String: Int] ?? [:]
        var want: [String: Int] = [:]
        for a in expected.attempts { want[a.label, default: 0] += 1 }
        #expect(byLabel == want, "\(name) counts.by_label")
        #expect(counts?["failures"] as? Int == expected.attempts.filter { $0.label != "success" && $0.label != "incomplete" }.count)
    }

    /// The document holds exactly the ndjson lines: each attempt line, then the summary's
    /// members with the attempts among them.
    @Test(arguments: ["retry-then-success", "credssp-wrong-password", "background-traffic", "mtu-blackhole"])
    func documentHoldsTheLines(_ name: String) throws {
        let capture = Repo.captures + "/\(name).pcap"
        let nd = try Run.program(Repo.executable, ["analyze", "--format", "ndjson", capture]).stdout
        let doc = try Run.program(Repo.executable, ["analyze", "--format", "json", capture]).stdout
        let ndLines = nd.split(separator: "\n").map(String.init)
        // Each attempt sits on a line of its own in the document, followed by a comma but the last.
        let docAttempts = doc.split(separator: "\n").filter { $0.hasPrefix("{\"type\":\"attempt\"") }
            .map { $0.hasSuffix(",") ? String($0.dropLast()) : String($0) }
        #expect(docAttempts == ndLines.filter { $0.hasPrefix("{\"type\":\"attempt\"") }, "\(name): document attempts differ from the ndjson lines")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(doc.utf8)) as? [String: Any])
        #expect(root["schema_version"] as? Int == 2)
        let input = try #require((root["inputs"] as? [[String: Any]])?.first)
        var summary = try Self.parse(Substring(try #require(ndLines.last)))
        var fromDoc = input
        #expect((fromDoc.removeValue(forKey: "attempts") as? [Any])?.count == ndLines.count - 1)
        summary["type"] = nil
        fromDoc["type"] = nil
        #expect(NSDictionary(dictionary: summary) == NSDictionary(dictionary: fromDoc), "\(name): summary members differ")
    }

    /// Schema 1 stays selectable; the combinations that do not exist are refused.
    @Test func schemaOption() throws {
        let capture = Repo.captures + "/rst-refused.pcap"
        let v1 = try Run.program(Repo.executable, ["analyze", "--format", "json", "--schema", "1", capture])
        #expect(v1.stdout.contains("\"schema_version\": 1,"))
        let v2 = try Run.program(Repo.executable, ["analyze", "--format", "json", capture])
        #expect(v2.stdout.hasPrefix("{\"schema\":\"rdptriage.report\",\"schema_version\":2,"))
        for bad in [["--schema", "3"], ["--schema", "1", "--format", "ndjson"]] {
            let r = try Run.program(Repo.executable, ["analyze"] + bad + [capture])
            #expect(r.status == 2 && r.stdout.isEmpty, "\(bad) accepted")
        }
    }

    /// ndjson on a pipe is written as each attempt is ready: the line is readable before the
    /// next attempt or the input's end (what live capture relies on), and it is the same line
    /// `NDJSONLines` makes for the attempt.
    @Test func ndjsonLineReachesAPipeAtOnce() throws {
        let attempts = analyze(Repo.captures + "/retry-then-success.pcap").attempts
        try #require(attempts.count == 4)
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let reader = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        let out = try ReportOutput.file(descriptor: fds[1], path: "pipe")
        #expect(out.isStream)
        let report = NDJSONReport(output: out, options: ReportOptions())
        report.begin(InputInfo(input: "retry-then-success.pcap", linkType: "Ethernet", snapshotLength: nil))
        for a in attempts {
            report.attempt(a)
            let line = Self.readLine(reader, timeout: 5)
            #expect(line.map { Array($0.utf8) + [0x0A] } == NDJSONLines.line(a), "attempt \(a.facts.tcp.id + 1) not written at once")
        }
        _ = out.finish()
    }

    /// One line from `h`, or nil when none arrives within `timeout` seconds.
    static func readLine(_ h: FileHandle, timeout: Double) -> String? {
        let fd = h.fileDescriptor
        var buffer: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            buffer += chunk[0..<n]
            if let nl = buffer.firstIndex(of: 0x0A) { return String(decoding: buffer[..<nl], as: UTF8.self) }
        }
        return nil
    }
}
