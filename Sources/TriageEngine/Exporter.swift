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
        let source: PcapFileSource
        do throws(CaptureError) { source = try PcapFileSource(path: input) } catch {
            for item in items { close(item.descriptor) }
            throw error
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
                snapshotLength: source.snapshotLength)
            writers[i] = w
            return w
        }
        let selections = items.map { Selection($0.attempt.facts) }
        let lastFrame = selections.map(\.last).max() ?? 0
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
                    if let rewrite { PacketRewriter.rewrite(&bytes, linkType: raw.linkType, rewrite) }
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

    /// Which frames belong to an attempt.
    struct Selection {
        let key: FlowKey
        let first: Int
        let last: Int
        let extra: Set<Int>

        init(_ f: AttemptFacts) {
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
