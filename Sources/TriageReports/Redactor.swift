import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// Replaces addresses, host names and user names with pseudonyms, consistently: the same
/// value always gets the same pseudonym within a run, and pseudonyms are handed out in
/// order of first appearance, so the same input gives the same output every time.
///
/// IPv4 addresses become 198.18.x.y (RFC 2544 benchmarking space), IPv6 addresses
/// 2001:db8:ffff::n, names `host-N`, users `user-N`: still valid where a pcap header
/// needs an address.
public final class Redactor {
    private var addresses: [IPAddress: IPAddress] = [:]
    private var names: [String: String] = [:]
    private var replacements: [(String, String, Boundary)] = []
    private var sorted = true
    private var hostCount = 0
    private var userCount = 0
    private var macs: [[UInt8]: [UInt8]] = [:]
    /// Every registered name and its pseudonym, for the same-length forms used in pcaps.
    private var namePseudonyms: [(String, String)] = []

    enum Boundary {
        case ipv4
        case ipv6
        case name
    }

    public init() {}

    /// The pseudonym for an address (registering it if new).
    public func pseudonym(for a: IPAddress) -> IPAddress {
        if let p = addresses[a] { return p }
        let n = UInt64(addresses.count + 1)
        let p: IPAddress =
            a.isIPv6
            ? IPAddress(ipv6High: 0x2001_0db8_ffff_0000, low: n)
            : IPAddress(ipv4: 0xC612_0000 | UInt32(truncatingIfNeeded: n & 0xffff))
        addresses[a] = p
        add(a.description, p.description, a.isIPv6 ? .ipv6 : .ipv4)
        return p
    }

    public func registerHost(_ name: String) {
        let n = name.trimmed
        guard n.count >= 2, names[n.lowercased()] == nil, IPAddress(n) == nil else { return }
        hostCount += 1
        let p = "host-\(hostCount)"
        names[n.lowercased()] = p
        namePseudonyms.append((n, p))
        add(n, p, .name)
        if n.lowercased() != n { add(n.lowercased(), p, .name) }
    }

    public func registerUser(_ name: String) {
        let n = name.trimmed
        guard !n.isEmpty, names[n.lowercased()] == nil else { return }
        userCount += 1
        let p = "user-\(userCount)"
        names[n.lowercased()] = p
        namePseudonyms.append((n, p))
        add(n, p, .name)
    }

    /// Registers everything identifying in an attempt.
    public func register(_ a: Attempt) {
        let f = a.facts
        _ = pseudonym(for: f.tcp.client.address)
        _ = pseudonym(for: f.tcp.server.address)
        for e in f.tcp.icmp { _ = pseudonym(for: e.reporter) }
        for d in f.dns {
            registerHost(d.name)
            for alias in d.aliases { registerHost(alias) }
            _ = pseudonym(for: d.address)
            _ = pseudonym(for: d.resolver)
            _ = pseudonym(for: d.asker)
        }
        if let cookie = f.rdp.connectionRequest?.cookie {
            // The cookie is `mstshash=NAME`; NAME is often DOMAIN\user or the user.
            registerUser(cookie)
            if let user = cookie.split(separator: "\\").last, user.count < cookie.count { registerUser(String(user)) }
        }
        if let token = f.rdp.connectionRequest?.routingToken { registerHost(token) }
        if let name = f.rdp.mcsConnectInitial?.clientName { registerHost(name) }
        if let sni = f.rdp.tls?.clientHello?.serverName { registerHost(sni) }
        for c in (f.rdp.tls?.certificates ?? []) + (f.rdp.mcsConnectResponse?.certificates ?? []) {
            for cn in Self.commonNames(c.subject) + Self.commonNames(c.issuer) { registerHost(cn) }
            for san in c.subjectAlternativeNames { registerHost(san) }
        }
    }

    /// The same pseudonyms for the bytes of an exported capture: addresses in IP headers
    /// (and in ICMP-quoted headers), MAC addresses, and names inside payloads replaced by
    /// strings of the same length (ASCII, UTF-16LE and DNS label forms), so no length or
    /// sequence number changes.
    public func packetRewrite() -> PacketRewrite {
        var pairs: [([UInt8], [UInt8])] = []
        for (original, pseudonym) in namePseudonyms {
            let same = Self.sameLength(original, pseudonym)
            for (o, p) in [(original, same), (original.lowercased(), same.lowercased()), (original.uppercased(), same.uppercased())] {
                pairs.append((Array(o.utf8), Array(p.utf8)))
                pairs.append((Self.utf16le(o), Self.utf16le(p)))
                if o.contains("."), let ol = Self.dnsLabels(o), let pl = Self.dnsLabels(p) { pairs.append((ol, pl)) }
            }
            // A name shown with `\xNN` escapes (Printable.escaping) is found in the frames by
            // its original bytes, with a pseudonym of their length.
            if let raw = Printable.unescaped(original) {
                let shape = String(raw.map { $0 == UInt8(ascii: ".") ? "." : "a" })
                let p = Array(Self.sameLength(shape, pseudonym).utf8)
                pairs.append((raw, p))
                if let rl = Self.dnsLabels(bytes: raw), let pl = Self.dnsLabels(bytes: p) { pairs.append((rl, pl)) }
            }
        }
        // Longest first, so a name is not half-replaced by a shorter one inside it.
        pairs.sort { $0.0.count > $1.0.count }
        return PacketRewrite(
            address: { [self] in pseudonym(for: $0) },
            mac: { [self] in mac($0) },
            replacements: pairs)
    }

    func mac(_ m: [UInt8]) -> [UInt8] {
        if m.allSatisfy({ $0 == 0 }) || m.allSatisfy({ $0 == 0xff }) { return m }
        if let p = macs[m] { return p }
        let n = macs.count + 1
        let p: [UInt8] = [0x02, 0, 0, 0, UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        macs[m] = p
        return p
    }

    /// A pseudonym of exactly the original's length that keeps its dots: the pseudonym's
    /// letters and digits fill the other positions, then `x`.
    static func sameLength(_ original: String, _ pseudonym: String) -> String {
        var fill = Array(pseudonym.filter { $0.isLetter || $0.isNumber })
        let slots = original.filter { $0 != "." }.count
        if fill.count > slots, let digits = Int(String(pseudonym.filter(\.isNumber))) {
            // Too short for the whole pseudonym: a letter and the number in base 36.
            fill = Array(String(pseudonym.first ?? "x") + String(digits, radix: 36))
        }
        var it = fill.makeIterator()
        return String(original.map { $0 == "." ? "." : (it.next() ?? "x") })
    }

    static func utf16le(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } }

    /// `a.b` as DNS labels (RFC 1035 3.1): length-prefixed, without the root.
    static func dnsLabels(bytes: [UInt8]) -> [UInt8]? {
        guard bytes.contains(UInt8(ascii: ".")) else { return nil }
        var out: [UInt8] = []
        for label in bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count < 64 else { return nil }
            out.append(UInt8(label.count))
            out += label
        }
        return out
    }

    static func dnsLabels(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        for label in s.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count < 64 else { return nil }
            out.append(UInt8(label.utf8.count))
            out += Array(label.utf8)
        }
        return out
    }

    /// `CN=name` values in a distinguished name.
    static func commonNames(_ dn: String) -> [String] {
        dn.split(separator: ",").compactMap { part in
            let p = part.trimmingCharacters(in: " ")
            guard p.hasPrefix("CN=") else { return nil }
            return String(p.dropFirst(3))
        }
    }

    private func add(_ original: String, _ pseudonym: String, _ b: Boundary) {
        replacements.append((original, pseudonym, b))
        sorted = false
    }

    /// Applies every replacement registered so far.
    public func apply(_ text: String) -> String {
        if !sorted {
            // Longest first, so 10.0.0.10 is replaced before 10.0.0.1 could match inside it.
            replacements.sort { $0.0.count > $1.0.count }
            sorted = true
        }
        var out = text
        for (original, pseudonym, boundary) in replacements where out.contains(original) {
            out = Self.replace(original, with: pseudonym, in: out, boundary: boundary)
        }
        return out
    }

    static func replace(_ target: String, with replacement: String, in text: String, boundary: Boundary) -> String {
        let t = Array(text.utf8)
        let n = Array(target.utf8)
        guard n.count <= t.count else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(t.count)
        var i = 0
        while i < t.count {
            if i + n.count <= t.count && t[i] == n[0] && t[i..<(i + n.count)].elementsEqual(n)
                && isBoundary(i > 0 ? t[i - 1] : nil, boundary) && isBoundary(i + n.count < t.count ? t[i + n.count] : nil, boundary)
            {
                out.append(contentsOf: replacement.utf8)
                i += n.count
            } else {
                out.append(t[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isBoundary(_ c: UInt8?, _ b: Boundary) -> Bool {
        guard let c else { return true }
        let digit = c >= 48 && c <= 57
        let alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
        switch b {
        case .ipv4: return !(digit || c == UInt8(ascii: "."))
        case .ipv6: return !(digit || alpha || c == UInt8(ascii: ":"))
        case .name: return !(digit || alpha || c == UInt8(ascii: "-") || c == UInt8(ascii: "_"))
        }
    }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
