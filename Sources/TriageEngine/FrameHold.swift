import Synchronization
import TriageCapture
import TriageDecoding
import TriageFlows

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How much `live --export` keeps of the connections still open.
public struct FrameHoldLimits: Sendable {
    /// Bytes of frames kept per connection. The first quarter keeps the connection's first
    /// frames (the setup, where most failures show); the rest is a ring of its latest frames.
    public var perSession = 1 << 20
    /// Bytes kept over all connections (preallocated once: `total / perSession` connections at
    /// a time; past that the connection quiet the longest gives its frames up).
    public var total = 128 << 20
    /// DNS answers and ICMP errors (which belong to a connection only once it ends) keep a
    /// ring of their own.
    public var sideBytes = 1 << 20

    public init() {}
}

/// What the frame hold dropped so far (the summary and the metrics count them).
public struct FrameHoldStats: Sendable, Codable, Equatable {
    /// Frames of open connections overwritten by their connection's newer frames.
    public var framesEvicted = 0
    /// Open connections whose frames were given up to make room for another connection.
    public var sessionsEvicted = 0
    /// Frames larger than a connection's ring, not kept.
    public var framesTooLarge = 0

    public init() {}
}

/// An ended connection's held frames, handed to the export: one block of bytes and an index.
/// The memory is its own (freed with it), so the export can run on another thread.
public final class HeldFrames: @unchecked Sendable {
    // Unchecked: immutable after `init`.
    struct Frame {
        var number: Int
        var time: Timestamp
        var originalLength: Int
        var length: Int
        var linkType: LinkType
        var offset: Int
    }
    let frames: [Frame]
    let storage: UnsafeMutableRawBufferPointer
    public let snapshotLength: Int
    public var count: Int { frames.count }

    init(frames: [Frame], bytes: Int, snapshotLength: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        self.frames = frames
        self.snapshotLength = snapshotLength
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes), alignment: 8)
        fill(storage)
    }

    deinit { storage.deallocate() }

    /// The frames, in frame-number order, as a packet source (frame numbers as captured).
    public func source(name: String) -> any PacketSource { Source(self, name: name) }

    final class Source: PacketSource {
        let held: HeldFrames
        let name: String
        let linkType: LinkType
        let filteredOut = 0
        var position = 0
        init(_ h: HeldFrames, name: String) {
            held = h
            self.name = name
            linkType = h.frames.first?.linkType ?? LinkType(rawValue: 1)
        }
        func next() throws(CaptureError) -> RawPacket? {
            guard position < held.frames.count else { return nil }
            let f = held.frames[position]
            position += 1
            return RawPacket(
                frameNumber: f.number, timestamp: f.time, capturedLength: f.length, originalLength: f.originalLength,
                linkType: f.linkType,
                bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(held.storage)[f.offset..<(f.offset + f.length)]))
        }
    }
}

/// `live --export`: the recent frames of each open connection, copied into storage allocated
/// once at the start (no allocation per packet), so that a failed attempt's own pcap can be
/// written the moment it ends. Each connection has a slot of `perSession` bytes: its first
/// frames fill the first quarter and stay; later frames go round a ring in the rest, the
/// oldest overwritten (counted). When every slot is taken, the connection that was quiet the
/// longest loses its slot (counted). Touched on the packet thread only.
final class FrameHold {
    let limits: FrameHoldLimits
    private(set) var stats = FrameHoldStats()
    private let arena: UnsafeMutableRawPointer
    private let slotBytes: Int
    private var slots: [Slot]
    private var side: Slot
    private var index: [FlowKey: Int] = [:]
    private var free: [Int]
    private let snapshotLength: Int
    /// Frame header in the arena: number, time, original length, length, link type.
    static let header = 32

    struct Slot {
        var key: FlowKey?
        var base: Int
        var size: Int
        /// Bytes of the kept first frames; `headOpen` while they still fit in the first quarter.
        var head = 0
        var headOpen = true
        /// The ring after the head: oldest record, write position, where the data wraps
        /// (-1: not wrapped), records in it.
        var tail = 0
        var write = 0
        var wrap = -1
        var count = 0
        var lastUse = 0

        init(base: Int, size: Int, headLimit: Bool) {
            self.base = base
            self.size = size
            headOpen = headLimit
        }

        mutating func reset() {
            key = nil
            head = 0
            headOpen = true
            tail = 0
            write = 0
            wrap = -1
            count = 0
        }
    }

    init(limits: FrameHoldLimits, snapshotLength: Int) {
        self.limits = limits
        self.snapshotLength = snapshotLength
        slotBytes = max(64 << 10, limits.perSession) & ~7
        let count = max(1, limits.total / slotBytes)
        let sideBytes = max(64 << 10, limits.sideBytes) & ~7
        // Pages are only touched as frames arrive: a large bound costs nothing until used.
        arena = UnsafeMutableRawPointer.allocate(byteCount: count * slotBytes + sideBytes, alignment: 8)
        let size = slotBytes
        slots = (0..<count).map { Slot(base: $0 * size, size: size, headLimit: true) }
        side = Slot(base: count * slotBytes, size: sideBytes, headLimit: false)
        side.headOpen = false
        free = Array((0..<count).reversed())
        index.reserveCapacity(count)
    }

    deinit { arena.deallocate() }

    var connections: Int { slots.count }

    /// Keeps one frame: a TCP frame in its connection's slot, a DNS or ICMP error frame in the
    /// side ring, anything else not at all.
    func add(_ p: DecodedPacket, _ raw: RawPacket) {
        guard !p.problem.blocksTransport else { return }
        switch p.transport {
        case IPProto.tcp:
            let key = FlowKey(Endpoint(p.source, p.tcp.sourcePort), Endpoint(p.destination, p.tcp.destinationPort))
            let i = slot(for: key)
            slots[i].lastUse = raw.frameNumber
            store(raw, in: &slots[i])
        case IPProto.udp where p.udpSourcePort == 53 || p.udpDestinationPort == 53:
            store(raw, in: &side)
        case IPProto.icmp where p.icmp.isError, IPProto.icmpv6 where p.icmp.isError:
            store(raw, in: &side)
        default:
            return
        }
    }

    private func slot(for key: FlowKey) -> Int {
        if let i = index[key] { return i }
        let i: Int
        if let f = free.popLast() {
            i = f
        } else {
            // The connection quiet the longest gives its slot up.
            var oldest = 0
            for j in 1..<slots.count where slots[j].lastUse < slots[oldest].lastUse { oldest = j }
            i = oldest
            if let k = slots[i].key { index[k] = nil }
            stats.sessionsEvicted += 1
        }
        slots[i].reset()
        slots[i].key = key
        index[key] = i
        return i
    }

    private func recordSize(_ length: Int) -> Int { (Self.header + length + 7) & ~7 }

    private func store(_ raw: RawPacket, in s: inout Slot) {
        let length = raw.bytes.count
        let need = recordSize(length)
        if s.headOpen {
            if s.head + need <= s.size / 4 {
                put(raw, at: s.base + s.head)
                s.head += need
                return
            }
            s.headOpen = false
        }
        let start = s.head
        let end = s.size
        guard need <= end - start else {
            stats.framesTooLarge += 1
            return
        }
        while true {
            if s.count == 0 {
                s.tail = start
                s.write = start
                s.wrap = -1
            }
            if s.wrap < 0 {
                if s.write + need <= end { break }
                // Go round: the data now ends at `wrap`, writing restarts at the ring's start.
                s.wrap = s.write
                s.write = start
                continue
            }
            if s.write + need <= s.tail { break }
            // Overwrite the oldest record.
            s.tail += recordSize(Int(arena.load(fromByteOffset: s.base + s.tail + 20, as: Int32.self)))
            s.count -= 1
            stats.framesEvicted += 1
            if s.tail >= s.wrap {
                s.tail = start
                s.wrap = -1
                if s.count == 0 { continue }
                // What is left runs from the start to `write`: no longer wrapped.
            }
        }
        put(raw, at: s.base + s.write)
        s.write += need
        s.count += 1
    }

    private func put(_ raw: RawPacket, at offset: Int) {
        let p = arena + offset
        p.storeBytes(of: Int64(raw.frameNumber), toByteOffset: 0, as: Int64.self)
        p.storeBytes(of: raw.timestamp.nanoseconds, toByteOffset: 8, as: Int64.self)
        p.storeBytes(of: Int32(truncatingIfNeeded: raw.originalLength), toByteOffset: 16, as: Int32.self)
        p.storeBytes(of: Int32(truncatingIfNeeded: raw.bytes.count), toByteOffset: 20, as: Int32.self)
        p.storeBytes(of: raw.linkType.rawValue, toByteOffset: 24, as: Int32.self)
        if let b = raw.bytes.baseAddress, raw.bytes.count > 0 {
            (p + Self.header).copyMemory(from: b, byteCount: raw.bytes.count)
        }
    }

    /// The record offsets of a slot, oldest first: its head, then its ring.
    private func records(_ s: Slot) -> [Int] {
        var out: [Int] = []
        func walk(_ from: Int, _ to: Int) {
            var o = from
            while o < to {
                out.append(s.base + o)
                o += recordSize(Int(arena.load(fromByteOffset: s.base + o + 20, as: Int32.self)))
            }
        }
        walk(0, s.head)
        if s.count > 0 {
            if s.wrap >= 0 {
                walk(s.tail, s.wrap)
                walk(s.head, s.write)
            } else {
                walk(s.tail, s.write)
            }
        }
        return out
    }

    /// The frames held for an ended connection (its slot is freed), with the DNS and ICMP
    /// frames of its time span; nil when none are held.
    func take(_ key: FlowKey, first: FrameRef, last: FrameRef) -> HeldFrames? {
        guard let i = index.removeValue(forKey: key) else { return nil }
        var offsets = records(slots[i])
        slots[i].reset()
        free.append(i)
        offsets += records(side).filter {
            let n = Int(arena.load(fromByteOffset: $0, as: Int64.self))
            // DNS before the connection named its server; ICMP errors come within it.
            return n <= last.frame && arena.load(fromByteOffset: $0 + 8, as: Int64.self) >= first.time.nanoseconds &- 3_600_000_000_000
        }
        var frames: [HeldFrames.Frame] = []
        frames.reserveCapacity(offsets.count)
        var total = 0
        for o in offsets {
            let length = Int(arena.load(fromByteOffset: o + 20, as: Int32.self))
            frames.append(
                HeldFrames.Frame(
                    number: Int(arena.load(fromByteOffset: o, as: Int64.self)),
                    time: Timestamp(nanoseconds: arena.load(fromByteOffset: o + 8, as: Int64.self)),
                    originalLength: Int(arena.load(fromByteOffset: o + 16, as: Int32.self)), length: length,
                    linkType: LinkType(rawValue: arena.load(fromByteOffset: o + 24, as: Int32.self)), offset: total))
            total += length
        }
        guard !frames.isEmpty else { return nil }
        let order = frames.indices.sorted { frames[$0].number < frames[$1].number }
        let sources = offsets
        return HeldFrames(frames: order.map { frames[$0] }, bytes: total, snapshotLength: snapshotLength) { dst in
            for k in order {
                let f = frames[k]
                if f.length > 0 {
                    (dst.baseAddress! + f.offset).copyMemory(from: arena + sources[k] + Self.header, byteCount: f.length)
                }
            }
        }
    }
}

/// Held frames of ended connections, waiting for their verdict on the report thread.
public final class HeldFramesHandoff: Sendable {
    private let waiting = Mutex<[Int: HeldFrames]>([:])
    private let counters = Mutex(FrameHoldStats())

    public init() {}

    func put(_ id: Int, _ frames: HeldFrames) { waiting.withLock { $0[id] = frames } }

    /// The frames held for the attempt with this id (once).
    public func take(_ id: Int) -> HeldFrames? { waiting.withLock { $0.removeValue(forKey: id) } }

    func update(_ s: FrameHoldStats) { counters.withLock { $0 = s } }

    /// What the hold dropped so far.
    public var stats: FrameHoldStats { counters.withLock { $0 } }
}
