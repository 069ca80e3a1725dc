import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A SYN flood or scan in a file: memory and report stay bounded, and the summary is still
/// right. The capture is written here byte by byte, so the expected figures come from how it
/// was made: `count` SYNs to 198.51.100.20:3389 from 200 clients (192.0.2.1-200), one every
/// microsecond, none answered.
@Suite(.serialized) struct FloodTests {
    static func writeFlood(_ path: String, count: Int, clients: Int = 200) throws {
        var out = [UInt8]()
        out.reserveCapacity(24 + count * 56)
        func le32(_ v: UInt32) { out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        func le16(_ v: UInt16) { out += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(101)  // raw IP
        for i in 0..<count {
            let us = UInt32(i)
            le32(1_700_000_000 + us / 1_000_000); le32(us % 1_000_000); le32(40); le32(40)
            let port = UInt16(1024 + (i / clients) % 60_000)
            let seq = UInt32(truncatingIfNeeded: i &* 7919)
            let id = UInt16(truncatingIfNeeded: i)
            out += [0x45, 0, 0, 40, UInt8(id >> 8), UInt8(id & 0xFF), 0x40, 0, 64, 6, 0, 0]
            out += [192, 0, 2, UInt8(1 + i % clients), 198, 51, 100, 20]
            out += [UInt8(port >> 8), UInt8(port & 0xFF), 0x0D, 0x3D]
            out += [UInt8(seq >> 24), UInt8(seq >> 16 & 0xFF), UInt8(seq >> 8 & 0xFF), UInt8(seq & 0xFF), 0, 0, 0, 0]
            out += [0x50, 0x02, 0xFA, 0xF0, 0, 0, 0, 0]
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    /// `count` connections on random server ports, each a SYN and an X.224 Connection Request
    /// (found as RDP by its first bytes), never answered.
    static func writeRequestsOnRandomPorts(_ path: String, count: Int) throws {
        var out = [UInt8]()
        func le32(_ v: UInt32) { out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        func le16(_ v: UInt16) { out += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(101)
        let request: [UInt8] = [0x03, 0x00, 0x00, 0x13, 0x0E, 0xE0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x08, 0x00, 0x03, 0, 0, 0]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let serverPort = UInt16(4000 + (state >> 33) % 60_000)
            let clientPort = UInt16(1024 + i % 60_000)
            for (k, payload) in [[UInt8](), request].enumerated() {
                let us = UInt32(2 * i + k)
                let total = 40 + payload.count
                le32(1_700_000_000 + us / 1_000_000); le32(us % 1_000_000); le32(UInt32(total)); le32(UInt32(total))
                let seq = UInt32(truncatingIfNeeded: i &* 7919) &+ UInt32(k)
                out += [0x45, 0, 0, UInt8(total), 0, 0, 0x40, 0, 64, 6, 0, 0]
                out += [192, 0, 2, UInt8(1 + i % 200), 198, 51, 100, 20]
                out += [UInt8(clientPort >> 8), UInt8(clientPort & 0xFF), UInt8(serverPort >> 8), UInt8(serverPort & 0xFF)]
                out += [UInt8(seq >> 24), UInt8(seq >> 16 & 0xFF), UInt8(seq >> 8 & 0xFF), UInt8(seq & 0xFF), 0, 0, 0, 0]
                out += [0x50, k == 0 ? 0x02 : 0x18, 0xFA, 0xF0, 0, 0, 0, 0] + payload
            }
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    /// Runs rdptriage as a child and returns its exit status and peak resident memory (KiB),
    /// from `wait4`: the child's own figure, not the test runner's other children's.
    static func runMeasured(_ args: [String]) throws -> (status: Int32, maxRSSKiB: Int) {
        var pid: pid_t = 0
        let argv = ([Repo.executable] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let rc = posix_spawn(&pid, Repo.executable, &actions, nil, argv, environ)
        try #require(rc == 0, "posix_spawn: \(rc)")
        var status: Int32 = 0
        var usage = rusage()
        try #require(wait4(pid, &status, 0, &usage) == pid)
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : -1, Int(usage.ru_maxrss))
    }

    /// One million SYNs (issue 12: 3.7 GB and a 1.5 GB report before the limits): peak memory
    /// under 256 MiB with the default limits, a report of a few hundred kilobytes, and the
    /// right summary.
    @Test(.timeLimit(.minutes(10))) func millionSYNsInBoundedMemory() throws {
        let dir = NSTemporaryDirectory() + "rdptriage-flood-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcap = dir + "/flood.pcap"
        let report = dir + "/report.txt"
        try Self.writeFlood(pcap, count: 1_000_000)
        let r = try Self.runMeasured(["analyze", "-o", report, pcap])
        #expect(r.status == 1, "failures found")
        #expect(r.maxRSSKiB < 256 * 1024, "peak resident memory \(r.maxRSSKiB) KiB")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: report)[.size] as? Int)
        #expect(size < 1_000_000, "report of \(size) bytes")
        let text = try String(contentsOfFile: report, encoding: .utf8)
        #expect(text.contains("  1000000 RDP attempts: 1000000 syn-unanswered; 1000000 failed; 1000000 frames read."))
        #expect(text.contains("  1000000 attempts from 200 clients, 0 answered by a server; 999980 not shown one by one (--max-repeats 20)."))
        #expect(text.contains(
            "    198.51.100.20:3389: 999980 more syn-unanswered attempts (network-blockade, tcp-handshake, ended by none), #21–#1000000, from 200 clients."))
        // A story per client, each naming six of its 5,000 attempts.
        #expect(text.contains("192.0.2.7 never reached 198.51.100.20:3389 in 5000 attempts: #7 syn-unanswered, #207 syn-unanswered"))
        #expect(text.components(separatedBy: " never reached ").count - 1 == 200)
    }

    /// X.224 requests on random ports (issue 12: 200,000 took about 1 GB): each is an attempt,
    /// found by its first bytes, and memory stays bounded by the session limit.
    @Test(.timeLimit(.minutes(5))) func requestsOnRandomPortsInBoundedMemory() throws {
        let dir = NSTemporaryDirectory() + "rdptriage-flood-x224-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcap = dir + "/requests.pcap"
        let report = dir + "/report.txt"
        try Self.writeRequestsOnRandomPorts(pcap, count: 100_000)
        let r = try Self.runMeasured(["analyze", "--max-sessions", "2000", "-o", report, pcap])
        #expect(r.status == 1 || r.status == 0, "exit \(r.status)")
        #expect(r.maxRSSKiB < 256 * 1024, "peak resident memory \(r.maxRSSKiB) KiB")
        let text = try String(contentsOfFile: report, encoding: .utf8)
        #expect(text.contains("  100000 RDP attempts"), "\(text.suffix(600))")
    }

    /// The same flood in JSON: the attempts shown and the counted ones add up.
    @Test func repeatedVerdictsInJSON() throws {
        let dir = NSTemporaryDirectory() + "rdptriage-flood-json-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcap = dir + "/flood.pcap"
        try Self.writeFlood(pcap, count: 5_000, clients: 50)
        let r = try Run.program(Repo.executable, ["analyze", "--format", "json", "--schema", "1", "--max-repeats", "7", pcap])
        #expect(r.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let input = try #require((doc["inputs"] as? [[String: Any]])?.first)
        #expect((input["attempts"] as? [Any])?.count == 7)
        #expect(input["attempts_not_shown"] as? Int == 4_993)
        #expect(input["clients"] as? Int == 50)
        #expect(input["attempts_answered"] as? Int == 0)
        let repeated = try #require((input["repeated_verdicts"] as? [[String: Any]])?.first)
        #expect(repeated["server"] as? String == "198.51.100.20:3389")
        #expect(repeated["label"] as? String == "syn-unanswered")
        #expect(repeated["not_shown"] as? Int == 4_993)
        #expect(repeated["first_not_shown"] as? Int == 8)
        #expect(repeated["last_not_shown"] as? Int == 5_000)
        #expect(repeated["clients"] as? Int == 50)
        // --max-repeats 0 shows every attempt.
        let all = try Run.program(Repo.executable, ["analyze", "--format", "json", "--schema", "1", "--max-repeats", "0", pcap])
        let allDoc = try #require(try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any])
        #expect(((allDoc["inputs"] as? [[String: Any]])?.first?["attempts"] as? [Any])?.count == 5_000)
    }
}
