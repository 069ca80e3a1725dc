import Crypto
import Foundation
import TriageFlows

/// The record protection of one TLS connection, given its secrets: opens protected
/// records (RFC 5246 6.2.3.3 and RFC 7905 for TLS 1.2 AEAD suites, RFC 8446 5.2 for
/// TLS 1.3) and tracks the TLS 1.3 switch from handshake to traffic keys. It exists only
/// when the engine was given key material, so a capture without keys never reaches it.
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

    enum AEAD: Sendable, Equatable {
        case aesGCM
        case chaCha20Poly1305
    }

    struct CipherSpec: Sendable, Equatable {
        var aead: AEAD
        var keyLength: Int
        var hash: TLSKeySchedule.Hash
    }

    struct Protection: Sendable {
        /// Raw key bytes (SymmetricKey is not Sendable); made into a key per record.
        var key: [UInt8]
        var iv: [UInt8]
        var sequence: UInt64 = 0
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

    /// TLS 1.3 suites (RFC 8446 B.4) and the TLS 1.2 AEAD suites (RFC 5288, 5289, 7905).
    static func spec(suite: UInt16, tls13: Bool) -> CipherSpec? {
        if tls13 {
            switch suite {
            case 0x1301: return CipherSpec(aead: .aesGCM, keyLength: 16, hash: .sha256)
            case 0x1302: return CipherSpec(aead: .aesGCM, keyLength: 32, hash: .sha384)
            case 0x1303: return CipherSpec(aead: .chaCha20Poly1305, keyLength: 32, hash: .sha256)
            default: return nil
            }
        }
        switch suite {
        case 0x009C, 0x009E, 0x00A2, 0xC02B, 0xC02F: return CipherSpec(aead: .aesGCM, keyLength: 16, hash: .sha256)
        case 0x009D, 0x009F, 0x00A3, 0xC02C, 0xC030: return CipherSpec(aead: .aesGCM, keyLength: 32, hash: .sha384)
        case 0xCCA8, 0xCCA9, 0xCCAA: return CipherSpec(aead: .chaCha20Poly1305, keyLength: 32, hash: .sha256)
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

    /// The ServerHello: version, suite and (TLS 1.2) the server random for the key block.
    public mutating func serverHello(random: [UInt8], version: UInt16, cipherSuite: UInt16) {
        guard status == .waitingForHellos, self.version == 0 else { return }
        self.version = version
        self.cipherSuite = cipherSuite
        serverRandom = random
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
        guard version >= 0x0301, let spec = Self.spec(suite: cipherSuite, tls13: version >= 0x0304) else {
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
            guard let master = secrets.masterSecret, version == 0x0303 else {
                status = secrets.masterSecret == nil ? .noSecrets : .unsupported("TLS before 1.2 with \(name) is not decrypted")
                return
            }
            let ivLength = spec.aead == .aesGCM ? 4 : 12
            let block = TLSKeySchedule.keyBlock(
                spec.hash, masterSecret: master, clientRandom: clientRandom, serverRandom: random, macLength: 0,
                keyLength: spec.keyLength, ivLength: ivLength)
            client = Protection(key: block.clientKey, iv: block.clientIV)
            server = Protection(key: block.serverKey, iv: block.serverIV)
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
        let result = Self.decrypt(
            spec, &p, tls13: isTLS13, contentType: contentType, version: recordVersion, fragment: fragment)
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
        let explicitNonce = !tls13 && spec.aead == .aesGCM ? 8 : 0
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
        var aad: [UInt8]
        if tls13 {
            aad = [contentType, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(fragment.count >> 8), UInt8(fragment.count & 0xFF)]
        } else {
            aad = (0..<8).map { UInt8(truncatingIfNeeded: p.sequence >> (56 - 8 * UInt64($0))) }
            let length = ciphertext.count
            aad += [contentType, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        }
        let plain: Data
        do {
            switch spec.aead {
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
}
