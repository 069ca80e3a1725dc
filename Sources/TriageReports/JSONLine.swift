import TriageCapture

/// Compact JSON written straight into bytes, with the keys the caller names: schema 2's
/// names are chosen for consumers (schema/rdptriage-report-v2.schema.json), never derived
/// from property names, and writing them by hand skips `Encodable`'s containers.
///
/// One flag tracks commas for every depth: after a container closes, its parent holds at
/// least that container, so the next element there needs a comma too.
struct JSONLine: ~Copyable {
    var out: OutputBytes
    private var first = true

    init(capacity: Int = 2048) { out = OutputBytes(capacity: capacity) }

    @inline(__always) private mutating func comma() {
        if first { first = false } else { out.append(UInt8(ascii: ",")) }
    }

    mutating func key(_ k: StaticString) {
        comma()
        out.append(0x22)
        k.withUTF8Buffer { out.append(UnsafeRawBufferPointer($0)) }
        out.append(0x22, 0x3A)
    }

    /// A key that is not a literal (written escaped).
    mutating func key(string k: String) {
        comma()
        string(k)
        out.append(0x3A)
    }

    /// Writes members into an object opened elsewhere, after members already written.
    mutating func continueObject() { first = false }

    /// Starts an array element.
    mutating func element() { comma() }

    mutating func open() {
        out.append(UInt8(ascii: "{"))
        first = true
    }
    mutating func close() {
        out.append(UInt8(ascii: "}"))
        first = false
    }
    mutating func openArray() {
        out.append(UInt8(ascii: "["))
        first = true
    }
    mutating func closeArray() {
        out.append(UInt8(ascii: "]"))
        first = false
    }

    mutating func object(_ k: StaticString) {
        key(k)
        open()
    }
    mutating func array(_ k: StaticString) {
        key(k)
        openArray()
    }

    mutating func null() { out.append("null") }
    mutating func bool(_ v: Bool) { out.append(v ? "true" : "false") }
    mutating func int<I: BinaryInteger>(_ v: I) {
        if let i = Int64(exactly: v) { out.append(decimal: i) } else { out.append(String(v)) }
    }
    /// A finite number as JSON writes it; null otherwise (NaN and infinities are not JSON).
    mutating func double(_ d: Double) {
        guard d.isFinite else { return null() }
        if d == d.rounded(), abs(d) < 1e15 { return out.append(decimal: Int64(d)) }
        out.append(String(d))
    }
    mutating func time(_ t: Timestamp) {
        out.append(0x22)
        t.withISO8601 { out.append($0) }
        out.append(0x22)
    }

    /// A JSON string, escaped (`OutputBytes.appendJSONString`).
    mutating func string(_ s: String) {
        out.appendJSONString(s)
    }

    // Key and value in one call.
    mutating func string(_ k: StaticString, _ v: String) {
        key(k)
        string(v)
    }
    mutating func int<I: BinaryInteger>(_ k: StaticString, _ v: I) {
        key(k)
        int(v)
    }
    mutating func bool(_ k: StaticString, _ v: Bool) {
        key(k)
        bool(v)
    }
    mutating func time(_ k: StaticString, _ t: Timestamp) {
        key(k)
        time(t)
    }
    mutating func double(_ k: StaticString, _ v: Double) {
        key(k)
        double(v)
    }
    mutating func null(_ k: StaticString) {
        key(k)
        null()
    }
    /// The string, or null.
    mutating func string(_ k: StaticString, orNull v: String?) {
        key(k)
        if let v { string(v) } else { null() }
    }
    /// Only when present: optional facts are left out when unknown.
    mutating func string(_ k: StaticString, ifPresent v: String?) { if let v { string(k, v) } }
    mutating func int<I: BinaryInteger>(_ k: StaticString, ifPresent v: I?) { if let v { int(k, v) } }
    mutating func strings(_ k: StaticString, _ v: [String]) {
        array(k)
        for s in v {
            element()
            string(s)
        }
        closeArray()
    }

    /// A member whose value is JSON encoded elsewhere (rare facts, not worth hand-written keys).
    mutating func raw(_ k: StaticString, _ json: [UInt8]) {
        key(k)
        for b in json { out.append(b) }
    }

    /// The line's bytes, ending in a newline when `newline` is set.
    mutating func finish(newline: Bool) -> [UInt8] {
        if newline { out.append(0x0A) }
        return out.array
    }
}
