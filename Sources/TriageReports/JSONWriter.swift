import TriageCapture
import TriageDecoding
import TriageFlows

/// A streaming JSON encoder: writes an `Encodable` straight into bytes, pretty-printed,
/// keys in declaration order and in snake_case. Foundation's `JSONEncoder` builds a tree
/// of boxed values first and spent most of a large report's time there.
///
/// Containers close lazily: the `Encodable` protocol says when a container opens, never
/// when it is finished, so a container is closed when its parent writes its next element
/// or when the value is done.
final class JSONWriter {
    // Written by one encoder at a time, so the dynamic exclusivity checks (a quarter of the
    // time of a large report) buy nothing here.
    @exclusivity(unchecked) private(set) var bytes: [UInt8] = []
    /// Open containers: object or array, and how many elements each has so far.
    @exclusivity(unchecked) private var stack: [(object: Bool, count: Int)] = []
    /// Indentation of the outermost container, for values embedded in a larger document.
    let baseLevel: Int
    private static let spaces = [UInt8](repeating: 0x20, count: 128)

    private init(baseLevel: Int, capacity: Int) {
        self.baseLevel = baseLevel
        bytes.reserveCapacity(capacity)
    }

    /// The text of one value, indented to sit at `level` inside a larger document.
    static func bytes<T: Encodable>(_ value: T, level: Int = 0, capacity: Int = 256) throws -> [UInt8] {
        let w = JSONWriter(baseLevel: level, capacity: capacity)
        try JSONWriterEncoder.value(value, writer: w)
        w.close(to: 0)
        return w.bytes
    }

    /// Encodes one value and returns its text.
    static func encode<T: Encodable>(_ value: T, level: Int = 0) throws -> String {
        String(decoding: try bytes(value, level: level), as: UTF8.self)
    }

    var depth: Int { stack.count }

    func newline(_ level: Int) {
        bytes.append(0x0A)
        var n = 2 * (level + baseLevel)
        while n > 0 {
            let k = min(n, Self.spaces.count)
            bytes.append(contentsOf: Self.spaces[0..<k])
            n -= k
        }
    }

    /// Closes every container deeper than `depth`.
    func close(to depth: Int) {
        while stack.count > depth {
            let top = stack.removeLast()
            if top.count > 0 { newline(stack.count) }
            bytes.append(top.object ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }
    }

    /// Starts an element of the container at `depth` (1-based: the container's own depth).
    func element(in depth: Int, key: String?) {
        close(to: depth)
        guard depth > 0 else { return }
        if stack[depth - 1].count > 0 { bytes.append(UInt8(ascii: ",")) }
        stack[depth - 1].count += 1
        newline(depth)
        if let key { keyBytes(key) }
    }

    private func keyBytes(_ name: String) {
        let start = bytes.count
        bytes.append(0x22)
        SnakeCase.append(name, to: &bytes)
        if bytes[(start + 1)...].contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            // A key that needs escaping (no property name does): written as a string.
            let text = String(decoding: bytes[(start + 1)...], as: UTF8.self)
            bytes.removeSubrange(start...)
            string(text)
        } else {
            bytes.append(0x22)
        }
        bytes.append(contentsOf: [0x3A, 0x20])  // ": "
    }

    func open(object: Bool) {
        bytes.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
        stack.append((object, 0))
    }

    func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    /// Decimal digits, written in place.
    func integer<I: BinaryInteger>(_ value: I) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            if let m = UInt64(exactly: value.magnitude) { return unsigned(m) }
            return raw(String(value.magnitude))
        }
        if let u = UInt64(exactly: value) { unsigned(u) } else { raw(String(value)) }
    }

    private func unsigned(_ value: UInt64) {
        var v = value
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            repeat {
                buf[23 - n] = UInt8(truncatingIfNeeded: v % 10) &+ 0x30
                v /= 10
                n += 1
            } while v > 0
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(24 - n)...]))
        }
    }

    func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            bytes.append(0x22)
            var clean = true
            for b in utf8 where b < 0x20 || b == 0x22 || b == 0x5C {
                clean = false
                break
            }
            if clean {
                // Nothing to escape (the usual case): one copy.
                bytes.append(contentsOf: utf8)
                bytes.append(0x22)
                return
            }
            for b in utf8 {
                switch b {
                case 0x22: bytes.append(contentsOf: [0x5C, 0x22])
                case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, 0x6E])
                case 0x0D: bytes.append(contentsOf: [0x5C, 0x72])
                case 0x09: bytes.append(contentsOf: [0x5C, 0x74])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0x0f)]])
                default: bytes.append(b)
                }
            }
            bytes.append(0x22)
        }
    }

    /// A time as its ISO 8601 string (as `Timestamp.encode` writes it), without the string.
    func timestamp(_ t: Timestamp) {
        bytes.append(0x22)
        t.withISO8601 { bytes.append(contentsOf: $0) }
        bytes.append(0x22)
    }

    func double(_ d: Double) {
        guard d.isFinite else { return raw("null") }
        if d == d.rounded(), abs(d) < 1e15 { return integer(Int64(d)) }
        raw(String(d))
    }
}

/// camelCase property names as snake_case JSON keys, by Foundation's convertToSnakeCase
/// rule: a word starts at an uppercase letter after a lowercase letter or a digit, or at the
/// last capital of a run followed by a lowercase letter ("sameSideLastIPID" →
/// "same_side_last_ipid", "answersSYN" → "answers_syn"). Property names are ASCII; any other
/// byte is kept as it is.
enum SnakeCase {
    static func append(_ name: String, to out: inout [UInt8]) {
        var name = name
        name.withUTF8 { utf8 in
            for (i, b) in utf8.enumerated() {
                if isUpper(b) && i > 0 {
                    let prev = utf8[i - 1]
                    let nextIsLower = i + 1 < utf8.count && isLower(utf8[i + 1])
                    if isLower(prev) || isDigit(prev) || (isUpper(prev) && nextIsLower) { out.append(UInt8(ascii: "_")) }
                }
                out.append(isUpper(b) ? b | 0x20 : b)
            }
        }
    }

    @inline(__always) private static func isUpper(_ b: UInt8) -> Bool { b >= 0x41 && b <= 0x5A }
    @inline(__always) private static func isLower(_ b: UInt8) -> Bool { b >= 0x61 && b <= 0x7A }
    @inline(__always) private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}

struct JSONWriterEncoder: Encoder {
    let writer: JSONWriter
    /// The depth of the container that holds the value being encoded.
    let depth: Int
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        writer.open(object: true)
        return KeyedEncodingContainer(Keyed<Key>(writer: writer, depth: writer.depth, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        writer.open(object: false)
        return Unkeyed(writer: writer, depth: writer.depth, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        Single(writer: writer, codingPath: codingPath)
    }

    /// Writes a value whose element header was just written. Primitives are told apart by
    /// their metatype, which costs far less than a dynamic cast.
    static func value<T: Encodable>(_ v: T, writer w: JSONWriter) throws {
        if T.self == String.self {
            w.string(unsafeBitCast(v, to: String.self))
        } else if T.self == Bool.self {
            w.raw((unsafeBitCast(v, to: Bool.self)) ? "true" : "false")
        } else if T.self == Int.self {
            w.integer(unsafeBitCast(v, to: Int.self))
        } else if T.self == Int64.self {
            w.integer(unsafeBitCast(v, to: Int64.self))
        } else if T.self == UInt8.self {
            w.integer(unsafeBitCast(v, to: UInt8.self))
        } else if T.self == UInt16.self {
            w.integer(unsafeBitCast(v, to: UInt16.self))
        } else if T.self == UInt32.self {
            w.integer(unsafeBitCast(v, to: UInt32.self))
        } else if T.self == UInt64.self {
            w.integer(unsafeBitCast(v, to: UInt64.self))
        } else if T.self == Int32.self {
            w.integer(unsafeBitCast(v, to: Int32.self))
        } else if T.self == Double.self {
            w.double(unsafeBitCast(v, to: Double.self))
        } else if T.self == Timestamp.self {
            w.timestamp(unsafeBitCast(v, to: Timestamp.self))
        } else if T.self == FrameRef.self {
            // The commonest objects of a report, written as their Codable forms would be
            // without a keyed container (a heap box each).
            let f = unsafeBitCast(v, to: FrameRef.self)
            w.open(object: true)
            let d = w.depth
            w.element(in: d, key: "frame")
            w.integer(f.frame)
            w.element(in: d, key: "time")
            w.timestamp(f.time)
        } else if T.self == Endpoint.self {
            let e = unsafeBitCast(v, to: Endpoint.self)
            w.open(object: true)
            let d = w.depth
            w.element(in: d, key: "address")
            w.string(e.address.description)
            w.element(in: d, key: "port")
            w.integer(e.port)
        } else {
            try v.encode(to: JSONWriterEncoder(writer: w, depth: w.depth, codingPath: []))
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let writer: JSONWriter
        let depth: Int
        var codingPath: [any CodingKey]

        func name(_ key: Key) -> String { key.stringValue }

        mutating func encodeNil(forKey key: Key) throws {
            writer.element(in: depth, key: name(key))
            writer.raw("null")
        }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            writer.element(in: depth, key: name(key))
            try JSONWriterEncoder.value(value, writer: writer)
        }

        // The concrete overloads the synthesized `encode(to:)` calls: no dynamic casts.
        mutating func encode(_ value: String, forKey key: Key) throws {
            writer.element(in: depth, key: name(key))
            writer.string(value)
        }
        mutating func encode(_ value: Bool, forKey key: Key) throws {
            writer.element(in: depth, key: name(key))
            writer.raw(value ? "true" : "false")
        }
        mutating func encode(_ value: Int, forKey key: Key) throws { try integer(value, key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { try integer(value, key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { try integer(value, key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { try integer(value, key) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { try integer(value, key) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { try integer(value, key) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { try integer(value, key) }
        mutating func encode(_ value: Double, forKey key: Key) throws {
            writer.element(in: depth, key: name(key))
            writer.double(value)
        }

        // Optional fields: skipped when nil (as the synthesized code expects), no casts otherwise.
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) }
        }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) }
        }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { if let value { try integer(value, key) } }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { if let value { try integer(value, key) } }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { if let value { try integer(value, key) } }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { if let value { try integer(value, key) } }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { if let value { try integer(value, key) } }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) }
        }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) }
        }

        func integer<I: BinaryInteger>(_ value: I, _ key: Key) throws {
            writer.element(in: depth, key: name(key))
            writer.integer(value)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            writer.element(in: depth, key: name(key))
            writer.open(object: true)
            return KeyedEncodingContainer(
                Keyed<NestedKey>(writer: writer, depth: writer.depth, codingPath: []))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            writer.element(in: depth, key: name(key))
            writer.open(object: false)
            return Unkeyed(writer: writer, depth: writer.depth, codingPath: [])
        }

        mutating func superEncoder() -> any Encoder {
            writer.element(in: depth, key: "super")
            return JSONWriterEncoder(writer: writer, depth: depth, codingPath: codingPath)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            writer.element(in: depth, key: name(key))
            return JSONWriterEncoder(writer: writer, depth: depth, codingPath: [])
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let writer: JSONWriter
        let depth: Int
        var codingPath: [any CodingKey]
        var count = 0

        init(writer: JSONWriter, depth: Int, codingPath: [any CodingKey]) {
            self.writer = writer
            self.depth = depth
            self.codingPath = codingPath
        }

        mutating func encodeNil() throws {
            writer.element(in: depth, key: nil)
            writer.raw("null")
            count += 1
        }

        mutating func encode<T: Encodable>(_ value: T) throws {
            writer.element(in: depth, key: nil)
            try JSONWriterEncoder.value(value, writer: writer)
            count += 1
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
            -> KeyedEncodingContainer<NestedKey>
        {
            writer.element(in: depth, key: nil)
            count += 1
            writer.open(object: true)
            return KeyedEncodingContainer(Keyed<NestedKey>(writer: writer, depth: writer.depth, codingPath: codingPath))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            writer.element(in: depth, key: nil)
            count += 1
            writer.open(object: false)
            return Unkeyed(writer: writer, depth: writer.depth, codingPath: codingPath)
        }

        mutating func superEncoder() -> any Encoder {
            writer.element(in: depth, key: nil)
            count += 1
            return JSONWriterEncoder(writer: writer, depth: depth, codingPath: codingPath)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let writer: JSONWriter
        var codingPath: [any CodingKey]

        mutating func encodeNil() throws { writer.raw("null") }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try JSONWriterEncoder.value(value, writer: writer)
        }
    }
}
