/// How text taken from a capture is shown. Whatever a capture holds reaches a terminal, a
/// Markdown ticket or a log line, so nothing in it may act there as a control character (a
/// newline that forges a line, an escape sequence that rewrites the screen, a bidirectional
/// override that reorders what is read).
public enum Printable {
    /// Wire bytes as text: printable ASCII kept, every other byte as `\xNN` (lowercase hex).
    /// For names that are ASCII by their protocol: the X.224 cookie, SNI, DNS names.
    public static func escaping(_ bytes: UnsafeRawBufferPointer) -> String {
        // Printable ASCII, the usual name, is the string as it is. Built from bytes:
        // appending scalar by scalar cost 280 instructions a byte.
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return String(decoding: bytes, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 4)
        for b in bytes {
            if b >= 0x20 && b < 0x7F {
                out.append(b)
            } else {
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "x"), hexDigit(b >> 4), hexDigit(b & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func escaping(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { escaping($0) } }

    /// Decoded text (UTF-16 names, certificate fields, file names in messages) with its
    /// control characters (C0, DEL, C1) as `\xNN` and bidirectional controls as `\u{NNNN}`;
    /// every other character is kept.
    public static func escapingControls(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: needsEscape) else { return s }
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            guard needsEscape(c) else {
                out.append(c)
                continue
            }
            let hex = String(c.value, radix: 16)
            let text = c.value <= 0xFF ? "\\x" + (hex.count < 2 ? "0" : "") + hex : "\\u{" + hex + "}"
            out.append(contentsOf: text.unicodeScalars)
        }
        return String(out)
    }

    static func needsEscape(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0..<0x20, 0x7F...0x9F: true
        // LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; LRM, RLM, ALM.
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true
        default: false
        }
    }

    /// The bytes behind `escaping`'s text (`\xNN` read back), to find a name's original bytes
    /// in a capture. Nil when the text holds no escape.
    public static func unescaped(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count >= 4, u.contains(UInt8(ascii: "\\")) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count)
        var i = 0
        var found = false
        while i < u.count {
            if u[i] == UInt8(ascii: "\\"), i + 3 < u.count, u[i + 1] == UInt8(ascii: "x"),
                let hi = hexValue(u[i + 2]), let lo = hexValue(u[i + 3])
            {
                out.append(hi << 4 | lo)
                i += 4
                found = true
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return found ? out : nil
    }

    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 &+ v : 0x57 &+ v }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x57
        case 0x41...0x46: c - 0x37
        default: nil
        }
    }
}
