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
