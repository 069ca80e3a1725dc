/// What the codes read inside TLS mean (FACTS.md sections 1, 4 and 5; MS-RDPBCGR
/// 2.2.5.1.1 errorInfo, 2.2.1.12.1.3 licensing, 2.2.10.2 Early User Authorization), as data.
extension Knowledge {
    /// NTSTATUS and SSPI codes of a TSRequest errorCode: plain meaning and what to do.
    public static let ntstatusMeaning: [UInt32: (meaning: String, remedy: String)] = [
        0xC000_006D: ("the user name or the password is wrong", "Check the user name and password; the server's event 4625 Sub Status tells which."),
        0xC000_006A: ("the password is wrong", "Retype or reset the password."),
        0xC000_0064: ("no such user", "Check the user name (and domain); the account does not exist on the server or its domain."),
        0xC000_006E: ("an account restriction (e.g. blank password not allowed remotely)", "Check the account's restrictions: blank passwords, logon workstations, logon hours."),
        0xC000_006F: ("outside the account's logon hours", "Change the account's logon hours or retry within them."),
        0xC000_0070: ("the account may not log on from this workstation", "Add the client workstation to the account's \"Log On To\" list."),
        0xC000_0071: ("the password has expired", "Change the password (from another machine, or allow password change at logon without NLA)."),
        0xC000_0072: ("the account is disabled", "Enable the account."),
        0xC000_0193: ("the account has expired", "Extend the account's expiry date."),
        0xC000_0224: ("the password must be changed before the first logon", "Change the password first; NLA cannot prompt for a new one."),
        0xC000_0234: ("the account is locked out", "Unlock the account (and find what keeps trying the old password)."),
        0xC000_015B: ("the user lacks the right to log on through Remote Desktop Services", "Add the user to \"Remote Desktop Users\" or grant \"Allow log on through Remote Desktop Services\"."),
        0xC000_005E: ("no logon server (domain controller) was available", "Check the server's connection to its domain controllers."),
        0xC000_0133: ("the clocks of the server and the domain controller differ too much", "Synchronise time (w32tm /resync)."),
        0xC000_018D: ("the trust between the server and its domain is broken", "Repair the computer account (Test-ComputerSecureChannel -Repair)."),
        0xC000_0413: ("an authentication firewall (selective authentication) refused the user", "Grant \"Allowed to authenticate\" on the server's computer object."),
        0x8009_030C: ("the logon was denied", "Check the credentials and the server's event 4625."),
        0x8009_030F: ("the message was altered (a CredSSP binding mismatch)", "Check for TLS inspection between client and server and CredSSP patch levels."),
        0x8009_0308: ("the token was invalid", "Check CredSSP patch levels on both sides."),
        0x8009_0311: ("no authority could be contacted for authentication", "Check the connection to the domain controllers and the KDC."),
        0x8009_0322: ("the target principal name is wrong (Kerberos SPN mismatch)", "Connect by the server's real name, or fix its TERMSRV SPN."),
    ]

    /// KRB-ERROR error-code (RFC 4120 7.5.9): name, meaning and what to do.
    public static let kerberosError: [Int32: (name: String, meaning: String, remedy: String)] = [
        6: ("KDC_ERR_C_PRINCIPAL_UNKNOWN", "the client's principal is unknown", "Check the user name and realm."),
        7: ("KDC_ERR_S_PRINCIPAL_UNKNOWN", "no account holds the service principal", "Register the server's TERMSRV principal (setspn), or connect by the server's own name."),
        12: ("KDC_ERR_POLICY", "a policy refused the request", "Check the account's Kerberos policy (logon restrictions, Protected Users)."),
        14: ("KDC_ERR_ETYPE_NOSUPP", "no common encryption type", "Align the allowed Kerberos encryption types (msDS-SupportedEncryptionTypes, client policy)."),
        18: ("KDC_ERR_CLIENT_REVOKED", "the client's credentials are revoked (disabled or locked out)", "Enable or unlock the account."),
        23: ("KDC_ERR_KEY_EXPIRED", "the password has expired", "Change the password."),
        24: ("KDC_ERR_PREAUTH_FAILED", "pre-authentication failed (wrong password)", "Retype or reset the password."),
        25: ("KDC_ERR_PREAUTH_REQUIRED", "pre-authentication is required", "A normal step of the ticket request; look at the next message."),
        31: ("KRB_AP_ERR_BAD_INTEGRITY", "the integrity check failed on decryption", "Check for a stale ticket (klist purge) or a changed service key."),
        32: ("KRB_AP_ERR_TKT_EXPIRED", "the ticket has expired", "Get a new ticket (klist purge, or log on again)."),
        33: ("KRB_AP_ERR_TKT_NYV", "the ticket is not yet valid", "Synchronise the clocks of client, server and domain controller."),
        34: ("KRB_AP_ERR_REPEAT", "the request is a replay", "Retry; if it repeats, look for a device replaying traffic."),
        35: ("KRB_AP_ERR_NOT_US", "the ticket is not for this server", "Connect by the server's own name; check DNS and port forwards for the name used."),
        36: ("KRB_AP_ERR_BADMATCH", "the ticket and the authenticator do not match", "Purge the client's tickets (klist purge) and retry."),
        37: ("KRB_AP_ERR_SKEW", "the clocks of client and server differ too much", "Synchronise time on the client and the server (w32tm /resync); the default tolerance is 5 minutes."),
        38: ("KRB_AP_ERR_BADADDR", "the ticket's address does not match the client's", "Request tickets without addresses, or check NAT between client and server."),
        39: ("KRB_AP_ERR_BADVERSION", "a protocol version mismatch", "Check the Kerberos implementations of client and server."),
        40: ("KRB_AP_ERR_MSG_TYPE", "an unexpected message type", "Check the Kerberos implementations of client and server."),
        41: ("KRB_AP_ERR_MODIFIED", "the server could not decrypt the ticket: it was made for another account's key", "The name the client used belongs to another computer (duplicate SPN, DNS or a port forward to the wrong host), or the server's password changed: check `setspn -Q TERMSRV/name` and DNS, then klist purge."),
        44: ("KRB_AP_ERR_BADKEYVER", "the ticket's key version is not the server's", "Purge the client's tickets (klist purge); check replication of the server's computer account."),
        45: ("KRB_AP_ERR_NOKEY", "the server has no key for the ticket", "Check the server's keytab or computer account password."),
        46: ("KRB_AP_ERR_MUT_FAIL", "mutual authentication failed", "Check the server's identity (name, SPN)."),
        60: ("KRB_ERR_GENERIC", "a generic Kerberos error", "Look at the server's and the domain controller's event logs."),
        68: ("KDC_ERR_WRONG_REALM", "the request went to the wrong realm", "Check the realm (domain) of the account and the server."),
    ]

    /// `37 KRB_AP_ERR_SKEW: the clocks of client and server differ too much`.
    public static func describeKerberosError(_ code: Int32) -> String {
        guard let e = kerberosError[code] else { return "error-code \(code)" }
        return "\(code) \(e.name): \(e.meaning)"
    }

    /// errorInfo of the Set Error Info PDU (MS-RDPBCGR 2.2.5.1.1): name and meaning.
    public static let errorInfo: [UInt32: (name: String, meaning: String)] = [
        0x1: ("ERRINFO_RPC_INITIATED_DISCONNECT", "an administrative tool on the server disconnected the session"),
        0x2: ("ERRINFO_RPC_INITIATED_LOGOFF", "an administrative tool on the server logged the session off"),
        0x3: ("ERRINFO_IDLE_TIMEOUT", "the session's idle time limit ran out"),
        0x4: ("ERRINFO_LOGON_TIMEOUT", "the session's active time limit ran out"),
        0x5: ("ERRINFO_DISCONNECTED_BY_OTHERCONNECTION", "another connection took over the session"),
        0x6: ("ERRINFO_OUT_OF_MEMORY", "the server ran out of memory"),
        0x7: ("ERRINFO_SERVER_DENIED_CONNECTION", "the server denied the connection"),
        0x9: ("ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES", "the user may not log on through Remote Desktop"),
        0xA: ("ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED", "the server requires the user to type the credentials"),
        0xB: ("ERRINFO_RPC_INITIATED_DISCONNECT_BYUSER", "the user disconnected from the server"),
        0xC: ("ERRINFO_LOGOFF_BY_USER", "the user logged off"),
        0x100: ("ERRINFO_LICENSE_INTERNAL", "an internal licensing error"),
        0x101: ("ERRINFO_LICENSE_NO_LICENSE_SERVER", "no license server was available"),
        0x102: ("ERRINFO_LICENSE_NO_LICENSE", "no client access license was available"),
        0x103: ("ERRINFO_LICENSE_BAD_CLIENT_MSG", "the server got an invalid licensing message"),
        0x104: ("ERRINFO_LICENSE_HWID_DOESNT_MATCH_LICENSE", "the client's license does not match its hardware ID"),
        0x105: ("ERRINFO_LICENSE_BAD_CLIENT_LICENSE", "the client's license is invalid"),
        0x106: ("ERRINFO_LICENSE_CANT_FINISH_PROTOCOL", "the licensing exchange failed on the network"),
        0x107: ("ERRINFO_LICENSE_CLIENT_ENDED_PROTOCOL", "the client ended licensing early"),
        0x108: ("ERRINFO_LICENSE_BAD_CLIENT_ENCRYPTION", "a licensing message was wrongly encrypted"),
        0x109: ("ERRINFO_LICENSE_CANT_UPGRADE_LICENSE", "the client's license could not be upgraded"),
        0x10A: ("ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS", "the server is not licensed for remote connections"),
    ]

    /// The Set Error Info codes that are a normal end, not a failure.
    public static let errorInfoNormalEnd: Set<UInt32> = [0x1, 0x2, 0xB, 0xC]

    /// dwErrorCode of a licensing error message (MS-RDPBCGR 2.2.1.12.1.3).
    public static let licenseError: [UInt32: String] = [
        0x01: "ERR_INVALID_SERVER_CERTIFICATE", 0x02: "ERR_NO_LICENSE", 0x03: "ERR_INVALID_SCOPE",
        0x06: "ERR_NO_LICENSE_SERVER", 0x07: "STATUS_VALID_CLIENT", 0x08: "ERR_INVALID_CLIENT",
        0x0B: "ERR_INVALID_PRODUCTID", 0x0C: "ERR_INVALID_MESSAGE_LEN", 0x03E9: "ERR_INVALID_MAC",
    ]

    /// Save Session Info infoType (MS-RDPBCGR 2.2.10.1.1).
    public static let logonInfoType: [UInt32: String] = [
        0: "INFOTYPE_LOGON", 1: "INFOTYPE_LOGON_LONG", 2: "INFOTYPE_LOGON_PLAINNOTIFY", 3: "INFOTYPE_LOGON_EXTENDED_INFO",
    ]

    static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16, uppercase: true) }

    /// `0xC000006D STATUS_LOGON_FAILURE: the user name or the password is wrong`.
    public static func describeStatus(_ code: UInt32) -> String {
        let name = ntstatus[code]?.name ?? "NTSTATUS"
        let meaning = ntstatusMeaning[code]?.meaning
        return "\(hex(code)) \(name)" + (meaning.map { ": \($0)" } ?? "")
    }

    public static func describeErrorInfo(_ code: UInt32) -> String {
        guard let e = errorInfo[code] else {
            return (0x10C9...0x1193).contains(code) ? "\(hex(code)) (a protocol error the server detected)" : hex(code)
        }
        return "\(hex(code)) \(e.name): \(e.meaning)"
    }
}
