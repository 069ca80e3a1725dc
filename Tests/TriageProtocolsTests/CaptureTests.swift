import Foundation
import TestSupport
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

@testable import TriageProtocols

/// The whole path through the real session tracker: capture file, decoder, reassembler,
/// `RDPConsumerFactory` / `RDPStreamConsumer`. Uses the public captures in
/// ../shared/captures-public/ beside the repository (not copied into the project). Outside CI
/// a test is skipped, naming the file, when its capture is absent; in CI it fails.
@Suite struct CaptureTests {
    static let directory: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return Prerequisite.publicCaptures(repositoryRoot: url.path) + "/"
    }()

    static func present(_ name: String) -> Bool { FileManager.default.fileExists(atPath: directory + name) }

    /// Every session's RDP facts, in session order.
    static func facts(_ name: String) throws -> [RDPFacts] {
        try #require(present(name), "missing prerequisite: \(directory + name)")
        let source = try PcapFileSource(path: directory + name)
        var sessions: [(Int, RDPFacts)] = []
        let tracker = SessionTracker(input: name, configuration: TrackerConfiguration(), factory: RDPConsumerFactory()) {
            session, _ in
            sessions.append((session.id, (session.consumer as? RDPStreamConsumer)?.facts ?? RDPFacts()))
        }
        var packet = DecodedPacket()
        while let raw = try source.next() {
            PacketDecoder.decode(raw.bytes, linkType: raw.linkType, into: &packet)
            tracker.process(packet, bytes: raw.bytes, frameLength: raw.originalLength, at: FrameRef(frame: raw.frameNumber, time: raw.timestamp))
        }
        tracker.finishAll()
        return sessions.sorted { $0.0 < $1.0 }.map(\.1)
    }

    @Test(.enabled(if: Prerequisite.runs(present("zeek/rdp-x509.pcap")), "needs ../shared/captures-public/zeek/rdp-x509.pcap"))
    func zeekX509() throws {
        let all = try Self.facts("zeek/rdp-x509.pcap")
        try #require(all.count == 1)
        // The same facts as the recorded segments played by hand.
        #expect(all[0] == StreamPlayer.play(CaptureFixtures.zeekX509, .asCaptured))
        #expect(all[0].mcsConnectResponse?.at.frame == 13)
        #expect(all[0].mcsConnectResponse?.certificates.count == 2)
    }

    @Test(.enabled(if: Prerequisite.runs(present("suricata/RDP-003.pcap")), "needs ../shared/captures-public/suricata/RDP-003.pcap"))
    func windowsXP() throws {
        let all = try Self.facts("suricata/RDP-003.pcap")
        let rdp = try #require(all.first { $0.connectionRequest != nil })
        // suricata's expectation: cookie A70067, client ISD2-KM84178, desktop height 864,
        // channels rdpdr, cliprdr, rdpsnd.
        #expect(rdp.connectionRequest?.cookie == "A70067")
        #expect(rdp.mcsConnectInitial?.clientName == "ISD2-KM84178")
        #expect(rdp.mcsConnectInitial?.desktopHeight == 864)
        #expect(rdp.mcsConnectInitial?.channels == ["rdpdr", "cliprdr", "rdpsnd"])
        #expect(rdp.mcsConnectResponse?.certificateKind == "proprietary")
        #expect(rdp.lostSync == [])
    }

    @Test(.enabled(if: Prerequisite.runs(present("ndpi/rdp.pcap")), "needs ../shared/captures-public/ndpi/rdp.pcap"))
    func hybridEx() throws {
        let all = try Self.facts("ndpi/rdp.pcap")
        try #require(all.count == 1)
        #expect(all[0] == StreamPlayer.play(CaptureFixtures.ndpiHybridEx, .asCaptured))
        #expect(all[0].credssp?.phase == .earlyUserAuthorization)
    }

    /// 71 attempts of an internet brute-forcer. Counts cross-checked with tshark 4.0
    /// (`-d tcp.port==3389,tls`, per tcp.stream): see the report of the protocol layer.
    @Test(.enabled(if: Prerequisite.runs(present("initconf/RDP-bruteforce.pcap")), "needs ../shared/captures-public/initconf/RDP-bruteforce.pcap"))
    func bruteForce() throws {
        let all = try Self.facts("initconf/RDP-bruteforce.pcap")
        #expect(all.count == 71)
        let confirms = all.compactMap(\.connectionConfirm)
        #expect(confirms.count == 57)
        #expect(confirms.allSatisfy { $0.selectedProtocol == .hybrid })
        // tshark shows 33: in tcp.stream 7 the ServerHello's first copy was not captured and
        // tshark does not dissect the (spurious) retransmission, frame 99, that carries it.
        #expect(all.filter { $0.tls?.serverHello != nil }.count == 34)
        #expect(all.filter { $0.tls?.alerts.isEmpty == false }.count == 13)
        for f in all {
            #expect(f.notes.count <= RDPConnectionParser.maxNotes)
            #expect((f.tls?.applicationRecords.count ?? 0) <= 2 * RDPConnectionParser.maxApplicationRecordsPerDirection)
            #expect((f.tls?.alerts.count ?? 0) <= RDPConnectionParser.maxAlerts)
        }
    }
}
