import TriageCapture

/// What a protocol parser tells the reassembler after it looked at new bytes.
public struct StreamDisposition: Sendable {
    /// Leading bytes the parser is done with; the rest stay buffered and are offered again
    /// together with the next bytes (a PDU split across segments).
    public var consumed: Int
    /// `false` once the parser needs no more bytes in this direction: the reassembler then
    /// stops copying payload, which keeps long sessions cheap.
    public var wantsMore: Bool

    public init(consumed: Int, wantsMore: Bool) {
        self.consumed = consumed
        self.wantsMore = wantsMore
    }
}

/// Receives a session's reassembled bytes, per direction, in order (gopacket's "stream").
/// The tracker makes one per session through a `StreamConsumerFactory`.
public protocol StreamConsumer: AnyObject {
    /// New contiguous bytes are available: `bytes` starts at stream offset `offset`.
    /// The buffer is borrowed for the duration of the call.
    func receive(_ bytes: UnsafeRawBufferPointer, offset: Int64, direction: Direction, session: TCPSession)
        -> StreamDisposition
    /// Bytes `[offset, offset + length)` will never arrive (lost, not captured, cut by the
    /// snapshot length). Unconsumed bytes before the gap were already offered.
    func gap(at offset: Int64, length: Int64, direction: Direction, session: TCPSession)
    /// The buffer limit was reached at `offset`: nothing more is delivered in this direction.
    func cut(at offset: Int64, direction: Direction, session: TCPSession)
}

/// Makes the per-session stream consumer.
public protocol StreamConsumerFactory: AnyObject {
    func makeConsumer(for session: TCPSession) -> any StreamConsumer
}
