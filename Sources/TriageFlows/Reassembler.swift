import TriageCapture

/// A shared cap on the bytes all sessions may hold in reassembly buffers.
public final class ReassemblyBudget {
    public let limit: Int
    public private(set) var used = 0
    public private(set) var peak = 0

    public init(limit: Int) { self.limit = limit }

    func take(_ n: Int) -> Bool {
        guard used + n <= limit else { return false }
        used += n
        if used > peak { peak = used }
        return true
    }

    func give(_ n: Int) { used = max(0, used - n) }
}

/// Bytes that never arrived in a stream.
public struct StreamGap: Sendable, Codable, Hashable {
    public var offset: Int64
    public var length: Int64
    public var reason: GapReason
    /// The frame after which the gap became known.
    public var frame: Int
}

/// Why a stream has a gap (the JSON keeps these names).
public enum GapReason: String, Sendable, Codable, Hashable {
    /// Lost before the capture point, or not captured: the peer acknowledged bytes never seen.
    case missing
    /// The capture cut the frame (snapshot length).
    case snaplen
    /// Still missing when the session ended.
    case unfilled
}

/// Where a stream byte came from, so parsers can cite frames.
public struct SegmentRecord: Sendable {
    public var offset: Int64
    public var length: Int32
    public var frame: Int
    public var time: Timestamp
}

/// Reassembles one direction of a TCP session and hands the bytes to the session's
/// consumer: orders segments, resolves overlaps (the first copy wins; a later copy that
/// differs is counted), records gaps, and respects a per-stream and a global byte limit,
/// counting what it cuts.
///
/// Offsets are relative: 0 is the first byte after the SYN (or the first byte seen when
/// the SYN was not captured). Sequence numbers wrap; 64-bit offsets do not.
public final class StreamReassembler {
    public struct Limits: Sendable {
        /// Most unconsumed plus out-of-order bytes one direction may hold.
        public var perStream: Int
        /// Most out-of-order segments held waiting for a hole to fill.
        public var maxPendingSegments: Int
        /// Most segment records kept for frame lookups.
        public var maxSegmentRecords: Int
        public init(perStream: Int = 256 * 1024, maxPendingSegments: Int = 64, maxSegmentRecords: Int = 512) {
            self.perStream = perStream
            self.maxPendingSegments = maxPendingSegments
            self.maxSegmentRecords = maxSegmentRecords
        }
    }

    struct Pending {
        var offset: Int64
        var bytes: [UInt8]
        var wireLength: Int
        /// The captured bytes were copied; otherwise only the offsets are tracked.
        var copied: Bool
        var frame: Int
        var time: Timestamp
    }

    let limits: Limits
    let budget: ReassemblyBudget
    let direction: Direction
    unowned let session: TCPSession
    var consumer: (any StreamConsumer)?

    public private(set) var isStarted = false
    /// Sequence number of offset 0.
    public private(set) var baseSequence: UInt32 = 0
    /// Offset of the next in-order byte expected.
    @exclusivity(unchecked) public private(set) var nextOffset: Int64 = 0
    /// Highest offset + length seen, in order or not.
    @exclusivity(unchecked) public private(set) var highestEnd: Int64 = 0

    /// In-order bytes not yet consumed: `buffer[head...]` starts at offset `bufferStart`
    /// and is contiguous (a gap empties the buffer first).
    @exclusivity(unchecked) var buffer: [UInt8] = []
    @exclusivity(unchecked) var head = 0
    @exclusivity(unchecked) var bufferStart: Int64 = 0
    @exclusivity(unchecked) var pending: [Pending] = []
    @exclusivity(unchecked) var pendingBytes = 0
    /// Bytes charged to the budget.
    var charged = 0

    public private(set) var gaps: [StreamGap] = []
    public private(set) var gapCount = 0
    public private(set) var gapBytes: Int64 = 0
    public private(set) var overlapBytes: Int64 = 0
    /// Overlapping bytes whose content differed from the first copy (an evasion or a bug).
    public private(set) var conflictingBytes: Int64 = 0
    /// Bytes not kept because a limit was reached.
    public private(set) var cutBytes: Int64 = 0
    public private(set) var cutAt: Int64?
    /// In-order bytes that went past (delivered, or counted after the consumer was done).
    @exclusivity(unchecked) public private(set) var deliveredBytes: Int64 = 0
    /// Unconsumed bytes thrown away at a gap (a PDU that can no longer complete).
    public private(set) var abandonedBytes: Int64 = 0
    /// The consumer said it needs no more: bytes are counted, not copied.
    public private(set) var consumerDone = false
    public private(set) var segments: [SegmentRecord] = []

    static let maxGapRecords = 32

    init(direction: Direction, session: TCPSession, limits: Limits, budget: ReassemblyBudget) {
        self.direction = direction
        self.session = session
        self.limits = limits
        self.budget = budget
    }

    // Charges are normally given back by `releaseAll` when the session finishes.
    deinit { if charged != 0 { budget.give(charged) } }

    /// Sets offset 0 to the byte after a SYN's sequence number.
    func start(afterSYN initialSequence: UInt32) {
        guard !isStarted else { return }
        isStarted = true
        baseSequence = initialSequence &+ 1
    }

    /// Starts mid-stream at the first sequence number seen.
    func start(at sequence: UInt32) {
        guard !isStarted else { return }
        isStarted = true
        baseSequence = sequence
    }

    /// The stream offset of a sequence number, assuming it lies within 2 GiB of the next
    /// expected byte.
    @inline(__always)
    public func offset(of sequence: UInt32) -> Int64 {
        let expected = baseSequence &+ UInt32(truncatingIfNeeded: nextOffset)
        return nextOffset + Int64(Int32(bitPattern: sequence &- expected))
    }

    public var unconsumedCount: Int { buffer.count - head }

    /// What a segment was to the stream.
    public enum SegmentKind: Sendable {
        /// Bytes beyond any seen before.
        case new
        /// Bytes seen before (a retransmission) or none.
        case old
        /// A sequence number far outside the stream: not believed, not reassembled.
        case implausible
    }

    /// Segments whose sequence number lies more than `maxPlausibleAckJump` beyond the
    /// furthest byte seen or before the next expected one: no TCP window is that large, so
    /// they are forged, corrupt or from another connection, and only counted.
    public private(set) var implausibleSegments = 0
    private var segmentsSeen = 0
    /// So many segments were implausible (4 or more, a tenth of all or more) that the
    /// direction's sequence numbers make no sense: nothing more is reassembled, and its gap
    /// and retransmission counters mean nothing.
    public private(set) var sequenceNonsense = false

    /// Adds a segment's payload. `wireLength` can exceed `bytes.count` when the snapshot
    /// length cut the frame.
    @discardableResult
    func insert(sequence: UInt32, bytes: UnsafeRawBufferPointer, wireLength: Int, frame: Int, time: Timestamp)
        -> SegmentKind
    {
        if !isStarted { start(at: sequence) }
        guard wireLength > 0 else { return .old }
        segmentsSeen += 1
        let start = offset(of: sequence)
        let end = start + Int64(wireLength)
        if sequenceNonsense || start > max(highestEnd, nextOffset) + Self.maxPlausibleAckJump
            || end < nextOffset - Self.maxPlausibleAckJump
        {
            implausibleSegments += 1
            if !sequenceNonsense && implausibleSegments >= 4 && implausibleSegments * 10 >= segmentsSeen {
                sequenceNonsense = true
                stopDelivering()
            }
            return .implausible
        }
        let isNew = end > highestEnd
        if isNew { highestEnd = end }
        if consumerDone && start == nextOffset && pending.isEmpty && bytes.count == wireLength {
            // The parser is done: in-order bytes are only counted.
            nextOffset = end
            deliveredBytes += Int64(wireLength)
            return isNew ? .new : .old
        }
        if start == nextOffset && unconsumedCount == 0 && pending.isEmpty && bytes.count == wireLength
            && cutAt == nil && !consumerDone && wireLength <= limits.perStream
            && budget.used + wireLength <= budget.limit, let consumer
        {
            deliverInPlace(bytes, to: consumer, frame: frame, time: time)
            return isNew ? .new : .old
        }
        place(start: start, bytes: bytes, wireLength: wireLength, frame: frame, time: time)
        offer()
        return isNew ? .new : .old
    }

    /// The next in-order segment while nothing is held: the consumer reads it where it lies,
    /// and only what it leaves (the start of a PDU the next segment completes) is copied. The
    /// conditions above are those under which `place` would have kept all of it, so what the
    /// consumer sees, and when, is the same either way.
    private func deliverInPlace(_ bytes: UnsafeRawBufferPointer, to consumer: any StreamConsumer, frame: Int,
                                time: Timestamp)
    {
        let start = nextOffset
        let n = bytes.count
        recordSegment(offset: start, length: n, frame: frame, time: time)
        nextOffset += Int64(n)
        deliveredBytes += Int64(n)
        let d = consumer.receive(bytes, offset: start, direction: direction, session: session)
        guard d.wantsMore else { return stopDelivering() }
        let k = max(0, min(d.consumed, n))
        guard k < n, !consumerDone else { return }
        restartBuffer(at: start + Int64(k))
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[k...]))
        recharge()
    }

    /// The receiver acknowledged `ackOffset`. Bytes before it reached the receiver even if
    /// the capture did not see them: a hole before waiting data is then a gap, not something
    /// to wait for, and acknowledged bytes never seen are reported at the end.
    func acknowledged(upTo ackOffset: Int64, frame: Int) {
        // A FIN takes a sequence number but carries no byte: its acknowledgment is no data.
        let ackOffset = finOffset.map { min(ackOffset, $0) } ?? ackOffset
        guard isStarted, !sequenceNonsense, ackOffset > nextOffset, ackOffset - nextOffset <= Self.maxPlausibleAckJump else { return }
        if ackOffset > peerAcknowledged { peerAcknowledged = ackOffset }
        if let first = pending.first, first.offset <= peerAcknowledged {
            skipGap(to: first.offset, reason: .missing, frame: frame)
            drainPending()
            offer()
        }
    }

    /// Where the sender's FIN sits (the end of its data).
    public private(set) var finOffset: Int64?

    func noteFIN(at offset: Int64) {
        if finOffset == nil { finOffset = offset }
    }

    /// Highest offset the receiver acknowledged.
    public private(set) var peerAcknowledged: Int64 = 0
    /// An acknowledgment further ahead than this is not believed (a bogus or unrelated ACK).
    static let maxPlausibleAckJump: Int64 = 64 << 20

    /// At the end of a session: holes before out-of-order data become gaps and the data
    /// after them is delivered; acknowledged bytes never seen become a final gap.
    func flush(frame: Int) {
        while let first = pending.first {
            if first.offset > nextOffset { skipGap(to: first.offset, reason: .unfilled, frame: frame) }
            drainPending()
        }
        if peerAcknowledged > nextOffset { skipGap(to: peerAcknowledged, reason: .missing, frame: frame) }
        offer()
    }

    /// The frame that carried stream offset `offset`, when it is still on record.
    public func frame(at offset: Int64) -> FrameRef? {
        var lo = 0
        var hi = segments.count - 1
        var best: SegmentRecord?
        while lo <= hi {
            let mid = (lo + hi) / 2
            if segments[mid].offset <= offset {
                best = segments[mid]
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        guard let b = best, offset < b.offset + Int64(b.length) else { return nil }
        return FrameRef(frame: b.frame, time: b.time)
    }

    // MARK: - Internals

    private func place(start: Int64, bytes: UnsafeRawBufferPointer, wireLength: Int, frame: Int, time: Timestamp) {
        let end = start + Int64(wireLength)
        if end <= nextOffset {
            noteOverlap(start: start, bytes: bytes, count: Int64(wireLength))
            return
        }
        if start > nextOffset {
            holdPending(offset: start, bytes: bytes, wireLength: wireLength, frame: frame, time: time)
            return
        }
        let skip = Int(nextOffset - start)
        if skip > 0 { noteOverlap(start: start, bytes: bytes, count: Int64(skip)) }
        appendInOrder(bytes: bytes, skip: skip, wireLength: wireLength, frame: frame, time: time)
        drainPending()
    }

    private func noteOverlap(start: Int64, bytes: UnsafeRawBufferPointer, count: Int64) {
        overlapBytes += count
        // Compare with the first copy while we still hold it.
        let lo = max(start, bufferStart)
        let hi = min(start + min(count, Int64(bytes.count)), bufferStart + Int64(unconsumedCount))
        guard lo < hi else { return }
        var differing: Int64 = 0
        for o in lo..<hi where buffer[head + Int(o - bufferStart)] != bytes[Int(o - start)] {
            differing += 1
        }
        conflictingBytes += differing
    }

    /// Appends a segment that starts at or before `nextOffset`, skipping `skip` bytes.
    private func appendInOrder(bytes: UnsafeRawBufferPointer, skip: Int, wireLength: Int, frame: Int, time: Timestamp)
    {
        let captured = max(0, bytes.count - skip)
        let newWire = wireLength - skip
        guard newWire > 0 else { return }
        if captured > 0 {
            recordSegment(offset: nextOffset, length: captured, frame: frame, time: time)
            keep(UnsafeRawBufferPointer(rebasing: bytes[skip..<(skip + captured)]))
            nextOffset += Int64(captured)
            deliveredBytes += Int64(captured)
        }
        if newWire > captured {
            skipGap(to: nextOffset + Int64(newWire - captured), reason: .snaplen, frame: frame)
        }
    }

    private func keep(_ bytes: UnsafeRawBufferPointer) {
        guard !consumerDone, consumer != nil else { return }
        if cutAt != nil {
            cutBytes += Int64(bytes.count)
            return
        }
        let n = bytes.count
        guard unconsumedCount + pendingBytes + n <= limits.perStream, budget.take(n) else {
            markCut(count: n)
            return
        }
        charged += n
        if head == buffer.count { restartBuffer(at: nextOffset) }
        buffer.append(contentsOf: bytes)
    }

    /// Empties the buffer (nothing in it is unconsumed) to hold bytes from `offset` on.
    private func restartBuffer(at offset: Int64) {
        buffer.removeAll(keepingCapacity: true)
        head = 0
        bufferStart = offset
    }

    private func markCut(count: Int) {
        cutAt = nextOffset
        cutBytes += Int64(count)
        offer()
        releaseBuffer(keepCapacity: false)
        consumer?.cut(at: nextOffset, direction: direction, session: session)
    }

    private func holdPending(offset: Int64, bytes: UnsafeRawBufferPointer, wireLength: Int, frame: Int, time: Timestamp)
    {
        if pending.count >= limits.maxPendingSegments || pendingBytes + bytes.count > limits.perStream / 2,
            let first = pending.first, first.offset > nextOffset
        {
            // Too much waiting on a hole nobody fills: call it a gap and move on.
            skipGap(to: min(first.offset, offset), reason: .missing, frame: frame)
            drainPending()
            if offset <= nextOffset {
                place(start: offset, bytes: bytes, wireLength: wireLength, frame: frame, time: time)
                return
            }
        }
        let keepBytes = !consumerDone && consumer != nil && cutAt == nil
        var copy: [UInt8] = []
        var copied = false
        if keepBytes {
            if budget.take(bytes.count) {
                charged += bytes.count
                copy = Array(bytes)
                copied = true
            } else {
                markCut(count: bytes.count)
            }
        }
        let item = Pending(offset: offset, bytes: copy, wireLength: wireLength, copied: copied, frame: frame, time: time)
        var i = pending.count
        while i > 0 && pending[i - 1].offset > offset { i -= 1 }
        pending.insert(item, at: i)
        pendingBytes += copy.count
    }

    private func drainPending() {
        while let first = pending.first, first.offset <= nextOffset {
            pending.removeFirst()
            pendingBytes -= first.bytes.count
            budget.give(first.bytes.count)
            charged -= first.bytes.count
            let end = first.offset + Int64(first.wireLength)
            if end <= nextOffset {
                overlapBytes += Int64(first.wireLength)
                continue
            }
            let skip = Int(nextOffset - first.offset)
            if !first.copied || consumerDone || cutAt != nil {
                // Held without a copy (consumer done or cut): only the offsets move.
                deliveredBytes += end - nextOffset
                nextOffset = end
                continue
            }
            first.bytes.withUnsafeBytes { raw in
                appendInOrder(bytes: raw, skip: skip, wireLength: first.wireLength, frame: first.frame, time: first.time)
            }
        }
    }

    /// Moves past bytes that will never arrive: the consumer first gets what it has, then
    /// hears of the gap; unconsumed bytes before the gap cannot complete and are dropped.
    private func skipGap(to newOffset: Int64, reason: GapReason, frame: Int) {
        let length = newOffset - nextOffset
        guard length > 0 else { return }
        offer()
        gapCount += 1
        gapBytes += length
        if gaps.count < Self.maxGapRecords {
            gaps.append(StreamGap(offset: nextOffset, length: length, reason: reason, frame: frame))
        }
        abandonedBytes += Int64(unconsumedCount)
        let at = nextOffset
        nextOffset = newOffset
        releaseBuffer(keepCapacity: true)
        if !consumerDone && cutAt == nil { consumer?.gap(at: at, length: length, direction: direction, session: session) }
    }

    /// Hands the unconsumed bytes to the consumer.
    func offer() {
        guard let consumer, !consumerDone, unconsumedCount > 0 else { return }
        let d = buffer.withUnsafeBytes { raw in
            consumer.receive(
                UnsafeRawBufferPointer(rebasing: raw[head...]), offset: bufferStart, direction: direction,
                session: session)
        }
        consume(d.consumed)
        if !d.wantsMore { stopDelivering() }
    }

    /// The consumer needs no more bytes: drop what is held and stop copying.
    func stopDelivering() {
        consumerDone = true
        for i in pending.indices {
            pending[i].bytes = []
            pending[i].copied = false
        }
        pendingBytes = 0
        releaseBuffer(keepCapacity: false)
    }

    private func consume(_ n: Int) {
        let k = max(0, min(n, unconsumedCount))
        head += k
        bufferStart += Int64(k)
        if head == buffer.count {
            releaseBuffer(keepCapacity: true)
        } else if head >= 4096 && head * 2 > buffer.count {
            buffer.removeSubrange(0..<head)
            head = 0
            recharge()
        }
    }

    private func recordSegment(offset: Int64, length: Int, frame: Int, time: Timestamp) {
        // Frames are looked up for what the parser reads; after it is done none are needed.
        guard !consumerDone, segments.count < limits.maxSegmentRecords else { return }
        if segments.isEmpty { segments.reserveCapacity(16) }
        segments.append(SegmentRecord(offset: offset, length: Int32(clamping: length), frame: frame, time: time))
    }

    /// Drops every byte held and gives it back to the budget (the session is over).
    func releaseAll() {
        pending.removeAll()
        pendingBytes = 0
        releaseBuffer(keepCapacity: false)
    }

    private func releaseBuffer(keepCapacity: Bool) {
        buffer.removeAll(keepingCapacity: keepCapacity && buffer.capacity <= 64 * 1024)
        head = 0
        bufferStart = nextOffset
        recharge()
    }

    private func recharge() {
        let now = buffer.count + pendingBytes
        if now > charged { _ = budget.take(now - charged) } else { budget.give(charged - now) }
        charged = now
    }
}
