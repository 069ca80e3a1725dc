import TriageCapture
import TriageDecoding
import TriageFlows

/// The RDP connection-sequence state machine of one TCP session (MS-RDPBCGR 1.3.1.1):
/// X.224 negotiation, then either TLS (and CredSSP inside it for HYBRID / HYBRID_EX)
/// or standard RDP security's MCS connect exchange in clear text. It feeds each
/// direction's bytes, in order, to the pure parsers and collects `RDPFacts`.
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

    /// Encrypted application records kept per direction; reading stops after them.
    public static let maxApplicationRecordsPerDirection = 16
    /// TPKT or fast-path PDUs read after the MCS connect exchange (for an X.224
    /// Disconnect Request or an MCS Disconnect Provider Ultimatum); then reading stops.
    public static let maxPDUsAfterConnect = 16
    static let maxNotes = 16
    /// Segments a mid-stream start may skip looking for a PDU boundary (a PDU the capture
    /// began inside spans at most a few dozen).
    static let maxJoinSkips = 64
    static let maxAlerts = 8
    static let maxMalformed = 4
    /// A TLS handshake message larger than this is not buffered (certificate chains are
    /// a few kilobytes).
    static let maxHandshakeMessage = 128 * 1024
    /// A TLS 1.3 record this small can hold a 2-byte alert plus the content type byte and
    /// a 16-byte tag (19 bytes) with a little padding, but not a Finished (at least
    /// 4 + 32 + 17 = 53 bytes).
    static let tls13AlertMaxLength = 24

    /// What the parser read, without the facts derived from several records at once.
    private(set) var collected = RDPFacts()

    /// Everything learned so far, with the derived facts (TLS 1.3 alerts hidden by
    /// encryption, the CredSSP exchange) worked out from the current state. They depend only
    /// on that state, so working them out when asked gives what keeping them up to date after
    /// every record did, without redoing it per record.
    public var facts: RDPFacts {
        var f = collected
        derive(&f)
        if inside != nil { addDecrypted(&f) }
        return f
    }

    /// The decrypted facts, and what they settle in the CredSSP facts (versions, errorCode).
    func addDecrypted(_ f: inout RDPFacts) {
        guard let d = decryptedFacts() else { return }
        f.decrypted = d
        guard var credssp = f.credssp else { return }
        credssp.clientVersion = d.tsRequests.first { $0.from == .client }?.version
        credssp.serverVersion = d.tsRequests.first { $0.from == .server }?.version
        credssp.errorCode = d.tsRequests.first { $0.from == .server && $0.errorCode != nil }?.errorCode
        f.credssp = credssp
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
        /// An MCS connect PDU went by: TLS can no longer start on this direction.
        var sawMCS = false
        var pdusAfterConnect = 0
        /// Records from this side are encrypted (after its ChangeCipherSpec; TLS 1.3:
        /// after the ServerHello).
        var encrypted = false
        /// An encrypted handshake record (Finished) was sent: this side's handshake is done.
        var encryptedHandshake = false
        /// TLS 1.3 encrypted handshake records the server sent (EncryptedExtensions first).
        var encryptedHandshakeRecords = 0
        /// Clear-text handshake messages can no longer be read (a gap, an oversized message).
        var handshakeBroken = false
        /// Version field of the last record (ClientHello records often say 0x0301, later
        /// ones 0x0303): what a record after a gap must carry.
        var recordVersion: UInt16?
        var applicationRecords = 0
        var sawFirstEncryptedRecord = false
        /// Stream offset of the first handshake record (where a ClientHello starts).
        var firstHandshakeRecord: Int64?
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
    // cheaply; the handshake buffers live apart for the same reason.
    var client = DirectionState()
    var server = DirectionState()
    /// Per direction, a handshake message that spans records, until it is complete.
    var clientHandshake: [UInt8] = []
    var serverHandshake: [UInt8] = []
    /// Alerts read from records (the TLS 1.3 "small final record" ones are derived).
    var explicitAlerts: [TLSAlertFacts] = []
    /// The ServerHello's version, 0 before it (read per record; kept apart from the facts so
    /// that reading it copies nothing).
    var serverVersion: UInt16 = 0
    /// The TLS handshake is known complete (it never becomes incomplete again).
    var tlsHandshakeComplete = false
    /// Application records were seen from the client, from the server.
    var sawClientRecord = false
    var sawServerRecord = false
    /// Frame number of each note (for their order).
    var noteFrames: [Int] = []

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
        if let keys { inside = InsideTLS(keys) }
        if afterSOCKS5Greeting && !startsMidStream {
            collected.proxy = ProxyFacts(kind: .socks5)
            proxyClient = .request
            proxyServer = .reply
            client.mode = .proxy
            server.mode = .proxy
        }
    }

    // MARK: - The layer inside TLS (only with key material)

    /// The TLS record protection and the protocol inside it, with what they found. A
    /// reference, so a parser without key material stays as small as before (one pointer).
    /// Owned by its parser, which one thread owns (the session's).
    final class InsideTLS: @unchecked Sendable {
        var decryptor: TLSDecryptor
        var plaintext = PlaintextLayer()
        /// A gap broke the record sequence of a side: its later records cannot be opened.
        var lost: Set<Side> = []
        /// The first record that failed authentication.
        var failedAt: FrameRef?
        /// TLS 1.3: the server's decrypted handshake messages not yet complete.
        var serverHandshake: [UInt8] = []
        var serverHandshakeDone = false
        /// Sides past the record limit: their records are only decrypted (the outer facts
        /// stop there, as without keys).
        var decryptOnly: Set<Side> = []
        var decryptOnlyRecords = [0, 0]
        /// Live, while the secrets are awaited: the protected records so far, in arrival order,
        /// opened once the key log names the connection (`maxHeldRecordBytes` at most; past
        /// it the connection gives up waiting).
        var held: [(header: TLSRecordHeader, fragment: [UInt8], direction: Direction, at: FrameRef)] = []
        var heldBytes = 0

        init(_ keys: TLSKeyMaterial) { decryptor = TLSDecryptor(material: keys) }
    }

    /// Nil without key material, so a capture analysed without keys never reaches it.
    var inside: InsideTLS?
    /// Records read past `maxApplicationRecordsPerDirection` only to decrypt them.
    static let maxDecryptedRecordsPerDirection = 512

    /// Protected records one connection holds while it waits for its secrets (live key logs).
    static let maxHeldRecordBytes = 1 << 20

    /// Opens a record for the inner layer when it is protected and the keys are known.
    mutating func decrypt(_ header: TLSRecordHeader, _ fragment: ByteCursor, direction: Direction, at: FrameRef) {
        let side = direction.sender
        guard let t = inside, !t.lost.contains(side) else { return }
        if t.decryptor.status == .waitingForSecrets {
            if t.decryptor.retrySecrets() {
                // The key log caught up: the records held so far first, in their order.
                let held = t.held
                t.held = []
                t.heldBytes = 0
                for r in held {
                    r.fragment.withUnsafeBytes { raw in
                        open(r.header, ByteCursor(raw), direction: r.direction, at: r.at)
                    }
                }
            } else {
                if t.decryptor.isProtected(contentType: header.contentType.rawValue, from: side) {
                    let bytes = fragment.remainingBytes
                    if t.heldBytes + bytes.count > Self.maxHeldRecordBytes {
                        t.held = []
                        t.decryptor.stopWaiting()
                    } else {
                        t.heldBytes += bytes.count
                        t.held.append((header, Array(bytes), direction, at))
                    }
                }
                return
            }
        }
        open(header, fragment, direction: direction, at: at)
    }

    mutating func open(_ header: TLSRecordHeader, _ fragment: ByteCursor, direction: Direction, at: FrameRef) {
        let side = direction.sender
        guard let t = inside, !t.lost.contains(side) else { return }
        let opened = t.decryptor.open(
            contentType: header.contentType.rawValue, version: header.version.rawValue, fragment: fragment.remainingBytes,
            from: side)
        switch opened {
        case .notProtected:
            return
        case .failedAuthentication:
            if t.failedAt == nil { t.failedAt = at }
        case .plaintext(let type, let bytes):
            switch type {
            case 23:
                t.plaintext.receive(bytes, from: side, at: at)
            case 22 where side == .server && isTLS13:
                serverHandshake13(t, bytes, at: at)
            case 21 where bytes.count == 2:
                if t.plaintext.facts.alerts.count < Self.maxAlerts {
                    t.plaintext.facts.alerts.append(
                        TLSAlertFacts(at: at, from: side, level: bytes[0], description: bytes[1], encrypted: true))
                }
            default:
                return
            }
        }
    }

    /// The server's TLS 1.3 handshake, decrypted: its Certificate gives the certificate facts
    /// that TLS 1.2 shows in clear, so the same certificate checks apply.
    mutating func serverHandshake13(_ t: InsideTLS, _ bytes: [UInt8], at: FrameRef) {
        guard !t.serverHandshakeDone else { return }
        t.serverHandshake += bytes
        var used = 0
        var chains: [Result<TLSCertificateMessage, ParseError>] = []
        t.serverHandshake.withUnsafeBytes { raw in
            var c = ByteCursor(raw)
            while let (header, body) = try? TLSHandshakeHeader.readMessage(&c) {
                used = c.offset
                if header.type.rawValue == 20 { t.serverHandshakeDone = true }
                guard header.type == .certificate else { continue }
                var b = body
                chains.append(Result { () throws(ParseError) in try TLSCertificateMessage.parse13(&b) })
            }
        }
        t.serverHandshake.removeFirst(used)
        if t.serverHandshakeDone || t.serverHandshake.count > Self.maxHandshakeMessage {
            t.serverHandshake = []
            t.serverHandshakeDone = true
        }
        for chain in chains {
            switch chain {
            case .failure(let error):
                note(.serverToClient, at, .decryptedCertificateMessage(error))
            case .success(let message):
                var certificates: [CertificateFacts] = []
                for der in message.certificates {
                    do {
                        certificates.append(try CertificateParser.facts(der: der))
                    } catch {
                        note(.serverToClient, at, .decryptedCertificate(error))
                    }
                }
                withTLS { tls in
                    if tls.certificates.isEmpty { tls.certificates = certificates }
                }
            }
        }
    }

    /// The decrypted facts as they stand (nil without key material).
    func decryptedFacts() -> DecryptedFacts? {
        guard let t = inside else { return nil }
        let d = t.decryptor
        var f = t.plaintext.facts
        f.clientRecords = d.openedRecords.client
        f.serverRecords = d.openedRecords.server
        switch d.status {
        case .waitingForHellos:
            // No TLS handshake went by: nothing to say about keys.
            return nil
        case .noSecrets, .waitingForSecrets: f.status = d.openedRecords.client + d.openedRecords.server > 0 ? .decrypted : .noSecrets
        case .unsupported(let why):
            f.status = .unsupported
            f.detail = why
        case .active: f.status = .decrypted
        case .failed(let side):
            f.status = .wrongKeys
            f.failedFrom = side
            f.failedAt = t.failedAt
        }
        if !t.lost.isEmpty {
            f.detail = "a gap in the capture broke the record sequence of the \(t.lost.map(\.rawValue).sorted().joined(separator: " and ")): later records were not decrypted"
        }
        return f
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
            switch resynchronize(&st, at: c) {
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
                    if direction == .clientToServer { collected.firstClientPayload = kind } else { collected.firstServerPayload = kind }
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
            switch resynchronize(&st, at: c) {
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
        inside?.lost.insert(direction.sender)
        let resume = offset + length
        if let r = st.pendingRecord, r.contentType == .applicationData {
            // The gap starts inside an encrypted record whose header we read: its size and
            // direction are all the CredSSP shape needs, so it still counts.
            let at = frame(r.start) ?? st.lastFrame ?? Self.unknownFrame
            addApplicationRecord(
                &st, direction,
                TLSFacts.RecordRun(at: at, from: direction.sender, contentType: r.contentType.rawValue, length: r.length))
        } else if st.pendingEnd != nil {
            if st.mode == .tls { st.handshakeBroken = st.handshakeBroken || !st.encrypted }
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
        if !(direction == .clientToServer ? clientHandshake : serverHandshake).isEmpty {
            // A handshake message spanning records lost its middle: stop reading messages.
            setHandshake(direction, [])
            st.handshakeBroken = true
        }
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
        guard var p = collected.proxy else {
            st.mode = .stopped
            return false
        }
        defer { collected.proxy = p }
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
            if direction == .clientToServer && collected.proxy == nil {
                let start = ProxyPreamble.start(c)
                if start == .needMore { return false }
                if let kind = start.kind {
                    collected.proxy = ProxyFacts(kind: kind)
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
        if direction == .clientToServer { collected.firstClientPayload = kind } else { collected.firstServerPayload = kind }
        switch kind {
        case .x224ConnectionRequest, .x224ConnectionConfirm, .x224Other:
            st.mode = .tpkt
            return true
        case .tls:
            st.mode = .tls
            return true
        case .http, .ssh, .text, .binary:
            if direction == .serverToClient {
                collected.serverBanner = kind == .binary ? nil : PayloadClassifier.banner(c)
                collected.serverBannerAt = frame(st.base) ?? st.lastFrame
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
    mutating func resynchronize(_ st: inout DirectionState, at c: ByteCursor) -> Bool? {
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
        case .tpkt where tlsOK && !st.sawMCS:
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
            st.sawMCS = framing != .tls && !sequenceStart
            st.unconfirmed = true
            st.joined = true
            st.joinedPDUs = 0
            st.joinedFastPathPDUs = 0
            let at = evidence(&st, frame, start)
            var m = collected.midStream ?? MidStreamFacts()
            m[direction.sender] = MidStreamFacts.SideStart(framing: framing, skippedBytes: start, at: at, pdus: 0, fastPathPDUs: 0)
            collected.midStream = m
            if start > 0 { note(direction, at, .joinedMidStream(skippedBytes: start)) }
            return true
        }
    }

    /// A boundary guessed from a single header proved wrong: looks again at the next segment.
    mutating func rejoin(_ st: inout DirectionState, _ c: inout ByteCursor, _ direction: Direction) -> Bool {
        collected.midStream?[direction.sender] = nil
        st.mode = .start
        st.sawMCS = false
        st.joined = false
        st.unconfirmed = false
        st.pdusAfterConnect = 0
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
        if !st.sawMCS {
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
        if case .fastPath = framing, !st.sawMCS {
            // Fast-path PDUs exist only once the connection sequence is through MCS.
            lose(&st, direction, .neitherTPKTNorTLS, frame: frame(start), lostSync: false)
            return false
        }
        guard framing.length <= c.remaining, var pdu = c.readSlice(framing.length) else {
            st.pendingEnd = start + Int64(framing.length)
            return false
        }
        let at = evidence(&st, frame, start + Int64(framing.length) - 1)
        switch framing {
        case .tpkt:
            handleTPKT(&st, &pdu, direction: direction, at: at)
        case .fastPath:
            st.pdusAfterConnect += 1
            if st.joined { st.joinedFastPathPDUs += 1 }
        }
        if st.sawMCS && st.pdusAfterConnect >= Self.maxPDUsAfterConnect { st.mode = .stopped }
        return true
    }

    mutating func handleTPKT(_ st: inout DirectionState, _ pdu: inout ByteCursor, direction: Direction, at: FrameRef) {
        let packet = pdu
        let tpdu: X224TPDU
        do {
            tpdu = try X224.parse(&pdu)
        } catch {
            note(direction, at, .x224(error))
            return
        }
        switch tpdu {
        case .connectionRequest(let cr):
            guard direction == .clientToServer else { return note(direction, at, .connectionRequestFromServer) }
            guard collected.connectionRequest == nil else { return }
            collected.connectionRequest = ConnectionRequestFacts(
                at: at, cookie: cr.cookie, routingToken: cr.routingToken,
                hasNegotiationRequest: cr.negotiationRequest != nil,
                requestedProtocols: cr.negotiationRequest?.requestedProtocols,
                flags: cr.negotiationRequest?.flags.rawValue, correlationID: cr.correlationInfo?.correlationID)
            if cr.unterminatedLine { note(direction, at, .cookieWithoutCRLF) }
        case .connectionConfirm(let cc):
            guard direction == .serverToClient else { return note(direction, at, .connectionConfirmFromClient) }
            guard collected.connectionConfirm == nil else { return }
            var confirm = ConnectionConfirmFacts(
                at: at, selectedProtocol: nil, flags: nil, failure: nil, noNegotiationData: false)
            switch cc.negotiation {
            case .none:
                confirm.noNegotiationData = true
            case .response(let flags, let selected):
                confirm.selectedProtocol = selected
                confirm.flags = flags.rawValue
            case .failure(let flags, let code):
                confirm.failure = code
                confirm.flags = flags
            case .unknown(let type):
                note(direction, at, .unknownNegotiationType(type))
            }
            collected.connectionConfirm = confirm
        case .disconnectRequest(let dr):
            if collected.disconnectRequest == nil {
                collected.disconnectRequest = at
                collected.disconnectRequestFrom = direction.sender
                collected.disconnectRequestReason = dr.reason
            }
        case .data(let userDataOffset, let userDataLength):
            let from = packet.offset + TPKTHeader.size + userDataOffset
            var data = ByteCursor(packet.base, from: from, to: from + userDataLength)
            handleMCS(&st, &data, direction: direction, at: at)
        case .other(let code):
            note(direction, at, .unexpectedTPDU(code))
        }
    }

    mutating func handleMCS(_ st: inout DirectionState, _ data: inout ByteCursor, direction: Direction, at: FrameRef) {
        if st.sawMCS { st.pdusAfterConnect += 1 }
        if data.peekUInt8() == 0x7F, let second = data.peekUInt8(at: 1), second == 0x65 || second == 0x66 {
            st.sawMCS = true
            do {
                if second == 0x65 {
                    let ci = try MCSConnectInitial.parse(&data)
                    if direction == .clientToServer && collected.mcsConnectInitial == nil {
                        collected.mcsConnectInitial = Self.initialFacts(ci, at: at)
                    }
                } else {
                    let cr = try MCSConnectResponse.parse(&data)
                    if direction == .serverToClient && collected.mcsConnectResponse == nil {
                        collected.mcsConnectResponse = responseFacts(cr, at: at, direction: direction)
                    }
                }
            } catch {
                note(direction, at, .mcsConnect(error))
            }
            return
        }
        guard let pdu = try? MCSDomainPDU.parse(&data) else { return }
        if pdu.type == .disconnectProviderUltimatum && collected.disconnectProviderUltimatum == nil {
            collected.disconnectProviderUltimatum = at
            collected.disconnectProviderUltimatumFrom = direction.sender
            collected.disconnectProviderUltimatumReason = pdu.reason
        }
    }

    static func initialFacts(_ ci: MCSConnectInitial, at: FrameRef) -> MCSConnectInitialFacts {
        let core = ci.clientData.core
        return MCSConnectInitialFacts(
            at: at, clientName: core?.clientName, clientBuild: core?.clientBuild, keyboardLayout: core?.keyboardLayout,
            desktopWidth: core?.desktopWidth, desktopHeight: core?.desktopHeight, version: core?.version,
            serverSelectedProtocol: core?.serverSelectedProtocol,
            channels: ci.clientData.network?.channels.map(\.name) ?? [],
            encryptionMethods: ci.clientData.security?.encryptionMethods)
    }

    mutating func responseFacts(_ cr: MCSConnectResponse, at: FrameRef, direction: Direction) -> MCSConnectResponseFacts {
        var out = MCSConnectResponseFacts(
            at: at, result: cr.result.rawValue, version: cr.serverData?.core?.version,
            clientRequestedProtocols: cr.serverData?.core?.clientRequestedProtocols,
            encryptionMethod: cr.serverData?.security?.encryptionMethod,
            encryptionLevel: cr.serverData?.security?.encryptionLevel, certificateKind: nil, certificates: [])
        switch cr.serverData?.security?.certificate {
        case .proprietary(let p, let temporary):
            out.certificateKind = "proprietary"
            out.proprietaryKeyBits = p.keyBits
            out.temporaryCertificate = temporary
        case .x509(let chain, let temporary):
            out.certificateKind = "x509"
            out.temporaryCertificate = temporary
            // The wire order is root first; facts list the leaf first, as TLS does.
            for der in chain.reversed() {
                do {
                    out.certificates.append(try CertificateParser.facts(der: der))
                } catch {
                    note(direction, at, .serverCertificate(error))
                }
            }
        case .unknown(let version):
            out.certificateKind = "certChainVersion-\(version)"
        case nil:
            break
        }
        return out
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
            var tls = collected.tls ?? TLSFacts()
            if tls.malformed.count < Self.maxMalformed {
                tls.malformed.append("\(direction.sender.rawValue)\(at.map { " frame \($0.frame)" } ?? ""): \(error.summary)")
            }
            collected.tls = tls
            lose(&st, direction, .tlsRecord(error), frame: at, lostSync: false)
            return false
        }
        let at = evidence(&st, frame, start + Int64(TLSRecordHeader.size + header.length) - 1)
        st.recordVersion = header.version.rawValue
        if let t = inside {
            let side = direction.sender
            if t.decryptOnly.contains(side) {
                decrypt(header, fragment, direction: direction, at: at)
                t.decryptOnlyRecords[side == .client ? 0 : 1] += 1
                if t.decryptOnlyRecords[side == .client ? 0 : 1] >= Self.maxDecryptedRecordsPerDirection {
                    st.mode = .stopped
                    t.plaintext.facts.recordLimitReached = true
                }
                return true
            }
        }
        if header.contentType == .handshake && st.firstHandshakeRecord == nil { st.firstHandshakeRecord = start }
        handleRecord(&st, header, fragment, direction: direction, at: at)
        // The outer parser first (it hands the hellos to the decryptor), then the layer inside.
        if inside != nil { decrypt(header, fragment, direction: direction, at: at) }
        if st.applicationRecords >= Self.maxApplicationRecordsPerDirection {
            if let t = inside, t.decryptor.status == .active || t.decryptor.status == .waitingForSecrets {
                // The facts stop here as without keys; records are still opened for the layer inside.
                t.decryptOnly.insert(direction.sender)
            } else {
                st.mode = .stopped
            }
        }
        return true
    }

    var isTLS13: Bool { serverVersion >= 0x0304 }

    mutating func handleRecord(
        _ st: inout DirectionState, _ header: TLSRecordHeader, _ fragment: ByteCursor, direction: Direction,
        at: FrameRef
    ) {
        if case .none = collected.tls { collected.tls = TLSFacts() }
        let side = direction.sender
        switch header.contentType {
        case .changeCipherSpec:
            withTLS { tls in
                if side == .client {
                    if tls.clientChangeCipherSpec == nil { tls.clientChangeCipherSpec = at }
                } else if tls.serverChangeCipherSpec == nil {
                    tls.serverChangeCipherSpec = at
                }
            }
            // In TLS 1.3 the record is a compatibility no-op (RFC 8446 D.4), and so is any
            // CCS before the ServerHello (after a HelloRetryRequest): TLS 1.2 sends it only
            // once the ServerHello is out.
            if !isTLS13 && serverVersion != 0 { st.encrypted = true }
            inside?.decryptor.changeCipherSpec(from: side)
        case .alert:
            var alert = TLSAlertFacts(at: at, from: side, level: nil, description: nil, encrypted: true)
            if !st.encrypted && header.length == 2 {
                var f = fragment
                if let a = try? TLSAlert.parse(&f) {
                    alert.level = a.level.rawValue
                    alert.description = a.description.rawValue
                    alert.encrypted = false
                }
            }
            if explicitAlerts.count < Self.maxAlerts { explicitAlerts.append(alert) }
        case .handshake:
            if st.encrypted {
                st.encryptedHandshake = true
            } else if !st.handshakeBroken {
                readHandshake(&st, fragment, direction: direction, at: at)
            }
        case .applicationData:
            handleApplicationData(&st, header, direction: direction, at: at)
        default:
            break
        }
        updateHandshakeComplete(st, direction)
    }

    mutating func handleApplicationData(
        _ st: inout DirectionState, _ header: TLSRecordHeader, direction: Direction, at: FrameRef
    ) {
        let run = TLSFacts.RecordRun(
            at: at, from: direction.sender, contentType: header.contentType.rawValue, length: header.length)
        if isTLS13 && !tlsHandshakeComplete {
            if direction == .serverToClient {
                // EncryptedExtensions, Certificate, CertificateVerify, Finished: the second
                // record carries the (encrypted) certificate.
                st.encryptedHandshake = true
                st.encryptedHandshakeRecords += 1
                if st.encryptedHandshakeRecords == 2 {
                    withTLS { if $0.certificateFrame == nil { $0.certificateFrame = at } }
                }
                return
            }
            if !st.sawFirstEncryptedRecord {
                st.sawFirstEncryptedRecord = true
                if header.length <= Self.tls13AlertMaxLength {
                    // Too small for Finished: the client refused the server's flight.
                    if explicitAlerts.count < Self.maxAlerts {
                        explicitAlerts.append(TLSAlertFacts(at: at, from: .client, level: nil, description: nil, encrypted: true))
                    }
                } else {
                    st.encryptedHandshake = true
                }
                return
            }
        }
        addApplicationRecord(&st, direction, run)
    }

    mutating func addApplicationRecord(_ st: inout DirectionState, _ direction: Direction, _ run: TLSFacts.RecordRun) {
        let keep = st.applicationRecords < Self.maxApplicationRecordsPerDirection
        withTLS { tls in
            if direction == .clientToServer {
                tls.clientApplicationBytes += Int64(run.length)
            } else {
                tls.serverApplicationBytes += Int64(run.length)
            }
            guard keep else { return }
            // Both directions in capture order (a stable insertion by frame number), in place.
            var i = tls.applicationRecords.count
            while i > 0 && tls.applicationRecords[i - 1].at.frame > run.at.frame { i -= 1 }
            tls.applicationRecords.insert(run, at: i)
        }
        st.encrypted = true
        guard keep else { return }
        st.applicationRecords += 1
        if direction == .clientToServer { sawClientRecord = true } else { sawServerRecord = true }
    }

    /// Appends a clear-text handshake fragment and handles every complete message.
    mutating func readHandshake(_ st: inout DirectionState, _ fragment: ByteCursor, direction: Direction, at: FrameRef) {
        var buffer = takeHandshake(direction)
        if buffer.isEmpty {
            var c = fragment
            drainHandshake(&st, &c, direction: direction, at: at)
            if !c.isEmpty { buffer.append(contentsOf: c.remainingBytes) }
        } else {
            buffer.append(contentsOf: fragment.remainingBytes)
            let used = buffer.withUnsafeBytes { raw -> Int in
                var c = ByteCursor(raw)
                drainHandshake(&st, &c, direction: direction, at: at)
                return c.offset
            }
            buffer.removeFirst(used)
        }
        if buffer.count > Self.maxHandshakeMessage {
            buffer = []
            st.handshakeBroken = true
            note(direction, at, .handshakeMessageTooLarge(limit: Self.maxHandshakeMessage))
        }
        setHandshake(direction, buffer)
    }

    mutating func drainHandshake(_ st: inout DirectionState, _ c: inout ByteCursor, direction: Direction, at: FrameRef) {
        while !c.isEmpty && !st.handshakeBroken && !st.encrypted {
            guard let (header, body) = try? TLSHandshakeHeader.readMessage(&c) else { return }
            handleHandshake(&st, header, body, direction: direction, at: at)
        }
    }

    mutating func handleHandshake(
        _ st: inout DirectionState, _ header: TLSHandshakeHeader, _ body: ByteCursor, direction: Direction, at: FrameRef
    ) {
        var b = body
        do {
            switch header.type {
            case .clientHello where direction == .clientToServer:
                let hello = try TLSClientHello.parse(&b)
                let offset = st.firstHandshakeRecord
                withTLS { tls in
                    guard tls.clientHello == nil else { return }
                    tls.clientHello = TLSFacts.ClientHello(
                        at: at, legacyVersion: hello.legacyVersion.rawValue, supportedVersions: hello.supportedVersions,
                        serverName: hello.serverName, cipherSuites: hello.cipherSuites,
                        streamOffset: offset, random: hello.random)
                }
                if let t = inside, let random = TLSKeyMaterial.bytes(hex: Substring(hello.random)) {
                    t.decryptor.clientHello(random: random)
                }
            case .serverHello where direction == .serverToClient:
                let hello = try TLSServerHello.parse(&b)
                if hello.isHelloRetryRequest {
                    withTLS { if $0.helloRetryRequest == nil { $0.helloRetryRequest = at } }
                } else if serverVersion == 0 {
                    withTLS {
                        $0.serverHello = TLSFacts.ServerHello(
                            at: at, legacyVersion: hello.legacyVersion.rawValue, version: hello.version.rawValue,
                            cipherSuite: hello.cipherSuite.rawValue)
                    }
                    serverVersion = max(1, hello.version.rawValue)
                    if let t = inside, var r = body.peekSlice(34) {
                        _ = r.skip(2)
                        t.decryptor.serverHello(
                            random: r.copyRemaining(), version: hello.version.rawValue, cipherSuite: hello.cipherSuite.rawValue,
                            encryptThenMAC: hello.extensions.contains(TLSExtension.encryptThenMAC))
                        t.plaintext.hybridEx = collected.connectionConfirm?.selectedProtocol?.contains(.hybridEx) ?? false
                    }
                    if hello.version >= .tls13 {
                        // Everything after the ServerHello is encrypted, both ways (RFC 8446 2).
                        st.encrypted = true
                        client.encrypted = true
                    }
                }
            case .certificate where direction == .serverToClient && !isTLS13:
                let message = try TLSCertificateMessage.parse(&b)
                let first = withTLS { tls -> Bool in
                    guard tls.certificateFrame == nil else { return false }
                    tls.certificateFrame = at
                    return true
                }
                guard first else { return }
                for der in message.certificates {
                    do {
                        let facts = try CertificateParser.facts(der: der)
                        withTLS { $0.certificates.append(facts) }
                    } catch {
                        note(direction, at, .tlsCertificate(error))
                    }
                }
            case .serverHelloDone where direction == .serverToClient:
                withTLS { if $0.serverHelloDone == nil { $0.serverHelloDone = at } }
            default:
                break
            }
        } catch {
            note(direction, at, .tlsHandshakeMessage(header.type, error))
        }
    }

    /// `current` is the state of `direction`, not yet stored back.
    mutating func updateHandshakeComplete(_ current: DirectionState, _ direction: Direction) {
        guard !tlsHandshakeComplete, case .some = collected.tls else { return }
        // (Only the flags are read: copying the direction states cost more than the test.)
        let clientDone = direction == .clientToServer ? current.encryptedHandshake : client.encryptedHandshake
        let serverDone = direction == .serverToClient ? current.encryptedHandshake : server.encryptedHandshake
        let dataBothWays = sawClientRecord && sawServerRecord
        // TLS 1.2: both Finished messages (encrypted handshake after each CCS). TLS 1.3: the
        // server's encrypted flight and the client's Finished.
        guard (clientDone && serverDone) || dataBothWays else { return }
        tlsHandshakeComplete = true
        withTLS { $0.handshakeComplete = true }
    }

    // MARK: - Derived facts

    /// Works out what depends on several records at once: the CredSSP phase and the
    /// TLS 1.3 alerts recognised by size and position.
    func derive(_ facts: inout RDPFacts) {
        if var m = facts.midStream {
            for side in [Side.client, Side.server] {
                let st = side == .client ? client : server
                m[side]?.pdus = st.joinedPDUs
                m[side]?.fastPathPDUs = st.joinedFastPathPDUs
            }
            facts.midStream = m
        }
        guard var tls = facts.tls else { return }
        let records = tls.applicationRecords
        // TLS 1.3: a small record that is the last its sender sent (while we were still
        // reading that direction) is an alert hidden by encryption; it ends the connection.
        var candidates: [Int] = []
        if isTLS13 {
            for side in [Side.client, Side.server] {
                let st = side == .client ? client : server
                guard st.mode == .tls, inside?.decryptOnly.contains(side) != true,
                    let i = records.lastIndex(where: { $0.from == side }),
                    records[i].length <= Self.tls13AlertMaxLength
                else { continue }
                candidates.append(i)
            }
        }
        if let selected = facts.connectionConfirm?.selectedProtocol, selected.usesCredSSP {
            let overhead = RecordOverhead.estimate(
                version: tls.serverHello?.version ?? 0x0303, cipherSuite: tls.serverHello?.cipherSuite)
            let hybridEx = selected.contains(.hybridEx)
            let first = CredSSPShape.classify(records: records, hybridEx: hybridEx, overhead: overhead)
            // The 4-byte Early User Authorization Result is as small as an alert: its place
            // in the exchange decides.
            candidates.removeAll { i in
                first.phase == .earlyUserAuthorization && first.records.last == records[i]
            }
            if candidates.isEmpty {
                facts.credssp = first
            } else {
                let kept = records.enumerated().filter { !candidates.contains($0.offset) }.map(\.element)
                facts.credssp = CredSSPShape.classify(records: kept, hybridEx: hybridEx, overhead: overhead)
            }
        }
        var alerts = explicitAlerts
        for i in candidates {
            alerts.append(TLSAlertFacts(at: records[i].at, from: records[i].from, level: nil, description: nil, encrypted: true))
        }
        alerts.sort { $0.at.frame < $1.at.frame }
        tls.alerts = Array(alerts.prefix(Self.maxAlerts))
        facts.tls = tls
    }

    // MARK: - Helpers

    /// Changes the TLS facts in place, making them on first use: reading a field through the
    /// optional (`collected.tls?.x`) copied the whole value, a few hundred bytes and a retain
    /// of each of its arrays, several times per record.
    mutating func withTLS<R>(_ body: (inout TLSFacts) -> R) -> R {
        if case .none = collected.tls { collected.tls = TLSFacts() }
        return body(&collected.tls!)
    }

    static let unknownFrame = FrameRef(frame: 0, time: Timestamp(nanoseconds: 0))

    func state(_ d: Direction) -> DirectionState { d == .clientToServer ? client : server }

    mutating func setState(_ d: Direction, _ s: DirectionState) {
        if d == .clientToServer { client = s } else { server = s }
    }

    /// Moves a direction's handshake buffer out (an empty one stays until `setHandshake`),
    /// so that appending to it does not copy it.
    mutating func takeHandshake(_ d: Direction) -> [UInt8] {
        var out: [UInt8] = []
        if d == .clientToServer { swap(&out, &clientHandshake) } else { swap(&out, &serverHandshake) }
        return out
    }

    mutating func setHandshake(_ d: Direction, _ b: [UInt8]) {
        if d == .clientToServer { clientHandshake = b } else { serverHandshake = b }
    }

    /// The frame of a stream offset, falling back to the direction's last known frame.
    func evidence(_ st: inout DirectionState, _ frame: FrameLookup, _ offset: Int64) -> FrameRef {
        if let f = frame(offset) {
            st.lastFrame = f
            return f
        }
        return st.lastFrame ?? Self.unknownFrame
    }

    /// Adds a note, kept in frame order so that the order the two directions were read in
    /// does not show.
    mutating func note(_ direction: Direction, _ at: FrameRef?, _ event: ParserEvent) {
        guard collected.notes.count < Self.maxNotes else { return }
        let key = at?.frame ?? Int.max
        var i = noteFrames.count
        while i > 0 && noteFrames[i - 1] > key { i -= 1 }
        noteFrames.insert(key, at: i)
        collected.notes.insert(ParserNote(side: direction.sender, at: at, event: event), at: i)
    }

    /// Stops parsing a direction; `lostSync` when the capture (a gap, the reassembly limit,
    /// a start mid-stream) took the parser's place, not when the peer sent garbage.
    mutating func lose(
        _ st: inout DirectionState, _ direction: Direction, _ why: ParserEvent, frame: FrameRef? = nil, lostSync: Bool = true
    ) {
        st.mode = .stopped
        setHandshake(direction, [])
        note(direction, frame ?? st.lastFrame, why)
        if lostSync && !collected.lostSync.contains(direction.sender) { collected.lostSync.append(direction.sender) }
    }
}

extension RDPConnectionParser {
    /// How many records of a direction are read inside TLS at most (for the report's note).
    public static var maxDecryptedRecordsPerDirectionPublic: Int { maxDecryptedRecordsPerDirection }
}
