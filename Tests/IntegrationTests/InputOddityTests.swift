import Foundation
import Testing

/// Inputs at the edges: empty standard input, capture times past 2038 or running backwards.
@Suite struct InputOddityTests: RunsTheTool {
    @Test func emptyStandardInputSaysEmpty() throws {
        let r = try Run.program(exe, ["analyze", "-"], stdin: "/dev/null")
        #expect(r.status == 2)
        #expect(r.stderr == "rdptriage: standard input: empty input (0 bytes)\n", "\(r.stderr)")
    }

    /// A capture written here byte by byte: raw IPv4 (link type 101), a SYN to port 3389 and
    /// its SYN-ACK, at the given record times (seconds).
    static func handshake(syn: UInt32, synAck: UInt32) -> [UInt8] {
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
        let synFrame: [UInt8] = [
            0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 10, 198, 51, 100, 20,
            0xc3, 0x50, 0x0d, 0x3d, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]
        let synAckFrame: [UInt8] = [
            0x45, 0, 0, 40, 0, 2, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 20, 192, 0, 2, 10,
            0x0d, 0x3d, 0xc3, 0x50, 0, 0, 0x03, 0xe8, 0, 0, 0, 2, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
        ]
        var out = le32(0xa1b2_c3d4) + le16(2) + le16(4) + le32(0) + le32(0) + le32(65535) + le32(101)
        for (sec, frame) in [(syn, synFrame), (synAck, synAckFrame)] {
            out += le32(sec) + le32(0) + le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame
        }
        return out
    }

    /// pcap seconds are unsigned: 0x84000000 is 2040-03-05T20:35:12Z (tshark agrees), not 1904.
    @Test func timesPast2038() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/2040.pcap"
        try Data(Self.handshake(syn: 0x8400_0000, synAck: 0x8400_0001)).write(to: URL(fileURLWithPath: path))
        let r = try Run.program(exe, ["analyze", "--format", "json", path])
        #expect(r.stdout.contains("\"2040-03-05T20:35:12.000000000Z\""), "\(r.stdout)")
        #expect(!r.stdout.contains("\"1904-"))
    }

    /// A clock that went back between SYN and SYN-ACK: no sentence says "after -1000.000 s".
    @Test func timeGoingBackwardsIsAClockProblem() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/backwards.pcap"
        try Data(Self.handshake(syn: 1_800_001_000, synAck: 1_800_000_000)).write(to: URL(fileURLWithPath: path))
        for format in ["text", "markdown"] {
            let r = try Run.program(exe, ["analyze", "--format", format, "--color", "never", path])
            #expect(r.stdout.contains("SYN-ACK after an unknown time (the capture's clock went back 1000.000 s)"), "\(r.stdout)")
            #expect(!r.stdout.contains("after -"), "\(r.stdout)")
        }
    }
}
