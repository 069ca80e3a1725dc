import TestSupport
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// Each layer of the connection parser on its own, fed the complete PDUs the framing hands
/// it: its state per direction moves as the specs say, whatever the other layers do.
@Suite struct LayerTests {
    static let at = FrameRef(frame: 1, time: Timestamp(nanoseconds: 0))
    typealias S = SyntheticStreamTests

    /// Feeds every record in `bytes`; false when the layer said the direction is done.
    static func feed(_ layer: inout TLSRecordLayer, _ out: inout CollectedFacts, _ bytes: [UInt8], _ d: Direction) throws -> Bool {
        try bytes.withUnsafeBytes { raw in
            var c = ByteCursor(raw)
            var more = true
            while !c.isEmpty {
                let start = Int64(c.offset)
                let (header, fragment) = try TLSRecord.read(&c)
                more = layer.record(header, fragment, start: start, direction: d, at: at, into: &out)
            }
            return more
        }
    }

    /// A TLS 1.2 ServerHello: TLS_RSA_WITH_AES_128_CBC_SHA, no session id, no extensions.
    static let serverHello12 = S.record(
        22, S.handshake(2, hexBytes("0303") + [UInt8](repeating: 0x33, count: 32) + hexBytes("00002f00")))

    @Test func tls12PhasesFollowChangeCipherSpecAndFinished() throws {
        var layer = TLSRecordLayer(keys: nil)
        var out = CollectedFacts()
        // A CCS before the ServerHello (after a HelloRetryRequest) protects nothing.
        _ = try Self.feed(&layer, &out, S.ccs, .serverToClient)
        #expect(layer.server.phase == .handshake)
        _ = try Self.feed(&layer, &out, Self.serverHello12, .serverToClient)
        #expect(layer.serverVersion == 0x0303)
        #expect(layer.client.phase == .handshake && layer.server.phase == .handshake)
        _ = try Self.feed(&layer, &out, S.ccs, .clientToServer)
        #expect(layer.client.phase == .protected)
        // The client's Finished: a handshake record after its CCS.
        _ = try Self.feed(&layer, &out, S.record(22, [UInt8](repeating: 0x44, count: 40)), .clientToServer)
        #expect(layer.client.phase == .finished)
        #expect(!layer.handshakeComplete)
        _ = try Self.feed(&layer, &out, S.ccs + S.record(22, [UInt8](repeating: 0x45, count: 40)), .serverToClient)
        #expect(layer.server.phase == .finished)
        #expect(layer.handshakeComplete)
        #expect(out.facts.tls?.handshakeComplete == true)
        #expect(out.facts.tls?.serverChangeCipherSpec != nil && out.facts.tls?.clientChangeCipherSpec != nil)
    }

    @Test func tls13ServerHelloProtectsBothSides() throws {
        var layer = TLSRecordLayer(keys: nil)
        var out = CollectedFacts()
        _ = try Self.feed(&layer, &out, S.serverHello13, .serverToClient)
        #expect(layer.isTLS13)
        #expect(layer.client.phase == .protected && layer.server.phase == .protected)
        // The server's protected flight: its second record carries the certificate.
        _ = try Self.feed(&layer, &out, S.encrypted(30) + S.encrypted(900), .serverToClient)
        #expect(layer.server.phase == .finished)
        #expect(layer.server.encryptedHandshakeRecords == 2)
        #expect(out.facts.tls?.certificateFrame == Self.at)
        // A first client record too small for Finished is an alert hidden by encryption.
        _ = try Self.feed(&layer, &out, S.encrypted(19), .clientToServer)
        #expect(layer.client.phase == .protected)
        #expect(layer.explicitAlerts.count == 1)
        #expect(out.facts.tls?.applicationRecords.isEmpty == true)
    }

    @Test func aGapInsideAHandshakeMessageStopsReadingMessages() throws {
        var layer = TLSRecordLayer(keys: nil)
        var out = CollectedFacts()
        // A Certificate message announced as 100 bytes, of which the record brings 10.
        _ = try Self.feed(&layer, &out, S.record(22, hexBytes("0b000064") + [UInt8](repeating: 0, count: 10)), .serverToClient)
        #expect(layer.serverHandshake.count == 14)
        layer.gapBetweenRecords(direction: .serverToClient)
        #expect(layer.serverHandshake.isEmpty)
        #expect(layer.server.phase == .handshakeUnreadable)
        // Later clear-text messages are not read; a CCS still protects the side.
        _ = try Self.feed(&layer, &out, Self.serverHello12, .serverToClient)
        #expect(layer.serverVersion == 0)
        #expect(out.facts.tls?.serverHello == nil)
        // A gap between records of a protected side leaves it protected.
        var protected = TLSRecordLayer(keys: nil)
        _ = try Self.feed(&protected, &out, S.encrypted(100), .clientToServer)
        protected.gap(direction: .clientToServer, insideRecord: true)
        #expect(protected.client.phase == .protected)
    }

    @Test func applicationRecordsStopAtTheLimitWithoutKeys() throws {
        var layer = TLSRecordLayer(keys: nil)
        var out = CollectedFacts()
        for i in 1...TLSRecordLayer.maxApplicationRecordsPerDirection {
            let more = try Self.feed(&layer, &out, S.encrypted(100 + i), .clientToServer)
            #expect(more == (i < TLSRecordLayer.maxApplicationRecordsPerDirection), "record \(i)")
        }
        #expect(out.facts.tls?.applicationRecords.count == TLSRecordLayer.maxApplicationRecordsPerDirection)
        #expect(out.facts.tls?.clientApplicationBytes == Int64((101...116).reduce(0, +)))
    }

    /// Feeds one complete TPKT or fast-path PDU.
    static func feed(_ layer: inout TPKTLayer, _ out: inout CollectedFacts, _ bytes: [UInt8], _ d: Direction) throws -> Bool {
        try bytes.withUnsafeBytes { raw in
            var c = ByteCursor(raw)
            let framing = try RDPFraming.peek(c)
            guard var pdu = c.readSlice(framing.length) else { throw ParseError.needMore(atLeast: framing.length) }
            return layer.pdu(framing, &pdu, direction: d, at: at, into: &out)
        }
    }

    @Test func tpktPhaseMovesAtTheMCSConnectPDU() throws {
        var layer = TPKTLayer()
        var out = CollectedFacts()
        #expect(try Self.feed(&layer, &out, TPKTTests.crNdpi, .clientToServer))
        #expect(layer.client == .connecting)
        #expect(out.facts.connectionRequest?.requestedProtocols != nil)
        // An X.224 Data TPDU with a truncated MCS Connect-Initial: still the connect PDU.
        #expect(try Self.feed(&layer, &out, hexBytes("0300000a02f0807f6500"), .clientToServer))
        #expect(layer.client == .connected(pdus: 0))
        #expect(layer.connected(.clientToServer) && !layer.connected(.serverToClient))
        #expect(out.facts.notes.count == 1)
        // Disconnect Provider Ultimatum, reason 3 (rn-user-requested).
        #expect(try Self.feed(&layer, &out, hexBytes("0300000902f0802180"), .clientToServer))
        #expect(layer.client == .connected(pdus: 1))
        #expect(out.facts.disconnectProviderUltimatumReason == 3)
        // Fast-path PDUs count until the limit stops the direction.
        for i in 2...TPKTLayer.maxPDUsAfterConnect {
            let more = try Self.feed(&layer, &out, hexBytes("000300"), .clientToServer)
            #expect(more == (i < TPKTLayer.maxPDUsAfterConnect), "PDU \(i)")
        }
    }

    @Test func plaintextLayerReadsCredSSPThenEarlyUserAuthorizationThenRDP() {
        var layer = PlaintextLayer()
        layer.hybridEx = true
        // A TSRequest (version 6) split across two records.
        let request = hexBytes("3005a003020106")
        layer.receive(Array(request[0..<3]), from: .server, at: Self.at)
        #expect(layer.facts.tsRequests.isEmpty)
        #expect(layer.server == .credssp)
        layer.receive(Array(request[3...]), from: .server, at: Self.at)
        #expect(layer.facts.tsRequests.map(\.version) == [6])
        // The Early User Authorization Result ACCESS_DENIED, then a Disconnect Provider
        // Ultimatum in TPKT.
        layer.receive(hexBytes("05000000") + hexBytes("0300000902f08021"), from: .server, at: Self.at)
        #expect(layer.facts.earlyUserAuthorization?.result == 5)
        #expect(layer.server == .rdp)
        #expect(layer.facts.disconnectProviderUltimatum == nil)
        layer.receive(hexBytes("80"), from: .server, at: Self.at)
        #expect(layer.facts.disconnectProviderUltimatum?.reason == 3)
        // Bytes that are neither TPKT nor fast-path stop the direction.
        layer.receive(hexBytes("ff00"), from: .server, at: Self.at)
        #expect(layer.server == .stopped)
    }

    @Test func theClientsCredentialsEndItsCredSSP() {
        var layer = PlaintextLayer()
        // TSRequest version 6 with authInfo [2] (its contents are never read).
        layer.receive(hexBytes("300aa003020106a203040100"), from: .client, at: Self.at)
        #expect(layer.facts.tsRequests.first?.authInfo == true)
        #expect(layer.client == .rdp)
    }
}
