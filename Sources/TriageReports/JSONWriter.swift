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
    @exclusivity(unchecked) private var out: OutputBytes
    /// Open containers: object or array, and how many elements each has so far.
    @exclusivity(unchecked) private var stack: [(object: Bool, count: Int)] = []
    /// Indentation of the outermost container, for values embedded in a larger document.
    let baseLevel: Int
    /// One line, no spaces between tokens (NDJSON).
    let compact: Bool

    private init(baseLevel: Int, capacity: Int, compact: Bool = false) {
        self.baseLevel = baseLevel
        self.compact = compact
        out = OutputBytes(capacity: capacity)
        stack.reserveCapacity(16)
    }

    /// The text of one value, indented to sit at `level` inside a larger document.
    static func bytes<T: Encodable>(_ value: T, level: Int = 0, capacity: Int = 256) throws -> [UInt8] {
        let w = JSONWriter(baseLevel: level, capacity: capacity)
        try JSONWriterEncoder.value(value, writer: w)
        w.close(to: 0)
        return w.out.array
    }

    /// The text of one value on one line, without spaces between tokens.
    static func compactBytes<T: Encodable>(_ value: T, capacity: Int = 256) throws -> [UInt8] {
        let w = JSONWriter(baseLevel: 0, capacity: capacity, compact: true)
        try JSONWriterEncoder.value(value, writer: w)
        w.close(to: 0)
        return w.out.array
    }

    /// Encodes one value and returns its text.
    static func encode<T: Encodable>(_ value: T, level: Int = 0) throws -> String {
        String(decoding: try bytes(value, level: level), as: UTF8.self)
    }

    var depth: Int { stack.count }

    func newline(_ level: Int) {
        if compact { return }
        out.append(0x0A)
        out.append(repeating: 0x20, count: 2 * (level + baseLevel))
    }

    /// Closes every container deeper than `depth`.
    func close(to depth: Int) {
        while stack.count > depth {
            let top = stack.removeLast()
            if top.count > 0 { newline(stack.count) }
            out.append(top.object ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }
    }

    /// Starts an element of the container at `depth` (1-based: the container's own depth).
    func element(in depth: Int, key: String?) {
        close(to: depth)
        guard depth > 0 else { return }
        if stack[depth - 1].count > 0 { out.append(UInt8(ascii: ",")) }
        stack[depth - 1].count += 1
        newline(depth)
        if let key { keyBytes(key) }
    }

    private func keyBytes(_ name: String) {
        let start = out.count
        out.append(0x22)
        SnakeCase.append(name, to: &out)
        if out.needsEscaping(from: start + 1) {
            // A key that needs escaping (no property name does): written as a string.
            let text = out.text(from: start + 1)
            out.truncate(to: start)
            string(text)
        } else {
            out.append(0x22)
        }
        if compact { out.append(0x3A) } else { out.append(0x3A, 0x20) }  // ": "
    }

    func open(object: Bool) {
        out.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
        stack.append((object, 0))
    }

    func raw(_ s: StaticString) {
        s.withUTF8Buffer { out.append(UnsafeRawBufferPointer($0)) }
    }

    func raw(_ s: String) { out.append(s) }

    /// Decimal digits, written in place.
    func integer<I: BinaryInteger>(_ value: I) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            if let m = UInt64(exactly: value.magnitude) { return out.append(decimal: m) }
            return raw(String(value.magnitude))
        }
        if let u = UInt64(exactly: value) { out.append(decimal: u) } else { raw(String(value)) }
    }

    func string(_ s: String) {
        out.appendJSONString(s)
    }

    /// A time as its ISO 8601 string (as `Timestamp.encode` writes it), without the string.
    func timestamp(_ t: Timestamp) {
        out.append(0x22)
        t.withISO8601 { out.append($0) }
        out.append(0x22)
    }

    func double(_ d: Double) {
        guard d.isFinite else { return raw("null") }
        if d == d.rounded(), abs(d) < 1e15 { return integer(Int64(d)) }
        raw(String(d))
    }
}

/// A growable byte buffer written through a pointer: one capacity check per write, where
/// an array checks uniqueness and capacity for every byte (most of a report is written a
/// byte or a few at a time).
struct OutputBytes: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inline(__always) private mutating func reserve(_ n: Int) {
        if n > capacity &- count { grow(n) }
    }

    @inline(never) private mutating func grow(_ n: Int) {
        var newCapacity = capacity
        while n > newCapacity - count { newCapacity *= 2 }
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        p.initialize(from: base, count: count)
        base.deallocate()
        base = p
        capacity = newCapacity
    }

    @inline(__always) mutating func append(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count &+= 1
    }

    @inline(__always) mutating func append(_ a: UInt8, _ b: UInt8) {
        reserve(2)
        base[count] = a
        base[count &+ 1] = b
        count &+= 2
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let src = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + count).copyMemory(from: src, byteCount: bytes.count)
        count += bytes.count
    }

    mutating func append(repeating b: UInt8, count n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).update(repeating: b, count: n)
        count += n
    }

    mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// An address as `description` writes it; an IPv4 one in place (reports name both ends
    /// of every attempt, and an endpoint's string of more than 15 bytes is allocated).
    mutating func append(address a: IPAddress) {
        guard !a.isIPv6 else { return append(a.description) }
        reserve(15)
        count &+= IPAddress.writeDottedQuad(a.ipv4, into: UnsafeMutableRawBufferPointer(start: base + count, count: 15))
    }

    /// An endpoint as `description` writes it (`a.b.c.d:port`, `[v6]:port`).
    mutating func append(endpoint e: Endpoint) {
        guard !e.address.isIPv6 else { return append(e.description) }
        append(address: e.address)
        append(UInt8(ascii: ":"))
        append(decimal: UInt64(e.port))
    }

    /// Decimal digits, written in place.
    mutating func append(decimal value: UInt64) {
        reserve(20)
        count = writeDecimal(value, into: UnsafeMutableRawBufferPointer(start: base, count: capacity), at: count)
    }

    /// Signed decimal digits, as `String(value)` writes them.
    mutating func append(decimal value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        append(decimal: UInt64(value.magnitude))
    }

    mutating func append(decimal value: Int) { append(decimal: Int64(value)) }

    /// Pads what was written since `start` with spaces to `width` characters (counted as
    /// Unicode scalars: UTF-8 lead bytes).
    mutating func pad(from start: Int, to width: Int) {
        var scalars = 0
        var i = max(start, 0)
        while i < count {
            if base[i] & 0xC0 != 0x80 { scalars += 1 }
            i += 1
        }
        append(repeating: 0x20, count: width - scalars)
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    mutating func truncate(to n: Int) { count = min(max(n, 0), count) }

    /// Whether the bytes from `start` on hold any a JSON string must escape.
    func needsEscaping(from start: Int) -> Bool {
        var i = max(start, 0)
        while i < count {
            let b = base[i]
            if b < 0x20 || b == 0x22 || b == 0x5C { return true }
            i += 1
        }
        return false
    }

    func text(from start: Int) -> String {
        let s = min(max(start, 0), count)
        return String(decoding: UnsafeBufferPointer(start: base + s, count: count - s), as: UTF8.self)
    }

    var array: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }
}

/// camelCase property names as snake_case JSON keys, by Foundation's convertToSnakeCase
/// rule: a word starts at an uppercase letter after a lowercase letter or a digit, or at the
/// last capital of a run followed by a lowercase letter ("sameSideLastIPID" →
/// "same_side_last_ipid", "answersSYN" → "answers_syn"). Property names are ASCII; any other
/// byte is kept as it is.
enum SnakeCase {
    static func append(_ name: String, to out: inout OutputBytes) {
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

extension OutputBytes {
    /// A JSON string: quotes, backslashes and control characters escaped (as `\u00XX` past
    /// the short forms), everything else as UTF-8, so no capture byte can end the string or the
    /// line. Both JSON writers use it.
    mutating func appendJSONString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            self.append(0x22)
            var clean = true
            for b in utf8 where b < 0x20 || b == 0x22 || b == 0x5C {
                clean = false
                break
            }
            if clean {
                self.append(UnsafeRawBufferPointer(utf8))
                self.append(0x22)
                return
            }
            for b in utf8 {
                switch b {
                case 0x22: self.append(0x5C, 0x22)
                case 0x5C: self.append(0x5C, 0x5C)
                case 0x0A: self.append(0x5C, 0x6E)
                case 0x0D: self.append(0x5C, 0x72)
                case 0x09: self.append(0x5C, 0x74)
                case 0..<0x20:
                    let hex: StaticString = "0123456789abcdef"
                    self.append(0x5C, 0x75)
                    self.append(0x30, 0x30)
                    self.append(hex.utf8Start[Int(b >> 4)], hex.utf8Start[Int(b & 0x0f)])
                default: self.append(b)
                }
            }
            self.append(0x22)
        }
    }
}
