import CPcap

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a pcapng stream block by block: sections of either byte order, each with its own
/// interfaces, and every interface with its own link type, snapshot length and clock.
/// libpcap's reader takes one link type per file and fails on a file that mixes them (what
/// `mergecap` makes of an Ethernet and a raw-IP capture, or dumpcap of `-i eth0 -i any`).
///
/// Blocks are read whole into one reused buffer and parsed in place by `Pcapng`; a frame's
/// bytes point into that buffer, valid until the next call (as `PacketSource` promises).
/// Nothing is allocated per frame.
final class PcapngReader {
    let name: String
    /// The first section's first interface: what the file is said to be.
    private(set) var firstInterface = Pcapng.Interface(linkType: .ethernet, snapLength: 0, clock: .init())
    private(set) var filteredOut = 0
    /// The link types of the interfaces described before the first frame, each once.
    private(set) var openingLinkTypes: [LinkType] = []

    private let file: UnsafeMutablePointer<FILE>
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// The unread bytes are `buffer[start..<end]`; `buffer[0]` is at `bufferOffset` in the input.
    private var start = 0
    private var end = 0
    private var bufferOffset: Int64 = 0
    private var atEnd = false
    private var order = Pcapng.ByteOrder.little
    private var interfaces: [Pcapng.Interface] = []
    private var frameNumber = 0
    private var inSection = false
    private var filter: Filter?
    /// The TLS key logs of Decryption Secrets Blocks (secrets type 0x544c534b), in file order.
    private(set) var tlsKeyLogs: [String] = []

    static let initialCapacity = 4 << 20

    /// Reads the first section's interfaces up to its first frame, so the file's link types and
    /// snapshot length are known before any frame, and a file that describes no interface is an
    /// error.
    init(file: UnsafeMutablePointer<FILE>, name: String) throws(CaptureError) {
        self.file = file
        self.name = name
        capacity = Self.initialCapacity
        buffer = .allocate(byteCount: capacity, alignment: 16)
        interfaces.reserveCapacity(8)
        // A packet block before any interface is read, to fail: it names one its section lacks.
        while let type = try peekType() {
            if !interfaces.isEmpty && (Self.isPacket(type) || type == .sectionHeader) { break }
            _ = try readBlock(oneBlock: true)
        }
        guard !interfaces.isEmpty else {
            throw CaptureError(
                input: name, kind: .corrupt, detail: "pcapng file describes no interface (no Interface Description Block)",
                byteOffset: bufferOffset + Int64(start))
        }
        firstInterface = interfaces[0]
        for i in interfaces where !openingLinkTypes.contains(i.linkType) { openingLinkTypes.append(i.linkType) }
    }

    deinit { buffer.deallocate() }

    /// Applies a BPF filter to every frame, compiled for each interface's link type.
    func setFilter(_ expression: String) throws(CaptureError) {
        let f = Filter(expression: expression)
        filter = f
        if let problem = f.compile(for: firstInterface.linkType) {
            throw CaptureError(input: name, kind: .badFilter, detail: "bad BPF filter \"\(expression)\": \(problem)")
        }
        // The other interfaces read so far; later ones are compiled for as they come.
        for (k, i) in interfaces.enumerated() {
            if let problem = f.compile(for: i.linkType), i.linkType.isSupported {
                throw CaptureError(
                    input: name, kind: .badFilter,
                    detail: "bad BPF filter \"\(expression)\" for interface \(k) (\(i.linkType)): \(problem)")
            }
        }
    }

    func next() throws(CaptureError) -> RawPacket? {
        while true {
            guard let p = try readBlock() else { return nil }
            if let filter {
                var header = pcap_pkthdr()
                header.caplen = UInt32(p.capturedLength)
                header.len = UInt32(clamping: p.originalLength)
                let keep = p.bytes.withMemoryRebound(to: UInt8.self) {
                    filter.matches(p.linkType, &header, $0.baseAddress)
                }
                if !keep {
                    filteredOut += 1
                    continue
                }
            }
            return p
        }
    }

    /// Reads blocks until one holds a frame (nil at the end of the input), taking in section
    /// headers and interfaces on the way and skipping blocks of other types; with `oneBlock`,
    /// returns nil after one block that holds no frame instead of going on.
    private func readBlock(oneBlock: Bool = false) throws(CaptureError) -> RawPacket? {
        while true {
            let blockOffset = bufferOffset + Int64(start)
            guard try fill(8) else {
                if end == start { return nil }
                throw truncated(at: blockOffset, type: nil, needed: 8)
            }
            let type = Pcapng.BlockType(rawValue: Pcapng.read32(unread, 0, order) ?? 0)
            if !inSection && type != .sectionHeader {
                throw CaptureError(
                    input: name, kind: .notACapture, detail: "not a pcapng file (no Section Header Block first)",
                    byteOffset: blockOffset)
            }
            if type == .sectionHeader {
                // The section's byte order (from its magic) says how to read its own length.
                guard try fill(12) else { throw truncated(at: blockOffset, type: type, needed: 12) }
                do throws(Pcapng.Problem) { order = try Pcapng.sectionByteOrder(unread) } catch {
                    throw corrupt(error, at: blockOffset, type: type)
                }
            }
            let length: Int
            do throws(Pcapng.Problem) {
                length = try Pcapng.checkedLength(Pcapng.read32(unread, 4, order) ?? 0)
            } catch {
                throw corrupt(error, at: blockOffset, type: type)
            }
            guard try fill(length) else { throw truncated(at: blockOffset, type: type, needed: length) }
            let block = UnsafeRawBufferPointer(start: buffer + start, count: length)
            start += length
            switch type {
            case .sectionHeader:
                do throws(Pcapng.Problem) { order = try Pcapng.sectionHeader(block) } catch {
                    throw corrupt(error, at: blockOffset, type: type)
                }
                inSection = true
                interfaces.removeAll(keepingCapacity: true)
                if oneBlock { return nil }
            case .interfaceDescription:
                let i: Pcapng.Interface
                do throws(Pcapng.Problem) { i = try Pcapng.interface(block, order) } catch {
                    throw corrupt(error, at: blockOffset, type: type)
                }
                // A link type we do not decode may reject the filter: its frames are skipped anyway.
                if let filter, let problem = filter.compile(for: i.linkType), i.linkType.isSupported {
                    throw CaptureError(
                        input: name, kind: .badFilter,
                        detail: "bad BPF filter \"\(filter.expression)\" for interface \(interfaces.count) (\(i.linkType)): \(problem)",
                        byteOffset: blockOffset)
                }
                interfaces.append(i)
                if oneBlock { return nil }
            case .enhancedPacket, .simplePacket, .packet:
                frameNumber += 1
                let r: Pcapng.PacketRecord
                do throws(Pcapng.Problem) { r = try Pcapng.packet(block, type: type, order, interfaces: interfaces) } catch {
                    throw corrupt(error, at: blockOffset, type: type)
                }
                let i = interfaces[r.interface]
                let ns = r.ticks.map { i.clock.nanoseconds($0) } ?? 0
                return RawPacket(
                    frameNumber: frameNumber, timestamp: Timestamp(nanoseconds: ns), capturedLength: r.capturedLength,
                    originalLength: r.originalLength, linkType: i.linkType,
                    bytes: UnsafeRawBufferPointer(rebasing: block[r.dataOffset..<(r.dataOffset + r.capturedLength)]))
            case .decryptionSecrets:
                // Secrets type (4), secrets length (4), the secrets; a block too short is skipped.
                if let kind = Pcapng.read32(block, 8, order), kind == 0x544C_534B,
                    let n = Pcapng.read32(block, 12, order), Int(n) <= length - 16
                {
                    tlsKeyLogs.append(String(decoding: block[16..<(16 + Int(n))], as: UTF8.self))
                }
                if oneBlock { return nil }
            default:
                if oneBlock { return nil }
            }
        }
    }

    /// The next block's type, without taking it; nil at the end of the input (or when it ends
    /// inside the block's header, which reading the block reports).
    private func peekType() throws(CaptureError) -> Pcapng.BlockType? {
        guard try fill(8) else { return nil }
        return Pcapng.BlockType(rawValue: Pcapng.read32(unread, 0, order) ?? 0)
    }

    /// The bytes read and not yet taken.
    private var unread: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: buffer + start, count: end - start) }

    /// Makes `count` unread bytes available in the buffer; false when the input ends first.
    private func fill(_ count: Int) throws(CaptureError) -> Bool {
        if end - start >= count { return true }
        if start > 0 {
            // What is left is less than one block: moving it is cheap.
            if end > start { memmove(buffer, buffer + start, end - start) }
            bufferOffset += Int64(start)
            end -= start
            start = 0
        }
        if count > capacity {
            // `count` is at most `Pcapng.maximumBlockLength`.
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
            if end > 0 { bigger.copyMemory(from: buffer, byteCount: end) }
            buffer.deallocate()
            buffer = bigger
            capacity = count
        }
        while end < count && !atEnd {
            let got = fread(buffer + end, 1, capacity - end, file)
            end += got
            if got == 0 {
                if ferror(file) != 0 {
                    throw CaptureError(
                        input: name, kind: .unreadable, detail: "cannot read: \(String(cString: strerror(errno)))",
                        byteOffset: bufferOffset + Int64(end))
                }
                atEnd = true
            }
        }
        return end >= count
    }

    private func truncated(at offset: Int64, type: Pcapng.BlockType?, needed: Int) -> CaptureError {
        let have = end - start
        let what =
            type.map(Self.isPacket) == true
            ? "file cut in the middle of frame \(frameNumber + 1)" : "file cut in the middle of a pcapng block"
        return CaptureError(
            input: name, kind: .truncated, detail: "\(what) (\(have) of its \(needed) bytes present)", byteOffset: offset)
    }

    private func corrupt(_ problem: Pcapng.Problem, at offset: Int64, type: Pcapng.BlockType) -> CaptureError {
        let block: String
        switch type {
        case .sectionHeader: block = "section header block"
        case .interfaceDescription: block = "interface description block"
        case .enhancedPacket, .simplePacket, .packet: block = "packet block at frame \(frameNumber)"
        default: block = "block of type 0x\(String(type.rawValue, radix: 16))"
        }
        return CaptureError(input: name, kind: .corrupt, detail: "corrupt pcapng \(block): \(problem)", byteOffset: offset)
    }

    private static func isPacket(_ t: Pcapng.BlockType) -> Bool {
        t == .enhancedPacket || t == .simplePacket || t == .packet
    }

    /// A BPF filter compiled once per link type met: each interface's frames go through the
    /// program of its own link type, so one filter serves a file that mixes them.
    final class Filter {
        let expression: String
        private var programs: [(LinkType, UnsafeMutablePointer<bpf_program>?)] = []

        init(expression: String) { self.expression = expression }

        deinit {
            for (_, p) in programs {
                guard let p else { continue }
                pcap_freecode(p)
                p.deallocate()
            }
        }

        /// Compiles for `linkType` unless done; the compiler's complaint when it fails.
        func compile(for linkType: LinkType) -> String? {
            if let known = programs.first(where: { $0.0 == linkType }) {
                return known.1 == nil ? "it does not compile for \(linkType)" : nil
            }
            guard let dead = pcap_open_dead(linkType.rawValue, 262_144) else { return "cannot prepare the compiler" }
            defer { pcap_close(dead) }
            let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
            program.initialize(to: bpf_program())
            if pcap_compile(dead, program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
                program.deallocate()
                programs.append((linkType, nil))
                return String(cString: pcap_geterr(dead))
            }
            programs.append((linkType, program))
            return nil
        }

        /// Whether a frame passes; frames of a link type the filter does not compile for do not.
        @inline(__always)
        func matches(_ linkType: LinkType, _ header: inout pcap_pkthdr, _ data: UnsafePointer<UInt8>?) -> Bool {
            for (t, p) in programs where t == linkType {
                guard let p else { return false }
                return pcap_offline_filter(p, &header, data) != 0
            }
            return false
        }
    }
}
