#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Synchronization
import SwiftASN1
import TriageCapture
import TriageDecoding
import X509

/// Turns a DER X.509 certificate (RFC 5280 section 4.1) into the `CertificateFacts` a
/// report shows: names, serial, validity, key type and size, SANs, signature algorithm,
/// SHA-256 fingerprint, self-signed, and a TLS-inspection product named by the issuer.
///
/// The fields are read with SwiftASN1 from the TBSCertificate directly because
/// swift-certificates' `Certificate(derEncoded:)` refuses what RDP servers really send:
/// RSA keys under 2048 bits (the 512-bit chains of standard RDP security, old 1024-bit
/// self-signed certificates), DSA keys and OIW signature OIDs. It is still used, when it
/// accepts the certificate, to verify a self-signed certificate's signature.
public enum CertificateParser {
    /// Longest name or SAN string kept.
    static let maxText = 1024
    /// Most SAN entries kept.
    static let maxNames = 32

    /// Facts of certificates already parsed, by their DER bytes: a server shows the same
    /// certificate on every connection, and parsing (with a signature check) is the
    /// costliest step of an attempt. Bounded; a pure cache, results do not depend on it.
    static let cache = Mutex<[DERKey: CertificateFacts]>([:])
    static let cacheLimit = 256

    /// A certificate's bytes as a dictionary key. Hashed by its length and its last 64
    /// bytes (the signature, which differs between any two certificates): hashing all of it
    /// cost more than the rest of the lookup. Equality still compares every byte, and the
    /// table is small (`cacheLimit`), so crafted collisions cannot cost much.
    struct DERKey: Hashable {
        let der: [UInt8]
        static func == (a: DERKey, b: DERKey) -> Bool {
            a.der.withUnsafeBytes { x in
                b.der.withUnsafeBytes { y in
                    guard x.count == y.count else { return false }
                    guard let p = x.baseAddress, let q = y.baseAddress else { return true }  // both empty
                    return memcmp(p, q, x.count) == 0
                }
            }
        }
        func hash(into h: inout Hasher) {
            h.combine(der.count)
            der.withUnsafeBytes { h.combine(bytes: UnsafeRawBufferPointer(rebasing: $0.suffix(64))) }
        }
    }

    /// Parses one DER certificate (or returns the facts of an identical one parsed before).
    public static func facts(der: [UInt8]) throws(ParseError) -> CertificateFacts {
        let key = DERKey(der: der)
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let f = try parse(der: der)
        cache.withLock { c in
            if c.count >= cacheLimit { c.removeAll(keepingCapacity: true) }
            c[key] = f
        }
        return f
    }

    static func parse(der: [UInt8]) throws(ParseError) -> CertificateFacts {
        let root: ASN1Node
        do {
            root = try DER.parse(der)
        } catch {
            // Some issuers get DER wrong (non-minimal lengths); BER still reads them.
            do { root = try SwiftASN1.BER.parse(der) } catch {
                throw .malformed("certificate is not DER/BER: \(error)", offset: 0)
            }
        }
        guard root.identifier == .sequence, case .constructed(let top) = root.content else {
            throw .malformed("certificate is not a SEQUENCE", offset: 0)
        }
        var parts = top.makeIterator()
        guard let tbsNode = parts.next(), tbsNode.identifier == .sequence, case .constructed(let tbs) = tbsNode.content,
            let outerAlgorithm = parts.next()
        else { throw .malformed("certificate without TBSCertificate and signatureAlgorithm", offset: 0) }

        var fields = tbs.makeIterator()
        var next = fields.next()
        // version [0] EXPLICIT, DEFAULT v1.
        if let v = next, v.identifier.tagClass == .contextSpecific, v.identifier.tagNumber == 0 { next = fields.next() }
        guard let serialNode = next, serialNode.identifier == .integer, case .primitive(let serialBytes) = serialNode.content
        else { throw .malformed("TBSCertificate serialNumber", offset: 0) }
        guard fields.next() != nil,  // signature AlgorithmIdentifier (the outer copy is used)
            let issuerNode = fields.next(), let validityNode = fields.next(), let subjectNode = fields.next(),
            let spkiNode = fields.next()
        else { throw .malformed("TBSCertificate is missing fields", offset: 0) }

        let (notBefore, notAfter) = try validity(validityNode)
        let issuer = name(issuerNode)
        let subject = name(subjectNode)
        let key = publicKey(spkiNode)
        var sans: [String] = []
        while let node = fields.next() {
            if node.identifier.tagClass == .contextSpecific, node.identifier.tagNumber == 3 {
                sans = subjectAlternativeNames(extensionsNode: node)
            }
        }

        let namesEqual = issuerNode.encodedBytes == subjectNode.encodedBytes || issuer == subject
        var selfSigned = namesEqual
        if namesEqual, let cert = try? X509.Certificate(derEncoded: der) {
            // A certificate that names itself as issuer but was signed by another key (an
            // inspection proxy copying the name, say) is not self-signed.
            selfSigned = cert.publicKey.isValidSignature(cert.signature, for: cert)
        }

        return CertificateFacts(
            subject: subject, issuer: issuer, serialNumber: serialHex(serialBytes), notBefore: notBefore,
            notAfter: notAfter, selfSigned: selfSigned, keyType: key.type, keyBits: key.bits,
            subjectAlternativeNames: sans, signatureAlgorithm: algorithmName(outerAlgorithm, ProtocolTables.signatureAlgorithms),
            sha256: Digests.sha256Hex(der), inspectionProduct: ProtocolTables.inspectionProduct(inIssuer: issuer))
    }

    // MARK: - Pieces

    /// The serial as uppercase hex, without the sign-padding zero byte.
    static func serialHex(_ bytes: ArraySlice<UInt8>) -> String {
        var b = bytes
        if b.count > 1, b.first == 0, let second = b.dropFirst().first, second & 0x80 != 0 { b = b.dropFirst() }
        return hexString(b).uppercased()
    }

    static func dotted(_ node: ASN1Node) -> String? {
        guard let oid = try? ASN1ObjectIdentifier(derEncoded: node) else { return nil }
        return oid.oidComponents.map { String($0) }.joined(separator: ".")
    }

    /// AlgorithmIdentifier (RFC 5280 4.1.1.2): the name from `table`, or the dotted OID.
    static func algorithmName(_ node: ASN1Node, _ table: [String: String]) -> String {
        guard case .constructed(let children) = node.content, let first = children.first(where: { _ in true }),
            let oid = dotted(first)
        else { return "unknown" }
        return table[oid] ?? oid
    }

    /// Validity (RFC 5280 4.1.2.5): UTCTime or GeneralizedTime, as capture-clock timestamps.
    static func validity(_ node: ASN1Node) throws(ParseError) -> (Timestamp, Timestamp) {
        guard case .constructed(let children) = node.content else { throw .malformed("Validity", offset: 0) }
        var it = children.makeIterator()
        guard let a = it.next(), let b = it.next(), let from = time(a), let to = time(b) else {
            throw .malformed("Validity times", offset: 0)
        }
        return (from, to)
    }

    static func time(_ node: ASN1Node) -> Timestamp? {
        if node.identifier == .utcTime, let t = try? UTCTime(derEncoded: node) {
            return timestamp(t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
        }
        if node.identifier == .generalizedTime, let t = try? GeneralizedTime(derEncoded: node) {
            return timestamp(t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
        }
        return nil
    }

    /// Seconds since the Unix epoch of a UTC civil time (Howard Hinnant's days-from-civil).
    static func timestamp(_ year: Int, _ month: Int, _ day: Int, _ h: Int, _ m: Int, _ s: Int) -> Timestamp {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Timestamp(seconds: Int64(days * 86_400 + h * 3600 + m * 60 + s), nanos: 0)
    }

    /// Name (RFC 5280 4.1.2.4) in RFC 4514 order (last RDN first), multi-valued RDNs
    /// joined with `+`, attribute types as short names (`CN`, `O`) or dotted OIDs.
    static func name(_ node: ASN1Node) -> String {
        guard case .constructed(let rdns) = node.content else { return "" }
        var parts: [String] = []
        for rdn in rdns {
            guard case .constructed(let attributes) = rdn.content else { continue }
            var values: [String] = []
            for attribute in attributes {
                guard case .constructed(let pair) = attribute.content else { continue }
                var it = pair.makeIterator()
                guard let typeNode = it.next(), let oid = dotted(typeNode), let valueNode = it.next() else { continue }
                let type = ProtocolTables.nameAttributes[oid] ?? oid
                values.append(type + "=" + escape(string(valueNode)))
            }
            if !values.isEmpty { parts.append(values.joined(separator: "+")) }
        }
        let text = parts.reversed().joined(separator: ",")
        return text.count > maxText ? String(text.prefix(maxText)) : text
    }

    /// A directory string of any of the ASN.1 string types X.509 names use.
    static func string(_ node: ASN1Node) -> String {
        guard case .primitive(let bytes) = node.content else { return "#constructed" }
        switch node.identifier {
        case .utf8String, .printableString, .ia5String, .visibleString, .numericString:
            return String(decoding: bytes, as: UTF8.self)
        case .teletexString:
            // T.61 in theory, Latin-1 in practice.
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        case .bmpString:
            var units: [UInt16] = []
            var i = bytes.startIndex
            while i + 1 < bytes.endIndex {
                units.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]))
                i += 2
            }
            return String(decoding: units, as: UTF16.self)
        case .universalString:
            var out = String.UnicodeScalarView()
            var i = bytes.startIndex
            while i + 3 < bytes.endIndex {
                let v = UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                i += 4
            }
            return String(out)
        default:
            return "#" + hexString(bytes)
        }
    }

    /// RFC 4514 2.4 escaping, with control characters as `\XX`.
    static func escape(_ s: String) -> String {
        var out = ""
        let scalars = Array(s.unicodeScalars)
        for (i, ch) in scalars.enumerated() {
            switch ch {
            case ",", "+", "\"", "\\", "<", ">", ";":
                out += "\\" + String(ch)
            case "#" where i == 0, " " where i == 0 || i == scalars.count - 1:
                out += "\\" + String(ch)
            default:
                if ch.value < 0x20 || ch.value == 0x7F {
                    out += "\\" + hex2(UInt8(ch.value)).uppercased()
                } else {
                    out.unicodeScalars.append(ch)
                }
            }
        }
        return out
    }

    /// SubjectPublicKeyInfo (RFC 5280 4.1.2.7): key type and size in bits. RSA sizes
    /// come from the modulus (RFC 3279 2.3.1), DSA from p, EC from the named curve
    /// (RFC 5480 2.1.1.1).
    static func publicKey(_ node: ASN1Node) -> (type: String, bits: Int?) {
        guard case .constructed(let parts) = node.content else { return ("unknown", nil) }
        var it = parts.makeIterator()
        guard let algorithm = it.next(), case .constructed(let algParts) = algorithm.content, let keyNode = it.next()
        else { return ("unknown", nil) }
        var algIt = algParts.makeIterator()
        guard let oidNode = algIt.next(), let oid = dotted(oidNode) else { return ("unknown", nil) }
        let parameters = algIt.next()
        // Microsoft's licensing certificates label RSA keys with signature OIDs of the
        // PKCS #1 arc (md5WithRSAEncryption); the key itself is still an RSAPublicKey.
        let rsaFamily = oid.hasPrefix("1.2.840.113549.1.1.")
        let type = ProtocolTables.publicKeyAlgorithms[oid] ?? (rsaFamily ? "RSA" : oid)
        switch oid {
        case _ where rsaFamily:
            guard case .primitive(let bits) = keyNode.content, bits.count > 1,
                let rsa = try? DER.parse(Array(bits.dropFirst())), case .constructed(let numbers) = rsa.content,
                let modulus = numbers.first(where: { _ in true }), case .primitive(let m) = modulus.content
            else { return (type, nil) }
            return (type, bitLength(m))
        case "1.2.840.10040.4.1":
            guard let p = parameters, case .constructed(let pqg) = p.content,
                let prime = pqg.first(where: { _ in true }), case .primitive(let pBytes) = prime.content
            else { return (type, nil) }
            return (type, bitLength(pBytes))
        case "1.2.840.10045.2.1":
            guard let p = parameters, let curveOID = dotted(p) else { return (type, nil) }
            if let curve = ProtocolTables.namedCurves[curveOID] { return ("ECDSA " + curve.name, curve.bits) }
            return ("ECDSA " + curveOID, nil)
        case "1.3.101.112", "1.3.101.110":
            return (type, 256)
        case "1.3.101.113":
            return (type, 456)
        case "1.3.101.111":
            return (type, 448)
        default:
            return (type, nil)
        }
    }

    /// Bits of an unsigned big-endian integer (leading zero bytes ignored).
    static func bitLength(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard let firstNonZero = bytes.firstIndex(where: { $0 != 0 }) else { return nil }
        let count = bytes.endIndex - firstNonZero
        return (count - 1) * 8 + (8 - bytes[firstNonZero].leadingZeroBitCount)
    }

    /// The subjectAltName extension (RFC 5280 4.2.1.6) from `[3] Extensions`: `DNS:`,
    /// `IP:`, `email:`, `URI:` and `DirName:` entries.
    static func subjectAlternativeNames(extensionsNode: ASN1Node) -> [String] {
        guard case .constructed(let wrapper) = extensionsNode.content, let list = wrapper.first(where: { _ in true }),
            case .constructed(let extensions) = list.content
        else { return [] }
        for ext in extensions {
            guard case .constructed(let fields) = ext.content else { continue }
            var it = fields.makeIterator()
            guard let oidNode = it.next(), dotted(oidNode) == "2.5.29.17" else { continue }
            var valueNode = it.next()
            if valueNode?.identifier == .boolean { valueNode = it.next() }
            guard let v = valueNode, case .primitive(let octets) = v.content,
                let names = try? DER.parse(Array(octets)), case .constructed(let entries) = names.content
            else { return [] }
            var out: [String] = []
            for entry in entries where entry.identifier.tagClass == .contextSpecific && out.count < maxNames {
                switch (entry.identifier.tagNumber, entry.content) {
                case (1, .primitive(let b)): out.append("email:" + Printable.escaping(Array(b)))
                case (2, .primitive(let b)): out.append("DNS:" + Printable.escaping(Array(b)))
                case (6, .primitive(let b)): out.append("URI:" + Printable.escaping(Array(b)))
                case (7, .primitive(let b)): out.append("IP:" + ipString(b))
                case (4, .constructed(let inner)):
                    if let n = inner.first(where: { _ in true }) { out.append("DirName:" + name(n)) }
                default: break
                }
            }
            return out
        }
        return []
    }

    static func ipString(_ b: ArraySlice<UInt8>) -> String {
        if b.count == 4 { return b.map { String($0) }.joined(separator: ".") }
        if b.count == 16 {
            var groups: [String] = []
            var i = b.startIndex
            while i + 1 < b.endIndex {
                groups.append(String(UInt16(b[i]) << 8 | UInt16(b[i + 1]), radix: 16))
                i += 2
            }
            return groups.joined(separator: ":")
        }
        return "#" + hexString(b)
    }
}
