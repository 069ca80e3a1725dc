import TriageCapture
import TriageDecoding

/// Which way a packet goes within a session.
public enum Direction: Int, Sendable, Codable, CaseIterable {
    case clientToServer = 0
    case serverToClient = 1

    public var reversed: Direction { self == .clientToServer ? .serverToClient : .clientToServer }
    /// The side that sends in this direction.
    public var sender: Side { self == .clientToServer ? .client : .server }
}

/// A side of a session.
public enum Side: String, Sendable, Codable {
    case client
    case server

    public var sending: Direction { self == .client ? .clientToServer : .serverToClient }
}

/// A frame number and its capture time: the unit of evidence.
public struct FrameRef: Sendable, Hashable, Codable {
    public var frame: Int
    public var time: Timestamp
    public init(frame: Int, time: Timestamp) {
        self.frame = frame
        self.time = time
    }
}

/// Times are ISO 8601 strings in JSON: readable, and exact to the nanosecond.
extension Timestamp: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let t = Timestamp(iso8601: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad time \(text)"))
        }
        self = t
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(iso8601)
    }
}

/// A TCP connection's two endpoints, in an order that does not depend on the packet's
/// direction, so both directions find the same session. A plain value: hashing it does
/// not allocate.
public struct FlowKey: Hashable, Sendable {
    public var low: Endpoint
    public var high: Endpoint

    @inline(__always)
    public init(_ a: Endpoint, _ b: Endpoint) {
        if a.address < b.address || (a.address == b.address && a.port <= b.port) {
            low = a
            high = b
        } else {
            low = b
            high = a
        }
    }

    /// For a flow key hashed as part of something else: the folded word, finished by the
    /// hasher.
    public func hash(into h: inout Hasher) {
        h.combine(_rawHashValue(seed: 0))
    }

    /// What `Dictionary` and `Set` call: the hasher's set-up and finalisation cost more than
    /// a flow lookup should (a tenth of the packet path), so the key is mixed here with the
    /// table's per-run seed through three rounds of a 64-bit finaliser; colliding keys would
    /// have to be crafted without knowing the seed.
    public func _rawHashValue(seed: Int) -> Int {
        var x = Self.mix(UInt64(UInt(bitPattern: seed)) ^ low.address.low)
        x = Self.mix(x ^ high.address.low ^ (UInt64(low.port) << 48 | UInt64(high.port) << 32))
        x = Self.mix(x ^ low.address.high ^ (high.address.high << 29 | high.address.high >> 35)
            ^ (low.address.isIPv6 ? 1 : 0))
        return Int(bitPattern: UInt(truncatingIfNeeded: x))
    }

    /// MurmurHash3's 64-bit finaliser (every input bit affects every output bit).
    @inline(__always)
    static func mix(_ v: UInt64) -> UInt64 {
        var x = v
        x ^= x >> 33
        x &*= 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x &*= 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }
}

extension Endpoint: Codable {
    enum CodingKeys: String, CodingKey { case address, port }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let text = try c.decode(String.self, forKey: .address)
        guard let a = IPAddress(text) else {
            throw DecodingError.dataCorruptedError(forKey: .address, in: c, debugDescription: "bad address \(text)")
        }
        self.init(a, try c.decode(UInt16.self, forKey: .port))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(address.description, forKey: .address)
        try c.encode(port, forKey: .port)
    }
}
