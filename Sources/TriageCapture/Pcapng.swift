/// The pcapng block format (draft-ietf-opsawg-pcapng), as pure functions over one block's
/// bytes: they return typed values or a typed error and never trap, whatever the bytes.
/// `PcapngReader` frames the blocks of a stream and keeps the per-section state.
public enum Pcapng {
    /// Block types (pcapng section 11.1).
    public struct BlockType: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let sectionHeader = BlockType(rawValue: 0x0A0D_0D0A)
        public static let interfaceDescription = BlockType(rawValue: 0x0000_0001)
        /// Obsolete Packet Block (appendix A), still written by old tools and read by tshark.
        public static let packet = BlockType(rawValue: 0x0000_0002)
        public static let simplePacket = BlockType(rawValue: 0x0000_0003)
        public static let enhancedPacket = BlockType(rawValue: 0x0000_0006)
        /// Decryption Secrets Block (pcapng draft section 4.7).
        public static let decryptionSecrets = BlockType(rawValue: 0x0000_000A)
    }

    public enum ByteOrder: Sendable { case little, big }

    /// Section 4.1: the byte-order magic as written by a host of either order.
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D
    /// Every block has a type, a leading and a trailing length.
    public static let minimumBlockLength = 12
    /// A larger block is taken for corruption rather than buffered (libpcap's limit is the
    /// same order: 16 MiB), so a hostile length cannot make us allocate gigabytes.
    public static let maximumBlockLength = 16 << 20
    /// Option codes of the Interface Description Block (section 4.2).
    static let optionEnd: UInt16 = 0
    static let optionTimestampResolution: UInt16 = 9
    static let optionTimestampOffset: UInt16 = 14

    /// What is wrong with a block; `PcapngReader` adds the file and the byte offset.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case blockTooShort(length: UInt32, minimum: Int)
        case lengthNotMultipleOf4(UInt32)
        case blockTooLong(UInt32)
        case trailingLengthMismatch(leading: UInt32, trailing: UInt32)
        case badByteOrderMagic(UInt32)
        case unsupportedVersion(major: UInt16, minor: UInt16)
        case optionPastBlock(code: UInt16)
        case unknownInterface(id: UInt32, count: Int)
        case capturedPastBlock(captured: UInt32, room: Int)

        public var description: String {
            switch self {
            case .blockTooShort(let l, let m): "block length \(l) is shorter than the \(m) bytes this block needs"
            case .lengthNotMultipleOf4(let l): "block length \(l) is not a multiple of 4"
            case .blockTooLong(let l): "block length \(l) exceeds the \(maximumBlockLength >> 20) MiB a block may have"
            case .trailingLengthMismatch(let a, let b): "block length \(a) at its start but \(b) at its end"
            case .badByteOrderMagic(let m):
                "section header's byte-order magic is 0x\(String(m, radix: 16)), not 0x1a2b3c4d"
            case .unsupportedVersion(let a, let b): "unsupported pcapng version \(a).\(b) (1.x is read)"
            case .optionPastBlock(let c): "interface option \(c) runs past the end of its block"
            case .unknownInterface(let id, let n):
                "packet names interface \(id), but its section describes \(n == 0 ? "none" : "only \(n) (0-\(n - 1))")"
            case .capturedPastBlock(let c, let r): "captured length \(c) exceeds the \(r) bytes its block holds"
            }
        }
    }

    /// How an interface counts time (`if_tsresol`, default 10^-6 s; `if_tsoffset` seconds).
    public struct Clock: Equatable, Sendable {
        /// `if_tsresol`: with its top bit clear, ticks of 10^-n seconds, else of 2^-n.
        public var resolution: UInt8 = 6
        public var offsetSeconds: Int64 = 0

        /// A timestamp in ticks since the epoch, in nanoseconds (saturating: a hostile
        /// timestamp gives the end of time rather than a trap).
        @inline(__always)
        public func nanoseconds(_ ticks: UInt64) -> Int64 {
            let n = Int(resolution & 0x7F)
            var ns: UInt64
            if resolution & 0x80 == 0 {
                if n <= 9 {
                    let (v, o) = ticks.multipliedReportingOverflow(by: Self.powersOf10[9 - n])
                    ns = o ? UInt64.max : v
                } else {
                    ns = n - 9 < Self.powersOf10.count ? ticks / Self.powersOf10[n - 9] : 0
                }
            } else {
                // ticks / 2^n seconds, in 128 bits so the fraction keeps its precision.
                let (high, low) = ticks.multipliedFullWidth(by: 1_000_000_000)
                if n == 0 {
                    ns = high == 0 ? low : UInt64.max
                } else if n < 64 {
                    ns = high >> n == 0 ? high << (64 - n) | low >> n : UInt64.max
                } else {
                    ns = n - 64 < 64 ? high >> (n - 64) : 0
                }
            }
            let base = ns > UInt64(Int64.max) ? Int64.max : Int64(ns)
            guard offsetSeconds != 0 else { return base }
            let offset = Timestamp(seconds: offsetSeconds, nanos: 0).nanoseconds
            let (sum, overflow) = offset.addingReportingOverflow(base)
            return overflow ? Int64.max : sum
        }

        static let powersOf10: [UInt64] = (0..<20).reduce(into: []) { a, i in a.append(i == 0 ? 1 : a[i - 1] * 10) }
    }

    /// An Interface Description Block (section 4.2).
    public struct Interface: Equatable, Sendable {
        public var linkType: LinkType
        /// 0: no limit.
        public var snapLength: UInt32
        public var clock: Clock
    }

    /// Where a packet block's frame lies in the block, and what its header says.
    public struct PacketRecord: Equatable, Sendable {
        public var interface: Int
        /// In the interface's ticks; nil for a Simple Packet Block, which has none.
        public var ticks: UInt64?
        public var capturedLength: Int
        public var originalLength: Int
        /// Offset of the frame's first byte from the block's start.
        public var dataOffset: Int
    }

    /// A block's total length from its leading length field, checked before any of it is read.
    public static func checkedLength(_ raw: UInt32, minimum: Int = minimumBlockLength) throws(Problem) -> Int {
        guard raw & 3 == 0 else { throw .lengthNotMultipleOf4(raw) }
        guard Int(raw) >= minimum else { throw .blockTooShort(length: raw, minimum: minimum) }
        guard Int(raw) <= maximumBlockLength else { throw .blockTooLong(raw) }
        return Int(raw)
    }

    /// The byte order a Section Header Block declares (its bytes 8-11), with its version checked.
    public static func sectionByteOrder(_ block: UnsafeRawBufferPointer) throws(Problem) -> ByteOrder {
        guard let magic = read32(block, 8, .little) else { throw .blockTooShort(length: UInt32(block.count), minimum: 28) }
        let order: ByteOrder
        switch magic {
        case byteOrderMagic: order = .little
        case byteOrderMagic.byteSwapped: order = .big
        default: throw .badByteOrderMagic(magic)
        }
        return order
    }

    /// A whole Section Header Block: its byte order, with length, trailer and version checked.
    public static func sectionHeader(_ block: UnsafeRawBufferPointer) throws(Problem) -> ByteOrder {
        let order = try sectionByteOrder(block)
        try checkFrame(block, order, minimum: 28)
        guard let major = read16(block, 12, order), let minor = read16(block, 14, order) else {
            throw .blockTooShort(length: UInt32(block.count), minimum: 28)
        }
        guard major == 1 else { throw .unsupportedVersion(major: major, minor: minor) }
        return order
    }

    /// An Interface Description Block: link type, snapshot length and clock options.
    public static func interface(_ block: UnsafeRawBufferPointer, _ order: ByteOrder) throws(Problem) -> Interface {
        try checkFrame(block, order, minimum: 20)
        guard let type = read16(block, 8, order), let snap = read32(block, 12, order) else {
            throw .blockTooShort(length: UInt32(block.count), minimum: 20)
        }
        var clock = Clock()
        var at = 16
        let end = block.count - 4
        while at + 4 <= end {
            guard let code = read16(block, at, order), let length = read16(block, at + 2, order) else { break }
            if code == optionEnd { break }
            let valueEnd = at + 4 + Int(length)
            guard valueEnd <= end else { throw .optionPastBlock(code: code) }
            switch code {
            case optionTimestampResolution where length >= 1:
                clock.resolution = block[at + 4]
            case optionTimestampOffset where length >= 8:
                clock.offsetSeconds = Int64(bitPattern: read64(block, at + 4, order) ?? 0)
            default: break
            }
            at = valueEnd + (4 - Int(length) % 4) % 4
        }
        return Interface(linkType: LinkType(fileValue: UInt32(type)), snapLength: snap, clock: clock)
    }

    /// An Enhanced (section 4.3), Simple (4.4) or obsolete (appendix A) Packet Block, checked
    /// against the section's interfaces.
    public static func packet(_ block: UnsafeRawBufferPointer, type: BlockType, _ order: ByteOrder,
                              interfaces: [Interface]) throws(Problem) -> PacketRecord {
        let header: Int
        let interface: UInt32
        var ticks: UInt64?
        let captured: UInt32
        let original: UInt32
        switch type {
        case .simplePacket:
            header = 12
            try checkFrame(block, order, minimum: 16)
            interface = 0
            original = read32(block, 8, order) ?? 0
            guard !interfaces.isEmpty else { throw .unknownInterface(id: 0, count: 0) }
            // The captured length is implied: the snapshot length bounds it (section 4.4).
            let snap = interfaces[0].snapLength
            captured = snap == 0 ? original : min(original, snap)
        case .enhancedPacket, .packet:
            header = 28
            try checkFrame(block, order, minimum: 32)
            let id = type == .packet ? UInt32(read16(block, 8, order) ?? 0) : read32(block, 8, order) ?? 0
            interface = id
            let high = UInt64(read32(block, 12, order) ?? 0)
            ticks = high << 32 | UInt64(read32(block, 16, order) ?? 0)
            captured = read32(block, 20, order) ?? 0
            original = read32(block, 24, order) ?? 0
        default:
            throw .blockTooShort(length: UInt32(block.count), minimum: 32)
        }
        guard Int(interface) < interfaces.count else { throw .unknownInterface(id: interface, count: interfaces.count) }
        let room = block.count - header - 4
        guard Int(captured) <= room else { throw .capturedPastBlock(captured: captured, room: room) }
        // A captured length above the interface's snapshot length is read as it is: the block
        // holds the bytes, and tshark reads such frames too.
        return PacketRecord(
            interface: Int(interface), ticks: ticks, capturedLength: Int(captured), originalLength: Int(original),
            dataOffset: header)
    }

    /// A block's length fields agree, and it is long enough for its fixed part.
    static func checkFrame(_ block: UnsafeRawBufferPointer, _ order: ByteOrder, minimum: Int) throws(Problem) {
        guard let leading = read32(block, 4, order) else { throw .blockTooShort(length: UInt32(block.count), minimum: minimum) }
        guard block.count >= minimum else { throw .blockTooShort(length: leading, minimum: minimum) }
        let trailing = read32(block, block.count - 4, order) ?? 0
        guard trailing == leading else { throw .trailingLengthMismatch(leading: leading, trailing: trailing) }
    }

    // Bounds-checked reads: nil when the bytes are not there.
    @inline(__always)
    static func read<T: FixedWidthInteger>(_ b: UnsafeRawBufferPointer, _ at: Int, _ order: ByteOrder, as: T.Type) -> T? {
        guard at >= 0, at <= b.count - MemoryLayout<T>.size else { return nil }
        let v = b.loadUnaligned(fromByteOffset: at, as: T.self)
        return order == .little ? T(littleEndian: v) : T(bigEndian: v)
    }

    @inline(__always)
    static func read16(_ b: UnsafeRawBufferPointer, _ at: Int, _ order: ByteOrder) -> UInt16? { read(b, at, order, as: UInt16.self) }
    @inline(__always)
    static func read32(_ b: UnsafeRawBufferPointer, _ at: Int, _ order: ByteOrder) -> UInt32? { read(b, at, order, as: UInt32.self) }
    @inline(__always)
    static func read64(_ b: UnsafeRawBufferPointer, _ at: Int, _ order: ByteOrder) -> UInt64? { read(b, at, order, as: UInt64.self) }
}
