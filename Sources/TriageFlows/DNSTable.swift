import DequeModule
import TriageCapture
import TriageDecoding

/// A DNS answer that mapped a name to an address, kept so a verdict can say which name
/// led the client to the server it failed to reach.
public struct DNSResolution: Sendable, Codable, Hashable {
    /// The name the client asked for.
    public var name: String
    public var address: IPAddress
    public var ttl: UInt32
    /// CNAMEs followed from `name` to the address record, in order.
    public var aliases: [String]
    public var response: FrameRef
    public var query: FrameRef?
    /// The DNS server that answered.
    public var resolver: IPAddress
    /// The client that asked.
    public var asker: IPAddress
}

/// A DNS response that carried an error (NXDOMAIN, SERVFAIL, ...).
public struct DNSFailure: Sendable, Codable, Hashable {
    public var name: String
    public var rcode: UInt8
    public var response: FrameRef
    public var resolver: IPAddress
    public var asker: IPAddress
}

/// Recent DNS answers, bounded: the oldest are forgotten first.
public final class DNSTable {
    public let capacity: Int
    private var byAddress: [IPAddress: [DNSResolution]] = [:]
    private var order: Deque<IPAddress> = []
    public private(set) var failures: Deque<DNSFailure> = []
    private var queries: [QueryKey: FrameRef] = [:]
    private var queryOrder: Deque<QueryKey> = []
    public private(set) var responses = 0
    public private(set) var malformed = 0

    struct QueryKey: Hashable {
        var id: UInt16
        var asker: IPAddress
    }

    public init(capacity: Int = 4096) { self.capacity = capacity }

    /// Records a DNS message seen on UDP port 53.
    func record(_ bytes: UnsafeRawBufferPointer, from source: IPAddress, to destination: IPAddress, fromServer: Bool,
                at ref: FrameRef) {
        guard let header = try? DNSMessage.header(bytes) else {
            malformed += 1
            return
        }
        if !header.isResponse {
            // A query: its ID and asker are all we keep, read without decoding names.
            let k = QueryKey(id: header.id, asker: source)
            if queries[k] == nil {
                queries[k] = ref
                queryOrder.append(k)
                if queryOrder.count > capacity, let old = queryOrder.popFirst() { queries[old] = nil }
            }
            return
        }
        guard fromServer else { return }
        let message: DNSMessage
        do {
            message = try DNSMessage.decode(bytes)
        } catch {
            malformed += 1
            return
        }
        responses += 1
        let query = queries[QueryKey(id: message.id, asker: destination)]
        let asked = message.questionName ?? message.answers.first?.name ?? ""
        if message.rcode != 0 {
            failures.append(DNSFailure(name: asked, rcode: message.rcode, response: ref, resolver: source, asker: destination))
            if failures.count > 256 { failures.removeFirst() }
            return
        }
        var aliases: [String] = []
        for a in message.answers {
            if let t = a.target { aliases.append(t) }
            guard let address = a.address else { continue }
            let r = DNSResolution(
                name: asked, address: address, ttl: a.ttl, aliases: aliases, response: ref, query: query,
                resolver: source, asker: destination)
            if byAddress[address] == nil { order.append(address) }
            byAddress[address, default: []].append(r)
            if byAddress[address]!.count > 8 { byAddress[address]!.removeFirst() }
        }
        while order.count > capacity, let old = order.popFirst() { byAddress[old] = nil }
    }

    /// Answers that pointed at `address`, received by `asker` at or before `time`.
    public func resolutions(of address: IPAddress, askedBy asker: IPAddress? = nil, before time: Timestamp) -> [DNSResolution] {
        (byAddress[address] ?? []).filter { $0.response.time <= time && (asker == nil || $0.asker == asker!) }
    }
}
