import TriageCapture
import TriageDecoding
import TriageFlows

/// The TLS record layer of one connection, fed complete records by `RDPConnectionParser`:
/// the clear-text handshake (hellos, certificate), ChangeCipherSpec, alerts, the sizes and
/// order of the protected records (the CredSSP shape without keys), and, with key material,
/// the records opened and handed to the protocol inside (`PlaintextLayer`).
struct TLSRecordLayer: Sendable {
    /// Protected application records kept per direction; past them a direction is only
    /// decrypted (with keys) or not read at all.
    static let maxApplicationRecordsPerDirection = 16
    /// Records read past `maxApplicationRecordsPerDirection` only to decrypt them.
    static let maxDecryptedRecordsPerDirection = 512
    /// Protected records one connection holds while it waits for its secrets (live key logs).
    static let maxHeldRecordBytes = 1 << 20
    static let maxAlerts = 8
    /// A TLS handshake message larger than this is not buffered (certificate chains are
    /// a few kilobytes).
    static let maxHandshakeMessage = 128 * 1024
    /// A TLS 1.3 record this small can hold a 2-byte alert plus the content type byte and
    /// a 16-byte tag (19 bytes) with a little padding, but not a Finished (at least
    /// 4 + 32 + 17 = 53 bytes).
    static let tls13AlertMaxLength = 24

    /// Where one side's records are (STYLE.md 7: an explicit state, not flags).
    enum Phase: Sendable, Equatable {
        /// Clear-text handshake records, whose messages are read.
        case handshake
        /// Clear-text records whose messages can no longer be read (a gap, an oversized message).
        case handshakeUnreadable
        /// Protected records: after this side's ChangeCipherSpec (TLS 1.3: after the ServerHello).
        case protected
        /// This side sent its protected Finished: its handshake is done.
        case finished

        var isProtected: Bool { self == .protected || self == .finished }

        mutating func protect() {
            if !isProtected { self = .protected }
        }
    }

    struct SideState: Sendable {
        var phase = Phase.handshake
        var applicationRecords = 0
        /// TLS 1.3: protected handshake records the server sent (EncryptedExtensions first).
        var encryptedHandshakeRecords = 0
        /// TLS 1.3: the client's first protected record went by.
        var sawFirstEncryptedRecord = false
        /// Stream offset of the first handshake record (where a ClientHello starts).
        var firstHandshakeRecord: Int64?
    }

    // Plain values, so a record copies its side's state in and out cheaply; the handshake
    // buffers live apart for the same reason.
    var client = SideState()
    var server = SideState()
    /// Per side, a handshake message that spans records, until it is complete.
    var clientHandshake: [UInt8] = []
    var serverHandshake: [UInt8] = []
    /// Alerts read from records (the TLS 1.3 "small final record" ones are derived).
    var explicitAlerts: [TLSAlertFacts] = []
    /// The ServerHello's version, 0 before it (kept apart from the facts so that reading it
    /// copies nothing).
    var serverVersion: UInt16 = 0
    /// The handshake is known complete (it never becomes incomplete again).
    var handshakeComplete = false
    /// Application records were seen from the client, from the server.
    var sawClientRecord = false
    var sawServerRecord = false

    /// Nil without key material, so a capture analysed without keys never reaches it.
    var inside: InsideTLS?

    init(keys: TLSKeyMaterial?) {
        if let keys { inside = InsideTLS(keys) }
    }

    var isTLS13: Bool { serverVersion >= 0x0304 }

    // MARK: - Records

    /// One complete record of `direction` that started at stream offset `start`. False when
    /// this direction has nothing more to give.
    mutating func record(
        _ header: TLSRecordHeader, _ fragment: ByteCursor, start: Int64, direction: Direction, at: FrameRef,
        into out: inout CollectedFacts
    ) -> Bool {
        let side = direction.sender
        if let t = inside, t.decryptOnly.contains(side) {
            decrypt(header, fragment, direction: direction, at: at, into: &out)
            t.decryptOnlyRecords[side == .client ? 0 : 1] += 1
            if t.decryptOnlyRecords[side == .client ? 0 : 1] >= Self.maxDecryptedRecordsPerDirection {
                t.plaintext.facts.recordLimitReached = true
                return false
            }
            return true
        }
        var st = state(direction)
        defer { setState(direction, st) }
        if header.contentType == .handshake && st.firstHandshakeRecord == nil { st.firstHandshakeRecord = start }
        handleRecord(&st, header, fragment, direction: direction, at: at, into: &out)
        // The record layer's own facts first (they hand the hellos to the decryptor), then the
        // layer inside.
        if inside != nil { decrypt(header, fragment, direction: direction, at: at, into: &out) }
        if st.applicationRecords >= Self.maxApplicationRecordsPerDirection {
            if let t = inside, t.decryptor.status == .active || t.decryptor.status == .waitingForSecrets {
                // The facts stop here as without keys; records are still opened for the layer inside.
                t.decryptOnly.insert(side)
            } else {
                return false
            }
        }
        return true
    }

    mutating func handleRecord(
        _ st: inout SideState, _ header: TLSRecordHeader, _ fragment: ByteCursor, direction: Direction, at: FrameRef,
        into out: inout CollectedFacts
    ) {
        if case .none = out.facts.tls { out.facts.tls = TLSFacts() }
        let side = direction.sender
        switch header.contentType {
        case .changeCipherSpec:
            out.withTLS { tls in
                if side == .client {
                    if tls.clientChangeCipherSpec == nil { tls.clientChangeCipherSpec = at }
                } else if tls.serverChangeCipherSpec == nil {
                    tls.serverChangeCipherSpec = at
                }
            }
            // In TLS 1.3 the record is a compatibility no-op (RFC 8446 D.4), and so is any
            // CCS before the ServerHello (after a HelloRetryRequest): TLS 1.2 sends it only
            // once the ServerHello is out.
            if !isTLS13 && serverVersion != 0 { st.phase.protect() }
            inside?.decryptor.changeCipherSpec(from: side)
        case .alert:
            var alert = TLSAlertFacts(at: at, from: side, level: nil, description: nil, encrypted: true)
            if !st.phase.isProtected && header.length == 2 {
                var f = fragment
                if let a = try? TLSAlert.parse(&f) {
                    alert.level = a.level.rawValue
                    alert.description = a.description.rawValue
                    alert.encrypted = false
                }
            }
            if explicitAlerts.count < Self.maxAlerts { explicitAlerts.append(alert) }
        case .handshake:
            switch st.phase {
            case .protected, .finished: st.phase = .finished
            case .handshake: readHandshake(&st, fragment, direction: direction, at: at, into: &out)
            case .handshakeUnreadable: break
            }
        case .applicationData:
            handleApplicationData(&st, header, direction: direction, at: at, into: &out)
        default:
            break
        }
        updateHandshakeComplete(st, direction, into: &out)
    }

    mutating func handleApplicationData(
        _ st: inout SideState, _ header: TLSRecordHeader, direction: Direction, at: FrameRef,
        into out: inout CollectedFacts
    ) {
        let run = TLSFacts.RecordRun(
            at: at, from: direction.sender, contentType: header.contentType.rawValue, length: header.length)
        if isTLS13 && !handshakeComplete {
            if direction == .serverToClient {
                // EncryptedExtensions, Certificate, CertificateVerify, Finished: the second
                // record carries the (encrypted) certificate.
                st.phase = .finished
                st.encryptedHandshakeRecords += 1
                if st.encryptedHandshakeRecords == 2 {
                    out.withTLS { if $0.certificateFrame == nil { $0.certificateFrame = at } }
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
                    st.phase = .finished
                }
                return
            }
        }
        addApplicationRecord(&st, direction, run, into: &out)
    }

    mutating func addApplicationRecord(
        _ st: inout SideState, _ direction: Direction, _ run: TLSFacts.RecordRun, into out: inout CollectedFacts
    ) {
        let keep = st.applicationRecords < Self.maxApplicationRecordsPerDirection
        out.withTLS { tls in
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
        st.phase.protect()
        guard keep else { return }
        st.applicationRecords += 1
        if direction == .clientToServer { sawClientRecord = true } else { sawServerRecord = true }
    }

    /// `current` is the state of `direction`, not yet stored back.
    mutating func updateHandshakeComplete(_ current: SideState, _ direction: Direction, into out: inout CollectedFacts) {
        guard !handshakeComplete, case .some = out.facts.tls else { return }
        // (Only the phases are read: copying the side states cost more than the test.)
        let clientDone = (direction == .clientToServer ? current.phase : client.phase) == .finished
        let serverDone = (direction == .serverToClient ? current.phase : server.phase) == .finished
        let dataBothWays = sawClientRecord && sawServerRecord
        // TLS 1.2: both Finished messages (protected handshake after each CCS). TLS 1.3: the
        // server's protected flight and the client's Finished.
        guard (clientDone && serverDone) || dataBothWays else { return }
        handshakeComplete = true
        out.withTLS { $0.handshakeComplete = true }
    }

    // MARK: - Clear-text handshake

    /// Appends a clear-text handshake fragment and handles every complete message.
    mutating func readHandshake(
        _ st: inout SideState, _ fragment: ByteCursor, direction: Direction, at: FrameRef, into out: inout CollectedFacts
    ) {
        var buffer = takeHandshake(direction)
        if buffer.isEmpty {
            var c = fragment
            drainHandshake(&st, &c, direction: direction, at: at, into: &out)
            if !c.isEmpty { buffer.append(contentsOf: c.remainingBytes) }
        } else {
            buffer.append(contentsOf: fragment.remainingBytes)
            let used = buffer.withUnsafeBytes { raw -> Int in
                var c = ByteCursor(raw)
                drainHandshake(&st, &c, direction: direction, at: at, into: &out)
                return c.offset
            }
            buffer.removeFirst(used)
        }
        if buffer.count > Self.maxHandshakeMessage {
            buffer = []
            st.phase = .handshakeUnreadable
            out.note(direction, at, .handshakeMessageTooLarge(limit: Self.maxHandshakeMessage))
        }
        setHandshake(direction, buffer)
    }

    mutating func drainHandshake(
        _ st: inout SideState, _ c: inout ByteCursor, direction: Direction, at: FrameRef, into out: inout CollectedFacts
    ) {
        while !c.isEmpty && st.phase == .handshake {
            guard let (header, body) = try? TLSHandshakeHeader.readMessage(&c) else { return }
            handleHandshake(&st, header, body, direction: direction, at: at, into: &out)
        }
    }

    mutating func handleHandshake(
        _ st: inout SideState, _ header: TLSHandshakeHeader, _ body: ByteCursor, direction: Direction, at: FrameRef,
        into out: inout CollectedFacts
    ) {
        var b = body
        do {
            switch header.type {
            case .clientHello where direction == .clientToServer:
                let hello = try TLSClientHello.parse(&b)
                let offset = st.firstHandshakeRecord
                out.withTLS { tls in
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
                    out.withTLS { if $0.helloRetryRequest == nil { $0.helloRetryRequest = at } }
                } else if serverVersion == 0 {
                    out.withTLS {
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
                        t.plaintext.hybridEx = out.facts.connectionConfirm?.selectedProtocol?.contains(.hybridEx) ?? false
                    }
                    if hello.version >= .tls13 {
                        // Everything after the ServerHello is protected, both ways (RFC 8446 2).
                        st.phase.protect()
                        client.phase.protect()
                    }
                }
            case .certificate where direction == .serverToClient && !isTLS13:
                let message = try TLSCertificateMessage.parse(&b)
                let first = out.withTLS { tls -> Bool in
                    guard tls.certificateFrame == nil else { return false }
                    tls.certificateFrame = at
                    return true
                }
                guard first else { return }
                for der in message.certificates {
                    do {
                        let facts = try CertificateParser.facts(der: der)
                        out.withTLS { $0.certificates.append(facts) }
                    } catch {
                        out.note(direction, at, .tlsCertificate(error))
                    }
                }
            case .serverHelloDone where direction == .serverToClient:
                out.withTLS { if $0.serverHelloDone == nil { $0.serverHelloDone = at } }
            default:
                break
            }
        } catch {
            out.note(direction, at, .tlsHandshakeMessage(header.type, error))
        }
    }

    // MARK: - What the stream lost

    /// A gap began inside a protected record whose header was read: its size and direction
    /// are all the CredSSP shape needs, so it still counts.
    mutating func partialRecord(_ run: TLSFacts.RecordRun, direction: Direction, into out: inout CollectedFacts) {
        var st = state(direction)
        addApplicationRecord(&st, direction, run, into: &out)
        setState(direction, st)
    }

    /// A gap: the record sequence of this side is broken for decryption; `insideRecord` when
    /// it began inside a record that was not application data.
    mutating func gap(direction: Direction, insideRecord: Bool) {
        inside?.lost.insert(direction.sender)
        if insideRecord { clearTextLost(direction) }
    }

    /// A gap that the stream does not resume from inside the same record: a handshake message
    /// spanning records lost its middle, so messages are no longer read.
    mutating func gapBetweenRecords(direction: Direction) {
        guard !(direction == .clientToServer ? clientHandshake : serverHandshake).isEmpty else { return }
        setHandshake(direction, [])
        clearTextLost(direction)
    }

    /// The direction stopped being read.
    mutating func stop(direction: Direction) {
        setHandshake(direction, [])
    }

    mutating func clearTextLost(_ direction: Direction) {
        if direction == .clientToServer {
            if !client.phase.isProtected { client.phase = .handshakeUnreadable }
        } else if !server.phase.isProtected {
            server.phase = .handshakeUnreadable
        }
    }

    // MARK: - Derived facts

    /// Works out what depends on several records at once: the CredSSP phase and the TLS 1.3
    /// alerts recognised by size and position. `reading(side)`: that side's records were
    /// still being read when the stream ended (a side stopped early has no "last" record).
    func derive(_ facts: inout RDPFacts, reading: (Side) -> Bool) {
        guard var tls = facts.tls else { return }
        let records = tls.applicationRecords
        // TLS 1.3: a small record that is the last its sender sent (while we were still
        // reading that direction) is an alert hidden by encryption; it ends the connection.
        var candidates: [Int] = []
        if isTLS13 {
            for side in [Side.client, Side.server] {
                guard reading(side), inside?.decryptOnly.contains(side) != true,
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

    func state(_ d: Direction) -> SideState { d == .clientToServer ? client : server }

    mutating func setState(_ d: Direction, _ s: SideState) {
        if d == .clientToServer { client = s } else { server = s }
    }

    /// Moves a side's handshake buffer out (an empty one stays until `setHandshake`), so
    /// that appending to it does not copy it.
    mutating func takeHandshake(_ d: Direction) -> [UInt8] {
        var out: [UInt8] = []
        if d == .clientToServer { swap(&out, &clientHandshake) } else { swap(&out, &serverHandshake) }
        return out
    }

    mutating func setHandshake(_ d: Direction, _ b: [UInt8]) {
        if d == .clientToServer { clientHandshake = b } else { serverHandshake = b }
    }
}

// MARK: - Decryption (only with key material)

extension TLSRecordLayer {
    /// The record protection and the protocol inside it, with what they found. A reference,
    /// so a layer without key material stays as small as before (one pointer). Owned by its
    /// parser, which one thread owns (the session's).
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

    /// Opens a record for the inner layer when it is protected and the keys are known; holds
    /// it while the secrets are awaited.
    mutating func decrypt(
        _ header: TLSRecordHeader, _ fragment: ByteCursor, direction: Direction, at: FrameRef,
        into out: inout CollectedFacts
    ) {
        let side = direction.sender
        guard let t = inside, !t.lost.contains(side) else { return }
        if t.decryptor.status == .waitingForSecrets {
            guard t.decryptor.retrySecrets() else {
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
            // The key log caught up: the records held so far first, in their order.
            let held = t.held
            t.held = []
            t.heldBytes = 0
            for r in held {
                r.fragment.withUnsafeBytes { raw in
                    open(t, r.header, ByteCursor(raw), direction: r.direction, at: r.at, into: &out)
                }
            }
        }
        open(t, header, fragment, direction: direction, at: at, into: &out)
    }

    mutating func open(
        _ t: InsideTLS, _ header: TLSRecordHeader, _ fragment: ByteCursor, direction: Direction, at: FrameRef,
        into out: inout CollectedFacts
    ) {
        let side = direction.sender
        guard !t.lost.contains(side) else { return }
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
                serverHandshake13(t, bytes, at: at, into: &out)
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
    func serverHandshake13(_ t: InsideTLS, _ bytes: [UInt8], at: FrameRef, into out: inout CollectedFacts) {
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
                out.note(.serverToClient, at, .decryptedCertificateMessage(error))
            case .success(let message):
                var certificates: [CertificateFacts] = []
                for der in message.certificates {
                    do {
                        certificates.append(try CertificateParser.facts(der: der))
                    } catch {
                        out.note(.serverToClient, at, .decryptedCertificate(error))
                    }
                }
                out.withTLS { tls in
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
}
