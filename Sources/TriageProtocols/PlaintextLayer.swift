import TriageCapture
import TriageDecoding
import TriageFlows

/// The protocol inside TLS, fed with plaintext in stream order: CredSSP TSRequests, the
/// HYBRID_EX Early User Authorization Result, then TPKT/MCS and the RDP PDUs of the
/// connection sequence (Zeek's child analyzer, STYLE.md "Analyzers that nest").
struct PlaintextLayer: Sendable {
    /// Where one direction is.
    enum Mode: Sendable, Equatable {
        /// Nothing read yet: a DER SEQUENCE starts CredSSP, anything else is RDP.
        case start
        case credssp
        /// The server's 4-byte Early User Authorization Result is due (HYBRID_EX).
        case earlyUserAuthorization
        /// TPKT and fast-path PDUs.
        case rdp
        case stopped
    }

    static let maxBuffer = 64 * 1024
    static let maxTSRequests = 16

    var client = Mode.start
    var server = Mode.start
    var clientBuffer: [UInt8] = []
    var serverBuffer: [UInt8] = []
    var hybridEx = false
    var facts = DecryptedFacts(status: .decrypted)

    mutating func receive(_ bytes: [UInt8], from side: Side, at: FrameRef) {
        var mode = side == .client ? client : server
        guard mode != .stopped else { return }
        var buffer: [UInt8] = []
        if side == .client { swap(&buffer, &clientBuffer) } else { swap(&buffer, &serverBuffer) }
        buffer += bytes
        let used = buffer.withUnsafeBytes { raw -> Int in
            var c = ByteCursor(raw)
            while !c.isEmpty && mode != .stopped && step(&mode, &c, from: side, at: at) {}
            return c.offset
        }
        buffer.removeFirst(used)
        if buffer.count > Self.maxBuffer { mode = .stopped }
        if mode == .stopped { buffer = [] }
        if side == .client {
            client = mode
            clientBuffer = buffer
        } else {
            server = mode
            serverBuffer = buffer
        }
    }

    /// Reads one unit at the cursor; false when more bytes are needed (the cursor stays) or
    /// the direction stopped.
    mutating func step(_ mode: inout Mode, _ c: inout ByteCursor, from side: Side, at: FrameRef) -> Bool {
        switch mode {
        case .start:
            mode = c.peekUInt8() == 0x30 ? .credssp : .rdp
            return true
        case .credssp:
            guard c.peekUInt8() == 0x30 else {
                mode = side == .server && hybridEx ? .earlyUserAuthorization : .rdp
                return true
            }
            let length: Int
            do {
                // A DER header is at most 2 + 3 bytes here.
                guard let l = try TSRequest.elementLength(Array(c.peekSlice(min(c.remaining, 5))!.remainingBytes)) else {
                    return false
                }
                length = l
            } catch {
                mode = .stopped
                return false
            }
            guard let request = c.readSlice(length) else { return false }
            // The client's credentials end its CredSSP; the server's last TSRequest (pubKeyAuth)
            // comes before them, so its side switches on its next non-DER bytes.
            if readTSRequest(request.copyRemaining(), from: side, at: at) { mode = .rdp }
            return true
        case .earlyUserAuthorization:
            guard let result = c.readUInt32LE() else { return false }
            if facts.earlyUserAuthorization == nil { facts.earlyUserAuthorization = EarlyUserAuthorizationFacts(at: at, result: result) }
            mode = .rdp
            return true
        case .rdp:
            // TPKT or fast-path (MS-RDPBCGR 2.2.8.1.2, 2.2.9.1.2), framed as outside TLS.
            let framing: RDPFraming
            do {
                framing = try RDPFraming.peek(c)
            } catch .needMore {
                return false
            } catch {
                mode = .stopped
                return false
            }
            guard var pdu = c.readSlice(framing.length) else { return false }
            if case .tpkt = framing { readTPKT(&pdu, from: side, at: at) }
            return true
        case .stopped:
            return false
        }
    }

    /// Records one complete TSRequest; true when it carries the client's credentials (the
    /// end of the client's CredSSP).
    mutating func readTSRequest(_ bytes: [UInt8], from side: Side, at: FrameRef) -> Bool {
        guard let request = try? TSRequest.parse(bytes) else { return false }
        var f = TSRequestFacts(
            at: at, from: side, version: request.version, negoTokens: request.negoTokens.count, mechanism: nil, ntlm: nil,
            authInfo: request.hasAuthInfo, pubKeyAuth: request.hasPubKeyAuth, clientNonce: request.hasClientNonce,
            errorCode: request.errorCode)
        if let token = request.negoTokens.first {
            let (mechanism, message) = NTLMMessage.find(in: token)
            f.mechanism = mechanism
            f.ntlm = message
            // Anything but a bare NTLM message is SPNEGO around the mechanism's token: its
            // negotiation is read too (and Kerberos, when that is the mechanism inside).
            if !token.starts(with: NTLMMessage.signature) {
                let (spnego, kerberos) = NegoTokenReader.read(token)
                f.spnego = spnego.map(SPNEGOFacts.init)
                f.kerberos = kerberos.map(KerberosFacts.init)
                if kerberos != nil { f.mechanism = .kerberos }
            }
        }
        if facts.tsRequests.count < Self.maxTSRequests { facts.tsRequests.append(f) }
        return side == .client && request.hasAuthInfo
    }

    /// One TPKT PDU: the MCS Connect Response, a Disconnect Provider Ultimatum, or MCS Send
    /// Data carrying a slow-path PDU.
    mutating func readTPKT(_ c: inout ByteCursor, from side: Side, at: FrameRef) {
        let packet = c
        guard case .data(let userDataOffset, let userDataLength)? = try? X224.parse(&c) else { return }
        let from = packet.offset + TPKTHeader.size + userDataOffset
        var data = ByteCursor(packet.base, from: from, to: min(packet.offset + packet.remaining, from + userDataLength))
        if data.peekUInt8() == 0x7F, data.peekUInt8(at: 1) == 0x66 {
            if side == .server && facts.mcsConnectResponse == nil { facts.mcsConnectResponse = at }
            return
        }
        guard let pdu = try? MCSDomainPDU.parse(&data) else { return }
        if pdu.type == .disconnectProviderUltimatum {
            if facts.disconnectProviderUltimatum == nil {
                facts.disconnectProviderUltimatum = DisconnectFacts(at: at, from: side, reason: pdu.reason)
            }
            return
        }
        guard pdu.type == .sendDataIndication || pdu.type == .sendDataRequest else { return }
        // initiator (2), channelId (2), dataPriority and segmentation (1), PER length.
        guard data.skip(5), let l0 = data.readUInt8() else { return }
        if l0 & 0x80 != 0 { guard data.readUInt8() != nil else { return } }
        readSlowPath(data, from: side, at: at)
    }

    /// The MCS user data: a licensing PDU (with its security header), or a Share Control
    /// PDU (MS-RDPBCGR 2.2.8.1.1.1.1). The Client Info PDU (it holds the password) is skipped
    /// unread.
    mutating func readSlowPath(_ data: ByteCursor, from side: Side, at: FrameRef) {
        var c = data
        guard let first = c.peekUInt16LE(), let second = c.peekUInt16LE(at: 2) else { return }
        // Share Control Header: totalLength, pduType with version 1 in bits 4-15.
        if second & 0xFFF0 == 0x0010, Int(first) == c.remaining {
            guard second & 0x000F == 7, side == .server else { return }
            // Share Data Header (2.2.8.1.1.1.2): pduType2 at offset 14 from the PDU's start.
            guard c.skip(14), let type2 = c.readUInt8(), c.skip(3), let value = c.readUInt32LE() else { return }
            switch type2 {
            case 0x2F:
                if value != 0 && facts.errorInfo == nil { facts.errorInfo = ErrorInfoFacts(at: at, code: value) }
            case 0x26:
                if facts.logon == nil { facts.logon = LogonFacts(at: at, infoType: value) }
            default:
                break
            }
            return
        }
        // Basic security header flags: SEC_LICENSE_PKT 0x0080 (2.2.1.12), SEC_INFO_PKT 0x0040.
        guard first & 0x0080 != 0, side == .server else { return }
        guard c.skip(4), let msgType = c.readUInt8(), c.skip(3) else { return }
        // ERROR_ALERT (0xFF): dwErrorCode, dwStateTransition (2.2.1.12.1.3).
        guard msgType == 0xFF, let code = c.readUInt32LE(), let transition = c.readUInt32LE() else { return }
        if facts.license == nil { facts.license = LicenseFacts(at: at, errorCode: code, stateTransition: transition) }
    }
}
