import TriageFlows
import TriageProtocols

/// What a report without the connection's TLS keys cannot show for a failed attempt, and
/// where to get it (README, "Key logs"). Only facts that would name or sharpen the verdict
/// are listed: an attempt that failed before TLS, or whose keys were read, hides nothing.
public struct HiddenFacts: Sendable, Equatable {
    public enum Fact: String, Sendable, CaseIterable, Comparable {
        /// The NTSTATUS or SSPI code of the server's TSRequest (MS-CSSP 2.2.1).
        case credsspErrorCode = "credssp-error-code"
        /// The account tried: NTLM domain and user, or the Kerberos realm and principal.
        case account
        /// Both sides' TSRequest versions (the CVE-2018-0886 version gap).
        case credsspVersions = "credssp-versions"
        /// HYBRID_EX Early User Authorization Result (MS-RDPBCGR 2.2.10.2).
        case earlyUserAuthorization = "early-user-authorization"
        /// The server's Set Error Info reason and licensing errors (MS-RDPBCGR 2.2.5.1.1).
        case serverErrorInfo = "server-error-info"
        /// TLS 1.3 encrypts the server's certificate (RFC 8446 4.4.2).
        case certificate
        /// An alert's level and description, encrypted after the handshake.
        case alertDescription = "alert-description"

        public static func < (a: Fact, b: Fact) -> Bool { (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0) }
    }

    /// Where the hidden facts come from.
    public enum Source: String, Sendable, CaseIterable, Comparable {
        /// The client's NSS key log (`SSLKEYLOGFILE`), given with `--keylog`.
        case keyLog = "key-log"
        /// Keys shipped inside a pcapng (`editcap --inject-secrets`), read without options.
        case injectedSecrets = "injected-secrets"
        /// A Windows server's Security event 4625 (Status and Sub Status) for a refused logon.
        case windowsEvent4625 = "windows-event-4625"

        public static func < (a: Source, b: Source) -> Bool { (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0) }
    }

    public var facts: [Fact]
    public var sources: [Source]

    /// Facts as bits, in `Fact.allCases` order (so `allCases.filter` lists them sorted).
    struct Bits {
        private(set) var raw: UInt8 = 0
        static func bit(_ f: Fact) -> UInt8 { 1 << UInt8(truncatingIfNeeded: Fact.allCases.firstIndex(of: f) ?? 0) }
        mutating func insert(_ f: Fact) { raw |= Self.bit(f) }
        func contains(_ f: Fact) -> Bool { raw & Self.bit(f) != 0 }
    }

    public init(facts: [Fact], sources: [Source]) {
        self.facts = facts
        self.sources = sources
    }

    /// The hidden facts of a failed attempt that reached TLS without keys; nil otherwise.
    public static func of(_ f: AttemptFacts, _ v: Verdict) -> HiddenFacts? {
        guard v.isFailure else { return nil }
        if let d = f.rdp.decrypted, d.status != .noSecrets { return nil }
        guard let tls = f.rdp.tls, let hello = tls.serverHello else { return nil }
        let tls13 = hello.version == 0x0304
        // A set of at most seven cases, kept in bits: this runs for every failed attempt.
        var bits = Bits()
        if tls13 && tls.certificates.isEmpty && (v.stage == .tlsHandshake || v.label == .tlsAlert || v.label == .tlsRejected) {
            bits.insert(.certificate)
        }
        if tls.alerts.contains(where: { $0.encrypted }) && (v.label == .tlsAlert || v.stage == .tlsHandshake || v.stage == .credssp) {
            bits.insert(.alertDescription)
        }
        let credssp = f.rdp.connectionConfirm?.selectedProtocol?.usesCredSSP == true
        if credssp && tls.handshakeComplete {
            switch v.stage {
            case .credssp:
                if v.label == .credsspFailure || v.endedBy == .server {
                    bits.insert(.credsspErrorCode)
                    bits.insert(.account)
                } else {
                    bits.insert(.credsspVersions)
                }
                if f.rdp.connectionConfirm?.selectedProtocol?.contains(.hybridEx) == true { bits.insert(.earlyUserAuthorization) }
            case .mcsConnect, .session:
                bits.insert(.serverErrorInfo)
            default:
                break
            }
        } else if tls.handshakeComplete && (v.stage == .mcsConnect || v.stage == .session) {
            bits.insert(.serverErrorInfo)
        }
        guard bits.raw != 0 else { return nil }
        var sources: [Source] = [.keyLog, .injectedSecrets]
        if bits.contains(.credsspErrorCode) { sources.append(.windowsEvent4625) }
        return HiddenFacts(facts: Fact.allCases.filter(bits.contains), sources: sources)
    }
}

extension Knowledge {
    /// How each hidden fact reads in a sentence.
    public static let hiddenFactText: [HiddenFacts.Fact: String] = [
        .credsspErrorCode: "the server's CredSSP errorCode (NTSTATUS)",
        .account: "the account tried",
        .credsspVersions: "the CredSSP versions of both sides",
        .earlyUserAuthorization: "the Early User Authorization result",
        .serverErrorInfo: "the server's Set Error Info reason and licensing result",
        .certificate: "the server's certificate (TLS 1.3 encrypts it)",
        .alertDescription: "which TLS alert was sent",
    ]

    /// How to get them, as one clause each.
    public static let hiddenSourceText: [HiddenFacts.Source: String] = [
        .keyLog: "a key log from the client (SSLKEYLOGFILE=FILE for FreeRDP/OpenSSL clients), read with --keylog FILE",
        .injectedSecrets: "or the keys inside the capture (editcap --inject-secrets tls,keys.txt in.pcap out.pcapng)",
        .windowsEvent4625: "on a Windows server, the Security log's event 4625 gives Status and Sub Status",
    ]

    /// How to get them, one list item each (Markdown).
    public static let hiddenSourceItem: [HiddenFacts.Source: String] = [
        .keyLog: "A key log from the client (SSLKEYLOGFILE=FILE for FreeRDP/OpenSSL clients), read with --keylog FILE.",
        .injectedSecrets: "The keys inside the capture: editcap --inject-secrets tls,keys.txt in.pcap out.pcapng (read without options).",
        .windowsEvent4625: "On a Windows server: the Security log's event 4625, with its Status and Sub Status.",
    ]

    /// "the server's CredSSP errorCode (NTSTATUS), the account tried".
    public static func hiddenList(_ facts: [HiddenFacts.Fact]) -> String {
        facts.compactMap { hiddenFactText[$0] }.joined(separator: ", ")
    }

    /// "a key log from the client (...), or the keys inside the capture (...); on a Windows server, ...".
    public static func hiddenHow(_ sources: [HiddenFacts.Source]) -> String {
        let keys = sources.filter { $0 != .windowsEvent4625 }.compactMap { hiddenSourceText[$0] }.joined(separator: ", ")
        let server = sources.contains(.windowsEvent4625) ? "; " + (hiddenSourceText[.windowsEvent4625] ?? "") : ""
        return keys + server
    }
}
