import Foundation
import TestSupport
import Testing

/// Captures analysed with their key logs: what rdptriage reads inside TLS against tshark
/// with the same key log, the secrets that must never reach a report, the key material a
/// pcapng carries itself, and the command line's key-log rules.
@Suite(.enabled(if: Prerequisite.runs(Run.tool("tshark") != nil), "tshark is not installed"))
struct KeyLogCaptureTests {
    /// Committed captures that have a key log beside them.
    static var keyed: [String] {
        Repo.committedCaptures.filter { FileManager.default.fileExists(atPath: Self.keys(for: $0)) }
            .map { ($0 as NSString).lastPathComponent }
    }

    static func keys(for capture: String) -> String {
        ((capture as NSString).deletingPathExtension) + ".keys"
    }

    static func json(_ args: [String]) throws -> [String: Any] {
        // Schema 1 names the decrypted facts as these checks read them.
        let r = try Run.program(Repo.executable, ["analyze", "--format", "json", "--schema", "1"] + args)
        try #require(r.status != 2, "rdptriage \(args): \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    static func attempts(_ report: [String: Any]) -> [[String: Any]] {
        ((report["inputs"] as? [[String: Any]])?.first?["attempts"] as? [[String: Any]]) ?? []
    }

    /// RDP inside an HTTP CONNECT tunnel: tshark's HTTP dissector does not hand the tunnel to
    /// TPKT/TLS, so there is nothing of its to compare with.
    static let tsharkCannotFollow: Set<String> = ["http-connect-success.pcap"]

    /// tshark's fields, one row per frame that has the first field.
    static func tshark(
        _ capture: String, filter: String, fields: [String], ports: Set<String> = ["3389"], occurrence: String = "f"
    ) throws -> [[String]] {
        // tshark hands TLS on 3389 to TPKT by itself; another port needs saying so.
        let decode = ports.sorted().flatMap { $0 == "3389" ? ["-d", "tcp.port==\($0),tls"] : ["-d", "tcp.port==\($0),tls", "-d", "tls.port==\($0),tpkt"] }
        let args = ["-r", capture, "-o", "tls.keylog_file:\(keys(for: capture))"] + decode + ["-Y", filter, "-T", "fields", "-E", "occurrence=\(occurrence)"]
            + fields.flatMap { ["-e", $0] }
        return try Tshark.run(args).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    @Test(arguments: keyed)
    func credsspMatchesTshark(_ name: String) throws {
        let capture = Repo.captures + "/" + name
        let report = try Self.json(["--keylog", Self.keys(for: capture), capture])
        var ours: [String] = []
        var mcs: [String] = []
        var license: [String] = []
        var errorInfo: [String] = []
        var ultimatum: [String] = []
        var kerberos: [String] = []
        var eua: [String] = []
        var ports: Set<String> = []
        for a in Self.attempts(report) {
            if let server = a["server"] as? String, let port = server.split(separator: ":").last { ports.insert(String(port)) }
            guard let d = (a["rdp"] as? [String: Any])?["decrypted"] as? [String: Any] else { continue }
            #expect(d["status"] as? String == "decrypted", "\(name): \(d)")
            for t in d["ts_requests"] as? [[String: Any]] ?? [] {
                let frame = ((t["at"] as? [String: Any])?["frame"] as? Int) ?? 0
                let ntlm = t["ntlm"] as? [String: Any]
                let type = (ntlm?["message_type"] as? Int).map { String(format: "0x%08x", $0) } ?? ""
                let code = (t["error_code"] as? Int).map { String(format: "0x%08x", $0) } ?? ""
                ours.append([String(frame), String(t["version"] as? Int ?? -1), type, ntlm?["user"] as? String ?? "",
                             ntlm?["domain"] as? String ?? "", ntlm?["workstation"] as? String ?? "",
                             ntlm?["target_name"] as? String ?? "", code].joined(separator: "|"))
                if let k = t["kerberos"] as? [String: Any] {
                    let type = ["as-req": "10", "as-rep": "11", "tgs-req": "12", "tgs-rep": "13", "ap-req": "14", "ap-rep": "15",
                                "krb-error": "30"][k["message"] as? String ?? ""] ?? "?"
                    kerberos.append([String(frame), type, k["realm"] as? String ?? "", k["service_principal"] as? String ?? "",
                                     (k["error_code"] as? Int).map(String.init) ?? ""].joined(separator: "|"))
                }
            }
            if let e = d["early_user_authorization"] as? [String: Any] {
                eua.append("\(((e["at"] as? [String: Any])?["frame"] as? Int) ?? 0)|\(e["result"] as? Int ?? -1)")
            }
            if let m = d["mcs_connect_response"] as? [String: Any] { mcs.append(String(m["frame"] as? Int ?? 0)) }
            if let l = d["license"] as? [String: Any] {
                license.append("\(((l["at"] as? [String: Any])?["frame"] as? Int) ?? 0)|\(l["error_code"] as? Int ?? -1)")
            }
            if let e = d["error_info"] as? [String: Any] {
                errorInfo.append("\(((e["at"] as? [String: Any])?["frame"] as? Int) ?? 0)|\(e["code"] as? Int ?? -1)")
            }
            if let u = d["disconnect_provider_ultimatum"] as? [String: Any] {
                ultimatum.append("\(((u["at"] as? [String: Any])?["frame"] as? Int) ?? 0)|\(u["reason"] as? Int ?? -1)")
            }
        }
        if Self.tsharkCannotFollow.contains(name) {
            // Checked by hand: with the key log and any Decode As, tshark 4.0 shows no CredSSP,
            // MCS or licensing frame inside an HTTP CONNECT tunnel. Ours must still be read.
            #expect(!mcs.isEmpty && !license.isEmpty, "\(name): nothing read inside the tunnel (TLS security: no CredSSP)")
            return
        }
        let rows = try Self.tshark(
            capture, filter: "credssp",
            fields: ["frame.number", "credssp.version", "ntlmssp.messagetype", "ntlmssp.auth.username", "ntlmssp.auth.domain",
                     "ntlmssp.auth.hostname", "ntlmssp.challenge.target_name", "credssp.errorCode"], ports: ports)
        let theirs = rows.map { r -> String in
            var f = r + Array(repeating: "", count: max(0, 8 - r.count))
            // tshark writes an empty NTLM string as NULL, and errorCode as a bare number.
            for i in 3...5 where f[i] == "NULL" { f[i] = "" }
            // An NTSTATUS has its top bit set: tshark prints it as a negative INTEGER.
            if let n = UInt32(f[7]) ?? Int32(f[7]).map({ UInt32(bitPattern: $0) })
                ?? UInt32(f[7].replacingOccurrences(of: "0x", with: ""), radix: 16), !f[7].isEmpty {
                f[7] = String(format: "0x%08x", n)
            }
            return f.joined(separator: "|")
        }
        #expect(ours == theirs, "\(name)")
        let hasCredSSP = !theirs.isEmpty
        #expect(hasCredSSP == !ours.isEmpty)
        let mcsRows = try Self.tshark(capture, filter: "t125.result", fields: ["frame.number"], ports: ports).map { $0[0] }
        #expect(mcs == mcsRows, "\(name): MCS Connect Response frames")
        // TLS 1.3 hides the server certificate; with the key log its serial number is read.
        var serials: [String] = []
        for a in Self.attempts(report) {
            let tls = (a["rdp"] as? [String: Any])?["tls"] as? [String: Any]
            if let c = (tls?["certificates"] as? [[String: Any]])?.first, let serial = c["serial_number"] as? String {
                serials.append(serial.lowercased())
            }
        }
        let serialRows = try Self.tshark(capture, filter: "tls.handshake.type == 11", fields: ["x509af.serialNumber"], ports: ports)
            .map { $0[0].replacingOccurrences(of: ":", with: "").lowercased() }
        #expect(serials == serialRows, "\(name): server certificates")
        let licenseRows = try Self.tshark(capture, filter: "rdp.errorCode", fields: ["frame.number", "rdp.errorCode"], ports: ports).map { $0.joined(separator: "|") }
        #expect(license == licenseRows, "\(name): licensing error messages")
        // tshark 4.0 names the Set Error Info PDU (pduType2 47) but not its value: errorInfo is
        // the 4 bytes after the 18-byte Share Data Header (MS-RDPBCGR 2.2.5.1.1), little-endian.
        let errorInfoRows = try Self.tshark(
            capture, filter: "rdp.pduType2 == 47", fields: ["frame.number", "rdp.shareControlHeader"], ports: ports
        ).map { r -> String in
            let hex = Array((r.count > 1 ? r[1] : "").replacingOccurrences(of: ":", with: ""))
            guard hex.count >= 44 else { return "\(r[0])|?" }
            let bytes = (18..<22).map { UInt32(String(hex[($0 * 2)..<($0 * 2 + 2)]), radix: 16) ?? 0 }
            return "\(r[0])|\(bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24)"
        }
        #expect(errorInfo == errorInfoRows, "\(name): Set Error Info PDUs")
        let ultimatumRows = try Self.tshark(
            capture, filter: "t124.DomainMCSPDU == 8", fields: ["frame.number", "t124.reason"], ports: ports
        ).map { $0.joined(separator: "|") }
        #expect(ultimatum == ultimatumRows, "\(name): MCS Disconnect Provider Ultimatum")
        // Kerberos inside CredSSP's SPNEGO: message type, realm, service principal (tshark lists
        // its name parts with commas), KRB-ERROR code.
        let kerberosRows = try Self.tshark(
            capture, filter: "credssp && kerberos.msg_type",
            fields: ["frame.number", "kerberos.msg_type", "kerberos.realm", "kerberos.SNameString", "kerberos.error_code"],
            ports: ports, occurrence: "a"
        ).map { r -> String in
            var f = r + Array(repeating: "", count: max(0, 5 - r.count))
            f[3] = f[3].replacingOccurrences(of: ",", with: "/")
            return f.joined(separator: "|")
        }
        #expect(kerberos == kerberosRows, "\(name): Kerberos messages inside CredSSP")
        // tshark 4.0 has no dissector for the Early User Authorization Result: the decrypted
        // 4 bytes show as TPKT continuation data (little-endian, MS-RDPBCGR 2.2.10.2).
        let euaRows = try Self.tshark(
            capture, filter: "tpkt.continuation_data && len(tpkt.continuation_data) == 4",
            fields: ["frame.number", "tpkt.continuation_data"], ports: ports
        ).map { r -> String in
            let hex = Array((r.count > 1 ? r[1] : "").replacingOccurrences(of: ":", with: ""))
            guard hex.count == 8 else { return "\(r[0])|?" }
            let b = (0..<4).map { UInt32(String(hex[($0 * 2)..<($0 * 2 + 2)]), radix: 16) ?? 0 }
            return "\(r[0])|\(b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24)"
        }
        #expect(eua == euaRows, "\(name): Early User Authorization Result")
    }

    /// Hex strings of at least 8 bytes that must never appear: NTLM responses, the session
    /// key, and every secret of the key log.
    static func secrets(_ capture: String) throws -> Set<String> {
        var out: Set<String> = []
        let rows = try tshark(
            capture, filter: "ntlmssp.messagetype == 3",
            fields: ["ntlmssp.ntlmv2_response", "ntlmssp.ntlmv2_response.ntproofstr", "ntlmssp.auth.sesskey",
                     "ntlmssp.ntlmclientchallenge", "ntlmssp.auth.ntresponse", "ntlmssp.auth.lmresponse"])
        for r in rows {
            for v in r where v.count >= 16 { out.insert(v.replacingOccurrences(of: ":", with: "").lowercased()) }
        }
        // Kerberos inside CredSSP: the ticket's and the authenticator's encrypted parts.
        let tickets = try tshark(
            capture, filter: "credssp && kerberos.msg_type == 14", fields: ["kerberos.cipher"], occurrence: "a")
        for r in tickets {
            for v in r.flatMap({ $0.split(separator: ",") }) where v.count >= 16 {
                out.insert(v.replacingOccurrences(of: ":", with: "").lowercased())
            }
        }
        let keyLog = try String(contentsOfFile: keys(for: capture), encoding: .utf8)
        for line in keyLog.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 3 { out.insert(f[2].lowercased()) }
        }
        return out
    }

    @Test(arguments: keyed)
    func noSecretInAnyReport(_ name: String) throws {
        let capture = Repo.captures + "/" + name
        let secrets = try Self.secrets(capture)
        let base = (name as NSString).deletingPathExtension
        if base.hasPrefix("credssp") || ["success-nla", "errorinfo-nla-insufficient-privileges", "eua-access-denied"].contains(base) {
            #expect(secrets.count > 8, "\(name): tshark found no NTLM response to look for")
        }
        if base == "kerberos-wrong-host" {
            // The key log's secrets and the AP-REQ's two encrypted parts.
            #expect(secrets.count >= 7, "\(name): tshark found no Kerberos ticket to look for")
        }
        // Accounts, and the names the lab's hosts, realm and principals carry.
        let users = ["alice", "mallory", "corp.example", "rdp-old", "rdp$", "rdplabpeer", "rdp-lab-server"]
        for format in ["text", "json", "markdown", "ndjson"] {
            for redact in [false, true] {
                let args = ["analyze", "--format", format, "--keylog", Self.keys(for: capture)] + (redact ? ["--redact"] : []) + [capture]
                let r = try Run.program(Repo.executable, args)
                #expect(r.status != 2, "\(args): \(r.stderr)")
                let flat = r.stdout.lowercased().replacingOccurrences(of: ":", with: "").replacingOccurrences(of: " ", with: "")
                // The lab password: the Client Info PDU (TLS security) and authInfo carry it.
                #expect(!r.stdout.lowercased().contains("passw0rd"), "\(name) \(format): a lab password in the report")
                #expect(!flat.contains("4c00610062002d00"), "\(name) \(format): the lab password (UTF-16) in the report")
                for s in secrets {
                    // Also a prefix of a secret, in case a report cut one short.
                    #expect(!flat.contains(String(s.prefix(16))), "\(name) \(format) redact=\(redact): secret bytes in the report")
                }
                if redact {
                    for u in users {
                        #expect(!r.stdout.lowercased().contains(u), "\(name) \(format): the name \(u) survived --redact")
                    }
                }
            }
        }
    }

    @Test func accountAndNamesWithKeys() throws {
        let capture = Repo.captures + "/credssp-unknown-user.pcap"
        let r = try Run.program(Repo.executable, ["analyze", "--keylog", Self.keys(for: capture), capture])
        #expect(r.status == 1)
        #expect(r.stdout.contains("The account tried: mallory from workstation vm"))
        #expect(r.stdout.contains("CredSSP read with the key log: TSRequest version 6 from the client, 6 from the server"))
        // Without keys the report says none of it.
        let plain = try Run.program(Repo.executable, ["analyze", capture])
        #expect(!plain.stdout.contains("mallory from workstation"))
    }

    @Test(.enabled(if: Prerequisite.runs(Run.tool("editcap") != nil), "editcap (wireshark-common) is not installed"))
    func pcapngDecryptionSecretsBlock() throws {
        let editcap = try #require(Run.tool("editcap"), "missing prerequisite: editcap (apt-get install wireshark-common)")
        let dir = NSTemporaryDirectory() + "rdptriage-dsb-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = Repo.captures + "/credssp-wrong-password.pcap"
        let out = dir + "/with-secrets.pcapng"
        let e = try Run.program(editcap, ["--inject-secrets", "tls,\(Self.keys(for: capture))", capture, out])
        try #require(e.status == 0, "editcap: \(e.stderr)")
        // No --keylog: the file carries its keys.
        let report = try Self.json([out])
        let d = Self.attempts(report).compactMap { ($0["rdp"] as? [String: Any])?["decrypted"] as? [String: Any] }
        #expect(d.count == 2)
        #expect(d.allSatisfy { $0["status"] as? String == "decrypted" })
        let users = d.flatMap { ($0["ts_requests"] as? [[String: Any]] ?? []).compactMap { ($0["ntlm"] as? [String: Any])?["user"] as? String } }
        #expect(users == ["alice", "alice"])
    }

    /// A pcapng carrying its secrets for a TLS 1.0 CBC session (MAC-then-encrypt, chained IV):
    /// tshark reads the same file's Decryption Secrets Block itself, with no key log given.
    @Test(.enabled(if: Prerequisite.runs(Run.tool("editcap") != nil), "editcap (wireshark-common) is not installed"))
    func pcapngSecretsForTLS10CBC() throws {
        let editcap = try #require(Run.tool("editcap"), "missing prerequisite: editcap (apt-get install wireshark-common)")
        let dir = NSTemporaryDirectory() + "rdptriage-dsb10-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = Repo.captures + "/tls10-cbc.pcap"
        let out = dir + "/with-secrets.pcapng"
        let e = try Run.program(editcap, ["--inject-secrets", "tls,\(Self.keys(for: capture))", capture, out])
        try #require(e.status == 0, "editcap: \(e.stderr)")
        let d = Self.attempts(try Self.json([out])).compactMap { ($0["rdp"] as? [String: Any])?["decrypted"] as? [String: Any] }
        try #require(d.count == 1)
        #expect(d[0]["status"] as? String == "decrypted")
        let mcs = ((d[0]["mcs_connect_response"] as? [String: Any])?["frame"] as? Int).map(String.init)
        let theirs = try Tshark.run(["-r", out, "-d", "tcp.port==3389,tls", "-Y", "t125.result", "-T", "fields", "-e", "frame.number"])
            .split(separator: "\n").map(String.init)
        #expect(mcs != nil && [mcs!] == theirs, "MCS Connect Response: ours \(String(describing: mcs)), tshark \(theirs)")
    }

    /// Wrong secrets for CBC sessions (MAC-then-encrypt and encrypt-then-MAC, TLS 1.0 to 1.2):
    /// the first protected record fails its padding or MAC check and says so.
    @Test(arguments: ["tls10-cbc.pcap", "tls12-cbc.pcap", "tls12-rsa-cbc.pcap"])
    func wrongKeysForCBC(_ name: String) throws {
        let capture = Repo.captures + "/" + name
        let mine = try String(contentsOfFile: Self.keys(for: capture), encoding: .utf8)
        // The master secret with its last byte changed.
        let forged = mine.split(separator: "\n").map { line -> String in
            var f = line.split(separator: " ").map(String.init)
            guard f.count == 3, let last = f[2].last else { return String(line) }
            f[2] = String(f[2].dropLast()) + (last == "0" ? "1" : "0")
            return f.joined(separator: " ")
        }
        let path = NSTemporaryDirectory() + "rdptriage-wrongcbc-\(getpid())-\(name).keys"
        try forged.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let d = Self.attempts(try Self.json(["--keylog", path, capture])).compactMap {
            ($0["rdp"] as? [String: Any])?["decrypted"] as? [String: Any]
        }
        #expect(d.count == 1 && d.allSatisfy { $0["status"] as? String == "wrong-keys" }, "\(name): \(d)")
        // A success is one line unless asked for by number.
        let text = try Run.program(Repo.executable, ["analyze", "--attempt", "1", "--keylog", path, capture])
        #expect(text.stdout.contains("Wrong key log for this connection"), "\(text.stdout)")
    }

    @Test func wrongKeyLogIsAFinding() throws {
        let capture = Repo.captures + "/credssp-wrong-password.pcap"
        // Another connection's secrets under this connection's client randoms.
        let mine = try String(contentsOfFile: Self.keys(for: capture), encoding: .utf8)
        let other = try String(contentsOfFile: Repo.captures + "/success-nla.keys", encoding: .utf8)
        let otherSecrets = other.split(separator: "\n").map { $0.split(separator: " ") }
        var forged: [String] = []
        for (i, line) in mine.split(separator: "\n").enumerated() {
            let f = line.split(separator: " ")
            guard f.count == 3 else { continue }
            let s = otherSecrets[i % otherSecrets.count]
            forged.append("\(f[0]) \(f[1]) \(s.count == 3 ? String(s[2]) : String(f[2].reversed()))")
        }
        let path = NSTemporaryDirectory() + "rdptriage-wrong-\(getpid()).keys"
        try forged.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try Run.program(Repo.executable, ["analyze", "--keylog", path, capture])
        #expect(r.status == 1)
        #expect(r.stdout.contains("Wrong key log for this connection"), "\(r.stdout)")
        let report = try Self.json(["--keylog", path, capture])
        for a in Self.attempts(report) {
            let d = (a["rdp"] as? [String: Any])?["decrypted"] as? [String: Any]
            #expect(d?["status"] as? String == "wrong-keys")
        }
    }

    @Test func keyLogCommandLine() throws {
        let capture = Repo.captures + "/credssp-wrong-password.pcap"
        let missing = try Run.program(Repo.executable, ["analyze", "--keylog", "/nonexistent/k.keys", capture])
        #expect(missing.status == 2)
        #expect(missing.stderr.split(separator: "\n").count == 1 && missing.stderr.contains("/nonexistent/k.keys"))
        // A key log for other connections: decrypted facts say so, the verdict is unchanged.
        let other = try Run.program(Repo.executable, ["analyze", "--keylog", Repo.captures + "/success-nla.keys", capture])
        #expect(other.status == 1)
        #expect(other.stdout.contains("no secrets for this connection"))
        // Repeatable: two key logs, each with some of the connections.
        let two = try Run.program(
            Repo.executable, ["analyze", "--keylog", Repo.captures + "/success-nla.keys", "--keylog", Self.keys(for: capture), capture])
        #expect(two.stdout.components(separatedBy: "The account tried: alice").count == 3)
        // --redact with keys is fine for a report; with --export it is refused.
        let redacted = try Run.program(Repo.executable, ["analyze", "--redact", "--keylog", Self.keys(for: capture), capture])
        #expect(redacted.status == 1 && redacted.stdout.contains("The account tried: user-"))
        let dir = NSTemporaryDirectory() + "rdptriage-kx-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let refused = try Run.program(Repo.executable, ["analyze", "--export", dir, "--redact", "--keylog", Self.keys(for: capture), capture])
        #expect(refused.status == 2 && refused.stderr.contains("--redact") && refused.stderr.contains("--keylog"))
    }
}
