import TriageFlows

// CredSSP (MS-CSSP) recognised by the shape of the encrypted records after a HYBRID or
// HYBRID_EX negotiation (FACTS.md section 4), without keys.
//
// MS-CSSP 3.1.5 runs in legs that alternate direction:
//   1 client  TSRequest{negoTokens: NTLM NEGOTIATE / Kerberos AP-REQ}        small
//   2 server  TSRequest{negoTokens: NTLM CHALLENGE / AP-REP}                 larger
//   3 client  TSRequest{negoTokens: AUTHENTICATE, pubKeyAuth}                 large
//   4 server  TSRequest{pubKeyAuth}                                          ~60 bytes of plaintext
//   5 client  TSRequest{authInfo: the credentials}                           ~70+ bytes
//   6 server  HYBRID_EX only: Early User Authorization Result, 4 bytes (MS-RDPBCGR 2.2.10.2)
//   then the RDP connection sequence (MCS Connect Initial from the client).
// A refusing server either closes after leg 3, or (recent Windows) answers leg 3 with a
// TSRequest carrying only errorCode: about 15 to 20 bytes of plaintext, far below
// pubKeyAuth's 59 (MS-CSSP 2.2.1, version 5+ hashes the key to 32 bytes) — that is the
// size test of `errorReplyMaxPlaintext`.
//
// Sizes are judged on an estimate of the plaintext: the record length minus the cipher's
// typical overhead (`RecordOverhead`). The thresholds leave room for the overhead we can
// only estimate (CBC padding, unknown suites).

/// The bytes TLS adds to each encrypted record, estimated from the version and cipher
/// suite (RFC 5246 6.2.3, RFC 8446 5.2).
public struct RecordOverhead: Sendable, Equatable {
    /// Typical overhead per record, in bytes.
    public var typical: Int
    /// A block cipher under TLS 1.0 or SSL 3.0: clients split each write 1/n-1 against
    /// BEAST, so a one-byte record may precede the real one.
    public var splitsRecords: Bool

    /// The overhead for a negotiated version and cipher suite; an unknown suite is taken
    /// as AES-GCM (24 bytes), the most common on RDP servers.
    public static func estimate(version: UInt16, cipherSuite: UInt16?) -> RecordOverhead {
        if version >= 0x0304 {
            // Inner content type byte plus a 16-byte AEAD tag; padding is rare.
            return RecordOverhead(typical: 17, splitsRecords: false)
        }
        let oldVersion = version <= 0x0301
        guard let suite = cipherSuite, let info = ProtocolTables.cipherSuites[suite] else {
            return RecordOverhead(typical: 24, splitsRecords: oldVersion)
        }
        switch info.protection {
        case .aeadExplicitNonce:
            return RecordOverhead(typical: 24, splitsRecords: false)
        case .aeadImplicitNonce:
            return RecordOverhead(typical: 16, splitsRecords: false)
        case .cbc(let block, let mac):
            // Explicit IV from TLS 1.1 on; padding averages half a block.
            return RecordOverhead(typical: (oldVersion ? 0 : block) + mac + block / 2, splitsRecords: oldVersion)
        case .stream(let mac):
            return RecordOverhead(typical: mac, splitsRecords: false)
        }
    }
}

/// The CredSSP shape classifier (MS-CSSP 3.1.5; FACTS.md section 4).
public enum CredSSPShape {
    /// The Early User Authorization Result is 4 bytes of plaintext.
    static let earlyUserAuthorizationMaxPlaintext = 16
    /// A server TSRequest below this estimated plaintext size cannot hold a CHALLENGE or a
    /// pubKeyAuth: it is an errorCode-only reply.
    static let errorReplyMaxPlaintext = 40
    /// A TLS alert is 2 bytes of plaintext; the smallest TSRequest is several times this.
    static let alertMaxPlaintext = 16
    /// Largest record taken for the first half of a 1/n-1 split (1 byte + MAC + padding).
    static let splitHeadMaxLength = 32

    /// A run of records from one side that forms one TSRequest.
    struct Message {
        var side: Side
        /// One record, or two under a 1/n-1 split; never empty.
        var records: ArraySlice<TLSFacts.RecordRun>
        var plaintext: Int
        var first: TLSFacts.RecordRun { records[records.startIndex] }
    }

    /// Classifies the encrypted application records (both directions, in capture order)
    /// of a connection that negotiated HYBRID (`hybridEx` false) or HYBRID_EX.
    public static func classify(
        records: [TLSFacts.RecordRun], hybridEx: Bool, overhead: RecordOverhead
    ) -> CredSSPFacts {
        var facts = CredSSPFacts()
        // The server errorCode reply is judged once the next leg shows whether the
        // exchange went on; until then it is pending here.
        var pendingError: (message: Message, phase: CredSSPFacts.Phase)?
        for m in messages(records, overhead: overhead) {
            // A client record too small for any TSRequest is its alert (close_notify under
            // TLS 1.3 hides as application data): the exchange did not go on.
            if let p = pendingError, m.side == .client, m.plaintext > alertMaxPlaintext {
                // The exchange went on: the small server message was the real answer.
                pendingError = nil
                facts.likelyErrorReply = nil
                facts.phase = p.phase
                facts.reachedAt = p.message.first.at
            }
            switch facts.phase {
            case .none:
                // Server records before the client's first TSRequest are not CredSSP
                // (a TLS 1.3 NewSessionTicket, for one).
                if m.side == .client { advance(&facts, to: .negotiate, with: m) }
            case .negotiate, .authenticate:
                if m.side == .server {
                    let next: CredSSPFacts.Phase = facts.phase == .negotiate ? .challenge : .serverPubKeyAuth
                    if m.plaintext < errorReplyMaxPlaintext {
                        if pendingError == nil {
                            pendingError = (m, next)
                            facts.likelyErrorReply = m.first.at
                        }
                        facts.records.append(contentsOf: m.records)
                    } else {
                        pendingError = nil
                        facts.likelyErrorReply = nil
                        advance(&facts, to: next, with: m)
                    }
                } else if pendingError == nil {
                    facts.records.append(contentsOf: m.records)
                }
            case .challenge:
                if m.side == .client { advance(&facts, to: .authenticate, with: m) } else { facts.records.append(contentsOf: m.records) }
            case .serverPubKeyAuth:
                if m.side == .client { advance(&facts, to: .credentials, with: m) } else { facts.records.append(contentsOf: m.records) }
            case .credentials:
                if hybridEx && m.side == .server && m.plaintext <= earlyUserAuthorizationMaxPlaintext {
                    advance(&facts, to: .earlyUserAuthorization, with: m)
                } else {
                    facts.phase = .session
                }
            case .earlyUserAuthorization:
                facts.phase = .session
            case .session:
                return facts
            }
        }
        return facts
    }

    static func advance(_ facts: inout CredSSPFacts, to phase: CredSSPFacts.Phase, with m: Message) {
        facts.phase = phase
        facts.reachedAt = m.first.at
        facts.records.append(contentsOf: m.records)
    }

    /// Groups records into TSRequest-sized messages: one record each, except that under a
    /// 1/n-1 splitting cipher a small record joins the next one from the same side.
    static func messages(_ records: [TLSFacts.RecordRun], overhead: RecordOverhead) -> [Message] {
        var out: [Message] = []
        out.reserveCapacity(records.count)
        var i = 0
        while i < records.count {
            let r = records[i]
            var m = Message(side: r.from, records: records[i...i], plaintext: r.length - overhead.typical)
            if overhead.splitsRecords, r.length <= splitHeadMaxLength, i + 1 < records.count, records[i + 1].from == r.from {
                m.records = records[i...(i + 1)]
                m.plaintext += records[i + 1].length - overhead.typical
                i += 1
            }
            out.append(m)
            i += 1
        }
        return out
    }
}
