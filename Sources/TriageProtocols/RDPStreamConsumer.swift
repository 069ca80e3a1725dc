import TriageFlows

/// The session tracker's consumer for RDP: hands each direction's reassembled bytes to
/// `RDPConnectionParser` and exposes its facts. A thin adapter; the logic is in the parser.
///
/// Use: `SessionTracker(..., factory: RDPConsumerFactory(), ...)`, then for a finished
/// session `(session.consumer as? RDPStreamConsumer)?.facts`.
public final class RDPStreamConsumer: StreamConsumer {
    private var parser: RDPConnectionParser

    /// Everything learned about the session so far (complete once the session is finished).
    public var facts: RDPFacts { parser.facts }
    /// PDUs read so far (see `RDPConnectionParser.pdusRead`).
    public var pdusRead: Int { parser.pdusRead }
    /// Live: what the engine had seen (PDUs read and packets) when this open connection was
    /// last classified and was no success yet (set and read on the packet thread only).
    public var classifiedAt = -1

    /// `startsMidStream`: the session's SYN was not captured (see `RDPConnectionParser`).
    public init(startsMidStream: Bool = false, afterSOCKS5Greeting: Bool = false, keys: TLSKeyMaterial? = nil) {
        parser = RDPConnectionParser(startsMidStream: startsMidStream, afterSOCKS5Greeting: afterSOCKS5Greeting, keys: keys)
    }

    public func receive(_ bytes: UnsafeRawBufferPointer, offset: Int64, direction: Direction, session: TCPSession)
        -> StreamDisposition
    {
        parser.receive(bytes, offset: offset, direction: direction) { session.frame(at: $0, direction: direction) }
    }

    public func gap(at offset: Int64, length: Int64, direction: Direction, session: TCPSession) {
        parser.gap(at: offset, length: length, direction: direction) { session.frame(at: $0, direction: direction) }
    }

    public func cut(at offset: Int64, direction: Direction, session: TCPSession) {
        parser.cut(at: offset, direction: direction)
    }
}

/// Makes one `RDPStreamConsumer` per session (gopacket's stream factory).
public final class RDPConsumerFactory: StreamConsumerFactory {
    /// Key material for every session's TLS layer (nil: nothing is decrypted).
    let keys: TLSKeyMaterial?

    public init(keys: TLSKeyMaterial? = nil) {
        self.keys = keys
    }

    public func makeConsumer(for session: TCPSession) -> any StreamConsumer {
        // Only a session found by its port can start inside a PDU; one found by its
        // Connection Request starts at it.
        RDPStreamConsumer(startsMidStream: session.roleSource == .port, afterSOCKS5Greeting: session.socks5GreetingSkipped, keys: keys)
    }
}
