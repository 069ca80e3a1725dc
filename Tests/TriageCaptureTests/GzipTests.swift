import Foundation
import Testing

@testable import TriageCapture

/// gzip members written byte by byte (RFC 1952 around stored deflate blocks, RFC 1951
/// section 3.2.4), so each test controls every byte: the check value, the length, the cut.
enum Gzip {
    /// CRC-32 as gzip computes it (RFC 1952 section 8), bit by bit.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// One member holding `data` in stored blocks (at most 65,535 bytes each).
    static func member(_ data: [UInt8], crc: UInt32? = nil) -> [UInt8] {
        var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]
        var rest = data[...]
        repeat {
            let chunk = rest.prefix(65_535)
            rest = rest.dropFirst(chunk.count)
            let n = UInt16(chunk.count)
            out += [rest.isEmpty ? 1 : 0] + PcapWriter.le16(n) + PcapWriter.le16(~n) + chunk
        } while !rest.isEmpty
        return out + PcapWriter.le32(crc ?? crc32(data)) + PcapWriter.le32(UInt32(truncatingIfNeeded: data.count))
    }
}

@Suite struct GzipTests {
    /// Three frames, so a cut can fall after some of them.
    static let capture = PcapWriter.pcap(
        records: (0..<3).map { (UInt32(1_700_000_000 + $0), UInt32(0), PcapWriter.syn, nil) })

    @Test func crcMatchesTheStandardCheckValue() {
        // RFC 1952's CRC-32 of "123456789" (the catalogue's check value).
        #expect(Gzip.crc32(Array("123456789".utf8)) == 0xcbf4_3926)
    }

    @Test func compressedPcapReadsLikeThePlainOne() throws {
        let dir = TempDir()
        let plain = try readAll(dir.write("a.pcap", Self.capture))
        // The name does not matter: the first bytes decide.
        let packed = dir.write("a.pcap", Gzip.member(Self.capture))
        let s = try PcapFileSource(path: packed)
        #expect(s.isCompressed && s.isClassicPcap && s.linkType == .raw)
        let frames = try readAll(packed)
        #expect(frames.count == 3)
        #expect(frames.map(\.0) == plain.map(\.0) && frames.map(\.1) == plain.map(\.1) && frames.map(\.2) == plain.map(\.2))
    }

    @Test func compressedPcapng() throws {
        let dir = TempDir()
        let ng = PcapWriter.pcapng(packets: [(1_700_000_000_000_000, PcapWriter.syn), (1_700_000_001_000_000, PcapWriter.syn)])
        let frames = try readAll(dir.write("b.pcapng.gz", Gzip.member(ng)))
        #expect(frames.map(\.0) == [1, 2])
        #expect(frames[1].1 == Timestamp(seconds: 1_700_000_001, nanos: 0))
    }

    /// `cat a.gz b.gz` is one stream to gzip(1), and to us; a cut between members too.
    @Test func concatenatedMembers() throws {
        let dir = TempDir()
        for cut in [1, 24, 30, Self.capture.count - 1] {
            let two = Gzip.member(Array(Self.capture[..<cut])) + Gzip.member(Array(Self.capture[cut...]))
            #expect(try readAll(dir.write("c\(cut).gz", two)).count == 3, "split at \(cut)")
        }
    }

    /// Stored blocks larger than one read of the decompressor, across several blocks.
    @Test func largeMember() throws {
        let dir = TempDir()
        let frame = [UInt8](repeating: 0xab, count: 1400)
        let records = (0..<200).map { (UInt32($0), UInt32(0), frame, Int?.none) }
        let big = PcapWriter.pcap(records: records)
        let frames = try readAll(dir.write("big.gz", Gzip.member(big)))
        #expect(frames.count == 200 && frames.allSatisfy { $0.2 == frame })
    }

    @Test func corruptCheckValueIsACorruptInput() {
        let dir = TempDir()
        let bad = Gzip.member(Self.capture, crc: Gzip.crc32(Self.capture) ^ 1)
        // zlib checks the CRC after the last byte: every frame came, then the error.
        let f = dir.write("crc.gz", bad)
        expectError(f, .corrupt, containing: "corrupt gzip data (incorrect data check)")
    }

    @Test func corruptBlockIsACorruptInput() {
        let dir = TempDir()
        var bad = Gzip.member(Self.capture)
        bad[10] = 0x07  // block type 3 (reserved)
        expectError(dir.write("block.gz", bad), .corrupt, containing: "corrupt gzip data (invalid block type)")
    }

    /// A file cut inside the compressed data: the frames before the cut, then a truncation
    /// error (the engine makes it a warning), whatever frame the cut falls in.
    @Test func cutShort() throws {
        let dir = TempDir()
        let whole = Gzip.member(Self.capture)
        let firstFrameEnds = 10 + 5 + 24 + 16 + PcapWriter.syn.count
        for keep in [firstFrameEnds + 3, whole.count - 8, whole.count - 1] {
            let f = dir.write("cut\(keep).gz", Array(whole[..<keep]))
            let s = try PcapFileSource(path: f)
            var frames = 0
            do {
                while try s.next() != nil { frames += 1 }
                Issue.record("no error for a cut at \(keep)")
            } catch {
                #expect(error.kind == .truncated, "\(error)")
                #expect(error.description.contains("gzip data cut short"), "\(error)")
                #expect(error.description.hasPrefix(f + ": ") && !error.description.contains("decompressed data"))
            }
            #expect(frames >= 1 && frames <= 3, "cut at \(keep): \(frames) frames")
        }
        // Cut inside the pcap header: the input cannot be opened.
        expectError(dir.write("head.gz", Array(whole[..<20])), .truncated, containing: "gzip data cut short")
    }

    @Test func trailingBytesAreNotIgnored() {
        let dir = TempDir()
        let f = dir.write("tail.gz", Gzip.member(Self.capture) + Array("junk".utf8))
        expectError(f, .corrupt, containing: "not another gzip member")
    }

    @Test func compressedTextIsNotACapture() {
        let dir = TempDir()
        expectError(
            dir.write("notes.gz", Gzip.member(Array("hello, this is text\n".utf8))), .notACapture, offset: 0,
            containing: "gzip-compressed, but not a pcap or pcapng file inside (first bytes 0x68656c6c, looks like text)")
        expectError(dir.write("tiny.gz", Gzip.member([0xd4, 0xc3])), .empty, containing: "gzip-compressed")
    }

    /// A corrupt record inside the compressed data: the offset counts decompressed bytes, and
    /// the message says so.
    @Test func offsetsInsideTheDataSayTheyAreDecompressed() {
        let dir = TempDir()
        var cut = Self.capture
        cut.removeLast(7)  // the last record is cut; the gzip member itself is whole
        let f = dir.write("inner.gz", Gzip.member(cut))
        expectError(f, .truncated, containing: "of the decompressed data")
    }

    /// Standard input may be compressed too (a pipe cannot be peeked at twice).
    @Test func namedPipe() throws {
        let dir = TempDir()
        let fifo = dir.path + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let data = Gzip.member(Self.capture)
        let writer = Thread {
            let h = FileHandle(forWritingAtPath: fifo)
            h?.write(Data(data))
            try? h?.close()
        }
        writer.start()
        #expect(try readAll(fifo).count == 3)
    }
}
