import Testing

@testable import TriageProtocols

@Suite struct KeyLogTests {
    @Test func linesByClientRandom() {
        let a = String(repeating: "ab", count: 32)
        let b = String(repeating: "CD", count: 32)
        let text = """
            # SSL/TLS secrets log file
            CLIENT_HANDSHAKE_TRAFFIC_SECRET \(a) 0011
            SERVER_HANDSHAKE_TRAFFIC_SECRET \(a) 2233
            CLIENT_RANDOM \(b) 4455
            garbage line
            CLIENT_RANDOM nothex 00
            """
        let log = KeyLog(text: text)
        #expect(log.lines(forClientRandom: a).count == 2)
        #expect(log.lines(forClientRandom: b.lowercased()) == ["CLIENT_RANDOM \(b) 4455"])
        #expect(log.lines(forClientRandom: "00").isEmpty)
        #expect(log.malformedLines == 2)
    }

    /// Live `--export` takes each connection's `.keys` lines from the growing table instead of
    /// reading the key-log files again: kept as written, bounded per connection and evicted
    /// with the connection's secrets.
    @Test func growingTableKeepsEachConnectionsLines() {
        let r = ["11", "22", "33"].map { String(repeating: $0, count: 32) }
        let secret = String(repeating: "ab", count: 48)
        let table = GrowingKeyTable(capacity: 2, keepLines: true)
        table.add(keyLog: "CLIENT_RANDOM \(r[0]) \(secret)\n")
        table.add(keyLog: "# a comment\nCLIENT_RANDOM \(r[1].uppercased()) \(secret)\n")
        #expect(table.lines(forClientRandom: r[0].uppercased()) == ["CLIENT_RANDOM \(r[0]) \(secret)"])
        #expect(table.lines(forClientRandom: r[1]) == ["CLIENT_RANDOM \(r[1].uppercased()) \(secret)"])
        let many = (0..<20).map { _ in "CLIENT_HANDSHAKE_TRAFFIC_SECRET \(r[1]) \(secret)" }.joined(separator: "\n")
        table.add(keyLog: many + "\n")
        #expect(table.lines(forClientRandom: r[1]).count == GrowingKeyTable.maxLinesPerConnection)
        // A third connection evicts the first: its lines go with its secrets.
        table.add(keyLog: "CLIENT_RANDOM \(r[2]) \(secret)\n")
        #expect(table.lines(forClientRandom: r[0]).isEmpty)
        #expect(table.lines(forClientRandom: r[2]).count == 1)
        let plain = GrowingKeyTable()
        plain.add(keyLog: "CLIENT_RANDOM \(r[0]) \(secret)\n")
        #expect(plain.count == 1 && plain.lines(forClientRandom: r[0]).isEmpty)
    }
}
