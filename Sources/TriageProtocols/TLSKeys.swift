import Crypto
import Synchronization

/// The secrets of one TLS connection from a key log, found by its ClientHello random
/// (NSS key log format; RFC 8446 7.1 names the TLS 1.3 secrets). Secrets never leave
/// this type except into the key schedule: no report or fact holds one.
public struct TLSConnectionSecrets: Sendable, Equatable {
    /// TLS 1.0-1.2: the 48-byte master secret (`CLIENT_RANDOM`).
    public var masterSecret: [UInt8]?
    /// TLS 1.3 handshake and first application traffic secrets.
    public var clientHandshake: [UInt8]?
    public var serverHandshake: [UInt8]?
    public var clientTraffic: [UInt8]?
    public var serverTraffic: [UInt8]?

    public init() {}

    var isEmpty: Bool {
        masterSecret == nil && clientHandshake == nil && serverHandshake == nil && clientTraffic == nil
            && serverTraffic == nil
    }
}

/// Key material handed from the engine to each connection's TLS layer: every key log
/// given with `--keylog` and every Decryption Secrets Block of a pcapng file, merged.
/// Immutable once built, so the packet thread reads it without locks.
public struct TLSKeyMaterial: Sendable {
    var secrets: [[UInt8]: TLSConnectionSecrets] = [:]
    /// Live captures: key-log lines that keep arriving while connections run (a client writes
    /// its key log during the session). A connection whose secrets are not known at its
    /// ServerHello waits for them here (`TLSDecryptor.Status.waitingForSecrets`).
    public var growing: GrowingKeyTable?
    /// Lines that were not `LABEL random secret` with a known label.
    public private(set) var malformedLines = 0

    public init() {}

    /// Parses NSS key log text (`#` comments; unknown labels are skipped as other tools do).
    public init(keyLog text: String) {
        add(keyLog: text)
    }

    /// Connections with at least one secret.
    public var count: Int { secrets.count }
    public var isEmpty: Bool { secrets.isEmpty }

    public mutating func add(keyLog text: String) {
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, KeyLog.labels.contains(String(fields[0])),
                let random = Self.bytes(hex: fields[1]), let secret = Self.bytes(hex: fields[2])
            else {
                malformedLines += 1
                continue
            }
            var s = secrets[random] ?? TLSConnectionSecrets()
            switch fields[0] {
            case "CLIENT_RANDOM": s.masterSecret = secret
            case "CLIENT_HANDSHAKE_TRAFFIC_SECRET": s.clientHandshake = secret
            case "SERVER_HANDSHAKE_TRAFFIC_SECRET": s.serverHandshake = secret
            case "CLIENT_TRAFFIC_SECRET_0": s.clientTraffic = secret
            case "SERVER_TRAFFIC_SECRET_0": s.serverTraffic = secret
            default: continue
            }
            secrets[random] = s
        }
    }

    public mutating func merge(_ other: TLSKeyMaterial) {
        for (random, s) in other.secrets {
            var mine = secrets[random] ?? TLSConnectionSecrets()
            mine.masterSecret = mine.masterSecret ?? s.masterSecret
            mine.clientHandshake = mine.clientHandshake ?? s.clientHandshake
            mine.serverHandshake = mine.serverHandshake ?? s.serverHandshake
            mine.clientTraffic = mine.clientTraffic ?? s.clientTraffic
            mine.serverTraffic = mine.serverTraffic ?? s.serverTraffic
            secrets[random] = mine
        }
        malformedLines += other.malformedLines
    }

    /// The secrets of the connection whose ClientHello carried `clientRandom`.
    public func secrets(clientRandom: [UInt8]) -> TLSConnectionSecrets? {
        secrets[clientRandom] ?? growing?.secrets(clientRandom: clientRandom)
    }

    static func bytes(hex: Substring) -> [UInt8]? {
        guard hex.count % 2 == 0, !hex.isEmpty else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var high: UInt8?
        for ch in hex.utf8 {
            let v: UInt8
            switch ch {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = ch - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = ch - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = ch - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return out
    }
}

/// Key-log lines read while a live capture runs, shared by every connection's decryptor: the
/// capture loop adds lines as the key-log file grows and bumps `generation`; a decryptor
/// waiting for its secrets looks again only when the generation changed (an atomic load per
/// record). Bounded: past `capacity` connections the oldest are forgotten (a client that never
/// restarts writes a few lines per connection, so this holds hours of attempts). With
/// `keepLines` (live `--export`), each connection's lines are kept too, for its `.keys` file.
public final class GrowingKeyTable: KeyLineSource {
    private struct Table {
        var secrets: [[UInt8]: TLSConnectionSecrets] = [:]
        var lines: [[UInt8]: [String]] = [:]
        var order: [[UInt8]] = []
        var first = 0
        var malformed = 0
    }
    private let table = Mutex(Table())
    private let changes = Atomic<Int>(0)
    public let capacity: Int
    public let keepsLines: Bool
    /// Lines kept per connection at most (a TLS 1.3 connection writes five or six).
    static let maxLinesPerConnection = 16

    public init(capacity: Int = 65_536, keepLines: Bool = false) {
        self.capacity = max(1, capacity)
        keepsLines = keepLines
    }

    /// Bumped whenever lines were added.
    public var generation: Int { changes.load(ordering: .acquiring) }
    public var count: Int { table.withLock { $0.secrets.count } }
    /// Lines that were not `LABEL random secret` with a known label, so far.
    public var malformedLines: Int { table.withLock { $0.malformed } }

    /// Adds complete key-log lines (NSS format, as `TLSKeyMaterial.add(keyLog:)`).
    public func add(keyLog text: String) {
        let parsed = TLSKeyMaterial(keyLog: text)
        guard !parsed.secrets.isEmpty || parsed.malformedLines > 0 else { return }
        let lines = keepsLines ? KeyLog(text: text).lines : [:]
        table.withLock { t in
            defer {
                for (hex, new) in lines {
                    guard let random = TLSKeyMaterial.bytes(hex: Substring(hex)), t.secrets[random] != nil else { continue }
                    let kept = t.lines[random] ?? []
                    t.lines[random] = kept + new.prefix(max(0, Self.maxLinesPerConnection - kept.count))
                }
            }
            t.malformed += parsed.malformedLines
            for (random, s) in parsed.secrets {
                if var mine = t.secrets[random] {
                    mine.masterSecret = s.masterSecret ?? mine.masterSecret
                    mine.clientHandshake = s.clientHandshake ?? mine.clientHandshake
                    mine.serverHandshake = s.serverHandshake ?? mine.serverHandshake
                    mine.clientTraffic = s.clientTraffic ?? mine.clientTraffic
                    mine.serverTraffic = s.serverTraffic ?? mine.serverTraffic
                    t.secrets[random] = mine
                    continue
                }
                t.secrets[random] = s
                t.order.append(random)
                if t.secrets.count > capacity, t.first < t.order.count {
                    t.secrets[t.order[t.first]] = nil
                    t.lines[t.order[t.first]] = nil
                    t.first += 1
                    if t.first > 4096 && t.first * 2 > t.order.count {
                        t.order.removeFirst(t.first)
                        t.first = 0
                    }
                }
            }
        }
        changes.add(1, ordering: .releasing)
    }

    func secrets(clientRandom: [UInt8]) -> TLSConnectionSecrets? {
        table.withLock { $0.secrets[clientRandom] }
    }

    /// The kept lines of one connection, by its ClientHello random (hex), as the key log had
    /// them (empty without `keepLines`).
    public func lines(forClientRandom random: String) -> [String] {
        guard keepsLines, let r = TLSKeyMaterial.bytes(hex: Substring(random)) else { return [] }
        return table.withLock { $0.lines[r] ?? [] }
    }
}
