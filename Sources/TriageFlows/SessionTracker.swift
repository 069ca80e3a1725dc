import DequeModule
import TriageCapture
import TriageDecoding

/// What the tracker follows and how much it may hold.
public struct TrackerConfiguration: Sendable {
    /// TCP ports whose connections are RDP attempts (3389 plus `--port`).
    public var ports: [UInt16] = [3389]
    /// Also follow connections on other ports whose first client bytes are an X.224
    /// Connection Request.
    public var detectRDPOnAnyPort = true
    public var streamLimits = StreamReassembler.Limits()
    /// Bytes all sessions together may hold in reassembly buffers.
    public var memoryLimit = 256 << 20
    /// Seconds (capture time) a closed or reset session waits for stragglers before it is reported.
    public var closeLinger = 5.0
    /// Seconds after the last packet before an unanswered handshake is reported.
    public var handshakeTimeout = 75.0
    /// Seconds of silence after which an open session is reported as idle.
    public var idleTimeout = 600.0
    /// Seconds of capture time between sweeps for sessions that are over: timeouts are
    /// seconds long and a sweep looks at the due ones. A live capture sweeps more often, so a
    /// verdict follows the attempt's end closely.
    public var sweepInterval = 2.0
    /// Most half-seen connections on other ports waiting to show their first bytes.
    public var maxCandidates = 65536
    /// Most sessions open at once (a few kilobytes each). Past it the oldest is reported as it
    /// stands, half-open handshakes first (a SYN flood or scan), so memory stays bounded.
    public var maxSessions = 10_000
    public var dnsCapacity = 4096
    /// Most (client, server) pairs whose UDP datagrams to an RDP port are remembered.
    public var udpPairCapacity = 4096

    public init() {}
}

/// Frame counts for the whole input, for the report's footer and for sanity checks.
public struct TrackerStats: Sendable, Codable, Equatable {
    public var frames = 0
    /// Frames cut by the snapshot length.
    public var cutFrames = 0
    public var notIP = 0
    /// Frames whose headers were cut or malformed before the transport layer.
    public var undecodable = 0
    public var ipFragments = 0
    public var tcpFrames = 0
    public var udpFrames = 0
    public var icmpFrames = 0
    /// TCP frames that belonged to RDP sessions.
    public var sessionFrames = 0
    public var icmpErrorsMatched = 0
    public var icmpErrorsUnmatched = 0
    /// Packets of a session that was already reported (after its linger time).
    public var latePackets = 0
    public var candidatesEvicted = 0
    /// Sessions reported early because `maxSessions` were open.
    public var sessionsEvicted = 0
    public var sessions = 0
    public var dnsResponses = 0

    public init() {}
}

/// Follows every RDP-bound TCP connection attempt: one `TCPSession` per attempt, from
/// files and live interfaces alike. The clock is the capture's: timeouts use packet
/// timestamps, so a file analyzes the same way every time.
public final class SessionTracker {
    public let configuration: TrackerConfiguration
    public let budget: ReassemblyBudget
    public let dns: DNSTable
    @exclusivity(unchecked) public private(set) var stats = TrackerStats()
    /// Called once per session when it is over (or at the end of the input).
    private let onFinish: (TCPSession, DNSTable) -> Void
    private let factory: (any StreamConsumerFactory)?

    private var rdpPorts = PortSet()
    /// The configured ports and the server ports of attempts found on other ports: where
    /// RDP's UDP transport goes.
    private var udpPorts = PortSet()
    let udp: UDPSideChannelTable
    @exclusivity(unchecked) private var sessions: [FlowKey: TCPSession] = [:]
    @exclusivity(unchecked) private var candidates: [FlowKey: Candidate] = [:]
    private var candidateOrder: Deque<FlowKey> = []
    private var tombstones: [FlowKey: Timestamp] = [:]
    /// Sessions in the order they started, and those started by a SYN: the eviction order.
    /// Entries name a session by key and id (holding the session would keep finished ones
    /// alive); finished, superseded or answered ones are skipped when met, and dropped in bulk
    /// when the queues outgrow the table.
    private var openOrder: Deque<OrderEntry> = []
    private var halfOpenOrder: Deque<OrderEntry> = []
    /// The queues are kept only while the table is at least half full: an ordinary capture
    /// (hundreds open) never pays for them; on the way up they are built from the table.
    private var ordering = false
    struct OrderEntry {
        var key: FlowKey
        var id: Int
    }
    private var nextID = 0
    private var clock = Timestamp(nanoseconds: Int64.min)
    private var lastSweep = Timestamp(nanoseconds: Int64.min)
    private var lastTombstoneSweep = Timestamp(nanoseconds: Int64.min)
    /// `configuration.sweepInterval` in nanoseconds.
    private let sweepNanoseconds: Int64
    private var sweepScratch: [FlowKey] = []
    /// Open sessions by the capture second of their deadline (a timer wheel), so a sweep
    /// looks at the sessions that may be due instead of walking every open one. A packet
    /// only moves a deadline later, and the session is re-filed when its old slot comes up;
    /// a FIN or RST moves it earlier, and the session is re-filed at once.
    private var wheel = [[TCPSession]](repeating: [], count: SessionTracker.wheelSlots)
    /// The last second the wheel was swept up to (its slot is looked at again next time).
    private var wheelSwept: Int64 = .min
    private var dueScratch: [TCPSession] = []
    /// A slot's entries while it is swept (swapped with the slot, so capacity is reused).
    private var slotScratch: [TCPSession] = []
    static let wheelSlots = 1024
    /// The input (file or interface) the packets come from; frame numbers are per input.
    public let input: String

    /// A connection on another port, summarised until its first bytes say whether it is RDP.
    struct Candidate {
        var client: Endpoint
        /// The first SYNs, inline so that a connection on another port costs no allocation.
        var syn0: FrameRef
        var syn1: FrameRef?
        var syn2: FrameRef?
        var synCount: Int
        var clientISN: UInt32
        var synAck: FrameRef?
        var serverISN: UInt32?
        var synAckCount = 0
        var lastSeen: Timestamp
        /// The client's ACK completing the handshake (a proxy preamble can come before RDP).
        var handshakeAck: FrameRef?
        /// A SOCKS5 greeting went by (its length), and the proxy's method choice (its length):
        /// the CONNECT request that follows says whether RDP goes through.
        var socks5Greeting: UInt16 = 0
        var socks5Choice: UInt16 = 0
        /// Its first bytes were not RDP: ignore the rest.
        var notRDP = false
        var ended = false
    }

    public init(input: String, configuration: TrackerConfiguration, factory: (any StreamConsumerFactory)?,
                onFinish: @escaping (TCPSession, DNSTable) -> Void) {
        self.input = input
        self.configuration = configuration
        self.budget = ReassemblyBudget(limit: configuration.memoryLimit)
        self.dns = DNSTable(capacity: configuration.dnsCapacity)
        self.udp = UDPSideChannelTable(capacity: configuration.udpPairCapacity)
        self.factory = factory
        self.onFinish = onFinish
        sweepNanoseconds = Int64(max(0.001, min(configuration.sweepInterval, 3600)) * 1e9)
        for p in configuration.ports { rdpPorts.insert(p) }
        udpPorts = rdpPorts
        sweepScratch.reserveCapacity(64)
        dueScratch.reserveCapacity(64)
    }

    @inline(__always)
    func isRDPPort(_ p: UInt16) -> Bool { rdpPorts.contains(p) }

    /// Takes one decoded frame. `bytes` are the frame's captured bytes (the payload is at
    /// `packet.payloadOffset`); `frameLength` is its length on the wire.
    public func process(_ p: DecodedPacket, bytes: UnsafeRawBufferPointer, frameLength: Int, at ref: FrameRef) {
        stats.frames += 1
        if ref.time > clock {
            clock = ref.time
            if clock.nanoseconds &- lastSweep.nanoseconds >= sweepNanoseconds || lastSweep.nanoseconds == Int64.min {
                sweep()
                lastSweep = clock
            }
        }
        if p.truncated { stats.cutFrames += 1 }
        if p.isFragment { stats.ipFragments += 1 }
        switch p.problem {
        case .none: break
        case .notIP, .unsupportedLinkType:
            stats.notIP += 1
            return
        case .laterFragment:
            return
        default:
            stats.undecodable += 1
            return
        }
        switch p.transport {
        case IPProto.tcp:
            stats.tcpFrames += 1
            handleTCP(p, bytes: bytes, frameLength: frameLength, at: ref)
        case IPProto.udp:
            stats.udpFrames += 1
            if p.udpSourcePort == 53 || p.udpDestinationPort == 53 {
                let payload = payloadBytes(p, bytes)
                dns.record(payload, from: p.source, to: p.destination, fromServer: p.udpSourcePort == 53, at: ref)
                stats.dnsResponses = dns.responses
            }
            let fromRDPPort = udpPorts.contains(p.udpSourcePort)
            let toRDPPort = udpPorts.contains(p.udpDestinationPort)
            if fromRDPPort || toRDPPort {
                udp.record(
                    source: Endpoint(p.source, p.udpSourcePort), destination: Endpoint(p.destination, p.udpDestinationPort),
                    sourceIsRDPPort: fromRDPPort, destinationIsRDPPort: toRDPPort, at: ref)
            }
        case IPProto.icmp, IPProto.icmpv6:
            stats.icmpFrames += 1
            if p.icmp.isError, let q = p.icmp.quoted, q.proto == IPProto.tcp, q.hasPorts {
                handleICMP(p, quoted: q, at: ref)
            }
        default: break
        }
    }

    /// Moves the clock to `time` without a packet: a live capture's tick while the wire is
    /// quiet, so that attempts that are over (an unanswered SYN, a reset) are reported without
    /// waiting for the next packet. A time earlier than the clock changes nothing.
    public func advance(to time: Timestamp) {
        guard time > clock else { return }
        clock = time
        if clock.nanoseconds &- lastSweep.nanoseconds >= sweepNanoseconds || lastSweep.nanoseconds == Int64.min {
            sweep()
            lastSweep = clock
        }
    }

    /// Sessions open now (a live capture's metrics and summaries).
    public var openSessions: Int { sessions.count }

    /// Every session open now (a live capture looks for attempts already decided).
    public func forEachOpenSession(_ body: (TCPSession) -> Void) {
        for s in sessions.values { body(s) }
    }

    @inline(__always)
    private func payloadBytes(_ p: DecodedPacket, _ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let start = min(max(0, p.payloadOffset), bytes.count)
        let end = min(bytes.count, start + max(0, p.payloadLength))
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    private func handleTCP(_ p: DecodedPacket, bytes: UnsafeRawBufferPointer, frameLength: Int, at ref: FrameRef) {
        let src = Endpoint(p.source, p.tcp.sourcePort)
        let dst = Endpoint(p.destination, p.tcp.destinationPort)
        let key = FlowKey(src, dst)
        let flags = p.tcp.flags
        let isSYN = flags.contains(.syn) && !flags.contains(.ack)
        if let s = sessions[key] {
            if isSYN && isNewAttempt(s, from: src, isn: p.tcp.sequence) {
                let next = nextID
                s.supersededBy = next
                finalize(s)
                let n = makeSession(client: src, server: dst, roleSource: .syn, at: ref)
                deliver(p, to: n, from: src, bytes: bytes, frameLength: frameLength, at: ref)
            } else {
                deliver(p, to: s, from: src, bytes: bytes, frameLength: frameLength, at: ref)
            }
            return
        }
        if !isSYN, let t = tombstones[key], ref.time.nanoseconds &- t.nanoseconds < 60_000_000_000 {
            stats.latePackets += 1
            return
        }
        // The SYN gives the roles: a connection from port 3389 to another port is not an
        // attempt to 3389, so it is followed only if its first bytes are RDP.
        let rdpServerPort = isSYN ? isRDPPort(dst.port) : flags.contains(.syn) ? isRDPPort(src.port) : isRDPPort(dst.port) || isRDPPort(src.port)
        if rdpServerPort && (isSYN || candidates[key] == nil) {
            let s: TCPSession
            if isSYN {
                s = makeSession(client: src, server: dst, roleSource: .syn, at: ref)
            } else if flags.contains(.syn) {
                // SYN-ACK without the SYN: the receiver is the client.
                s = makeSession(client: dst, server: src, roleSource: .port, at: ref)
            } else {
                let serverIsDst = isRDPPort(dst.port) && (!isRDPPort(src.port) || dst.port <= src.port)
                s = serverIsDst
                    ? makeSession(client: src, server: dst, roleSource: .port, at: ref)
                    : makeSession(client: dst, server: src, roleSource: .port, at: ref)
            }
            deliver(p, to: s, from: src, bytes: bytes, frameLength: frameLength, at: ref)
            return
        }
        guard configuration.detectRDPOnAnyPort else {
            // Remembered, so that the rest of a connection from port 3389 is not taken for an
            // attempt to it by its port.
            if isSYN && isRDPPort(src.port) && candidates[key] == nil {
                addCandidate(p, key: key, src: src, at: ref)
                candidates[key]?.notRDP = true
            }
            return
        }
        handleOtherPort(p, key: key, src: src, dst: dst, bytes: bytes, frameLength: frameLength, at: ref)
    }

    /// A SYN on a 5-tuple that has a session: a retransmission, or a new attempt.
    private func isNewAttempt(_ s: TCPSession, from src: Endpoint, isn: UInt32) -> Bool {
        guard src == s.client, s.roleSource == .syn || s.roleSource == .payload else { return true }
        guard let known = s.clientISN else { return true }
        return known != isn
    }

    private func handleOtherPort(_ p: DecodedPacket, key: FlowKey, src: Endpoint, dst: Endpoint,
                                 bytes: UnsafeRawBufferPointer, frameLength: Int, at ref: FrameRef) {
        let flags = p.tcp.flags
        if var c = candidates[key] {
            c.lastSeen = ref.time
            if c.notRDP {
                if flags.contains(.rst) || flags.contains(.fin) { c.ended = true }
                candidates[key] = c
                return
            }
            if flags.contains(.syn) && !flags.contains(.ack) && src == c.client {
                if p.tcp.sequence == c.clientISN {
                    c.synCount += 1
                    if c.syn1 == nil { c.syn1 = ref } else if c.syn2 == nil { c.syn2 = ref }
                    candidates[key] = c
                    return
                }
                // A new attempt on the same 5-tuple: start over.
                candidates[key] = nil
                addCandidate(p, key: key, src: src, at: ref)
                return
            }
            if flags.contains(.syn) && flags.contains(.ack) && src != c.client {
                c.synAckCount += 1
                if c.synAck == nil {
                    c.synAck = ref
                    c.serverISN = p.tcp.sequence
                }
                candidates[key] = c
                return
            }
            if src == c.client && c.handshakeAck == nil && flags.contains(.ack), let sisn = c.serverISN,
                p.tcp.acknowledgment == sisn &+ 1
            {
                c.handshakeAck = ref
            }
            if p.payloadLength > 0 {
                let payload = payloadBytes(p, bytes)
                if src == c.client {
                    // RDP starts here, or a proxy request names an RDP port (RDP through
                    // SOCKS or HTTP CONNECT): follow it from this segment.
                    let signal: ProxySignal
                    if c.socks5Greeting > 0 {
                        signal = c.socks5Choice > 0 ? ProxySignal.socks5Request(payload) : .none
                    } else {
                        signal = ProxySignal.firstBytes(payload)
                    }
                    let promote: Bool
                    switch signal {
                    case .names(let port): promote = isRDPPort(port)
                    case .socks5Greeting:
                        c.socks5Greeting = UInt16(truncatingIfNeeded: payload.count)
                        candidates[key] = c
                        return
                    case .none: promote = c.socks5Greeting == 0 && looksLikeConnectionRequest(payload)
                    }
                    if promote {
                        candidates[key] = nil
                        let s = makeSession(
                            client: c.client, server: dst, roleSource: .syn, at: c.syn0, afterSOCKS5Greeting: c.socks5Greeting > 0)
                        s.seedHandshake(
                            synFrames: [c.syn0, c.syn1, c.syn2].compactMap { $0 }, synCount: c.synCount, clientISN: c.clientISN, synAck: c.synAck,
                            serverISN: c.serverISN, synAckCount: c.synAckCount, handshakeAck: c.handshakeAck,
                            skipped: (Int(c.socks5Greeting), Int(c.socks5Choice)))
                        deliver(p, to: s, from: src, bytes: bytes, frameLength: frameLength, at: ref)
                        return
                    }
                } else if c.socks5Greeting > 0 && c.socks5Choice == 0 && ProxySignal.isSOCKS5Choice(payload) {
                    c.socks5Choice = UInt16(payload.count)
                    candidates[key] = c
                    return
                }
                c.notRDP = true
            }
            if flags.contains(.rst) || flags.contains(.fin) { c.ended = true }
            candidates[key] = c
            return
        }
        if flags.contains(.syn) && !flags.contains(.ack) {
            addCandidate(p, key: key, src: src, at: ref)
            return
        }
        // Mid-stream: only a Connection Request as the segment's first bytes makes it RDP.
        if p.payloadLength > 0 && looksLikeConnectionRequest(payloadBytes(p, bytes)) {
            let s = makeSession(client: src, server: dst, roleSource: .payload, at: ref)
            deliver(p, to: s, from: src, bytes: bytes, frameLength: frameLength, at: ref)
        }
    }

    private func addCandidate(_ p: DecodedPacket, key: FlowKey, src: Endpoint, at ref: FrameRef) {
        if candidates.count >= configuration.maxCandidates {
            while candidates.count >= configuration.maxCandidates, let old = candidateOrder.popFirst() {
                if candidates.removeValue(forKey: old) != nil { stats.candidatesEvicted += 1 }
            }
        }
        candidates[key] = Candidate(client: src, syn0: ref, synCount: 1, clientISN: p.tcp.sequence, lastSeen: ref.time)
        candidateOrder.append(key)
    }

    /// TPKT version 3 with a consistent length, then an X.224 Connection Request
    /// (MS-RDPBCGR 2.2.1.1, X.224 section 13.3).
    func looksLikeConnectionRequest(_ b: UnsafeRawBufferPointer) -> Bool {
        guard b.count >= 11, b[0] == 3, b[1] == 0 else { return false }
        let tpktLength = Int(b[2]) << 8 | Int(b[3])
        return tpktLength >= 11 && Int(b[4]) == tpktLength - 5 && b[5] & 0xF0 == 0xE0
    }

    private func makeSession(client: Endpoint, server: Endpoint, roleSource: RoleSource, at ref: FrameRef,
                             afterSOCKS5Greeting: Bool = false) -> TCPSession {
        if sessions.count >= configuration.maxSessions { evictOldest() }
        let s = TCPSession(
            id: nextID, client: client, server: server, roleSource: roleSource, input: input, first: ref,
            limits: configuration.streamLimits, budget: budget)
        s.socks5GreetingSkipped = afterSOCKS5Greeting
        nextID += 1
        stats.sessions += 1
        udpPorts.insert(server.port)
        if let factory { s.attach(factory.makeConsumer(for: s)) }
        sessions[s.key] = s
        tombstones[s.key] = nil
        file(s)
        if ordering {
            openOrder.append(OrderEntry(key: s.key, id: s.id))
            if roleSource == .syn { halfOpenOrder.append(OrderEntry(key: s.key, id: s.id)) }
            if openOrder.count > 2 * max(sessions.count, 1024) { compactOrder() }
            if sessions.count < configuration.maxSessions / 4 {
                ordering = false
                openOrder.removeAll()
                halfOpenOrder.removeAll()
            }
        } else if sessions.count >= configuration.maxSessions / 2 {
            ordering = true
            for o in sessions.values.sorted(by: { $0.id < $1.id }) {
                openOrder.append(OrderEntry(key: o.key, id: o.id))
                if o.roleSource == .syn && o.synAck == nil { halfOpenOrder.append(OrderEntry(key: o.key, id: o.id)) }
            }
        }
        return s
    }

    /// The open session an order entry names, if it is still open.
    private func openSession(_ e: OrderEntry) -> TCPSession? {
        guard let s = sessions[e.key], s.id == e.id, !s.finalized else { return nil }
        return s
    }

    private func compactOrder() {
        openOrder = Deque(openOrder.filter { openSession($0) != nil })
        halfOpenOrder = Deque(halfOpenOrder.filter { e in openSession(e).map { $0.synAck == nil } ?? false })
    }

    /// Reports the oldest half-open session, or else the oldest open one, as it stands.
    private func evictOldest() {
        var victim: TCPSession?
        while victim == nil, let e = halfOpenOrder.popFirst() {
            if let s = openSession(e), s.synAck == nil { victim = s }
        }
        while victim == nil, let e = openOrder.popFirst() {
            victim = openSession(e)
        }
        guard let victim else { return }
        victim.evicted = true
        stats.sessionsEvicted += 1
        finalize(victim)
        // A flood leaves a tombstone per connection: past the session limit they are only
        // an optimisation (late packets ignored), so forget them all.
        if tombstones.count > 4 * configuration.maxSessions { tombstones.removeAll(keepingCapacity: false) }
    }

    private func deliver(_ p: DecodedPacket, to s: TCPSession, from src: Endpoint, bytes: UnsafeRawBufferPointer,
                         frameLength: Int, at ref: FrameRef) {
        stats.sessionFrames += 1
        let d: Direction = src == s.client ? .clientToServer : .serverToClient
        s.handle(p, direction: d, payload: payloadBytes(p, bytes), frameLength: frameLength, at: ref)
        // A FIN or RST brings the deadline forward: file the session earlier.
        if s.state == .reset || s.state == .closed { file(s) }
    }

    /// Seconds of quiet after which a session is over, by its state.
    @inline(__always)
    private func wait(_ s: TCPSession) -> Double {
        switch s.state {
        case .reset, .closed: configuration.closeLinger
        case .synSent: configuration.handshakeTimeout
        default: configuration.idleTimeout
        }
    }

    /// The capture second in which a session is over if no packet comes (rounded down,
    /// so a sweep at or after the deadline always looks at it).
    @inline(__always)
    private func deadlineSecond(_ s: TCPSession) -> Int64 {
        let w = wait(s)
        let waitNS = w >= 1e9 ? Int64(1e18) : Int64(max(0, (w * 1e9).rounded(.down)))
        let due = s.lastFrame.time.nanoseconds.addingReportingOverflow(waitNS)
        return due.overflow ? .max - 1 : Self.second(of: due.partialValue)
    }

    @inline(__always)
    static func second(of nanoseconds: Int64) -> Int64 {
        let q = nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
        return q.remainder < 0 ? q.quotient - 1 : q.quotient
    }

    @inline(__always)
    static func slot(_ second: Int64) -> Int { Int(UInt64(bitPattern: second) % UInt64(wheelSlots)) }

    /// Files `s` in the wheel slot of its deadline, unless it already has an entry as early.
    @inline(__always)
    private func file(_ s: TCPSession) {
        let second = deadlineSecond(s)
        guard second < s.wheelSecond else { return }
        unfile(s)
        s.wheelSecond = second
        let slot = Self.slot(second)
        s.wheelIndex = wheel[slot].count
        wheel[slot].append(s)
    }

    /// Takes `s` out of the wheel, so that the wheel never keeps a finished session (and
    /// its buffers) alive.
    private func unfile(_ s: TCPSession) {
        guard s.wheelSecond != .max else { return }
        let slot = Self.slot(s.wheelSecond)
        s.wheelSecond = .max
        // Its place in the slot is known: a flood puts thousands of sessions in one slot, and
        // searching it for each would make evicting them quadratic.
        var i = s.wheelIndex
        if !(i >= 0 && i < wheel[slot].count && wheel[slot][i] === s) {
            guard let found = wheel[slot].lastIndex(where: { $0 === s }) else { return }
            i = found
        }
        let last = wheel[slot].count - 1
        if i != last {
            wheel[slot].swapAt(i, last)
            wheel[slot][i].wheelIndex = i
        }
        wheel[slot].removeLast()
        s.wheelIndex = -1
    }

    private func handleICMP(_ p: DecodedPacket, quoted q: QuotedDatagram, at ref: FrameRef) {
        let key = FlowKey(Endpoint(q.source, q.sourcePort), Endpoint(q.destination, q.destinationPort))
        if let s = sessions[key] {
            stats.icmpErrorsMatched += 1
            s.handleICMP(p, quoted: q, at: ref)
        } else {
            stats.icmpErrorsUnmatched += 1
        }
    }

    /// Reports sessions that are over by the capture clock, and forgets stale candidates.
    private func sweep() {
        let now = clock
        let nowSecond = Self.second(of: now.nanoseconds)
        // Every slot from the last sweep's second (sessions due later in that second are
        // still there) up to this one; at most one turn of the wheel.
        var second = wheelSwept == .min ? nowSecond : max(wheelSwept, nowSecond &- Int64(Self.wheelSlots - 1))
        wheelSwept = nowSecond
        dueScratch.removeAll(keepingCapacity: true)
        while second <= nowSecond {
            let slot = Self.slot(second)
            second += 1
            if wheel[slot].isEmpty { continue }
            swap(&slotScratch, &wheel[slot])
            defer { slotScratch.removeAll(keepingCapacity: true) }
            for s in slotScratch {
                // Each open session has exactly one entry (`file` and `finalize` take the old
                // one out); anything else would be stale and is dropped.
                guard !s.finalized, s.wheelSecond != .max, Self.slot(s.wheelSecond) == slot else { continue }
                if s.wheelSecond > nowSecond {
                    s.wheelIndex = wheel[slot].count
                    wheel[slot].append(s)  // due in a later turn of the wheel
                } else if now.seconds(since: s.lastFrame.time) >= wait(s) {
                    s.wheelSecond = .max
                    dueScratch.append(s)
                } else {
                    s.wheelSecond = .max
                    file(s)
                }
            }
        }
        if !dueScratch.isEmpty {
            dueScratch.sort { $0.id < $1.id }
            for s in dueScratch {
                if !(s.state == .reset || s.state == .closed || s.state == .synSent) { s.endedIdle = true }
                finalize(s)
            }
            dueScratch.removeAll(keepingCapacity: true)
        }
        sweepScratch.removeAll(keepingCapacity: true)
        for (key, c) in candidates {
            let quiet = now.seconds(since: c.lastSeen)
            if quiet >= configuration.idleTimeout || (c.ended && quiet >= configuration.closeLinger)
                || (c.synAck == nil && quiet >= configuration.handshakeTimeout)
            {
                sweepScratch.append(key)
            }
        }
        for key in sweepScratch { candidates[key] = nil }
        if candidateOrder.count > 2 * max(candidates.count, 1024) {
            candidateOrder = Deque(candidateOrder.filter { candidates[$0] != nil })
        }
        sweepScratch.removeAll(keepingCapacity: true)
        // Tombstones live for a minute; forgetting them is not urgent.
        guard now.seconds(since: lastTombstoneSweep) >= 30 else { return }
        lastTombstoneSweep = now
        for (key, t) in tombstones where now.seconds(since: t) > 60 { sweepScratch.append(key) }
        for key in sweepScratch { tombstones[key] = nil }
    }

    private func finalize(_ s: TCPSession) {
        guard !s.finalized else { return }
        s.finalized = true
        unfile(s)
        s.finish()
        if !udp.isEmpty {
            s.udpTransport = udp.take(client: s.client.address, server: s.server, from: s.firstFrame.time, to: s.lastFrame.time)
        }
        if sessions[s.key] === s {
            sessions[s.key] = nil
            tombstones[s.key] = s.lastFrame.time
        }
        onFinish(s, dns)
    }

    /// The input is over (end of file, or live capture stopped): reports every session
    /// still open, in the order they started.
    public func finishAll() {
        let open = sessions.values.sorted { $0.id < $1.id }
        for s in open { finalize(s) }
        for i in wheel.indices { wheel[i].removeAll() }
        wheelSwept = .min
        openOrder.removeAll()
        halfOpenOrder.removeAll()
        ordering = false
        candidates.removeAll()
        candidateOrder.removeAll()
        tombstones.removeAll()
    }
}

/// A set of TCP or UDP ports as a bitmap: one bit test a packet.
struct PortSet {
    private var bits = [UInt64](repeating: 0, count: 1024)

    @inline(__always)
    func contains(_ p: UInt16) -> Bool { bits[Int(p >> 6)] & (1 << UInt64(p & 63)) != 0 }

    mutating func insert(_ p: UInt16) { bits[Int(p >> 6)] |= 1 << UInt64(p & 63) }
}
