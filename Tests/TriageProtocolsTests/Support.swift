import TestSupport
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// Bytes from a hex string (whitespace ignored).
func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var high: UInt8?
    for ch in s.utf8 {
        let v: UInt8
        switch ch {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = ch - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = ch - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = ch - UInt8(ascii: "A") + 10
        default: continue
        }
        if let h = high {
            out.append(h << 4 | v)
            high = nil
        } else {
            high = v
        }
    }
    return out
}

/// Runs a parser over `bytes`; returns the value or the error, and how far it read.
func parse<T>(_ bytes: [UInt8], _ body: (inout ByteCursor) throws(ParseError) -> T) -> (Result<T, ParseError>, Int) {
    bytes.withUnsafeBytes { raw in
        var c = ByteCursor(raw)
        do throws(ParseError) {
            let v = try body(&c)
            return (.success(v), c.offset)
        } catch {
            return (.failure(error), c.offset)
        }
    }
}

func value<T>(_ r: (Result<T, ParseError>, Int)) -> T? {
    if case .success(let v) = r.0 { return v }
    return nil
}

func failure<T>(_ r: (Result<T, ParseError>, Int)) -> ParseError? {
    if case .failure(let e) = r.0 { return e }
    return nil
}

func isMalformed(_ e: ParseError?) -> Bool {
    if case .malformed = e { return true }
    return false
}

func isUnsupported(_ e: ParseError?) -> Bool {
    if case .unsupported = e { return true }
    return false
}

/// Every strict prefix of `bytes` must make the parser ask for more bytes, and leave the
/// cursor where it was. Returns the prefix lengths that did not.
func prefixesNotNeedingMore<T>(_ bytes: [UInt8], _ body: (inout ByteCursor) throws(ParseError) -> T) -> [Int] {
    var bad: [Int] = []
    for n in 0..<bytes.count {
        let r = parse(Array(bytes[0..<n]), body)
        if failure(r)?.isNeedMore != true || r.1 != 0 { bad.append(n) }
    }
    return bad
}

// MARK: - Recorded streams

/// One TCP segment of a recorded exchange.
struct FixtureSegment {
    enum D { case c, s }
    var direction: Direction
    var frame: Int
    var time: Int64
    /// Stream offset of the first payload byte (relative sequence number - 1).
    var seq: Int64
    var bytes: [UInt8]

    init(_ d: D, frame: Int, time: Int64, seq: Int64, _ hex: String) {
        direction = d == .c ? .clientToServer : .serverToClient
        self.frame = frame
        self.time = time
        self.seq = seq
        bytes = hexBytes(hex)
    }
}

/// How a test cuts the recorded segments before offering them.
enum Segmentation: CustomStringConvertible {
    /// Each segment as captured.
    case asCaptured
    /// One byte per offer.
    case oneByte
    /// Random cuts from a seeded generator.
    case random(seed: UInt64)
    /// Consecutive segments of one direction merged into one offer.
    case coalesced
    /// Each direction's whole stream in one offer: the client's, then the server's.
    case wholeStreams

    var description: String {
        switch self {
        case .asCaptured: "as captured"
        case .oneByte: "one byte at a time"
        case .random(let s): "random cuts (seed \(s))"
        case .coalesced: "coalesced"
        case .wholeStreams: "whole streams at once"
        }
    }
}


/// Plays recorded segments into `RDPConnectionParser` the way `StreamReassembler` does:
/// in order per direction, retransmitted bytes dropped, holes reported as gaps, the
/// unconsumed tail offered again with the next bytes, nothing more once the parser says so.
struct StreamPlayer {
    struct Side {
        var buffer: [UInt8] = []
        var bufferStart: Int64 = 0
        var next: Int64 = 0
        var done = false
        var segments: [(offset: Int64, length: Int, frame: FrameRef)] = []
        /// Segments waiting for an earlier hole to fill.
        var held: [Int] = []

        func frame(at offset: Int64) -> FrameRef? {
            segments.last { $0.offset <= offset && offset < $0.offset + Int64($0.length) }?.frame
        }
    }

    var parser = RDPConnectionParser()
    var client = Side()
    var server = Side()
    /// Offers made (to check the parser stops early on long streams).
    var offers = 0

    static func play(_ segments: [FixtureSegment], _ how: Segmentation, startsMidStream: Bool = false) -> RDPFacts {
        var p = StreamPlayer()
        p.parser = RDPConnectionParser(startsMidStream: startsMidStream)
        p.run(segments, how)
        return p.parser.facts
    }

    mutating func run(_ segments: [FixtureSegment], _ how: Segmentation) {
        var rng = SplitMix(seed: 0)
        if case .random(let seed) = how { rng = SplitMix(seed: seed) }
        var groups: [[Int]] = []
        if case .wholeStreams = how {
            groups = [Direction.clientToServer, .serverToClient].map { d in
                segments.indices.filter { segments[$0].direction == d }
            }.filter { !$0.isEmpty }
        }
        for (i, s) in segments.enumerated() where groups.isEmpty || !isWhole(how) {
            if case .coalesced = how, let last = groups.last?.last, segments[last].direction == s.direction {
                groups[groups.count - 1].append(i)
            } else {
                groups.append([i])
            }
        }
        for group in groups {
            let d = segments[group[0]].direction
            var bytes: [UInt8] = []
            for i in group { bytes += accept(segments, i) }
            guard !bytes.isEmpty else { continue }
            var chunks: [ArraySlice<UInt8>] = []
            switch how {
            case .asCaptured, .coalesced, .wholeStreams:
                chunks = [bytes[...]]
            case .oneByte:
                chunks = bytes.indices.map { bytes[$0...$0] }
            case .random:
                var i = 0
                while i < bytes.count {
                    let n = Int(rng.next() % 23) + 1
                    chunks.append(bytes[i..<min(bytes.count, i + n)])
                    i += n
                }
            }
            for chunk in chunks { offer(chunk, d) }
        }
    }

    func isWhole(_ how: Segmentation) -> Bool {
        if case .wholeStreams = how { return true }
        return false
    }

    /// Takes segment `index` and returns the bytes that became in-order with it: none for
    /// a retransmission or for a segment that waits for an earlier one still to come;
    /// a hole nothing later fills is reported as a gap (as an acknowledgment would).
    mutating func accept(_ all: [FixtureSegment], _ index: Int) -> [UInt8] {
        let s = all[index]
        var side = s.direction == .clientToServer ? client : server
        defer { if s.direction == .clientToServer { client = side } else { server = side } }
        var out: [UInt8] = []
        var candidates = [index] + side.held
        side.held = []
        candidates.sort { all[$0].seq < all[$1].seq }
        for i in candidates {
            let seg = all[i]
            let end = seg.seq + Int64(seg.bytes.count)
            guard end > side.next else { continue }
            if seg.seq > side.next {
                let filledLater = all[(index + 1)...].contains {
                    $0.direction == seg.direction && $0.seq <= side.next && $0.seq + Int64($0.bytes.count) > side.next
                }
                if filledLater {
                    side.held.append(i)
                    continue
                }
                if !out.isEmpty {
                    // Bytes before the hole go out first; the rest starts a new buffer.
                    flushPending(out, seg.direction, &side)
                    out = []
                }
                if !side.done {
                    let lookup = side
                    parser.gap(at: side.next, length: seg.seq - side.next, direction: seg.direction) { lookup.frame(at: $0) }
                }
                side.buffer = []
                side.bufferStart = seg.seq
                side.next = seg.seq
            }
            let skip = Int(side.next - seg.seq)
            let fresh = Array(seg.bytes[skip...])
            side.segments.append(
                (side.next, fresh.count, FrameRef(frame: seg.frame, time: Timestamp(nanoseconds: seg.time))))
            side.next = end
            out += fresh
        }
        return out
    }

    /// Offers bytes that became in-order before a gap in the same step.
    mutating func flushPending(_ bytes: [UInt8], _ d: Direction, _ side: inout Side) {
        if d == .clientToServer { client = side } else { server = side }
        offer(bytes[...], d)
        side = d == .clientToServer ? client : server
    }

    mutating func offer(_ chunk: ArraySlice<UInt8>, _ d: Direction) {
        var side = d == .clientToServer ? client : server
        defer { if d == .clientToServer { client = side } else { server = side } }
        guard !side.done else { return }
        side.buffer.append(contentsOf: chunk)
        offers += 1
        let snapshot = side
        let disposition = side.buffer.withUnsafeBytes { raw in
            parser.receive(raw, offset: side.bufferStart, direction: d) { snapshot.frame(at: $0) }
        }
        let k = max(0, min(disposition.consumed, side.buffer.count))
        side.buffer.removeFirst(k)
        side.bufferStart += Int64(k)
        if !disposition.wantsMore {
            side.done = true
            side.buffer = []
        }
    }
}
