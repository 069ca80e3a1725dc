import TriageCapture
import TriageDecoding
import TriageFlows

/// The TPKT layer of one connection, fed complete PDUs by `RDPConnectionParser` (in clear
/// text: before TLS, or for standard RDP security): X.224 negotiation and disconnect, the
/// MCS connect exchange with its GCC user data, and the MCS Disconnect Provider Ultimatum.
/// Inside TLS the same PDUs reach `PlaintextLayer` instead.
struct TPKTLayer: Sendable {
    /// TPKT or fast-path PDUs read after the MCS connect exchange (for an X.224
    /// Disconnect Request or an MCS Disconnect Provider Ultimatum); then reading stops.
    static let maxPDUsAfterConnect = 16

    /// Where one direction is (STYLE.md 7: an explicit state, not flags).
    enum Phase: Sendable, Equatable {
        /// X.224 negotiation: TLS can still start on this direction.
        case connecting
        /// An MCS connect PDU went by (or the capture joined after it): `pdus` read since.
        case connected(pdus: Int)
    }

    var client = Phase.connecting
    var server = Phase.connecting

    func phase(_ d: Direction) -> Phase { d == .clientToServer ? client : server }

    mutating func setPhase(_ d: Direction, _ p: Phase) {
        if d == .clientToServer { client = p } else { server = p }
    }

    /// MCS has started on this direction: TLS can no longer start there.
    func connected(_ d: Direction) -> Bool { phase(d) != .connecting }

    /// One complete PDU of `direction`. False when this direction has given what it can.
    mutating func pdu(
        _ framing: RDPFraming, _ pdu: inout ByteCursor, direction: Direction, at: FrameRef, into out: inout CollectedFacts
    ) -> Bool {
        var phase = phase(direction)
        defer { setPhase(direction, phase) }
        switch framing {
        case .tpkt:
            handleTPKT(&phase, &pdu, direction: direction, at: at, into: &out)
        case .fastPath:
            if case .connected(let n) = phase { phase = .connected(pdus: n + 1) }
        }
        if case .connected(let n) = phase, n >= Self.maxPDUsAfterConnect { return false }
        return true
    }

    func handleTPKT(
        _ phase: inout Phase, _ pdu: inout ByteCursor, direction: Direction, at: FrameRef, into out: inout CollectedFacts
    ) {
        let packet = pdu
        let tpdu: X224TPDU
        do {
            tpdu = try X224.parse(&pdu)
        } catch {
            out.note(direction, at, .x224(error))
            return
        }
        switch tpdu {
        case .connectionRequest(let cr):
            guard direction == .clientToServer else { return out.note(direction, at, .connectionRequestFromServer) }
            guard out.facts.connectionRequest == nil else { return }
            out.facts.connectionRequest = ConnectionRequestFacts(
                at: at, cookie: cr.cookie, routingToken: cr.routingToken,
                hasNegotiationRequest: cr.negotiationRequest != nil,
                requestedProtocols: cr.negotiationRequest?.requestedProtocols,
                flags: cr.negotiationRequest?.flags.rawValue, correlationID: cr.correlationInfo?.correlationID)
            if cr.unterminatedLine { out.note(direction, at, .cookieWithoutCRLF) }
        case .connectionConfirm(let cc):
            guard direction == .serverToClient else { return out.note(direction, at, .connectionConfirmFromClient) }
            guard out.facts.connectionConfirm == nil else { return }
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
                out.note(direction, at, .unknownNegotiationType(type))
            }
            out.facts.connectionConfirm = confirm
        case .disconnectRequest(let dr):
            if out.facts.disconnectRequest == nil {
                out.facts.disconnectRequest = at
                out.facts.disconnectRequestFrom = direction.sender
                out.facts.disconnectRequestReason = dr.reason
            }
        case .data(let userDataOffset, let userDataLength):
            let from = packet.offset + TPKTHeader.size + userDataOffset
            var data = ByteCursor(packet.base, from: from, to: from + userDataLength)
            handleMCS(&phase, &data, direction: direction, at: at, into: &out)
        case .other(let code):
            out.note(direction, at, .unexpectedTPDU(code))
        }
    }

    func handleMCS(
        _ phase: inout Phase, _ data: inout ByteCursor, direction: Direction, at: FrameRef, into out: inout CollectedFacts
    ) {
        if case .connected(let n) = phase { phase = .connected(pdus: n + 1) }
        if data.peekUInt8() == 0x7F, let second = data.peekUInt8(at: 1), second == 0x65 || second == 0x66 {
            if phase == .connecting { phase = .connected(pdus: 0) }
            do {
                if second == 0x65 {
                    let ci = try MCSConnectInitial.parse(&data)
                    if direction == .clientToServer && out.facts.mcsConnectInitial == nil {
                        out.facts.mcsConnectInitial = Self.initialFacts(ci, at: at)
                    }
                } else {
                    let cr = try MCSConnectResponse.parse(&data)
                    if direction == .serverToClient && out.facts.mcsConnectResponse == nil {
                        let r = Self.responseFacts(cr, at: at, direction: direction, into: &out)
                        out.facts.mcsConnectResponse = r
                    }
                }
            } catch {
                out.note(direction, at, .mcsConnect(error))
            }
            return
        }
        guard let pdu = try? MCSDomainPDU.parse(&data) else { return }
        if pdu.type == .disconnectProviderUltimatum && out.facts.disconnectProviderUltimatum == nil {
            out.facts.disconnectProviderUltimatum = at
            out.facts.disconnectProviderUltimatumFrom = direction.sender
            out.facts.disconnectProviderUltimatumReason = pdu.reason
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

    static func responseFacts(
        _ cr: MCSConnectResponse, at: FrameRef, direction: Direction, into out: inout CollectedFacts
    ) -> MCSConnectResponseFacts {
        var r = MCSConnectResponseFacts(
            at: at, result: cr.result.rawValue, version: cr.serverData?.core?.version,
            clientRequestedProtocols: cr.serverData?.core?.clientRequestedProtocols,
            encryptionMethod: cr.serverData?.security?.encryptionMethod,
            encryptionLevel: cr.serverData?.security?.encryptionLevel, certificateKind: nil, certificates: [])
        switch cr.serverData?.security?.certificate {
        case .proprietary(let p, let temporary):
            r.certificateKind = "proprietary"
            r.proprietaryKeyBits = p.keyBits
            r.temporaryCertificate = temporary
        case .x509(let chain, let temporary):
            r.certificateKind = "x509"
            r.temporaryCertificate = temporary
            // The wire order is root first; facts list the leaf first, as TLS does.
            for der in chain.reversed() {
                do {
                    r.certificates.append(try CertificateParser.facts(der: der))
                } catch {
                    out.note(direction, at, .serverCertificate(error))
                }
            }
        case .unknown(let version):
            r.certificateKind = "certChainVersion-\(version)"
        case nil:
            break
        }
        return r
    }
}
