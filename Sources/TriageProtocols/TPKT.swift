import TriageDecoding

// TPKT (RFC 1006) and X.224 class 0 (ITU-T X.224) as RDP uses them, with the RDP
// negotiation structures of MS-RDPBCGR 2.2.1.1 and 2.2.1.2. Pure parsers: bytes in,
// value or `ParseError` out; a failed read leaves the cursor where it was.

/// TPKT header (RFC 1006 section 6; MS-RDPBCGR 2.2.1.1 `tpktHeader`): version 3,
/// reserved, and a big-endian length that includes the four header bytes.
public struct TPKTHeader: Sendable, Equatable {
    public static let size = 4
    /// The only version RFC 1006 defines.
    public static let version: UInt8 = 3
    /// Largest packet the 16-bit length can describe.
    public static let maxLength = 0xFFFF

    public var length: Int

    /// Reads one complete TPKT packet: returns its header and a cursor over its payload,
    /// and advances past the packet. Throws `needMore` until the whole packet is there.
    public static func readPacket(_ c: inout ByteCursor) throws(ParseError) -> (TPKTHeader, ByteCursor) {
        guard let version = c.peekUInt8() else { throw .needMore(atLeast: 1) }
        guard version == Self.version else {
            throw .malformed("TPKT version \(version), expected 3", offset: 0)
        }
        guard let length16 = c.peekUInt16BE(at: 2) else { throw .needMore(atLeast: size) }
        let length = Int(length16)
        // The smallest X.224 TPDU after the header is 3 bytes (a DT header).
        guard length >= size + 3 else { throw .malformed("TPKT length \(length) too small", offset: 2) }
        guard length <= c.remaining else { throw .needMore(atLeast: length) }
        var copy = c
        _ = copy.skip(size)
        guard let payload = copy.readSlice(length - size) else { throw .needMore(atLeast: length) }
        c = copy
        return (TPKTHeader(length: length), payload)
    }
}

/// X.224 TPDU codes (ITU-T X.224 section 13.1, table 8; the high nibble, class 0).
public struct X224TPDUCode: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let connectionRequest = X224TPDUCode(rawValue: 0xE0)
    public static let connectionConfirm = X224TPDUCode(rawValue: 0xD0)
    public static let disconnectRequest = X224TPDUCode(rawValue: 0x80)
    public static let data = X224TPDUCode(rawValue: 0xF0)
    public static let error = X224TPDUCode(rawValue: 0x70)

    /// The spec abbreviation, or `tpdu-0xNN`.
    public var name: String {
        switch rawValue {
        case 0xE0: "CR"
        case 0xD0: "CC"
        case 0x80: "DR"
        case 0xF0: "DT"
        case 0x70: "ER"
        default: "tpdu-0x" + String(rawValue, radix: 16)
        }
    }
}

/// RDP_NEG_REQ flags (MS-RDPBCGR 2.2.1.1.1).
public struct NegotiationRequestFlags: OptionSet, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let restrictedAdminModeRequired = NegotiationRequestFlags(rawValue: 0x01)
    public static let redirectedAuthenticationModeRequired = NegotiationRequestFlags(rawValue: 0x02)
    public static let correlationInfoPresent = NegotiationRequestFlags(rawValue: 0x08)
}

/// RDP_NEG_RSP flags (MS-RDPBCGR 2.2.1.2.1).
public struct NegotiationResponseFlags: OptionSet, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let extendedClientDataSupported = NegotiationResponseFlags(rawValue: 0x01)
    public static let dynvcGFXProtocolSupported = NegotiationResponseFlags(rawValue: 0x02)
    public static let reserved = NegotiationResponseFlags(rawValue: 0x04)
    public static let restrictedAdminModeSupported = NegotiationResponseFlags(rawValue: 0x08)
    public static let redirectedAuthenticationModeSupported = NegotiationResponseFlags(rawValue: 0x10)
}

/// Type byte of the negotiation structures (MS-RDPBCGR 2.2.1.1.1, 2.2.1.2.1, 2.2.1.2.2,
/// 2.2.1.1.2).
public struct NegotiationType: RawRepresentable, Sendable, Codable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// TYPE_RDP_NEG_REQ
    public static let request = NegotiationType(rawValue: 0x01)
    /// TYPE_RDP_NEG_RSP
    public static let response = NegotiationType(rawValue: 0x02)
    /// TYPE_RDP_NEG_FAILURE
    public static let failure = NegotiationType(rawValue: 0x03)
    /// TYPE_RDP_CORRELATION_INFO
    public static let correlationInfo = NegotiationType(rawValue: 0x06)
}

/// RDP Negotiation Request, RDP_NEG_REQ (MS-RDPBCGR 2.2.1.1.1).
public struct NegotiationRequest: Sendable, Equatable {
    public static let size = 8
    public var flags: NegotiationRequestFlags
    public var requestedProtocols: SecurityProtocols
}

/// RDP Correlation Info, RDP_NEG_CORRELATION_INFO (MS-RDPBCGR 2.2.1.1.2).
public struct NegotiationCorrelationInfo: Sendable, Equatable {
    public static let size = 36
    /// The 16-byte correlationId as a GUID string (first three fields little-endian).
    public var correlationID: String
}

/// X.224 Connection Request PDU with its RDP payload (MS-RDPBCGR 2.2.1.1; X.224 13.3).
public struct X224ConnectionRequest: Sendable, Equatable {
    public var destinationReference: UInt16
    public var sourceReference: UInt16
    public var classOption: UInt8
    /// The IDENTIFIER of `Cookie: mstshash=IDENTIFIER` (MS-RDPBCGR 2.2.1.1 cookie).
    public var cookie: String?
    /// Any other CR LF-terminated line, e.g. a load balancer's `Cookie: msts=...`
    /// (MS-RDPBCGR 2.2.1.1 routingToken), without the CR LF.
    public var routingToken: String?
    /// The cookie or token line had no CR LF terminator.
    public var unterminatedLine: Bool
    public var negotiationRequest: NegotiationRequest?
    public var correlationInfo: NegotiationCorrelationInfo?
    /// Bytes after the parsed structures (unknown extensions), kept as a count.
    public var trailingBytes: Int
    /// Where the cookie's IDENTIFIER and the routing token line lie in the parsed buffer,
    /// for a redacted export to overwrite them.
    public var cookieRange: Range<Int>? = nil
    public var routingTokenRange: Range<Int>? = nil
}

/// What a Connection Confirm carries after the fixed X.224 fields (MS-RDPBCGR 2.2.1.2).
public enum NegotiationResult: Sendable, Equatable {
    /// Nothing: an old server, or an old client that sent no RDP_NEG_REQ.
    case none
    /// RDP_NEG_RSP (MS-RDPBCGR 2.2.1.2.1).
    case response(flags: NegotiationResponseFlags, selectedProtocol: SecurityProtocols)
    /// RDP_NEG_FAILURE (MS-RDPBCGR 2.2.1.2.2).
    case failure(flags: UInt8, code: NegotiationFailureCode)
    /// A structure of an unknown type, kept by its type byte.
    case unknown(type: UInt8)
}

/// X.224 Connection Confirm PDU (MS-RDPBCGR 2.2.1.2; X.224 13.4).
public struct X224ConnectionConfirm: Sendable, Equatable {
    public var destinationReference: UInt16
    public var sourceReference: UInt16
    public var classOption: UInt8
    public var negotiation: NegotiationResult
}

/// X.224 Disconnect Request PDU (X.224 13.5; MS-RDPBCGR 1.3.1.1 uses it to refuse).
public struct X224DisconnectRequest: Sendable, Equatable {
    public var destinationReference: UInt16
    public var sourceReference: UInt16
    /// X.224 13.5.3 e: 0 unspecified, 1 congestion, 2 session entity not attached,
    /// 3 address unknown, 128 normal, 129 remote congestion, 130 negotiation failed, ...
    public var reason: UInt8
}

/// One X.224 TPDU inside a TPKT packet (X.224 section 13).
public enum X224TPDU: Sendable, Equatable {
    case connectionRequest(X224ConnectionRequest)
    case connectionConfirm(X224ConnectionConfirm)
    case disconnectRequest(X224DisconnectRequest)
    /// Data TPDU (X.224 13.7, MS-RDPBCGR 2.2.1.3 `x224Data`): the user data starts at
    /// `userDataOffset` within the TPKT payload.
    case data(userDataOffset: Int, userDataLength: Int)
    /// Another TPDU code, kept by its code.
    case other(code: X224TPDUCode)
}

/// X.224 class 0 parser (ITU-T X.224 section 13; MS-RDPBCGR 2.2.1.1 and 2.2.1.2).
public enum X224 {
    /// The `Cookie: mstshash=` prefix of MS-RDPBCGR 2.2.1.1 (matched case-insensitively).
    static let cookiePrefix = Array("Cookie: mstshash=".utf8)
    /// Longest cookie or routing token kept in facts.
    static let maxLineLength = 256

    /// Parses one TPKT packet and the X.224 TPDU in it, advancing past the packet.
    public static func parse(_ c: inout ByteCursor) throws(ParseError) -> X224TPDU {
        var copy = c
        var (_, payload) = try TPKTHeader.readPacket(&copy)
        let tpdu = try parseTPDU(&payload)
        c = copy
        return tpdu
    }

    /// Parses the TPDU in a TPKT payload (the cursor covers exactly the payload).
    public static func parseTPDU(_ c: inout ByteCursor) throws(ParseError) -> X224TPDU {
        let base = c.offset
        let li = Int(try c.u8("X.224 length indicator"))
        let codeByte = try c.u8("X.224 TPDU code")
        // The length indicator counts the header after itself; user data may follow.
        guard li >= 1, li <= c.remaining + 1 else {
            throw .malformed("X.224 length indicator \(li) exceeds the \(c.remaining + 1) bytes of the TPDU", offset: 0)
        }
        switch codeByte & 0xF0 {
        case X224TPDUCode.connectionRequest.rawValue:
            var header = try c.slice(li - 1, "X.224 CR header")
            return .connectionRequest(try parseConnectionRequest(&header, base: base))
        case X224TPDUCode.connectionConfirm.rawValue:
            var header = try c.slice(li - 1, "X.224 CC header")
            return .connectionConfirm(try parseConnectionConfirm(&header))
        case X224TPDUCode.disconnectRequest.rawValue:
            var header = try c.slice(li - 1, "X.224 DR header")
            let dst = try header.u16be("DR DST-REF")
            let src = try header.u16be("DR SRC-REF")
            let reason = try header.u8("DR reason")
            return .disconnectRequest(X224DisconnectRequest(destinationReference: dst, sourceReference: src, reason: reason))
        case X224TPDUCode.data.rawValue:
            guard li >= 2 else { throw .malformed("X.224 DT length indicator \(li)", offset: 0) }
            try c.skipBytes(li - 1, "X.224 DT header")
            return .data(userDataOffset: c.offset - base, userDataLength: c.remaining)
        default:
            return .other(code: X224TPDUCode(rawValue: codeByte & 0xF0))
        }
    }

    /// The variable part of a CR: an optional cookie or routing token line, then an
    /// optional RDP_NEG_REQ and RDP_NEG_CORRELATION_INFO (MS-RDPBCGR 2.2.1.1).
    static func parseConnectionRequest(_ h: inout ByteCursor, base: Int) throws(ParseError) -> X224ConnectionRequest {
        var cr = X224ConnectionRequest(
            destinationReference: try h.u16be("CR DST-REF"), sourceReference: try h.u16be("CR SRC-REF"),
            classOption: try h.u8("CR class option"), cookie: nil, routingToken: nil, unterminatedLine: false,
            negotiationRequest: nil, correlationInfo: nil, trailingBytes: 0)
        if !h.isEmpty && !startsWithNegotiationRequest(h) {
            let lineLength: Int
            if let crlf = h.indexOfCRLF() {
                lineLength = crlf
            } else {
                // No terminator: the line runs to the negotiation request if one follows.
                cr.unterminatedLine = true
                lineLength = unterminatedLineLength(h)
            }
            let line = try h.slice(lineLength, "cookie")
            if !cr.unterminatedLine { try h.skipBytes(2, "cookie CR LF") }
            if line.hasPrefixIgnoringCase(cookiePrefix) {
                var value = line
                _ = value.skip(cookiePrefix.count)
                cr.cookie = value.asciiString(limit: maxLineLength)
                cr.cookieRange = value.offset..<value.end
            } else {
                cr.routingToken = line.asciiString(limit: maxLineLength)
                cr.routingTokenRange = line.offset..<line.end
            }
        }
        if startsWithNegotiationRequest(h) {
            _ = try h.u8("RDP_NEG_REQ type")
            let flags = NegotiationRequestFlags(rawValue: try h.u8("RDP_NEG_REQ flags"))
            let length = try h.u16le("RDP_NEG_REQ length")
            guard length == UInt16(NegotiationRequest.size) else {
                throw .malformed("RDP_NEG_REQ length \(length), expected 8", offset: h.offset - base - 2)
            }
            let requested = SecurityProtocols(rawValue: try h.u32le("RDP_NEG_REQ requestedProtocols"))
            cr.negotiationRequest = NegotiationRequest(flags: flags, requestedProtocols: requested)
            if flags.contains(.correlationInfoPresent), h.peekUInt8() == NegotiationType.correlationInfo.rawValue {
                cr.correlationInfo = try parseCorrelationInfo(&h, base: base)
            }
        }
        cr.trailingBytes = h.remaining
        return cr
    }

    static func startsWithNegotiationRequest(_ h: ByteCursor) -> Bool {
        h.remaining >= NegotiationRequest.size && h.peekUInt8() == NegotiationType.request.rawValue
            && h.peekUInt8(at: 2) == 0x08 && h.peekUInt8(at: 3) == 0x00
    }

    /// Length of a cookie line without CR LF: up to a trailing RDP_NEG_REQ (with or
    /// without correlation info), else everything.
    static func unterminatedLineLength(_ h: ByteCursor) -> Int {
        for tail in [NegotiationRequest.size, NegotiationRequest.size + NegotiationCorrelationInfo.size] {
            let at = h.remaining - tail
            if at >= 0, var rest = h.peekSlice(h.remaining), rest.skip(at), startsWithNegotiationRequest(rest) {
                return at
            }
        }
        return h.remaining
    }

    static func parseCorrelationInfo(_ h: inout ByteCursor, base: Int) throws(ParseError) -> NegotiationCorrelationInfo {
        let start = h.offset
        _ = try h.u8("RDP_NEG_CORRELATION_INFO type")
        _ = try h.u8("RDP_NEG_CORRELATION_INFO flags")
        let length = try h.u16le("RDP_NEG_CORRELATION_INFO length")
        guard length == UInt16(NegotiationCorrelationInfo.size) else {
            throw .malformed("RDP_NEG_CORRELATION_INFO length \(length), expected 36", offset: start - base + 2)
        }
        let id = try h.slice(16, "correlationId")
        try h.skipBytes(16, "RDP_NEG_CORRELATION_INFO reserved")
        return NegotiationCorrelationInfo(correlationID: guidString(id))
    }

    /// The fixed part of a CC, then an optional RDP_NEG_RSP or RDP_NEG_FAILURE
    /// (MS-RDPBCGR 2.2.1.2).
    static func parseConnectionConfirm(_ h: inout ByteCursor) throws(ParseError) -> X224ConnectionConfirm {
        var cc = X224ConnectionConfirm(
            destinationReference: try h.u16be("CC DST-REF"), sourceReference: try h.u16be("CC SRC-REF"),
            classOption: try h.u8("CC class option"), negotiation: .none)
        guard !h.isEmpty else { return cc }
        let type = try h.u8("negotiation type")
        let flags = try h.u8("negotiation flags")
        let length = try h.u16le("negotiation length")
        guard length == 8 else {
            throw .malformed("negotiation structure length \(length), expected 8", offset: h.offset - 2)
        }
        let value = try h.u32le("negotiation value")
        switch type {
        case NegotiationType.response.rawValue:
            cc.negotiation = .response(
                flags: NegotiationResponseFlags(rawValue: flags), selectedProtocol: SecurityProtocols(rawValue: value))
        case NegotiationType.failure.rawValue:
            cc.negotiation = .failure(flags: flags, code: NegotiationFailureCode(rawValue: value))
        default:
            cc.negotiation = .unknown(type: type)
        }
        return cc
    }

    /// A GUID's canonical string: Data1-3 little-endian, Data4 as bytes.
    static func guidString(_ c: ByteCursor) -> String {
        var c = c
        let d1 = c.readUInt32LE() ?? 0
        let d2 = c.readUInt16LE() ?? 0
        let d3 = c.readUInt16LE() ?? 0
        var rest = ""
        for i in 0..<8 {
            if i == 2 { rest += "-" }
            rest += hex2(c.readUInt8() ?? 0)
        }
        return hex(d1, width: 8) + "-" + hex(UInt32(d2), width: 4) + "-" + hex(UInt32(d3), width: 4) + "-" + rest
    }
}

/// How the next RDP PDU in a TPKT-framed stream is framed (MS-RDPBCGR 2.2.8.1.2 and
/// 2.2.9.1.2): slow-path PDUs ride in TPKT, fast-path PDUs start with an action byte whose
/// two low bits are 0 and carry a one- or two-byte length.
public enum RDPFraming: Sendable, Equatable {
    case tpkt(length: Int)
    case fastPath(length: Int)

    /// The framing and total length of the PDU at the cursor, without advancing.
    public static func peek(_ c: ByteCursor) throws(ParseError) -> RDPFraming {
        guard let first = c.peekUInt8() else { throw .needMore(atLeast: 1) }
        if first == TPKTHeader.version {
            guard let length = c.peekUInt16BE(at: 2) else { throw .needMore(atLeast: TPKTHeader.size) }
            guard length >= TPKTHeader.size + 3 else { throw .malformed("TPKT length \(length) too small", offset: 2) }
            return .tpkt(length: Int(length))
        }
        // fpOutputHeader / fpInputHeader: action FASTPATH_*_ACTION_FASTPATH is 0.
        guard first & 0x03 == 0 else {
            throw .malformed("neither TPKT nor fast-path (first byte 0x\(hex2(first)))", offset: 0)
        }
        guard let l1 = c.peekUInt8(at: 1) else { throw .needMore(atLeast: 2) }
        var length = Int(l1)
        if l1 & 0x80 != 0 {
            guard let l2 = c.peekUInt8(at: 2) else { throw .needMore(atLeast: 3) }
            length = Int(l1 & 0x7F) << 8 | Int(l2)
        }
        guard length >= 2 else { throw .malformed("fast-path length \(length) too small", offset: 1) }
        return .fastPath(length: length)
    }

    public var length: Int {
        switch self {
        case .tpkt(let n), .fastPath(let n): n
        }
    }
}

// MARK: - Small text helpers shared by the parsers

/// The lowercase hex digit of `v` (0-15), computed: a table costs an initialisation check
/// and a bounds check per digit.
@inline(__always)
func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 &+ v : 0x57 &+ v }

@inline(__always)
func hex2(_ b: UInt8) -> String {
    var pair = (hexDigit(b >> 4), hexDigit(b & 0xF))
    return withUnsafeBytes(of: &pair) { String(decoding: $0, as: UTF8.self) }
}

/// Lowercase hex of a byte sequence.
func hexString<S: Sequence<UInt8>>(_ bytes: S) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(2 * bytes.underestimatedCount)
    for b in bytes {
        out.append(hexDigit(b >> 4))
        out.append(hexDigit(b & 0x0F))
    }
    return String(decoding: out, as: UTF8.self)
}

func hex(_ v: UInt32, width: Int) -> String {
    let s = String(v, radix: 16)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

extension ByteCursor {
    /// The remaining bytes as text: printable ASCII kept, anything else as `\xNN`.
    func asciiString(limit: Int) -> String {
        let n = max(0, min(remaining, limit))
        guard n > 0 else { return "" }
        return Printable.escaping(UnsafeRawBufferPointer(rebasing: base[offset..<offset + n]))
    }

    /// Whether the next bytes equal `literal`, ignoring ASCII case.
    func hasPrefixIgnoringCase(_ literal: [UInt8]) -> Bool {
        guard literal.count <= remaining else { return false }
        for (i, b) in literal.enumerated() {
            guard let x = peekUInt8(at: i) else { return false }
            let lower = { (v: UInt8) -> UInt8 in v >= 0x41 && v <= 0x5A ? v | 0x20 : v }
            if lower(x) != lower(b) { return false }
        }
        return true
    }

    /// Hex of the remaining bytes (for serial numbers and fingerprints).
    func hexString(uppercase: Bool = false) -> String {
        let out = TriageProtocols.hexString(remainingBytes)
        return uppercase ? out.uppercased() : out
    }
}
