import Testing
import TriageDecoding

@testable import TriageFlows

/// Flow keys are looked up for every packet with their own hash (not Hasher's): it must
/// not depend on the direction, and must spread keys that differ in any field.
@Suite struct FlowKeyTests {
    static func endpoint(_ v4: UInt32, _ port: UInt16) -> Endpoint { Endpoint(IPAddress(ipv4: v4), port) }

    @Test func bothDirectionsAreOneKey() {
        let a = Self.endpoint(0xC000_020A, 50000)
        let b = Self.endpoint(0xC633_6414, 3389)
        #expect(FlowKey(a, b) == FlowKey(b, a))
        for seed in [0, 1, -1, 0x5EED] {
            #expect(FlowKey(a, b)._rawHashValue(seed: seed) == FlowKey(b, a)._rawHashValue(seed: seed))
        }
        var d: [FlowKey: Int] = [:]
        d[FlowKey(a, b)] = 1
        #expect(d[FlowKey(b, a)] == 1)
    }

    @Test func keysDifferingInOneFieldSpreadOut() {
        // Neighbouring ports, addresses and IPv4/IPv6 twins: the usual shape of a capture.
        var keys: [FlowKey] = []
        let server = Self.endpoint(0xC633_6414, 3389)
        for port in UInt16(40000)..<UInt16(45000) { keys.append(FlowKey(Self.endpoint(0xC000_020A, port), server)) }
        for host in UInt32(0)..<5000 { keys.append(FlowKey(Self.endpoint(0xC612_0000 + host, 50000), server)) }
        for host in UInt64(0)..<2000 {
            keys.append(FlowKey(Endpoint(IPAddress(ipv6High: 0x2001_0DB8_0000_0000, low: host), 50000), server))
        }
        #expect(Set(keys).count == keys.count)
        for seed in [0, 12345] {
            let hashes = keys.map { $0._rawHashValue(seed: seed) }
            #expect(Set(hashes).count == keys.count, "no full 64-bit collisions")
            // The low bits pick the bucket: they must spread too.
            let buckets = Set(hashes.map { $0 & 0xFFFF })
            #expect(buckets.count > keys.count * 8 / 10)
        }
        #expect(keys[0]._rawHashValue(seed: 0) != keys[0]._rawHashValue(seed: 1), "the seed matters")
    }
}
