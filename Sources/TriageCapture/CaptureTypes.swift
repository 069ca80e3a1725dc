/// Link-layer header types we decode, as libpcap's DLT_ values (pcap-linktype(7)).
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let null = LinkType(rawValue: 0)  // BSD loopback, host-order family
    public static let ethernet = LinkType(rawValue: 1)
    public static let raw = LinkType(rawValue: 12)  // DLT_RAW on Linux (LINKTYPE_RAW 101)
    public static let rawOpenBSD = LinkType(rawValue: 14)
    public static let loop = LinkType(rawValue: 108)  // OpenBSD loopback, network-order family
    public static let linuxSLL = LinkType(rawValue: 113)
    public static let ipv4 = LinkType(rawValue: 228)
    public static let ipv6 = LinkType(rawValue: 229)
    public static let linuxSLL2 = LinkType(rawValue: 276)

    /// The link type a capture file's LINKTYPE_ value stands for (pcap-linktype(7)): files
    /// store LINKTYPE_RAW (101) where libpcap's API uses DLT_RAW; the others we decode are the same
    /// in both.
    public init(fileValue: UInt32) {
        self = fileValue == 101 ? .raw : LinkType(rawValue: Int32(truncatingIfNeeded: fileValue))
    }

    public var isSupported: Bool {
        switch self {
        case .null, .ethernet, .raw, .rawOpenBSD, .loop, .linuxSLL, .ipv4, .ipv6, .linuxSLL2: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .null: "BSD loopback (NULL)"
        case .ethernet: "Ethernet"
        case .raw, .rawOpenBSD: "raw IP"
        case .loop: "OpenBSD loopback (LOOP)"
        case .linuxSLL: "Linux cooked v1 (SLL)"
        case .linuxSLL2: "Linux cooked v2 (SLL2)"
        case .ipv4: "raw IPv4"
        case .ipv6: "raw IPv6"
        default: "link type \(rawValue)"
        }
    }
}

/// Capture time in nanoseconds since the Unix epoch.
public struct Timestamp: Hashable, Comparable, Sendable {
    public var nanoseconds: Int64
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public init(seconds: Int64, nanos: Int64) {
        // Saturating: hostile headers can hold any seconds value.
        let (s, o) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (t, o2) = s.addingReportingOverflow(nanos)
        nanoseconds = (o || o2) ? (seconds < 0 ? Int64.min : Int64.max) : t
    }
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }

    /// Seconds from `other` to `self` (saturating).
    public func seconds(since other: Timestamp) -> Double {
        let (d, o) = nanoseconds.subtractingReportingOverflow(other.nanoseconds)
        return o ? (nanoseconds > other.nanoseconds ? Double.infinity : -Double.infinity) : Double(d) / 1e9
    }
}


extension Timestamp {
    /// UTC time in ISO 8601 with nanoseconds, e.g. `2026-11-25T11:43:45.123456789Z`.
    public var iso8601: String {
        withISO8601 { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the `iso8601` text's 30 bytes, built on the stack (reports write
    /// several times per attempt, so no string is made for them).
    public func withISO8601<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let ns = nanoseconds
        var secs = ns / 1_000_000_000
        var frac = ns % 1_000_000_000
        if frac < 0 {
            frac += 1_000_000_000
            secs -= 1
        }
        var days = secs / 86_400
        var rem = secs % 86_400
        if rem < 0 {
            rem += 86_400
            days -= 1
        }
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        var text: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return try withUnsafeMutableBytes(of: &text) { buf in
            var i = 0
            func put(_ v: Int64, _ width: Int) {
                var v = v
                var k = width
                while k > 0 {
                    k -= 1
                    buf[i + k] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                    v /= 10
                }
                i += width
            }
            func sep(_ c: UInt8) {
                buf[i] = c
                i += 1
            }
            // Int64 nanoseconds span the years 1677 to 2262: four digits always suffice.
            put(y, 4); sep(0x2D); put(m, 2); sep(0x2D); put(d, 2); sep(0x54)
            put(rem / 3600, 2); sep(0x3A); put(rem / 60 % 60, 2); sep(0x3A); put(rem % 60, 2); sep(0x2E)
            put(frac, 9); sep(0x5A)
            return try body(UnsafeRawBufferPointer(rebasing: buf[0..<i]))
        }
    }

    /// Parses the format `iso8601` writes.
    public init?(iso8601 text: String) {
        let u = Array(text.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z") else { return nil }
        func num(_ r: Range<Int>) -> Int64? {
            guard r.upperBound <= u.count else { return nil }
            var v: Int64 = 0
            for i in r {
                guard u[i] >= 48 && u[i] <= 57 else { return nil }
                v = v * 10 + Int64(u[i] - 48)
            }
            return v
        }
        guard let y = num(0..<4), let m = num(5..<7), let d = num(8..<10), let hh = num(11..<13),
            let mm = num(14..<16), let ss = num(17..<19), (1...12).contains(m)
        else { return nil }
        var frac: Int64 = 0
        if u[19] == UInt8(ascii: ".") {
            let digits = u.count - 21
            guard digits >= 1, digits <= 9, let f = num(20..<(u.count - 1)) else { return nil }
            frac = f
            for _ in digits..<9 { frac *= 10 }
        }
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let mp = m > 2 ? m - 3 : m + 9
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        self.init(seconds: days * 86_400 + hh * 3600 + mm * 60 + ss, nanos: frac)
    }
}
