import Foundation
import TriageCapture

/// Writes a capture byte for byte from a description of what each side sent: Ethernet,
/// IPv4 and TCP with each side's sequence numbers, IP IDs and TTLs kept as a real stack
/// would. A segment can be sent without being captured (`captured: false`), to stage loss
/// between the sender and the capture point. The expected verdicts of tests built on it
/// come from how the script was written, never from the tool.
final class WireScript {
    enum Who { case c, s }

    struct Host {
        var mac: [UInt8]
        var ip: [UInt8]
        var port: UInt16
        var ttl: UInt8
        var ipID: UInt16
        /// Next sequence number to send.
        var next: UInt32
        /// Highest sequence number of the peer received (what this side acknowledges).
        var received: UInt32 = 0
    }

    static let fin: UInt8 = 0x01
    static let syn: UInt8 = 0x02
    static let rst: UInt8 = 0x04
    static let psh: UInt8 = 0x08
    static let ack: UInt8 = 0x10

    var client: Host
    var server: Host
    /// Capture time of the next frame, nanoseconds since the epoch.
    var now: Int64
    private(set) var frames: [(bytes: [UInt8], time: Int64)] = []

    init(clientPort: UInt16 = 50_000, start: Int64 = 1_700_000_000_000_000_000) {
        client = Host(mac: [2, 0, 0, 0, 0, 1], ip: [192, 0, 2, 10], port: clientPort, ttl: 117, ipID: 0x1000, next: 1_000)
        server = Host(mac: [2, 0, 0, 0, 0, 2], ip: [198, 51, 100, 20], port: 3389, ttl: 126, ipID: 0x6000, next: 900_000)
        now = start
    }

    /// Frame number (1-based) the next captured frame gets.
    var nextFrame: Int { frames.count + 1 }

    /// Sends one segment. `seq` resends from an earlier sequence number (a retransmission);
    /// `acking` false leaves the ACK number where it was; `captured` false keeps the frame
    /// out of the capture while the sender's state moves on. Returns the frame number, or
    /// nil when the segment was not captured.
    @discardableResult
    func send(_ who: Who, _ flags: UInt8, _ payload: [UInt8] = [], after seconds: Double = 0.001, seq: UInt32? = nil,
              ack: UInt32? = nil, captured: Bool = true, options: [UInt8] = []) -> Int? {
        now += Int64(seconds * 1e9)
        var me = who == .c ? client : server
        var peer = who == .c ? server : client
        let sequence = seq ?? me.next
        let acknowledgment = ack ?? me.received
        var bytes = me.mac + peer.mac + [0x08, 0x00]
        let tcpLength = 20 + options.count
        var tcp: [UInt8] = be16(me.port) + be16(peer.port) + be32(sequence) + be32(acknowledgment)
        tcp += [UInt8(tcpLength / 4) << 4, flags] + be16(64_000) + [0, 0, 0, 0] + options + payload
        let total = 20 + tcp.count
        bytes += [0x45, 0] + be16(UInt16(total)) + be16(me.ipID) + [0x40, 0, me.ttl, 6, 0, 0] + me.ip + peer.ip + tcp
        me.ipID &+= 1
        let consumed = UInt32(payload.count) + (flags & (Self.syn | Self.fin) != 0 ? 1 : 0)
        let end = sequence &+ consumed
        if Int32(bitPattern: end &- me.next) > 0 || seq == nil { me.next = max(me.next, end) }
        // The peer receives what was sent (loss is staged by the caller's ACK numbers).
        if Int32(bitPattern: end &- peer.received) > 0 { peer.received = end }
        if who == .c { client = me; server = peer } else { server = me; client = peer }
        guard captured else { return nil }
        frames.append((bytes, now))
        return frames.count
    }

    /// SYN, SYN-ACK, ACK.
    func handshake() {
        send(.c, Self.syn, after: 0, ack: 0, options: [2, 4, 0x05, 0xAC])
        send(.s, Self.syn | Self.ack, after: 0.0003, options: [2, 4, 0x05, 0xB4])
        send(.c, Self.ack, after: 0.02)
    }

    /// Data with PSH+ACK, acknowledged by the peer's bare ACK.
    @discardableResult
    func data(_ who: Who, _ payload: [UInt8], after seconds: Double = 0.01, ackedBy wait: Double? = 0.0002) -> Int? {
        let f = send(who, Self.psh | Self.ack, payload, after: seconds)
        if let wait { send(who == .c ? .s : .c, Self.ack, after: wait) }
        return f
    }

    /// One UDP datagram between the two hosts, from or to `clientPort` and the server's port
    /// (RDP's UDP transport uses the server's RDP port, MS-RDPEMT 1.3). UDP checksum 0: none
    /// (RFC 768).
    @discardableResult
    func udp(_ who: Who, _ payload: [UInt8], clientPort: UInt16 = 50_001, after seconds: Double = 0.001) -> Int {
        now += Int64(seconds * 1e9)
        var me = who == .c ? client : server
        let peer = who == .c ? server : client
        let ports = who == .c ? be16(clientPort) + be16(server.port) : be16(server.port) + be16(clientPort)
        let udp = ports + be16(UInt16(8 + payload.count)) + [0, 0] + payload
        var bytes = me.mac + peer.mac + [0x08, 0x00]
        bytes += [0x45, 0] + be16(UInt16(20 + udp.count)) + be16(me.ipID) + [0x40, 0, me.ttl, 17, 0, 0] + me.ip + peer.ip + udp
        me.ipID &+= 1
        if who == .c { client = me } else { server = me }
        frames.append((bytes, now))
        return frames.count
    }

    /// Adds a frame written by another script (several attempts in one capture).
    func append(_ f: (bytes: [UInt8], time: Int64)) { frames.append(f) }

    func write(to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CaptureError(input: path, kind: .notFound, detail: "cannot create") }
        let w = try PcapWriter(descriptor: fd, path: path, linkType: .ethernet, snapshotLength: 65_535)
        for f in frames { w.write(f.bytes, timestamp: Timestamp(nanoseconds: f.time), originalLength: f.bytes.count) }
        try w.finish()
    }

    /// Writes the capture to a temporary file and returns its path.
    func file(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rdptriage-\(name)-\(getpid()).pcap").path
        try write(to: path)
        return path
    }

    private func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
}

/// RDP and TLS bytes as the specs lay them out, for scripts.
enum RDPBytes {
    /// X.224 Connection Request with RDP_NEG_REQ asking for TLS and HYBRID (MS-RDPBCGR 2.2.1.1).
    static let requestHybrid: [UInt8] = [0x03, 0x00, 0x00, 0x13, 0x0E, 0xE0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x08, 0x00, 0x03, 0, 0, 0]
    /// X.224 Connection Confirm with RDP_NEG_RSP selecting HYBRID (MS-RDPBCGR 2.2.1.2).
    static let confirmHybrid: [UInt8] = [0x03, 0x00, 0x00, 0x13, 0x0E, 0xD0, 0, 0, 0x12, 0x34, 0, 0x02, 0x00, 0x08, 0x00, 0x02, 0, 0, 0]

    /// A TLS record (RFC 5246 6.2.1) with a filler body of `length` bytes, or `body`.
    static func record(_ type: UInt8, _ length: Int = 0, body: [UInt8]? = nil, version: UInt16 = 0x0303) -> [UInt8] {
        let b = body ?? [UInt8](repeating: 0xA5, count: length)
        return [type, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(b.count >> 8), UInt8(b.count & 0xFF)] + b
    }

    static func handshake(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        [type, 0, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    /// ClientHello offering TLS 1.2 (and TLS 1.3 with `tls13`).
    static func clientHello(tls13: Bool = false) -> [UInt8] {
        var ext: [UInt8] = [0xFF, 0x01, 0x00, 0x01, 0x00]
        if tls13 { ext += [0x00, 0x2B, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03] }
        let body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0x22, count: 32) + [0] + [0x00, 0x04, 0xC0, 0x30, 0x13, 0x01]
            + [0x01, 0x00] + [UInt8(ext.count >> 8), UInt8(ext.count & 0xFF)] + ext
        return record(22, body: handshake(1, body), version: 0x0301)
    }

    /// ServerHello choosing TLS 1.2 with ECDHE-RSA-AES256-GCM-SHA384, or TLS 1.3.
    static func serverHello(tls13: Bool = false) -> [UInt8] {
        let ext: [UInt8] = tls13 ? [0x00, 0x2B, 0x00, 0x02, 0x03, 0x04] : [0xFF, 0x01, 0x00, 0x01, 0x00]
        let suite: [UInt8] = tls13 ? [0x13, 0x01] : [0xC0, 0x30]
        let body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0x11, count: 32) + [0] + suite + [0]
            + [UInt8(ext.count >> 8), UInt8(ext.count & 0xFF)] + ext
        return record(22, body: handshake(2, body))
    }

    static let serverHelloDone = record(22, body: handshake(14, []))
    /// ClientKeyExchange with an ECDHE public key (RFC 8422 5.7): length byte, 65 bytes.
    static let clientKeyExchange = record(22, body: handshake(16, [65] + [UInt8](repeating: 0x04, count: 65)))
    static let changeCipherSpec = record(20, body: [1])
    /// The encrypted Finished that follows a ChangeCipherSpec (TLS 1.2, AES-GCM: 40 bytes).
    static let finished = record(22, 40)
    static func application(_ length: Int) -> [UInt8] { record(23, length) }
    /// An alert record under TLS 1.0-1.2 after ChangeCipherSpec: type 21 visible, body encrypted.
    static func encryptedAlert(_ length: Int = 26) -> [UInt8] { record(21, length) }
}
