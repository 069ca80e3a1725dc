import CPcap

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a pcap or pcapng file (or standard input, `-`), with nanosecond timestamps whatever
/// the file's resolution: classic pcap through libpcap, pcapng through `PcapngReader`, which
/// (unlike libpcap) reads files whose interfaces have different link types. Either may be
/// gzip-compressed (`GzipStream`); the first bytes decide, not the file's name.
///
/// Before libpcap sees a named file we check it ourselves, so that a directory, an empty
/// file or a file of another format gets a message that says so plainly.
public final class PcapFileSource: PacketSource {
    public let name: String
    public let linkType: LinkType
    public var filteredOut: Int { pcapng?.filteredOut ?? libpcapFilteredOut }
    private var libpcapFilteredOut = 0
    /// The file is classic pcap (so record offsets can be computed), not pcapng.
    public let isClassicPcap: Bool
    /// The snapshot length the file declares.
    public let snapshotLength: Int
    /// The file's link types, each once: the first is `linkType`; pcapng files may have more
    /// (those of the interfaces described before the first frame).
    public let linkTypes: [LinkType]
    /// TLS key logs from the pcapng file's Decryption Secrets Blocks read so far (those before
    /// its first frame once opened).
    public var tlsKeyLogs: [String] { pcapng?.tlsKeyLogs ?? [] }

    /// libpcap's handle for classic pcap; nil for pcapng, which `pcapng` reads.
    private let handle: OpaquePointer?
    private let pcapng: PcapngReader?
    /// The stream `pcapng` reads (libpcap owns it otherwise).
    private let file: UnsafeMutablePointer<FILE>
    /// The decompressor under `file` for a gzip-compressed input; released after `file` is closed.
    private let gzip: GzipStream?
    /// The input is gzip-compressed: offsets in the readers' messages are in the decompressed data.
    public var isCompressed: Bool { gzip != nil }
    private var program = bpf_program()
    private var hasFilter = false
    private var frameNumber = 0
    /// Byte offset of the next record in a classic pcap file.
    private var nextRecordOffset: Int64 = 24
    private var finished = false
    /// The stdio buffer libpcap reads through, freed after the stream is closed; for a
    /// compressed input the decompressor reads the file through it, and owns it.
    private let readBuffer: UnsafeMutablePointer<CChar>?
    static let readBufferSize = 1 << 20

    /// Magic numbers of the formats libpcap reads (pcap-savefile(5), pcapng draft section 4.1).
    static let magics: [UInt32: String] = [
        0xa1b2_c3d4: "pcap", 0xd4c3_b2a1: "pcap (swapped)", 0xa1b2_3c4d: "pcap (ns)",
        0x4d3c_b2a1: "pcap (ns, swapped)", 0x0a0d_0d0a: "pcapng",
    ]

    public init(path: String, filter: String? = nil) throws(CaptureError) {
        name = path
        // One descriptor serves our checks and libpcap, so the file checked is the file read.
        let fd = path == "-" ? dup(STDIN_FILENO) : open(path, O_RDONLY)
        guard fd >= 0 else { throw Self.unreadable(path, errno: errno) }
        if path != "-" {
            do throws(CaptureError) { try Self.precheck(path, fd: fd) } catch {
                close(fd)
                throw error
            }
        }
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        // We open the stream ourselves to give it a large buffer: libpcap reads each record
        // with two small freads, and stdio's default buffer (a page) meant a read(2) every
        // 4 KiB, a tenth of a run's time.
        guard let raw = fdopen(fd, "rb") else {
            let e = errno
            close(fd)
            throw Self.unreadable(path, errno: e)
        }
        var file = raw
        var gzip: GzipStream?
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Self.readBufferSize)
        setvbuf(raw, buffer, _IOFBF, Self.readBufferSize)
        if let m = Self.peekMagic(raw), m >> 16 == Self.gzipMagic {
            // The readers read the decompressed stream (through stdio's own buffer); the
            // decompressor reads the file through the large one.
            let g = GzipStream(compressed: raw, buffer: buffer)
            guard let decompressed = g.file else {
                throw CaptureError(input: path, kind: .unreadable, detail: "cannot decompress gzip data on this system")
            }
            file = decompressed
            gzip = g
            do throws(CaptureError) { try Self.checkDecompressedMagic(file, gzip: g, path) } catch {
                fclose(file)
                throw error
            }
        }
        self.gzip = gzip
        let ownBuffer: UnsafeMutablePointer<CChar>? = gzip == nil ? buffer : nil
        if Self.peekMagic(file) == Self.pcapngMagic {
            readBuffer = ownBuffer
            self.file = file
            handle = nil
            isClassicPcap = false
            let reader: PcapngReader
            do throws(CaptureError) { reader = try PcapngReader(file: file, name: path) } catch {
                fclose(file)
                ownBuffer?.deallocate()
                throw gzip?.error(input: path) ?? error.decompressed(gzip != nil)
            }
            pcapng = reader
            let first = reader.firstInterface
            linkType = first.linkType
            linkTypes = reader.openingLinkTypes
            // No limit (0) is what libpcap reports as its largest snapshot length.
            snapshotLength = first.snapLength == 0 ? 262_144 : Int(clamping: first.snapLength)
            // From here on `deinit` closes the stream, also when the initializer throws.
            try Self.checkLinkType(linkType, path)
            if let filter, !filter.isEmpty { try reader.setFilter(filter) }
            return
        }
        guard let h = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf)
        else {
            // libpcap leaves the stream open when it refuses it.
            fclose(file)
            ownBuffer?.deallocate()
            let message = String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw gzip?.error(input: path) ?? Self.openError(path: path, message: message).decompressed(gzip != nil)
        }
        readBuffer = ownBuffer
        self.file = file
        handle = h
        pcapng = nil
        isClassicPcap = pcap_major_version(h) == 2
        snapshotLength = Int(pcap_snapshot(h))
        let dlt = LinkType(rawValue: pcap_datalink(h))
        linkType = dlt
        linkTypes = [dlt]
        // From here on `deinit` closes the handle, also when the initializer throws.
        try Self.checkLinkType(dlt, path)
        if let filter, !filter.isEmpty {
            // The filter is applied by us, not by libpcap, so that frame numbers still count
            // every frame in the file and match Wireshark's.
            if pcap_compile(h, &program, filter, 1, PCAP_NETMASK_UNKNOWN) != 0 {
                let msg = String(cString: pcap_geterr(h))
                throw CaptureError(input: path, kind: .badFilter, detail: "bad BPF filter \"\(filter)\": \(msg)")
            }
            hasFilter = true
        }
    }

    deinit {
        if hasFilter { pcap_freecode(&program) }
        if let handle {
            pcap_close(handle)  // closes the stream too
        } else {
            fclose(file)
        }
        readBuffer?.deallocate()
    }

    /// pcapng's first block type, the Section Header Block's (the same in either byte order).
    static let pcapngMagic: UInt32 = 0x0A0D_0D0A
    /// gzip's first two bytes (RFC 1952, section 2.3.1).
    static let gzipMagic: UInt32 = 0x1F8B

    /// What a gzip-compressed input holds must be a capture; said plainly when it is not.
    static func checkDecompressedMagic(_ file: UnsafeMutablePointer<FILE>, gzip: GzipStream, _ path: String)
        throws(CaptureError)
    {
        let magic = peekMagic(file)
        if let e = gzip.error(input: path) { throw e }
        guard let magic else {
            throw CaptureError(input: path, kind: .empty, detail: "gzip-compressed, and holds too few bytes to be a capture")
        }
        guard magics[magic] == nil else { return }
        let head = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: magic >> $0) }
        let hex = head.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        throw CaptureError(
            input: path, kind: .notACapture,
            detail: "gzip-compressed, but not a pcap or pcapng file inside (first bytes 0x\(hex)\(describeForeign(head)))",
            byteOffset: 0)
    }

    /// The first four bytes, big-endian, put back for whoever reads the stream next (libpcap
    /// or `PcapngReader`): a pipe cannot be rewound, and glibc's `ungetc` takes back as many
    /// bytes as were just read. nil when fewer than four came (libpcap then says what is wrong).
    static func peekMagic(_ file: UnsafeMutablePointer<FILE>) -> UInt32? {
        var head: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        let n = withUnsafeMutableBytes(of: &head) { fread($0.baseAddress, 1, 4, file) }
        withUnsafeBytes(of: head) { bytes in
            for i in stride(from: n - 1, through: 0, by: -1) { ungetc(Int32(bytes[i]), file) }
        }
        guard n == 4 else { return nil }
        return UInt32(head.0) << 24 | UInt32(head.1) << 16 | UInt32(head.2) << 8 | UInt32(head.3)
    }

    static func checkLinkType(_ dlt: LinkType, _ path: String) throws(CaptureError) {
        guard !dlt.isSupported else { return }
        let dltName = pcap_datalink_val_to_name(dlt.rawValue).map { String(cString: $0) } ?? "unknown"
        throw CaptureError(
            input: path, kind: .unsupportedLinkType,
            detail: "unsupported link type \(dlt.rawValue) (\(dltName)); rdptriage reads Ethernet, Linux cooked v1/v2, raw IP and BSD loopback")
    }

    public func next() throws(CaptureError) -> RawPacket? {
        guard let gzip else { return try nextFrame() }
        // A failed read of the compressed data shows to the readers as a cut or unreadable
        // file: the decompressor's own account replaces theirs.
        do throws(CaptureError) {
            if let p = try nextFrame() { return p }
        } catch {
            throw gzip.error(input: name) ?? error.decompressed(true)
        }
        if let e = gzip.error(input: name) { throw e }
        return nil
    }

    // Inlined: `next` wraps it for gzip inputs, and a call per frame showed in profiles.
    @inline(__always)
    private func nextFrame() throws(CaptureError) -> RawPacket? {
        if let pcapng { return try pcapng.next() }
        guard let handle else { return nil }
        while true {
            if finished { return nil }
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let recordOffset = isClassicPcap ? nextRecordOffset : nil
            let rc = pcap_next_ex(handle, &header, &data)
            switch rc {
            case 1:
                guard let header, let data else { continue }
                frameNumber += 1
                let caplen = Int(header.pointee.caplen)
                nextRecordOffset += 16 + Int64(caplen)
                if hasFilter && pcap_offline_filter(&program, header, data) == 0 {
                    libpcapFilteredOut += 1
                    continue
                }
                let ts = Timestamp(seconds: seconds(header.pointee.ts.tv_sec), nanos: Int64(header.pointee.ts.tv_usec))
                return RawPacket(
                    frameNumber: frameNumber, timestamp: ts, capturedLength: caplen,
                    originalLength: Int(header.pointee.len), linkType: linkType,
                    bytes: UnsafeRawBufferPointer(start: data, count: caplen))
            case PCAP_ERROR_BREAK:
                finished = true
                return nil
            default:
                finished = true
                let msg = String(cString: pcap_geterr(handle))
                throw Self.readError(
                    path: name, message: msg, recordOffset: recordOffset, fileOffset: currentFileOffset(),
                    frame: frameNumber + 1)
            }
        }
    }

    /// A record's seconds. Classic pcap stores them unsigned 32-bit (pcap-savefile(5)), but
    /// libpcap reads them signed, so from 2038 (0x80000000) on they come back negative: 2040
    /// would read as 1904. pcapng's 64-bit timestamps come through whole.
    private func seconds(_ tvSec: Int) -> Int64 {
        isClassicPcap ? Int64(UInt32(truncatingIfNeeded: tvSec)) : Int64(tvSec)
    }

    private func currentFileOffset() -> Int64? {
        guard let handle, let f = pcap_file(handle) else { return nil }
        let o = ftell(f)
        return o >= 0 ? Int64(o) : nil
    }

    static func unreadable(_ path: String, errno e: Int32) -> CaptureError {
        if e == ENOENT { return CaptureError(input: path, kind: .notFound, detail: "no such file") }
        return CaptureError(input: path, kind: .unreadable, detail: "cannot read: \(String(cString: strerror(e)))")
    }

    /// Checks a named file before libpcap reads it, for clearer messages. `pread` leaves the
    /// descriptor's offset at 0 for libpcap.
    static func precheck(_ path: String, fd: Int32) throws(CaptureError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw unreadable(path, errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw CaptureError(input: path, kind: .isDirectory, detail: "is a directory, not a capture file")
        }
        // A pipe (`<(zcat f.pcap.gz)`) cannot be peeked at without taking bytes from libpcap:
        // libpcap's own checks speak for it.
        guard (st.st_mode & S_IFMT) == S_IFREG else { return }
        var head = [UInt8](repeating: 0, count: 4)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 4, 0) }
        if n < 0 { throw unreadable(path, errno: errno) }
        if n == 0 { throw CaptureError(input: path, kind: .empty, detail: "empty file (0 bytes)") }
        guard n == 4 else {
            throw CaptureError(
                input: path, kind: .notACapture, detail: "too short to be a capture (\(n) bytes)", byteOffset: 0)
        }
        let be = UInt32(head[0]) << 24 | UInt32(head[1]) << 16 | UInt32(head[2]) << 8 | UInt32(head[3])
        guard magics[be] != nil || be >> 16 == gzipMagic else {
            let hex = head.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            throw CaptureError(
                input: path, kind: .notACapture,
                detail: "not a pcap or pcapng file (first bytes 0x\(hex)\(describeForeign(head)))", byteOffset: 0)
        }
    }

    /// A hint for common non-capture files handed to us by mistake.
    static func describeForeign(_ head: [UInt8]) -> String {
        if head == [0x50, 0x4b, 0x03, 0x04] { return ", looks like a zip archive" }
        if head.allSatisfy({ ($0 >= 0x20 && $0 < 0x7f) || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            return ", looks like text"
        }
        return ""
    }

    static func openError(path: String, message: String) -> CaptureError {
        let lower = message.lowercased()
        // Not a byte came (an empty pipe or standard input; an empty named file is caught
        // before libpcap): libpcap's first read, the 4-byte magic, got nothing.
        if lower.contains("tried to read 4 file header bytes, only got 0") {
            return CaptureError(input: path, kind: .empty, detail: "empty input (0 bytes)")
        }
        if lower.contains("truncated") {
            return CaptureError(input: path, kind: .truncated, detail: "file cut inside its header (\(message))", byteOffset: 0)
        }
        if lower.contains("unknown file format") || lower.contains("bad dump file format") {
            return CaptureError(input: path, kind: .notACapture, detail: "not a pcap or pcapng file (\(message))", byteOffset: 0)
        }
        if lower.contains("no such file") {
            return CaptureError(input: path, kind: .notFound, detail: "no such file")
        }
        return CaptureError(input: path, kind: .corrupt, detail: "cannot open capture: \(message)", byteOffset: 0)
    }

    static func readError(path: String, message: String, recordOffset: Int64?, fileOffset: Int64?, frame: Int)
        -> CaptureError
    {
        let lower = message.lowercased()
        let kind: CaptureError.Kind = lower.contains("truncated") ? .truncated : .corrupt
        let what = kind == .truncated ? "file cut in the middle of frame \(frame)" : "corrupt record at frame \(frame)"
        return CaptureError(input: path, kind: kind, detail: "\(what): \(message)", byteOffset: recordOffset ?? fileOffset)
    }
}
