/// A bounds-checked reader over borrowed bytes: the only way decoders read input.
///
/// The small reads are always inlined: called out of line they were a fifth of the
/// decoder's instructions (every field of every packet goes through them).
///
/// Every read returns `nil` when the bytes are not there instead of trapping, so a
/// decoder cannot crash on truncated or hostile input. The cursor borrows the buffer:
/// it must not outlive the call that lent it (libpcap's packet buffer, a session's
/// reassembly buffer), and values that must outlive it are copied out explicitly.
public struct ByteCursor {
    public let base: UnsafeRawBufferPointer
    /// Offset of the next byte to read, relative to `base`.
    public private(set) var offset: Int
    /// One past the last readable byte (a cursor can be limited to a sub-range).
    public let end: Int

    public init(_ base: UnsafeRawBufferPointer) {
        self.base = base
        self.offset = 0
        self.end = base.count
    }

    public init(_ base: UnsafeRawBufferPointer, from start: Int, to end: Int) {
        self.base = base
        let e = max(0, min(end, base.count))
        self.end = e
        self.offset = max(0, min(start, e))
    }

    @inlinable public var remaining: Int { end - offset }
    @inlinable public var isEmpty: Bool { offset >= end }

    /// A cursor over the next `count` bytes, without advancing this one.
    @inline(__always) public func peekSlice(_ count: Int) -> ByteCursor? {
        guard count >= 0, count <= remaining else { return nil }
        return ByteCursor(base, from: offset, to: offset + count)
    }

    /// A cursor over the next `count` bytes; this cursor advances past them.
    @inline(__always) public mutating func readSlice(_ count: Int) -> ByteCursor? {
        guard let s = peekSlice(count) else { return nil }
        offset += count
        return s
    }

    /// The rest of this cursor as a new cursor; this one ends up empty.
    @inline(__always) public mutating func readRest() -> ByteCursor {
        let s = ByteCursor(base, from: offset, to: end)
        offset = end
        return s
    }

    @inline(__always) public mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, count <= remaining else { return false }
        offset += count
        return true
    }

    @inline(__always) public func peekUInt8(at delta: Int = 0) -> UInt8? {
        guard delta >= 0, delta < remaining else { return nil }
        return base[offset + delta]
    }

    @inline(__always) public mutating func readUInt8() -> UInt8? {
        guard offset < end else { return nil }
        defer { offset += 1 }
        return base[offset]
    }

    @inline(__always) public func peekUInt16BE(at delta: Int = 0) -> UInt16? {
        guard delta >= 0, delta <= remaining - 2 else { return nil }
        let p = offset + delta
        return UInt16(base[p]) << 8 | UInt16(base[p + 1])
    }

    @inline(__always) public mutating func readUInt16BE() -> UInt16? {
        guard let v = peekUInt16BE() else { return nil }
        offset += 2
        return v
    }

    @inline(__always) public mutating func readUInt16LE() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(base[offset]) | UInt16(base[offset + 1]) << 8
    }

    @inline(__always) public func peekUInt32BE(at delta: Int = 0) -> UInt32? {
        guard delta >= 0, delta <= remaining - 4 else { return nil }
        let p = offset + delta
        return UInt32(base[p]) << 24 | UInt32(base[p + 1]) << 16 | UInt32(base[p + 2]) << 8 | UInt32(base[p + 3])
    }

    @inline(__always) public mutating func readUInt32BE() -> UInt32? {
        guard let v = peekUInt32BE() else { return nil }
        offset += 4
        return v
    }

    @inline(__always) public mutating func readUInt32LE() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(base[offset]) | UInt32(base[offset + 1]) << 8 | UInt32(base[offset + 2]) << 16
            | UInt32(base[offset + 3]) << 24
    }

    @inline(__always) public mutating func readUInt24BE() -> UInt32? {
        guard remaining >= 3 else { return nil }
        defer { offset += 3 }
        return UInt32(base[offset]) << 16 | UInt32(base[offset + 1]) << 8 | UInt32(base[offset + 2])
    }

    @inline(__always) public mutating func readUInt64BE() -> UInt64? {
        guard let hi = peekUInt32BE(), let lo = peekUInt32BE(at: 4) else { return nil }
        offset += 8
        return UInt64(hi) << 32 | UInt64(lo)
    }

    /// Copies the next `count` bytes out (for values that outlive the borrowed buffer).
    public mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= remaining else { return nil }
        defer { offset += count }
        return Array(UnsafeRawBufferPointer(rebasing: base[offset..<offset + count]))
    }

    /// All remaining bytes, copied.
    public func copyRemaining() -> [UInt8] {
        guard remaining > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(rebasing: base[offset..<end]))
    }

    /// The remaining bytes, borrowed (valid as long as `base`).
    public var remainingBytes: UnsafeRawBufferPointer {
        guard remaining > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: base[offset..<end])
    }
}

extension ByteCursor {
    /// Runs `body` on a copy and commits the copy's position only when it returns a value,
    /// so a composite read that fails leaves the cursor where it was.
    public mutating func transaction<T>(_ body: (inout ByteCursor) -> T?) -> T? {
        var copy = self
        guard let v = body(&copy) else { return nil }
        self = copy
        return v
    }
}

/// Runs `body` with a cursor over `bytes`.
public func withCursor<R>(_ bytes: [UInt8], _ body: (inout ByteCursor) throws -> R) rethrows -> R {
    try bytes.withUnsafeBytes { raw in
        var c = ByteCursor(raw)
        return try body(&c)
    }
}

public func withCursor<R>(_ bytes: ArraySlice<UInt8>, _ body: (inout ByteCursor) throws -> R) rethrows -> R {
    try bytes.withUnsafeBytes { raw in
        var c = ByteCursor(raw)
        return try body(&c)
    }
}
