/// Where an export finds the key-log lines of one connection (`KeyLog` read from files,
/// `GrowingKeyTable` while live).
public protocol KeyLineSource: Sendable {
    /// The lines for one connection, by its ClientHello random (hex).
    func lines(forClientRandom random: String) -> [String]
}

/// An NSS key log (the SSLKEYLOGFILE format): `LABEL <client_random hex> <secret hex>` per
/// line, `#` comments. Only used to hand the lines of exported connections on with a
/// ticket; rdptriage never prints a secret.
public struct KeyLog: KeyLineSource {
    /// Lines by client random (lowercase hex), in file order.
    public private(set) var lines: [String: [String]] = [:]
    /// Lines that were not `LABEL random secret`.
    public private(set) var malformedLines = 0

    /// Labels of TLS 1.2 and TLS 1.3 key logs (NSS key log format).
    public static let labels: Set<String> = [
        "CLIENT_RANDOM", "CLIENT_EARLY_TRAFFIC_SECRET", "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
        "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET", "RSA",
    ]

    public init(text: String) {
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, Self.labels.contains(String(fields[0])), fields[1].allSatisfy(\.isHexDigit),
                fields[2].allSatisfy(\.isHexDigit)
            else {
                malformedLines += 1
                continue
            }
            lines[fields[1].lowercased(), default: []].append(String(line))
        }
    }

    /// The lines for one connection, by its ClientHello random.
    public func lines(forClientRandom random: String) -> [String] { lines[random.lowercased()] ?? [] }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
