import TriageDecoding

/// Why a parser could not produce a value. Three outcomes, kept apart on purpose
/// (STYLE.md 14): wait for more bytes, the bytes are wrong, or the bytes are valid but
/// use something this parser does not implement (not the peer's fault).
///
/// Offsets are relative to the start of the cursor the parser was given.
public enum ParseError: Error, Equatable, Sendable {
    /// The PDU is not complete yet. `atLeast` is the smallest total size (from the start
    /// of the PDU) that could complete it, when the header told us; otherwise the bytes
    /// available plus one.
    case needMore(atLeast: Int)
    /// The bytes contradict the specification at `offset`.
    case malformed(String, offset: Int)
    /// Valid-looking bytes that this parser does not handle (an optional feature, a
    /// variant encoding) at `offset`.
    case unsupported(String, offset: Int)

    /// One line for notes and test failures.
    public var summary: String {
        switch self {
        case .needMore(let n): "need at least \(n) bytes"
        case .malformed(let what, let offset): "malformed at +\(offset): \(what)"
        case .unsupported(let what, let offset): "unsupported at +\(offset): \(what)"
        }
    }

    public var isNeedMore: Bool {
        if case .needMore = self { return true }
        return false
    }
}

/// Field reads inside a PDU whose length is already known to be complete: running out of
/// bytes there means the PDU contradicts its own length, so the error is `malformed`.
/// The field's name is only made when the read fails (some are built per extension).
extension ByteCursor {
    @inline(__always)
    mutating func u8(_ what: @autoclosure () -> String) throws(ParseError) -> UInt8 {
        guard let v = readUInt8() else { throw .malformed("truncated \(what())", offset: offset) }
        return v
    }

    @inline(__always)
    mutating func u16le(_ what: @autoclosure () -> String) throws(ParseError) -> UInt16 {
        guard let v = readUInt16LE() else { throw .malformed("truncated \(what())", offset: offset) }
        return v
    }

    @inline(__always)
    mutating func u16be(_ what: @autoclosure () -> String) throws(ParseError) -> UInt16 {
        guard let v = readUInt16BE() else { throw .malformed("truncated \(what())", offset: offset) }
        return v
    }

    @inline(__always)
    mutating func u24be(_ what: @autoclosure () -> String) throws(ParseError) -> UInt32 {
        guard let v = readUInt24BE() else { throw .malformed("truncated \(what())", offset: offset) }
        return v
    }

    @inline(__always)
    mutating func u32le(_ what: @autoclosure () -> String) throws(ParseError) -> UInt32 {
        guard let v = readUInt32LE() else { throw .malformed("truncated \(what())", offset: offset) }
        return v
    }

    @inline(__always)
    mutating func slice(_ count: Int, _ what: @autoclosure () -> String) throws(ParseError) -> ByteCursor {
        guard let v = readSlice(count) else {
            throw .malformed("\(what()) needs \(count) bytes, \(remaining) left", offset: offset)
        }
        return v
    }

    @inline(__always)
    mutating func skipBytes(_ count: Int, _ what: @autoclosure () -> String) throws(ParseError) {
        guard skip(count) else { throw .malformed("\(what()) needs \(count) bytes, \(remaining) left", offset: offset) }
    }

    /// Whether the next bytes equal `literal`.
    func hasPrefix(_ literal: [UInt8]) -> Bool {
        guard literal.count <= remaining else { return false }
        for (i, b) in literal.enumerated() where peekUInt8(at: i) != b { return false }
        return true
    }

    /// Index (relative to the cursor) of the first CR LF, if any.
    func indexOfCRLF() -> Int? {
        var i = 0
        while i + 1 < remaining {
            if peekUInt8(at: i) == 0x0D && peekUInt8(at: i + 1) == 0x0A { return i }
            i += 1
        }
        return nil
    }
}
