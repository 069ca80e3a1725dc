import Crypto

/// Certificate fingerprints (swift-crypto's SHA-256).
enum Digests {
    /// Lowercase hex of SHA-256(bytes).
    static func sha256Hex(_ bytes: [UInt8]) -> String {
        hexString(Array(SHA256.hash(data: bytes)))
    }
}
