import TriageDecoding

// GCC (ITU-T T.124) Conference Create Request and Response as RDP encodes them in the
// MCS connect PDUs' userData (MS-RDPBCGR 2.2.1.3 and 2.2.1.4), and the client and
// server data blocks they carry (MS-RDPBCGR 2.2.1.3.2 to 2.2.1.4.4). RDP always writes
// the same PER encoding (FreeRDP's gcc.c writes it byte for byte), so the parser checks
// that encoding and reports anything else as unsupported rather than guessing.

/// GCC user data block type of TS_UD_HEADER (MS-RDPBCGR 2.2.1.3.1).
public struct GCCBlockType: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let clientCore = GCCBlockType(rawValue: 0xC001)
    public static let clientSecurity = GCCBlockType(rawValue: 0xC002)
    public static let clientNetwork = GCCBlockType(rawValue: 0xC003)
    public static let serverCore = GCCBlockType(rawValue: 0x0C01)
    public static let serverSecurity = GCCBlockType(rawValue: 0x0C02)
    public static let serverNetwork = GCCBlockType(rawValue: 0x0C03)
    /// The spec name, or `block-0xNNNN`.
    public var name: String { ProtocolTables.gccBlockTypes[rawValue] ?? "block-0x" + String(rawValue, radix: 16) }
}

/// Client Core Data, TS_UD_CS_CORE (MS-RDPBCGR 2.2.1.3.2). Fields after `clientName`
/// are optional on the wire; a later one is present only if all earlier ones are.
public struct ClientCoreData: Sendable, Equatable {
    /// RDP version: 0x00080001 RDP 4.0, 0x00080004 RDP 5.0 to 8.1, 0x00080005 10.0, ...
    public var version: UInt32
    public var desktopWidth: UInt16
    public var desktopHeight: UInt16
    public var colorDepth: UInt16
    public var keyboardLayout: UInt32
    public var clientBuild: UInt32
    /// clientName: up to 15 UTF-16 characters, NUL-terminated.
    public var clientName: String
    public var keyboardType: UInt32?
    public var keyboardSubType: UInt32?
    public var keyboardFunctionKey: UInt32?
    public var highColorDepth: UInt16?
    public var earlyCapabilityFlags: UInt16?
    /// clientDigProductId (up to 32 UTF-16 characters).
    public var clientDigProductId: String?
    public var connectionType: UInt8?
    /// serverSelectedProtocol: the protocol the server picked in the RDP_NEG_RSP, echoed.
    public var serverSelectedProtocol: UInt32?
    /// Where `clientName`'s characters (without the NUL padding) lie in the parsed buffer.
    public var clientNameRange: Range<Int>? = nil

    static func parse(_ b: inout ByteCursor) throws(ParseError) -> ClientCoreData {
        var core = ClientCoreData(
            version: try b.u32le("CS_CORE version"), desktopWidth: try b.u16le("desktopWidth"),
            desktopHeight: try b.u16le("desktopHeight"), colorDepth: try b.u16le("colorDepth"),
            keyboardLayout: 0, clientBuild: 0, clientName: "")
        _ = try b.u16le("SASSequence")
        core.keyboardLayout = try b.u32le("keyboardLayout")
        core.clientBuild = try b.u32le("clientBuild")
        let name = try b.slice(32, "clientName")
        core.clientName = utf16String(name)
        var units = 0
        while units < 16, let lo = name.peekUInt8(at: 2 * units), let hi = name.peekUInt8(at: 2 * units + 1), lo | hi != 0 {
            units += 1
        }
        core.clientNameRange = name.offset..<(name.offset + 2 * units)
        // Optional tail, in order; each read stops quietly when the block ends.
        guard let kt = b.readUInt32LE() else { return core }
        core.keyboardType = kt
        core.keyboardSubType = b.readUInt32LE()
        core.keyboardFunctionKey = b.readUInt32LE()
        guard b.skip(64) else { return core }  // imeFileName
        guard b.readUInt16LE() != nil else { return core }  // postBeta2ColorDepth
        guard b.readUInt16LE() != nil else { return core }  // clientProductId
        guard b.readUInt32LE() != nil else { return core }  // serialNumber
        core.highColorDepth = b.readUInt16LE()
        guard b.readUInt16LE() != nil else { return core }  // supportedColorDepths
        core.earlyCapabilityFlags = b.readUInt16LE()
        guard let product = b.readSlice(64) else { return core }
        core.clientDigProductId = utf16String(product)
        core.connectionType = b.readUInt8()
        guard b.skip(1) else { return core }  // pad1octet
        core.serverSelectedProtocol = b.readUInt32LE()
        return core
    }
}

/// Client Security Data, TS_UD_CS_SEC (MS-RDPBCGR 2.2.1.3.3).
public struct ClientSecurityData: Sendable, Equatable {
    /// encryptionMethods: 40BIT 0x01, 128BIT 0x02, 56BIT 0x08, FIPS 0x10.
    public var encryptionMethods: UInt32
    public var extEncryptionMethods: UInt32
}

/// A static virtual channel of Client Network Data, CHANNEL_DEF (MS-RDPBCGR 2.2.1.3.4.1).
public struct ChannelDefinition: Sendable, Equatable {
    /// name: up to 7 ANSI characters, NUL-terminated.
    public var name: String
    public var options: UInt32
}

/// Client Network Data, TS_UD_CS_NET (MS-RDPBCGR 2.2.1.3.4).
public struct ClientNetworkData: Sendable, Equatable {
    /// CHANNEL_MAX_COUNT.
    public static let maxChannels = 31
    public var channels: [ChannelDefinition]
}

/// The client data blocks of a GCC Conference Create Request (MS-RDPBCGR 2.2.1.3).
public struct GCCClientData: Sendable, Equatable {
    public var core: ClientCoreData?
    public var security: ClientSecurityData?
    public var network: ClientNetworkData?
    /// Types of the other blocks, in order (bounded).
    public var otherBlocks: [GCCBlockType] = []
}

/// Server Core Data, TS_UD_SC_CORE (MS-RDPBCGR 2.2.1.4.2).
public struct ServerCoreData: Sendable, Equatable {
    public var version: UInt32
    /// clientRequestedProtocols: the client's requestedProtocols, echoed (optional).
    public var clientRequestedProtocols: UInt32?
    public var earlyCapabilityFlags: UInt32?
}

/// Server Security Data, TS_UD_SC_SEC1 (MS-RDPBCGR 2.2.1.4.3).
public struct ServerSecurityData: Sendable, Equatable {
    public var encryptionMethod: UInt32
    public var encryptionLevel: UInt32
    public var serverRandomLength: UInt32?
    public var certificate: ServerCertificate?
    /// Where each X.509 certificate's DER lies in the parsed buffer (CERT_CHAIN_VERSION_2).
    public var certificateRanges: [Range<Int>] = []
}

/// Server Network Data, TS_UD_SC_NET (MS-RDPBCGR 2.2.1.4.4).
public struct ServerNetworkData: Sendable, Equatable {
    public var mcsChannelId: UInt16
    public var channelIds: [UInt16]
}

/// The server data blocks of a GCC Conference Create Response (MS-RDPBCGR 2.2.1.4).
public struct GCCServerData: Sendable, Equatable {
    public var core: ServerCoreData?
    public var security: ServerSecurityData?
    public var network: ServerNetworkData?
    public var otherBlocks: [GCCBlockType] = []
}

/// Server Proprietary Certificate, PROPRIETARYSERVERCERTIFICATE (MS-RDPBCGR 2.2.1.4.3.1.1)
/// with its RSA_PUBLIC_KEY (MS-RDPBCGR 2.2.1.4.3.1.1.1).
public struct ProprietaryCertificate: Sendable, Equatable {
    /// RSA_PUBLIC_KEY magic "RSA1".
    public static let rsaMagic: UInt32 = 0x3141_5352
    public var signatureAlgorithm: UInt32
    public var keyAlgorithm: UInt32
    /// bitlen of the RSA public key (512 for Windows' built-in key).
    public var keyBits: Int
    public var publicExponent: UInt32
}

/// The server certificate of Server Security Data (MS-RDPBCGR 2.2.1.4.3.1 SERVER_CERTIFICATE).
public enum ServerCertificate: Sendable, Equatable {
    /// CERT_CHAIN_VERSION_1.
    case proprietary(ProprietaryCertificate, temporary: Bool)
    /// CERT_CHAIN_VERSION_2: an X.509 chain (MS-RDPELE 2.2.1.4.2, root first, leaf last),
    /// each element the DER bytes of one certificate.
    case x509(chain: [[UInt8]], temporary: Bool)
    /// Another certChainVersion, kept by number.
    case unknown(version: UInt32)

    /// CERT_CHAIN_VERSION_1 and _2 (the low 31 bits of dwVersion).
    static let versionProprietary: UInt32 = 1
    static let versionX509: UInt32 = 2
    /// More certificates than any real chain has: the count is treated as malformed.
    static let maxChainLength = 16

    /// The DER certificates' places in an X.509 chain (empty for other versions).
    static func derRanges(_ base: UnsafeRawBufferPointer, from start: Int, to end: Int) -> [Range<Int>] {
        var c = ByteCursor(base, from: start, to: end)
        guard let version = c.readUInt32LE(), version & 0x7FFF_FFFF == versionX509, let count = c.readUInt32LE(),
            count <= UInt32(maxChainLength)
        else { return [] }
        var out: [Range<Int>] = []
        for _ in 0..<Int(count) {
            guard let length = c.readUInt32LE(), length <= UInt32(c.remaining) else { break }
            out.append(c.offset..<(c.offset + Int(length)))
            _ = c.skip(Int(length))
        }
        return out
    }

    static func parse(_ c: inout ByteCursor) throws(ParseError) -> ServerCertificate {
        let dwVersion = try c.u32le("dwVersion")
        let temporary = dwVersion & 0x8000_0000 != 0
        switch dwVersion & 0x7FFF_FFFF {
        case versionProprietary:
            let sigAlg = try c.u32le("dwSigAlgId")
            let keyAlg = try c.u32le("dwKeyAlgId")
            _ = try c.u16le("wPublicKeyBlobType")
            let blobLength = Int(try c.u16le("wPublicKeyBlobLen"))
            var blob = try c.slice(blobLength, "PublicKeyBlob")
            let magic = try blob.u32le("RSA_PUBLIC_KEY magic")
            guard magic == ProprietaryCertificate.rsaMagic else {
                throw .malformed("RSA_PUBLIC_KEY magic 0x\(String(magic, radix: 16))", offset: blob.offset - 4)
            }
            _ = try blob.u32le("keylen")
            let bitlen = try blob.u32le("bitlen")
            _ = try blob.u32le("datalen")
            let exponent = try blob.u32le("pubExp")
            // The signature blob follows; it proves nothing we report, so it is skipped.
            return .proprietary(
                ProprietaryCertificate(
                    signatureAlgorithm: sigAlg, keyAlgorithm: keyAlg, keyBits: Int(bitlen), publicExponent: exponent),
                temporary: temporary)
        case versionX509:
            let count = try c.u32le("NumCertBlobs")
            guard count <= UInt32(maxChainLength) else {
                throw .malformed("NumCertBlobs \(count)", offset: c.offset - 4)
            }
            var chain: [[UInt8]] = []
            chain.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                let length = Int(try c.u32le("cbCert"))
                guard let der = c.readBytes(length) else {
                    throw .malformed("cbCert \(length) exceeds the \(c.remaining) bytes left", offset: c.offset - 4)
                }
                chain.append(der)
            }
            return .x509(chain: chain, temporary: temporary)
        case let other:
            return .unknown(version: other)
        }
    }
}

/// T.124 GCC Conference Create Request / Response inside the MCS userData
/// (ITU-T T.124 section 8.7 ConnectData and ConnectGCCPDU; MS-RDPBCGR 2.2.1.3 and 2.2.1.4).
public enum GCC {
    /// Key ::= object { itu-t recommendation t 124 version 0 1 }: PER choice 0, length 5.
    static let t124Key: [UInt8] = [0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01]
    /// H.221 non-standard keys of the client and server user data.
    static let clientKey = Array("Duca".utf8)
    static let serverKey = Array("McDn".utf8)
    /// Blocks beyond this count are not listed (they are still skipped correctly).
    static let maxOtherBlocks = 16

    /// ConnectData with a conferenceCreateRequest, then the client data blocks.
    public static func parseConferenceCreateRequest(_ c: inout ByteCursor) throws(ParseError) -> GCCClientData {
        try readKey(&c)
        // connectPDU length: not trusted (Windows servers write a wrong one in responses).
        _ = try PERReader.readLength(&c)
        let choice = try c.u8("ConnectGCCPDU choice")
        guard choice == 0x00 else { throw .unsupported("ConnectGCCPDU choice 0x\(hex2(choice))", offset: c.offset - 1) }
        let selection = try c.u8("ConferenceCreateRequest optional fields")
        guard selection == 0x08 else {
            throw .unsupported("ConferenceCreateRequest optional fields 0x\(hex2(selection))", offset: c.offset - 1)
        }
        // conferenceName: NumericString SIZE(1..), packed two digits a byte; then padding.
        let digits = Int(try c.u8("conferenceName length")) + 1
        try c.skipBytes((digits + 1) / 2, "conferenceName")
        try c.skipBytes(1, "padding")
        var blocks = try readUserData(&c, key: clientKey)
        var out = GCCClientData()
        while !blocks.isEmpty {
            let (type, body) = try readBlock(&blocks)
            var b = body
            switch type {
            case .clientCore:
                out.core = try ClientCoreData.parse(&b)
            case .clientSecurity:
                out.security = ClientSecurityData(
                    encryptionMethods: try b.u32le("encryptionMethods"),
                    extEncryptionMethods: b.readUInt32LE() ?? 0)
            case .clientNetwork:
                let count = try b.u32le("channelCount")
                guard count <= UInt32(ClientNetworkData.maxChannels) else {
                    throw .malformed("channelCount \(count)", offset: b.offset - 4)
                }
                var channels: [ChannelDefinition] = []
                channels.reserveCapacity(Int(count))
                for _ in 0..<Int(count) {
                    let name = try b.slice(8, "CHANNEL_DEF name")
                    channels.append(ChannelDefinition(name: ansiString(name), options: try b.u32le("CHANNEL_DEF options")))
                }
                out.network = ClientNetworkData(channels: channels)
            default:
                if out.otherBlocks.count < maxOtherBlocks { out.otherBlocks.append(type) }
            }
        }
        return out
    }

    /// ConnectData with a conferenceCreateResponse, then the server data blocks.
    public static func parseConferenceCreateResponse(_ c: inout ByteCursor) throws(ParseError) -> GCCServerData {
        try readKey(&c)
        _ = try PERReader.readLength(&c)
        let choice = try c.u8("ConnectGCCPDU choice")
        guard choice == 0x14 else { throw .unsupported("ConnectGCCPDU choice 0x\(hex2(choice))", offset: c.offset - 1) }
        _ = try c.u16be("nodeID")
        let tagLength = Int(try c.u8("tag length"))
        try c.skipBytes(tagLength, "tag")
        _ = try c.u8("result")
        var blocks = try readUserData(&c, key: serverKey)
        var out = GCCServerData()
        while !blocks.isEmpty {
            let (type, body) = try readBlock(&blocks)
            var b = body
            switch type {
            case .serverCore:
                out.core = ServerCoreData(
                    version: try b.u32le("SC_CORE version"), clientRequestedProtocols: b.readUInt32LE(),
                    earlyCapabilityFlags: b.readUInt32LE())
            case .serverSecurity:
                var sec = ServerSecurityData(
                    encryptionMethod: try b.u32le("encryptionMethod"), encryptionLevel: try b.u32le("encryptionLevel"),
                    serverRandomLength: nil, certificate: nil)
                // With method and level both 0 (TLS or CredSSP underneath) nothing follows.
                if (sec.encryptionMethod != 0 || sec.encryptionLevel != 0) && b.remaining >= 8 {
                    let randomLength = try b.u32le("serverRandomLen")
                    let certLength = try b.u32le("serverCertLen")
                    sec.serverRandomLength = randomLength
                    try b.skipBytes(Int(randomLength), "serverRandom")
                    if certLength > 0 {
                        var cert = try b.slice(Int(certLength), "serverCertificate")
                        let start = cert.offset
                        sec.certificate = try ServerCertificate.parse(&cert)
                        sec.certificateRanges = ServerCertificate.derRanges(cert.base, from: start, to: cert.end)
                    }
                }
                out.security = sec
            case .serverNetwork:
                let channel = try b.u16le("MCSChannelId")
                let count = Int(try b.u16le("channelCount"))
                guard count <= ClientNetworkData.maxChannels else {
                    throw .malformed("channelCount \(count)", offset: b.offset - 2)
                }
                var ids: [UInt16] = []
                ids.reserveCapacity(count)
                for _ in 0..<count { ids.append(try b.u16le("channelIdArray")) }
                out.network = ServerNetworkData(mcsChannelId: channel, channelIds: ids)
            default:
                if out.otherBlocks.count < maxOtherBlocks { out.otherBlocks.append(type) }
            }
        }
        return out
    }

    static func readKey(_ c: inout ByteCursor) throws(ParseError) {
        guard c.hasPrefix(t124Key) else {
            throw c.remaining < t124Key.count
                ? .malformed("GCC ConnectData truncated", offset: c.offset)
                : .unsupported("GCC ConnectData key is not T.124 (0.0.20.124.0.1)", offset: c.offset)
        }
        _ = c.skip(t124Key.count)
    }

    /// numberOfSets 1, an h221NonStandard key (`Duca` or `McDn`), then the user data
    /// octet string: returns a cursor over the data blocks.
    static func readUserData(_ c: inout ByteCursor, key: [UInt8]) throws(ParseError) -> ByteCursor {
        let sets = try c.u8("number of UserData sets")
        guard sets == 1 else { throw .unsupported("\(sets) UserData sets", offset: c.offset - 1) }
        let keyChoice = try c.u8("UserData key choice")
        guard keyChoice == 0xC0 else { throw .unsupported("UserData key choice 0x\(hex2(keyChoice))", offset: c.offset - 1) }
        let keyLength = Int(try c.u8("h221NonStandard length")) + 4
        let found = try c.slice(keyLength, "h221NonStandard key")
        guard keyLength == key.count, found.hasPrefix(key) else {
            throw .unsupported("h221NonStandard key is not \(String(decoding: key, as: UTF8.self))", offset: found.offset)
        }
        let length = try PERReader.readLength(&c)
        return try c.slice(length, "GCC user data")
    }

    /// One TS_UD_HEADER block (MS-RDPBCGR 2.2.1.3.1): type and a cursor over its body.
    static func readBlock(_ c: inout ByteCursor) throws(ParseError) -> (GCCBlockType, ByteCursor) {
        let at = c.offset
        let type = GCCBlockType(rawValue: try c.u16le("TS_UD_HEADER type"))
        let length = Int(try c.u16le("TS_UD_HEADER length"))
        guard length >= 4 else { throw .malformed("\(type.name) length \(length)", offset: at + 2) }
        return (type, try c.slice(length - 4, type.name))
    }
}

/// A fixed-size UTF-16LE field up to its first NUL.
func utf16String(_ c: ByteCursor) -> String {
    var c = c
    var units: [UInt16] = []
    units.reserveCapacity(c.remaining / 2)
    var ascii = true
    while let u = c.readUInt16LE(), u != 0 {
        units.append(u)
        if u >= 0x80 { ascii = false }
    }
    // Client and host names are nearly always ASCII: taken as bytes, since transcoding
    // UTF-16 cost some 500 instructions a character.
    if ascii {
        let s = String(unsafeUninitializedCapacity: units.count) { out in
            for (i, u) in units.enumerated() { out[i] = UInt8(truncatingIfNeeded: u) }
            return units.count
        }
        return units.allSatisfy { $0 >= 0x20 && $0 != 0x7F } ? s : Printable.escapingControls(s)
    }
    return Printable.escapingControls(String(decoding: units, as: UTF16.self))
}

/// A fixed-size ANSI field up to its first NUL (printable ASCII, others escaped).
func ansiString(_ c: ByteCursor) -> String {
    var n = 0
    while n < c.remaining, c.peekUInt8(at: n) != 0 { n += 1 }
    return c.peekSlice(n)?.asciiString(limit: n) ?? ""
}
