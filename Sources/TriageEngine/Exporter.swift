#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageFlows
import TriageProtocols

/// Writes an attempt's own frames as a small pcap, so the evidence travels with a ticket:
/// its TCP frames, the ICMP errors tied to it and the DNS exchanges that named its server,
/// with their original frame times (frame numbers restart at 1 in the new file).
public enum Exporter {
    public struct Item {
        public var attempt: Attempt
        /// Where the pcap goes: a descriptor the caller opened for writing (the export owns it
        /// from here on), and the name errors give.
        public var descriptor: Int32
        public var path: String

        public init(attempt: Attempt, descriptor: Int32, path: String) {
            self.attempt = attempt
            self.descriptor = descriptor
            self.path = path
        }
    }

    /// Reads `input` again and writes each item's frames. Returns the number of frames
    /// written per item, in order; throws when the input cannot be read or a pcap not be
    /// written completely. Every descriptor is closed when this returns.
    public static func export(input: String, items: [Item], rewrite: PacketRewrite?) throws(CaptureError) -> [Int] {
        guard !items.isEmpty else { return [] }
        let snapshotLength: Int
        do throws(CaptureError) { snapshotLength = try PcapFileSource(path: input).snapshotLength } catch {
            for item in items { close(item.descriptor) }
            throw error
        }
        return try export(
            input: input, items: items, rewrite: rewrite, snapshotLength: snapshotLength,
            open: { () throws(CaptureError) -> any PacketSource in try PcapFileSource(path: input) })
    }

    /// The same from frames that `open` reads (again for each pass): a file, or the frames
    /// `live --export` held for an attempt (`HeldFrames.source`), with their original numbers.
    public static func export(
        input: String, items: [Item], rewrite: PacketRewrite?, snapshotLength: Int,
        open: () throws(CaptureError) -> any PacketSource
    ) throws(CaptureError) -> [Int] {
        guard !items.isEmpty else { return [] }
        let source: any PacketSource
        do throws(CaptureError) { source = try open() } catch {
            for item in items { close(item.descriptor) }
            throw error
        }
        let selections = items.map { Selection($0.attempt.facts) }
        let lastFrame = selections.map(\.last).max() ?? 0
        // Names in TCP payloads are found in each connection's reassembled streams first
        // (a certificate spans segments), then written into the frames that carry them.
        var edits: [StreamEdits] = []
        if let rewrite {
            do throws(CaptureError) { edits = try streamEdits(try open(), selections, lastFrame: lastFrame, rewrite) } catch {
                for item in items { close(item.descriptor) }
                throw error
            }
        }
        // Each pcap gets the link type of its first frame (a pcapng input may mix them), so
        // writers are made when that frame comes; one that got none is made at the end.
        var writers = [PcapWriter?](repeating: nil, count: items.count)
        var pending = Set(items.indices)
        func closePending() {
            for i in pending { close(items[i].descriptor) }
            pending.removeAll()
        }
        func writer(_ i: Int, _ linkType: LinkType) throws(CaptureError) -> PcapWriter {
            if let w = writers[i] { return w }
            pending.remove(i)
            let w = try PcapWriter(
                descriptor: items[i].descriptor, path: items[i].path, linkType: linkType,
                snapshotLength: snapshotLength)
            writers[i] = w
            return w
        }
        var counts = [Int](repeating: 0, count: items.count)
        var decoded = DecodedPacket()
        do throws(CaptureError) {
            while let raw = try source.next() {
                if raw.frameNumber > lastFrame { break }
                PacketDecoder.decode(raw.bytes, linkType: raw.linkType, into: &decoded)
                for (i, s) in selections.enumerated() where s.contains(raw.frameNumber, decoded) {
                    let w = try writer(i, raw.linkType)
                    guard w.linkType == raw.linkType else {
                        throw CaptureError(
                            input: items[i].path, kind: .unsupportedLinkType,
                            detail: "cannot export: the attempt's frames come from interfaces of different link types (\(w.linkType), then \(raw.linkType) at frame \(raw.frameNumber)); a pcap file holds one")
                    }
                    var bytes = Array(raw.bytes)
                    if let rewrite {
                        let payload =
                            i >= edits.count ? []
                            : decoded.transport == IPProto.tcp
                                ? edits[i].payloadEdits(decoded, client: s.client)
                                : edits[i].quotedEdits(bytes, decoded, client: s.client)
                        PacketRewriter.rewrite(&bytes, linkType: raw.linkType, rewrite, payload: payload)
                    }
                    w.write(bytes, timestamp: raw.timestamp, originalLength: raw.originalLength)
                    counts[i] += 1
                }
            }
            for i in items.indices { try writer(i, source.linkType).finish() }
        } catch {
            closePending()
            throw error
        }
        return counts
    }

    /// Reads the input once to gather the start of each selected connection's two streams
    /// and find the names in them.
    static func streamEdits(_ source: any PacketSource, _ selections: [Selection], lastFrame: Int, _ rw: PacketRewrite)
        throws(CaptureError) -> [StreamEdits]
    {
        var prefixes = selections.map { _ in (client: StreamPrefix(), server: StreamPrefix()) }
        var decoded = DecodedPacket()
        while let raw = try source.next() {
            if raw.frameNumber > lastFrame { break }
            PacketDecoder.decode(raw.bytes, linkType: raw.linkType, into: &decoded)
            guard decoded.transport == IPProto.tcp, !decoded.problem.blocksTransport else { continue }
            for (i, s) in selections.enumerated() where s.contains(raw.frameNumber, decoded) {
                let end = min(raw.bytes.count, decoded.payloadOffset + decoded.payloadLength)
                let payload = decoded.payloadOffset < end ? Array(raw.bytes[decoded.payloadOffset..<end]) : []
                if Endpoint(decoded.source, decoded.tcp.sourcePort) == s.client {
                    prefixes[i].client.add(decoded.tcp, payload)
                } else {
                    prefixes[i].server.add(decoded.tcp, payload)
                }
            }
        }
        return prefixes.map { p in
            StreamEdits(
                client: (p.client.base, p.client.edits(NameLocator.clientStream, rw)),
                server: (p.server.base, p.server.edits(NameLocator.serverStream, rw)))
        }
    }

    /// The first bytes of one direction of a connection, placed by sequence number.
    struct StreamPrefix {
        /// The names sit in a connection's first PDUs; a certificate chain fits well within this.
        static let limit = 128 * 1024
        /// Sequence number of the stream's first byte (after the SYN; else the first data seen).
        var base: UInt32?
        var bytes: [UInt8] = []
        var known: [Bool] = []

        mutating func add(_ tcp: TCPHeader, _ payload: [UInt8]) {
            if tcp.flags.contains(.syn) {
                if base == nil { base = tcp.sequence &+ 1 }
                return
            }
            guard !payload.isEmpty else { return }
            if base == nil { base = tcp.sequence }
            guard let base else { return }
            let offset = Int(Int32(bitPattern: tcp.sequence &- base))
            guard offset >= 0, offset < Self.limit else { return }
            let end = min(Self.limit, offset + payload.count)
            if bytes.count < end {
                bytes += [UInt8](repeating: 0, count: end - bytes.count)
                known += [Bool](repeating: false, count: end - known.count)
            }
            for i in offset..<end where !known[i] {
                bytes[i] = payload[i - offset]
                known[i] = true
            }
        }

        /// Each run of known bytes is searched on its own: when the capture missed a segment
        /// (a lost X.224 answer, a ClientHello only acknowledged), the records after it still
        /// carry names.
        func edits(_ locate: ([UInt8]) -> [NameField], _ rw: PacketRewrite) -> [(Int, [UInt8])] {
            var out: [(Int, [UInt8])] = []
            var i = 0
            while i < known.count {
                guard known[i] else {
                    i += 1
                    continue
                }
                var j = i
                while j < known.count && known[j] { j += 1 }
                let run = Array(bytes[i..<j])
                for f in locate(run) {
                    guard let parts = f.replacement(for: rw.name(f), in: run) else { continue }
                    for (r, b) in zip(f.ranges, parts) { out.append((r.lowerBound + i, b)) }
                }
                i = j
            }
            return out
        }
    }

    /// Where to overwrite names in each direction of a connection: stream offsets from `base`.
    struct StreamEdits {
        var client: (base: UInt32?, edits: [(Int, [UInt8])])
        var server: (base: UInt32?, edits: [(Int, [UInt8])])

        /// The edits that fall in this segment, at offsets into its payload.
        func payloadEdits(_ p: DecodedPacket, client endpoint: Endpoint) -> [PayloadEdit] {
            guard p.transport == IPProto.tcp, !p.problem.blocksTransport, p.payloadLength > 0 else { return [] }
            let side = Endpoint(p.source, p.tcp.sourcePort) == endpoint ? client : server
            guard let base = side.base, !side.edits.isEmpty else { return [] }
            let offset = Int(Int32(bitPattern: p.tcp.sequence &- base))
            return side.edits.compactMap { (at, bytes) in
                at + bytes.count > offset && at < offset + p.payloadLength ? PayloadEdit(offset: at - offset, bytes: bytes) : nil
            }
        }

        /// An ICMP error quoting one of the connection's segments with its payload (ICMPv6
        /// quotes as much as fits): the same edits at the quoted payload, as offsets into the
        /// ICMP payload (which starts with the quoted IP header).
        func quotedEdits(_ f: [UInt8], _ p: DecodedPacket, client endpoint: Endpoint) -> [PayloadEdit] {
            guard p.icmp.isError, let q = p.icmp.quoted, q.proto == IPProto.tcp, let sequence = q.tcpSequence else { return [] }
            let inner = p.payloadOffset
            guard inner < f.count else { return [] }
            let v6 = f[inner] >> 4 == 6
            let ipHeader = v6 ? 40 : Int(f[inner] & 0x0f) * 4
            // The quoted IP datagram's own length bounds its payload (padding may follow).
            let ipLength = v6 ? (inner + 6 < f.count ? 40 + (Int(f[inner + 4]) << 8 | Int(f[inner + 5])) : 0)
                : (inner + 3 < f.count ? Int(f[inner + 2]) << 8 | Int(f[inner + 3]) : 0)
            guard ipHeader >= 20, inner + ipHeader + 13 <= f.count, !v6 || f[inner + 6] == IPProto.tcp else { return [] }
            let tcpHeader = Int(f[inner + ipHeader + 12] >> 4) * 4
            let start = ipHeader + tcpHeader
            let end = min(f.count - inner, ipLength)
            guard tcpHeader >= 20, start < end else { return [] }
            let side = Endpoint(q.source, q.sourcePort) == endpoint ? client : server
            guard let base = side.base, !side.edits.isEmpty else { return [] }
            let offset = Int(Int32(bitPattern: sequence &- base))
            // Clipped at both ends: the quoted headers before the payload are not a name's.
            return side.edits.compactMap { (at, bytes) in
                let from = max(at, offset)
                let to = min(at + bytes.count, offset + end - start)
                return from < to ? PayloadEdit(offset: start + from - offset, bytes: Array(bytes[(from - at)..<(to - at)])) : nil
            }
        }
    }

    /// Which frames belong to an attempt.
    struct Selection {
        let client: Endpoint
        let key: FlowKey
        let first: Int
        let last: Int
        let extra: Set<Int>

        init(_ f: AttemptFacts) {
            client = f.tcp.client
            key = FlowKey(f.tcp.client, f.tcp.server)
            var extra = Set(f.tcp.icmp.map(\.at.frame))
            for d in f.dns {
                extra.insert(d.response.frame)
                if let q = d.query { extra.insert(q.frame) }
            }
            self.extra = extra
            first = min(f.tcp.first.frame, extra.min() ?? Int.max)
            last = max(f.tcp.last.frame, extra.max() ?? 0)
        }

        func contains(_ frame: Int, _ p: DecodedPacket) -> Bool {
            guard frame >= first, frame <= last else { return false }
            if extra.contains(frame) { return true }
            guard p.transport == IPProto.tcp, !p.problem.blocksTransport else { return false }
            return FlowKey(Endpoint(p.source, p.tcp.sourcePort), Endpoint(p.destination, p.tcp.destinationPort)) == key
        }
    }
}
