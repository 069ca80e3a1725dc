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
    private var counters: [String: Int] = [:]
    private var macs: [[UInt8]: [UInt8]] = [:]

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
        add(n, p, .name)
        if n.lowercased() != n { add(n.lowercased(), p, .name) }
    }

    public func registerUser(_ name: String) { register(name, prefix: "user", minimum: 1) }

    /// The DOMAIN of `DOMAIN\user`.
    public func registerDomain(_ name: String) { register(name, prefix: "domain", minimum: 1) }

    /// Values that identify a host without being text anyone reads: certificate serial
    /// numbers and fingerprints.
    func registerToken(_ value: String, prefix: String) { register(value, prefix: prefix, minimum: 2) }

    private func register(_ name: String, prefix: String, minimum: Int) {
        let n = name.trimmed
        guard n.count >= minimum, names[n.lowercased()] == nil else { return }
        let count = (counters[prefix] ?? 0) + 1
        counters[prefix] = count
        let p = "\(prefix)-\(count)"
        names[n.lowercased()] = p
        add(n, p, .name)
    }

    /// A name that may be an address literal (an SNI, a SAN): an address gets the
    /// address's pseudonym.
    func registerHostOrAddress(_ name: String) {
        if let a = IPAddress(name.trimmed) { _ = pseudonym(for: a) } else { registerHost(name) }
    }

    /// A cookie's IDENTIFIER: `DOMAIN\user`, `user@domain` or a user name, each part
    /// with its own pseudonym (the separator stays, so the report still shows the form).
    func registerCookie(_ cookie: String) {
        if let slash = cookie.firstIndex(of: "\\") {
            registerDomain(String(cookie[..<slash]))
            registerUser(String(cookie[cookie.index(after: slash)...]))
        } else if let at = cookie.firstIndex(of: "@"), at != cookie.startIndex, cookie.index(after: at) != cookie.endIndex {
            registerUser(String(cookie[..<at]))
            registerHost(String(cookie[cookie.index(after: at)...]))
        } else {
            registerUser(cookie)
        }
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
        if let cookie = f.rdp.connectionRequest?.cookie { registerCookie(cookie) }
        // Through a proxy, the target named in its request (an address or a name).
        if let target = f.rdp.proxy?.request?.host { registerHostOrAddress(target) }
        if let token = f.rdp.connectionRequest?.routingToken { registerHost(token) }
        if let name = f.rdp.mcsConnectInitial?.clientName { registerHost(name) }
        if let sni = f.rdp.tls?.clientHello?.serverName { registerHostOrAddress(sni) }
        for c in (f.rdp.tls?.certificates ?? []) + (f.rdp.mcsConnectResponse?.certificates ?? []) {
            for value in Self.nameValues(c.subject) + Self.nameValues(c.issuer) { registerHost(value) }
            for san in c.subjectAlternativeNames {
                let value = san.split(separator: ":", maxSplits: 1).count == 2 && !san.hasPrefix("DirName:")
                    ? String(san.split(separator: ":", maxSplits: 1)[1]) : san
                registerHostOrAddress(value)
            }
            registerToken(c.serialNumber, prefix: "serial")
            registerToken(c.sha256, prefix: "sha256")
        }
        // Names read inside TLS with a key log (NTLM AUTHENTICATE and CHALLENGE).
        for r in f.rdp.decrypted?.tsRequests ?? [] {
            if let k = r.kerberos { registerKerberos(k) }
            guard let n = r.ntlm else { continue }
            if let v = n.user { registerUser(v) }
            if let v = n.domain { registerDomain(v) }
            for v in [n.workstation, n.targetName, n.netbiosComputer, n.netbiosDomain, n.dnsComputer, n.dnsDomain] {
                if let v { registerHost(v) }
            }
        }
    }

    /// Kerberos names read inside TLS: realms like domains, the principal's host like a host,
    /// a KRB-ERROR's client name like a user. The service (`TERMSRV`) stays: it names no one.
    /// A principal of one part names an account (a user, or a machine's `NAME$`): like a user.
    func registerKerberos(_ k: KerberosFacts) {
        for realm in [k.realm, k.clientRealm] { if let realm { registerDomain(realm) } }
        if let spn = k.servicePrincipal {
            let parts = spn.split(separator: "/")
            if parts.count == 1 { registerUser(spn) }
            for part in parts.dropFirst() { registerHostOrAddress(String(part)) }
        }
        if let c = k.clientName {
            let parts = c.split(separator: "/")
            if let user = parts.first { registerUser(String(user)) }
            for part in parts.dropFirst() { registerHostOrAddress(String(part)) }
        }
    }

    /// The pseudonym for a name a parser found in an exported frame (registering it if new).
    func pseudonym(for field: NameField) -> String {
        let key = field.shown.trimmed.lowercased()
        if let p = names[key] { return p }
        switch field.kind {
        case .user: registerUser(field.shown)
        case .domain: registerDomain(field.shown)
        case .host:
            if let a = IPAddress(field.shown.trimmed) { return pseudonym(for: a).description }
            registerHost(field.shown)
        case .serial: registerToken(field.shown, prefix: "serial")
        }
        // Too short to register (a one-letter host): still overwritten.
        return names[key] ?? "x"
    }

    /// The same pseudonyms for the bytes of an exported capture: addresses in IP headers
    /// (and in ICMP-quoted headers and DNS answers), MAC addresses, and names where the
    /// parsers found them, overwritten with the same length so no length or sequence
    /// number changes.
    public func packetRewrite() -> PacketRewrite {
        PacketRewrite(
            address: { [self] in pseudonym(for: $0) },
            mac: { [self] in mac($0) },
            name: { [self] in pseudonym(for: $0) })
    }

    func mac(_ m: [UInt8]) -> [UInt8] {
        if m.allSatisfy({ $0 == 0 }) || m.allSatisfy({ $0 == 0xff }) { return m }
        if let p = macs[m] { return p }
        let n = macs.count + 1
        let p: [UInt8] = [0x02, 0, 0, 0, UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        macs[m] = p
        return p
    }

    /// The CN, L, O and OU values of a distinguished name as `CertificateParser` writes it
    /// (`,` between RDNs, `+` inside one, `\` escaping either), kept escaped as reports show them.
    static func nameValues(_ dn: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var escaped = false
        for ch in dn {
            if escaped {
                current.append(ch)
                escaped = false
            } else if ch == "\\" {
                current.append(ch)
                escaped = true
            } else if ch == "," || ch == "+" {
                parts.append(current)
                current = ""
            } else {
                current.append(ch)
            }
        }
        parts.append(current)
        return parts.flatMap { part -> [String] in
            let p = part.trimmed
            for prefix in ["CN=", "L=", "O=", "OU="] where p.hasPrefix(prefix) {
                let value = String(p.dropFirst(prefix.count))
                // `ncalrpc:SERVR` (Windows licensing certificates): the NetBIOS name on its own too.
                if let colon = value.lastIndex(of: ":"), value.index(after: colon) != value.endIndex {
                    return [value, String(value[value.index(after: colon)...])]
                }
                return [value]
            }
            return []
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
                && isBoundary(before: i > 0 ? t[i - 1] : nil, boundary)
                && isBoundary(after: t, at: i + n.count, boundary)
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

    static func isBoundary(before c: UInt8?, _ b: Boundary) -> Bool {
        guard let c else { return true }
        let digit = c >= 48 && c <= 57
        let alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
        switch b {
        case .ipv4: return !(digit || c == UInt8(ascii: "."))
        case .ipv6: return !(digit || alpha || c == UInt8(ascii: ":"))
        case .name: return !(digit || alpha || c == UInt8(ascii: "-") || c == UInt8(ascii: "_"))
        }
    }

    /// After an address or a name, a sentence's full stop (`... to 192.0.2.20.`) or the colon
    /// before a port (`2001:db8::20:3389`, as prose writes it) ends it; a further digit would not.
    static func isBoundary(after t: [UInt8], at j: Int, _ b: Boundary) -> Bool {
        guard j < t.count else { return true }
        let c = t[j]
        let d: UInt8? = j + 1 < t.count ? t[j + 1] : nil
        let digit = c >= 48 && c <= 57
        let alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
        let nextIsDigit = d.map { $0 >= 48 && $0 <= 57 } ?? false
        switch b {
        case .ipv4: return !(digit || (c == UInt8(ascii: ".") && nextIsDigit))
        case .ipv6:
            // `::` continues an address; `:` then a port number or text ends it.
            return !(digit || alpha || (c == UInt8(ascii: ":") && d == UInt8(ascii: ":")))
        case .name:
            // `e.g.`: the prose abbreviation, not the user `e` followed by a full stop.
            let abbreviation = c == UInt8(ascii: ".") && j + 2 < t.count && t[j + 2] == UInt8(ascii: ".")
                && (t[j + 1] | 0x20 >= 97 && t[j + 1] | 0x20 <= 122)
            return !(digit || alpha || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || abbreviation)
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
