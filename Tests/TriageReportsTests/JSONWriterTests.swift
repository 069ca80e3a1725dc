import Testing
import TestSupport
import TriageDecoding

@testable import TriageReports

@Suite struct JSONWriterTests {
    /// The pointer-written buffer must hold exactly what an array given the same writes
    /// holds, across many growths from the smallest capacity.
    @Test func outputBytesMatchesAnArray() {
        var rng = SplitMix(seed: 0x0B17E5)
        for round in 0..<50 {
            var out = OutputBytes(capacity: round % 3)
            var model: [UInt8] = []
            for _ in 0..<400 {
                switch rng.next() % 8 {
                case 6:
                    // Strings: short ones take their own copy loop, small strings live inline.
                    let pieces = ["", "a", "→", "é·", "0123456789abcdef", "0123456789abcdefg", String(repeating: "xyz", count: 40)]
                    let t = pieces[Int(rng.next() % UInt64(pieces.count))]
                    out.append(t)
                    model += Array(t.utf8)
                case 7:
                    let v = Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64)
                    out.append(decimal: v)
                    model += Array(String(v).utf8)
                case 0:
                    let b = UInt8(truncatingIfNeeded: rng.next())
                    out.append(b)
                    model.append(b)
                case 1:
                    let a = UInt8(truncatingIfNeeded: rng.next()), b = UInt8(truncatingIfNeeded: rng.next())
                    out.append(a, b)
                    model += [a, b]
                case 2:
                    let chunk = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    chunk.withUnsafeBytes { out.append($0) }
                    model += chunk
                case 3:
                    let n = Int(rng.next() % 200)
                    out.append(repeating: 0x20, count: n)
                    model += [UInt8](repeating: 0x20, count: n)
                case 4:
                    let n = model.isEmpty ? 0 : Int(rng.next() % UInt64(model.count + 1))
                    out.truncate(to: n)
                    model.removeSubrange(n...)
                default:
                    out.append(UnsafeRawBufferPointer(start: nil, count: 0))
                }
                let count = out.count
                #expect(count == model.count)
            }
            let written = out.array
            #expect(written == model)
        }
    }

    @Test func outputBytesTruncateAndEscapeScan() {
        var out = OutputBytes(capacity: 4)
        Array("abc\"def".utf8).withUnsafeBytes { out.append($0) }
        let quoteSeen = out.needsEscaping(from: 0), tailClean = !out.needsEscaping(from: 4)
        let tail = out.text(from: 4)
        #expect(quoteSeen && tailClean && tail == "def")
        out.truncate(to: 3)
        let cleanAfterCut = !out.needsEscaping(from: 0)
        out.truncate(to: 99)  // never grows
        let kept = out.array
        #expect(cleanAfterCut && kept == Array("abc".utf8))
        out.truncate(to: -1)
        let emptied = out.count
        #expect(emptied == 0)
    }

    struct Sample: Encodable {
        var sameSideLastIPID = 7
        var answersSYN = true
        var ipv6Address = "2001:db8::1"
        var note: String? = nil
        var list = [1, -2]
        var empty: [Int] = []
        var inner = Inner()
        struct Inner: Encodable { var text = "q\"b\\s\n\r\t\u{01}é" }
    }

    @Test func prettyTextSnakeCaseKeysAndEscapes() throws {
        let text = try JSONWriter.encode(Sample())
        let expected = """
            {
              "same_side_last_ipid": 7,
              "answers_syn": true,
              "ipv6_address": "2001:db8::1",
              "list": [
                1,
                -2
              ],
              "empty": [],
              "inner": {
                "text": "q\\"b\\\\s\\n\\r\\t\\u0001é"
              }
            }
            """
        #expect(text == expected)
    }

    @Test func levelIndentsEveryLineButTheFirst() throws {
        let text = try JSONWriter.encode([1, 2], level: 2)
        #expect(text == "[\n      1,\n      2\n    ]")
    }

    /// A key no property name produces still comes out as valid JSON.
    struct OddKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    struct OddKeys: Encodable {
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: OddKey.self)
            try c.encode(1, forKey: OddKey(stringValue: "a\"b"))
            try c.encode(2, forKey: OddKey(stringValue: "tab\there"))
            try c.encode(3, forKey: OddKey(stringValue: "plainKey"))
        }
    }

    @Test func keysThatNeedEscapingAreEscaped() throws {
        let text = try JSONWriter.encode(OddKeys())
        #expect(text == "{\n  \"a\\\"b\": 1,\n  \"tab\\there\": 2,\n  \"plain_key\": 3\n}")
    }

    /// Addresses and endpoints written in place read as their descriptions, whatever the
    /// buffer held before (every octet width, port 0 and 65535, IPv6 through its fallback).
    @Test func endpointsWrittenInPlaceMatchTheirDescriptions() throws {
        var rng = SplitMix(seed: 0xADD2E55)
        var cases: [Endpoint] = [
            Endpoint(IPAddress(ipv4: 0), 0), Endpoint(IPAddress(ipv4: 0xFFFF_FFFF), 65535),
            Endpoint(IPAddress(ipv4: 0x0A00_6401), 3389), Endpoint(try #require(IPAddress("2001:db8::20")), 3389),
        ]
        for _ in 0..<500 {
            cases.append(Endpoint(IPAddress(ipv4: UInt32(truncatingIfNeeded: rng.next())), UInt16(truncatingIfNeeded: rng.next())))
        }
        for (i, e) in cases.enumerated() {
            var out = OutputBytes(capacity: i % 3)
            out.append("x")
            out.append(endpoint: e)
            out.append(address: e.address)
            #expect(out.text(from: 0) == "x" + e.description + e.address.description)
        }
    }
}
