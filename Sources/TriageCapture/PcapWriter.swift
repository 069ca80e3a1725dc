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
    public let path: String

    public init(path: String, linkType: LinkType, snapshotLength: Int) throws(CaptureError) {
        self.path = path
        guard let d = pcap_open_dead_with_tstamp_precision(
            linkType.rawValue, Int32(clamping: max(snapshotLength, 65535)), UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else {
            throw CaptureError(input: path, kind: .unreadable, detail: "cannot prepare a capture writer")
        }
        guard let dump = pcap_dump_open(d, path) else {
            let message = String(cString: pcap_geterr(d))
            pcap_close(d)
            throw CaptureError(input: path, kind: .unreadable, detail: "cannot write: \(message)")
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

    public func flush() { pcap_dump_flush(dumper) }
}
