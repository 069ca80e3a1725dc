import TriageCapture
import TriageDecoding

/// What happened to a connection attempt at the TCP level.
public enum TCPOutcome: String, Sendable, Codable, CaseIterable {
    /// SYNs with no answer at all.
    case synUnanswered = "syn-unanswered"
    /// The SYN was answered with an RST.
    case refused
    /// An ICMP error answered the SYN.
    case icmpUnreachable = "icmp-unreachable"
    /// A SYN-ACK arrived but the client never completed the handshake.
    case handshakeIncomplete = "handshake-incomplete"
    /// RST after the handshake.
    case reset
    /// FIN after the handshake.
    case closed
    /// Still open when the capture ended (or silent past the idle timeout).
    case open
}

/// One side's share of a session, for reports.
public struct SideFacts: Sendable, Codable, Equatable {
    /// Frames sent by this side, duplicates included (Wireshark's count).
    public var frames: Int
    /// Their total length on the wire.
    public var frameBytes: Int64
    /// Frames that were not copies of another frame.
    public var packets: Int
    /// TCP payload bytes on the wire, retransmissions included.
    public var payloadBytes: Int64
    /// Distinct stream bytes (highest sequence reached).
    public var streamBytes: Int64
    public var retransmissions: Int
    public var firstRetransmission: FrameRef?
    public var duplicates: Int
    public var zeroWindows: Int
    public var firstZeroWindow: FrameRef?
    public var duplicateAcks: Int
    public var sackBlocks: Int
    public var outOfOrder: Int
    public var largestSegment: Int
    public var mss: UInt16?
    public var windowScale: UInt8?
    public var sackPermitted: Bool
    public var timestamps: Bool
    public var ttlMin: UInt8?
    public var ttlMax: UInt8?
    public var cutFrames: Int
    public var fin: FinEvent?
    public var rstCount: Int
    public var gaps: [StreamGap]
    public var gapCount: Int
    public var gapBytes: Int64
    /// Bytes the peer acknowledged beyond what the capture saw (never captured).
    public var acknowledgedUnseen: Int64
    public var overlapBytes: Int64
    public var conflictingOverlapBytes: Int64
    /// Bytes not reassembled because a memory limit was reached.
    public var cutBytes: Int64
    public var lastDataFrame: FrameRef?
    /// Segments with sequence numbers far outside the stream (absent when none).
    public var implausibleSegments: Int? = nil
    /// So many that the direction's sequence numbers make no sense: its gap, retransmission
    /// and out-of-order counters are left at zero, since they would count nonsense (absent
    /// when false).
    public var sequenceNonsense: Bool? = nil
    /// The first of this side's frames whose sequence number was past every byte captured
    /// from it, and the bytes between: it had sent data the capture never saw (lost before
    /// the capture point, or a segment still to be retransmitted).
    public var sentUnseenAt: FrameRef? = nil
    public var sentUnseenBytes: Int64? = nil
}

extension SideFacts {
    /// Written by hand, in declaration order: absent optionals cost no call. Two of these are
    /// encoded for every attempt of a JSON report, and the synthesized form made a call (and
    /// a generic metadata look-up) for each of its dozen optionals, nil or not.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(frames, forKey: .frames)
        try c.encode(frameBytes, forKey: .frameBytes)
        try c.encode(packets, forKey: .packets)
        try c.encode(payloadBytes, forKey: .payloadBytes)
        try c.encode(streamBytes, forKey: .streamBytes)
        try c.encode(retransmissions, forKey: .retransmissions)
        if let v = firstRetransmission { try c.encode(v, forKey: .firstRetransmission) }
        try c.encode(duplicates, forKey: .duplicates)
        try c.encode(zeroWindows, forKey: .zeroWindows)
        if let v = firstZeroWindow { try c.encode(v, forKey: .firstZeroWindow) }
        try c.encode(duplicateAcks, forKey: .duplicateAcks)
        try c.encode(sackBlocks, forKey: .sackBlocks)
        try c.encode(outOfOrder, forKey: .outOfOrder)
        try c.encode(largestSegment, forKey: .largestSegment)
        if let v = mss { try c.encode(v, forKey: .mss) }
        if let v = windowScale { try c.encode(v, forKey: .windowScale) }
        try c.encode(sackPermitted, forKey: .sackPermitted)
        try c.encode(timestamps, forKey: .timestamps)
        if let v = ttlMin { try c.encode(v, forKey: .ttlMin) }
        if let v = ttlMax { try c.encode(v, forKey: .ttlMax) }
        try c.encode(cutFrames, forKey: .cutFrames)
        if let v = fin { try c.encode(v, forKey: .fin) }
        try c.encode(rstCount, forKey: .rstCount)
        try c.encode(gaps, forKey: .gaps)
        try c.encode(gapCount, forKey: .gapCount)
        try c.encode(gapBytes, forKey: .gapBytes)
        try c.encode(acknowledgedUnseen, forKey: .acknowledgedUnseen)
        try c.encode(overlapBytes, forKey: .overlapBytes)
        try c.encode(conflictingOverlapBytes, forKey: .conflictingOverlapBytes)
        try c.encode(cutBytes, forKey: .cutBytes)
        if let v = lastDataFrame { try c.encode(v, forKey: .lastDataFrame) }
        if let v = implausibleSegments { try c.encode(v, forKey: .implausibleSegments) }
        if let v = sequenceNonsense { try c.encode(v, forKey: .sequenceNonsense) }
        if let v = sentUnseenAt { try c.encode(v, forKey: .sentUnseenAt) }
        if let v = sentUnseenBytes { try c.encode(v, forKey: .sentUnseenBytes) }
    }
}

/// The handshake timeline.
public struct HandshakeFacts: Sendable, Codable, Equatable {
    public var synCount: Int
    public var syns: [FrameRef]
    /// Seconds between successive SYNs (the client's retry back-off).
    public var synIntervals: [Double]
    public var synAck: FrameRef?
    public var synAckCount: Int
    public var completed: FrameRef?
    /// Seconds from the last SYN before the SYN-ACK to the SYN-ACK (the server's RTT seen
    /// from the capture point).
    public var synAckDelay: Double?
    /// Seconds from the SYN-ACK to the client's ACK.
    public var ackDelay: Double?
}

/// Everything known about a connection attempt at the TCP level, as plain values: what
/// the diagnosis and the reports read (never the packets).
public struct TCPFacts: Sendable, Codable, Equatable {
    public var input: String
    public var id: Int
    public var client: Endpoint
    public var server: Endpoint
    public var roleSource: RoleSource
    public var outcome: TCPOutcome
    public var established: Bool
    /// The side whose packet ended the attempt (RST, FIN); nil when nobody ended it.
    public var endedBy: Side?
    /// The packet that decided the outcome (RST, FIN, ICMP, last SYN).
    public var decisive: FrameRef?
    public var first: FrameRef
    public var last: FrameRef
    public var handshake: HandshakeFacts
    public var clientSide: SideFacts
    public var serverSide: SideFacts
    public var resets: [ResetEvent]
    public var icmp: [ICMPEvent]
    public var fragments: Int
    /// No packet for longer than the idle timeout: reported before the capture ended.
    public var idle: Bool
    /// A later attempt reused this 5-tuple.
    public var supersededBy: Int?
    /// Reported before it ended because too many sessions were open at once (absent when not).
    public var evicted: Bool? = nil
    /// RDP's UDP transport beside this attempt (absent when no datagram went to the server's port).
    public var udpTransport: UDPTransportFacts? = nil

    public var durationSeconds: Double { last.time.seconds(since: first.time) }

    public func side(_ s: Side) -> SideFacts { s == .client ? clientSide : serverSide }
}

extension TCPFacts {
    /// Summarises a finished session.
    public init(_ s: TCPSession) {
        input = s.input
        id = s.id
        client = s.client
        server = s.server
        roleSource = s.roleSource
        established = s.isEstablished
        first = s.firstFrame
        last = s.lastFrame
        fragments = s.fragments
        idle = s.endedIdle
        supersededBy = s.supersededBy
        if s.evicted { evicted = true }
        udpTransport = s.udpTransport
        resets = s.resets
        icmp = s.icmpErrors
        let syns = s.synFrames
        var intervals: [Double] = []
        if syns.count > 1 {
            for i in 1..<syns.count { intervals.append(syns[i].time.seconds(since: syns[i - 1].time)) }
        }
        var synAckDelay: Double?
        if let sa = s.synAck, let lastSyn = syns.last(where: { $0.frame < sa.frame }) {
            synAckDelay = sa.time.seconds(since: lastSyn.time)
        }
        handshake = HandshakeFacts(
            synCount: s.synCount, syns: syns, synIntervals: intervals, synAck: s.synAck, synAckCount: s.synAckCount,
            completed: s.handshakeAck, synAckDelay: synAckDelay,
            ackDelay: s.synAck.flatMap { sa in s.handshakeAck.map { $0.time.seconds(since: sa.time) } })
        clientSide = Self.side(s.stats.client, s.clientStream)
        serverSide = Self.side(s.stats.server, s.serverStream)

        (outcome, endedBy, decisive) = Self.outcome(s)
    }

    /// What ended the attempt, who did, and the packet that shows it.
    static func outcome(_ s: TCPSession) -> (TCPOutcome, Side?, FrameRef?) {
        let firstRST = s.resets.first
        let firstFIN = FinEvent.first(s.stats.client.fin, s.stats.server.fin)
        if s.roleSource == .syn && !s.isEstablished {
            if let r = s.resets.first(where: { $0.from == .server }), s.synAck == nil { return (.refused, .server, r.at) }
            if s.synAck == nil,
                let icmp = s.icmpErrors.first(where: { $0.about == .client && isUnreachable($0) })
            {
                return (.icmpUnreachable, nil, icmp.at)
            }
            if let r = firstRST { return (.reset, r.from, r.at) }
            if s.synAck == nil { return (.synUnanswered, nil, s.synFrames.last) }
            return (.handshakeIncomplete, nil, s.synAck)
        }
        // Whichever came first ends it: an RST after a FIN is only the tail of the close.
        if let r = firstRST, firstFIN.map({ r.at.frame < $0.at.frame }) ?? true { return (.reset, r.from, r.at) }
        if let f = firstFIN { return (.closed, f.from, f.at) }
        return (.open, nil, nil)
    }

    /// Destination unreachable (ICMP 3, ICMPv6 1) and time exceeded (11, 3): the errors
    /// that stop a connection attempt.
    public static func isUnreachable(_ e: ICMPEvent) -> Bool {
        e.isV6 ? (e.type == 1 || e.type == 3) : (e.type == 3 || e.type == 11)
    }

    static func side(_ d: DirectionStats, _ r: StreamReassembler) -> SideFacts {
        let acknowledgedUnseen = r.gaps.filter { $0.reason == .missing }.reduce(Int64(0)) { $0 + $1.length }
        var facts = SideFacts(
            frames: d.frames, frameBytes: d.frameBytes, packets: d.packets, payloadBytes: d.payloadBytes, streamBytes: r.highestEnd,
            retransmissions: d.retransmissions, firstRetransmission: d.firstRetransmission, duplicates: d.duplicates,
            zeroWindows: d.zeroWindows, firstZeroWindow: d.firstZeroWindow, duplicateAcks: d.duplicateAcks,
            sackBlocks: d.sackBlocks, outOfOrder: d.outOfOrder, largestSegment: d.largestSegment, mss: d.mss,
            windowScale: d.windowScale, sackPermitted: d.sackPermitted, timestamps: d.timestamps,
            ttlMin: d.ttlMin <= d.ttlMax ? d.ttlMin : nil, ttlMax: d.ttlMin <= d.ttlMax ? d.ttlMax : nil,
            cutFrames: d.cutFrames, fin: d.fin, rstCount: d.rstCount, gaps: r.gaps, gapCount: r.gapCount,
            gapBytes: r.gapBytes, acknowledgedUnseen: acknowledgedUnseen, overlapBytes: r.overlapBytes,
            conflictingOverlapBytes: r.conflictingBytes, cutBytes: r.cutBytes, lastDataFrame: d.lastDataFrame,
            sentUnseenAt: d.firstAhead, sentUnseenBytes: d.firstAhead == nil ? nil : d.firstAheadBytes)
        if r.implausibleSegments > 0 { facts.implausibleSegments = r.implausibleSegments }
        if r.sequenceNonsense {
            facts.sequenceNonsense = true
            facts.streamBytes = min(facts.streamBytes, facts.payloadBytes)
            facts.retransmissions = 0
            facts.firstRetransmission = nil
            facts.outOfOrder = 0
            facts.gaps = []
            facts.gapCount = 0
            facts.gapBytes = 0
            facts.acknowledgedUnseen = 0
            facts.overlapBytes = 0
            facts.conflictingOverlapBytes = 0
            facts.sentUnseenAt = nil
            facts.sentUnseenBytes = nil
        }
        return facts
    }
}
