import Foundation
import TestSupport
import Testing

/// `--redact` keeps no address, user, domain, host or certificate identity in any output,
/// and an exported frame differs from the original only in the fields that hold them.
@Suite struct RedactionTests: RunsTheTool {
    static let formats = ["text", "json", "ndjson", "markdown"]

    func redacted(_ capture: String, _ format: String) throws -> String {
        let r = try Run.program(exe, ["analyze", "--redact", "--color", "never", "--format", format, capture])
        #expect(r.status != 2, "\(capture) \(format): \(r.stderr)")
        return r.stdout
    }

    /// `text` as a whole word (not inside a longer name, nor a pseudonym like `user-1`).
    static func containsWord(_ text: String, _ word: String) -> Bool {
        let t = Array(text.lowercased().utf8)
        let w = Array(word.lowercased().utf8)
        guard !w.isEmpty, w.count <= t.count else { return false }
        func isWordByte(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 97 && b <= 122) }
        for i in 0...(t.count - w.count) where t[i..<(i + w.count)].elementsEqual(w) {
            let before = i == 0 || !isWordByte(t[i - 1])
            let after = i + w.count == t.count || !isWordByte(t[i + w.count])
            if before && after { return true }
        }
        return false
    }

    /// The IPv6 capture's addresses, client and server, in every format (the server's
    /// address once stayed in "Connected to 2001:db8:2::20: ...", a colon after it).
    @Test(arguments: formats) func ipv6AddressesAreReplaced(format: String) throws {
        let out = try redacted(Repo.captures + "/success-ipv6.pcap", format)
        for a in ["2001:db8:1::10", "2001:db8:2::20"] { #expect(!out.contains(a), "\(format): \(a) in\n\(out)") }
        #expect(out.contains("2001:db8:ffff::"))
    }

    /// Every committed capture, every format: none of the addresses tshark sees in it, and
    /// none of its cookie names.
    @Test(.enabled(if: Prerequisite.runs(Tshark.path != nil), "tshark is not installed"), arguments: Repo.committedCaptures)
    func noAddressOrCookieSurvives(capture: String) throws {
        let fields = try Tshark.run(["-r", capture, "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst",
                                     "-e", "rdp.rt_cookie"])
        var addresses = Set<String>()
        var names = Set<String>()
        for line in fields.split(separator: "\n") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            for c in columns.prefix(4) { for a in c.split(separator: ",") where !a.isEmpty { addresses.insert(String(a)) } }
            if columns.count > 4, columns[4].hasPrefix("Cookie: mstshash=") {
                let cookie = String(columns[4].dropFirst("Cookie: mstshash=".count))
                names.insert(cookie)
                for part in cookie.split(whereSeparator: { $0 == "\\" || $0 == "@" }) { names.insert(String(part)) }
            }
        }
        #expect(!addresses.isEmpty)
        for format in Self.formats {
            let out = try redacted(capture, format)
            for a in addresses { #expect(!out.contains(a), "\(capture) \(format): address \(a) left") }
            for n in names { #expect(!Self.containsWord(out, n), "\(capture) \(format): cookie name \(n) left") }
        }
    }

    /// Through a proxy the target is named only in the proxy request (never in an IP header):
    /// it gets a pseudonym in every format and in the exported frames: in the
    /// SOCKS5 request (FreeRDP sends the address as a name) and in an HTTP CONNECT line and
    /// its Host header.
    @Test(arguments: ["socks5-refused", "http-connect-forbidden"])
    func proxyTargetsLeaveEveryOutput(_ name: String) throws {
        let target = Array("198.51.100.20".utf8)  // FreeRDP names it as text (SOCKS5 ATYP 3)
        let capture = Repo.captures + "/\(name).pcap"
        for format in Self.formats {
            let out = try redacted(capture, format)
            #expect(!out.contains("198.51.100.20"), "\(name) \(format): the proxy's target left")
            #expect(out.contains("proxy"), "\(name) \(format)")
        }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Run.program(exe, ["analyze", "--redact", "--export", dir, capture])
        #expect(r.status == 1, "\(r.stderr)")
        let pcaps = entries(dir).filter { $0.hasSuffix(".pcap") }
        try #require(pcaps.count == 1)
        let original = Data(try Data(contentsOf: URL(fileURLWithPath: capture)))
        #expect(original.range(of: Data(target)) != nil, "the original names the target")
        let exported = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + pcaps[0]))
        #expect(exported.range(of: Data(target)) == nil, "\(name): the target left in the exported frames")
        #expect(exported.count == original.count, "only fields are overwritten, nothing moves")
    }

    /// `DOMAIN\user`: both parts get pseudonyms, in the reports and in the exported frames.
    @Test func domainAndUserOfACookie() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/domain.pcap"
        try Data(SyntheticCapture(cookie: "CORP\\bob", serverName: "rdp.corp.example").pcap).write(to: URL(fileURLWithPath: path))
        for format in Self.formats {
            let out = try redacted(path, format)
            for word in ["CORP", "bob", "rdp.corp.example"] { #expect(!Self.containsWord(out, word), "\(format): \(word) in\n\(out)") }
        }
        let r = try Run.program(exe, ["analyze", "--redact", "--export", dir + "/out", path])
        #expect(r.status == 1, "\(r.stderr)")
        for word in ["CORP", "bob"] { #expect(!Self.containsWord(r.stdout, word)) }
        let pcap = try #require(entries(dir + "/out").first { $0.hasSuffix(".pcap") })
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/out/" + pcap))
        for word in ["CORP", "bob", "corp.example"] { #expect(bytes.range(of: Data(word.utf8)) == nil, "\(word) in the exported frames") }
        #expect(bytes.range(of: Data("Cookie: mstshash=".utf8)) != nil)
    }

    /// A one-letter cookie and an IP-literal SNI: the exported frames differ from the
    /// originals only in the addresses, their checksums, the cookie and the SNI (also where
    /// an ICMP error quotes the Connection Request); `mstshash`, `Cookie`, the ClientHello's
    /// random and every other byte stay as they were.
    @Test func onlyNameFieldsChangeInExportedFrames() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/short.pcap"
        let capture = SyntheticCapture(cookie: "e", serverName: "198.51.100.20", icmpQuotingTheRequest: true)
        try Data(capture.pcap).write(to: URL(fileURLWithPath: path))
        let r = try Run.program(exe, ["analyze", "--redact", "--export", dir + "/out", path])
        #expect(r.status == 1, "\(r.stderr)")
        let pcap = try #require(entries(dir + "/out").first { $0.hasSuffix(".pcap") })
        let exported = try PcapRecords(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/out/" + pcap))))
        let original = try PcapRecords(capture.pcap)
        try #require(exported.frames.count == original.frames.count)
        for (n, (e, o)) in zip(exported.frames, original.frames).enumerated() {
            try #require(e.count == o.count, "frame \(n + 1) changed length")
            var allowed = capture.headerFields[n] ?? []
            for r in capture.nameRanges[n] ?? [] { allowed.formUnion(r) }
            for i in 0..<o.count where !allowed.contains(i) {
                #expect(e[i] == o[i], "frame \(n + 1) byte \(i): 0x\(String(o[i], radix: 16)) became 0x\(String(e[i], radix: 16))")
            }
            for r in capture.nameRanges[n] ?? [] { #expect(e[r] != o[r], "frame \(n + 1): name at \(r) not rewritten") }
            #expect(SyntheticCapture.checksumsVerify(e), "frame \(n + 1): checksums")
            #expect(Array(e[12..<20]) != Array(o[12..<20]), "frame \(n + 1): addresses")
        }
        let all = Data(exported.frames.joined())
        #expect(all.range(of: Data("198.51.100.20".utf8)) == nil)
        #expect(all.range(of: Data("Cookie: mstshash=".utf8)) != nil)
    }
}

/// Real TLS 1.0-1.2 handshakes with certificates in clear, and short cookies.
@Suite(.enabled(if: Prerequisite.runs(Repo.publicCaptureFiles != nil && Tshark.path != nil),
                "../shared/captures-public or tshark is absent"))
struct PublicCaptureRedactionTests: RunsTheTool {
    var bruteforce: String { Repo.publicCaptures + "/initconf/RDP-bruteforce.pcap" }

    /// What the unredacted JSON report says about certificates: CN, O and OU values,
    /// SANs, serial numbers and fingerprints, and SNI values.
    func identities(_ capture: String) throws -> (names: Set<String>, serials: Set<String>, fingerprints: Set<String>, cookies: Set<String>) {
        let json = try Run.program(exe, ["analyze", "--format", "json", "--schema", "1", capture]).stdout
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        var names = Set<String>(), serials = Set<String>(), fingerprints = Set<String>(), cookies = Set<String>()
        func walk(_ v: Any) {
            if let d = v as? [String: Any] {
                for (k, x) in d {
                    switch (k, x) {
                    case ("subject", let s as String), ("issuer", let s as String):
                        for part in s.split(whereSeparator: { $0 == "," || $0 == "+" }) {
                            for prefix in ["CN=", "O=", "OU="] where part.hasPrefix(prefix) { names.insert(String(part.dropFirst(prefix.count))) }
                        }
                    case ("subject_alternative_names", let list as [String]):
                        for s in list { names.insert(String(s.split(separator: ":", maxSplits: 1).last ?? "")) }
                    case ("server_name", let s as String): names.insert(s)
                    case ("cookie", let s as String): cookies.insert(s)
                    case ("serial_number", let s as String): serials.insert(s)
                    case ("sha256", let s as String): fingerprints.insert(s)
                    default: walk(x)
                    }
                }
            } else if let a = v as? [Any] {
                for x in a { walk(x) }
            }
        }
        walk(doc)
        return (names.filter { $0.count >= 3 }, serials, fingerprints, cookies)
    }

    /// Certificate names, serials and fingerprints are gone from every report format.
    @Test func certificateIdentitiesLeaveReports() throws {
        let id = try identities(bruteforce)
        #expect(id.names.count > 10 && id.serials.count > 5 && id.fingerprints.count > 5, "\(id)")
        for format in ["text", "json", "ndjson", "markdown"] {
            let out = try Run.program(exe, ["analyze", "--redact", "--format", format, bruteforce]).stdout
            for n in id.names { #expect(!out.contains(n), "\(format): \(n)") }
            for s in id.serials.union(id.fingerprints) { #expect(!out.lowercased().contains(s.lowercased()), "\(format): \(s)") }
        }
    }

    /// Exported frames: no certificate name or serial, no SNI, no cookie name; every
    /// `mstshash` intact; each changed run of payload bytes was part of a name; checksums
    /// right (tshark checks them).
    @Test func exportedFramesChangeOnlyNames() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = try identities(bruteforce)
        let r = try Run.program(exe, ["analyze", "--redact", "--export", dir, bruteforce])
        #expect(r.status == 1, "\(r.stderr)")
        // tshark's cookies and the report's (tshark leaves some Connection Requests undecoded).
        let cookies = try Tshark.run(["-r", bruteforce, "-T", "fields", "-e", "rdp.rt_cookie"]).split(separator: "\n")
            .filter { $0.hasPrefix("Cookie: mstshash=") }.map { String($0.dropFirst("Cookie: mstshash=".count)) } + id.cookies
        #expect(id.cookies.count > 50)
        var serialBytes: [[UInt8]] = []
        for s in id.serials {
            let hex = s.filter(\.isHexDigit)
            serialBytes.append(stride(from: 0, to: hex.count - 1, by: 2).compactMap {
                UInt8(hex.dropFirst($0).prefix(2), radix: 16)
            })
        }
        // Certificate names may be BMPStrings (UTF-16 big-endian).
        let names = id.names.map { Array($0.utf8) } + id.names.map { n in n.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] } }
            + cookies.map { Array($0.utf8) } + serialBytes
        let original = try PcapRecords(Array(try Data(contentsOf: URL(fileURLWithPath: bruteforce))))
        var byTime: [String: [[UInt8]]] = [:]
        for (t, f) in zip(original.times, original.frames) { byTime[t, default: []].append(f) }
        let pcaps = entries(dir).filter { $0.hasSuffix(".pcap") }
        #expect(pcaps.count > 50)
        var cookieFrames = 0
        for p in pcaps {
            let exported = try PcapRecords(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + p))))
            for (t, e) in zip(exported.times, exported.frames) {
                let o = try #require(byTime[t]?.first { $0.count == e.count }, "\(p): no original frame at \(t)")
                let all = Data(e)
                for n in names where n.count >= 3 {
                    #expect(all.range(of: Data(n)) == nil, "\(p): \(String(decoding: n, as: UTF8.self)) left")
                }
                if Data(o).range(of: Data("Cookie: mstshash=".utf8)) != nil {
                    cookieFrames += 1
                    #expect(all.range(of: Data("Cookie: mstshash=".utf8)) != nil, "\(p): mstshash damaged")
                }
                // Ethernet 14, IPv4 header with its checksum and addresses, TCP header: past
                // those, each run of changed bytes (dots and chance matches inside) lies in a name.
                guard o.count > 54, o[12] == 0x08, o[13] == 0x00, o[23] == 6 else { continue }
                let payload = 14 + Int(o[14] & 0x0f) * 4 + Int(o[14 + Int(o[14] & 0x0f) * 4 + 12] >> 4) * 4
                var i = payload
                while i < o.count {
                    guard e[i] != o[i] else {
                        i += 1
                        continue
                    }
                    var end = i
                    var j = i
                    while j < o.count && j <= end + 3 {
                        if e[j] != o[j] { end = j }
                        j += 1
                    }
                    let run = Array(o[i...end])
                    let inName = names.contains { n in
                        n.count >= run.count && (0...(n.count - run.count)).contains { n[$0..<($0 + run.count)].elementsEqual(run) }
                    }
                    #expect(inName, "\(p): bytes \(i)...\(end) changed outside a name: \(run)")
                    i = end + 1
                }
            }
        }
        #expect(cookieFrames > 50)
        let bad = try Tshark.run(["-r", dir + "/" + pcaps[0], "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                                  "-Y", "tcp.checksum.status == 0 || ip.checksum.status == 0 || _ws.malformed"])
        #expect(bad.isEmpty, "\(bad)")
    }
}

/// Classic pcap records (either byte order): each frame's bytes and its time as text.
struct PcapRecords {
    var frames: [[UInt8]] = []
    var times: [String] = []

    init(_ b: [UInt8]) throws {
        try #require(b.count >= 24)
        let little = b[0] == 0xd4 || b[0] == 0x4d
        func u32(_ at: Int) -> Int {
            let v = (0..<4).map { Int(b[at + $0]) }
            return little ? v[0] | v[1] << 8 | v[2] << 16 | v[3] << 24 : v[3] | v[2] << 8 | v[1] << 16 | v[0] << 24
        }
        var at = 24
        while at + 16 <= b.count {
            let length = u32(at + 8)
            guard at + 16 + length <= b.count else { break }
            times.append("\(u32(at)).\(u32(at + 4))")
            frames.append(Array(b[(at + 16)..<(at + 16 + length)]))
            at += 16 + length
        }
    }
}

/// A capture written byte by byte (raw IPv4, link type 101): a client connects to port
/// 3389, sends a Connection Request with `cookie`, gets a Connection Confirm choosing TLS,
/// sends a ClientHello naming `serverName`, and the server resets the connection.
struct SyntheticCapture {
    var pcap: [UInt8] = []
    /// Per frame index: where the cookie and the SNI lie in the frame.
    var nameRanges: [Int: [Range<Int>]] = [:]
    /// Per frame index: the addresses and checksums a rewrite changes.
    var headerFields: [Int: Set<Int>] = [:]

    init(cookie: String, serverName: String, icmpQuotingTheRequest: Bool = false) {
        func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func be32(_ v: UInt32) -> [UInt8] { (0..<4).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
        let client: [UInt8] = [192, 0, 2, 10], server: [UInt8] = [198, 51, 100, 20]
        var seq: (c: UInt32, s: UInt32) = (1000, 5000)
        var frames: [[UInt8]] = []
        func segment(fromClient: Bool, flags: UInt8, _ payload: [UInt8]) {
            let (src, dst) = fromClient ? (client, server) : (server, client)
            let ports = fromClient ? be16(50000) + be16(3389) : be16(3389) + be16(50000)
            let s = fromClient ? seq.c : seq.s
            let a = fromClient ? seq.s : seq.c
            var tcp = ports + be32(s) + be32(a) + [0x50, flags] + be16(64000) + [0, 0, 0, 0] + payload
            if flags == 0x02 { tcp.replaceSubrange(8..<12, with: [0, 0, 0, 0]) }
            var ip: [UInt8] = [0x45, 0] + be16(20 + tcp.count) + [0, 1, 0x40, 0, 64, 6, 0, 0] + src + dst
            let ipSum = SyntheticCapture.checksum(ip)
            ip[10] = UInt8(ipSum >> 8)
            ip[11] = UInt8(ipSum & 0xff)
            let pseudo = src + dst + [0, 6] + be16(tcp.count)
            let tcpSum = SyntheticCapture.checksum(pseudo + tcp)
            tcp[16] = UInt8(tcpSum >> 8)
            tcp[17] = UInt8(tcpSum & 0xff)
            headerFields[frames.count] = Set(10..<20).union(36..<38)
            frames.append(ip + tcp)
            let advance = UInt32(payload.count) + (flags & 0x03 != 0 ? 1 : 0)
            if fromClient { seq.c &+= advance } else { seq.s &+= advance }
        }
        segment(fromClient: true, flags: 0x02, [])
        segment(fromClient: false, flags: 0x12, [])
        segment(fromClient: true, flags: 0x10, [])
        // X.224 Connection Request (MS-RDPBCGR 2.2.1.1): cookie line, then RDP_NEG_REQ for TLS.
        let line = Array("Cookie: mstshash=\(cookie)\r\n".utf8)
        let cr: [UInt8] = [UInt8(6 + line.count + 8), 0xE0, 0, 0, 0, 0, 0] + line + [1, 0, 8, 0, 1, 0, 0, 0]
        nameRanges[frames.count] = [(40 + 4 + 7 + 17)..<(40 + 4 + 7 + 17 + cookie.utf8.count)]
        segment(fromClient: true, flags: 0x18, [3, 0] + be16(4 + cr.count) + cr)
        if icmpQuotingTheRequest {
            // A router's "fragmentation needed" quoting the whole Connection Request datagram.
            let quoted = frames[frames.count - 1]
            var icmp: [UInt8] = [3, 4, 0, 0, 0, 0] + be16(576) + quoted
            let icmpSum = SyntheticCapture.checksum(icmp)
            icmp[2] = UInt8(icmpSum >> 8)
            icmp[3] = UInt8(icmpSum & 0xff)
            var ip: [UInt8] = [0x45, 0] + be16(20 + icmp.count) + [0, 2, 0, 0, 64, 1, 0, 0] + [192, 0, 2, 1] + client
            let ipSum = SyntheticCapture.checksum(ip)
            ip[10] = UInt8(ipSum >> 8)
            ip[11] = UInt8(ipSum & 0xff)
            nameRanges[frames.count] = nameRanges[frames.count - 1]!.map { ($0.lowerBound + 28)..<($0.upperBound + 28) }
            headerFields[frames.count] = Set(10..<20).union(22..<24).union(38..<48).union(64..<66)
            frames.append(ip + icmp)
        }
        // Connection Confirm with RDP_NEG_RSP selecting PROTOCOL_SSL.
        let cc: [UInt8] = [14, 0xD0, 0, 0, 0x12, 0x34, 0, 2, 0, 8, 0, 1, 0, 0, 0]
        segment(fromClient: false, flags: 0x18, [3, 0] + be16(4 + cc.count) + cc)
        // ClientHello (RFC 5246 7.4.1.2) with a random full of 'e' and 'E' and one server_name.
        let name = Array(serverName.utf8)
        let sni = be16(0) + be16(name.count + 5) + be16(name.count + 3) + [0] + be16(name.count) + name
        let random = (0..<32).map { UInt8($0 % 2 == 0 ? 0x65 : 0x45) }
        let body: [UInt8] = [3, 3] + random + [0] + be16(2) + [0xc0, 0x2f] + [1, 0] + be16(sni.count) + sni
        let handshake: [UInt8] = [1, 0] + be16(body.count) + body
        let record: [UInt8] = [0x16, 3, 1] + be16(handshake.count) + handshake
        let sniAt = 40 + 5 + 4 + 2 + 32 + 1 + 4 + 2 + 2 + 9
        nameRanges[frames.count] = [sniAt..<(sniAt + name.count)]
        segment(fromClient: true, flags: 0x18, record)
        segment(fromClient: false, flags: 0x14, [])
        pcap = le32(0xa1b2_c3d4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(65535) + le32(101)
        for (i, f) in frames.enumerated() {
            pcap += le32(1_800_000_000 + UInt32(i)) + le32(0) + le32(UInt32(f.count)) + le32(UInt32(f.count)) + f
        }
    }

    /// RFC 1071.
    static func checksum(_ b: [UInt8]) -> UInt16 {
        var s: UInt32 = 0
        var i = 0
        while i + 1 < b.count {
            s &+= UInt32(b[i]) << 8 | UInt32(b[i + 1])
            i += 2
        }
        if i < b.count { s &+= UInt32(b[i]) << 8 }
        while s >> 16 != 0 { s = (s & 0xffff) &+ (s >> 16) }
        return ~UInt16(s)
    }

    /// The IPv4 header and TCP checksums of a raw IPv4 frame are right (for an ICMP error,
    /// its own checksum and those of the datagram it quotes).
    static func checksumsVerify(_ f: [UInt8]) -> Bool {
        guard f.count >= 40 else { return false }
        if f[9] == 1 {
            return checksum(Array(f[0..<20])) == 0 && checksum(Array(f[20...])) == 0 && checksumsVerify(Array(f[28...]))
        }
        let pseudo = Array(f[12..<20]) + [0, 6, UInt8((f.count - 20) >> 8), UInt8((f.count - 20) & 0xff)]
        return checksum(Array(f[0..<20])) == 0 && checksum(pseudo + Array(f[20...])) == 0
    }
}
