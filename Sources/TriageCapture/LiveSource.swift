import CPcap

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a live capture hands out next: a frame, or word that the wire was quiet for a while
/// (so the caller can move its clock on and check whether it was asked to stop).
public enum LiveEvent {
    case packet(RawPacket)
    /// Nothing arrived within the poll interval; `now` is the wall clock, in the packets' time base.
    case idle(now: Timestamp)
}

/// libpcap's counters for a live capture (pcap_stats(3PCAP)).
public struct LiveCaptureStats: Sendable, Equatable, Codable {
    /// Packets the filter accepted (on Linux: that reached the buffer).
    public var received: UInt64
    /// Dropped because the buffer was full: we did not read fast enough.
    public var droppedByKernel: UInt64
    /// Dropped by the interface or its driver (where the platform says).
    public var droppedByInterface: UInt64

    public init(received: UInt64, droppedByKernel: UInt64, droppedByInterface: UInt64) {
        self.received = received
        self.droppedByKernel = droppedByKernel
        self.droppedByInterface = droppedByInterface
    }
}

/// Captures from a network interface through libpcap: a short buffer timeout (packets handed
/// over at most `pollMilliseconds` after they arrive, so a verdict follows the attempt's end
/// closely), non-blocking reads and a poll with the same timeout, so the caller gets control
/// back at least that often to move its clock and to notice a stop request.
public final class LiveSource: PacketSource {
    public let name: String
    public let linkType: LinkType
    /// The kernel filter drops what we do not follow; nothing is skipped after it.
    public let filteredOut = 0
    public let snapshotLength: Int
    /// The filter compiled into the kernel.
    public let filter: String
    private let handle: OpaquePointer
    private let selectable: Int32
    private let pollMilliseconds: Int32
    private var frameNumber = 0
    /// Frames handed out so far.
    public var framesRead: Int { frameNumber }

    /// What `--filter` replaces: TCP to and from the RDP ports, UDP to and from them (RDP's
    /// UDP transport), DNS, and ICMP/ICMPv6 errors (which quote the TCP segment they answer).
    public static func defaultFilter(ports: [UInt16]) -> String {
        // BPF's "and" and "or" bind equally, left to right: every clause is parenthesised.
        let p = (ports.isEmpty ? [3389] : ports).map { "port \($0)" }.joined(separator: " or ")
        return "(tcp and (\(p))) or (udp and (\(p) or port 53))"
            + " or (icmp and (icmp[0] = 3 or icmp[0] = 4 or icmp[0] = 5 or icmp[0] = 11 or icmp[0] = 12))"
            + " or (icmp6 and icmp6[0] < 128)"
    }

    /// Opens `interface` (`any`: every interface, on Linux) and starts capturing.
    /// - Throws: `CaptureError` of kind `.permission` (no capture rights), `.noSuchInterface`,
    ///   `.badFilter` or `.interface` (anything else libpcap refuses), each with one line to show.
    public init(interface: String, filter: String, snapLength: Int = 262_144, bufferBytes: Int = 32 << 20,
                pollMilliseconds: Int32 = 100) throws(CaptureError) {
        name = interface
        self.filter = filter
        self.pollMilliseconds = max(1, pollMilliseconds)
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let h = pcap_create(interface, &errbuf) else {
            throw CaptureError(input: interface, kind: .interface, detail: "cannot open: \(Self.text(errbuf))")
        }
        pcap_set_snaplen(h, Int32(clamping: snapLength))
        pcap_set_promisc(h, 0)
        // A short buffer timeout, not immediate mode: on Linux immediate mode means a ring of
        // frames each as large as the snapshot length (256 KiB), so 16 MiB held 64 packets
        // and a burst of short attempts overflowed it; with the timeout, packets are packed
        // into blocks and handed over at most `pollMilliseconds` late.
        pcap_set_timeout(h, max(1, pollMilliseconds))
        pcap_set_buffer_size(h, Int32(clamping: bufferBytes))
        // Nanosecond stamps where the platform has them; the file reader's precision too.
        _ = pcap_set_tstamp_precision(h, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let rc = pcap_activate(h)
        if rc < 0 {
            let message = String(cString: pcap_geterr(h))
            pcap_close(h)
            throw Self.activationError(interface: interface, code: rc, message: message)
        }
        handle = h
        // From here on `deinit` closes the handle, also when the initializer throws.
        snapshotLength = Int(pcap_snapshot(h))
        linkType = LinkType(rawValue: pcap_datalink(h))
        var program = bpf_program()
        if pcap_compile(h, &program, filter, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            let msg = String(cString: pcap_geterr(h))
            selectable = -1
            throw CaptureError(input: interface, kind: .badFilter, detail: "bad BPF filter \"\(filter)\": \(msg)")
        }
        let set = pcap_setfilter(h, &program)
        pcap_freecode(&program)
        if set != 0 {
            selectable = -1
            throw CaptureError(
                input: interface, kind: .badFilter, detail: "cannot set filter: \(String(cString: pcap_geterr(h)))")
        }
        if pcap_setnonblock(h, 1, &errbuf) != 0 {
            selectable = -1
            throw CaptureError(input: interface, kind: .interface, detail: "cannot read without blocking: \(Self.text(errbuf))")
        }
        selectable = pcap_get_selectable_fd(h)
        guard linkType.isSupported else {
            let dltName = pcap_datalink_val_to_name(linkType.rawValue).map { String(cString: $0) } ?? "unknown"
            throw CaptureError(
                input: interface, kind: .unsupportedLinkType,
                detail: "unsupported link type \(linkType.rawValue) (\(dltName)); rdptriage reads Ethernet, Linux cooked v1/v2, raw IP and BSD loopback")
        }
    }

    deinit { pcap_close(handle) }

    /// The next frame, or `.idle` after `pollMilliseconds` of quiet. Throws when the capture
    /// cannot go on (the interface went down or was removed).
    public func nextEvent() throws(CaptureError) -> LiveEvent {
        var waited = false
        while true {
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let rc = pcap_next_ex(handle, &header, &data)
            if rc == 1, let header, let data {
                frameNumber += 1
                let caplen = Int(header.pointee.caplen)
                // tv_usec holds nanoseconds: the precision was set to nano at activation.
                let nanos = pcap_get_tstamp_precision(handle) == Int32(PCAP_TSTAMP_PRECISION_NANO)
                    ? Int64(header.pointee.ts.tv_usec) : Int64(header.pointee.ts.tv_usec) * 1000
                let ts = Timestamp(seconds: Int64(header.pointee.ts.tv_sec), nanos: nanos)
                return .packet(
                    RawPacket(
                        frameNumber: frameNumber, timestamp: ts, capturedLength: caplen,
                        originalLength: Int(header.pointee.len), linkType: linkType,
                        bytes: UnsafeRawBufferPointer(start: data, count: caplen)))
            }
            if rc == 0 || rc == 1 {
                if waited { return .idle(now: Self.now()) }
                waited = true
                if selectable >= 0 {
                    var p = pollfd(fd: selectable, events: Int16(POLLIN), revents: 0)
                    // EINTR (a signal) simply ends the wait early.
                    _ = poll(&p, 1, pollMilliseconds)
                } else {
                    usleep(UInt32(pollMilliseconds) * 1000)
                }
                continue
            }
            if rc == PCAP_ERROR_BREAK { return .idle(now: Self.now()) }
            let message = String(cString: pcap_geterr(handle))
            throw CaptureError(input: name, kind: .interface, detail: "capture stopped: \(message)")
        }
    }

    /// PacketSource's view: frames only, `nil` never (a live capture ends when its caller stops).
    public func next() throws(CaptureError) -> RawPacket? {
        while true {
            if case .packet(let p) = try nextEvent() { return p }
        }
    }

    /// libpcap's counters so far; nil where the platform cannot say.
    public func stats() -> LiveCaptureStats? {
        var s = pcap_stat()
        guard pcap_stats(handle, &s) == 0 else { return nil }
        return LiveCaptureStats(
            received: UInt64(s.ps_recv), droppedByKernel: UInt64(s.ps_drop), droppedByInterface: UInt64(s.ps_ifdrop))
    }

    /// The wall clock as a packet timestamp (libpcap stamps with the same clock).
    public static func now() -> Timestamp {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Timestamp(seconds: Int64(t.tv_sec), nanos: Int64(t.tv_nsec))
    }

    /// The interfaces libpcap can capture on, with their descriptions (pcap_findalldevs).
    public static func interfaces() throws(CaptureError) -> [(name: String, description: String?, up: Bool)] {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        var list: UnsafeMutablePointer<pcap_if_t>?
        guard pcap_findalldevs(&list, &errbuf) == 0 else {
            throw CaptureError(input: "interfaces", kind: .interface, detail: "cannot list interfaces: \(text(errbuf))")
        }
        defer { pcap_freealldevs(list) }
        var result: [(name: String, description: String?, up: Bool)] = []
        var d = list
        while let dev = d {
            let flags = dev.pointee.flags
            result.append(
                (String(cString: dev.pointee.name), dev.pointee.description.map { String(cString: $0) },
                 flags & UInt32(PCAP_IF_UP) != 0))
            d = dev.pointee.next
        }
        return result
    }

    static func text(_ errbuf: [CChar]) -> String {
        String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What went wrong at pcap_activate, in words that say what to do.
    static func activationError(interface: String, code: Int32, message: String) -> CaptureError {
        switch code {
        case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED:
            return CaptureError(
                input: interface, kind: .permission,
                detail: "no permission to capture (needs CAP_NET_RAW and CAP_NET_ADMIN): run as root, grant them to the binary "
                    + "(sudo setcap cap_net_raw,cap_net_admin=eip $(command -v rdptriage)), or run it as a systemd service "
                    + "with AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN")
        case PCAP_ERROR_NO_SUCH_DEVICE:
            var names = (try? interfaces())?.map(\.name) ?? []
            if names.isEmpty { names = ["(none found)"] }
            return CaptureError(
                input: interface, kind: .noSuchInterface,
                detail: "no such interface; interfaces: " + names.joined(separator: ", "))
        case PCAP_ERROR_IFACE_NOT_UP:
            return CaptureError(input: interface, kind: .interface, detail: "interface is down")
        default:
            return CaptureError(input: interface, kind: .interface, detail: "cannot capture: \(message)")
        }
    }
}
