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

    init(baseLevel: Int = 0) {
        self.baseLevel = baseLevel
        bytes.reserveCapacity(4096)
    }

    /// Encodes one value and returns its text.
    static func encode<T: Encodable>(_ value: T, level: Int = 0) throws -> String {
        let w = JSONWriter(baseLevel: level)
        try value.encode(to: JSONWriterEncoder(writer: w, depth: 0, codingPath: []))
        w.close(to: 0)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    var depth: Int { stack.count }

    func newline(_ level: Int) {
        bytes.append(0x0A)
        for _ in 0..<(2 * (level + baseLevel)) { bytes.append(0x20) }
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
        if let key {
            string(key)
            bytes.append(contentsOf: [0x3A, 0x20])  // ": "
        }
    }

    func open(object: Bool) {
        bytes.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
        stack.append((object, 0))
    }

    func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    func string(_ s: String) {
        bytes.append(0x22)
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
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

    func double(_ d: Double) {
        guard d.isFinite else { return raw("null") }
        if d == d.rounded(), abs(d) < 1e15 { return raw(String(Int64(d))) }
        raw(String(d))
    }
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

    /// Writes a value whose element header was just written.
    static func value<T: Encodable>(_ v: T, writer w: JSONWriter, path: [any CodingKey]) throws {
        switch v {
        case let s as String: w.string(s)
        case let b as Bool: w.raw(b ? "true" : "false")
        case let i as Int: w.raw(String(i))
        case let i as Int64: w.raw(String(i))
        case let i as UInt8: w.raw(String(i))
        case let i as UInt16: w.raw(String(i))
        case let i as UInt32: w.raw(String(i))
        case let i as UInt64: w.raw(String(i))
        case let i as Int32: w.raw(String(i))
        case let d as Double: w.double(d)
        default: try v.encode(to: JSONWriterEncoder(writer: w, depth: w.depth, codingPath: path))
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let writer: JSONWriter
        let depth: Int
        var codingPath: [any CodingKey]

        func name(_ key: Key) -> String { SnakeCase.name(key.stringValue) }

        mutating func encodeNil(forKey key: Key) throws {
            writer.element(in: depth, key: name(key))
            writer.raw("null")
        }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            writer.element(in: depth, key: name(key))
            try JSONWriterEncoder.value(value, writer: writer, path: codingPath + [key])
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
            writer.raw(String(value))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            writer.element(in: depth, key: name(key))
            writer.open(object: true)
            return KeyedEncodingContainer(
                Keyed<NestedKey>(writer: writer, depth: writer.depth, codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            writer.element(in: depth, key: name(key))
            writer.open(object: false)
            return Unkeyed(writer: writer, depth: writer.depth, codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder {
            writer.element(in: depth, key: "super")
            return JSONWriterEncoder(writer: writer, depth: depth, codingPath: codingPath)
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            writer.element(in: depth, key: name(key))
            return JSONWriterEncoder(writer: writer, depth: depth, codingPath: codingPath + [key])
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
            try JSONWriterEncoder.value(value, writer: writer, path: codingPath)
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
            try JSONWriterEncoder.value(value, writer: writer, path: codingPath)
        }
    }
}
