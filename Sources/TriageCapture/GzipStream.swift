import CZlib

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A gzip-compressed input (RFC 1952) read through zlib as a stdio stream, so that libpcap
/// and `PcapngReader` read a `.gz` capture as they read any other, one buffer at a time (the
/// file is never decompressed whole). Concatenated members (`cat a.gz b.gz`) are one stream,
/// as gzip(1) reads them.
///
/// The readers see a problem with the compressed data only as a failed read; `failure` keeps
/// what it was, with its offset in the compressed file, and `PcapFileSource` reports that
/// instead of the reader's message.
final class GzipStream {
    enum Failure: Equatable {
        /// zlib rejected the data (a bad header, an invalid block, a CRC or length mismatch).
        case corrupt(String, at: Int64)
        /// The compressed file ended inside a member.
        case cutShort(at: Int64)
        /// Bytes after a complete member that do not start another.
        case trailingData(at: Int64)
        case unreadable(Int32)
    }

    /// The decompressed stream for the readers; nil when it could not be made.
    private(set) var file: UnsafeMutablePointer<FILE>?
    private(set) var failure: Failure?
    /// Complete members read so far.
    private(set) var members = 0

    private let compressed: UnsafeMutablePointer<FILE>
    private let compressedBuffer: UnsafeMutablePointer<CChar>?
    private var z = z_stream()
    private var zlibReady = false
    private let input: UnsafeMutablePointer<UInt8>
    static let inputSize = 1 << 16
    private var inputEnded = false
    /// The last member ended and no other has started yet.
    private var betweenMembers = false
    /// Compressed bytes consumed by the members before the current one (zlib counts per member).
    private var consumedBefore: Int64 = 0

    /// Takes ownership of `compressed`, whose next bytes are the gzip data, and of the stdio
    /// buffer it was given (`buffer`, freed after it is closed).
    init(compressed: UnsafeMutablePointer<FILE>, buffer: UnsafeMutablePointer<CChar>?) {
        self.compressed = compressed
        compressedBuffer = buffer
        input = .allocate(capacity: Self.inputSize)
        zlibReady = rdptriage_inflate_init_gzip(&z) == Z_OK
        guard zlibReady else { return }
        file = rdptriage_open_read_stream(Unmanaged.passUnretained(self).toOpaque(), gzipRead)
    }

    /// The decompressed stream is closed first (by its reader); it holds this object unretained.
    deinit {
        if zlibReady { inflateEnd(&z) }
        fclose(compressed)
        compressedBuffer?.deallocate()
        input.deallocate()
    }

    /// Compressed bytes consumed so far: where zlib stopped, for messages.
    var compressedOffset: Int64 { consumedBefore + Int64(clamping: z.total_in) }

    /// The failure as the input's error.
    func error(input name: String) -> CaptureError? {
        switch failure {
        case nil: return nil
        case .corrupt(let message, let at):
            return CaptureError(input: name, kind: .corrupt, detail: "corrupt gzip data (\(message))", byteOffset: at)
        case .cutShort(let at):
            return CaptureError(
                input: name, kind: .truncated, detail: "gzip data cut short: the file ends inside its compressed data",
                byteOffset: at)
        case .trailingData(let at):
            return CaptureError(
                input: name, kind: .corrupt, detail: "data after the end of the gzip data that is not another gzip member",
                byteOffset: at)
        case .unreadable(let e):
            return CaptureError(input: name, kind: .unreadable, detail: "cannot read: \(String(cString: strerror(e)))")
        }
    }

    /// The stream's read function: up to `count` decompressed bytes; 0 at the end of the last
    /// member, -1 (errno EIO) once anything is wrong.
    fileprivate func read(into out: UnsafeMutablePointer<CChar>, count: Int) -> Int {
        guard failure == nil else { return fail() }
        guard count > 0 else { return 0 }
        let wanted = UInt32(clamping: count)
        z.next_out = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Bytef.self)
        z.avail_out = wanted
        while z.avail_out == wanted {
            if z.avail_in == 0 && !refill() { break }
            if betweenMembers {
                // gzip's magic starts with 0x1f; inflate checks the rest of the header.
                guard z.next_in.pointee == 0x1f else {
                    failure = .trailingData(at: compressedOffset)
                    break
                }
                consumedBefore += Int64(clamping: z.total_in)
                inflateReset(&z)
                betweenMembers = false
            }
            switch inflate(&z, Z_NO_FLUSH) {
            case Z_OK:
                continue
            case Z_BUF_ERROR where z.avail_in == 0:
                continue  // needs more input: the loop reads it
            case Z_STREAM_END:
                members += 1
                betweenMembers = true
            default:
                let message = z.msg.map { String(cString: $0) } ?? "zlib error"
                failure = .corrupt(message, at: compressedOffset)
            }
            if failure != nil { break }
        }
        let produced = Int(wanted - z.avail_out)
        z.next_out = nil
        z.avail_out = 0
        if produced > 0 { return produced }
        if failure != nil { return fail() }
        // The compressed file ended: after a whole member that is the end, else it was cut.
        if betweenMembers { return 0 }
        failure = .cutShort(at: compressedOffset)
        return fail()
    }

    private func fail() -> Int {
        errno = EIO
        return -1
    }

    /// Reads more compressed bytes; false at the end of the file or on a read error.
    private func refill() -> Bool {
        guard !inputEnded else { return false }
        let n = fread(input, 1, Self.inputSize, compressed)
        if n == 0 {
            if ferror(compressed) != 0 { failure = .unreadable(errno) }
            inputEnded = true
            return false
        }
        z.next_in = input
        z.avail_in = UInt32(n)
        return true
    }
}

/// The read function of the decompressed stream: the cookie is its `GzipStream`.
private func gzipRead(_ cookie: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int {
    guard let cookie, let buffer else { return -1 }
    return Unmanaged<GzipStream>.fromOpaque(cookie).takeUnretainedValue().read(into: buffer, count: size)
}
