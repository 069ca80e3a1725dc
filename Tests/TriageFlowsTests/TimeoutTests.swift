import Testing
import TriageCapture
import TriageDecoding

@testable import TriageFlows

/// When sessions are reported: after the linger of a closed or reset one, the handshake
/// timeout of an unanswered one, the idle timeout of an open one, by the capture's clock
/// (the tracker files sessions in a wheel of deadline seconds; these pin what it must do).
@Suite struct TimeoutTests {
    /// A packet of an unrelated, non-RDP connection: it only moves the capture clock.
    static func tick(_ h: Harness, after seconds: Double) {
        var other = Wire()
        other.client.port = 40000
        other.server.port = 80
        h.feed(other.frame(fromClient: true, flags: F.ack, seq: 1, ack: 1), after: seconds)
    }

    static func configuration() -> TrackerConfiguration {
        var c = TrackerConfiguration()
        c.closeLinger = 5
        c.handshakeTimeout = 75
        c.idleTimeout = 600
        return c
    }

    /// Handshake on `w`'s 5-tuple, then a little data each way.
    static func open(_ h: Harness, _ w: inout Wire) {
        h.feed(w.frame(fromClient: true, flags: F.syn, seq: 100, ack: 0))
        h.feed(w.frame(fromClient: false, flags: F.syn | F.ack, seq: 900, ack: 101))
        h.feed(w.frame(fromClient: true, flags: F.ack, seq: 101, ack: 901))
        h.feed(w.frame(fromClient: true, flags: F.psh | F.ack, seq: 101, ack: 901, payload: [1, 2, 3]))
    }

    static func ports(_ h: Harness) -> [UInt16] { h.box.facts.map(\.client.port) }

    @Test func eachSessionEndsWhenItsOwnTimeoutPasses() {
        let h = Harness(configuration: Self.configuration())
        var closed = Wire()
        closed.client.port = 50001
        var unanswered = Wire()
        unanswered.client.port = 50002
        var idle = Wire()
        idle.client.port = 50003
        Self.open(h, &idle)
        h.feed(unanswered.frame(fromClient: true, flags: F.syn, seq: 7, ack: 0))
        Self.open(h, &closed)
        h.feed(closed.frame(fromClient: true, flags: F.fin | F.ack, seq: 104, ack: 901))
        h.feed(closed.frame(fromClient: false, flags: F.fin | F.ack, seq: 901, ack: 105))
        Self.tick(h, after: 4)
        #expect(Self.ports(h).isEmpty, "the closed one lingers 5 s")
        Self.tick(h, after: 2.5)
        #expect(Self.ports(h) == [50001])
        Self.tick(h, after: 60)
        #expect(Self.ports(h) == [50001], "an unanswered SYN waits 75 s")
        Self.tick(h, after: 16)
        #expect(Self.ports(h) == [50001, 50002])
        Self.tick(h, after: 500)
        #expect(Self.ports(h) == [50001, 50002], "an open session is idle after 600 s")
        Self.tick(h, after: 30)
        #expect(Self.ports(h) == [50001, 50002, 50003])
        let facts = h.finish()
        #expect(facts.count == 3, "each session is reported once")
        #expect(facts.map(\.idle) == [false, false, true])
        #expect(facts[0].outcome == .closed)
        #expect(facts[1].outcome == .synUnanswered)
    }

    @Test func aResetBringsTheDeadlineForward() {
        let h = Harness(configuration: Self.configuration())
        var w = Wire()
        Self.open(h, &w)
        Self.tick(h, after: 100)
        h.feed(w.frame(fromClient: false, flags: F.rst | F.ack, seq: 901, ack: 104))
        Self.tick(h, after: 4)
        #expect(h.box.facts.isEmpty)
        Self.tick(h, after: 2)
        #expect(h.box.facts.count == 1, "reported 5 s after its RST, not 600 s after its last packet")
        #expect(h.box.facts.first?.outcome == .reset)
        #expect(h.finish().count == 1)
    }

    @Test func packetsKeepASessionAlive() {
        let h = Harness(configuration: Self.configuration())
        var w = Wire()
        Self.open(h, &w)
        var seq: UInt32 = 104
        // Twenty minutes of a packet every 300 s: never idle for 600 s.
        for _ in 0..<4 {
            h.feed(w.frame(fromClient: true, flags: F.psh | F.ack, seq: seq, ack: 901, payload: [9]), after: 300)
            seq += 1
        }
        Self.tick(h, after: 590)
        #expect(h.box.facts.isEmpty)
        Self.tick(h, after: 20)
        #expect(h.box.facts.count == 1)
        #expect(h.box.facts.first?.idle == true)
    }

    @Test func aClockJumpLongerThanTheWheelReportsEveryoneOnce() {
        let h = Harness(configuration: Self.configuration())
        for port in UInt16(50001)...50040 {
            var w = Wire()
            w.client.port = port
            Self.open(h, &w)
        }
        // Hours without a packet (a capture paused, or two files' worth of time apart).
        Self.tick(h, after: 3 * 3600)
        #expect(h.box.facts.count == 40)
        #expect(Self.ports(h) == Array(UInt16(50001)...50040), "in the order they started")
        #expect(h.finish().count == 40)
    }

    @Test func anIdleTimeoutLongerThanTheWheelStillHolds() {
        var c = Self.configuration()
        c.idleTimeout = 3000  // longer than the wheel's 1,024 one-second slots
        let h = Harness(configuration: c)
        var w = Wire()
        Self.open(h, &w)
        for _ in 0..<5 { Self.tick(h, after: 500) }
        #expect(h.box.facts.isEmpty, "2,500 s of silence")
        Self.tick(h, after: 600)
        #expect(h.box.facts.count == 1)
    }

    @Test func aReusedTupleEndsTheOldAttemptOnce() {
        let h = Harness(configuration: Self.configuration())
        var w = Wire()
        Self.open(h, &w)
        // The same 5-tuple, a new ISN: a new attempt; the first is over at once.
        h.feed(w.frame(fromClient: true, flags: F.syn, seq: 5000, ack: 0), after: 1)
        #expect(h.box.facts.count == 1)
        Self.tick(h, after: 700)
        #expect(h.box.facts.count == 2, "the new attempt, unanswered, after 75 s")
        #expect(h.finish().count == 2)
    }
}
