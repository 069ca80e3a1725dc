// Names for wire codes, as data in one place (STYLE.md 12). Parsers keep raw numbers;
// these tables only turn them into words for notes and reports. An unknown value never
// fails: the open code types render it as `name-N`.

/// Code tables of the protocol layer.
public enum ProtocolTables {
    /// TLS and SSL protocol versions (RFC 5246 appendix E, RFC 8446 section 4.2.1).
    public static let tlsVersions: [UInt16: String] = [
        0x0200: "SSL 2.0",
        0x0300: "SSL 3.0",
        0x0301: "TLS 1.0",
        0x0302: "TLS 1.1",
        0x0303: "TLS 1.2",
        0x0304: "TLS 1.3",
    ]

    /// TLS alert descriptions (RFC 5246 7.2, RFC 8446 6, IANA TLS Alerts registry).
    public static let tlsAlertDescriptions: [UInt8: String] = [
        0: "close_notify",
        10: "unexpected_message",
        20: "bad_record_mac",
        21: "decryption_failed",
        22: "record_overflow",
        30: "decompression_failure",
        40: "handshake_failure",
        41: "no_certificate",
        42: "bad_certificate",
        43: "unsupported_certificate",
        44: "certificate_revoked",
        45: "certificate_expired",
        46: "certificate_unknown",
        47: "illegal_parameter",
        48: "unknown_ca",
        49: "access_denied",
        50: "decode_error",
        51: "decrypt_error",
        60: "export_restriction",
        70: "protocol_version",
        71: "insufficient_security",
        80: "internal_error",
        86: "inappropriate_fallback",
        90: "user_canceled",
        100: "no_renegotiation",
        109: "missing_extension",
        110: "unsupported_extension",
        111: "certificate_unobtainable",
        112: "unrecognized_name",
        113: "bad_certificate_status_response",
        114: "bad_certificate_hash_value",
        115: "unknown_psk_identity",
        116: "certificate_required",
        120: "no_application_protocol",
    ]

    /// TLS handshake message types (RFC 5246 7.4, RFC 8446 4).
    public static let tlsHandshakeTypes: [UInt8: String] = [
        0: "hello_request",
        1: "client_hello",
        2: "server_hello",
        3: "hello_verify_request",
        4: "new_session_ticket",
        5: "end_of_early_data",
        8: "encrypted_extensions",
        11: "certificate",
        12: "server_key_exchange",
        13: "certificate_request",
        14: "server_hello_done",
        15: "certificate_verify",
        16: "client_key_exchange",
        20: "finished",
        21: "certificate_url",
        22: "certificate_status",
        24: "key_update",
        254: "message_hash",
    ]

    /// How a cipher suite protects records, to estimate the plaintext size of encrypted
    /// records (CredSSP by shape).
    public enum RecordProtection: Sendable, Equatable {
        /// AES-GCM or AES-CCM in TLS 1.2: 8-byte explicit nonce and 16-byte tag.
        case aeadExplicitNonce
        /// ChaCha20-Poly1305 (and every TLS 1.3 suite before its inner type byte): 16-byte tag.
        case aeadImplicitNonce
        /// A block cipher with HMAC: IV (TLS 1.1+), MAC, padding to the block.
        case cbc(block: Int, mac: Int)
        /// RC4 with HMAC: MAC only.
        case stream(mac: Int)
    }

    /// Common cipher suites (IANA TLS Cipher Suites registry): name and record protection.
    /// Not exhaustive; an unknown suite renders as `0xC030`-style hex.
    public static let cipherSuites: [UInt16: (name: String, protection: RecordProtection)] = [
        0x0004: ("TLS_RSA_WITH_RC4_128_MD5", .stream(mac: 16)),
        0x0005: ("TLS_RSA_WITH_RC4_128_SHA", .stream(mac: 20)),
        0x000A: ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", .cbc(block: 8, mac: 20)),
        0x0016: ("TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", .cbc(block: 8, mac: 20)),
        0x002F: ("TLS_RSA_WITH_AES_128_CBC_SHA", .cbc(block: 16, mac: 20)),
        0x0032: ("TLS_DHE_DSS_WITH_AES_128_CBC_SHA", .cbc(block: 16, mac: 20)),
        0x0033: ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", .cbc(block: 16, mac: 20)),
        0x0035: ("TLS_RSA_WITH_AES_256_CBC_SHA", .cbc(block: 16, mac: 20)),
        0x0038: ("TLS_DHE_DSS_WITH_AES_256_CBC_SHA", .cbc(block: 16, mac: 20)),
        0x0039: ("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", .cbc(block: 16, mac: 20)),
        0x003C: ("TLS_RSA_WITH_AES_128_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0x003D: ("TLS_RSA_WITH_AES_256_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0x0040: ("TLS_DHE_DSS_WITH_AES_128_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0x0067: ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0x006A: ("TLS_DHE_DSS_WITH_AES_256_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0x006B: ("TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0x009C: ("TLS_RSA_WITH_AES_128_GCM_SHA256", .aeadExplicitNonce),
        0x009D: ("TLS_RSA_WITH_AES_256_GCM_SHA384", .aeadExplicitNonce),
        0x009E: ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", .aeadExplicitNonce),
        0x009F: ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", .aeadExplicitNonce),
        0x00A2: ("TLS_DHE_DSS_WITH_AES_128_GCM_SHA256", .aeadExplicitNonce),
        0x00A3: ("TLS_DHE_DSS_WITH_AES_256_GCM_SHA384", .aeadExplicitNonce),
        0x00FF: ("TLS_EMPTY_RENEGOTIATION_INFO_SCSV", .aeadExplicitNonce),
        0x1301: ("TLS_AES_128_GCM_SHA256", .aeadImplicitNonce),
        0x1302: ("TLS_AES_256_GCM_SHA384", .aeadImplicitNonce),
        0x1303: ("TLS_CHACHA20_POLY1305_SHA256", .aeadImplicitNonce),
        0x1304: ("TLS_AES_128_CCM_SHA256", .aeadImplicitNonce),
        0x1305: ("TLS_AES_128_CCM_8_SHA256", .aeadImplicitNonce),
        0x5600: ("TLS_FALLBACK_SCSV", .aeadExplicitNonce),
        0xC007: ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", .stream(mac: 20)),
        0xC008: ("TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", .cbc(block: 8, mac: 20)),
        0xC009: ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", .cbc(block: 16, mac: 20)),
        0xC00A: ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", .cbc(block: 16, mac: 20)),
        0xC011: ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", .stream(mac: 20)),
        0xC012: ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", .cbc(block: 8, mac: 20)),
        0xC013: ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", .cbc(block: 16, mac: 20)),
        0xC014: ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", .cbc(block: 16, mac: 20)),
        0xC023: ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0xC024: ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", .cbc(block: 16, mac: 48)),
        0xC027: ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", .cbc(block: 16, mac: 32)),
        0xC028: ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", .cbc(block: 16, mac: 48)),
        0xC02B: ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", .aeadExplicitNonce),
        0xC02C: ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", .aeadExplicitNonce),
        0xC02F: ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", .aeadExplicitNonce),
        0xC030: ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", .aeadExplicitNonce),
        0xCCA8: ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", .aeadImplicitNonce),
        0xCCA9: ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", .aeadImplicitNonce),
        0xCCAA: ("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", .aeadImplicitNonce),
    ]

    /// T.125 Result of MCS Connect-Response (ITU-T T.125 section 7, Result ENUMERATED).
    public static let mcsResults: [UInt8: String] = [
        0: "rt-successful",
        1: "rt-domain-merging",
        2: "rt-domain-not-hierarchical",
        3: "rt-no-such-channel",
        4: "rt-no-such-domain",
        5: "rt-no-such-user",
        6: "rt-not-admitted",
        7: "rt-other-user-id",
        8: "rt-parameters-unacceptable",
        9: "rt-token-not-available",
        10: "rt-token-not-possessed",
        11: "rt-too-many-channels",
        12: "rt-too-many-tokens",
        13: "rt-too-many-users",
        14: "rt-unspecified-failure",
        15: "rt-user-rejected",
    ]

    /// T.125 Reason of Disconnect-Provider-Ultimatum (ITU-T T.125 section 7).
    public static let mcsReasons: [UInt8: String] = [
        0: "rn-domain-disconnected",
        1: "rn-provider-initiated",
        2: "rn-token-purged",
        3: "rn-user-requested",
        4: "rn-channel-purged",
    ]

    /// GCC user data block types (MS-RDPBCGR 2.2.1.3.1 TS_UD_HEADER).
    public static let gccBlockTypes: [UInt16: String] = [
        0xC001: "CS_CORE",
        0xC002: "CS_SECURITY",
        0xC003: "CS_NET",
        0xC004: "CS_CLUSTER",
        0xC005: "CS_MONITOR",
        0xC006: "CS_MCS_MSGCHANNEL",
        0xC008: "CS_MONITOR_EX",
        0xC00A: "CS_MULTITRANSPORT",
        0x0C01: "SC_CORE",
        0x0C02: "SC_SECURITY",
        0x0C03: "SC_NET",
        0x0C04: "SC_MCS_MSGCHANNEL",
        0x0C08: "SC_MULTITRANSPORT",
    ]

    /// Standard RDP security encryption methods (MS-RDPBCGR 2.2.1.4.3 encryptionMethod).
    public static let encryptionMethods: [UInt32: String] = [
        0x00: "ENCRYPTION_METHOD_NONE",
        0x01: "ENCRYPTION_METHOD_40BIT",
        0x02: "ENCRYPTION_METHOD_128BIT",
        0x08: "ENCRYPTION_METHOD_56BIT",
        0x10: "ENCRYPTION_METHOD_FIPS",
    ]

    /// Standard RDP security encryption levels (MS-RDPBCGR 2.2.1.4.3 encryptionLevel).
    public static let encryptionLevels: [UInt32: String] = [
        0: "ENCRYPTION_LEVEL_NONE",
        1: "ENCRYPTION_LEVEL_LOW",
        2: "ENCRYPTION_LEVEL_CLIENT_COMPATIBLE",
        3: "ENCRYPTION_LEVEL_HIGH",
        4: "ENCRYPTION_LEVEL_FIPS",
    ]

    /// X.509 name attribute types (RFC 4519, RFC 4514 section 3, PKCS #9).
    public static let nameAttributes: [String: String] = [
        "2.5.4.3": "CN",
        "2.5.4.4": "SN",
        "2.5.4.5": "serialNumber",
        "2.5.4.6": "C",
        "2.5.4.7": "L",
        "2.5.4.8": "ST",
        "2.5.4.9": "street",
        "2.5.4.10": "O",
        "2.5.4.11": "OU",
        "2.5.4.12": "title",
        "2.5.4.42": "GN",
        "2.5.4.46": "dnQualifier",
        "1.2.840.113549.1.9.1": "emailAddress",
        "0.9.2342.19200300.100.1.1": "UID",
        "0.9.2342.19200300.100.1.25": "DC",
    ]

    /// Signature algorithms (RFC 3279, RFC 4055, RFC 5758, RFC 8410; OIW for the old
    /// `sha1WithRSA` that Windows' proprietary chains use).
    public static let signatureAlgorithms: [String: String] = [
        "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10": "rsassaPss",
        "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
        "1.2.840.10045.4.1": "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
        "1.2.840.10040.4.3": "dsa-with-sha1",
        "2.16.840.1.101.3.4.3.2": "dsa-with-sha256",
        "1.3.101.112": "Ed25519",
        "1.3.101.113": "Ed448",
        "1.3.14.3.2.3": "md5WithRSA",
        "1.3.14.3.2.29": "sha1WithRSA",
    ]

    /// Public key algorithms of SubjectPublicKeyInfo (RFC 3279, RFC 5480, RFC 8410).
    public static let publicKeyAlgorithms: [String: String] = [
        "1.2.840.113549.1.1.1": "RSA",
        "1.2.840.113549.1.1.10": "RSA-PSS",
        "1.2.840.10045.2.1": "ECDSA",
        "1.2.840.10040.4.1": "DSA",
        "1.2.840.10046.2.1": "DH",
        "1.3.101.110": "X25519",
        "1.3.101.111": "X448",
        "1.3.101.112": "Ed25519",
        "1.3.101.113": "Ed448",
    ]

    /// Named elliptic curves (RFC 5480 section 2.1.1.1, SEC 2): display name and size.
    public static let namedCurves: [String: (name: String, bits: Int)] = [
        "1.2.840.10045.3.1.7": ("P-256", 256),
        "1.3.132.0.34": ("P-384", 384),
        "1.3.132.0.35": ("P-521", 521),
        "1.3.132.0.10": ("secp256k1", 256),
        "1.2.840.10045.3.1.1": ("P-192", 192),
        "1.3.132.0.33": ("P-224", 224),
        "1.3.36.3.3.2.8.1.1.7": ("brainpoolP256r1", 256),
        "1.3.36.3.3.2.8.1.1.11": ("brainpoolP384r1", 384),
        "1.3.36.3.3.2.8.1.1.13": ("brainpoolP512r1", 512),
    ]

    /// TLS-inspection products and the words their CA certificates carry in the issuer
    /// name (FACTS.md section 6, client-side interference). Matched case-insensitively on
    /// word boundaries, so `eset` does not match `reset`. Only words specific to an
    /// inspection product are listed: a vendor that also runs a public CA (Symantec,
    /// Cisco) is matched through its proxy product's name only.
    public static let inspectionProducts: [(product: String, words: [String])] = [
        ("Fortinet FortiGate", ["fortinet", "fortigate", "fortiproxy"]),
        ("Palo Alto Networks", ["palo alto networks", "paloalto", "palo alto"]),
        ("Zscaler", ["zscaler"]),
        ("Blue Coat / Symantec ProxySG", ["blue coat", "bluecoat", "proxysg"]),
        ("Sophos", ["sophos"]),
        ("Cisco Umbrella", ["cisco umbrella", "opendns"]),
        ("Netskope", ["netskope"]),
        ("Kaspersky", ["kaspersky"]),
        ("ESET", ["eset ssl filter", "eset"]),
        ("Avast / AVG", ["avast", "avg web", "avg technologies"]),
        ("Bitdefender", ["bitdefender"]),
        ("Check Point", ["check point", "checkpoint"]),
        ("Forcepoint", ["forcepoint", "websense"]),
        ("McAfee / Skyhigh", ["mcafee", "skyhigh"]),
        ("Barracuda", ["barracuda"]),
        ("WatchGuard", ["watchguard"]),
        ("Untangle", ["untangle"]),
        ("SonicWall", ["sonicwall"]),
        ("Cyberoam", ["cyberoam"]),
        ("iboss", ["iboss"]),
        ("Smoothwall", ["smoothwall"]),
        ("Lightspeed Systems", ["lightspeed systems"]),
        ("Securly", ["securly"]),
        ("Trend Micro", ["trend micro", "interscan"]),
        ("mitmproxy", ["mitmproxy"]),
        ("Fiddler", ["do_not_trust_fiddlerroot", "fiddler"]),
        ("Charles Proxy", ["charles proxy", "charlesproxy"]),
        ("Burp Suite", ["portswigger", "burp suite", "burp"]),
    ]

    /// The inspection product named in `issuer`, if any.
    public static func inspectionProduct(inIssuer issuer: String) -> String? {
        let text = normalizedWords(issuer)
        for (product, patterns) in inspectionPatterns {
            for p in patterns where contains(text, p) { return product }
        }
        return nil
    }

    /// The product words as ` word ` byte patterns, built once.
    static let inspectionPatterns: [(String, [[UInt8]])] = inspectionProducts.map { entry in
        (entry.product, entry.words.map { Array((" " + $0 + " ").utf8) })
    }

    static func contains(_ text: [UInt8], _ pattern: [UInt8]) -> Bool {
        guard let first = pattern.first, pattern.count <= text.count else { return false }
        var i = 0
        while i + pattern.count <= text.count {
            if text[i] == first && text[i..<(i + pattern.count)].elementsEqual(pattern) { return true }
            i += 1
        }
        return false
    }

    /// Lowercased ASCII bytes, every run of characters other than letters, digits and `_`
    /// turned into one space, padded with spaces: word-boundary matching by search.
    static func normalizedWords(_ s: String) -> [UInt8] {
        var out: [UInt8] = [0x20]
        var lastSpace = true
        for b in s.utf8 {
            let c = b >= 65 && b <= 90 ? b + 32 : b
            let isWord = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 95
            if isWord {
                out.append(c)
                lastSpace = false
            } else if !lastSpace {
                out.append(0x20)
                lastSpace = true
            }
        }
        if !lastSpace { out.append(0x20) }
        return out
    }
}
