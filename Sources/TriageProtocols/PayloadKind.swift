import TriageDecoding

/// Tells RDP from another service by the first bytes a side sends (FACTS.md section 6,
/// "the service on the port is not RDP": HTTP, an SSH banner, garbage).
///
/// A pure function of a prefix: the state machine calls it again while more of the
/// stream's first bytes arrive, so the answer does not depend on how TCP cut them.
public enum PayloadClassifier {
    /// The most bytes looked at, and the longest banner kept.
    public static let window = 80

    /// HTTP request methods, plus RD Gateway's `RDG_OUT_DATA` / `RDG_IN_DATA` (MS-TSGU 2.2.5.1).
    static let httpStarts: [[UInt8]] = [
        "HTTP/", "GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "TRACE ", "PATCH ",
        "RDG_OUT_DATA ", "RDG_IN_DATA ",
    ].map { Array($0.utf8) }
    static let sshStart = Array("SSH-".utf8)

    /// The kind of the bytes at the cursor (the start of a direction's stream).
    public static func classify(_ c: ByteCursor) -> PayloadKind? {
        guard let first = c.peekUInt8() else { return nil }
        if first == TPKTHeader.version && (c.remaining < 2 || c.peekUInt8(at: 1) == 0) {
            // TPKT, then X.224: length indicator at 4, TPDU code at 5.
            guard let code = c.peekUInt8(at: 5) else { return .x224Other }
            switch code & 0xF0 {
            case X224TPDUCode.connectionRequest.rawValue: return .x224ConnectionRequest
            case X224TPDUCode.connectionConfirm.rawValue: return .x224ConnectionConfirm
            default: return .x224Other
            }
        }
        if TLSRecord.looksLikeRecord(c) { return .tls }
        if httpStarts.contains(where: { c.hasPrefix($0) }) { return .http }
        if c.hasPrefix(sshStart) { return .ssh }
        let n = min(c.remaining, window)
        for i in 0..<n {
            guard let b = c.peekUInt8(at: i) else { break }
            if !(isPrintable(b) || b == 0x09 || b == 0x0A || b == 0x0D) { return .binary }
        }
        return .text
    }

    /// Whether more bytes could change `classify`'s answer or the banner: fewer than
    /// `window` bytes and no line end yet. Binary is settled from four bytes on: TPKT and
    /// TLS show in the first four, and a non-printable byte rules out HTTP, SSH and text.
    public static func wantsMoreBytes(_ c: ByteCursor) -> Bool {
        guard c.remaining < window else { return false }
        if c.remaining >= 4 && classify(c) == .binary { return false }
        for i in 0..<c.remaining where c.peekUInt8(at: i) == 0x0A || c.peekUInt8(at: i) == 0x0D { return false }
        return true
    }

    /// The printable prefix (at most `window` characters, no control characters), e.g.
    /// `SSH-2.0-OpenSSH_9.2p1`; nil when the first byte is not printable.
    public static func banner(_ c: ByteCursor) -> String? {
        var n = 0
        while n < min(c.remaining, window), let b = c.peekUInt8(at: n), isPrintable(b) { n += 1 }
        guard n > 0, let prefix = c.peekSlice(n) else { return nil }
        return prefix.asciiString(limit: n)
    }

    @inline(__always)
    static func isPrintable(_ b: UInt8) -> Bool { b >= 0x20 && b < 0x7F }
}
