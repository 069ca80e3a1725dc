import Crypto
import Foundation
import _CryptoExtras
import TriageFlows

/// The record protection of one TLS connection, given its secrets: opens protected
/// records (RFC 2246 6.2.3.2, RFC 4346 6.2.3.2 and RFC 5246 6.2.3.2 for CBC suites, with
/// RFC 7366 encrypt_then_mac; RFC 5246 6.2.3.3 and RFC 7905 for TLS 1.2 AEAD suites;
/// RFC 8446 5.2 for TLS 1.3) and tracks the TLS 1.3 switch from handshake to traffic keys.
/// It exists only when the engine was given key material, so a capture without keys never
/// reaches it.
public struct TLSDecryptor: Sendable {
    /// Where decryption of the connection stands (an explicit state, STYLE.md 7).
    public enum Status: Sendable, Equatable {
        /// The hellos (client random, cipher suite) are not both seen yet.
        case waitingForHellos
        /// The key material has no secret for this connection's client random.
        case noSecrets
        /// Live, with a key log still growing: the hellos went by without secrets for this
        /// connection; they may still arrive (`retrySecrets`).
        case waitingForSecrets
        /// The negotiated suite or version is not one this layer decrypts.
        case unsupported(String)
        /// Keys derived; records open.
        case active
        /// A record failed authentication: the secrets are not this connection's (or the
        /// record was damaged). Nothing after it is opened.
        case failed(Side)
    }

    /// What an offered record turned out to be.
    public enum Opened: Sendable, Equatable {
        /// Not protected (sent in clear) or not decryptable now: the outer parser's business.
        case notProtected
        /// The inner content type and plaintext (TLS 1.3 padding removed).
        case plaintext(contentType: UInt8, bytes: [UInt8])
        /// The record did not authenticate (the status is now `failed`).
        case failedAuthentication
    }

    enum Cipher: Sendable, Equatable {
        case aesGCM
        case chaCha20Poly1305
        /// AES-CBC with the record MAC (HMAC with this hash).
        case aesCBC(TLSKeySchedule.MAC)
    }

    struct CipherSpec: Sendable, Equatable {
        var cipher: Cipher
        var keyLength: Int
        /// The TLS 1.2 PRF hash (and TLS 1.3's key schedule hash).
        var hash: TLSKeySchedule.Hash

        var macLength: Int {
            if case .aesCBC(let mac) = cipher { return mac.length }
            return 0
        }
    }

    struct Protection: Sendable {
        /// Raw key bytes (SymmetricKey is not Sendable); made into a key per record.
        var key: [UInt8]
        /// AEAD: the implicit nonce part. TLS 1.0 CBC: the next record's IV, the last
        /// ciphertext block of the record before (RFC 2246 6.2.3.2). Unused for TLS 1.1+ CBC.
        var iv: [UInt8]
        var sequence: UInt64 = 0
        /// CBC suites: the MAC key.
        var macKey: [UInt8] = []
        /// CBC suites: RFC 7366 encrypt_then_mac was negotiated.
        var encryptThenMAC = false
    }

    /// TLS 1.3 per direction: handshake keys until the sender's Finished, then traffic keys.
    struct Direction13: Sendable {
        var handshakeDone = false
        /// Bytes of a handshake message that continue into the next record.
        var skip = 0
        /// That message is the sender's Finished.
        var finishedPending = false
    }

    public private(set) var status = Status.waitingForHellos
    /// The negotiated version and suite, once known.
    public private(set) var version: UInt16 = 0
    public private(set) var cipherSuite: UInt16 = 0
    /// Records opened, per side.
    public private(set) var openedRecords: (client: Int, server: Int) = (0, 0)

    let material: TLSKeyMaterial
    var secrets: TLSConnectionSecrets?
    var clientRandom: [UInt8] = []
    var serverRandom: [UInt8] = []
    /// The ServerHello agreed to encrypt_then_mac (kept for keys derived later, live).
    var serverAgreedEncryptThenMAC = false
    /// The growing table's generation when the secrets were last looked for.
    var lookedAt = -1
    var spec: CipherSpec?
    var client: Protection?
    var server: Protection?
    var client13 = Direction13()
    var server13 = Direction13()
    /// TLS 1.2: the side's ChangeCipherSpec went by (its next records are protected).
    var clientCCS = false
    var serverCCS = false

    public init(material: TLSKeyMaterial) {
        self.material = material
    }

    var isTLS13: Bool { version >= 0x0304 }

    /// TLS 1.3 suites (RFC 8446 B.4); the TLS 1.2 AEAD suites (RFC 5288, 5289, 7905); the
    /// AES-CBC suites with RSA, DHE and ECDHE key exchange (RFC 5246 A.5, RFC 4492 6,
    /// RFC 5289 3.1), those with SHA-256/SHA-384 MACs in TLS 1.2 only.
    static func spec(suite: UInt16, version: UInt16) -> CipherSpec? {
        if version >= 0x0304 {
            switch suite {
            case 0x1301: return CipherSpec(cipher: .aesGCM, keyLength: 16, hash: .sha256)
            case 0x1302: return CipherSpec(cipher: .aesGCM, keyLength: 32, hash: .sha384)
            case 0x1303: return CipherSpec(cipher: .chaCha20Poly1305, keyLength: 32, hash: .sha256)
            default: return nil
            }
        }
        switch suite {
        // TLS_{RSA,DH_DSS,DH_RSA,DHE_DSS,DHE_RSA}_WITH_AES_{128,256}_CBC_SHA, TLS_ECDHE_{ECDSA,RSA}_...
        case 0x002F, 0x0030, 0x0031, 0x0032, 0x0033, 0xC009, 0xC013:
            return CipherSpec(cipher: .aesCBC(.sha1), keyLength: 16, hash: .sha256)
        case 0x0035, 0x0036, 0x0037, 0x0038, 0x0039, 0xC00A, 0xC014:
            return CipherSpec(cipher: .aesCBC(.sha1), keyLength: 32, hash: .sha256)
        default:
            break
        }
        guard version >= 0x0303 else { return nil }
        switch suite {
        case 0x003C, 0x003E, 0x003F, 0x0040, 0x0067, 0xC023, 0xC027:
            return CipherSpec(cipher: .aesCBC(.sha256), keyLength: 16, hash: .sha256)
        case 0x003D, 0x0068, 0x0069, 0x006A, 0x006B:
            return CipherSpec(cipher: .aesCBC(.sha256), keyLength: 32, hash: .sha256)
        case 0xC024, 0xC028:
            return CipherSpec(cipher: .aesCBC(.sha384), keyLength: 32, hash: .sha384)
        case 0x009C, 0x009E, 0x00A2, 0xC02B, 0xC02F: return CipherSpec(cipher: .aesGCM, keyLength: 16, hash: .sha256)
        case 0x009D, 0x009F, 0x00A3, 0xC02C, 0xC030: return CipherSpec(cipher: .aesGCM, keyLength: 32, hash: .sha384)
        case 0xCCA8, 0xCCA9, 0xCCAA: return CipherSpec(cipher: .chaCha20Poly1305, keyLength: 32, hash: .sha256)
        default: return nil
        }
    }

    /// The ClientHello's random: finds the connection's secrets.
    public mutating func clientHello(random: [UInt8]) {
        guard status == .waitingForHellos, clientRandom.isEmpty else { return }
        clientRandom = random
        lookedAt = material.growing?.generation ?? -1
        secrets = material.secrets(clientRandom: random)
        if secrets == nil && material.growing == nil { status = .noSecrets }
    }

    /// The ServerHello: version, suite, (TLS 1.0-1.2) the server random for the key block and
    /// whether it agreed to encrypt_then_mac (extension 22, RFC 7366).
    public mutating func serverHello(random: [UInt8], version: UInt16, cipherSuite: UInt16, encryptThenMAC: Bool = false) {
        guard status == .waitingForHellos, self.version == 0 else { return }
        self.version = version
        self.cipherSuite = cipherSuite
        serverRandom = random
        serverAgreedEncryptThenMAC = encryptThenMAC
        guard secrets != nil else {
            status = material.growing != nil && !clientRandom.isEmpty ? .waitingForSecrets : .noSecrets
            return
        }
        deriveKeys()
    }

    /// Live: looks for the secrets again when the growing key table changed since the last
    /// look; true once they were found and the keys derived (the caller then opens the records
    /// it held back, in order, so sequence numbers line up).
    public mutating func retrySecrets() -> Bool {
        guard status == .waitingForSecrets, let growing = material.growing else { return false }
        let generation = growing.generation
        guard generation != lookedAt else { return false }
        lookedAt = generation
        guard let found = material.secrets(clientRandom: clientRandom) else { return false }
        // TLS 1.3 needs both handshake secrets; they come as separate lines, maybe apart.
        // TLS 1.3: its four secrets come as separate lines, written within milliseconds of each
        // other; wait for all of them (the traffic secrets take over after the Finished).
        if version >= 0x0304
            && (found.clientHandshake == nil || found.serverHandshake == nil || found.clientTraffic == nil
                || found.serverTraffic == nil)
        {
            return false
        }
        if version < 0x0304 && found.masterSecret == nil { return false }
        secrets = found
        deriveKeys()
        return status == .active
    }

    /// Gives up waiting (too much held back): the connection is reported without secrets.
    public mutating func stopWaiting() {
        if status == .waitingForSecrets { status = .noSecrets }
    }

    /// Whether `open` would treat this record as protected once keys are known: what a
    /// connection waiting for its secrets must hold back.
    public func isProtected(contentType: UInt8, from side: Side) -> Bool {
        if isTLS13 { return contentType == 23 }
        return (side == .client ? clientCCS : serverCCS) && contentType != 20
    }

    mutating func deriveKeys() {
        guard let secrets else { return }
        let random = serverRandom
        let name = ProtocolTables.cipherSuites[cipherSuite]?.name ?? "0x" + String(cipherSuite, radix: 16, uppercase: true)
        guard version >= 0x0301 else {
            let old = version == 0x0300 ? "SSL 3.0" : "version 0x" + String(version, radix: 16, uppercase: true)
            status = .unsupported("\(old) is not decrypted")
            return
        }
        guard let spec = Self.spec(suite: cipherSuite, version: version) else {
            status = .unsupported("cipher suite \(name) is not decrypted")
            return
        }
        self.spec = spec
        if version >= 0x0304 {
            guard let ch = secrets.clientHandshake, let sh = secrets.serverHandshake else {
                // Traffic secrets alone could open the session but not the handshake; the
                // handshake decides when they apply.
                status = .noSecrets
                return
            }
            client = Self.protection13(spec, secret: ch)
            server = Self.protection13(spec, secret: sh)
        } else {
            guard let master = secrets.masterSecret else {
                status = .noSecrets
                return
            }
            let ivLength: Int
            switch spec.cipher {
            case .aesGCM: ivLength = 4
            case .chaCha20Poly1305: ivLength = 12
            // TLS 1.1 and 1.2 carry the IV in each record.
            case .aesCBC: ivLength = version == 0x0301 ? 16 : 0
            }
            let block = TLSKeySchedule.keyBlock(
                version >= 0x0303 ? .tls12(spec.hash) : .tls10, masterSecret: master, clientRandom: clientRandom,
                serverRandom: random, macLength: spec.macLength, keyLength: spec.keyLength, ivLength: ivLength)
            // RFC 7366 3: a server agrees to encrypt_then_mac only for a CBC suite.
            let etm = serverAgreedEncryptThenMAC && spec.macLength > 0
            client = Protection(key: block.clientKey, iv: block.clientIV, macKey: block.clientMAC, encryptThenMAC: etm)
            server = Protection(key: block.serverKey, iv: block.serverIV, macKey: block.serverMAC, encryptThenMAC: etm)
        }
        status = .active
    }

    static func protection13(_ spec: CipherSpec, secret: [UInt8]) -> Protection {
        let k = TLSKeySchedule.trafficKeys(spec.hash, secret: secret, keyLength: spec.keyLength)
        return Protection(key: k.key, iv: k.iv)
    }

    /// TLS 1.2: a ChangeCipherSpec from `side`; its later records are protected.
    public mutating func changeCipherSpec(from side: Side) {
        guard !isTLS13 else { return }
        if side == .client { clientCCS = true } else { serverCCS = true }
    }

    /// Opens one record from `side` when it is protected and the keys are known.
    public mutating func open(contentType: UInt8, version recordVersion: UInt16, fragment: UnsafeRawBufferPointer, from side: Side)
        -> Opened
    {
        guard status == .active, let spec else { return .notProtected }
        if isTLS13 {
            guard contentType == 23 else { return .notProtected }
        } else {
            guard side == .client ? clientCCS : serverCCS, contentType != 20 else { return .notProtected }
        }
        guard var p = side == .client ? client : server else { return .notProtected }
        let result: (UInt8, [UInt8])?
        if case .aesCBC(let mac) = spec.cipher {
            result = Self.decryptCBC(
                mac, &p, explicitIV: version >= 0x0302, contentType: contentType, version: recordVersion, fragment: fragment)
        } else {
            result = Self.decrypt(
                spec, &p, tls13: isTLS13, contentType: contentType, version: recordVersion, fragment: fragment)
        }
        if side == .client { client = p } else { server = p }
        guard case (var type, let bytes)? = result else {
            status = .failed(side)
            return .failedAuthentication
        }
        if side == .client { openedRecords.client += 1 } else { openedRecords.server += 1 }
        if isTLS13 {
            if type == 22 { handshake13(bytes, from: side) }
        } else {
            type = contentType
        }
        return .plaintext(contentType: type, bytes: bytes)
    }

    /// Walks decrypted TLS 1.3 handshake messages for the sender's Finished, after which
    /// its traffic secret applies (RFC 8446 7.2). Messages may span records.
    mutating func handshake13(_ bytes: [UInt8], from side: Side) {
        var d = side == .client ? client13 : server13
        guard !d.handshakeDone else { return }
        var i = min(d.skip, bytes.count)
        d.skip -= i
        // A Finished counts once all of it arrived: the keys change after its record.
        var finished = d.skip == 0 && d.finishedPending
        while i + 4 <= bytes.count {
            let type = bytes[i]
            let length = Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let end = i + 4 + length
            if end > bytes.count {
                d.skip = end - bytes.count
                d.finishedPending = type == 20
                break
            }
            if type == 20 { finished = true }
            i = end
        }
        if finished, let spec, let secrets {
            d.handshakeDone = true
            let traffic = side == .client ? secrets.clientTraffic : secrets.serverTraffic
            if let traffic {
                if side == .client { client = Self.protection13(spec, secret: traffic) } else { server = Self.protection13(spec, secret: traffic) }
            } else {
                // Without the traffic secret nothing after the handshake opens: say so
                // instead of reporting every record as forged.
                status = .noSecrets
            }
        }
        if side == .client { client13 = d } else { server13 = d }
    }

    /// Decrypts one record; nil when it does not authenticate (or is too short to hold a tag).
    static func decrypt(
        _ spec: CipherSpec, _ p: inout Protection, tls13: Bool, contentType: UInt8, version: UInt16,
        fragment: UnsafeRawBufferPointer
    ) -> (UInt8, [UInt8])? {
        let tagLength = 16
        let explicitNonce = !tls13 && spec.cipher == .aesGCM ? 8 : 0
        guard fragment.count >= explicitNonce + tagLength else { return nil }
        var nonce: [UInt8]
        if explicitNonce > 0 {
            nonce = p.iv + Array(fragment[0..<8])
        } else {
            nonce = p.iv
            for k in 0..<8 { nonce[4 + k] ^= UInt8(truncatingIfNeeded: p.sequence >> (56 - 8 * UInt64(k))) }
        }
        let cipherEnd = fragment.count - tagLength
        let ciphertext = Data(fragment[explicitNonce..<cipherEnd])
        let tag = Data(fragment[cipherEnd...])
        // TLS 1.3: the record header; TLS 1.2: what the CBC suites' MAC covers (RFC 5246 6.2.3.3).
        let aad =
            tls13
            ? [contentType, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(fragment.count >> 8), UInt8(fragment.count & 0xFF)]
            : macHeader(sequence: p.sequence, contentType: contentType, version: version, length: ciphertext.count)
        let plain: Data
        do {
            switch spec.cipher {
            case .aesCBC:
                return nil
            case .aesGCM:
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
                plain = try AES.GCM.open(box, using: SymmetricKey(data: p.key), authenticating: aad)
            case .chaCha20Poly1305:
                let box = try ChaChaPoly.SealedBox(nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: ciphertext, tag: tag)
                plain = try ChaChaPoly.open(box, using: SymmetricKey(data: p.key), authenticating: aad)
            }
        } catch {
            return nil
        }
        p.sequence &+= 1
        var bytes = [UInt8](plain)
        guard tls13 else { return (contentType, bytes) }
        // TLSInnerPlaintext: content, the real type, zero padding (RFC 8446 5.2).
        while let last = bytes.last, last == 0 { bytes.removeLast() }
        guard let type = bytes.popLast() else { return nil }
        return (type, bytes)
    }

    /// The MAC input before the protected bytes: seq_num, type, version, length (RFC 5246
    /// 6.2.3.1; RFC 7366 3 with the IV and ciphertext as the content).
    static func macHeader(sequence: UInt64, contentType: UInt8, version: UInt16, length: Int) -> [UInt8] {
        var h = (0..<8).map { UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64($0))) }
        h += [contentType, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        return h
    }

    /// Opens a CBC record: MAC-then-encrypt (RFC 5246 6.2.3.2), or encrypt-then-MAC when
    /// negotiated (RFC 7366 3). The padding and the MAC are both checked; nil when either
    /// fails or the record cannot hold an IV, a block and a MAC. TLS 1.0 chains the IV
    /// from record to record, TLS 1.1+ sends it first in each record (`explicitIV`).
    static func decryptCBC(
        _ mac: TLSKeySchedule.MAC, _ p: inout Protection, explicitIV: Bool, contentType: UInt8, version: UInt16,
        fragment: UnsafeRawBufferPointer
    ) -> (UInt8, [UInt8])? {
        let block = 16
        var protected = fragment[...]
        if p.encryptThenMAC {
            guard protected.count >= mac.length else { return nil }
            let cut = protected.endIndex - mac.length
            let header = macHeader(sequence: p.sequence, contentType: contentType, version: version, length: cut - protected.startIndex)
            let expected = TLSKeySchedule.hmac(mac, key: p.macKey, header + Array(protected[..<cut]))
            guard equalInConstantTime(expected, protected[cut...]) else { return nil }
            protected = protected[..<cut]
        }
        let ivLength = explicitIV ? block : 0
        guard protected.count % block == 0, protected.count >= ivLength + block else { return nil }
        let iv = explicitIV ? Array(protected.prefix(block)) : p.iv
        let ciphertext = protected.dropFirst(ivLength)
        let plain: [UInt8]
        do {
            plain = [UInt8](
                try AES._CBC.decrypt(
                    Array(ciphertext), using: SymmetricKey(data: p.key), iv: AES._CBC.IV(ivBytes: iv), noPadding: true))
        } catch {
            return nil
        }
        // GenericBlockCipher: content, MAC (unless encrypt-then-MAC), padding, padding_length.
        guard let padding = plain.last.map(Int.init) else { return nil }
        let macInside = p.encryptThenMAC ? 0 : mac.length
        guard plain.count >= padding + 1 + macInside,
            plain[(plain.count - padding - 1)...].allSatisfy({ Int($0) == padding })
        else { return nil }
        var content = Array(plain[..<(plain.count - padding - 1)])
        if !p.encryptThenMAC {
            let tag = Array(content.suffix(mac.length))
            content.removeLast(mac.length)
            let header = macHeader(sequence: p.sequence, contentType: contentType, version: version, length: content.count)
            guard equalInConstantTime(TLSKeySchedule.hmac(mac, key: p.macKey, header + content), tag[...]) else { return nil }
        }
        if !explicitIV { p.iv = Array(ciphertext.suffix(block)) }
        p.sequence &+= 1
        return (contentType, content)
    }

    /// A MAC comparison that does not stop at the first differing byte.
    static func equalInConstantTime(_ a: [UInt8], _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }
}
