import Foundation
import TestSupport
import Testing
import TriageCapture
import TriageDiagnosis
import TriageEngine
import TriageFlows

/// pcapng files whose interfaces have different link types, made by Wireshark's own tools from
/// committed captures: every frame is analysed, each attempt gets the verdict it gets when its
/// capture is analysed alone, and frame numbers are tshark's.
@Suite(
    .enabled(
        if: Prerequisite.runs(Run.tool("mergecap") != nil && Run.tool("editcap") != nil && Run.tool("tshark") != nil),
        "mergecap, editcap or tshark is not installed (apt-get install tshark)"))
struct MixedLinkTypeTests {
    let dir = NSTemporaryDirectory() + "rdptriage-mixed-" + UUID().uuidString

    init() throws { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }

    func tool(_ name: String, _ args: [String]) throws {
        let path = try #require(Run.tool(name), "missing prerequisite: \(name) (apt-get install tshark)")
        let r = try Run.program(path, args)
        try #require(r.status == 0, "\(name) \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
    }

    /// An Ethernet capture as raw IP: the 14-byte Ethernet header cut off, the link type relabelled.
    func rawIP(_ name: String) throws -> String {
        let out = dir + "/" + name + "-rawip.pcap"
        try tool("editcap", ["-C", "14", "-T", "rawip", Repo.captures + "/" + name + ".pcap", out])
        return out
    }

    /// tshark's number and time (ns since the epoch) of every frame.
    func tsharkFrames(_ path: String) throws -> [Int: Int64] {
        let tshark = try #require(Run.tool("tshark"))
        let r = try Run.program(tshark, ["-r", path, "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch"])
        try #require(r.status == 0, "tshark exited \(r.status): \(r.stderr)")
        var out: [Int: Int64] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t")
            try #require(f.count == 2, "tshark line \(line)")
            let parts = f[1].split(separator: ".")
            let secs = try #require(Int64(parts[0]))
            let frac = parts.count > 1 ? String(parts[1]).padding(toLength: 9, withPad: "0", startingAt: 0) : "0"
            out[try #require(Int(f[0]))] = secs * 1_000_000_000 + (try #require(Int64(frac)))
        }
        return out
    }

    /// What an attempt must keep from one file to the other: its verdict, and the times of its
    /// evidence (frame numbers change when files are merged).
    struct Outcome: Hashable {
        var client: String
        var label: String
        var cause: String
        var stage: String
        var rule: String
        var evidenceTimes: [Int64?]
        init(_ a: Attempt) {
            client = "\(a.facts.tcp.client)"
            label = a.verdict.label.rawValue
            cause = a.verdict.cause.rawValue
            stage = a.verdict.stage.rawValue
            rule = a.verdict.rule
            evidenceTimes = a.verdict.evidence.map { $0.time?.nanoseconds }
        }
    }

    func check(inputs: [String], merged: String) throws {
        let mixed = analyze(merged)
        let summary = try #require(mixed.summaries.first)
        #expect(summary.error == nil, "\(summary.error?.description ?? "")")
        let tshark = try tsharkFrames(merged)
        #expect(summary.stats.frames == tshark.count, "every frame tshark reads is analysed")
        #expect(summary.stats.notIP == 0 && summary.stats.undecodable == 0)
        var alone: [Outcome] = []
        for input in inputs {
            let c = analyze(input)
            #expect(c.summaries.first?.error == nil)
            alone += c.attempts.map(Outcome.init)
        }
        #expect(!alone.isEmpty)
        #expect(Set(mixed.attempts.map(Outcome.init)) == Set(alone))
        #expect(mixed.attempts.count == alone.count)
        // Each evidence frame is the frame tshark gives that number: the same time.
        for a in mixed.attempts {
            for e in a.verdict.evidence {
                guard let frame = e.frame, let time = e.time else { continue }
                #expect(tshark[frame] == time.nanoseconds, "frame \(frame): \(e.what)")
            }
        }
    }

    @Test func ethernetAndRawIPMergedByTime() throws {
        let raw = try rawIP("neg-ssl-required")
        let merged = dir + "/mixed.pcapng"
        try tool("mergecap", ["-F", "pcapng", "-w", merged, Repo.captures + "/rst-refused.pcap", raw])
        try check(inputs: [Repo.captures + "/rst-refused.pcap", raw], merged: merged)
    }

    /// Concatenated (`-a`), so one interface's frames come after the other's, and three inputs
    /// with the raw-IP interface in the middle.
    @Test func threeInputsConcatenated() throws {
        let raw = try rawIP("success-tls")
        let merged = dir + "/mixed3.pcapng"
        let inputs = [Repo.captures + "/syn-dropped.pcap", raw, Repo.captures + "/reset-injected.pcap"]
        try tool("mergecap", ["-a", "-F", "pcapng", "-w", merged] + inputs)
        try check(inputs: inputs, merged: merged)
    }

    /// The command line says so too: exit code 1 (failures found), no error line, and a BPF
    /// filter applies to both link types.
    @Test func commandLineAndFilter() throws {
        let raw = try rawIP("neg-ssl-required")
        let merged = dir + "/mixed-cli.pcapng"
        try tool("mergecap", ["-F", "pcapng", "-w", merged, Repo.captures + "/rst-refused.pcap", raw])
        let r = try Run.program(Repo.executable, ["analyze", "--format", "json", "--schema", "1", merged])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        #expect(r.stdout.contains("\"negotiation-failure\"") && r.stdout.contains("\"rst-refused\""))
        #expect(r.stdout.contains("\"link_type\": \"Ethernet + raw IP\""))
        let onlyOne = try Run.program(
            Repo.executable, ["analyze", "--format", "json", "--schema", "1", "--filter", "tcp port 60464", merged])
        #expect(onlyOne.stdout.contains("\"negotiation-failure\"") && !onlyOne.stdout.contains("\"rst-refused\""))
        #expect(onlyOne.stdout.contains("\"filtered_out\": 4"), "\(onlyOne.stdout)")
        let stdin = try Run.program(Repo.executable, ["analyze", "-"], stdin: merged)
        #expect(stdin.status == 1 && stdin.stdout.contains("3 failed; 14 frames read"), "\(stdin.stdout)\(stdin.stderr)")
    }

    /// Each exported pcap takes its attempt's link type, and tshark reads the same frames in it.
    @Test func exportKeepsEachAttemptsLinkType() throws {
        let raw = try rawIP("neg-ssl-required")
        let merged = dir + "/mixed-export.pcapng"
        try tool("mergecap", ["-F", "pcapng", "-w", merged, Repo.captures + "/rst-refused.pcap", raw])
        let out = dir + "/export"
        let r = try Run.program(Repo.executable, ["analyze", "--export", out, merged])
        #expect(r.status == 1, "\(r.stderr)")
        let pcaps = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".pcap") }.sorted()
        #expect(pcaps.count == 3, "\(pcaps)")
        let tshark = try #require(Run.tool("tshark"))
        for name in pcaps {
            let t = try Run.program(tshark, ["-r", out + "/" + name, "-T", "fields", "-e", "frame.encap_type", "-e", "tcp.dstport"])
            let rows = t.stdout.split(separator: "\n").map { $0.split(separator: "\t") }
            // Wiretap's encapsulations: 1 Ethernet, 7 raw IP.
            let encap = name.contains("negotiation-failure") ? "7" : "1"
            #expect(!rows.isEmpty && rows.allSatisfy { $0.first.map(String.init) == encap }, "\(name): \(t.stdout)")
        }
    }
}
