import TestSupport
import Testing
import TriageDiagnosis

/// `Numbers.fixed` writes its digits in one pass; the reference here is the plain string
/// building it replaced, and the two must agree on every value, width, trim and sign.
@Suite struct NumbersTests {
    static func reference(_ v: Double, _ places: Int, trim: Bool, sign: Bool) -> String {
        guard v.isFinite else { return "?" }
        var scale: Int64 = 1
        for _ in 0..<max(0, min(places, 12)) { scale *= 10 }
        let magnitude = abs(v) * Double(scale)
        guard magnitude < 9e18 else { return v < 0 ? "-∞" : "∞" }
        let scaled = Int64(magnitude.rounded())
        var frac = places > 0 ? String(scaled % scale) : ""
        if places > 0 && frac.count < places { frac = String(repeating: "0", count: places - frac.count) + frac }
        if trim { while frac.hasSuffix("0") { frac.removeLast() } }
        let prefix = v < 0 && scaled != 0 ? "-" : sign ? "+" : ""
        return prefix + String(scaled / scale) + (frac.isEmpty ? "" : "." + frac)
    }

    @Test func agreesWithPlainStringBuilding() {
        var values: [Double] = [
            0, -0.0, 1, -1, 0.5, -0.5, 0.0004, -0.0004, 0.0005, 9.9995, 123.456789, -123.456789, 1e6, 1e15, 9.2e18,
            -9.2e18, 8.9e17, .infinity, -.infinity, .nan, 1e-12, 0.1, 0.25, 2.5, 1_000_000.0000005,
        ]
        var g = SplitMix(seed: 0xF1ED)
        for _ in 0..<3000 {
            let exponent = Double.random(in: -8...16, using: &g)
            values.append((Bool.random(using: &g) ? 1 : -1) * Double.random(in: 0...1, using: &g) * Self.pow10(exponent))
        }
        for v in values {
            for places in [-1, 0, 1, 2, 3, 6, 12, 14] {
                for trim in [false, true] {
                    for sign in [false, true] {
                        let got = Numbers.fixed(v, places, trim: trim, sign: sign)
                        let want = Self.reference(v, places, trim: trim, sign: sign)
                        if got != want {
                            Issue.record("fixed(\(v), \(places), trim: \(trim), sign: \(sign)) = \(got), want \(want)")
                            return
                        }
                    }
                }
            }
        }
        #expect(Numbers.fixed(0.5, 3) == "0.500")
        #expect(Numbers.fixed(-0.0004, 3, sign: true) == "+0.000")
        #expect(Numbers.fixed(1.5, 2, trim: true) == "1.5")
        #expect(Numbers.fixed(2, 3, trim: true) == "2")
        #expect(Numbers.duration(0.000123) == "123 µs")
    }

    static func pow10(_ e: Double) -> Double {
        var r = 1.0
        var k = Int(e.rounded(.down))
        while k > 0 { r *= 10; k -= 1 }
        while k < 0 { r /= 10; k += 1 }
        return r
    }
}
