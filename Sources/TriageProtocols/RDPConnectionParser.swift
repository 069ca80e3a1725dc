import TriageCapture
import TriageDecoding
import TriageFlows

/// The RDP connection sequence of one TCP session (MS-RDPBCGR 1.3.1.1): X.224 negotiation,
/// then either TLS (and CredSSP inside it for HYBRID / HYBRID_EX) or standard RDP
/// security's MCS connect exchange in clear text. Layers nest as a stream's analyzers do
/// in Zeek: this struct frames each direction's bytes into PDUs and hands them to
/// `TPKTLayer` (clear-text TPKT) or `TLSRecordLayer` (records), which, with key material,
/// opens them for `PlaintextLayer` (CredSSP, then TPKT/MCS again). Each layer has its own
/// state per direction; together they collect `RDPFacts`.
///
/// It knows nothing of `TCPSession`: bytes come with their stream offset and a closure
/// that maps an offset to the frame that carried it, so tests drive it directly and
/// `RDPStreamConsumer` is a thin adapter.
///
/// Segmentation does not change the result: only complete PDUs are consumed, facts taken
/// from a stream's first bytes are recomputed while those bytes are still offered, and
/// evidence frames are those of each PDU's last byte (where tshark shows a reassembled PDU).
/// The exception is a capture that began inside a stream: there segment starts are where
/// a PDU boundary is looked for, since senders start segments at PDUs.
public struct RDPConnectionParser: Sendable {
    /// Maps a stream offset of the direction being parsed to the frame that carried it.
    public typealias FrameLookup = (Int64) -> FrameRef?

    /// Protected application records kept per direction (see `TLSRecordLayer`).
    public static let maxApplicationRecordsPerDirection = TLSRecordLayer.maxApplicationRecordsPerDirection
    /// PDUs read after the MCS connect exchange (see `TPKTLayer`).
    public static let maxPDUsAfterConnect = TPKTLayer.maxPDUsAfterConnect
    /// Records of a direction read inside TLS at most (see `TLSRecordLayer`).
    public static let maxDecryptedRecordsPerDirection = TLSRecordLayer.maxDecryptedRecordsPerDirection
    static let maxNotes = CollectedFacts.maxNotes
    static let maxAlerts = TLSRecordLayer.maxAlerts
    /// Segments a mid-stream start may skip looking for a PDU boundary (a PDU the capture
    /// began inside spans at most a few dozen).
    static let maxJoinSkips = 64
    static let maxMalformed = 4

    /// What the layers read, without the facts derived from several records at once.
    private(set) var out = CollectedFacts()
    /// The clear-text TPKT layer (X.224, MCS) and the TLS record layer, with the protocol
    /// inside TLS when there are keys. This struct frames each direction's bytes into their
    /// PDUs (finding a boundary after a gap or a mid-stream start, reading a proxy preamble)
    /// and hands each complete PDU to its layer.
    var tpkt = TPKTLayer()
    var tls: TLSRecordLayer
    /// PDUs handed to the layers so far, both directions: unchanged, the facts are too (live
    /// looks at it before classifying an open connection again).
    public private(set) var pdusRead = 0

    /// Everything learned so far, with the derived facts (TLS 1.3 alerts hidden by
    /// encryption, the CredSSP exchange) worked out from the current state. They depend only
    /// on that state, so working them out when asked gives what keeping them up to date after
    /// every record did, without redoing it per record.
    public var facts: RDPFacts {
        var f = out.facts
        derive(&f)
        if tls.inside != nil { tls.addDecrypted(&f) }
        return f
    }

    /// Where one direction's parser is (STYLE.md 7: an explicit state, not flags).
    enum Mode: Sendable, Equatable {
        /// Nothing parsed yet: the first bytes decide.
        case start
        /// TPKT-framed X.224 and MCS PDUs (and fast-path PDUs after the connect phase).
        case tpkt
        /// TLS records.
        case tls
        /// A proxy preamble (SOCKS, HTTP CONNECT) before the tunnelled stream.
        case proxy
        /// Done with this direction (enough seen, or lost).
        case stopped
    }

    /// A TLS record whose header was read but whose body has not arrived in full.
    struct PendingRecord: Sendable {
        var contentType: TLSContentType
        var length: Int
        var start: Int64
    }

    struct DirectionState: Sendable {
        var mode = Mode.start
        /// Stream offset where this direction's RDP bytes start (after a proxy preamble).
        var base: Int64 = 0
        /// The first-bytes classification is settled.
        var classified = false
        /// End offset of the incomplete PDU at the head of the last offer, when its header
        /// was readable: a gap inside it can be skipped without losing the framing.
        var pendingEnd: Int64?
        var pendingRecord: PendingRecord?
        /// Bytes before this offset belong to a PDU lost in a gap.
        var skipUntil: Int64?
        /// After a gap at an unknown position: the next bytes must start a PDU.
        var resyncByHeader = false
        /// The last frame cited for this direction (the fallback when a lookup fails).
        var lastFrame: FrameRef?
        /// Version field of the last record (ClientHello records often say 0x0301, later
        /// ones 0x0303): what a record after a gap must carry.
        var recordVersion: UInt16?
        /// Joined at a PDU boundary found mid-stream (`startsMidStream`): PDUs are counted.
        var joined = false
        /// The boundary was guessed from one header: until a PDU ends where a segment
        /// ends, a framing error means the guess was wrong, not that the peer misbehaved.
        var unconfirmed = false
        /// Segments skipped while looking for the first PDU boundary.
        var joinSkips = 0
        var joinedPDUs = 0
        var joinedFastPathPDUs = 0
    }

    // Plain values (no references), so a step copies its direction's state in and out
    // cheaply.
    var client = DirectionState()
    var server = DirectionState()

    /// The capture may have started inside the streams (the SYN was not seen): binary first
    /// bytes then say nothing about the service.
    let startsMidStream: Bool

    /// The next proxy message each side sends (STYLE.md 7), while a preamble runs.
    enum ProxyClientStep: Sendable, Equatable { case greeting, credentialsOrRequest, request, done }
    enum ProxyServerStep: Sendable, Equatable { case methodChoice, authStatus, reply, done }
    var proxyClient = ProxyClientStep.done
    var proxyServer = ProxyServerStep.done

    /// `startsMidStream`: the session's SYN was not captured, so offset 0 may fall inside
    /// a PDU. `afterSOCKS5Greeting`: the stream is followed from a SOCKS5 request (the
    /// greeting and the method choice went by before). `keys`: decrypt TLS with them.
    public init(startsMidStream: Bool = false, afterSOCKS5Greeting: Bool = false, keys: TLSKeyMaterial? = nil) {
        self.startsMidStream = startsMidStream
        tls = TLSRecordLayer(keys: keys)
        if afterSOCKS5Greeting && !startsMidStream {
            out.facts.proxy = ProxyFacts(kind: .socks5)
            proxyClient = .request
            proxyServer = .reply
            client.mode = .proxy
            server.mode = .proxy
        }
    }

    // MARK: - Stream events

    /// New contiguous bytes of `direction` starting at stream offset `offset`.
    public mutating func receive(
        _ bytes: UnsafeRawBufferPointer, offset: Int64, direction: Direction, frame: FrameLookup
    ) -> StreamDisposition {
        var st = state(direction)
        defer { setState(direction, st) }
        guard st.mode != .stopped else { return StreamDisposition(consumed: bytes.count, wantsMore: false) }
        if st.mode == .proxy {
            var c = ByteCursor(bytes)
            let finished = stepProxy(&st, &c, offset: offset, direction: direction, frame: frame)
            if st.mode == .stopped { return StreamDisposition(consumed: bytes.count, wantsMore: false) }
            guard finished, !c.isEmpty else { return StreamDisposition(consumed: c.offset, wantsMore: true) }
            // The tunnel's first bytes came in the same offer: read them as a stream's start.
            setState(direction, st)
            let rest = UnsafeRawBufferPointer(rebasing: bytes[c.offset...])
            let inner = receive(rest, offset: offset + Int64(c.offset), direction: direction, frame: frame)
            st = state(direction)
            return StreamDisposition(consumed: c.offset + inner.consumed, wantsMore: inner.wantsMore)
        }
        var c = ByteCursor(bytes)
        st.pendingEnd = nil
        st.pendingRecord = nil
        if let skip = st.skipUntil {
            let n = Int(min(Int64(bytes.count), max(0, skip - offset)))
            _ = c.skip(n)
            if offset + Int64(n) >= skip { st.skipUntil = nil }
            if c.isEmpty { return StreamDisposition(consumed: c.offset, wantsMore: true) }
        }
        if st.resyncByHeader {
            switch resynchronize(&st, at: c, direction: direction) {
            case nil:
                return StreamDisposition(consumed: c.offset, wantsMore: true)
            case false?:
                lose(&st, direction, .noHeaderAfterGap)
                return StreamDisposition(consumed: bytes.count, wantsMore: false)
            case true?:
                st.resyncByHeader = false
                note(direction, frame(offset + Int64(c.offset)) ?? st.lastFrame, .resynchronisedAfterGap)
            }
        }
        if startsMidStream && st.mode == .start {
            // The capture began inside the stream: find the first PDU boundary (a service's
            // text banner is still told apart at offset 0).
            if offset == st.base && c.offset == 0 && !st.classified {
                guard let kind = PayloadClassifier.classify(c) else {
                    return StreamDisposition(consumed: 0, wantsMore: true)
                }
                if kind == .http || kind == .ssh || kind == .text {
                    _ = classifyFirstBytes(&st, c, direction: direction, frame: frame)
                    let done = st.mode == .stopped
                    return StreamDisposition(consumed: done ? bytes.count : 0, wantsMore: !done)
                }
                if kind != .binary {
                    if direction == .clientToServer { out.facts.firstClientPayload = kind } else { out.facts.firstServerPayload = kind }
                }
            }
            guard join(&st, &c, offset: offset, direction: direction, frame: frame) else {
                let done = st.mode == .stopped
                return StreamDisposition(consumed: done ? bytes.count : c.offset, wantsMore: !done)
            }
        } else if offset == st.base && c.offset == 0 && !st.classified {
            // The stream's first bytes, offered again until the first PDU is consumed.
            guard classifyFirstBytes(&st, c, direction: direction, frame: frame) else {
                let done = st.mode == .stopped
                if st.mode == .proxy && !done {
                    setState(direction, st)
                    let r = receive(bytes, offset: offset, direction: direction, frame: frame)
                    st = state(direction)
                    return r
                }
                return StreamDisposition(consumed: done ? bytes.count : 0, wantsMore: !done)
            }
        } else if st.mode == .start {
            switch resynchronize(&st, at: c, direction: direction) {
            case nil:
                return StreamDisposition(consumed: c.offset, wantsMore: true)
            case false?:
                lose(&st, direction, .notAtPDUBoundary)
                return StreamDisposition(consumed: bytes.count, wantsMore: false)
            case true?:
                break
            }
        }
        while !c.isEmpty && st.mode != .stopped {
            let progressed: Bool
            switch st.mode {
            case .tpkt: progressed = stepTPKT(&st, &c, offset: offset, direction: direction, frame: frame)
            case .tls: progressed = stepTLS(&st, &c, offset: offset, direction: direction, frame: frame)
            case .start, .stopped, .proxy: progressed = false
            }
            if !progressed { break }
            pdusRead &+= 1
            if st.joined {
                st.joinedPDUs += 1
                // A PDU that ends where the offered bytes end ends where a segment did:
                // senders cut segments at PDU ends, random bytes rarely do.
                if c.isEmpty { st.unconfirmed = false }
            }
        }
        if c.offset > 0 { st.classified = true }
        if st.mode == .stopped { return StreamDisposition(consumed: bytes.count, wantsMore: false) }
        return StreamDisposition(consumed: c.offset, wantsMore: true)
    }

    /// Bytes `[offset, offset + length)` of `direction` will never arrive.
    public mutating func gap(at offset: Int64, length: Int64, direction: Direction, frame: FrameLookup) {
        var st = state(direction)
        defer { setState(direction, st) }
        guard st.mode != .stopped else { return }
        // Still looking for a first PDU boundary: the bytes after the gap are probed anyway.
        if startsMidStream && st.mode == .start { return }
        let resume = offset + length
        let inProtectedRecord = st.pendingRecord?.contentType == .applicationData
        tls.gap(direction: direction, insideRecord: !inProtectedRecord && st.pendingEnd != nil && st.mode == .tls)
        if inProtectedRecord, let r = st.pendingRecord {
            // Its header was read: its size and direction are all the CredSSP shape needs.
            let at = frame(r.start) ?? st.lastFrame ?? Self.unknownFrame
            tls.partialRecord(
                TLSFacts.RecordRun(at: at, from: direction.sender, contentType: r.contentType.rawValue, length: r.length),
                direction: direction, into: &out)
        } else if st.pendingEnd != nil {
            note(direction, st.lastFrame, .pduPartlyLostInGap)
        }
        if let end = st.pendingEnd, end >= resume {
            // The gap ends inside that PDU: skip the rest of it and carry on in step.
            st.skipUntil = end
            st.pendingEnd = nil
            st.pendingRecord = nil
            return
        }
        st.pendingEnd = nil
        st.pendingRecord = nil
        st.skipUntil = nil
        tls.gapBetweenRecords(direction: direction)
        // Lost at a PDU boundary or earlier: only a recognisable header can resume.
        st.resyncByHeader = true
    }

    /// Nothing more will be delivered in `direction` (the reassembly limit was reached).
    public mutating func cut(at offset: Int64, direction: Direction) {
        var st = state(direction)
        defer { setState(direction, st) }
        guard st.mode != .stopped else { return }
        lose(&st, direction, .reassemblyLimit(offset: offset))
    }

    // MARK: - Proxy preamble

    /// Reads this direction's proxy messages. True when its preamble is over and the tunnel
    /// starts at the cursor; false while waiting for bytes, or when the proxy refused (the
    /// direction is stopped then).
    mutating func stepProxy(
        _ st: inout DirectionState, _ c: inout ByteCursor, offset: Int64, direction: Direction, frame: FrameLookup
    ) -> Bool {
        guard var p = out.facts.proxy else {
            st.mode = .stopped
            return false
        }
        defer { out.facts.proxy = p }
        while true {
            let start = offset + Int64(c.offset)
            var copy = c
            do throws(ParseError) {
                if direction == .clientToServer {
                    switch proxyClient {
                    case .greeting:
                        _ = try ProxyPreamble.readSOCKS5Greeting(&copy)
                        p.greetingAt = evidence(&st, frame, offset + Int64(copy.offset) - 1)
                        proxyClient = .credentialsOrRequest
                    case .credentialsOrRequest:
                        if copy.peekUInt8() == 1 {
                            try ProxyPreamble.skipSOCKS5Credentials(&copy)
                            proxyClient = .request
                        } else {
                            proxyClient = .request
                            continue
                        }
                    case .request:
                        let r: ProxyRequest
                        switch p.kind {
                        case .socks4, .socks4a: r = try ProxyPreamble.readSOCKS4Request(&copy)
                        case .socks5: r = try ProxyPreamble.readSOCKS5Request(&copy)
                        case .http: r = try ProxyPreamble.readHTTPConnect(&copy)
                        }
                        p.kind = r.kind == .socks4a ? .socks4a : p.kind
                        p.request = r
                        p.requestAt = evidence(&st, frame, offset + Int64(copy.offset) - 1)
                        proxyClient = .done
                    case .done:
                        break
                    }
                } else {
                    switch proxyServer {
                    case .methodChoice:
                        let m = try ProxyPreamble.readSOCKS5MethodChoice(&copy)
                        p.method = m
                        if m == 0xFF {
                            p.reply = ProxyReply(kind: .socks5, code: ProxyReply.noAcceptableMethod)
                            p.replyAt = evidence(&st, frame, offset + Int64(copy.offset) - 1)
                            proxyServer = .done
                        } else {
                            proxyServer = m == 2 ? .authStatus : .reply
                        }
                    case .authStatus:
                        let status = try ProxyPreamble.readSOCKS5AuthStatus(&copy)
                        if status != 0 {
                            p.reply = ProxyReply(kind: .socks5, code: ProxyReply.credentialsRefused)
                            p.replyAt = evidence(&st, frame, offset + Int64(copy.offset) - 1)
                            proxyServer = .done
                        } else {
                            proxyServer = .reply
                        }
                    case .reply:
                        let r: ProxyReply
                        switch p.kind {
                        case .socks4, .socks4a: r = try ProxyPreamble.readSOCKS4Reply(&copy, kind: p.kind)
                        case .socks5: r = try ProxyPreamble.readSOCKS5Reply(&copy)
                        case .http: r = try ProxyPreamble.readHTTPReply(&copy)
                        }
                        // Where the reply (for HTTP, its head: a refusal's page is not read) ends.
                        p.reply = r
                        p.replyAt = evidence(&st, frame, offset + Int64(copy.offset) - 1)
                        proxyServer = .done
                    case .done:
                        break
                    }
                }
            } catch {
                if error.isNeedMore { return false }
                st.mode = .stopped
                note(direction, frame(start) ?? st.lastFrame, .proxyPreamble(error))
                return false
            }
            c = copy
            let done = direction == .clientToServer ? proxyClient == .done : proxyServer == .done
            guard done else {
                if c.isEmpty { return false }
                continue
            }
            if direction == .serverToClient && p.reply?.granted != true {
                // The proxy said no: nothing of the target follows on either side.
                st.mode = .stopped
                return false
            }
            st.mode = .start
            st.base = offset + Int64(c.offset)
            st.classified = false
            return true
        }
    }

    // MARK: - First bytes

    /// Classifies the stream's first bytes. Returns false when parsing should not go on
    /// yet: still waiting for enough bytes of a non-RDP service, or finished with it.
    mutating func classifyFirstBytes(
        _ st: inout DirectionState, _ c: ByteCursor, direction: Direction, frame: FrameLookup
    ) -> Bool {
        if st.base == 0 && !startsMidStream {
            if direction == .clientToServer && out.facts.proxy == nil {
                let start = ProxyPreamble.start(c)
                if start == .needMore { return false }
                if let kind = start.kind {
                    out.facts.proxy = ProxyFacts(kind: kind)
                    proxyClient = kind == .socks5 ? .greeting : .request
                    proxyServer = kind == .socks5 ? .methodChoice : .reply
                    st.mode = .proxy
                    return false
                }
            } else if direction == .serverToClient && proxyServer != .done {
                st.mode = .proxy
                return false
            }
        }
        guard let kind = PayloadClassifier.classify(c) else { return false }
        if direction == .clientToServer { out.facts.firstClientPayload = kind } else { out.facts.firstServerPayload = kind }
        switch kind {
        case .x224ConnectionRequest, .x224ConnectionConfirm, .x224Other:
            st.mode = .tpkt
            return true
        case .tls:
            st.mode = .tls
            return true
        case .http, .ssh, .text, .binary:
            if direction == .serverToClient {
                out.facts.serverBanner = kind == .binary ? nil : PayloadClassifier.banner(c)
                out.facts.serverBannerAt = frame(st.base) ?? st.lastFrame
            }
            if PayloadClassifier.wantsMoreBytes(c) { return false }
            st.classified = true
            st.mode = .stopped
            note(direction, frame(st.base), .notRDP(kind))
            return false
        }
    }

    /// After a gap: accepts the bytes only if they start a PDU of the mode this direction
    /// was in (a TLS record header with the version seen before, or a TPKT header with a
    /// known X.224 code). Random bytes pass those checks with negligible probability.
    /// Nil while fewer bytes than a TPKT header and X.224 code are there.
    mutating func resynchronize(_ st: inout DirectionState, at c: ByteCursor, direction: Direction) -> Bool? {
        guard c.remaining >= 6 else { return nil }
        let tlsOK: Bool
        if let header = try? TLSRecord.peekHeader(c) {
            tlsOK = st.recordVersion.map { $0 == header.version.rawValue } ?? (0x0300...0x0304).contains(header.version.rawValue)
        } else {
            tlsOK = false
        }
        var tpktOK = false
        if c.peekUInt8() == TPKTHeader.version, c.peekUInt8(at: 1) == 0, let length = c.peekUInt16BE(at: 2),
            length >= 7, let code = c.peekUInt8(at: 5)
        {
            tpktOK = [0xE0, 0xD0, 0xF0, 0x80].contains(code & 0xF0)
        }
        switch st.mode {
        case .tls where tlsOK: return true
        case .tpkt where tpktOK: return true
        case .tpkt where tlsOK && !tpkt.connected(direction):
            st.mode = .tls
            return true
        case .start where tlsOK:
            st.mode = .tls
            return true
        case .start where tpktOK:
            st.mode = .tpkt
            return true
        default: return false
        }
    }

    // MARK: - Mid-stream start

    /// Looks for the first PDU boundary of a stream the capture began inside. True when
    /// parsing can go on at the cursor; false while waiting for more bytes, after skipping
    /// the offered bytes (the next segment's start is the next candidate), or when it gave up.
    mutating func join(
        _ st: inout DirectionState, _ c: inout ByteCursor, offset: Int64, direction: Direction, frame: FrameLookup
    ) -> Bool {
        let start = offset + Int64(c.offset)
        switch Self.boundary(c, direction: direction) {
        case .needMore:
            return false
        case .none:
            _ = c.skip(c.remaining)
            st.joinSkips += 1
            if st.joinSkips >= Self.maxJoinSkips {
                st.mode = .stopped
                note(direction, st.lastFrame ?? frame(start), .noPDUBoundary(segments: Self.maxJoinSkips))
            }
            return false
        case .found(let framing):
            // A Connection Request or Confirm starts the connection sequence: parse it as usual.
            let sequenceStart = framing == .tpkt && [0xE0, 0xD0].contains((c.peekUInt8(at: 5) ?? 0) & 0xF0)
            st.mode = framing == .tls ? .tls : .tpkt
            // Fast-path PDUs and MCS data come after the connect phase: no TLS can start.
            tpkt.setPhase(direction, framing != .tls && !sequenceStart ? .connected(pdus: 0) : .connecting)
            st.unconfirmed = true
            st.joined = true
            st.joinedPDUs = 0
            st.joinedFastPathPDUs = 0
            let at = evidence(&st, frame, start)
            var m = out.facts.midStream ?? MidStreamFacts()
            m[direction.sender] = MidStreamFacts.SideStart(framing: framing, skippedBytes: start, at: at, pdus: 0, fastPathPDUs: 0)
            out.facts.midStream = m
            if start > 0 { note(direction, at, .joinedMidStream(skippedBytes: start)) }
            return true
        }
    }

    /// A boundary guessed from a single header proved wrong: looks again at the next segment.
    mutating func rejoin(_ st: inout DirectionState, _ c: inout ByteCursor, _ direction: Direction) -> Bool {
        out.facts.midStream?[direction.sender] = nil
        st.mode = .start
        tpkt.setPhase(direction, .connecting)
        st.joined = false
        st.unconfirmed = false
        st.recordVersion = nil
        st.joinSkips += 1
        _ = c.skip(c.remaining)
        return false
    }

    /// What the bytes at a candidate PDU boundary show.
    enum Boundary: Equatable {
        case needMore
        case none
        case found(MidStreamFacts.Framing)
    }

    /// The framing of a PDU that plausibly starts at the cursor. Checks every header field
    /// the specs fix, so the middle of a PDU rarely passes.
    static func boundary(_ c: ByteCursor, direction: Direction) -> Boundary {
        guard let first = c.peekUInt8() else { return .needMore }
        if (20...23).contains(first) {
            guard c.remaining >= TLSRecordHeader.size else { return .needMore }
            if let h = try? TLSRecord.peekHeader(c), (0x0301...0x0304).contains(h.version.rawValue), h.length > 0 {
                return .found(.tls)
            }
        }
        if first == TPKTHeader.version {
            guard c.remaining >= 7 else { return .needMore }
            // TPKT (RFC 1006): reserved 0, a length covering X.224's length indicator and code.
            if c.peekUInt8(at: 1) == 0, let length = c.peekUInt16BE(at: 2), length >= 7, let li = c.peekUInt8(at: 4),
                Int(li) < Int(length) - 4, let code = c.peekUInt8(at: 5), [0xE0, 0xD0, 0xF0, 0x80].contains(code & 0xF0)
            {
                return .found(.tpkt)
            }
        }
        // fpOutputHeader (MS-RDPBCGR 2.2.9.1.2): action 0 in the low two bits, four reserved
        // bits (0), two flag bits. fpInputHeader (2.2.8.1.2): action 0, numEvents, flags.
        guard first & 0x03 == 0 else { return .none }
        if direction == .serverToClient && first & 0x3C != 0 { return .none }
        guard case .fastPath(let length)? = try? RDPFraming.peek(c) else {
            return c.remaining < 3 ? .needMore : .none
        }
        // The smallest PDU: header, length and one input event (1 byte) or one update
        // (updateHeader and size, 3 bytes: 2.2.9.1.2.1).
        guard length >= (direction == .serverToClient ? 5 : 3) else { return .none }
        return .found(.fastPath)
    }

    // MARK: - TPKT phase

    /// Reads one complete TPKT or fast-path PDU. Returns false when it needs more bytes or
    /// stopped.
    mutating func stepTPKT(
        _ st: inout DirectionState, _ c: inout ByteCursor, offset: Int64, direction: Direction, frame: FrameLookup
    ) -> Bool {
        if !tpkt.connected(direction) {
            switch TLSRecord.startsRecord(c) {
            case true?:
                // The Connection Confirm selected TLS: the handshake starts on the bare stream.
                st.mode = .tls
                return true
            case nil:
                return false
            case false?:
                break
            }
        }
        let framing: RDPFraming
        do {
            framing = try RDPFraming.peek(c)
        } catch .needMore {
            return false
        } catch {
            if st.unconfirmed { return rejoin(&st, &c, direction) }
            lose(&st, direction, .tpktFraming(error), frame: frame(offset + Int64(c.offset)), lostSync: false)
            return false
        }
        let start = offset + Int64(c.offset)
        if case .fastPath = framing, !tpkt.connected(direction) {
            // Fast-path PDUs exist only once the connection sequence is through MCS.
            lose(&st, direction, .neitherTPKTNorTLS, frame: frame(start), lostSync: false)
            return false
        }
        guard framing.length <= c.remaining, var pdu = c.readSlice(framing.length) else {
            st.pendingEnd = start + Int64(framing.length)
            return false
        }
        let at = evidence(&st, frame, start + Int64(framing.length) - 1)
        if case .fastPath = framing, st.joined { st.joinedFastPathPDUs += 1 }
        if !tpkt.pdu(framing, &pdu, direction: direction, at: at, into: &out) { st.mode = .stopped }
        return true
    }

    // MARK: - TLS phase

    /// Reads one complete TLS record. Returns false when it needs more bytes or stopped.
    mutating func stepTLS(
        _ st: inout DirectionState, _ c: inout ByteCursor, offset: Int64, direction: Direction, frame: FrameLookup
    ) -> Bool {
        let start = offset + Int64(c.offset)
        let header: TLSRecordHeader
        let fragment: ByteCursor
        do {
            (header, fragment) = try TLSRecord.read(&c)
        } catch .needMore(let n) {
            if let h = try? TLSRecord.peekHeader(c) {
                st.pendingEnd = start + Int64(n)
                st.pendingRecord = PendingRecord(contentType: h.contentType, length: h.length, start: start)
            }
            return false
        } catch {
            if st.unconfirmed { return rejoin(&st, &c, direction) }
            let at = frame(start) ?? st.lastFrame
            out.withTLS { tls in
                if tls.malformed.count < Self.maxMalformed {
                    tls.malformed.append("\(direction.sender.rawValue)\(at.map { " frame \($0.frame)" } ?? ""): \(error.summary)")
                }
            }
            lose(&st, direction, .tlsRecord(error), frame: at, lostSync: false)
            return false
        }
        let at = evidence(&st, frame, start + Int64(TLSRecordHeader.size + header.length) - 1)
        st.recordVersion = header.version.rawValue
        if !tls.record(header, fragment, start: start, direction: direction, at: at, into: &out) { st.mode = .stopped }
        return true
    }

    // MARK: - Derived facts

    /// Works out what depends on several PDUs at once: the PDUs counted after a mid-stream
    /// start, and the TLS layer's CredSSP phase and TLS 1.3 alerts (read while a side is
    /// still in its TLS mode).
    func derive(_ facts: inout RDPFacts) {
        if var m = facts.midStream {
            for side in [Side.client, Side.server] {
                let st = side == .client ? client : server
                m[side]?.pdus = st.joinedPDUs
                m[side]?.fastPathPDUs = st.joinedFastPathPDUs
            }
            facts.midStream = m
        }
        tls.derive(&facts) { side in (side == .client ? client : server).mode == .tls }
    }

    // MARK: - Helpers

    static let unknownFrame = FrameRef(frame: 0, time: Timestamp(nanoseconds: 0))

    func state(_ d: Direction) -> DirectionState { d == .clientToServer ? client : server }

    mutating func setState(_ d: Direction, _ s: DirectionState) {
        if d == .clientToServer { client = s } else { server = s }
    }

    /// The frame of a stream offset, falling back to the direction's last known frame.
    func evidence(_ st: inout DirectionState, _ frame: FrameLookup, _ offset: Int64) -> FrameRef {
        if let f = frame(offset) {
            st.lastFrame = f
            return f
        }
        return st.lastFrame ?? Self.unknownFrame
    }

    mutating func note(_ direction: Direction, _ at: FrameRef?, _ event: ParserEvent) {
        out.note(direction, at, event)
    }

    /// Stops parsing a direction; `lostSync` when the capture (a gap, the reassembly limit,
    /// a start mid-stream) took the parser's place, not when the peer sent garbage.
    mutating func lose(
        _ st: inout DirectionState, _ direction: Direction, _ why: ParserEvent, frame: FrameRef? = nil, lostSync: Bool = true
    ) {
        st.mode = .stopped
        tls.stop(direction: direction)
        note(direction, frame ?? st.lastFrame, why)
        if lostSync && !out.facts.lostSync.contains(direction.sender) { out.facts.lostSync.append(direction.sender) }
    }
}
