import Foundation
import TestSupport
import Testing

@testable import TriageCapture

/// Writes pcapng block by block, in either byte order, so every field is under the test's control.
struct PcapngBuilder {
    var bigEndian = false
    var bytes: [UInt8] = []
    /// Where each block written so far starts.
    var offsets: [Int] = []

    func w32(_ v: UInt32) -> [UInt8] { bigEndian ? PcapWriter.be32(v) : PcapWriter.le32(v) }
    func w16(_ v: UInt16) -> [UInt8] { bigEndian ? PcapWriter.be16(v) : PcapWriter.le16(v) }
    static func padded(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }

    /// Any block: type, length, body (padded), length. Returns its offset.
    @discardableResult
    mutating func block(_ type: UInt32, _ body: [UInt8]) -> Int {
        let body = Self.padded(body)
        let length = UInt32(12 + body.count)
        offsets.append(bytes.count)
        bytes += w32(type) + w32(length) + body + w32(length)
        return offsets.last!
    }

    mutating func section(major: UInt16 = 1, minor: UInt16 = 0) {
        block(0x0A0D_0D0A, w32(0x1A2B_3C4D) + w16(major) + w16(minor) + [UInt8](repeating: 0xff, count: 8))
    }

    /// `options`: (code, value) pairs, ended by opt_endofopt.
    mutating func interface(linkType: UInt16, snapLength: UInt32 = 0, options: [(UInt16, [UInt8])] = []) {
        var body = w16(linkType) + w16(0) + w32(snapLength)
        if !options.isEmpty {
            for (code, value) in options { body += w16(code) + w16(UInt16(value.count)) + Self.padded(value) }
            body += w16(0) + w16(0)
        }
        block(1, body)
    }

    mutating func enhanced(interface: UInt32 = 0, ticks: UInt64, _ data: [UInt8], original: Int? = nil,
                           captured: UInt32? = nil) {
        block(
            6,
            w32(interface) + w32(UInt32(ticks >> 32)) + w32(UInt32(ticks & 0xffff_ffff))
                + w32(captured ?? UInt32(data.count)) + w32(UInt32(original ?? data.count)) + data)
    }

    mutating func simple(_ data: [UInt8], original: Int? = nil) { block(3, w32(UInt32(original ?? data.count)) + data) }

    /// The obsolete Packet Block (16-bit interface ID and drop count).
    mutating func obsolete(interface: UInt16 = 0, ticks: UInt64, _ data: [UInt8]) {
        block(
            2,
            w16(interface) + w16(0) + w32(UInt32(ticks >> 32)) + w32(UInt32(ticks & 0xffff_ffff))
                + w32(UInt32(data.count)) + w32(UInt32(data.count)) + data)
    }

    /// Overwrites 4 bytes at `offset` in this file's byte order.
    mutating func patch32(_ offset: Int, _ v: UInt32) { bytes.replaceSubrange(offset..<(offset + 4), with: w32(v)) }
}

/// An Ethernet frame carrying `PcapWriter.syn`.
let ethernetSYN: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00] + PcapWriter.syn

struct Read {
    var number: Int
    var time: Int64
    var linkType: LinkType
    var bytes: [UInt8]
    var original: Int
}

func readFrames(_ path: String, filter: String? = nil) throws(CaptureError) -> (frames: [Read], filteredOut: Int) {
    let s = try PcapFileSource(path: path, filter: filter)
    var out: [Read] = []
    while let p = try s.next() {
        out.append(Read(number: p.frameNumber, time: p.timestamp.nanoseconds, linkType: p.linkType, bytes: Array(p.bytes), original: p.originalLength))
    }
    return (out, s.filteredOut)
}

/// Reads as far as it can: the frames before an error, and the error.
func readUntilError(_ path: String) -> (frames: [Read], error: CaptureError?) {
    var out: [Read] = []
    do {
        let s = try PcapFileSource(path: path)
        while let p = try s.next() {
            out.append(Read(number: p.frameNumber, time: p.timestamp.nanoseconds, linkType: p.linkType, bytes: Array(p.bytes), original: p.originalLength))
        }
        return (out, nil)
    } catch {
        return (out, error)
    }
}

@Suite struct PcapngTests {
    /// Ethernet and raw IP interfaces in one section, packets of both interleaved.
    static func mixed(bigEndian: Bool) -> PcapngBuilder {
        var b = PcapngBuilder(bigEndian: bigEndian)
        b.section()
        b.interface(linkType: 1, snapLength: 262_144)
        b.interface(linkType: 101, snapLength: 65535, options: [(9, [9])])
        b.enhanced(interface: 0, ticks: 1_700_000_000_000_001, ethernetSYN)
        b.enhanced(interface: 1, ticks: 1_700_000_000_000_000_002, PcapWriter.syn)
        b.enhanced(interface: 0, ticks: 1_700_000_000_500_000, ethernetSYN, original: 1514)
        return b
    }

    @Test(arguments: [false, true])
    func perInterfaceLinkTypesInEitherByteOrder(bigEndian: Bool) throws {
        let dir = TempDir()
        let f = dir.write("mixed.pcapng", Self.mixed(bigEndian: bigEndian).bytes)
        let s = try PcapFileSource(path: f)
        #expect(s.linkType == .ethernet)
        #expect(s.linkTypes == [.ethernet, .raw])
        #expect(s.snapshotLength == 262_144)
        #expect(!s.isClassicPcap)
        let r = try readFrames(f).frames
        #expect(r.map(\.number) == [1, 2, 3])
        #expect(r.map(\.linkType) == [.ethernet, .raw, .ethernet])
        #expect(r.map(\.bytes) == [ethernetSYN, PcapWriter.syn, ethernetSYN])
        #expect(r.map(\.time) == [1_700_000_000_000_001_000, 1_700_000_000_000_000_002, 1_700_000_000_500_000_000])
        #expect(r.map(\.original) == [ethernetSYN.count, PcapWriter.syn.count, 1514])
    }

    /// An interface may be described after frames of others (a capture that added one while
    /// running): its frames take its link type; the file's link types are those known at first.
    @Test func interfaceDescribedAfterFrames() throws {
        var b = PcapngBuilder()
        b.section()
        b.interface(linkType: 101)
        b.enhanced(interface: 0, ticks: 1, PcapWriter.syn)
        b.interface(linkType: 1)
        b.enhanced(interface: 1, ticks: 2, ethernetSYN)
        let dir = TempDir()
        let f = dir.write("later.pcapng", b.bytes)
        #expect(try PcapFileSource(path: f).linkTypes == [.raw])
        let r = try readFrames(f).frames
        #expect(r.map(\.linkType) == [.raw, .ethernet])
        #expect(r.map(\.number) == [1, 2])
    }

    /// if_tsresol: powers of ten either side of nanoseconds and powers of two; if_tsoffset.
    @Test func timestampResolutionAndOffset() throws {
        var b = PcapngBuilder()
        b.section()
        b.interface(linkType: 101)  // microseconds by default
        b.interface(linkType: 101, options: [(9, [3])])  // milliseconds
        b.interface(linkType: 101, options: [(9, [12])])  // picoseconds
        b.interface(linkType: 101, options: [(9, [0x80 | 20])])  // 2^-20 s
        b.interface(linkType: 101, options: [(2, Array("eth0".utf8)), (9, [6]), (14, PcapWriter.le64(100))])
        b.enhanced(interface: 0, ticks: 1_500_000, PcapWriter.syn)
        b.enhanced(interface: 1, ticks: 1_500, PcapWriter.syn)
        b.enhanced(interface: 2, ticks: 1_500_000_000_000, PcapWriter.syn)
        b.enhanced(interface: 3, ticks: 3 << 19, PcapWriter.syn)  // 1.5 s
        b.enhanced(interface: 4, ticks: 1_500_000, PcapWriter.syn)
        let dir = TempDir()
        let r = try readFrames(dir.write("t.pcapng", b.bytes)).frames
        #expect(r.map(\.time) == [1_500_000_000, 1_500_000_000, 1_500_000_000, 1_500_000_000, 101_500_000_000])
    }

    /// Extreme clocks saturate instead of trapping.
    @Test func clocksNeverTrap() {
        for resolution in [0, 1, 6, 9, 10, 19, 28, 29, 127, 0x80, 0x81, 0x80 | 30, 0x80 | 63, 0x80 | 64, 0x80 | 100, 0xff] {
            for offset: Int64 in [0, 1, -1, Int64.max, Int64.min] {
                let clock = Pcapng.Clock(resolution: UInt8(resolution), offsetSeconds: offset)
                for ticks: UInt64 in [0, 1, 1 << 63, UInt64.max] { _ = clock.nanoseconds(ticks) }
            }
        }
        #expect(Pcapng.Clock(resolution: 0x80).nanoseconds(2) == 2_000_000_000)
        #expect(Pcapng.Clock(resolution: 0).nanoseconds(UInt64.max) == Int64.max)
        #expect(Pcapng.Clock(resolution: 0x80 | 64).nanoseconds(UInt64.max) == 999_999_999)
    }

    /// Name resolution, statistics, custom and unknown blocks are stepped over; frame numbers
    /// count packet blocks only, as tshark's do.
    @Test func otherBlocksAreSkipped() throws {
        var b = PcapngBuilder()
        b.section()
        b.block(4, [0, 0, 0, 0])  // name resolution, before any interface
        b.interface(linkType: 1)
        b.enhanced(ticks: 1, ethernetSYN)
        b.block(5, [UInt8](repeating: 7, count: 20))  // interface statistics
        b.block(0x0000_0BAD, [1, 2, 3])  // custom
        b.block(0x1234_5678, [UInt8](repeating: 9, count: 64))  // unknown
        b.block(0x5452_4E43, [])  // unknown, empty body
        b.enhanced(ticks: 2, ethernetSYN)
        let dir = TempDir()
        let r = try readFrames(dir.write("skip.pcapng", b.bytes)).frames
        #expect(r.map(\.number) == [1, 2])
    }

    /// A second section (of the other byte order) starts its interface IDs afresh; frame
    /// numbers go on.
    @Test func severalSections() throws {
        var b = Self.mixed(bigEndian: false)
        var second = PcapngBuilder(bigEndian: true)
        second.section()
        second.interface(linkType: 113)  // Linux cooked
        second.enhanced(interface: 0, ticks: 5_000_000, [0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00] + PcapWriter.syn)
        b.bytes += second.bytes
        let dir = TempDir()
        let r = try readFrames(dir.write("sections.pcapng", b.bytes)).frames
        #expect(r.map(\.number) == [1, 2, 3, 4])
        #expect(r.map(\.linkType) == [.ethernet, .raw, .ethernet, .linuxSLL])
        #expect(r[3].time == 5_000_000_000)
        // Interface 1 existed in the first section only.
        var c = b
        c.bigEndian = true
        c.enhanced(interface: 1, ticks: 1, PcapWriter.syn)
        let e = readUntilError(dir.write("sections-bad.pcapng", c.bytes))
        #expect(e.frames.count == 4)
        #expect(e.error?.kind == .corrupt)
        #expect(e.error?.byteOffset == Int64(c.bytes.count - 32 - PcapWriter.syn.count))
    }

    /// Simple Packet Blocks (interface 0, no timestamp, captured length bounded by the
    /// snapshot length) and the obsolete Packet Block.
    @Test func simpleAndObsoletePacketBlocks() throws {
        var b = PcapngBuilder()
        b.section()
        b.interface(linkType: 101, snapLength: 30)
        b.simple(Array(PcapWriter.syn.prefix(30)), original: 40)
        b.simple(Array(PcapWriter.syn.prefix(20)))
        b.obsolete(ticks: 7, Array(PcapWriter.syn.prefix(30)))
        let dir = TempDir()
        let r = try readFrames(dir.write("spb.pcapng", b.bytes)).frames
        #expect(r.map(\.bytes.count) == [30, 20, 30])
        #expect(r.map(\.original) == [40, 20, 30])
        #expect(r.map(\.time) == [0, 0, 7000])
    }

    /// Each malformation: its kind, the block's byte offset, and words that say what is wrong;
    /// frames before it are still read.
    @Test func malformedBlocks() throws {
        let dir = TempDir()
        let good = Self.mixed(bigEndian: false)
        let last = good.offsets.last!  // the third packet block
        func expect(_ name: String, _ bytes: [UInt8], _ kind: CaptureError.Kind, offset: Int, frames: Int, _ text: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
            let f = dir.write(name, bytes)
            let r = readUntilError(f)
            #expect(r.frames.count == frames, sourceLocation: sourceLocation)
            guard let e = r.error else {
                Issue.record("\(name): no error", sourceLocation: sourceLocation)
                return
            }
            #expect(e.kind == kind, "\(e)", sourceLocation: sourceLocation)
            #expect(e.byteOffset == Int64(offset), "\(e)", sourceLocation: sourceLocation)
            #expect(e.description.hasPrefix(f + ": "), sourceLocation: sourceLocation)
            #expect(e.description.contains(text), "\(e)", sourceLocation: sourceLocation)
            #expect(!e.description.contains("\n"), sourceLocation: sourceLocation)
        }
        // Cut inside the last block, and inside its 8-byte header.
        expect("cut.pcapng", Array(good.bytes.dropLast(6)), .truncated, offset: last, frames: 2, "frame 3")
        expect("cut-head.pcapng", Array(good.bytes.prefix(last + 5)), .truncated, offset: last, frames: 2, "cut")
        var b = good
        b.patch32(last + 4, 61)
        expect("odd.pcapng", b.bytes, .corrupt, offset: last, frames: 2, "not a multiple of 4")
        b = good
        b.patch32(last + 4, 0xFFFF_FFFC)
        expect("huge.pcapng", b.bytes, .corrupt, offset: last, frames: 2, "exceeds")
        b = good
        b.patch32(last + 4, 8)
        expect("tiny.pcapng", b.bytes, .corrupt, offset: last, frames: 2, "shorter")
        b = good
        b.patch32(b.bytes.count - 4, 999)
        expect("trailer.pcapng", b.bytes, .corrupt, offset: last, frames: 2, "at its end")
        b = good
        b.patch32(last + 8, 5)
        expect("iface.pcapng", b.bytes, .corrupt, offset: last, frames: 2, "names interface 5")
        b = good
        b.patch32(last + 20, 400)
        expect("caplen.pcapng", b.bytes, .corrupt, offset: last, frames: 2, "exceeds the")
        b = good
        b.patch32(last + 20, 0xFFFF_FFFF)
        expect("caplen-max.pcapng", b.bytes, .corrupt, offset: last, frames: 2, "exceeds the")
        // Above the interface's snapshot length but inside its block: read as it is, as tshark
        // reads it (not a malformation).
        var s = PcapngBuilder()
        s.section()
        s.interface(linkType: 101, snapLength: 20)
        s.enhanced(ticks: 1, PcapWriter.syn)
        let snapPath = dir.write("snap.pcapng", s.bytes)
        let snapFrames = try readAll(snapPath)
        #expect(snapFrames.count == 1 && snapFrames.first?.2 == PcapWriter.syn)
        // Headers.
        b = good
        b.patch32(8, 0x1A2B_3C4E)
        expect("bom.pcapng", b.bytes, .corrupt, offset: 0, frames: 0, "byte-order magic")
        var v = PcapngBuilder()
        v.section(major: 2)
        v.interface(linkType: 1)
        expect("version.pcapng", v.bytes, .corrupt, offset: 0, frames: 0, "version 2.0")
        var n = PcapngBuilder()
        n.section()
        expect("noiface.pcapng", n.bytes, .corrupt, offset: 28, frames: 0, "no interface")
        n.enhanced(ticks: 1, PcapWriter.syn)
        expect("packet-first.pcapng", n.bytes, .corrupt, offset: 28, frames: 0, "describes none")
        var o = PcapngBuilder()
        o.section()
        o.block(1, PcapWriter.le16(1) + PcapWriter.le16(0) + PcapWriter.le32(0) + PcapWriter.le16(9) + PcapWriter.le16(40))
        expect("option.pcapng", o.bytes, .corrupt, offset: 28, frames: 0, "runs past")
        expect("shb-cut.pcapng", Array(good.bytes.prefix(20)), .truncated, offset: 0, frames: 0, "cut")
    }

    /// One filter, compiled for each link type: it selects frames of both, and numbers still
    /// count every frame.
    @Test func filterAppliesToEveryLinkType() throws {
        var b = Self.mixed(bigEndian: false)
        var other = PcapWriter.syn
        other[22] = 0
        other[23] = 80
        b.enhanced(interface: 1, ticks: 9, other)
        let dir = TempDir()
        let f = dir.write("filter.pcapng", b.bytes)
        let r = try readFrames(f, filter: "tcp dst port 3389")
        #expect(r.frames.map(\.number) == [1, 2, 3])
        #expect(r.filteredOut == 1)
        let e = try readFrames(f, filter: "tcp dst port 80")
        #expect(e.frames.map(\.number) == [4])
        // A filter that cannot apply to the raw-IP interface says so, naming it.
        do {
            _ = try readFrames(f, filter: "ether host 00:01:02:03:04:05")
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .badFilter)
            #expect(error.description.contains("interface 1 (raw IP)"), "\(error)")
        }
        #expect(throws: CaptureError.self) { try readFrames(f, filter: "tcp port nonsense(") }
    }

    /// Standard input and named pipes cannot be rewound: the format is still told apart, also
    /// when the first bytes arrive one at a time (the peeked bytes are then not all in stdio's
    /// buffer when they are put back).
    @Test(arguments: [false, true])
    func namedPipe(dribble: Bool) throws {
        let dir = TempDir()
        let inputs: [(String, [UInt8])] = [
            ("mixed", Self.mixed(bigEndian: true).bytes),
            ("classic", PcapWriter.pcap(records: [(1, 0, PcapWriter.syn, nil), (2, 0, PcapWriter.syn, nil)])),
        ]
        for (name, bytes) in inputs {
            let fifo = dir.path + "/" + name + ".fifo"
            #expect(mkfifo(fifo, 0o600) == 0)
            let writer = Thread {
                let fd = open(fifo, O_WRONLY)
                guard fd >= 0 else { return }
                var at = 0
                while at < bytes.count {
                    let n = dribble && at < 8 ? 1 : bytes.count - at
                    _ = bytes[at..<(at + n)].withUnsafeBytes { write(fd, $0.baseAddress, n) }
                    at += n
                    if dribble && at <= 8 { usleep(2000) }
                }
                close(fd)
            }
            writer.start()
            let r = try readFrames(fifo).frames
            #expect(r.map(\.linkType) == (name == "mixed" ? [.ethernet, .raw, .ethernet] : [.raw, .raw]), "\(name)")
            #expect(r.map(\.number) == Array(1..<(r.count + 1)), "\(name)")
        }
    }

    /// Blocks larger than the reader's buffer, and many frames across its refills.
    @Test func largeBlocksAndManyFrames() throws {
        var b = PcapngBuilder()
        b.section()
        b.interface(linkType: 1)
        let big = [UInt8](repeating: 0xAB, count: PcapngReader.initialCapacity + 1000)
        var sizes: [Int] = []
        var rng = SplitMix(seed: 12)
        for k in 0..<3000 {
            let n = k == 1500 ? big.count : Int(rng.next() % 3000)
            sizes.append(n)
            b.enhanced(ticks: UInt64(k), n == big.count ? big : [UInt8](repeating: UInt8(k & 0xff), count: n))
        }
        let dir = TempDir()
        let r = try readFrames(dir.write("large.pcapng", b.bytes)).frames
        #expect(r.map(\.bytes.count) == sizes)
        #expect(r.enumerated().allSatisfy { k, f in k == 1500 || f.bytes.allSatisfy { $0 == UInt8(k & 0xff) } })
    }

    /// Random mutations and cuts of a mixed file: never a trap; each run reads or ends with an
    /// error naming the file, on one line; what is read is numbered without gaps and no frame
    /// is longer than its block allowed.
    @Test func randomMutationsNeverTrap() {
        let dir = TempDir()
        var base = Self.mixed(bigEndian: false)
        base.block(5, [UInt8](repeating: 1, count: 24))
        base.simple(PcapWriter.syn)
        for k in 0..<12 { base.enhanced(interface: UInt32(k % 2), ticks: UInt64(k), k % 2 == 0 ? ethernetSYN : PcapWriter.syn) }
        var rng = SplitMix(seed: 0x9C4)
        var read = 0
        var failed = 0
        for i in 0..<600 {
            var bytes = base.bytes
            let mutations = 1 + Int(rng.next() % 4)
            for _ in 0..<mutations {
                let pos = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[pos] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[pos] ^= 1 << UInt8(rng.next() % 8)
                default:
                    // A length-sized field set to something interesting.
                    let v: [UInt32] = [0, 1, 4, 12, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x0A0D_0D0A, 1 << 24]
                    let at = pos & ~3
                    if at + 4 <= bytes.count { bytes.replaceSubrange(at..<(at + 4), with: PcapWriter.le32(v[Int(rng.next() % 8)])) }
                }
            }
            let length = i % 3 == 0 ? Int(rng.next() % UInt64(bytes.count + 1)) : bytes.count
            let f = dir.write("m\(i).pcapng", Array(bytes.prefix(length)))
            let r = readUntilError(f)
            #expect(r.frames.map(\.number) == Array(1..<(r.frames.count + 1)), "file \(i)")
            #expect(r.frames.allSatisfy { $0.bytes.count <= length }, "file \(i)")
            if let e = r.error {
                failed += 1
                #expect(e.description.hasPrefix(f + ": "), "file \(i): \(e)")
                #expect(!e.description.contains("\n"), "file \(i)")
            } else {
                read += 1
            }
        }
        #expect(read > 30 && failed > 30, "both outcomes are exercised: \(read) read, \(failed) failed")
    }
}
