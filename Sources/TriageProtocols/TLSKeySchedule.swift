import Crypto
import Foundation

/// The TLS key schedules: the TLS 1.2 PRF (RFC 5246 5) with its key block (6.3), and
/// TLS 1.3's HKDF-Expand-Label (RFC 8446 7.1) with the traffic keys (7.3). Pure functions
/// over swift-crypto's HMAC and HKDF.
public enum TLSKeySchedule {
    public enum Hash: Sendable, Equatable {
        case sha256
        case sha384

        var length: Int { self == .sha256 ? 32 : 48 }
    }

    /// HMAC(key, data) with the hash.
    static func hmac(_ hash: Hash, key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        let k = SymmetricKey(data: key)
        switch hash {
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: k))
        case .sha384: return Array(HMAC<SHA384>.authenticationCode(for: data, using: k))
        }
    }

    /// The TLS 1.2 PRF: P_hash(secret, label + seed), `count` bytes (RFC 5246 5).
    public static func prf(_ hash: Hash, secret: [UInt8], label: String, seed: [UInt8], count: Int) -> [UInt8] {
        let labelSeed = Array(label.utf8) + seed
        var out: [UInt8] = []
        out.reserveCapacity(count + hash.length)
        var a = labelSeed
        while out.count < count {
            a = hmac(hash, key: secret, a)
            out += hmac(hash, key: secret, a + labelSeed)
        }
        return Array(out.prefix(count))
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

    /// The TLS 1.2 key block split into client and server keys and IVs (RFC 5246 6.3);
    /// MAC keys come first (empty for AEAD suites).
    public static func keyBlock(
        _ hash: Hash, masterSecret: [UInt8], clientRandom: [UInt8], serverRandom: [UInt8], macLength: Int,
        keyLength: Int, ivLength: Int
    ) -> (clientMAC: [UInt8], serverMAC: [UInt8], clientKey: [UInt8], serverKey: [UInt8], clientIV: [UInt8], serverIV: [UInt8]) {
        let total = 2 * (macLength + keyLength + ivLength)
        let block = prf(hash, secret: masterSecret, label: "key expansion", seed: serverRandom + clientRandom, count: total)
        var i = 0
        func take(_ n: Int) -> [UInt8] {
            defer { i += n }
            return Array(block[i..<i + n])
        }
        return (take(macLength), take(macLength), take(keyLength), take(keyLength), take(ivLength), take(ivLength))
    }
}
