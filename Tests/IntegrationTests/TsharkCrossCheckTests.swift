import Foundation
import TestSupport
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

    /// Runs tshark and fails the test unless it exits 0 with nothing on standard error but
    /// its warning about running as root: a field or filter name this tshark version does not
    /// know is an error there, and must not turn into a comparison of nothing.
    static func run(_ args: [String]) throws -> String {
        let path = try #require(path, "missing prerequisite: tshark (apt-get install tshark)")
        let r = try Run.program(path, ["-n"] + args)
        let stderr = r.stderr.split(separator: "\n").filter {
            // Both are notes, not errors: capturing as root, and `-d tcp.port==N,tpkt` picking the
            // first of two TPKT dissectors (plain TCP and over TLS).
            !$0.hasPrefix("Running as user") && !$0.hasSuffix("Protocol \"tpkt\" matched 2 dissectors, first one will be used")
        }
        try #require(r.status == 0 && stderr.isEmpty, "tshark \(args.joined(separator: " ")) exited \(r.status): \(stderr.joined(separator: " | "))")
        return r.stdout
    }

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
        let stdout = try run(["-r", file, "-q", "-z", "conv,tcp"])
        var out: [Conversation] = []
        for line in stdout.split(separator: "\n") where line.contains("<->") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            // A <-> B framesToA n unit framesToB n unit total n unit start duration
            try #require(f.count >= 11 && f[1] == "<->", "unexpected tshark conversation line: \(line)")
            let fa = try #require(Int(f[3]), "\(line)")
            let fb = try #require(Int(f[6]), "\(line)")
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

    /// One row per frame matching `filter`, each field's occurrences joined by commas.
    /// RDP ports other than 3389 are decoded as TPKT (X.224), or as TLS with `tls`.
    /// Sequence analysis is off: with it on, tshark does not dissect a segment it takes for a
    /// retransmission, also when the first copy was never captured (the brute-force trace's
    /// requests); callers keep the first frame of each fact per TCP stream.
    static func fields(_ file: String, ports: [UInt16], tls: Bool, _ fields: [String], filter: String) throws -> [[String]] {
        var args = ["-r", file, "-o", "tcp.analyze_sequence_numbers:FALSE"]
        for p in ports where tls || p != 3389 { args += ["-d", "tcp.port==\(p),\(tls ? "tls" : "tpkt")"] }
        args += ["-Y", filter, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
        for f in fields { args += ["-e", f] }
        let rows = try run(args).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        for r in rows { try #require(r.count == fields.count, "tshark row \(r) for fields \(fields)") }
        return rows
    }
}

/// Endpoints as tshark's conversation table writes them (`addr:port`, IPv6 unbracketed).
func tsharkName(_ e: Endpoint) -> String { "\(e.address):\(e.port)" }

/// A fact decoded at one frame, as both sides can state it: compared as sets, both ways.
struct FrameFact: Hashable, Comparable, CustomStringConvertible {
    var frame: Int
    var what: String
    static func < (a: FrameFact, b: FrameFact) -> Bool { (a.frame, a.what) < (b.frame, b.what) }
    var description: String { "frame \(frame): \(what)" }
}

/// tshark's facts, the first frame of each kind per TCP stream (later copies are
/// retransmissions, which rdptriage counts but does not decode again).
struct FirstPerStream {
    private var seen: [String: FrameFact] = [:]

    /// `kind` names what can occur once per stream (e.g. "ServerHello"); `what` adds its values.
    mutating func add(stream: String, kind: String, frame: Int, what: String) {
        let key = stream + " " + kind
        if let old = seen[key], old.frame <= frame { return }
        seen[key] = FrameFact(frame: frame, what: what)
    }

    var facts: Set<FrameFact> { Set(seen.values) }
}

/// Reports what one side has and the other has not, in frame order.
func expectSameFacts(_ ours: Set<FrameFact>, _ theirs: Set<FrameFact>, _ file: String, _ kind: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    for f in theirs.subtracting(ours).sorted() {
        Issue.record("\(file): tshark decoded \(kind) \(f) that rdptriage did not", sourceLocation: sourceLocation)
    }
    for f in ours.subtracting(theirs).sorted() {
        Issue.record("\(file): rdptriage decoded \(kind) \(f) that tshark did not", sourceLocation: sourceLocation)
    }
}

/// The committed captures and the public ones, with the TCP ports RDP runs on in each (from
/// the expected files: the lab's non-standard-port scenario among them).
struct CaptureUnderTest: CustomTestStringConvertible, Sendable {
    var path: String
    var ports: [UInt16]
    var testDescription: String { (path as NSString).lastPathComponent }

    static var all: [CaptureUnderTest] {
        let committed = Repo.committedCaptures.map { path in
            let expected = try? Expected.load((path as NSString).deletingPathExtension + ".expected.json")
            return CaptureUnderTest(path: path, ports: expected.map(LabExpectationsTests.expectedPorts) ?? [3389])
        }
        // In CI a missing folder leaves an empty list here and fails `publicCapturesArePresent`.
        let published = (Repo.publicCaptureFiles ?? []).map { CaptureUnderTest(path: $0, ports: [3389]) }
        return committed + published
    }
}

@Suite(.enabled(if: Prerequisite.runs(Tshark.path != nil), "tshark is not installed (apt-get install tshark)"))
struct TsharkCrossCheckTests {
    /// The public captures join every cross-check below; without them (outside CI) only the
    /// committed ones are compared.
    @Test(.enabled(if: Prerequisite.runs(Repo.publicCaptureFiles != nil), "../shared/captures-public is absent: only committed captures cross-checked"))
    func publicCapturesArePresent() throws {
        let names = Set((Repo.publicCaptureFiles ?? []).map { String($0.dropFirst(Repo.publicCaptures.count + 1)) })
        for n in Prerequisite.publicCaptureNames { #expect(names.contains(n), "missing prerequisite: \(Repo.publicCaptures)/\(n)") }
    }

    /// Every conversation on an RDP port that tshark sees is one of ours (or several attempts
    /// on one 4-tuple), with the same frames and bytes each way; and every attempt of ours is
    /// a conversation tshark sees.
    @Test(arguments: CaptureUnderTest.all)
    func sessionsFramesAndBytes(_ capture: CaptureUnderTest) throws {
        let file = capture.path
        let ours = analyze(file, ports: capture.ports)
        let theirs = try Tshark.conversations(file)
        let rdpPorts = Set(capture.ports.map { ":\($0)" })
        func onRDPPort(_ c: Tshark.Conversation) -> Bool {
            rdpPorts.contains { c.a.hasSuffix($0) || c.b.hasSuffix($0) }
        }
        #expect(theirs.contains(where: onRDPPort), "\(file): tshark sees no conversation on \(capture.ports)")
        for c in theirs where onRDPPort(c) {
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
        let pairs = Set(theirs.map { [$0.a, $0.b].sorted().joined(separator: " ") })
        for a in ours.attempts {
            let key = [tsharkName(a.facts.tcp.client), tsharkName(a.facts.tcp.server)].sorted().joined(separator: " ")
            #expect(pairs.contains(key), "\(file): our attempt \(key) is not a tshark conversation")
        }
    }

    /// Negotiation codes from tshark's RDP dissector against ours: the same requests,
    /// responses and failures at the same frames, both ways.
    @Test(arguments: CaptureUnderTest.all)
    func negotiation(_ capture: CaptureUnderTest) throws {
        let file = capture.path
        let ours = analyze(file, ports: capture.ports)
        let rows = try Tshark.fields(
            file, ports: capture.ports, tls: false,
            ["frame.number", "tcp.stream", "rdp.neg_type", "rdp.negReq.requestedProtocols", "rdp.negReq.selectedProtocol",
             "rdp.negFailure.failureCode"],
            filter: "rdp.neg_type")
        var theirs = FirstPerStream()
        for r in rows {
            let frame = try #require(Int(r[0]))
            func value(_ s: String) -> String { parseNumber(s).map(String.init) ?? s }
            switch r[2] {
            case "0x01": theirs.add(stream: r[1], kind: "request", frame: frame, what: "request \(value(r[3]))")
            case "0x02": theirs.add(stream: r[1], kind: "answer", frame: frame, what: "response \(value(r[4]))")
            case "0x03": theirs.add(stream: r[1], kind: "answer", frame: frame, what: "failure \(value(r[5]))")
            default: Issue.record("\(file) frame \(frame): negotiation type \(r[2])")
            }
        }
        var mine = Set<FrameFact>()
        for a in ours.attempts {
            let rdp = a.facts.rdp
            if let req = rdp.connectionRequest, req.hasNegotiationRequest {
                mine.insert(FrameFact(frame: req.at.frame, what: "request \(req.requestedProtocols.map { String($0.rawValue) } ?? "?")"))
            }
            if let cc = rdp.connectionConfirm {
                if let failure = cc.failure {
                    mine.insert(FrameFact(frame: cc.at.frame, what: "failure \(failure.rawValue)"))
                } else if let sel = cc.selectedProtocol {
                    mine.insert(FrameFact(frame: cc.at.frame, what: "response \(sel.rawValue)"))
                }
            }
        }
        expectSameFacts(mine, theirs.facts, file, "negotiation")
    }

    /// TLS handshake versions and clear-text alerts on the RDP ports, decoded as TLS after
    /// X.224 (FACTS.md): the same ClientHellos, ServerHellos and alerts at the same frames,
    /// both ways.
    @Test(arguments: CaptureUnderTest.all)
    func tls(_ capture: CaptureUnderTest) throws {
        let file = capture.path
        let ours = analyze(file, ports: capture.ports)
        let rows = try Tshark.fields(
            file, ports: capture.ports, tls: true,
            ["frame.number", "tcp.stream", "tcp.srcport", "tcp.dstport", "tls.handshake.type", "tls.handshake.version",
             "tls.handshake.extensions.supported_version", "tls.alert_message.level", "tls.alert_message.desc"],
            filter: "tls.handshake.type == 1 || tls.handshake.type == 2 || tls.alert_message")
        var theirs = FirstPerStream()
        for r in rows {
            guard let src = UInt16(r[2]), let dst = UInt16(r[3]), capture.ports.contains(src) || capture.ports.contains(dst) else { continue }
            let frame = try #require(Int(r[0]))
            let stream = r[1]
            let types = r[4].split(separator: ",").map(String.init)
            let versions = r[5].split(separator: ",").compactMap { parseNumber(String($0)) }
            // Hello messages carry a version each, in the order of the handshake types.
            var helloIndex = 0
            for t in types where t == "1" || t == "2" {
                let legacy = helloIndex < versions.count ? versions[helloIndex] : nil
                helloIndex += 1
                if t == "1" {
                    theirs.add(stream: stream, kind: "ClientHello", frame: frame, what: "ClientHello \(legacy.map(String.init) ?? "?")")
                } else {
                    // A TLS 1.3 ServerHello names the version in supported_versions.
                    let negotiated = parseNumber(r[6].split(separator: ",").first.map(String.init) ?? "") ?? legacy
                    theirs.add(stream: stream, kind: "ServerHello", frame: frame, what: "ServerHello \(negotiated.map(String.init) ?? "?")")
                }
            }
            let levels = r[7].split(separator: ",").map(String.init)
            let descs = r[8].split(separator: ",").map(String.init)
            for (l, d) in zip(levels, descs) {
                let what = "alert \(parseNumber(l).map(String.init) ?? l)/\(parseNumber(d).map(String.init) ?? d)"
                theirs.add(stream: stream, kind: "alert from \(r[2]) " + what, frame: frame, what: what)
            }
        }
        var mine = Set<FrameFact>()
        for a in ours.attempts {
            guard let tls = a.facts.rdp.tls else { continue }
            if let ch = tls.clientHello { mine.insert(FrameFact(frame: ch.at.frame, what: "ClientHello \(ch.legacyVersion)")) }
            if let sh = tls.serverHello { mine.insert(FrameFact(frame: sh.at.frame, what: "ServerHello \(sh.version)")) }
            for alert in tls.alerts where !alert.encrypted {
                mine.insert(FrameFact(frame: alert.at.frame, what: "alert \(alert.level.map(String.init) ?? "?")/\(alert.description.map(String.init) ?? "?")"))
            }
        }
        expectSameFacts(mine, theirs.facts, file, "TLS")
    }
}

/// tshark prints numbers in hex (`0x00000003`) or decimal.
func parseNumber(_ s: String) -> UInt32? {
    let t = s.trimmingCharacters(in: .whitespaces)
    if t.hasPrefix("0x") { return UInt32(t.dropFirst(2), radix: 16) }
    return UInt32(t)
}
