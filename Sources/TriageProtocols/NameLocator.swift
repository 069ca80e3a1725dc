import SwiftASN1
import TriageDecoding

/// Finds the names in the start of an RDP connection's byte streams, with the parsers that
/// read them for the report, so a redacted export overwrites those fields and nothing else:
/// the cookie or routing token of the X.224 Connection Request (MS-RDPBCGR 2.2.1.1), the
/// ClientHello's server_name (RFC 6066 3), the client name of the MCS Connect Initial
/// (MS-RDPBCGR 2.2.1.3.2), and the names and serial numbers of the server's certificates,
/// in a TLS Certificate message (RFC 5246 7.4.2) or the MCS Connect Response's chain
/// (MS-RDPBCGR 2.2.1.4.3.1). Encrypted records and anything after the connection's first
/// PDUs are not read. Ranges are offsets into the given stream.
public enum NameLocator {
    /// The client's stream from its first byte.
    public static func clientStream(_ stream: [UInt8]) -> [NameField] {
        // RDP through a proxy: the preamble names the target; the RDP bytes follow it.
        let (skip, preamble) = clientPreamble(stream)
        if skip > 0 {
            return preamble + clientStream(Array(stream[skip...])).map { $0.shifted(by: skip) }
        }
        var out: [NameField] = []
        walk(stream) { tpdu, payload, base in
            switch tpdu {
            case .connectionRequest(let cr):
                out += cookieFields(cr, base)
            case .data:
                if let ci = try? MCSConnectInitial.parse(&payload), let core = ci.clientData.core,
                    let r = core.clientNameRange, !r.isEmpty
                {
                    out.append(NameField(r, kind: .host, encoding: .utf16LE, shown: core.clientName))
                }
            default: break
            }
        } record: { header, fragment in
            guard header.contentType == .handshake else { return true }
            var f = fragment
            // The ClientHello comes whole in its first record in every client seen.
            if let (h, body) = try? TLSHandshakeHeader.readMessage(&f), h.type == .clientHello, let sni = serverName(body) {
                out.append(sni)
            }
            return true
        }
        return out
    }

    /// Reads `stream` PDU by PDU, TPKT (X.224) or TLS record by the first byte, until it ends or
    /// does not parse, or `record` says stop: the caller bounds the stream.
    static func walk(
        _ stream: [UInt8], tpdu: (X224TPDU, inout ByteCursor, UnsafeRawBufferPointer) -> Void,
        record: (TLSRecordHeader, ByteCursor) -> Bool
    ) {
        withCursor(stream) { c in
            while !c.isEmpty {
                if c.peekUInt8() == TPKTHeader.version {
                    guard var (_, payload) = try? TPKTHeader.readPacket(&c), let t = try? X224.parseTPDU(&payload) else { return }
                    tpdu(t, &payload, c.base)
                } else {
                    guard let (header, fragment) = try? TLSRecord.read(&c), record(header, fragment) else { return }
                }
            }
        }
    }

    /// The server's stream from its first byte.
    public static func serverStream(_ stream: [UInt8]) -> [NameField] {
        let (skip, preamble) = serverPreamble(stream)
        if skip > 0 {
            return preamble + serverStream(Array(stream[skip...])).map { $0.shifted(by: skip) }
        }
        var out: [NameField] = []
        // Handshake messages may span records: their bytes, and where each came from.
        var handshake: [UInt8] = []
        var origin: [Int] = []
        walk(stream) { tpdu, payload, _ in
            if case .data = tpdu, let cr = try? MCSConnectResponse.parse(&payload),
                let ranges = cr.serverData?.security?.certificateRanges
            {
                for r in ranges { out += certificateFields(stream, r) }
            }
        } record: { header, fragment in
            // After ChangeCipherSpec (or in TLS 1.3, after the ServerHello) records are encrypted.
            guard header.contentType == .handshake else { return false }
            handshake += stream[fragment.offset..<fragment.end]
            origin += Array(fragment.offset..<fragment.end)
            return true
        }
        withCursor(handshake) { h in
            while let (header, body) = try? TLSHandshakeHeader.readMessage(&h) {
                guard header.type == .certificate else { continue }
                var b = body
                guard let total = b.readUInt24BE(), var list = b.readSlice(Int(total)) else { continue }
                while let length = list.readUInt24BE(), let der = list.readSlice(Int(length)) {
                    // The DER is contiguous in the stream unless it spans records: then its
                    // fields are mapped back byte by byte.
                    let fields = certificateFields(handshake, der.offset..<der.end)
                    out += fields.map { f in
                        NameField(f.ranges.flatMap { r in contiguous(r.map { origin[$0] }) }, kind: f.kind, encoding: f.encoding,
                                  shown: f.shown)
                    }
                }
            }
        }
        return out
    }

    // MARK: - Proxy preambles (Proxy.swift)

    /// A SOCKS4/4a/5 or HTTP CONNECT request at the stream's start: the fields that name the
    /// target (and a SOCKS user id or user name), and the length of the preamble (0: none).
    static func clientPreamble(_ stream: [UInt8]) -> (Int, [NameField]) {
        withCursor(stream) { c in
            var out: [NameField] = []
            switch ProxyPreamble.start(c) {
            case .socks4:
                guard let r = try? ProxyPreamble.readSOCKS4Request(&c) else { return (0, []) }
                // VN CD DSTPORT DSTIP USERID NUL [HOST NUL]
                if let nul = stream[8...].firstIndex(of: 0), nul > 8 {
                    out.append(NameField(8..<nul, kind: .user, encoding: .bytes, shown: Printable.escaping(Array(stream[8..<nul]))))
                }
                if r.kind == .socks4a {
                    out.append(NameField((c.offset - 1 - r.host.utf8.count)..<(c.offset - 1), kind: .host, encoding: .bytes, shown: r.host))
                } else {
                    out.append(NameField(4..<8, kind: .host, encoding: .address, shown: r.host))
                }
                return (c.offset, out)
            case .socks5Greeting:
                guard (try? ProxyPreamble.readSOCKS5Greeting(&c)) != nil else { return (0, []) }
                if c.peekUInt8() == 1, let ulen = c.peekUInt8(at: 1) {
                    let u = (c.offset + 2)..<(c.offset + 2 + Int(ulen))
                    guard (try? ProxyPreamble.skipSOCKS5Credentials(&c)) != nil else { return (0, []) }
                    if !u.isEmpty { out.append(NameField(u, kind: .user, encoding: .bytes, shown: Printable.escaping(Array(stream[u])))) }
                }
                let start = c.offset
                guard let r = try? ProxyPreamble.readSOCKS5Request(&c) else { return (start, out) }
                // VER CMD RSV ATYP ADDR PORT: the address ends two bytes before the request does.
                let address = (start + 4 + (stream[start + 3] == 3 ? 1 : 0))..<(c.offset - 2)
                out.append(NameField(address, kind: .host, encoding: stream[start + 3] == 3 ? .bytes : .address, shown: r.host))
                return (c.offset, out)
            case .http:
                let start = c.offset
                guard let r = try? ProxyPreamble.readHTTPConnect(&c) else { return (0, []) }
                // The host shows in the request line and usually again in Host:.
                out += occurrences(of: Array(r.host.utf8), in: stream, within: start..<c.offset).map {
                    NameField($0, kind: .host, encoding: .bytes, shown: r.host)
                }
                return (c.offset, out)
            case .none, .needMore:
                return (0, [])
            }
        }
    }

    /// The proxy's answers before the tunnel: SOCKS5 method choice (and RFC 1929 status) and
    /// reply, a SOCKS4 reply, or an HTTP status line and headers. The SOCKS5 reply's bound
    /// address is the proxy's own and gets a pseudonym too.
    static func serverPreamble(_ stream: [UInt8]) -> (Int, [NameField]) {
        withCursor(stream) { c in
            switch c.peekUInt8() {
            case 5:
                guard let method = try? ProxyPreamble.readSOCKS5MethodChoice(&c) else { return (0, []) }
                if method == 2 { guard (try? ProxyPreamble.readSOCKS5AuthStatus(&c)) != nil else { return (c.offset, []) } }
                let start = c.offset
                guard (try? ProxyPreamble.readSOCKS5Reply(&c)) != nil, start + 3 < stream.count else { return (start, []) }
                let atyp = stream[start + 3]
                let address = (start + 4 + (atyp == 3 ? 1 : 0))..<(c.offset - 2)
                guard !address.isEmpty, !stream[address].allSatisfy({ $0 == 0 }) else { return (c.offset, []) }
                let shown = atyp == 1 ? IPAddress(ipv4: stream[address].reduce(0) { $0 << 8 | UInt32($1) }).description
                    : atyp == 4 ? CertificateParser.ipString(stream[address]) : Printable.escaping(Array(stream[address]))
                return (c.offset, [NameField(address, kind: .host, encoding: atyp == 3 ? .bytes : .address, shown: shown)])
            case 0:
                guard stream.count >= 8, [90, 91, 92, 93].contains(stream[1]) else { return (0, []) }
                return (8, [])
            case UInt8(ascii: "H"):
                guard (try? ProxyPreamble.readHTTPReply(&c)) != nil else { return (0, []) }
                return (c.offset, [])
            default:
                return (0, [])
            }
        }
    }

    /// Every place `needle` occurs in `haystack[range]`.
    static func occurrences(of needle: [UInt8], in haystack: [UInt8], within range: Range<Int>) -> [Range<Int>] {
        guard !needle.isEmpty, range.count >= needle.count else { return [] }
        var out: [Range<Int>] = []
        var i = range.lowerBound
        while i + needle.count <= range.upperBound {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) {
                out.append(i..<(i + needle.count))
                i += needle.count
            } else {
                i += 1
            }
        }
        return out
    }

    /// Runs of consecutive offsets as ranges.
    static func contiguous(_ offsets: [Int]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for o in offsets {
            if let last = out.last, last.upperBound == o {
                out[out.count - 1] = last.lowerBound..<(o + 1)
            } else {
                out.append(o..<(o + 1))
            }
        }
        return out
    }

    /// The cookie's IDENTIFIER (`DOMAIN\user` or `user@domain` as two fields) and the
    /// routing token's value.
    static func cookieFields(_ cr: X224ConnectionRequest, _ base: UnsafeRawBufferPointer) -> [NameField] {
        var out: [NameField] = []
        if let r = cr.cookieRange, !r.isEmpty, r.upperBound <= base.count {
            let bytes = Array(base[r])
            let shown = Printable.escaping(bytes)
            if let slash = bytes.firstIndex(of: UInt8(ascii: "\\")) {
                let domain = r.lowerBound..<(r.lowerBound + slash)
                let user = (r.lowerBound + slash + 1)..<r.upperBound
                if !domain.isEmpty {
                    out.append(NameField(domain, kind: .domain, encoding: .bytes, shown: Printable.escaping(Array(bytes[..<slash]))))
                }
                if !user.isEmpty {
                    out.append(NameField(user, kind: .user, encoding: .bytes, shown: Printable.escaping(Array(bytes[(slash + 1)...]))))
                }
            } else if let at = bytes.firstIndex(of: UInt8(ascii: "@")), at > 0, at + 1 < bytes.count {
                out.append(NameField(r.lowerBound..<(r.lowerBound + at), kind: .user, encoding: .bytes,
                                     shown: Printable.escaping(Array(bytes[..<at]))))
                out.append(NameField((r.lowerBound + at + 1)..<r.upperBound, kind: .host, encoding: .bytes,
                                     shown: Printable.escaping(Array(bytes[(at + 1)...]))))
            } else {
                out.append(NameField(r, kind: .user, encoding: .bytes, shown: shown))
            }
        }
        if let r = cr.routingTokenRange, !r.isEmpty, r.upperBound <= base.count {
            let bytes = Array(base[r])
            // `Cookie: msts=VALUE`: the value names the target server; the label stays.
            let start = (bytes.firstIndex(of: UInt8(ascii: "=")).map { $0 + 1 }) ?? 0
            if start < bytes.count {
                out.append(NameField((r.lowerBound + start)..<r.upperBound, kind: .host, encoding: .bytes,
                                     shown: Printable.escaping(bytes)))
            }
        }
        return out
    }

    /// The first host_name of a ClientHello's server_name extension.
    static func serverName(_ body: ByteCursor) -> NameField? {
        var b = body
        guard b.skip(2 + 32), let sid = b.readUInt8(), b.skip(Int(sid)), let suites = b.readUInt16BE(), b.skip(Int(suites)),
            let methods = b.readUInt8(), b.skip(Int(methods)), let total = b.readUInt16BE(), var exts = b.readSlice(Int(total))
        else { return nil }
        while let type = exts.readUInt16BE(), let length = exts.readUInt16BE(), var data = exts.readSlice(Int(length)) {
            guard type == TLSExtension.serverName else { continue }
            guard let listLength = data.readUInt16BE(), var list = data.readSlice(Int(listLength)) else { return nil }
            while let nameType = list.readUInt8(), let nameLength = list.readUInt16BE(), let name = list.readSlice(Int(nameLength)) {
                if nameType == 0 && !name.isEmpty {
                    return NameField(name.offset..<name.end, kind: .host, encoding: .bytes, shown: name.asciiString(limit: 255))
                }
            }
            return nil
        }
        return nil
    }

    /// X.520 attributes that name a host or its owner: commonName, localityName (where
    /// Windows' licensing certificates put the server's domain), organizationName,
    /// organizationalUnitName.
    static let nameAttributes: Set<String> = ["2.5.4.3", "2.5.4.7", "2.5.4.10", "2.5.4.11"]

    /// The certificate's own names where an extension repeats them as NUL-terminated
    /// UTF-16LE strings: Windows' licensing certificates (MS-RDPELE 2.2.1.4.2) carry the
    /// server's NetBIOS name in Microsoft extensions and in a non-DER authority key
    /// identifier that no parser reads. Only a name that ends a NUL-terminated string and
    /// does not continue a word before it is taken, never a name inside other text.
    static func utf16Names(_ der: [UInt8], _ range: Range<Int>, _ declared: Set<String>) -> [NameField] {
        var out: [NameField] = []
        let wanted = declared.filter { $0.count >= 2 }.map { ($0, Array($0.utf16)) }
        guard !wanted.isEmpty else { return [] }
        var i = range.lowerBound
        while i + 1 < range.upperBound {
            // A run of UTF-16LE units (printable ASCII) that starts after a NUL or non-text unit.
            var j = i
            var units: [UInt16] = []
            while j + 1 < range.upperBound, der[j + 1] == 0, der[j] >= 0x20, der[j] < 0x7F {
                units.append(UInt16(der[j]))
                j += 2
            }
            if !units.isEmpty {
                let terminated = j + 1 < range.upperBound && der[j] == 0 && der[j + 1] == 0
                // The name ends the string; before it, nothing or a unit that is not part of a
                // word (a length field that happens to be printable, like `<` for 60).
                if terminated {
                    for (name, u) in wanted where u.count <= units.count && units.suffix(u.count).elementsEqual(u) {
                        let k = units.count - u.count
                        if k > 0, let prior = Unicode.Scalar(units[k - 1]), prior.properties.isAlphabetic || prior.properties.numericType != nil {
                            continue
                        }
                        out.append(NameField((i + 2 * k)..<j, kind: .host, encoding: .utf16LE, shown: CertificateParser.escape(name)))
                        break
                    }
                }
                i = j
            } else {
                i += 1
            }
        }
        return out
    }

    /// A DER certificate's serial number, the CN, O and OU values of its issuer and subject,
    /// and its DNS, e-mail, URI and IP subject alternative names (RFC 5280 4.1, 4.2.1.6).
    static func certificateFields(_ stream: [UInt8], _ range: Range<Int>) -> [NameField] {
        guard range.lowerBound >= 0, range.upperBound <= stream.count, !range.isEmpty else { return [] }
        let der = Array(stream[range])
        guard let root = (try? DER.parse(der)) ?? (try? SwiftASN1.BER.parse(der)), case .constructed(let top) = root.content,
            let tbsNode = top.first(where: { _ in true }), case .constructed(let tbs) = tbsNode.content
        else { return [] }
        let base = range.lowerBound
        func at(_ slice: ArraySlice<UInt8>) -> Range<Int> { (base + slice.startIndex)..<(base + slice.endIndex) }
        var out: [NameField] = []
        var fields = tbs.makeIterator()
        var next = fields.next()
        if let v = next, v.identifier.tagClass == .contextSpecific, v.identifier.tagNumber == 0 { next = fields.next() }
        guard let serial = next, serial.identifier == .integer, case .primitive(let serialBytes) = serial.content else { return [] }
        out.append(NameField(at(serialBytes), kind: .serial, encoding: .opaque,
                             shown: CertificateParser.serialHex(serialBytes)))
        _ = fields.next()  // signature
        let issuer = fields.next()
        _ = fields.next()  // validity
        let subject = fields.next()
        _ = fields.next()  // subjectPublicKeyInfo
        // The names this certificate gives itself, to find again inside its extensions.
        var declared = Set<String>()
        for name in [issuer, subject].compactMap({ $0 }) {
            guard case .constructed(let rdns) = name.content else { continue }
            for rdn in rdns {
                guard case .constructed(let attributes) = rdn.content else { continue }
                for attribute in attributes {
                    guard case .constructed(let pair) = attribute.content else { continue }
                    var it = pair.makeIterator()
                    guard let typeNode = it.next(), let oid = CertificateParser.dotted(typeNode), nameAttributes.contains(oid),
                        let value = it.next(), case .primitive(let bytes) = value.content, !bytes.isEmpty
                    else { continue }
                    let encoding: NameField.Encoding
                    switch value.identifier {
                    case .bmpString: encoding = .utf16BE
                    case .universalString: encoding = .opaque
                    default: encoding = .bytes
                    }
                    let text = CertificateParser.string(value)
                    out.append(NameField(at(bytes), kind: .host, encoding: encoding, shown: CertificateParser.escape(text)))
                    declared.insert(text)
                    // `ncalrpc:SERVR`: the NetBIOS name after the prefix is a name of its own.
                    if let colon = text.lastIndex(of: ":"), text.index(after: colon) != text.endIndex {
                        declared.insert(String(text[text.index(after: colon)...]))
                    }
                }
            }
        }
        while let node = fields.next() {
            guard node.identifier.tagClass == .contextSpecific, node.identifier.tagNumber == 3,
                case .constructed(let wrapper) = node.content, let list = wrapper.first(where: { _ in true }),
                case .constructed(let extensions) = list.content
            else { continue }
            for ext in extensions {
                guard case .constructed(let parts) = ext.content else { continue }
                var it = parts.makeIterator()
                guard let oidNode = it.next(), let oid = CertificateParser.dotted(oidNode) else { continue }
                var valueNode = it.next()
                if valueNode?.identifier == .boolean { valueNode = it.next() }
                guard let v = valueNode, case .primitive(let octets) = v.content else { continue }
                guard oid == "2.5.29.17" else {
                    out += utf16Names(der, octets.startIndex..<octets.endIndex, declared).map { $0.shifted(by: base) }
                    continue
                }
                guard let names = try? DER.parse(Array(octets)), case .constructed(let entries) = names.content else { continue }
                let octetsBase = base + octets.startIndex
                for entry in entries where entry.identifier.tagClass == .contextSpecific {
                    guard case .primitive(let b) = entry.content, !b.isEmpty else { continue }
                    let r = (octetsBase + b.startIndex)..<(octetsBase + b.endIndex)
                    switch entry.identifier.tagNumber {
                    case 1, 2, 6: out.append(NameField(r, kind: .host, encoding: .bytes, shown: Printable.escaping(Array(b))))
                    case 7: out.append(NameField(r, kind: .host, encoding: .address, shown: CertificateParser.ipString(b)))
                    default: break
                    }
                }
            }
        }
        return out
    }
}
