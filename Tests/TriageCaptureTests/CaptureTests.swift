import Foundation
import Testing

@testable import TriageCapture

/// Writes capture files byte by byte, so every header field is under the test's control.
enum PcapWriter {
    static func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    static func be32(_ v: UInt32) -> [UInt8] { le32(v).reversed() }
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func be16(_ v: UInt16) -> [UInt8] { le16(v).reversed() }
    static func le64(_ v: UInt64) -> [UInt8] { le32(UInt32(v & 0xffff_ffff)) + le32(UInt32(v >> 32)) }

    /// Classic pcap. `nano` picks the nanosecond magic; `bigEndian` writes swapped headers.
    static func pcap(linkType: UInt32 = 101, snaplen: UInt32 = 65535, nano: Bool = false, bigEndian: Bool = false,
                     records: [(sec: UInt32, frac: UInt32, data: [UInt8], orig: Int?)]) -> [UInt8]
    {
        let w32 = bigEndian ? be32 : le32
        let w16 = bigEndian ? be16 : le16
        var out = w32(nano ? 0xa1b2_3c4d : 0xa1b2_c3d4) + w16(2) + w16(4) + w32(0) + w32(0) + w32(snaplen) + w32(linkType)
        for r in records {
            out += w32(r.sec) + w32(r.frac) + w32(UInt32(r.data.count)) + w32(UInt32(r.orig ?? r.data.count)) + r.data
        }
        return out
    }

    /// Minimal pcapng: section header, one interface, enhanced packet blocks (microseconds).
    static func pcapng(linkType: UInt16 = 101, packets: [(ts: UInt64, data: [UInt8])]) -> [UInt8] {
        var out = le32(0x0A0D_0D0A) + le32(28) + le32(0x1A2B_3C4D) + le16(1) + le16(0) + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + le32(28)
        out += le32(1) + le32(20) + le16(linkType) + le16(0) + le32(0) + le32(20)
        for p in packets {
            let padded = p.data + [UInt8](repeating: 0, count: (4 - p.data.count % 4) % 4)
            let len = UInt32(32 + padded.count)
            out += le32(6) + le32(len) + le32(0) + le32(UInt32(p.ts >> 32)) + le32(UInt32(p.ts & 0xffff_ffff))
            out += le32(UInt32(p.data.count)) + le32(UInt32(p.data.count)) + padded + le32(len)
        }
        return out
    }

    /// A raw IPv4/TCP SYN to port 3389.
    static let syn: [UInt8] = [
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 10, 198, 51, 100, 20,
        0xc3, 0x50, 0x0d, 0x3d, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]
}

final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "rdptriage-test-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}

func readAll(_ path: String, filter: String? = nil) throws(CaptureError) -> [(Int, Timestamp, [UInt8], Int)] {
    let s = try PcapFileSource(path: path, filter: filter)
    var out: [(Int, Timestamp, [UInt8], Int)] = []
    while let p = try s.next() { out.append((p.frameNumber, p.timestamp, Array(p.bytes), p.originalLength)) }
    return out
}

func expectError(_ path: String, _ kind: CaptureError.Kind, offset: Int64? = nil, containing text: String? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try readAll(path)
        Issue.record("expected \(kind) for \(path)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.kind == kind, sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix(path + ": "), sourceLocation: sourceLocation)
        #expect(!error.description.contains("\n"), sourceLocation: sourceLocation)
        if let offset { #expect(error.byteOffset == offset, sourceLocation: sourceLocation) }
        if let text { #expect(error.description.contains(text), "\(error.description)", sourceLocation: sourceLocation) }
    }
}

@Suite struct CaptureTests {
    @Test func classicPcapMicrosecondsLittleEndian() throws {
        let dir = TempDir()
        let f = dir.write("a.pcap", PcapWriter.pcap(records: [(1_700_000_000, 250_000, PcapWriter.syn, nil)]))
        let s = try PcapFileSource(path: f)
        #expect(s.linkType == .raw)
        #expect(s.isClassicPcap)
        let packets = try readAll(f)
        #expect(packets.count == 1)
        #expect(packets[0].0 == 1)
        #expect(packets[0].1 == Timestamp(seconds: 1_700_000_000, nanos: 250_000_000))
        #expect(packets[0].2 == PcapWriter.syn)
    }

    @Test func nanosecondAndBigEndian() throws {
        let dir = TempDir()
        let f = dir.write("b.pcap", PcapWriter.pcap(nano: true, bigEndian: true, records: [(5, 123_456_789, PcapWriter.syn, nil)]))
        let packets = try readAll(f)
        #expect(packets.first?.1 == Timestamp(seconds: 5, nanos: 123_456_789))
    }

    @Test func pcapng() throws {
        let dir = TempDir()
        let f = dir.write("c.pcapng", PcapWriter.pcapng(packets: [(1_700_000_000_000_001, PcapWriter.syn), (1_700_000_000_500_000, PcapWriter.syn)]))
        let s = try PcapFileSource(path: f)
        #expect(!s.isClassicPcap)
        let packets = try readAll(f)
        #expect(packets.count == 2)
        #expect(packets[1].0 == 2)
        #expect(packets[0].1 == Timestamp(seconds: 1_700_000_000, nanos: 1000))
    }

    @Test func snapshotLengthCutFramesKeepTheirOriginalLength() throws {
        let dir = TempDir()
        let f = dir.write("d.pcap", PcapWriter.pcap(snaplen: 30, records: [(1, 0, Array(PcapWriter.syn.prefix(30)), 40)]))
        let p = try readAll(f)
        #expect(p[0].2.count == 30)
        #expect(p[0].3 == 40)
    }

    @Test func filterSkipsFramesButKeepsTheirNumbers() throws {
        let dir = TempDir()
        var other = PcapWriter.syn
        other[23] = 80  // destination port 80
        let f = dir.write("e.pcap", PcapWriter.pcap(records: [(1, 0, other, nil), (2, 0, PcapWriter.syn, nil)]))
        let p = try readAll(f, filter: "tcp port 3389")
        #expect(p.count == 1)
        #expect(p[0].0 == 2)
    }

    @Test func badFilterIsAClearError() {
        let dir = TempDir()
        let f = dir.write("f.pcap", PcapWriter.pcap(records: []))
        #expect(throws: CaptureError.self) { try PcapFileSource(path: f, filter: "tcp port nonsense(") }
        do {
            _ = try PcapFileSource(path: f, filter: "tcp port nonsense(")
        } catch {
            #expect(error.kind == .badFilter)
        }
    }

    @Test func missingFile() { expectError("/nonexistent/x.pcap", .notFound, containing: "no such file") }

    @Test func directory() {
        let dir = TempDir()
        expectError(dir.path, .isDirectory, containing: "directory")
    }

    @Test func emptyFile() {
        let dir = TempDir()
        expectError(dir.write("empty.pcap", []), .empty, containing: "empty")
    }

    @Test func notACapture() {
        let dir = TempDir()
        expectError(dir.write("notes.txt", Array("hello, this is text\n".utf8)), .notACapture, offset: 0, containing: "looks like text")
        // gzip's magic: read as a compressed capture, which these six bytes only begin.
        expectError(dir.write("x.gz", [0x1f, 0x8b, 8, 0, 0, 0]), .truncated, containing: "gzip data cut short")
        expectError(dir.write("short", [0xd4, 0xc3]), .notACapture, offset: 0)
    }

    /// A pipe given by name (`analyze <(zcat f.pcap.gz)`) cannot be peeked at: an earlier
    /// check read its first bytes through a second descriptor and took them from libpcap.
    @Test func namedPipeReadsWholeAndStillNamesBadInput() throws {
        let dir = TempDir()
        let capture = PcapWriter.pcap(records: [(1, 0, PcapWriter.syn, nil), (2, 0, PcapWriter.syn, nil)])
        for (name, bytes) in [("good", capture), ("text", Array("hello, this is text\n".utf8))] {
            let fifo = dir.path + "/" + name + ".fifo"
            #expect(mkfifo(fifo, 0o600) == 0)
            let writer = Thread {
                // Opening blocks until the reader opens its end.
                let fd = open(fifo, O_WRONLY)
                if fd >= 0 {
                    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    close(fd)
                }
            }
            writer.start()
            if name == "good" {
                let packets = try readAll(fifo)
                #expect(packets.map(\.0) == [1, 2])
                #expect(packets.allSatisfy { $0.2 == PcapWriter.syn })
            } else {
                expectError(fifo, .notACapture, offset: 0)
            }
        }
    }

    @Test func headerCutShort() {
        let dir = TempDir()
        let full = PcapWriter.pcap(records: [])
        expectError(dir.write("h.pcap", Array(full.prefix(10))), .truncated, offset: 0)
    }

    @Test func fileCutMidRecordGivesTheOffsetAndKeepsEarlierFrames() throws {
        let dir = TempDir()
        let full = PcapWriter.pcap(records: [(1, 0, PcapWriter.syn, nil), (2, 0, PcapWriter.syn, nil)])
        // Cut inside the second record's data.
        let f = dir.write("cut.pcap", Array(full.prefix(full.count - 10)))
        let s = try PcapFileSource(path: f)
        #expect(try s.next() != nil)
        do {
            _ = try s.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .truncated)
            #expect(error.byteOffset == Int64(24 + 16 + PcapWriter.syn.count))
            #expect(error.description.contains("frame 2"))
        }
        // Cut inside a record header.
        expectError(dir.write("cut2.pcap", Array(full.prefix(24 + 16 + PcapWriter.syn.count + 5))), .truncated,
                    offset: Int64(24 + 16 + PcapWriter.syn.count))
    }

    @Test func absurdRecordLength() {
        let dir = TempDir()
        var bytes = PcapWriter.pcap(records: [(1, 0, PcapWriter.syn, nil)])
        bytes.replaceSubrange(32..<36, with: PcapWriter.le32(0x7fff_ffff))  // caplen
        expectError(dir.write("absurd.pcap", bytes), .corrupt, offset: 24)
    }

    @Test func unsupportedLinkType() {
        let dir = TempDir()
        expectError(dir.write("usb.pcap", PcapWriter.pcap(linkType: 189, records: [])), .unsupportedLinkType, containing: "189")
    }

    @Test func randomCorruptionNeverTraps() {
        let dir = TempDir()
        let base = PcapWriter.pcap(records: (0..<20).map { (UInt32($0), 0, PcapWriter.syn, nil) })
        var state: UInt64 = 99
        var read = 0
        var failed = 0
        for i in 0..<200 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var bytes = base
            for k in 0..<3 {
                let pos = Int((state >> (16 + UInt64(k) * 8)) % UInt64(bytes.count))
                bytes[pos] = UInt8(truncatingIfNeeded: state >> UInt64(k * 8))
            }
            // Every other file keeps its length, so that mutated headers are read, not only cuts.
            let length = i % 2 == 0 ? bytes.count : Int(state % UInt64(bytes.count + 1))
            let f = dir.write("r\(i).pcap", Array(bytes.prefix(length)))
            do {
                // What is read is numbered from 1 without gaps, no more frames than written,
                // none longer than the snapshot length.
                let packets = try readAll(f)
                read += 1
                #expect(packets.map(\.0) == Array(1..<(packets.count + 1)), "file \(i)")
                #expect(packets.count <= 20, "file \(i)")
                #expect(packets.allSatisfy { $0.2.count <= 65535 }, "file \(i)")
            } catch {
                failed += 1
                #expect(error.description.hasPrefix(f + ": "), "file \(i): \(error.description)")
                #expect(!error.description.contains("\n"), "file \(i)")
            }
        }
        #expect(read > 10 && failed > 10, "both outcomes are exercised: \(read) read, \(failed) failed")
    }
}

@Suite struct TimestampTests {
    @Test func iso8601RoundTrip() {
        let t = Timestamp(seconds: 1_764_071_025, nanos: 123_456_789)
        #expect(t.iso8601 == "2025-11-25T11:43:45.123456789Z")
        #expect(Timestamp(iso8601: t.iso8601) == t)
        #expect(Timestamp(seconds: 0, nanos: 0).iso8601 == "1970-01-01T00:00:00.000000000Z")
        #expect(Timestamp(iso8601: "2000-02-29T23:59:59Z") == Timestamp(seconds: 951_868_799, nanos: 0))
    }

    @Test func hostileSecondsSaturate() {
        #expect(Timestamp(seconds: Int64.max, nanos: 999).nanoseconds == Int64.max)
        _ = Timestamp(nanoseconds: Int64.min).iso8601
    }
}
