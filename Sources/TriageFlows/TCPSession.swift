import TriageCapture
import TriageDecoding

/// How the tracker decided which side is the client.
public enum RoleSource: String, Sendable, Codable {
    /// The client sent the SYN.
    case syn
    /// The SYN was not captured: the server is the side on the RDP port.
    case port
    /// The SYN was not captured: the client sent an X.224 Connection Request.
    case payload
}

/// An RST and the context needed to judge who really sent it.
public struct ResetEvent: Sendable, Codable, Hashable {
    public var at: FrameRef
    /// The side whose address the RST carries (a middlebox can forge either).
    public var from: Side
    public var ttl: UInt8
    public var ipID: UInt32
    public var isIPv6: Bool
    /// Before the three-way handshake completed.
    public var beforeEstablished: Bool
    /// The RST answers the client's SYN (its ACK number is the SYN's sequence + 1).
    public var answersSYN: Bool
    /// TTL / hop limit range and last IP ID of the same side's earlier packets, if any.
    public var sameSideTTLMin: UInt8?
    public var sameSideTTLMax: UInt8?
    public var sameSideLastIPID: UInt32?
    public var sameSidePackets: Int
    /// Payload bytes each way before the RST.
    public var clientBytesBefore: Int64
    public var serverBytesBefore: Int64
    /// How much of the other side's stream the RST's sender acknowledged (when it has ACK).
    public var acknowledgedPeerBytes: Int64?
}

/// A FIN: who sent it and how much data each side had sent by then.
public struct FinEvent: Sendable, Codable, Hashable {
    public var at: FrameRef
    public var from: Side
    public var clientBytesBefore: Int64
    public var serverBytesBefore: Int64
    /// How much of the other side's stream the FIN's sender acknowledged: tells whether it
    /// closed after reading the peer's last message or without waiting for it.
    public var acknowledgedPeerBytes: Int64?

    /// The earlier of the two sides' FINs (the client's when both sit in one frame).
    public static func first(_ client: FinEvent?, _ server: FinEvent?) -> FinEvent? {
        guard let c = client else { return server }
        guard let s = server else { return c }
        return s.at.frame < c.at.frame ? s : c
    }
}

/// An ICMP or ICMPv6 error that quotes one of the session's packets.
public struct ICMPEvent: Sendable, Codable, Hashable {
    public var at: FrameRef
    public var isV6: Bool
    public var type: UInt8
    public var code: UInt8
    /// The router or host that sent the error.
    public var reporter: IPAddress
    public var ttl: UInt8
    /// The quoted packet was sent by this side.
    public var about: Side
    /// The quoted packet is the client's SYN (same sequence number).
    public var quotesSYN: Bool
    public var mtu: UInt32?
}

extension IPAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad address"))
        }
        self = a
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Counters and notable packets for one direction.
public struct DirectionStats: Sendable {
    /// Every frame, duplicates included (what Wireshark counts).
    public var frames = 0
    /// Wire length of every frame, duplicates included.
    public var frameBytes: Int64 = 0
    /// Frames that were not copies of another frame.
    public var packets = 0
    /// TCP payload bytes on the wire, retransmissions included.
    public var payloadBytes: Int64 = 0
    /// Frames whose IP length says more than was captured (snapshot length).
    public var cutFrames = 0
    public var dataSegments = 0
    public var retransmissions = 0
    public var firstRetransmission: FrameRef?
    /// The same frame seen again (a capture on two interfaces, or a mirror port).
    public var duplicates = 0
    public var zeroWindows = 0
    public var firstZeroWindow: FrameRef?
    public var duplicateAcks = 0
    public var sackBlocks = 0
    public var outOfOrder = 0
    public var largestSegment = 0
    public var mss: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted = false
    public var timestamps = false
    public var ttlMin: UInt8 = 255
    public var ttlMax: UInt8 = 0
    public var firstTTL: UInt8?
    public var lastIPID: UInt32?
    public var firstFrame: FrameRef?
    public var lastFrame: FrameRef?
    public var lastDataFrame: FrameRef?
    public var fin: FinEvent?
    /// The first frame whose sequence number was past every byte captured from this side so
    /// far, and by how much: the side had sent bytes the capture never saw.
    public var firstAhead: FrameRef?
    public var firstAheadBytes: Int64 = 0
    public var rstCount = 0
    public var highestAck: UInt32 = 0
    var lastAck: UInt32 = 0
    var lastWindow: UInt16 = 0
    var hasAck = false
    /// Recent packet signatures, to recognise duplicates.
    /// The same frame from a second capture point or a SPAN port's other VLAN comes within
    /// a few frames of the first (interleaved with the other direction's), so eight are kept.
    var recent = InlineArray<8, PacketSignature>(repeating: .none)
    var recentIndex = 0
}

/// What identifies a frame as a copy of an earlier one.
struct PacketSignature: Equatable {
    var sequence: UInt32
    var ack: UInt32
    var length: Int32
    var flags: UInt8
    var window: UInt16
    var ipID: UInt32
    var tsval: UInt32
    var sack: UInt32
    var ttl: UInt8
    var time: Int64

    static let none = PacketSignature(
        sequence: 0, ack: 0, length: -1, flags: 0, window: 0, ipID: 0, tsval: 0, sack: 0, ttl: 0, time: 0)

    /// Same packet, ignoring the TTL (which drops by one between two capture points).
    func isCopy(of o: PacketSignature, isIPv6: Bool) -> Bool {
        guard sequence == o.sequence, ack == o.ack, length == o.length, flags == o.flags, window == o.window,
            ipID == o.ipID, tsval == o.tsval, sack == o.sack
        else { return false }
        if !isIPv6 { return true }
        // IPv6 has no IP ID: accept copies on another hop, or within a millisecond.
        return ttl != o.ttl || abs(time - o.time) < 1_000_000
    }
}

/// The state of the three-way handshake and of the connection, kept apart from parsing.
public enum ConnectionState: String, Sendable, Codable {
    case synSent = "syn-sent"
    case synReceived = "syn-received"
    case established
    case closing
    case closed
    case reset
}

/// One TCP connection attempt: a 5-tuple plus its initial SYN. Client retries and port
/// reuse make new attempts.
public final class TCPSession {
    /// Order of creation within the run (stable, for sorting and identifiers).
    public let id: Int
    public let client: Endpoint
    public let server: Endpoint
    public let roleSource: RoleSource
    public let key: FlowKey
    /// The input file or interface this session came from.
    public let input: String

    public private(set) var state: ConnectionState
    // One thread owns a session; dynamic exclusivity checks on the per-packet counters cost
    // more than the counting (tests run with them on for every other property).
    @exclusivity(unchecked) public private(set) var stats = (client: DirectionStats(), server: DirectionStats())
    public private(set) var synFrames: [FrameRef] = []
    public private(set) var synCount = 0
    public private(set) var clientISN: UInt32?
    public private(set) var serverISN: UInt32?
    public private(set) var synAck: FrameRef?
    public private(set) var synAckCount = 0
    /// The client's ACK that completed the handshake.
    public private(set) var handshakeAck: FrameRef?
    public private(set) var resets: [ResetEvent] = []
    public private(set) var icmpErrors: [ICMPEvent] = []
    public private(set) var firstFrame: FrameRef
    /// The stream is followed from a SOCKS5 CONNECT request: the greeting and the proxy's
    /// method choice before it were seen but not kept.
    public internal(set) var socks5GreetingSkipped = false
    public private(set) var lastFrame: FrameRef
    /// Frames that were IP fragments (not reassembled).
    public private(set) var fragments = 0
    /// Session was ended because a new attempt reused its 5-tuple.
    public internal(set) var supersededBy: Int?
    /// Ended by the idle timeout rather than by the capture's end.
    public internal(set) var endedIdle = false
    public internal(set) var finalized = false
    /// Reported early: the session table was full.
    public internal(set) var evicted = false
    /// The client's datagrams to the server's RDP port during this attempt, and answers.
    public internal(set) var udpTransport: UDPTransportFacts?
    /// The tracker's timer-wheel slot (capture second) holding this session's live entry.
    var wheelSecond: Int64 = .max
    /// Its position in that second's wheel slot.
    var wheelIndex = -1
    /// Anything protocol layers want to keep with the session (set by the consumer factory).
    public var consumer: (any StreamConsumer)?

    public private(set) var clientStream: StreamReassembler!
    public private(set) var serverStream: StreamReassembler!

    static let maxSYNRecords = 16
    static let maxEvents = 8

    init(
        id: Int, client: Endpoint, server: Endpoint, roleSource: RoleSource, input: String, first: FrameRef,
        limits: StreamReassembler.Limits, budget: ReassemblyBudget
    ) {
        self.id = id
        self.client = client
        self.server = server
        self.roleSource = roleSource
        self.input = input
        self.key = FlowKey(client, server)
        self.firstFrame = first
        self.lastFrame = first
        self.state = roleSource == .syn ? .synSent : .established
        self.clientStream = nil
        self.serverStream = nil
        self.clientStream = StreamReassembler(
            direction: .clientToServer, session: self, limits: limits, budget: budget)
        self.serverStream = StreamReassembler(
            direction: .serverToClient, session: self, limits: limits, budget: budget)
        synFrames.reserveCapacity(4)
    }

    public func stream(_ d: Direction) -> StreamReassembler { d == .clientToServer ? clientStream : serverStream }

    func attach(_ consumer: any StreamConsumer) {
        self.consumer = consumer
        clientStream.consumer = consumer
        serverStream.consumer = consumer
    }

    /// The three-way handshake completed (assumed when the SYN was not captured).
    public var isEstablished: Bool { handshakeAck != nil || roleSource != .syn }
    public var isIPv6: Bool { client.address.isIPv6 }

    /// The frame that carried a stream offset, for evidence.
    public func frame(at offset: Int64, direction: Direction) -> FrameRef? { stream(direction).frame(at: offset) }

    /// Updates the session with one of its packets. `payload` holds the captured TCP payload.
    func handle(_ p: DecodedPacket, direction d: Direction, payload: UnsafeRawBufferPointer, frameLength: Int,
                at ref: FrameRef) {
        lastFrame = ref
        if d == .clientToServer {
            stats.client.frames += 1
            stats.client.frameBytes += Int64(frameLength)
        } else {
            stats.server.frames += 1
            stats.server.frameBytes += Int64(frameLength)
        }
        if p.isFragment { fragments += 1 }
        let h = p.tcp
        let signature = PacketSignature(
            sequence: h.sequence, ack: h.acknowledgment, length: Int32(clamping: p.payloadWireLength),
            flags: h.flags.rawValue, window: h.window, ipID: p.ipID, tsval: h.options.timestampValue ?? 0,
            sack: h.options.sack1.0, ttl: p.ttl, time: ref.time.nanoseconds)
        if d == .clientToServer {
            if !noteSignature(signature, &stats.client) { return }
            updateStats(p, ref: ref, &stats.client)
        } else {
            if !noteSignature(signature, &stats.server) { return }
            updateStats(p, ref: ref, &stats.server)
        }
        let flags = h.flags

        if flags.contains(.syn) {
            handleSYN(p, direction: d, at: ref)
        }
        if flags.contains(.rst) {
            handleRST(p, direction: d, at: ref)
            return
        }
        if flags.contains(.ack) && !flags.contains(.syn) {
            handleAck(p, direction: d, at: ref)
        }
        let wire = p.payloadWireLength
        // One reference to the direction's stream for the whole packet (each takes a retain).
        let s = stream(d)
        if !flags.contains(.syn) {
            if s.isStarted {
                // A FIN takes one sequence number and no byte: packets after it are one ahead.
                let afterFIN: Int64 = (d == .clientToServer ? stats.client.fin : stats.server.fin) != nil ? 1 : 0
                let ahead = s.offset(of: h.sequence) - s.highestEnd - afterFIN
                // Further ahead than any window is a wild sequence number, not unseen data.
                if ahead > 0 && ahead <= StreamReassembler.maxPlausibleAckJump {
                    if d == .clientToServer {
                        noteAhead(&stats.client, ahead, at: ref)
                    } else {
                        noteAhead(&stats.server, ahead, at: ref)
                    }
                }
            }
        }
        if wire > 0 {
            if !s.isStarted {
                if let isn = d == .clientToServer ? clientISN : serverISN { s.start(afterSYN: isn) } else { s.start(at: h.sequence) }
            }
            let seq = flags.contains(.syn) ? h.sequence &+ 1 : h.sequence
            let start = s.offset(of: seq)
            let before = s.highestEnd
            let kind = s.insert(sequence: seq, bytes: payload, wireLength: wire, frame: ref.frame, time: ref.time)
            if kind != .implausible {
                let isNew = kind == .new
                if d == .clientToServer {
                    noteData(&stats.client, wire: wire, isNew: isNew, outOfOrder: start > before, at: ref)
                } else {
                    noteData(&stats.server, wire: wire, isNew: isNew, outOfOrder: start > before, at: ref)
                }
            }
        }
        if flags.contains(.fin) {
            if !s.isStarted { s.start(at: h.sequence) }
            s.noteFIN(at: s.offset(of: h.sequence) + Int64(p.payloadWireLength))
            handleFIN(p, direction: d, at: ref)
        }
    }

    /// Returns false for a copy of a recent frame.
    private func noteSignature(_ sig: PacketSignature, _ s: inout DirectionStats) -> Bool {
        let v6 = isIPv6
        for i in s.recent.indices where sig.isCopy(of: s.recent[i], isIPv6: v6) {
            s.duplicates += 1
            return false
        }
        s.recent[s.recentIndex & 7] = sig
        s.recentIndex &+= 1
        return true
    }

    private func updateStats(_ p: DecodedPacket, ref: FrameRef, _ s: inout DirectionStats) {
        s.packets += 1
        s.payloadBytes += Int64(p.payloadWireLength)
        if p.truncated { s.cutFrames += 1 }
        if s.firstFrame == nil { s.firstFrame = ref }
        s.lastFrame = ref
        if s.firstTTL == nil { s.firstTTL = p.ttl }
        if !p.tcp.flags.contains(.rst) {
            // RSTs are judged against the side's other packets, so they stay out of the range.
            if p.ttl < s.ttlMin { s.ttlMin = p.ttl }
            if p.ttl > s.ttlMax { s.ttlMax = p.ttl }
            s.lastIPID = p.ipID
        }
        let o = p.tcp.options
        if p.tcp.flags.contains(.syn) {
            if let m = o.mss { s.mss = m }
            if let w = o.windowScale { s.windowScale = w }
            if o.sackPermitted { s.sackPermitted = true }
            if o.timestampValue != nil { s.timestamps = true }
        }
        if o.sackBlockCount > 0 { s.sackBlocks += 1 }
        if p.tcp.window == 0 && !p.tcp.flags.contains(.rst) && !p.tcp.flags.contains(.syn) {
            s.zeroWindows += 1
            if s.firstZeroWindow == nil { s.firstZeroWindow = ref }
        }
    }

    private func noteAhead(_ s: inout DirectionStats, _ bytes: Int64, at ref: FrameRef) {
        if s.firstAhead == nil {
            s.firstAhead = ref
            s.firstAheadBytes = bytes
        }
    }

    private func noteData(_ s: inout DirectionStats, wire: Int, isNew: Bool, outOfOrder: Bool, at ref: FrameRef) {
        s.dataSegments += 1
        s.lastDataFrame = ref
        if wire > s.largestSegment { s.largestSegment = wire }
        if !isNew {
            s.retransmissions += 1
            if s.firstRetransmission == nil { s.firstRetransmission = ref }
        } else if outOfOrder {
            s.outOfOrder += 1
        }
    }

    private func handleSYN(_ p: DecodedPacket, direction d: Direction, at ref: FrameRef) {
        let h = p.tcp
        if d == .clientToServer && !h.flags.contains(.ack) {
            synCount += 1
            if clientISN == nil {
                clientISN = h.sequence
                clientStream.start(afterSYN: h.sequence)
            }
            if synFrames.count < Self.maxSYNRecords { synFrames.append(ref) }
        } else if d == .serverToClient && h.flags.contains(.ack) {
            synAckCount += 1
            if synAck == nil {
                synAck = ref
                serverISN = h.sequence
                serverStream.start(afterSYN: h.sequence)
                if state == .synSent { state = .synReceived }
            }
        }
    }

    private func handleAck(_ p: DecodedPacket, direction d: Direction, at ref: FrameRef) {
        let h = p.tcp
        if d == .clientToServer, handshakeAck == nil, let sisn = serverISN, h.acknowledgment == sisn &+ 1 {
            handshakeAck = ref
            if state == .synReceived || state == .synSent { state = .established }
        }
        // The receiver's ACK tells the other direction how far its data got.
        let peer = stream(d.reversed)
        if peer.isStarted { peer.acknowledged(upTo: peer.offset(of: h.acknowledgment), frame: ref.frame) }
        if d == .clientToServer {
            noteAck(h, wire: p.payloadWireLength, &stats.client)
        } else {
            noteAck(h, wire: p.payloadWireLength, &stats.server)
        }
    }

    private func noteAck(_ h: TCPHeader, wire: Int, _ s: inout DirectionStats) {
        let pure = wire == 0 && !h.flags.contains(.fin) && !h.flags.contains(.syn)
        if pure && s.hasAck && h.acknowledgment == s.lastAck && h.window == s.lastWindow {
            s.duplicateAcks += 1
        }
        if !s.hasAck || Int32(bitPattern: h.acknowledgment &- s.highestAck) > 0 { s.highestAck = h.acknowledgment }
        s.hasAck = true
        s.lastAck = h.acknowledgment
        s.lastWindow = h.window
    }

    private func handleRST(_ p: DecodedPacket, direction d: Direction, at ref: FrameRef) {
        let side = d.sender
        let same = d == .clientToServer ? stats.client : stats.server
        let earlier = same.packets - 1  // this RST is already counted
        if d == .clientToServer { stats.client.rstCount += 1 } else { stats.server.rstCount += 1 }
        let answersSYN = d == .serverToClient && synAck == nil && clientISN.map { p.tcp.acknowledgment == $0 &+ 1 } == true
        let event = ResetEvent(
            at: ref, from: side, ttl: p.ttl, ipID: p.ipID, isIPv6: p.network == .ipv6,
            beforeEstablished: !isEstablished, answersSYN: answersSYN,
            sameSideTTLMin: earlier > 0 && same.ttlMin <= same.ttlMax ? same.ttlMin : nil,
            sameSideTTLMax: earlier > 0 && same.ttlMin <= same.ttlMax ? same.ttlMax : nil,
            sameSideLastIPID: earlier > 0 ? same.lastIPID : nil, sameSidePackets: max(0, earlier),
            clientBytesBefore: clientStream.highestEnd, serverBytesBefore: serverStream.highestEnd,
            acknowledgedPeerBytes: acknowledgedPeer(p, direction: d))
        if resets.count < Self.maxEvents { resets.append(event) }
        if state != .reset { state = .reset }
    }

    private func acknowledgedPeer(_ p: DecodedPacket, direction d: Direction) -> Int64? {
        let peer = stream(d.reversed)
        guard p.tcp.flags.contains(.ack), peer.isStarted else { return nil }
        return max(0, peer.offset(of: p.tcp.acknowledgment))
    }

    private func handleFIN(_ p: DecodedPacket, direction d: Direction, at ref: FrameRef) {
        let event = FinEvent(
            at: ref, from: d.sender, clientBytesBefore: clientStream.highestEnd,
            serverBytesBefore: serverStream.highestEnd, acknowledgedPeerBytes: acknowledgedPeer(p, direction: d))
        if d == .clientToServer {
            if stats.client.fin == nil { stats.client.fin = event }
        } else {
            if stats.server.fin == nil { stats.server.fin = event }
        }
        if state != .reset {
            state = stats.client.fin != nil && stats.server.fin != nil ? .closed : .closing
        }
    }

    func handleICMP(_ p: DecodedPacket, quoted q: QuotedDatagram, at ref: FrameRef) {
        lastFrame = ref
        let about: Side = q.source == client.address && q.sourcePort == client.port ? .client : .server
        let quotesSYN = about == .client && clientISN != nil && q.tcpSequence == clientISN
        let event = ICMPEvent(
            at: ref, isV6: p.icmp.isV6, type: p.icmp.type, code: p.icmp.code, reporter: p.source, ttl: p.ttl,
            about: about, quotesSYN: quotesSYN, mtu: p.icmp.mtu)
        if icmpErrors.count < Self.maxEvents { icmpErrors.append(event) }
    }

    /// Ends reassembly: out-of-order leftovers are delivered after their gaps.
    func finish() {
        clientStream.flush(frame: lastFrame.frame)
        serverStream.flush(frame: lastFrame.frame)
        // Nothing more is read from the streams. Their bytes go back to the shared budget
        // now, on the packet thread: a finished session may be read and freed on another.
        clientStream.releaseAll()
        serverStream.releaseAll()
    }

    /// Starts the SYN-side state for a session promoted from a handshake we only summarised.
    /// `skipped`: bytes each side sent before the stream is followed (a SOCKS5 greeting and
    /// the proxy's method choice, seen while the connection was only a candidate).
    func seedHandshake(synFrames: [FrameRef], synCount: Int, clientISN: UInt32?, synAck: FrameRef?, serverISN: UInt32?,
                       synAckCount: Int, handshakeAck: FrameRef? = nil, skipped: (client: Int, server: Int) = (0, 0)) {
        self.synFrames = synFrames
        self.synCount = synCount
        self.clientISN = clientISN
        if let isn = clientISN { clientStream.start(afterSYN: isn &+ UInt32(truncatingIfNeeded: skipped.client)) }
        self.synAck = synAck
        self.synAckCount = synAckCount
        self.serverISN = serverISN
        if let isn = serverISN { serverStream.start(afterSYN: isn &+ UInt32(truncatingIfNeeded: skipped.server)) }
        if let first = synFrames.first { firstFrame = first }
        state = synAck != nil ? .synReceived : .synSent
        if let handshakeAck, synAck != nil {
            self.handshakeAck = handshakeAck
            state = .established
        }
    }
}
