import Foundation
import Testing
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// A loosely typed JSON value, for the open `details` object of expected files.
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case object([String: JSONValue])
    case array([JSONValue])
    case null

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var int: Int? { if case .number(let n) = self { Int(n) } else { nil } }
    subscript(_ key: String) -> JSONValue? { if case .object(let o) = self { o[key] } else { nil } }

    var description: String {
        switch self {
        case .string(let s): s
        case .number(let n): String(n)
        case .bool(let b): String(b)
        case .object(let o): String(describing: o)
        case .array(let a): String(describing: a)
        case .null: "null"
        }
    }
}

/// `captures/NAME.expected.json`, schema 1 (captures/README.md).
struct Expected: Decodable {
    struct TCP: Decodable {
        var outcome: String
        var established: Bool
    }
    struct Attempt: Decodable {
        var client: String
        var server: String
        var serverPort: Int
        var tcp: TCP
        var label: String
        var cause: String
        var stage: String
        var endedBy: String
        var keyFrames: [String: Int]
        var details: [String: JSONValue]?
        /// The rest of the verdict as the scenario implies it: nil when the file predates them.
        var confidence: String?
        /// A code (`0x904/0x7`), a word (`local`), or JSON null: the attempt has no client code.
        var clientCode: JSONValue?
        /// The entry of `Knowledge.remediation` the steps must come from.
        var remediation: String?
        /// Key-frame names whose frames the verdict's evidence must show.
        var evidence: [String]?
    }
    var schema: Int
    var name: String
    var description: String
    var keys: Bool?
    /// The verdict rests on what only the key log reads (the server's stated reason inside
    /// TLS): the capture is analysed with its key log.
    var verdictNeedsKeys: Bool?
    var attempts: [Attempt]

    static func load(_ path: String) throws -> Expected {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return try d.decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Names of the committed scenarios that have an expected file.
    static var scenarios: [String] {
        Repo.committedCaptures.compactMap { path in
            let base = (path as NSString).deletingPathExtension
            return FileManager.default.fileExists(atPath: base + ".expected.json") ? (base as NSString).lastPathComponent : nil
        }
    }
}

/// The frame our facts give for a key-frame name of the expected files.
func frame(named name: String, in a: Attempt) -> Int? {
    let t = a.facts.tcp
    let r = a.facts.rdp
    switch name {
    case "syn": return t.handshake.syns.first?.frame
    case "syn_ack": return t.handshake.synAck?.frame
    case "rst": return t.resets.first?.at.frame
    case "fin": return [t.clientSide.fin?.at.frame, t.serverSide.fin?.at.frame].compactMap { $0 }.min()
    case "icmp": return t.icmp.first?.at.frame
    case "dns_query": return a.facts.dns.last?.query?.frame
    case "dns_response": return a.facts.dns.last?.response.frame
    case "x224_request": return r.connectionRequest?.at.frame
    case "x224_confirm": return r.connectionConfirm?.at.frame
    case "client_hello": return r.tls?.clientHello?.at.frame
    case "server_hello": return r.tls?.serverHello?.at.frame
    case "certificate": return r.tls?.certificateFrame?.frame
    case "alert": return r.tls?.alerts.first?.at.frame
    case "last": return t.last.frame
    case "proxy_request": return r.proxy?.requestAt?.frame
    case "proxy_reply": return r.proxy?.replyAt?.frame
    default: return nil
    }
}

@Suite struct LabExpectationsTests {
    @Test func everyCaptureHasAnExpectedFile() {
        let missing = Repo.committedCaptures.filter { path in
            !FileManager.default.fileExists(atPath: (path as NSString).deletingPathExtension + ".expected.json")
        }
        #expect(missing.isEmpty, "captures without an expected file: \(missing)")
        #expect(!Repo.committedCaptures.isEmpty)
    }

    /// TCP-level facts (issue 2) and the full verdict (issue 4) against how the capture was made.
    @Test(arguments: Expected.scenarios)
    func scenario(_ name: String) throws {
        let expected = try Expected.load(Repo.captures + "/\(name).expected.json")
        try Self.check(pcap: Repo.captures + "/\(name).pcap", against: expected, name: name)
    }

    /// Compares rdptriage's analysis of `pcap` with an expected file, attempt by attempt.
    static func check(pcap: String, against expected: Expected, name: String) throws {
        #expect(expected.schema == 1)
        let keyLog = expected.verdictNeedsKeys == true ? (pcap as NSString).deletingPathExtension + ".keys" : nil
        let result = analyze(pcap, ports: expectedPorts(expected), keyLog: keyLog)
        #expect(result.summaries.first?.error == nil)
        try #require(
            result.attempts.count == expected.attempts.count,
            "\(name): \(result.attempts.count) attempts, expected \(expected.attempts.count): \(result.attempts.map(\.verdict.label.rawValue))")
        for (i, (got, want)) in zip(result.attempts, expected.attempts).enumerated() {
            let t = got.facts.tcp
            let v = got.verdict
            let at = "\(name) attempt \(i + 1)"
            #expect(t.client.address.description == want.client, "\(at) client")
            #expect(t.server.address.description == want.server, "\(at) server")
            #expect(Int(t.server.port) == want.serverPort, "\(at) port")
            #expect(t.outcome.rawValue == want.tcp.outcome, "\(at) TCP outcome")
            #expect(t.established == want.tcp.established, "\(at) established")
            #expect(v.label.rawValue == want.label, "\(at) label; rule \(v.rule): \(v.summary)")
            #expect(v.cause.rawValue == want.cause, "\(at) cause; rule \(v.rule)")
            #expect(v.stage.rawValue == want.stage, "\(at) stage; rule \(v.rule)")
            #expect(v.endedBy.rawValue == want.endedBy, "\(at) ended by; rule \(v.rule)")
            for (key, frameNumber) in want.keyFrames.sorted(by: { $0.key < $1.key }) {
                if key == "dns_query" || key == "dns_response" {
                    // A client may resolve the name more than once; the exchange named must be among those we tie to the attempt.
                    let ours = got.facts.dns.compactMap { key == "dns_query" ? $0.query?.frame : $0.response.frame }
                    #expect(ours.contains(frameNumber), "\(at) key frame \(key): \(ours)")
                } else {
                    #expect(frame(named: key, in: got) == frameNumber, "\(at) key frame \(key)")
                }
            }
            checkDetails(want.details ?? [:], got, at)
            checkVerdict(want, got, at, keyed: keyLog != nil)
        }
    }

    /// Confidence, client code, remediation and evidence against the scenario's design.
    static func checkVerdict(_ want: Expected.Attempt, _ a: Attempt, _ at: String, keyed: Bool = false) {
        let v = a.verdict
        if let c = want.confidence { #expect(v.confidence.level.rawValue == c, "\(at) confidence; rule \(v.rule): \(v.confidence.reason)") }
        if let code = want.clientCode {
            #expect(v.clientReport?.display == code.string, "\(at) client code; rule \(v.rule)")
        }
        if let key = want.remediation {
            let templates = Knowledge.remediation[key]
            #expect(templates != nil, "\(at) remediation \(key) is not a knowledge-base entry")
            if let templates {
                // With the key log the server's stated reason adds its own step first.
                let steps = keyed && v.remediation.count > templates.count
                    ? Array(v.remediation.dropFirst(v.remediation.count - templates.count)) : v.remediation
                #expect(steps.count == templates.count, "\(at) remediation: \(v.remediation.count) steps, \(key) has \(templates.count)")
                for (step, template) in zip(steps, templates) {
                    #expect(fills(template, step), "\(at) remediation step is not from \(key): \(step)")
                }
            }
        }
        if let names = want.evidence {
            let frames = Set(v.evidence.compactMap(\.frame))
            for name in names {
                let f = want.keyFrames[name]
                #expect(f.map(frames.contains) == true, "\(at) evidence lacks the \(name) frame \(f.map(String.init) ?? "?"): \(frames.sorted())")
            }
        }
        // Under TLS 1.3 the certificate is encrypted: the expected file has no key frame for
        // it, and without keys nothing of it is read.
        if want.details?["tls_version"]?.string == "TLS 1.3" {
            #expect(want.keyFrames["certificate"] == nil, "\(at): a TLS 1.3 certificate key frame")
            if !keyed { #expect(a.facts.rdp.tls?.certificates.isEmpty != false, "\(at): TLS 1.3 certificates read without keys") }
        }
    }

    /// Whether `text` is `template` with each `{placeholder}` filled (by anything, or itself).
    static func fills(_ template: String, _ text: String) -> Bool {
        var pattern = "^"
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}"),
              rest[rest.index(after: open)..<close].allSatisfy({ $0.isLetter || $0 == "_" }), close > rest.index(after: open)
        {
            pattern += NSRegularExpression.escapedPattern(for: String(rest[..<open])) + ".+?"
            rest = rest[rest.index(after: close)...]
        }
        pattern += NSRegularExpression.escapedPattern(for: String(rest)) + "$"
        return text.range(of: pattern, options: .regularExpression) != nil
    }

    static func expectedPorts(_ e: Expected) -> [UInt16] {
        var ports: [UInt16] = [3389]
        for a in e.attempts where !ports.contains(UInt16(a.serverPort)) { ports.append(UInt16(a.serverPort)) }
        return ports
    }

    static func checkDetails(_ d: [String: JSONValue], _ a: Attempt, _ at: String) {
        let r = a.facts.rdp
        let t = a.facts.tcp
        if let v = d["negotiation_failure"]?.string {
            #expect(r.connectionConfirm?.failure?.name == v, "\(at) negotiation failure")
        }
        if let v = d["requested_protocols"]?.int {
            #expect(r.connectionRequest?.requestedProtocols?.rawValue == UInt32(v), "\(at) requested protocols")
        }
        if let v = d["selected_protocol"]?.int {
            #expect(r.connectionConfirm?.selectedProtocol?.rawValue == UInt32(v), "\(at) selected protocol")
        }
        if let alert = d["tls_alert"] {
            let got = r.tls?.alerts.first
            if let desc = alert["description"]?.int { #expect(got?.description.map(Int.init) == desc, "\(at) alert description") }
            if let level = alert["level"]?.int { #expect(got?.level.map(Int.init) == level, "\(at) alert level") }
            if let sender = alert["sender"]?.string { #expect(got?.from.rawValue == sender, "\(at) alert sender") }
        }
        if let v = d["tls_version"]?.string, let sh = r.tls?.serverHello {
            #expect(TLSVersion(rawValue: sh.version).name == v, "\(at) TLS version")
        }
        if let icmp = d["icmp"] {
            let got = t.icmp.first
            if let type = icmp["type"]?.int { #expect(got.map { Int($0.type) } == type, "\(at) ICMP type") }
            if let code = icmp["code"]?.int { #expect(got.map { Int($0.code) } == code, "\(at) ICMP code") }
            if let from = icmp["from"]?.string { #expect(got?.reporter.description == from, "\(at) ICMP reporter") }
        }
        if let dns = d["dns"] {
            if let name = dns["name"]?.string { #expect(a.facts.dns.last?.name == name, "\(at) DNS name") }
            if let address = dns["address"]?.string { #expect(a.facts.dns.last?.address.description == address, "\(at) DNS address") }
        }
        if let proxy = d["proxy"] {
            #expect(r.proxy?.kind.rawValue.hasPrefix(proxy["kind"]?.string ?? "?") == true, "\(at) proxy kind: \(String(describing: r.proxy?.kind))")
            #expect(r.proxy?.request?.target == proxy["target"]?.string, "\(at) proxy target")
            #expect(r.proxy?.reply?.code == proxy["reply"]?.int, "\(at) proxy reply")
        } else {
            #expect(r.proxy == nil, "\(at): a proxy preamble the scenario did not make")
        }
        if let ttl = d["rst_ttl"]?.int { #expect(t.resets.first.map { Int($0.ttl) } == ttl, "\(at) RST TTL") }
        if let ttl = d["server_ttl"]?.int {
            #expect(t.serverSide.ttlMin.map(Int.init) == ttl || t.resets.first?.sameSideTTLMin.map(Int.init) == ttl, "\(at) server TTL")
        }
    }
}
