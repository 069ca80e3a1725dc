import Foundation
import Testing
import TriageCapture
import TriageDecoding
import TriageFlows

/// The tracker's clock moved without packets (a live capture's tick): a SYN the firewall
/// dropped (captures/syn-dropped.pcap, made by the lab with an nftables drop rule) is reported
/// once the handshake timeout has passed after its last SYN, with no further packet, and
/// not before.
@Suite struct TrackerClockTests {
    @Test func advanceReportsUnansweredHandshake() throws {
        var configuration = TrackerConfiguration()
        configuration.handshakeTimeout = 21
        configuration.sweepInterval = 0.25
        var finished: [Int] = []
        let tracker = SessionTracker(input: "syn-dropped", configuration: configuration, factory: nil) { s, _ in
            finished.append(s.id)
        }
        let source = try PcapFileSource(path: Repo.captures + "/syn-dropped.pcap")
        var decoded = DecodedPacket()
        var last = Timestamp(nanoseconds: 0)
        while let raw = try source.next() {
            PacketDecoder.decode(raw.bytes, linkType: raw.linkType, into: &decoded)
            tracker.process(decoded, bytes: raw.bytes, frameLength: raw.originalLength, at: FrameRef(frame: raw.frameNumber, time: raw.timestamp))
            last = raw.timestamp
        }
        try #require(tracker.openSessions == 1)
        tracker.advance(to: Timestamp(nanoseconds: last.nanoseconds + 20_000_000_000))
        #expect(finished.isEmpty, "reported before the timeout")
        tracker.advance(to: Timestamp(nanoseconds: last.nanoseconds + 21_300_000_000))
        #expect(finished == [0], "not reported after the timeout")
        #expect(tracker.openSessions == 0)
        // A tick earlier than the clock changes nothing.
        tracker.advance(to: last)
        #expect(finished == [0])
    }
}
