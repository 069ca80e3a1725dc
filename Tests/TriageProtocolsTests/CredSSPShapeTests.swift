import Testing
import TriageCapture
import TriageFlows

@testable import TriageProtocols

/// CredSSP by shape (MS-CSSP 3.1.5; FACTS.md section 4). Record sizes from the public
/// captures (ndpi rdp.pcap: HYBRID_EX with AES-256-GCM) and synthetic variants.
@Suite struct CredSSPShapeTests {
    static func run(_ spec: [(Side, Int)], firstFrame: Int = 10) -> [TLSFacts.RecordRun] {
        spec.enumerated().map { i, r in
            TLSFacts.RecordRun(
                at: FrameRef(frame: firstFrame + i, time: Timestamp(nanoseconds: Int64(i))), from: r.0, contentType: 23,
                length: r.1)
        }
    }

    static let gcm = RecordOverhead.estimate(version: 0x0303, cipherSuite: 0xC030)

    @Test func hybridExUpToEarlyUserAuthorization() {
        // ndpi rdp.pcap: 81, 286, 567, 83, 100 then the server's 28-byte result.
        let records = Self.run([(.client, 81), (.server, 286), (.client, 567), (.server, 83), (.client, 100), (.server, 28)])
        let facts = CredSSPShape.classify(records: records, hybridEx: true, overhead: Self.gcm)
        #expect(facts.phase == .earlyUserAuthorization)
        #expect(facts.records.count == 6)
        #expect(facts.reachedAt?.frame == 15)
        #expect(facts.likelyErrorReply == nil)
    }

    @Test func sessionAfterCredSSP() {
        let records = Self.run([
            (.client, 81), (.server, 286), (.client, 567), (.server, 83), (.client, 100), (.server, 28), (.client, 450),
            (.server, 1200),
        ])
        let facts = CredSSPShape.classify(records: records, hybridEx: true, overhead: Self.gcm)
        #expect(facts.phase == .session)
        #expect(facts.records.count == 6)
        let hybrid = CredSSPShape.classify(
            records: Self.run([(.client, 81), (.server, 286), (.client, 567), (.server, 83), (.client, 100), (.client, 450)]),
            hybridEx: false, overhead: Self.gcm)
        #expect(hybrid.phase == .session)
        #expect(hybrid.records.count == 5)
    }

    @Test func stopsAfterAuthenticate() {
        // bruteforce stream 19: 81, 239, 761, then an encrypted alert and a close.
        let facts = CredSSPShape.classify(
            records: Self.run([(.client, 81), (.server, 239), (.client, 761)]), hybridEx: false, overhead: Self.gcm)
        #expect(facts.phase == .authenticate)
        #expect(facts.records.count == 3)
    }

    @Test func errorCodeReply() {
        // A 15-byte TSRequest {version 6, errorCode} under GCC: 39-byte record.
        let records = Self.run([(.client, 81), (.server, 286), (.client, 567), (.server, 39)])
        let facts = CredSSPShape.classify(records: records, hybridEx: false, overhead: Self.gcm)
        #expect(facts.phase == .authenticate)
        #expect(facts.likelyErrorReply?.frame == 13)
        #expect(facts.records.count == 4)
        // If the client goes on, the small record was the real pubKeyAuth after all.
        let goesOn = CredSSPShape.classify(records: records + Self.run([(.client, 100)], firstFrame: 20), hybridEx: false, overhead: Self.gcm)
        #expect(goesOn.phase == .credentials)
        #expect(goesOn.likelyErrorReply == nil)
    }

    @Test func serverRecordsBeforeTheClientAreIgnored() {
        // A TLS 1.3 NewSessionTicket arrives before the client's first TSRequest.
        let tls13 = RecordOverhead.estimate(version: 0x0304, cipherSuite: 0x1301)
        let facts = CredSSPShape.classify(
            records: Self.run([(.server, 250), (.client, 74), (.server, 279)]), hybridEx: false, overhead: tls13)
        #expect(facts.phase == .challenge)
        #expect(facts.records.count == 2)
    }

    @Test func tls10SplitRecordsJoin() {
        // bruteforce stream 26 (TLS 1.0, AES-128-CBC-SHA): 80, 224, then 32 + 736 from the
        // client (an empty or one-byte record before the real one).
        let cbc = RecordOverhead.estimate(version: 0x0301, cipherSuite: 0x002F)
        let facts = CredSSPShape.classify(
            records: Self.run([(.client, 80), (.server, 224), (.client, 32), (.client, 736)]), hybridEx: false, overhead: cbc)
        #expect(facts.phase == .authenticate)
        #expect(facts.records.count == 4)
    }

    @Test func nothingFromTheClient() {
        let facts = CredSSPShape.classify(records: Self.run([(.server, 300)]), hybridEx: true, overhead: Self.gcm)
        #expect(facts.phase == .none)
        #expect(facts.records.isEmpty)
    }
}
