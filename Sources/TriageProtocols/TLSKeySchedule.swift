import Crypto
import Foundation

/// The TLS key schedules: the TLS 1.0/1.1 PRF (RFC 2246 5) and the TLS 1.2 PRF (RFC 5246 5)
/// with their key block (RFC 2246 6.3, RFC 5246 6.3), and TLS 1.3's HKDF-Expand-Label
/// (RFC 8446 7.1) with the traffic keys (7.3). Pure functions over swift-crypto's HMAC and HKDF.
public enum TLSKeySchedule {
    public enum Hash: Sendable, Equatable {
        case sha256
        case sha384

        var length: Int { self == .sha256 ? 32 : 48 }
        var mac: MAC { self == .sha256 ? .sha256 : .sha384 }
    }

    /// The HMACs of the PRFs and of the CBC suites' record MAC (RFC 2104).
    public enum MAC: Sendable, Equatable {
        case md5
        case sha1
        case sha256
        case sha384

        public var length: Int {
            switch self {
            case .md5: 16
            case .sha1: 20
            case .sha256: 32
            case .sha384: 48
            }
        }
    }

    /// The PRF of a TLS 1.0-1.2 connection: TLS 1.0 and 1.1 split the secret between P_MD5 and
    /// P_SHA1 (RFC 2246 5, unchanged in RFC 4346); TLS 1.2 uses the suite's hash (RFC 5246 5).
    public enum PRF: Sendable, Equatable {
        case tls10
        case tls12(Hash)
    }

    /// HMAC(key, data).
    public static func hmac(_ mac: MAC, key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        let k = SymmetricKey(data: key)
        switch mac {
        case .md5: return Array(HMAC<Insecure.MD5>.authenticationCode(for: data, using: k))
        case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: k))
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: k))
        case .sha384: return Array(HMAC<SHA384>.authenticationCode(for: data, using: k))
        }
    }

    /// P_hash(secret, seed), `count` bytes (RFC 5246 5).
    static func pHash(_ mac: MAC, secret: [UInt8], seed: [UInt8], count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + mac.length)
        var a = seed
        while out.count < count {
            a = hmac(mac, key: secret, a)
            out += hmac(mac, key: secret, a + seed)
        }
        return Array(out.prefix(count))
    }

    /// The TLS 1.2 PRF: P_hash(secret, label + seed), `count` bytes (RFC 5246 5).
    public static func prf(_ hash: Hash, secret: [UInt8], label: String, seed: [UInt8], count: Int) -> [UInt8] {
        pHash(hash.mac, secret: secret, seed: Array(label.utf8) + seed, count: count)
    }

    /// PRF(secret, label, seed), `count` bytes. TLS 1.0/1.1: P_MD5 over the first half of the
    /// secret XOR P_SHA-1 over the second half, the halves sharing the middle byte of an odd
    /// length (RFC 2246 5).
    public static func prf(_ prf: PRF, secret: [UInt8], label: String, seed: [UInt8], count: Int) -> [UInt8] {
        switch prf {
        case .tls12(let hash):
            return self.prf(hash, secret: secret, label: label, seed: seed, count: count)
        case .tls10:
            let labelSeed = Array(label.utf8) + seed
            let half = (secret.count + 1) / 2
            let md5 = pHash(.md5, secret: Array(secret.prefix(half)), seed: labelSeed, count: count)
            let sha1 = pHash(.sha1, secret: Array(secret.suffix(half)), seed: labelSeed, count: count)
            return zip(md5, sha1).map { $0 ^ $1 }
        }
    }

    /// HKDF-Expand-Label(secret, label, context, length) (RFC 8446 7.1).
    public static func expandLabel(_ hash: Hash, secret: [UInt8], label: String, context: [UInt8] = [], length: Int)
        -> [UInt8]
    {
        let full = Array("tls13 \(label)".utf8)
        var info: [UInt8] = [UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), UInt8(full.count)]
        info += full
        info.append(UInt8(context.count))
        info += context
        let prk = SymmetricKey(data: secret)
        let key: SymmetricKey
        switch hash {
        case .sha256: key = HKDF<SHA256>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length)
        case .sha384: key = HKDF<SHA384>.expand(pseudoRandomKey: prk, info: info, outputByteCount: length)
        }
        return key.withUnsafeBytes { Array($0) }
    }

    /// The write key and IV of a TLS 1.3 traffic secret (RFC 8446 7.3).
    public static func trafficKeys(_ hash: Hash, secret: [UInt8], keyLength: Int) -> (key: [UInt8], iv: [UInt8]) {
        (
            expandLabel(hash, secret: secret, label: "key", length: keyLength),
            expandLabel(hash, secret: secret, label: "iv", length: 12)
        )
    }

    /// The key block split into client and server MAC keys, keys and IVs (RFC 2246 6.3,
    /// RFC 5246 6.3); MAC keys are empty for AEAD suites, IVs for TLS 1.1+ CBC suites.
    public static func keyBlock(
        _ prf: PRF, masterSecret: [UInt8], clientRandom: [UInt8], serverRandom: [UInt8], macLength: Int,
        keyLength: Int, ivLength: Int
    ) -> (clientMAC: [UInt8], serverMAC: [UInt8], clientKey: [UInt8], serverKey: [UInt8], clientIV: [UInt8], serverIV: [UInt8]) {
        let total = 2 * (macLength + keyLength + ivLength)
        let block = self.prf(prf, secret: masterSecret, label: "key expansion", seed: serverRandom + clientRandom, count: total)
        var i = 0
        func take(_ n: Int) -> [UInt8] {
            defer { i += n }
            return Array(block[i..<i + n])
        }
        return (take(macLength), take(macLength), take(keyLength), take(keyLength), take(ivLength), take(ivLength))
    }
}
