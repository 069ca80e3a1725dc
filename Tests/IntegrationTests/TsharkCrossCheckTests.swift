import Foundation
import Testing
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// tshark as an independent check of what we decode, on every committed capture and on the
/// public ones: the same TCP sessions with the same frame and byte counts, and the same
/// negotiation codes, TLS versions and alerts.
enum Tshark {
    static let path = Run.tool("tshark")

    struct Conversation {
        var a: String
        var b: String
        /// Frames and bytes towards `a` (tshark's `<-`) and towards `b` (`->`).
        var framesToA: Int
        var bytesToA: Bytes
        var framesToB: Int
        var bytesToB: Bytes
    }

    /// tshark prints small sizes exactly (`272 bytes`) and large ones truncated to the unit
    /// (`50 kB` for 50655 bytes).
    struct Bytes {
        var value: Int64
        var unit: Int64

        func matches(_ n: Int64) -> Bool { n >= value && n < value + unit }
    }

    static func conversations(_ file: String) throws -> [Conversation] {
        guard let path else { return [] }
        let r = try Run.program(path, ["-r", file, "-q", "-z", "conv,tcp"])
        var out: [Conversation] = []
        for line in r.stdout.split(separator: "\n") where line.contains("<->") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            // A <-> B framesToA n unit framesToB n unit total n unit start duration
            guard f.count >= 11, f[1] == "<->", let fa = Int(f[3]), let fb = Int(f[6]) else { continue }
            out.append(
                Conversation(
                    a: f[0], b: f[2], framesToA: fa, bytesToA: bytes(f[4], f[5]), framesToB: fb,
                    bytesToB: bytes(f[7], f[8])))
        }
        return out
    }

    static func bytes(_ n: String, _ unit: String) -> Bytes {
        let v = Double(n.replacingOccurrences(of: ",", with: "")) ?? -1
        switch unit {
        case "kB": return Bytes(value: Int64(v * 1000), unit: 1000)
        case "MB": return Bytes(value: Int64(v * 1_000_000), unit: 1_000_000)
        case "GB": return Bytes(value: Int64(v * 1_000_000_000), unit: 1_000_000_000)
        default: return Bytes(value: Int64(v), unit: 1)
        }
    }

    /// One row per frame with the RDP and TLS fields we cross-check.
    static func fields(_ file: String, decodeTLSOn ports: [UInt16], _ fields: [String], filter: String) throws -> [[String]] {
        guard let path else { return [] }
        var args = ["-r", file]
        for p in ports { args += ["-d", "tcp.port==\(p),tls"] }
        args += ["-Y", filter, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
        for f in fields { args += ["-e", f] }
        let r = try Run.program(path, args)
        return r.stdout.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }
}

/// Endpoints as tshark's conversation table writes them (`addr:port`, IPv6 unbracketed).
func tsharkName(_ e: Endpoint) -> String { "\(e.address):\(e.port)" }

@Suite(.enabled(if: Tshark.path != nil, "tshark is not installed (apt-get install tshark)"))
struct TsharkCrossCheckTests {
    static var allCaptures: [String] { Repo.committedCaptures + (Repo.publicCaptureFiles ?? []) }

    @Test(arguments: allCaptures)
    func sessionsFramesAndBytes(_ file: String) throws {
        let ours = analyze(file, ports: [3389])
        let theirs = try Tshark.conversations(file)
        // Every RDP-port conversation tshark sees is one of ours (or several attempts on one 4-tuple).
        for c in theirs where c.a.hasSuffix(":3389") || c.b.hasSuffix(":3389") {
            let mine = ours.attempts.filter { Set([tsharkName($0.facts.tcp.client), tsharkName($0.facts.tcp.server)]) == Set([c.a, c.b]) }
            #expect(!mine.isEmpty, "\(file): tshark conversation \(c.a) <-> \(c.b) not found")
            guard !mine.isEmpty else { continue }
            // tshark's left side is whichever it saw first; add up our attempts on the same 4-tuple.
            func sideFrames(_ endpoint: String) -> (Int, Int64) {
                var frames = 0
                var bytes: Int64 = 0
                for a in mine {
                    let t = a.facts.tcp
                    // Frames towards `endpoint` are those sent by the other side.
                    let sender = tsharkName(t.client) == endpoint ? t.serverSide : t.clientSide
                    frames += sender.frames
                    bytes += sender.frameBytes
                }
                return (frames, bytes)
            }
            let toA = sideFrames(c.a)
            let toB = sideFrames(c.b)
            #expect(toA.0 == c.framesToA, "\(file) \(c.a) <-> \(c.b): frames towards \(c.a)")
            #expect(toB.0 == c.framesToB, "\(file) \(c.a) <-> \(c.b): frames towards \(c.b)")
            #expect(c.bytesToA.matches(toA.1), "\(file) \(c.a) <-> \(c.b): bytes towards \(c.a): ours \(toA.1), tshark \(c.bytesToA.value)")
            #expect(c.bytesToB.matches(toB.1), "\(file) \(c.a) <-> \(c.b): bytes towards \(c.b): ours \(toB.1), tshark \(c.bytesToB.value)")
        }
        // And every attempt of ours is a conversation tshark sees.
        let pairs = Set(theirs.map { [$0.a, $0.b].sorted().joined(separator: " ") })
        for a in ours.attempts {
            let key = [tsharkName(a.facts.tcp.client), tsharkName(a.facts.tcp.server)].sorted().joined(separator: " ")
            #expect(pairs.contains(key), "\(file): our attempt \(key) is not a tshark conversation")
        }
    }

    /// Negotiation codes from tshark's RDP dissector against ours, frame by frame.
    @Test(arguments: allCaptures)
    func negotiation(_ file: String) throws {
        let ours = analyze(file)
        let rows = try Tshark.fields(
            file, decodeTLSOn: [],
            ["frame.number", "rdp.neg_type", "rdp.negReq.requestedProtocols", "rdp.negReq.selectedProtocol", "rdp.negFailure.failureCode"],
            filter: "rdp.neg_type")
        var byFrame: [Int: [String]] = [:]
        for r in rows where r.count >= 5 { if let f = Int(r[0]) { byFrame[f] = r } }
        for a in ours.attempts {
            let rdp = a.facts.rdp
            if let req = rdp.connectionRequest, req.hasNegotiationRequest, let row = byFrame[req.at.frame] {
                #expect(row[1] == "0x01", "\(file) frame \(req.at.frame): negotiation type")
                #expect(parseNumber(row[2]) == req.requestedProtocols?.rawValue, "\(file) frame \(req.at.frame): requested protocols")
            }
            if let cc = rdp.connectionConfirm, let row = byFrame[cc.at.frame] {
                if let failure = cc.failure {
                    #expect(row[1] == "0x03", "\(file) frame \(cc.at.frame): failure type")
                    #expect(parseNumber(row[4]) == failure.rawValue, "\(file) frame \(cc.at.frame): failure code")
                } else if let sel = cc.selectedProtocol {
                    #expect(row[1] == "0x02", "\(file) frame \(cc.at.frame): response type")
                    #expect(parseNumber(row[3]) == sel.rawValue, "\(file) frame \(cc.at.frame): selected protocol")
                }
            }
        }
        // Every negotiation tshark decoded is one we decoded too.
        let ourFrames = Set(ours.attempts.flatMap { [$0.facts.rdp.connectionRequest?.at.frame, $0.facts.rdp.connectionConfirm?.at.frame].compactMap { $0 } })
        for f in byFrame.keys.sorted() { #expect(ourFrames.contains(f), "\(file): tshark decoded a negotiation in frame \(f) that we did not") }
    }

    /// TLS handshake versions and alerts, with port 3389 decoded as TLS after X.224 (FACTS.md).
    @Test(arguments: allCaptures)
    func tls(_ file: String) throws {
        let ours = analyze(file)
        let rows = try Tshark.fields(
            file, decodeTLSOn: [3389],
            ["frame.number", "tls.handshake.type", "tls.handshake.version", "tls.handshake.extensions.supported_version", "tls.alert_message.level", "tls.alert_message.desc"],
            filter: "tls.handshake.type == 1 || tls.handshake.type == 2 || tls.alert_message")
        var byFrame: [Int: [String]] = [:]
        for r in rows where r.count >= 6 { if let f = Int(r[0]) { byFrame[f] = r } }
        for a in ours.attempts {
            guard let tls = a.facts.rdp.tls else { continue }
            if let ch = tls.clientHello, let row = byFrame[ch.at.frame], row[1].split(separator: ",").contains("1") {
                #expect(parseNumber(row[2]) == UInt32(ch.legacyVersion), "\(file) frame \(ch.at.frame): ClientHello version")
            }
            if let sh = tls.serverHello, let row = byFrame[sh.at.frame] {
                let negotiated = parseNumber(row[3]) ?? parseNumber(row[2])
                #expect(negotiated == UInt32(sh.version), "\(file) frame \(sh.at.frame): negotiated TLS version")
            }
            for alert in tls.alerts where !alert.encrypted {
                guard let row = byFrame[alert.at.frame] else {
                    Issue.record("\(file): tshark sees no alert in frame \(alert.at.frame)")
                    continue
                }
                #expect(parseNumber(row[4]) == alert.level.map(UInt32.init), "\(file) frame \(alert.at.frame): alert level")
                #expect(parseNumber(row[5]) == alert.description.map(UInt32.init), "\(file) frame \(alert.at.frame): alert description")
            }
        }
        // Every clear-text alert tshark decoded on an RDP session is one of ours.
        let ourAlerts = Set(ours.attempts.flatMap { $0.facts.rdp.tls?.alerts.filter { !$0.encrypted }.map(\.at.frame) ?? [] })
        let sessionFrames = ours.attempts.map { $0.facts.tcp.first.frame...$0.facts.tcp.last.frame }
        for (f, row) in byFrame where !row[5].isEmpty && sessionFrames.contains(where: { $0.contains(f) }) {
            #expect(ourAlerts.contains(f), "\(file): tshark decoded an alert in frame \(f) that we did not")
        }
    }
}

/// tshark prints numbers in hex (`0x00000003`) or decimal.
func parseNumber(_ s: String) -> UInt32? {
    let t = s.trimmingCharacters(in: .whitespaces)
    if t.hasPrefix("0x") { return UInt32(t.dropFirst(2), radix: 16) }
    return UInt32(t)
}
