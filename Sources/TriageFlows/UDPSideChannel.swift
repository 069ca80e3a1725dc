import DequeModule
import TriageCapture
import TriageDecoding

/// RDP's UDP transport (MS-RDPEMT, MS-RDPEUDP) beside a TCP attempt: after the connection
/// sequence the client opens UDP to the server's RDP port; the server answers when UDP is
/// enabled and reaches the client. Unanswered datagrams mean UDP is blocked on the path or
/// off on the server: a slower session over TCP, not a failed connection.
public struct UDPTransportFacts: Sendable, Codable, Equatable {
    /// The client's first datagram to the server's port.
    public var firstFromClient: FrameRef
    public var fromClient: Int
    /// The server's first datagram back to the client; nil when none was captured.
    public var firstFromServer: FrameRef?
    public var fromServer: Int

    public var answered: Bool { firstFromServer != nil }
}

/// UDP datagrams between clients and servers' RDP ports, per (client address, server
/// endpoint), bounded: the oldest pair is forgotten first. A TCP attempt takes the entry
/// whose first datagram fell within its lifetime.
final class UDPSideChannelTable {
    struct Key: Hashable {
        var client: IPAddress
        var server: Endpoint
    }

    struct Entry {
        var facts: UDPTransportFacts
        var lastFromClient: Timestamp
    }

    let capacity: Int
    private var entries: [Key: Entry] = [:]
    private var order: Deque<Key> = []

    /// Datagrams this long after the pair's last one from the client start a new exchange (a
    /// later session's).
    static let newExchangeSeconds = 120.0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// A datagram from `source` to `destination`: the server's answer when the pair is
    /// known with the source as server, else the client's datagram to a server port.
    func record(source: Endpoint, destination: Endpoint, sourceIsRDPPort: Bool, destinationIsRDPPort: Bool,
                at ref: FrameRef) {
        if sourceIsRDPPort {
            let k = Key(client: destination.address, server: source)
            if var e = entries[k] {
                e.facts.fromServer += 1
                if e.facts.firstFromServer == nil { e.facts.firstFromServer = ref }
                entries[k] = e
                return
            }
        }
        guard destinationIsRDPPort else { return }
        let k = Key(client: source.address, server: destination)
        if var e = entries[k], ref.time.seconds(since: e.lastFromClient) < Self.newExchangeSeconds {
            e.facts.fromClient += 1
            e.lastFromClient = ref.time
            entries[k] = e
            return
        }
        if entries[k] == nil {
            while entries.count >= capacity, let old = order.popFirst() { entries[old] = nil }
            // Keys taken by attempts stay in the order until they come up: drop them before
            // the order outgrows the table.
            if order.count >= 2 * capacity { order = Deque(order.filter { entries[$0] != nil }) }
            order.append(k)
        }
        entries[k] = Entry(
            facts: UDPTransportFacts(firstFromClient: ref, fromClient: 1, firstFromServer: nil, fromServer: 0),
            lastFromClient: ref.time)
    }

    /// The exchange of `client` with `server` whose first datagram came between `from` and
    /// `to` (an attempt's first and last frames), taken out of the table.
    func take(client: IPAddress, server: Endpoint, from: Timestamp, to: Timestamp) -> UDPTransportFacts? {
        let k = Key(client: client, server: server)
        guard let e = entries[k], e.facts.firstFromClient.time >= from, e.facts.firstFromClient.time <= to else {
            return nil
        }
        entries[k] = nil
        return e.facts
    }
}
