import Foundation
import TestSupport
import Testing
import TriageCapture
import TriageDiagnosis

@testable import TriageReports

@Suite struct JSONLineTests {
    func text(_ build: (inout JSONLine) -> Void) -> String {
        var j = JSONLine(capacity: 1)
        build(&j)
        return String(decoding: j.finish(newline: false), as: UTF8.self)
    }

    /// Commas at every depth from one flag: nested objects and arrays, empty ones included.
    @Test func nesting() {
        let s = text { j in
            j.open()
            j.int("a", 1)
            j.array("b")
            j.element()
            j.open()
            j.close()
            j.element()
            j.openArray()
            j.closeArray()
            j.element()
            j.int(-3)
            j.closeArray()
            j.object("c")
            j.null("d")
            j.string("e", orNull: nil)
            j.string("f", ifPresent: nil)
            j.int("g", ifPresent: Int?.none)
            j.close()
            j.bool("h", false)
            j.double("i", 0.5)
            j.double("k", .nan)
            j.double("l", 2)
            j.close()
        }
        #expect(s == #"{"a":1,"b":[{},[],-3],"c":{"d":null,"e":null},"h":false,"i":0.5,"k":null,"l":2}"#)
    }

    /// Every byte below 0x20, quotes and backslashes are escaped; the result is one line that a
    /// JSON parser reads back to the same string, whatever a capture put in it.
    @Test func stringsCannotBreakTheLine() throws {
        var rng = SplitMix(seed: 0x15)
        for _ in 0..<500 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int(rng.next() % 40) {
                let pick = rng.next() % 6
                let v: UInt32 = pick == 0 ? UInt32(rng.next() % 0x20) : pick == 1 ? 0x22 : pick == 2 ? 0x5C : pick == 3 ? 0x2028 : pick == 4 ? 0x1F600 : 0x20 + UInt32(rng.next() % 0x5F)
                scalars.append(Unicode.Scalar(v)!)
            }
            let original = String(scalars)
            let s = text { j in
                j.open()
                j.string("s", original)
                j.close()
            }
            #expect(!s.utf8.contains(where: { $0 < 0x20 }), "raw control byte in \(s.debugDescription)")
            let back = try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: String]
            #expect(back?["s"] == original)
        }
        #expect(text { $0.string("a\u{0}\u{1b}\"\\\n") } == #""a\u0000\u001b\"\\\n""#)
    }

    @Test func times() {
        let t = Timestamp(nanoseconds: 1_764_000_000_123_456_789)
        #expect(text { $0.time(t) } == "\"2025-11-24T16:00:00.123456789Z\"")
    }
}

@Suite struct ClientCodeTests {
    /// Numbered codes keep their number and extended reason; the words of client-side errors
    /// become a kind with a null code (issue 11's rule for JSON).
    @Test func codeOrNullWithAKind() {
        let socket = SchemaV2.clientCode(Knowledge.socketClosed)
        #expect(socket.code == "0x904" && socket.extended == "0x7" && socket.kind == "disconnect-reason")
        let connect = SchemaV2.clientCode(Knowledge.connectFailed)
        #expect(connect.code == "0x204" && connect.extended == nil && connect.kind == "disconnect-reason")
        for (report, kind) in [
            (Knowledge.negotiationError, "negotiation"), (Knowledge.protocolError, "protocol"), (Knowledge.securityError, "security"),
            (ClientReport(.kind(.local), meaning: "the client's own decision"), "local"),
        ] {
            let c = SchemaV2.clientCode(report)
            #expect(c.code == nil && c.extended == nil && c.kind == kind, "\(report.code)")
        }
    }
}
