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
}
