import CPcap
import Dispatch
import Synchronization

/// Reads another source on a thread of its own, a few batches ahead of the consumer, so that
/// reading the file (the kernel's copy into libpcap's stream, libpcap's copy of each record)
/// overlaps the analysis on a second core instead of taking turns with it.
///
/// Frames are copied into reused batch buffers (no allocation per frame). A frame's bytes
/// stay valid until the consumer asks for a frame past the batch that holds it, which keeps
/// the `PacketSource` promise: valid until the next call to `next()`. An error from the
/// inner source arrives after the frames read before it, as it would without read-ahead.
/// For files only: a live capture would hold packets back until a batch filled.
///
/// `stopReadingAhead()` hands the inner source back: the reader stops at the next frame, the
/// consumer takes the batches already read and then reads the inner source itself.
public final class ReadAheadSource: PacketSource {
    public let name: String
    public let linkType: LinkType
    /// Frames the inner source's filter rejected, as of the last batch taken (final at the end).
    public var filteredOut: Int { inline ? pipe.innerSource.filteredOut : batchFilteredOut }
    private var batchFilteredOut = 0
    /// The reader handed the source back: frames now come straight from it.
    private var inline = false

    private let pipe: Pipe
    private var current: Batch?
    private var index = 0
    private var finished = false
    /// How many frames ahead to prefetch: eight hid the misses in measurements, two did not.
    static let prefetchDistance = 8

    /// `batchBytes`: frame bytes per batch (a larger frame gets a batch of its own size);
    /// `batches`: how many exist, so at most `batches - 1` are read ahead. Sixteen of 1 MiB
    /// measured best: fewer left the reader waiting for the consumer's turn on a busy machine.
    public init(_ inner: any PacketSource, batchBytes: Int = 1 << 20, batches: Int = 16) {
        name = inner.name
        linkType = inner.linkType
        pipe = Pipe(inner, batchBytes: max(batchBytes, 1 << 12), batches: max(batches, 2))
        // The reader gets a serial queue of its own: such queues run on threads that may
        // block (waiting for a free batch) without starving the global pool.
        let pipe = self.pipe
        DispatchQueue(label: "rdptriage.read-ahead").async { pipe.fill() }
    }

    deinit {
        if let current { pipe.recycle(current) }
        pipe.cancel()
    }

    /// Asks the reader to stop and hand the source back (from the consumer's thread).
    public func stopReadingAhead() { pipe.requestHandover() }

    /// The inner source, once it has been handed back and every frame read ahead was taken:
    /// from then on the consumer may read it directly, without this wrapper in between.
    public var handedBack: (any PacketSource)? { inline ? pipe.innerSource : nil }

    public func next() throws(CaptureError) -> RawPacket? {
        if inline { return try pipe.innerSource.next() }
        while true {
            if finished { return nil }
            if let b = current {
                if index < b.entries.count {
                    let e = b.entries[index]
                    index += 1
                    let ahead = index + Self.prefetchDistance
                    if ahead < b.entries.count {
                        // The headers of a frame a few ahead, so that decoding does not wait on them.
                        let p = b.storage + b.entries[ahead].offset
                        rdptriage_prefetch(p)
                        rdptriage_prefetch(p + 64)
                    }
                    return RawPacket(
                        frameNumber: e.frameNumber, timestamp: e.timestamp, capturedLength: e.captured,
                        originalLength: e.original, linkType: e.linkType,
                        bytes: UnsafeRawBufferPointer(start: b.storage + e.offset, count: e.captured))
                }
                batchFilteredOut = b.filteredOut
                if b.handover {
                    // Every frame the reader read has been taken: the source is ours now.
                    current = nil
                    pipe.recycle(b)
                    inline = true
                    return try pipe.innerSource.next()
                }
                if let error = b.error {
                    finished = true
                    throw error
                }
                if b.ended {
                    finished = true
                    return nil
                }
                current = nil
                pipe.recycle(b)
            }
            current = pipe.take()
            index = 0
        }
    }

    /// One batch of frames: their bytes end to end, and where each starts.
    final class Batch: @unchecked Sendable {
        // Unchecked: a batch belongs to the reader or to the consumer, never both; the
        // semaphores and the lock of `Pipe` hand it over.
        struct Entry {
            var frameNumber: Int
            var timestamp: Timestamp
            var captured: Int
            var original: Int
            var linkType: LinkType
            var offset: Int
        }

        private(set) var storage: UnsafeMutableRawPointer
        private(set) var capacity: Int
        private(set) var used = 0
        var entries: [Entry] = []
        var filteredOut = 0
        var ended = false
        /// The reader stopped after this batch and left the source to the consumer.
        var handover = false
        var error: CaptureError?

        static let maxEntries = 8192

        init(capacity: Int) {
            self.capacity = capacity
            storage = .allocate(byteCount: capacity, alignment: 16)
            entries.reserveCapacity(Self.maxEntries)
        }

        deinit { storage.deallocate() }

        func reset() {
            used = 0
            entries.removeAll(keepingCapacity: true)
            ended = false
            handover = false
            error = nil
        }

        /// Whether a frame of `count` bytes goes in now.
        func fits(_ count: Int) -> Bool {
            entries.count < Self.maxEntries && count <= capacity - used
        }

        /// Copies a frame in; an empty batch grows to hold a frame larger than it.
        func append(_ p: RawPacket) {
            let n = p.bytes.count
            if n > capacity - used {
                // Only reached with no entries (see `Pipe.fill`): nothing to keep.
                storage.deallocate()
                capacity = n
                storage = .allocate(byteCount: capacity, alignment: 16)
                used = 0
            }
            if n > 0, let src = p.bytes.baseAddress { (storage + used).copyMemory(from: src, byteCount: n) }
            entries.append(
                Entry(
                    frameNumber: p.frameNumber, timestamp: p.timestamp, captured: n, original: p.originalLength,
                    linkType: p.linkType, offset: used))
            used += n
        }
    }

    /// The batches between the reader and the consumer.
    final class Pipe: @unchecked Sendable {
        // Unchecked: `inner` is used only by the reader thread after `init`; the queues are
        // guarded by `lock`; batches move as `Batch` says.
        private let inner: any PacketSource
        private let lock = Mutex<(full: [Batch], free: [Batch], cancelled: Bool)>(([], [], false))
        private let fullCount = DispatchSemaphore(value: 0)
        private let freeCount: DispatchSemaphore
        private let handoverRequested = Atomic<Bool>(false)

        init(_ inner: any PacketSource, batchBytes: Int, batches: Int) {
            self.inner = inner
            let all = (0..<batches).map { _ in Batch(capacity: batchBytes) }
            // Counted up from zero: libdispatch traps when a semaphore is released below its
            // starting value, as it would be here if the consumer left with batches unread.
            freeCount = DispatchSemaphore(value: 0)
            lock.withLock { $0.free = all }
            for _ in all { freeCount.signal() }
        }

        /// The reader's loop: fills batches until the inner source ends, fails or the
        /// consumer goes away.
        func fill() {
            guard var b = takeFree() else { return }
            do {
                while true {
                    if handoverRequested.load(ordering: .relaxed) {
                        b.handover = true
                        break
                    }
                    guard let p = try inner.next() else {
                        b.ended = true
                        break
                    }
                    if !b.fits(p.bytes.count) && !b.entries.isEmpty {
                        // Full: hand it over and carry this frame (still valid: the inner
                        // source is not read again before it is copied) into the next.
                        send(b)
                        guard let nb = takeFree() else { return }
                        b = nb
                    }
                    b.append(p)
                }
            } catch {
                b.error = error
            }
            // The last use of `inner` on this thread: after a handover the consumer reads it.
            send(b)
        }

        func requestHandover() { handoverRequested.store(true, ordering: .relaxed) }

        /// After the handover batch: the source, for the consumer's own reads.
        var innerSource: any PacketSource { inner }

        private func takeFree() -> Batch? {
            freeCount.wait()
            return lock.withLock { s -> Batch? in
                if s.cancelled { return nil }
                let b = s.free.removeLast()
                b.reset()
                return b
            }
        }

        private func send(_ b: Batch) {
            b.filteredOut = inner.filteredOut
            lock.withLock { $0.full.append(b) }
            fullCount.signal()
        }

        /// The next full batch, in order (blocks until the reader sends one).
        func take() -> Batch {
            fullCount.wait()
            return lock.withLock { $0.full.removeFirst() }
        }

        func recycle(_ b: Batch) {
            lock.withLock { $0.free.append(b) }
            freeCount.signal()
        }

        /// The consumer is gone: a reader waiting for a free batch stops.
        func cancel() {
            lock.withLock { $0.cancelled = true }
            freeCount.signal()
        }
    }
}
