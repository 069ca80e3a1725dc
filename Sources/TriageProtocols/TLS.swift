import TriageDecoding

// The TLS record layer and the clear-text handshake messages a passive observer can read
// (RFC 5246 for TLS 1.2 and earlier, RFC 8446 for TLS 1.3). Pure parsers; the
// per-direction state (encryption started, handshake reassembly) lives in the state
// machine.

/// TLS record content type (RFC 5246 6.2.1 ContentType, RFC 8446 5.1).
public struct TLSContentType: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let changeCipherSpec = TLSContentType(rawValue: 20)
    public static let alert = TLSContentType(rawValue: 21)
    public static let handshake = TLSContentType(rawValue: 22)
    public static let applicationData = TLSContentType(rawValue: 23)
    public static let heartbeat = TLSContentType(rawValue: 24)

    public var name: String {
        switch rawValue {
        case 20: "change_cipher_spec"
        case 21: "alert"
        case 22: "handshake"
        case 23: "application_data"
        case 24: "heartbeat"
        default: "content-type-\(rawValue)"
        }
    }
}

/// Protocol version on the wire (RFC 5246 6.2.1 ProtocolVersion, RFC 8446 4.2.1).
public struct TLSVersion: RawRepresentable, Sendable, Codable, Hashable, Comparable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let ssl3 = TLSVersion(rawValue: 0x0300)
    public static let tls10 = TLSVersion(rawValue: 0x0301)
    public static let tls11 = TLSVersion(rawValue: 0x0302)
    public static let tls12 = TLSVersion(rawValue: 0x0303)
    public static let tls13 = TLSVersion(rawValue: 0x0304)

    /// `TLS 1.2`, `TLS 1.3 draft 28`, `GREASE 0x0a0a` or `version-0xNNNN`.
    public var name: String {
        if let n = ProtocolTables.tlsVersions[rawValue] { return n }
        if rawValue >> 8 == 0x7F { return "TLS 1.3 draft \(rawValue & 0xFF)" }
        if isGREASE { return "GREASE 0x" + hex(UInt32(rawValue), width: 4) }
        return "version-0x" + hex(UInt32(rawValue), width: 4)
    }

    /// RFC 8701 reserved values (0x0A0A, 0x1A1A, ... 0xFAFA), sent to keep peers honest.
    public var isGREASE: Bool { rawValue & 0x0F0F == 0x0A0A && rawValue >> 8 == rawValue & 0xFF }

    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.rawValue < b.rawValue }
}

/// Handshake message type (RFC 5246 7.4 HandshakeType, RFC 8446 4).
public struct TLSHandshakeType: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let clientHello = TLSHandshakeType(rawValue: 1)
    public static let serverHello = TLSHandshakeType(rawValue: 2)
    public static let newSessionTicket = TLSHandshakeType(rawValue: 4)
    public static let certificate = TLSHandshakeType(rawValue: 11)
    public static let serverKeyExchange = TLSHandshakeType(rawValue: 12)
    public static let certificateRequest = TLSHandshakeType(rawValue: 13)
    public static let serverHelloDone = TLSHandshakeType(rawValue: 14)
    public static let clientKeyExchange = TLSHandshakeType(rawValue: 16)
    public static let finished = TLSHandshakeType(rawValue: 20)
    public var name: String { ProtocolTables.tlsHandshakeTypes[rawValue] ?? "handshake-\(rawValue)" }
}

/// Alert level (RFC 5246 7.2 AlertLevel).
public struct TLSAlertLevel: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let warning = TLSAlertLevel(rawValue: 1)
    public static let fatal = TLSAlertLevel(rawValue: 2)
    public var name: String {
        switch rawValue {
        case 1: "warning"
        case 2: "fatal"
        default: "level-\(rawValue)"
        }
    }
}

/// Alert description (RFC 5246 7.2 AlertDescription, RFC 8446 6; FACTS.md section 3).
public struct TLSAlertDescription: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let closeNotify = TLSAlertDescription(rawValue: 0)
    public static let handshakeFailure = TLSAlertDescription(rawValue: 40)
    public static let protocolVersion = TLSAlertDescription(rawValue: 70)
    public static let insufficientSecurity = TLSAlertDescription(rawValue: 71)
    public static let internalError = TLSAlertDescription(rawValue: 80)
    /// The RFC name, or `alert-N`.
    public var name: String { ProtocolTables.tlsAlertDescriptions[rawValue] ?? "alert-\(rawValue)" }
}

/// A cipher suite number (RFC 5246 A.5, RFC 8446 B.4; IANA registry).
public struct TLSCipherSuite: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// The IANA name, or `0xNNNN`.
    public var name: String { ProtocolTables.cipherSuites[rawValue]?.name ?? "0x" + hex(UInt32(rawValue), width: 4) }
}

/// TLSPlaintext / TLSCiphertext record header (RFC 5246 6.2.1 and 6.2.3, RFC 8446 5.1).
public struct TLSRecordHeader: Sendable, Equatable {
    public static let size = 5
    /// 2^14 plus the 2048 bytes of expansion RFC 5246 6.2.3 allows; more is malformed.
    public static let maxLength = 16384 + 2048
    public var contentType: TLSContentType
    public var version: TLSVersion
    public var length: Int
}

/// The TLS record layer (RFC 5246 6.2, RFC 8446 5).
public enum TLSRecord {
    /// Reads one complete record: its header and a cursor over its fragment; advances past
    /// it. Throws `needMore` for a partial record, `malformed` for a header that is not
    /// TLS, `unsupported` for an SSL 2.0-compatible ClientHello.
    public static func read(_ c: inout ByteCursor) throws(ParseError) -> (TLSRecordHeader, ByteCursor) {
        let header = try peekHeader(c)
        let total = TLSRecordHeader.size + header.length
        guard total <= c.remaining else { throw .needMore(atLeast: total) }
        _ = c.skip(TLSRecordHeader.size)
        guard let fragment = c.readSlice(header.length) else { throw .needMore(atLeast: total) }
        return (header, fragment)
    }

    /// Validates and returns the header at the cursor without advancing.
    public static func peekHeader(_ c: ByteCursor) throws(ParseError) -> TLSRecordHeader {
        guard let type = c.peekUInt8() else { throw .needMore(atLeast: 1) }
        if type & 0x80 != 0 {
            // SSL 2.0 record header: two-byte length with the top bit set, then msg type 1.
            guard let msg = c.peekUInt8(at: 2) else { throw .needMore(atLeast: 3) }
            if msg == 1 { throw .unsupported("SSL 2.0-compatible ClientHello", offset: 0) }
        }
        guard (20...24).contains(type) else { throw .malformed("record content type \(type)", offset: 0) }
        guard let major = c.peekUInt8(at: 1) else { throw .needMore(atLeast: 2) }
        guard let version = c.peekUInt16BE(at: 1), let length = c.peekUInt16BE(at: 3) else {
            throw .needMore(atLeast: TLSRecordHeader.size)
        }
        guard major == 3, version & 0xFF <= 4 else {
            throw .malformed("record version 0x\(hex(UInt32(version), width: 4))", offset: 1)
        }
        guard Int(length) <= TLSRecordHeader.maxLength else {
            throw .malformed("record length \(length) exceeds 2^14 + 2048", offset: 3)
        }
        return TLSRecordHeader(
            contentType: TLSContentType(rawValue: type), version: TLSVersion(rawValue: version), length: Int(length))
    }

    /// Whether the bytes start like a TLS record (or an SSL 2.0 ClientHello): content type
    /// 20 to 23 and major version 3. Used to notice the switch from X.224 to TLS.
    public static func looksLikeRecord(_ c: ByteCursor) -> Bool { startsRecord(c) == true }

    /// Like `looksLikeRecord`, but nil while too few bytes are there to tell.
    public static func startsRecord(_ c: ByteCursor) -> Bool? {
        guard let type = c.peekUInt8() else { return nil }
        if type & 0x80 != 0 {
            guard let msg = c.peekUInt8(at: 2), let major = c.peekUInt8(at: 3) else { return nil }
            return msg == 1 && major == 3
        }
        guard (20...23).contains(type) else { return false }
        guard let major = c.peekUInt8(at: 1) else { return nil }
        return major == 3
    }
}

/// Handshake message header (RFC 5246 7.4 Handshake, RFC 8446 4): type and 24-bit length.
public struct TLSHandshakeHeader: Sendable, Equatable {
    public static let size = 4
    public var type: TLSHandshakeType
    public var length: Int

    /// Reads a complete handshake message from a reassembly buffer: header and a cursor
    /// over its body; `needMore` while it is incomplete.
    public static func readMessage(_ c: inout ByteCursor) throws(ParseError) -> (TLSHandshakeHeader, ByteCursor) {
        guard c.remaining >= size, let type = c.peekUInt8(), let l0 = c.peekUInt8(at: 1),
            let l12 = c.peekUInt16BE(at: 2)
        else { throw .needMore(atLeast: size) }
        let length = Int(l0) << 16 | Int(l12)
        guard size + length <= c.remaining else { throw .needMore(atLeast: size + length) }
        _ = c.skip(size)
        guard let body = c.readSlice(length) else { throw .needMore(atLeast: size + length) }
        return (TLSHandshakeHeader(type: TLSHandshakeType(rawValue: type), length: length), body)
    }
}

/// TLS extension numbers the parsers read (IANA TLS ExtensionType registry).
enum TLSExtension {
    static let serverName: UInt16 = 0
    static let supportedVersions: UInt16 = 43
    /// RFC 7366 2.
    static let encryptThenMAC: UInt16 = 22
}

/// ClientHello (RFC 5246 7.4.1.2, RFC 8446 4.1.2) with the extensions a report needs:
/// server_name (RFC 6066 3) and supported_versions (RFC 8446 4.2.1).
public struct TLSClientHello: Sendable, Equatable {
    /// Most cipher suites and versions kept.
    public static let maxCipherSuites = 128
    public static let maxVersions = 16
    public static let maxExtensions = 64

    public var legacyVersion: TLSVersion
    public var cipherSuites: [UInt16]
    /// Extension types in order (bounded).
    public var extensions: [UInt16]
    public var serverName: String?
    /// supported_versions, as sent (GREASE included).
    public var supportedVersions: [UInt16]
    /// The 32-byte client random, in hex: public (it is sent in clear) and the key that ties
    /// the connection to its lines in an NSS key log.
    public var random: String = ""

    /// Parses the body of a client_hello message.
    public static func parse(_ b: inout ByteCursor) throws(ParseError) -> TLSClientHello {
        var hello = TLSClientHello(
            legacyVersion: TLSVersion(rawValue: try b.u16be("legacy_version")), cipherSuites: [], extensions: [],
            serverName: nil, supportedVersions: [])
        hello.random = try b.slice(32, "random").hexString()
        let sessionLength = Int(try b.u8("legacy_session_id length"))
        guard sessionLength <= 32 else { throw .malformed("session id length \(sessionLength)", offset: b.offset - 1) }
        try b.skipBytes(sessionLength, "legacy_session_id")
        let suitesLength = Int(try b.u16be("cipher_suites length"))
        guard suitesLength % 2 == 0 else { throw .malformed("odd cipher_suites length", offset: b.offset - 2) }
        var suites = try b.slice(suitesLength, "cipher_suites")
        hello.cipherSuites.reserveCapacity(min(suitesLength / 2, maxCipherSuites))
        while let s = suites.readUInt16BE() {
            if hello.cipherSuites.count < maxCipherSuites { hello.cipherSuites.append(s) }
        }
        let compressionLength = Int(try b.u8("compression_methods length"))
        try b.skipBytes(compressionLength, "compression_methods")
        guard !b.isEmpty else { return hello }  // no extensions (SSL 3.0-era clients)
        let extensionsLength = Int(try b.u16be("extensions length"))
        var exts = try b.slice(extensionsLength, "extensions")
        while !exts.isEmpty {
            let type = try exts.u16be("extension type")
            let length = Int(try exts.u16be("extension length"))
            var data = try exts.slice(length, "extension \(type)")
            if hello.extensions.count < maxExtensions { hello.extensions.append(type) }
            switch type {
            case TLSExtension.serverName:
                hello.serverName = try parseServerName(&data)
            case TLSExtension.supportedVersions:
                let listLength = Int(try data.u8("supported_versions length"))
                var list = try data.slice(listLength, "supported_versions")
                while let v = list.readUInt16BE() {
                    if hello.supportedVersions.count < maxVersions { hello.supportedVersions.append(v) }
                }
            default:
                break
            }
        }
        return hello
    }

    /// ServerNameList (RFC 6066 3): the first host_name.
    static func parseServerName(_ d: inout ByteCursor) throws(ParseError) -> String? {
        guard !d.isEmpty else { return nil }  // an empty extension (a server's echo)
        let listLength = Int(try d.u16be("server_name_list length"))
        var list = try d.slice(listLength, "server_name_list")
        while !list.isEmpty {
            let nameType = try list.u8("name_type")
            let nameLength = Int(try list.u16be("HostName length"))
            let name = try list.slice(nameLength, "HostName")
            if nameType == 0 { return name.asciiString(limit: 255) }
        }
        return nil
    }
}

/// ServerHello (RFC 5246 7.4.1.3, RFC 8446 4.1.3), including the HelloRetryRequest form
/// (RFC 8446 4.1.4: a ServerHello whose random is a fixed value).
public struct TLSServerHello: Sendable, Equatable {
    /// SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest (RFC 8446 4.1.3).
    static let helloRetryRequestRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    public var legacyVersion: TLSVersion
    public var isHelloRetryRequest: Bool
    public var cipherSuite: TLSCipherSuite
    public var compressionMethod: UInt8
    /// supported_versions selected_version (TLS 1.3), if present.
    public var selectedVersion: TLSVersion?
    public var extensions: [UInt16]

    /// The negotiated version: supported_versions when present, else legacy_version.
    public var version: TLSVersion { selectedVersion ?? legacyVersion }

    /// Parses the body of a server_hello message.
    public static func parse(_ b: inout ByteCursor) throws(ParseError) -> TLSServerHello {
        let legacy = TLSVersion(rawValue: try b.u16be("legacy_version"))
        let random = try b.slice(32, "random")
        let sessionLength = Int(try b.u8("legacy_session_id_echo length"))
        guard sessionLength <= 32 else { throw .malformed("session id length \(sessionLength)", offset: b.offset - 1) }
        try b.skipBytes(sessionLength, "legacy_session_id_echo")
        var hello = TLSServerHello(
            legacyVersion: legacy, isHelloRetryRequest: random.hasPrefix(helloRetryRequestRandom),
            cipherSuite: TLSCipherSuite(rawValue: try b.u16be("cipher_suite")),
            compressionMethod: try b.u8("legacy_compression_method"), selectedVersion: nil, extensions: [])
        guard !b.isEmpty else { return hello }
        let extensionsLength = Int(try b.u16be("extensions length"))
        var exts = try b.slice(extensionsLength, "extensions")
        while !exts.isEmpty {
            let type = try exts.u16be("extension type")
            let length = Int(try exts.u16be("extension length"))
            var data = try exts.slice(length, "extension \(type)")
            if hello.extensions.count < TLSClientHello.maxExtensions { hello.extensions.append(type) }
            if type == TLSExtension.supportedVersions {
                hello.selectedVersion = TLSVersion(rawValue: try data.u16be("selected_version"))
            }
        }
        return hello
    }
}

/// Certificate message of TLS 1.2 and earlier (RFC 5246 7.4.2): a chain of DER
/// certificates, leaf first. (TLS 1.3's form, RFC 8446 4.4.2, is always encrypted.)
public struct TLSCertificateMessage: Sendable, Equatable {
    /// Most certificates kept from one chain.
    public static let maxCertificates = 10
    public var certificates: [[UInt8]]
    /// Certificates in the message beyond `maxCertificates`.
    public var omitted: Int

    /// Parses the body of a certificate message; certificates are copied out (they outlive
    /// the borrowed buffer).
    public static func parse(_ b: inout ByteCursor) throws(ParseError) -> TLSCertificateMessage {
        let listLength = Int(try b.u24be("certificate_list length"))
        var list = try b.slice(listLength, "certificate_list")
        var out = TLSCertificateMessage(certificates: [], omitted: 0)
        while !list.isEmpty {
            let length = Int(try list.u24be("ASN.1Cert length"))
            let cert = try list.slice(length, "ASN.1Cert")
            if out.certificates.count < maxCertificates {
                out.certificates.append(cert.copyRemaining())
            } else {
                out.omitted += 1
            }
        }
        return out
    }
}

extension TLSCertificateMessage {
    /// Parses the body of a TLS 1.3 Certificate message (RFC 8446 4.4.2): a request context,
    /// then entries of certificate data and per-certificate extensions.
    public static func parse13(_ b: inout ByteCursor) throws(ParseError) -> TLSCertificateMessage {
        let contextLength = Int(try b.u8("certificate_request_context length"))
        try b.skipBytes(contextLength, "certificate_request_context")
        let listLength = Int(try b.u24be("certificate_list length"))
        var list = try b.slice(listLength, "certificate_list")
        var out = TLSCertificateMessage(certificates: [], omitted: 0)
        while !list.isEmpty {
            let length = Int(try list.u24be("cert_data length"))
            let cert = try list.slice(length, "cert_data")
            let extensions = Int(try list.u16be("extensions length"))
            try list.skipBytes(extensions, "extensions")
            if out.certificates.count < maxCertificates {
                out.certificates.append(cert.copyRemaining())
            } else {
                out.omitted += 1
            }
        }
        return out
    }
}

/// Alert message (RFC 5246 7.2, RFC 8446 6): level and description.
public struct TLSAlert: Sendable, Equatable {
    public var level: TLSAlertLevel
    public var description: TLSAlertDescription

    /// Parses a clear-text alert fragment (two bytes; a longer fragment holds several
    /// alerts, of which the first is returned).
    public static func parse(_ b: inout ByteCursor) throws(ParseError) -> TLSAlert {
        TLSAlert(
            level: TLSAlertLevel(rawValue: try b.u8("alert level")),
            description: TLSAlertDescription(rawValue: try b.u8("alert description")))
    }
}
