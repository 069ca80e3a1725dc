/// An IPv4 or IPv6 address stored as two integers, so it is a plain value: hashing and
/// comparing it never allocates. IPv4 lives in the low 32 bits of `low` with `high == 0`.
public struct IPAddress: Hashable, Comparable, Sendable {
    public var high: UInt64
    public var low: UInt64
    public var isIPv6: Bool

    public init(ipv4: UInt32) {
        high = 0
        low = UInt64(ipv4)
        isIPv6 = false
    }

    public init(ipv6High: UInt64, low: UInt64) {
        high = ipv6High
        self.low = low
        isIPv6 = true
    }

    public static let none = IPAddress(ipv4: 0)

    public var ipv4: UInt32 { UInt32(truncatingIfNeeded: low) }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.isIPv6 != b.isIPv6 { return !a.isIPv6 }
        if a.high != b.high { return a.high < b.high }
        return a.low < b.low
    }

    /// Parses dotted IPv4 or RFC 5952-style IPv6 text (for options and tests, not the hot path).
    public init?(_ text: String) {
        if text.contains(":") {
            guard let v = IPAddress.parseIPv6(text) else { return nil }
            self = v
        } else {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var v: UInt32 = 0
            for p in parts {
                guard let b = UInt8(p) else { return nil }
                v = v << 8 | UInt32(b)
            }
            self.init(ipv4: v)
        }
    }

    private static func parseIPv6(_ text: String) -> IPAddress? {
        let halves = text.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func groups(_ s: Substring) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for i in 0..<4 { hi = hi << 16 | UInt64(all[i]) }
        for i in 4..<8 { lo = lo << 16 | UInt64(all[i]) }
        return IPAddress(ipv6High: hi, low: lo)
    }
}

extension String {
    fileprivate func components(separatedByDoubleColon: ()) -> [Substring] {
        guard let r = self.range(of: "::") else { return [Substring(self)] }
        let rest = self[r.upperBound...]
        if rest.contains("::") { return [Substring(self), "", ""] }
        return [self[..<r.lowerBound], rest]
    }

    fileprivate func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) {
                return i..<index(i, offsetBy: needle.count)
            }
            i = index(after: i)
        }
        return nil
    }
}

extension IPAddress: CustomStringConvertible {
    public var description: String {
        if !isIPv6 {
            // Dotted quad built in place: at most 15 bytes, a small string, no allocation.
            var text: (UInt64, UInt64) = (0, 0)
            return withUnsafeMutableBytes(of: &text) { buf in
                let n = Self.writeDottedQuad(ipv4, into: buf)
                return String(decoding: UnsafeRawBufferPointer(rebasing: buf[0..<n]), as: UTF8.self)
            }
        }
        var g = [UInt16](repeating: 0, count: 8)
        for i in 0..<4 {
            g[i] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(i)))
            g[i + 4] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(i)))
        }
        // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first one on ties.
        var bestStart = -1
        var bestLen = 0
        var i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 {
                    bestStart = i
                    bestLen = j - i
                }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ r: Range<Int>) -> String { r.map { String(g[$0], radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
    }

    /// Writes `v` as a dotted quad at the start of `buf` (15 bytes suffice) and returns its length.
    public static func writeDottedQuad(_ v: UInt32, into buf: UnsafeMutableRawBufferPointer) -> Int {
        var n = 0
        for k in 0..<4 {
            let shift = UInt32(24 - 8 * k)
            let octet = UInt8(truncatingIfNeeded: v >> shift)
            if octet >= 100 {
                buf[n] = 0x30 &+ octet / 100
                n += 1
            }
            if octet >= 10 {
                buf[n] = 0x30 &+ octet / 10 % 10
                n += 1
            }
            buf[n] = 0x30 &+ octet % 10
            n += 1
            if shift > 0 {
                buf[n] = 0x2E
                n += 1
            }
        }
        return n
    }
}

/// An address and port.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    public var description: String {
        guard !address.isIPv6 else { return "[\(address)]:\(port)" }
        // "a.b.c.d:port" written once into a stack buffer (at most 21 bytes): reports name
        // both endpoints of every attempt, and interpolation grew its string several times.
        return withUnsafeTemporaryAllocation(byteCount: 24, alignment: 1) { buf in
            var n = IPAddress.writeDottedQuad(address.ipv4, into: buf)
            buf[n] = UInt8(ascii: ":")
            n = writeDecimal(UInt64(port), into: buf, at: n + 1)
            return String(decoding: UnsafeRawBufferPointer(rebasing: buf[0..<n]), as: UTF8.self)
        }
    }
}

/// Writes `v` in decimal into `buf` from index `start` (20 bytes suffice) and returns the
/// index after the last digit: for text built in place (reports, endpoints, numbers).
public func writeDecimal(_ v: UInt64, into buf: UnsafeMutableRawBufferPointer, at start: Int) -> Int {
    var v = v
    var end = start
    repeat {
        buf[end] = 0x30 &+ UInt8(truncatingIfNeeded: v % 10)
        v /= 10
        end += 1
    } while v > 0
    var i = start
    var j = end - 1
    while i < j {
        buf.swapAt(i, j)
        i += 1
        j -= 1
    }
    return end
}
