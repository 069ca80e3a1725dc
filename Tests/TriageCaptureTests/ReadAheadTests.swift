import Foundation
import Synchronization
import TestSupport
import Testing

@testable import TriageCapture

/// A source with frames of chosen sizes, then an end or an error; it overwrites its single
/// buffer on every call, as libpcap does, so a reader that kept a borrowed frame too long
/// would see the next frame's bytes.
final class ScriptedSource: PacketSource {
    let name = "scripted"
    let linkType = LinkType.raw
    private let sizes: [Int]
    private let failAtEnd: CaptureError?
    private var i = 0
    private let buffer: UnsafeMutableRawBufferPointer
    var filteredOut: Int { i / 3 }
    let onDeinit: (@Sendable () -> Void)?

    init(sizes: [Int], failAtEnd: CaptureError? = nil, onDeinit: (@Sendable () -> Void)? = nil) {
        self.sizes = sizes
        self.failAtEnd = failAtEnd
        self.onDeinit = onDeinit
        buffer = .allocate(byteCount: max(1, sizes.max() ?? 1), alignment: 1)
    }

    deinit {
        buffer.deallocate()
        onDeinit?()
    }

    static func byte(_ frame: Int, _ k: Int) -> UInt8 { UInt8(truncatingIfNeeded: frame &* 31 &+ k) }

    func next() throws(CaptureError) -> RawPacket? {
        guard i < sizes.count else {
            if let failAtEnd { throw failAtEnd }
            return nil
        }
        let n = sizes[i]
        i += 1
        for k in 0..<n { buffer[k] = Self.byte(i, k) }
        return RawPacket(
            frameNumber: i, timestamp: Timestamp(seconds: Int64(i), nanos: 7), capturedLength: n,
            originalLength: n + 1, linkType: linkType, bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }
}

typealias Frame = (number: Int, time: Timestamp, bytes: [UInt8], original: Int)

func drain(_ s: any PacketSource) -> (frames: [Frame], error: CaptureError?) {
    var out: [Frame] = []
    do {
        while let p = try s.next() { out.append((p.frameNumber, p.timestamp, Array(p.bytes), p.originalLength)) }
        return (out, nil)
    } catch {
        return (out, error)
    }
}

/// Where two frame lists first differ (nil when they are the same): a short failure message.
func firstDifference(_ a: [Frame], _ b: [Frame]) -> Int? {
    for (i, (x, y)) in zip(a, b).enumerated()
    where x.number != y.number || x.time != y.time || x.bytes != y.bytes || x.original != y.original {
        return i
    }
    return a.count == b.count ? nil : min(a.count, b.count)
}

@Suite struct ReadAheadTests {
    /// Frames of every size around the batch size (empty, small, exactly full, larger than a
    /// batch), in any order: what comes out is what went in, in order, then the end.
    @Test func framesArriveWholeAndInOrder() {
        var rng = SplitMix(seed: 0x4EAD)
        for round in 0..<40 {
            let batch = 4096
            let sizes = (0..<300).map { k -> Int in
                switch (k + round) % 7 {
                case 0: 0
                case 1: batch
                case 2: batch + 1 + Int.random(in: 0..<3 * batch, using: &rng)
                default: Int.random(in: 1..<600, using: &rng)
                }
            }
            let direct = drain(ScriptedSource(sizes: sizes))
            let ahead = ReadAheadSource(ScriptedSource(sizes: sizes), batchBytes: batch, batches: 2 + round % 3)
            let got = drain(ahead)
            #expect(got.error == nil)
            #expect(firstDifference(got.frames, direct.frames) == nil, "round \(round)")
            #expect(ahead.filteredOut == 100)
            #expect((try? ahead.next()) == nil, "stays ended")
        }
    }

    /// The consumer takes the source back at any point (before the first frame, inside and at
    /// the edge of batches, after the end): every frame still arrives once, in order, and an
    /// error at the end still comes last.
    @Test func handingTheSourceBackKeepsEveryFrame() throws {
        var rng = SplitMix(seed: 0xBAC4)
        let failure = CaptureError(input: "scripted", kind: .corrupt, detail: "bad record", byteOffset: 7)
        for round in 0..<60 {
            let sizes = (0..<2000).map { _ in Int.random(in: 0..<700, using: &rng) }
            let fails = round % 3 == 0
            let unbuffered = drain(ScriptedSource(sizes: sizes, failAtEnd: fails ? failure : nil))
            let ahead = ReadAheadSource(
                ScriptedSource(sizes: sizes, failAtEnd: fails ? failure : nil), batchBytes: 4096, batches: 2 + round % 4)
            let stopAt = [0, 1, 5, 57, 1000, 1999, 2000, 2500][round % 8]
            var got: [Frame] = []
            var failed: CaptureError?
            // Half the rounds read the handed-back source directly once it is offered, as the
            // engine does.
            let direct = round % 2 == 1
            var reader: any PacketSource = ahead
            var switchedAt: Int?
            do {
                if stopAt == 0 { ahead.stopReadingAhead() }
                #expect(stopAt == 0 || ahead.handedBack == nil)
                while let p = try reader.next() {
                    got.append((p.frameNumber, p.timestamp, Array(p.bytes), p.originalLength))
                    if got.count == stopAt { ahead.stopReadingAhead() }
                    if direct, switchedAt == nil, let inner = ahead.handedBack {
                        reader = inner
                        switchedAt = got.count
                    }
                }
            } catch {
                failed = error
            }
            // (Stopped near the end, the reader may have read everything already: nothing to hand back.)
            if direct && stopAt <= 1000 { #expect(switchedAt != nil, "round \(round): never handed back") }
            #expect(firstDifference(got, unbuffered.frames) == nil, "round \(round), stop at \(stopAt)")
            #expect(failed == unbuffered.error, "round \(round)")
            #expect(ahead.filteredOut == sizes.count / 3, "round \(round)")
            #expect((try? ahead.next()) == nil, "stays ended")
        }
    }

    @Test func anErrorComesAfterTheFramesBeforeIt() {
        let failure = CaptureError(input: "scripted", kind: .truncated, detail: "file cut", byteOffset: 99)
        let sizes = (0..<5000).map { 40 + $0 % 90 }
        let got = drain(ReadAheadSource(ScriptedSource(sizes: sizes, failAtEnd: failure), batchBytes: 8192, batches: 3))
        #expect(got.error == failure)
        #expect(firstDifference(got.frames, drain(ScriptedSource(sizes: sizes)).frames) == nil)
    }

    @Test func emptySource() {
        let got = drain(ReadAheadSource(ScriptedSource(sizes: [])))
        #expect(got.frames.isEmpty && got.error == nil)
    }

    /// A consumer that stops early lets the reader thread go (and the inner source close)
    /// instead of leaving it blocked on a full pipe.
    @Test func droppingTheReaderStopsItsThread() async throws {
        let closed = Atomic<Bool>(false)
        do {
            let ahead = ReadAheadSource(
                ScriptedSource(sizes: Array(repeating: 1000, count: 100_000), onDeinit: { closed.store(true, ordering: .sequentiallyConsistent) }),
                batchBytes: 4096, batches: 8)
            for _ in 0..<10 { _ = try ahead.next() }
            // Let the reader fill every batch before the consumer leaves.
            try await Task.sleep(for: .milliseconds(100))
        }
        for _ in 0..<500 where !closed.load(ordering: .sequentiallyConsistent) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let wasClosed = closed.load(ordering: .sequentiallyConsistent)
        #expect(wasClosed)
    }

    /// Every committed capture reads the same through the read-ahead as without it.
    @Test func committedCapturesReadTheSame() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("captures").path
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
        #expect(files.count >= 20)
        for f in files.sorted() {
            let path = dir + "/" + f
            let direct = drain(try PcapFileSource(path: path))
            let ahead = drain(ReadAheadSource(try PcapFileSource(path: path), batchBytes: 4096, batches: 2))
            #expect(firstDifference(direct.frames, ahead.frames) == nil, "\(f)")
            #expect(direct.error == ahead.error, "\(f)")
        }
    }

    @Test func aCutFileFailsAtTheSameFrameAndOffset() throws {
        let dir = TempDir()
        let full = PcapWriter.pcap(records: (0..<500).map { (UInt32($0), 0, PcapWriter.syn, nil) })
        let f = dir.write("cut.pcap", Array(full.prefix(full.count - 10)))
        let direct = drain(try PcapFileSource(path: f))
        let ahead = drain(ReadAheadSource(try PcapFileSource(path: f), batchBytes: 4096, batches: 2))
        #expect(direct.frames.count == 499)
        #expect(firstDifference(direct.frames, ahead.frames) == nil)
        #expect(ahead.error != nil && ahead.error == direct.error)
    }
}
