/// A name inside a payload, where a parser found it, so a redacted export can overwrite
/// exactly that field and nothing else. A DNS name spreads over several labels (and,
/// compressed, over several places in the message): `ranges` lists its parts in order,
/// with a dot between consecutive parts.
public struct NameField: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case user
        /// The DOMAIN of `DOMAIN\user`.
        case domain
        /// A host, organisation or unit name; an address literal gets the address's pseudonym.
        case host
        /// A certificate serial number: bytes, not text.
        case serial
    }

    public enum Encoding: Sendable, Equatable {
        /// One byte a character (ASCII, Latin-1, UTF-8: filled with ASCII, so still valid).
        case bytes
        case utf16LE
        case utf16BE
        /// Not text: filled with printable ASCII bytes (a serial stays a positive INTEGER).
        case opaque
        /// An IPv4 or IPv6 address in binary: the pseudonym address's bytes.
        case address
    }

    public var ranges: [Range<Int>]
    public var kind: Kind
    public var encoding: Encoding
    /// The name as reports show it, so the export gets the same pseudonym.
    public var shown: String

    public init(_ ranges: [Range<Int>], kind: Kind, encoding: Encoding, shown: String) {
        self.ranges = ranges
        self.kind = kind
        self.encoding = encoding
        self.shown = shown
    }

    public init(_ range: Range<Int>, kind: Kind, encoding: Encoding, shown: String) {
        self.init([range], kind: kind, encoding: encoding, shown: shown)
    }

    /// The same field, `delta` bytes further on (from message to frame offsets).
    public func shifted(by delta: Int) -> NameField {
        NameField(ranges.map { ($0.lowerBound + delta)..<($0.upperBound + delta) }, kind: kind, encoding: encoding, shown: shown)
    }

    /// The bytes to write over each range: `pseudonym`'s letters and digits (then `x`) in
    /// every character position, dots kept, so the field keeps its length and shape.
    public func replacement(for pseudonym: String, in bytes: [UInt8]) -> [[UInt8]]? {
        guard ranges.allSatisfy({ $0.lowerBound >= 0 && $0.upperBound <= bytes.count }) else { return nil }
        if encoding == .address {
            let size = ranges.reduce(0) { $0 + $1.count }
            guard let a = IPAddress(pseudonym), a.isIPv6 ? size == 16 : size == 4 else {
                return ranges.map { [UInt8](repeating: 0, count: $0.count) }
            }
            var flat: [UInt8] = []
            if a.isIPv6 {
                for i in 0..<8 { flat.append(UInt8(truncatingIfNeeded: a.high >> (56 - 8 * UInt64(i)))) }
                for i in 0..<8 { flat.append(UInt8(truncatingIfNeeded: a.low >> (56 - 8 * UInt64(i)))) }
            } else {
                for i in 0..<4 { flat.append(UInt8(truncatingIfNeeded: a.ipv4 >> (24 - 8 * UInt32(i)))) }
            }
            var out: [[UInt8]] = []
            var at = 0
            for r in ranges {
                out.append(Array(flat[at..<(at + r.count)]))
                at += r.count
            }
            return out
        }
        let unit = encoding == .utf16LE || encoding == .utf16BE ? 2 : 1
        var fill = Array(pseudonym.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil) }
            .map { UInt8($0.value) })
        if fill.isEmpty { fill = [UInt8(ascii: "x")] }
        let slots = ranges.reduce(0) { $0 + $1.count / unit }
        if fill.count > slots, let number = Int(String(decoding: fill.filter { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self)) {
            // Too short for the whole pseudonym: its first letter and its number in base 36.
            fill = [fill[0]] + Array(String(number, radix: 36).utf8)
        }
        var next = 0
        func take() -> UInt8 {
            defer { next += 1 }
            return next < fill.count ? fill[next] : UInt8(ascii: "x")
        }
        return ranges.map { r in
            var out = Array(bytes[r])
            var i = 0
            while i + unit <= out.count {
                switch encoding {
                case .bytes, .opaque, .address:
                    if !(encoding == .bytes && out[i] == UInt8(ascii: ".")) { out[i] = take() }
                case .utf16LE:
                    if !(out[i] == UInt8(ascii: ".") && out[i + 1] == 0) {
                        out[i] = take()
                        out[i + 1] = 0
                    }
                case .utf16BE:
                    if !(out[i] == 0 && out[i + 1] == UInt8(ascii: ".")) {
                        out[i] = 0
                        out[i + 1] = take()
                    }
                }
                i += unit
            }
            return out
        }
    }
}
