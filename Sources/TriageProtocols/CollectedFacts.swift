import TriageCapture
import TriageDecoding
import TriageFlows

/// What the layers of one connection's parser have read, shared by all of them: each layer
/// writes its own members of `RDPFacts` and adds notes here, and keeps its state apart.
struct CollectedFacts: Sendable {
    static let maxNotes = 16

    /// Everything read, without the facts derived from several records at once.
    var facts = RDPFacts()
    /// Frame number of each note (for their order).
    var noteFrames: [Int] = []

    /// Adds a note, kept in frame order so that the order the two directions were read in
    /// does not show.
    mutating func note(_ direction: Direction, _ at: FrameRef?, _ event: ParserEvent) {
        guard facts.notes.count < Self.maxNotes else { return }
        let key = at?.frame ?? Int.max
        var i = noteFrames.count
        while i > 0 && noteFrames[i - 1] > key { i -= 1 }
        noteFrames.insert(key, at: i)
        facts.notes.insert(ParserNote(side: direction.sender, at: at, event: event), at: i)
    }

    /// Changes the TLS facts in place, making them on first use: reading a field through the
    /// optional (`facts.tls?.x`) copied the whole value, a few hundred bytes and a retain
    /// of each of its arrays, several times per record.
    mutating func withTLS<R>(_ body: (inout TLSFacts) -> R) -> R {
        if case .none = facts.tls { facts.tls = TLSFacts() }
        return body(&facts.tls!)
    }
}
