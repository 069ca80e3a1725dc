import CPcap

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes a classic pcap file with nanosecond timestamps through libpcap's dump API, for
/// the small captures exported with a ticket.
public final class PcapWriter {
    private let dead: OpaquePointer
    private let dumper: OpaquePointer
    /// The name errors give (the file's final name, not the temporary one it is written under).
    public let path: String
    public let linkType: LinkType

    /// Writes to `descriptor`, which the caller opened (exclusively, so no link is followed);
    /// the writer owns it from here on, also when this throws.
    public init(descriptor: Int32, path: String, linkType: LinkType, snapshotLength: Int) throws(CaptureError) {
        self.path = path
        self.linkType = linkType
        guard let d = pcap_open_dead_with_tstamp_precision(
            linkType.rawValue, Int32(clamping: max(snapshotLength, 65535)), UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else {
            close(descriptor)
            throw CaptureError(input: path, kind: .unreadable, detail: "cannot prepare a capture writer")
        }
        guard let file = fdopen(descriptor, "wb") else {
            let e = errno
            close(descriptor)
            pcap_close(d)
            throw Self.writeError(path, errno: e)
        }
        guard let dump = pcap_dump_fopen(d, file) else {
            let message = String(cString: pcap_geterr(d))
            fclose(file)
            pcap_close(d)
            throw CaptureError(input: path, kind: .unreadable, detail: "cannot write the exported capture: \(message)")
        }
        dead = d
        dumper = dump
    }

    deinit {
        pcap_dump_close(dumper)
        pcap_close(dead)
    }

    public func write(_ bytes: [UInt8], timestamp: Timestamp, originalLength: Int) {
        var header = pcap_pkthdr()
        var secs = timestamp.nanoseconds / 1_000_000_000
        var nanos = timestamp.nanoseconds % 1_000_000_000
        if nanos < 0 {
            nanos += 1_000_000_000
            secs -= 1
        }
        header.ts.tv_sec = Int(secs)
        // With nanosecond precision libpcap reads this field as nanoseconds.
        header.ts.tv_usec = Int(nanos)
        header.caplen = UInt32(clamping: bytes.count)
        header.len = UInt32(clamping: max(originalLength, bytes.count))
        bytes.withUnsafeBufferPointer { buf in
            withUnsafePointer(to: &header) { h in
                pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), h, buf.baseAddress)
            }
        }
    }

    /// Flushes everything written so far. `pcap_dump` cannot report a failed write, but the
    /// stream keeps its error flag, so a full disk surfaces here at the latest.
    public func finish() throws(CaptureError) {
        if pcap_dump_flush(dumper) != 0 { throw Self.writeError(path, errno: errno) }
        if let f = pcap_dump_file(dumper), ferror(f) != 0 { throw Self.writeError(path, errno: EIO) }
    }

    static func writeError(_ path: String, errno e: Int32) -> CaptureError {
        CaptureError(input: path, kind: .unreadable, detail: "cannot write the exported capture: \(String(cString: strerror(e)))")
    }
}
