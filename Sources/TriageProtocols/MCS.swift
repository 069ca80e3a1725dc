import TriageDecoding

// MCS (ITU-T T.125) as RDP uses it during the Basic Settings Exchange: the BER-encoded
// Connect-Initial and Connect-Response (MS-RDPBCGR 2.2.1.3 and 2.2.1.4), whose userData
// carries the GCC conference PDUs of GCC.swift, and the PER-encoded DomainMCSPDU header
// (for Disconnect-Provider-Ultimatum).

/// The BER subset T.125 connect PDUs use (ITU-T X.690 section 8.1): one- or two-byte
/// identifiers and definite lengths of up to four bytes.
enum BERReader {
    /// An identifier as one or two bytes (`0x7F65` for [APPLICATION 101]).
    static func readTag(_ c: inout ByteCursor) throws(ParseError) -> UInt16 {
        let first = try c.u8("BER identifier")
        guard first & 0x1F == 0x1F else { return UInt16(first) }
        let second = try c.u8("BER identifier")
        guard second & 0x80 == 0 else { throw .unsupported("BER tag number above 127", offset: c.offset - 1) }
        return UInt16(first) << 8 | UInt16(second)
    }

    static func readLength(_ c: inout ByteCursor) throws(ParseError) -> Int {
        let first = try c.u8("BER length")
        if first & 0x80 == 0 { return Int(first) }
        let count = Int(first & 0x7F)
        guard count >= 1, count <= 4 else {
            throw count == 0
                ? .unsupported("BER indefinite length", offset: c.offset - 1)
                : .malformed("BER length of \(count) bytes", offset: c.offset - 1)
        }
        var value = 0
        for _ in 0..<count { value = value << 8 | Int(try c.u8("BER length")) }
        return value
    }

    /// Reads a TLV with identifier `tag` and returns a cursor over its contents.
    static func read(_ c: inout ByteCursor, tag: UInt16, _ what: @autoclosure () -> String) throws(ParseError) -> ByteCursor {
        let at = c.offset
        let t = try readTag(&c)
        guard t == tag else {
            throw .malformed("\(what()): tag 0x\(String(t, radix: 16)), expected 0x\(String(tag, radix: 16))", offset: at)
        }
        let length = try readLength(&c)
        return try c.slice(length, what())
    }

    /// An unsigned INTEGER or ENUMERATED of up to four content bytes.
    static func readUnsigned(_ c: inout ByteCursor, tag: UInt16, _ what: @autoclosure () -> String) throws(ParseError) -> UInt32 {
        var v = try read(&c, tag: tag, what())
        guard v.remaining >= 1, v.remaining <= 5 else {
            throw .malformed("\(what()): \(v.remaining) content bytes", offset: v.offset)
        }
        var value: UInt64 = 0
        while let b = v.readUInt8() { value = value << 8 | UInt64(b) }
        guard value <= UInt64(UInt32.max) else { throw .malformed("\(what()) out of range", offset: v.offset) }
        return UInt32(value)
    }

    static let boolean: UInt16 = 0x01
    static let integer: UInt16 = 0x02
    static let octetString: UInt16 = 0x04
    static let enumerated: UInt16 = 0x0A
    static let sequence: UInt16 = 0x30
}

/// The aligned-PER pieces GCC and the DomainMCSPDU use (ITU-T X.691).
enum PERReader {
    /// A length determinant (X.691 10.9): one byte below 128, two bytes with `10` in the
    /// top bits; the fragmented form (`11`) is not used by RDP.
    static func readLength(_ c: inout ByteCursor) throws(ParseError) -> Int {
        let first = try c.u8("PER length")
        if first & 0x80 == 0 { return Int(first) }
        guard first & 0x40 == 0 else { throw .unsupported("fragmented PER length", offset: c.offset - 1) }
        return Int(first & 0x3F) << 8 | Int(try c.u8("PER length"))
    }
}

/// DomainParameters (T.125 section 7, MS-RDPBCGR 2.2.1.3 `targetParameters`): kept as
/// the few numbers a report may show.
public struct MCSDomainParameters: Sendable, Equatable {
    public var maxChannelIds: UInt32
    public var maxUserIds: UInt32
    public var maxMCSPDUSize: UInt32
    public var protocolVersion: UInt32

    static func parse(_ c: inout ByteCursor, _ what: @autoclosure () -> String) throws(ParseError) -> MCSDomainParameters {
        var s = try BERReader.read(&c, tag: BERReader.sequence, what())
        var values: [UInt32] = []
        values.reserveCapacity(8)
        while !s.isEmpty && values.count < 8 {
            values.append(try BERReader.readUnsigned(&s, tag: BERReader.integer, "\(what()) field"))
        }
        guard values.count == 8 else { throw .malformed("\(what()): \(values.count) fields, expected 8", offset: s.offset) }
        return MCSDomainParameters(
            maxChannelIds: values[0], maxUserIds: values[1], maxMCSPDUSize: values[6], protocolVersion: values[7])
    }
}

/// MCS Connect-Initial (T.125 section 7 Connect-Initial, [APPLICATION 101];
/// MS-RDPBCGR 2.2.1.3 Client MCS Connect Initial PDU with GCC Conference Create Request).
public struct MCSConnectInitial: Sendable, Equatable {
    public static let tag: UInt16 = 0x7F65
    public var upwardFlag: Bool
    public var targetParameters: MCSDomainParameters
    /// The GCC Conference Create Request's client data blocks.
    public var clientData: GCCClientData

    /// Parses the PDU from the X.224 Data user data (the cursor covers exactly it).
    public static func parse(_ c: inout ByteCursor) throws(ParseError) -> MCSConnectInitial {
        var body = try BERReader.read(&c, tag: tag, "Connect-Initial")
        _ = try BERReader.read(&body, tag: BERReader.octetString, "callingDomainSelector")
        _ = try BERReader.read(&body, tag: BERReader.octetString, "calledDomainSelector")
        let upward = try BERReader.readUnsigned(&body, tag: BERReader.boolean, "upwardFlag")
        let target = try MCSDomainParameters.parse(&body, "targetParameters")
        _ = try MCSDomainParameters.parse(&body, "minimumParameters")
        _ = try MCSDomainParameters.parse(&body, "maximumParameters")
        var userData = try BERReader.read(&body, tag: BERReader.octetString, "userData")
        let data = try GCC.parseConferenceCreateRequest(&userData)
        return MCSConnectInitial(upwardFlag: upward != 0, targetParameters: target, clientData: data)
    }
}

/// T.125 Result (section 7, Result ENUMERATED) of a Connect-Response.
public struct MCSResult: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let successful = MCSResult(rawValue: 0)
    /// The T.125 name, or `result-N`.
    public var name: String { ProtocolTables.mcsResults[rawValue] ?? "result-\(rawValue)" }
}

/// MCS Connect-Response (T.125 section 7 Connect-Response, [APPLICATION 102];
/// MS-RDPBCGR 2.2.1.4 Server MCS Connect Response PDU with GCC Conference Create Response).
public struct MCSConnectResponse: Sendable, Equatable {
    public static let tag: UInt16 = 0x7F66
    public var result: MCSResult
    public var calledConnectId: UInt32
    public var domainParameters: MCSDomainParameters
    /// The server data blocks; nil when the response carried no usable user data (a
    /// failed result usually has none).
    public var serverData: GCCServerData?

    /// Parses the PDU from the X.224 Data user data (the cursor covers exactly it).
    public static func parse(_ c: inout ByteCursor) throws(ParseError) -> MCSConnectResponse {
        var body = try BERReader.read(&c, tag: tag, "Connect-Response")
        let result = try BERReader.readUnsigned(&body, tag: BERReader.enumerated, "result")
        let connectId = try BERReader.readUnsigned(&body, tag: BERReader.integer, "calledConnectId")
        let parameters = try MCSDomainParameters.parse(&body, "domainParameters")
        var response = MCSConnectResponse(
            result: MCSResult(rawValue: UInt8(truncatingIfNeeded: result)), calledConnectId: connectId,
            domainParameters: parameters, serverData: nil)
        if !body.isEmpty {
            var userData = try BERReader.read(&body, tag: BERReader.octetString, "userData")
            if !userData.isEmpty { response.serverData = try GCC.parseConferenceCreateResponse(&userData) }
        }
        return response
    }
}

/// DomainMCSPDU choice of the PER-encoded MCS PDUs after the connect phase (T.125
/// section 7 DomainMCSPDU; the choice index is the top six bits of the first byte).
public struct MCSDomainPDUType: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let erectDomainRequest = MCSDomainPDUType(rawValue: 1)
    public static let disconnectProviderUltimatum = MCSDomainPDUType(rawValue: 8)
    public static let attachUserRequest = MCSDomainPDUType(rawValue: 10)
    public static let attachUserConfirm = MCSDomainPDUType(rawValue: 11)
    public static let channelJoinRequest = MCSDomainPDUType(rawValue: 14)
    public static let channelJoinConfirm = MCSDomainPDUType(rawValue: 15)
    public static let sendDataRequest = MCSDomainPDUType(rawValue: 25)
    public static let sendDataIndication = MCSDomainPDUType(rawValue: 26)
}

/// The header of a PER-encoded DomainMCSPDU (T.125 section 7; MS-RDPBCGR 2.2.2.3
/// Disconnect Provider Ultimatum PDU carries a 3-bit Reason).
public struct MCSDomainPDU: Sendable, Equatable {
    public var type: MCSDomainPDUType
    /// The Reason of a Disconnect-Provider-Ultimatum (3 = rn-user-requested), else nil.
    public var reason: UInt8?

    /// Parses the header of the PDU at the cursor (the X.224 Data user data).
    public static func parse(_ c: inout ByteCursor) throws(ParseError) -> MCSDomainPDU {
        let first = try c.u8("DomainMCSPDU choice")
        let type = MCSDomainPDUType(rawValue: first >> 2)
        guard type == .disconnectProviderUltimatum else { return MCSDomainPDU(type: type, reason: nil) }
        // The 3-bit enumerated Reason straddles the first two bytes.
        let second = try c.u8("Disconnect-Provider-Ultimatum reason")
        return MCSDomainPDU(type: type, reason: (first & 0x03) << 1 | second >> 7)
    }
}
