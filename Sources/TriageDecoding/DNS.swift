/// A DNS message (RFC 1035 section 4.1), decoded far enough to tell which name led to
/// which address. Only responses on UDP port 53 are decoded, so the allocation for names
/// happens for DNS answers only, never on the per-packet path of RDP traffic.
public struct DNSMessage: Sendable, Equatable {
    public struct Answer: Sendable, Equatable {
        public var name: String
        public var type: UInt16
        public var ttl: UInt32
        /// A or AAAA record data.
        public var address: IPAddress?
        /// CNAME target.
        public var target: String?
    }

    public var id: UInt16
    public var isResponse: Bool
    /// Response code (RFC 1035 section 4.1.1): 0 no error, 2 server failure, 3 NXDOMAIN.
    public var rcode: UInt8
    public var questionName: String?
    public var questionType: UInt16?
    public var answers: [Answer]

    public enum RecordType {
        public static let a: UInt16 = 1
        public static let cname: UInt16 = 5
        public static let aaaa: UInt16 = 28
    }

    public enum DecodeError: Error, Equatable {
        case truncated
        case badName
    }

    /// The most answers kept from one message.
    static let maxAnswers = 32

    /// The fixed 12-byte header (RFC 1035 section 4.1.1).
    public struct Header: Sendable, Equatable {
        public var id: UInt16
        public var flags: UInt16
        public var questions: UInt16
        public var answers: UInt16
        public var isResponse: Bool { flags & 0x8000 != 0 }
    }

    /// Reads only the header: enough to file a query without decoding its names.
    public static func header(_ message: UnsafeRawBufferPointer) throws(DecodeError) -> Header {
        var c = ByteCursor(message)
        return try readHeader(&c)
    }

    static func readHeader(_ c: inout ByteCursor) throws(DecodeError) -> Header {
        guard let id = c.readUInt16BE(), let flags = c.readUInt16BE(), let qd = c.readUInt16BE(),
            let an = c.readUInt16BE(), c.skip(4)
        else { throw .truncated }
        return Header(id: id, flags: flags, questions: qd, answers: an)
    }

    public static func decode(_ message: UnsafeRawBufferPointer) throws(DecodeError) -> DNSMessage {
        var c = ByteCursor(message)
        let h = try readHeader(&c)
        let (qd, an) = (h.questions, h.answers)
        var m = DNSMessage(
            id: h.id, isResponse: h.isResponse, rcode: UInt8(h.flags & 0x000f),
            questionName: nil, questionType: nil, answers: [])
        for i in 0..<Int(qd) {
            let name = try readName(&c, message: message)
            guard let type = c.readUInt16BE(), c.skip(2) else { throw .truncated }
            if i == 0 {
                m.questionName = name
                m.questionType = type
            }
        }
        for _ in 0..<min(Int(an), maxAnswers) {
            let name = try readName(&c, message: message)
            guard let type = c.readUInt16BE(), c.skip(2), let ttl = c.readUInt32BE(), let rdlength = c.readUInt16BE(),
                var rdata = c.readSlice(Int(rdlength))
            else { throw .truncated }
            var answer = Answer(name: name, type: type, ttl: ttl, address: nil, target: nil)
            switch type {
            case RecordType.a where rdlength == 4:
                answer.address = rdata.readUInt32BE().map { IPAddress(ipv4: $0) }
            case RecordType.aaaa where rdlength == 16:
                if let h = rdata.readUInt64BE(), let l = rdata.readUInt64BE() {
                    answer.address = IPAddress(ipv6High: h, low: l)
                }
            case RecordType.cname:
                answer.target = try readName(&rdata, message: message)
            default: break
            }
            m.answers.append(answer)
        }
        return m
    }

    /// Where the A and AAAA record data sit in a message (offset, is IPv6), for rewriting
    /// addresses in an exported capture. Empty when the message does not parse.
    public static func addressRecordOffsets(_ message: UnsafeRawBufferPointer) -> [(Int, Bool)] {
        var c = ByteCursor(message)
        guard c.skip(4), let qd = c.readUInt16BE(), let an = c.readUInt16BE(), let ns = c.readUInt16BE(),
            let ar = c.readUInt16BE()
        else { return [] }
        var out: [(Int, Bool)] = []
        do {
            for _ in 0..<Int(qd) {
                _ = try readName(&c, message: message)
                guard c.skip(4) else { return out }
            }
            for _ in 0..<min(Int(an) + Int(ns) + Int(ar), 256) {
                _ = try readName(&c, message: message)
                guard let type = c.readUInt16BE(), c.skip(6), let length = c.readUInt16BE() else { return out }
                if (type == RecordType.a && length == 4) || (type == RecordType.aaaa && length == 16) {
                    out.append((c.offset, type == RecordType.aaaa))
                }
                guard c.skip(Int(length)) else { return out }
            }
        } catch {
            return out
        }
        return out
    }

    /// Where the names of a message sit (questions, owners of records, CNAME, NS and PTR
    /// targets), label by label, for rewriting them in an exported capture. Stops at the
    /// first thing that does not parse, keeping the names found before it.
    public static func nameFields(_ message: UnsafeRawBufferPointer) -> [NameField] {
        var c = ByteCursor(message)
        guard c.skip(4), let qd = c.readUInt16BE(), let an = c.readUInt16BE(), let ns = c.readUInt16BE(),
            let ar = c.readUInt16BE()
        else { return [] }
        var out: [NameField] = []
        func name() -> Bool {
            guard let f = nameField(&c, message: message) else { return false }
            if !f.ranges.isEmpty { out.append(f) }
            return true
        }
        for _ in 0..<min(Int(qd), 256) {
            guard name(), c.skip(4) else { return out }
        }
        for _ in 0..<min(Int(an) + Int(ns) + Int(ar), 256) {
            guard name(), let type = c.readUInt16BE(), c.skip(6), let length = c.readUInt16BE(),
                var data = c.readSlice(Int(length))
            else { return out }
            // CNAME, NS and PTR data is a name (RFC 1035 3.3.1, 3.3.11, 3.3.12).
            if type == RecordType.cname || type == 2 || type == 12 {
                guard let f = nameField(&data, message: message) else { return out }
                if !f.ranges.isEmpty { out.append(f) }
            }
        }
        return out
    }

    /// One name's labels as ranges of the message, read as `readName` reads it.
    static func nameField(_ c: inout ByteCursor, message: UnsafeRawBufferPointer) -> NameField? {
        var probe = c
        guard let shown = try? readName(&probe, message: message) else { return nil }
        var ranges: [Range<Int>] = []
        var cursor = c
        var jumps = 0
        while let len = cursor.readUInt8(), len != 0 {
            if len & 0xC0 == 0xC0 {
                guard let low = cursor.readUInt8() else { return nil }
                let target = Int(len & 0x3f) << 8 | Int(low)
                jumps += 1
                guard jumps <= 32, target < message.count else { return nil }
                cursor = ByteCursor(message, from: target, to: message.count)
                continue
            }
            let start = cursor.offset
            guard cursor.skip(Int(len)) else { return nil }
            ranges.append(start..<cursor.offset)
        }
        c = probe
        return NameField(ranges, kind: .host, encoding: .bytes, shown: shown)
    }

    /// RFC 1035 section 4.1.4: labels with compression pointers; pointer loops and
    /// overlong names are errors.
    static func readName(_ c: inout ByteCursor, message: UnsafeRawBufferPointer) throws(DecodeError) -> String {
        // The name's bytes, dots between labels, decoded once at the end (a string per label
        // and a join cost more than the rest of the message). A label's bytes never run into
        // the next.
        var name: [UInt8] = []
        name.reserveCapacity(64)
        var cursor = c
        var jumped = false
        var jumps = 0
        var total = 0
        while true {
            guard let len = cursor.readUInt8() else { throw .truncated }
            if len == 0 { break }
            if len & 0xC0 == 0xC0 {
                guard let low = cursor.readUInt8() else { throw .truncated }
                let target = Int(len & 0x3f) << 8 | Int(low)
                if !jumped { c = cursor }
                jumped = true
                jumps += 1
                guard jumps <= 32, target < message.count else { throw .badName }
                cursor = ByteCursor(message, from: target, to: message.count)
                continue
            }
            guard len & 0xC0 == 0 else { throw .badName }
            total += Int(len) + 1
            guard total <= 255, let bytes = cursor.readSlice(Int(len)) else { throw total > 255 ? .badName : .truncated }
            if total > Int(len) + 1 { name.append(UInt8(ascii: ".")) }
            name.append(contentsOf: bytes.remainingBytes)
        }
        if !jumped { c = cursor }
        // Names are ASCII by the protocol; anything else is shown as \xNN, as the X.224
        // cookie and SNI are, so a name cannot carry control characters into a report.
        return Printable.escaping(name)
    }
}
