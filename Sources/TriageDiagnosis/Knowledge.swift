import TriageProtocols

/// Which remediation steps apply (STYLE.md 12): each case names one entry of
/// `Knowledge.remediation`, the name expected files cite as `remediation`.
public enum Remedy: Sendable, Hashable {
    case synUnanswered
    case rstRefused
    case icmpAdmin
    case icmpNoHost
    case icmpOther
    case resetByMiddlebox
    case mtuBlackhole
    case pathLoss
    case clientStall
    /// The RDP_NEG_FAILURE code's own entry; the general one for a code without (or nil).
    case negotiation(NegotiationFailureCode?)
    case tlsAlertProtocolVersion
    case tlsAlertHandshakeFailure
    case tlsAlertCertificate
    case tlsAlertOther
    case tlsRejected
    case tlsInspection
    case credsspFailure
    case credsspEarly
    case earlyDisconnect
    /// The server stated its refusal after the security handshake (read with a key log).
    case serverRefused
    /// Early User Authorization ACCESS_DENIED: authenticated, but not allowed to log on here.
    case logonNotGranted
    case nlaPolicyMismatch
    case clientAbort
    case nonRDPService
    case reset
    case sessionReset
    case incomplete
    case handshakeIncomplete
    case udpUnanswered
    case midSession
    case noRDPRequest
    case proxyRefused
    case proxyDenied
    case proxyUnreachable
    case proxyUnsupported
    case proxyFailed
    case success

    /// The entry's name in `Knowledge.remediation`.
    public var name: String {
        switch self {
        case .synUnanswered: "syn-unanswered"
        case .rstRefused: "rst-refused"
        case .icmpAdmin: "icmp-admin"
        case .icmpNoHost: "icmp-nohost"
        case .icmpOther: "icmp-other"
        case .resetByMiddlebox: "reset-by-middlebox"
        case .mtuBlackhole: "mtu-blackhole"
        case .pathLoss: "path-loss"
        case .clientStall: "client-stall"
        case .tlsAlertProtocolVersion: "tls-alert-protocol_version"
        case .tlsAlertHandshakeFailure: "tls-alert-handshake_failure"
        case .tlsAlertCertificate: "tls-alert-certificate"
        case .tlsAlertOther: "tls-alert-other"
        case .tlsRejected: "tls-rejected"
        case .tlsInspection: "tls-inspection"
        case .credsspFailure: "credssp-failure"
        case .credsspEarly: "credssp-early"
        case .earlyDisconnect: "early-disconnect"
        case .serverRefused: "server-refused"
        case .logonNotGranted: "logon-not-granted"
        case .nlaPolicyMismatch: "nla-policy-mismatch"
        case .clientAbort: "client-abort"
        case .nonRDPService: "non-rdp-service"
        case .reset: "reset"
        case .sessionReset: "session-reset"
        case .incomplete: "incomplete"
        case .handshakeIncomplete: "handshake-incomplete"
        case .udpUnanswered: "udp-unanswered"
        case .midSession: "mid-session"
        case .noRDPRequest: "no-rdp-request"
        case .proxyRefused: "proxy-refused"
        case .proxyDenied: "proxy-denied"
        case .proxyUnreachable: "proxy-unreachable"
        case .proxyUnsupported: "proxy-unsupported"
        case .proxyFailed: "proxy-failed"
        case .success: "success"
        case .negotiation(let code):
            code.map { Knowledge.remediation["negotiation-\($0.name)"] != nil ? "negotiation-\($0.name)" : "negotiation-other" }
                ?? "negotiation-other"
        }
    }
}

extension Label {
    /// The steps a verdict with this label gets when its rule names none; nil: no steps
    /// (a label whose advice depends on the case, which its rules always name).
    public var remedy: Remedy? {
        switch self {
        case .success: .success
        case .synUnanswered: .synUnanswered
        case .rstRefused: .rstRefused
        case .resetByMiddlebox: .resetByMiddlebox
        case .reset: .reset
        case .mtuBlackhole: .mtuBlackhole
        case .pathLoss: .pathLoss
        case .tlsRejected: .tlsRejected
        case .credsspFailure: .credsspFailure
        case .earlyDisconnect: .earlyDisconnect
        case .clientAbort: .clientAbort
        case .nonRDPService: .nonRDPService
        case .incomplete: .incomplete
        case .icmpUnreachable, .negotiationFailure, .tlsAlert, .proxyRefused: nil
        }
    }
}

/// What the Windows client shows and what to do about it, as data in one place
/// (FACTS.md sections 1 and 6). The classifier picks entries; it holds no prose itself.
public enum Knowledge {
    /// Said of a refused logon when nothing inside TLS was read.
    static let lookAlikeWithoutKeys =
        "Wrong password, unknown user and account restrictions look alike without a key log: the server's Security log (event 4625) names the reason."

    // MARK: - What the Windows client reported (FACTS.md section 1)

    public static let connectFailed = ClientReport(
        .reason(0x204), meaning: "socket connect failed: the TCP connection was never established")
    public static let socketClosed = ClientReport(
        .reason(0x904, extended: 0x7),
        meaning:
            "socket closed: the connection was reset while still being set up and no server error PDU explained it, so the client guessed \"server denied connection\"")
    public static let socketClosedByFIN = ClientReport(
        .reason(0x904, extended: 0x7),
        meaning:
            "socket closed while the connection was being set up (a graceful FIN rather than an RST: whether the client shows exactly 0x904/0x7 for a FIN is not confirmed)")
    public static let proxyConnectFailed = ClientReport(
        .reason(0x204),
        meaning: "socket connect failed: the proxy could not open the connection to the target (a client going through a proxy sees its refusal as a failed connect)")
    public static let timedOut = ClientReport(
        .reason(0x704), meaning: "time-out: the connection stalled without an answer (0x108 on some clients)")
    public static let logonFailure = ClientReport(
        .reason(0x807), meaning: "CredSSP logon failure (0xA07 no such user, 0xF07 password expired, ... when the server names the NTSTATUS)")
    public static let licensingFailed = ClientReport(
        .reason(0x808), meaning: "licensing failed: the server's licensing error ended the connection (FACTS.md section 1)")
    public static let negotiationError = ClientReport(
        .kind(.negotiation), meaning: "a security negotiation error naming the RDP_NEG_FAILURE code, not 0x904")
    public static let protocolError = ClientReport(
        .kind(.protocol), meaning: "a protocol error (the answer is not RDP), or 0x904/0x7 when the other side then resets")
    public static let localNLARequired = ClientReport(
        .kind(.local), meaning: "the client's own error: its policy requires Network Level Authentication, which the server does not offer")
    public static let localSecurity = ClientReport(
        .kind(.local), meaning: "the client's own error (e.g. the server does not offer the security the client requires)")
    public static let localCertificate = ClientReport(
        .kind(.local), meaning: "the client's certificate warning or refusal (e.g. \"The certificate is not from a trusted certifying authority\")")
    public static let localRefusedCertificate = ClientReport(
        .kind(.local), meaning: "the client's own decision, e.g. a refused certificate")
    public static let localCredSSP = ClientReport(
        .kind(.local),
        meaning: "the client's own CredSSP error, e.g. \"the function requested is not supported\" (encryption oracle remediation) or a cancelled credential prompt")
    public static let localDecision = ClientReport(.kind(.local), meaning: "the client's own decision")

    /// The client's report for a CredSSP failure whose TSRequest named the NTSTATUS.
    public static func logonFailure(_ status: (name: String, client: ClientCode)) -> ClientReport {
        ClientReport(status.client, meaning: "CredSSP logon failure: \(status.name)")
    }
    public static let securityError = ClientReport(
        .kind(.security), meaning: "a TLS / security-layer error (\"An internal error has occurred\" or a certificate prompt), not 0x904 unless the connection was reset")

    /// NTSTATUS values seen in NLA failures (FACTS.md section 4) and the client code each maps to.
    public static let ntstatus: [UInt32: (name: String, client: ClientCode)] = [
        0xC000_006D: ("STATUS_LOGON_FAILURE", .reason(0x807)),
        0xC000_006A: ("STATUS_WRONG_PASSWORD", .reason(0x807)),
        0xC000_0064: ("STATUS_NO_SUCH_USER", .reason(0xA07)),
        0xC000_006E: ("STATUS_ACCOUNT_RESTRICTION", .reason(0xC07)),
        0xC000_006F: ("STATUS_INVALID_LOGON_HOURS", .reason(0xC07)),
        0xC000_0070: ("STATUS_INVALID_WORKSTATION", .reason(0xC07)),
        0xC000_0071: ("STATUS_PASSWORD_EXPIRED", .reason(0xF07)),
        0xC000_0072: ("STATUS_ACCOUNT_DISABLED", .reason(0xB07)),
        0xC000_0193: ("STATUS_ACCOUNT_EXPIRED", .reason(0xE07)),
        0xC000_0224: ("STATUS_PASSWORD_MUST_CHANGE", .reason(0x1207)),
        0xC000_0234: ("STATUS_ACCOUNT_LOCKED_OUT", .reason(0xD07)),
        0xC000_015B: ("STATUS_LOGON_TYPE_NOT_GRANTED", .reason(0x807)),
        0xC000_005E: ("STATUS_NO_LOGON_SERVERS", .reason(0x1807)),
        0xC000_0133: ("STATUS_TIME_DIFFERENCE_AT_DC", .reason(0x807)),
        0xC000_018D: ("STATUS_TRUSTED_RELATIONSHIP_FAILURE", .reason(0x807)),
        0xC000_0413: ("STATUS_AUTHENTICATION_FIREWALL_FAILED", .reason(0x807)),
        0x8009_030C: ("SEC_E_LOGON_DENIED", .reason(0x807)),
        0x8009_030F: ("SEC_E_MESSAGE_ALTERED", .reason(0x807)),
        0x8009_0308: ("SEC_E_INVALID_TOKEN", .reason(0x807)),
        0x8009_0311: ("SEC_E_NO_AUTHENTICATING_AUTHORITY", .reason(0x1807)),
        0x8009_0322: ("SEC_E_WRONG_PRINCIPAL", .reason(0x807)),
    ]

    /// ICMP errors by (type, code), v4 and v6.
    public static func icmpName(isV6: Bool, type: UInt8, code: UInt8) -> String {
        if isV6 {
            switch (type, code) {
            case (1, 0): return "no route to destination"
            case (1, 1): return "administratively prohibited"
            case (1, 3): return "address unreachable"
            case (1, 4): return "port unreachable"
            case (1, 5): return "source address failed ingress/egress policy"
            case (1, 6): return "reject route to destination"
            case (2, _): return "packet too big"
            case (3, _): return "hop limit exceeded"
            default: return "ICMPv6 type \(type) code \(code)"
            }
        }
        switch (type, code) {
        case (3, 0): return "network unreachable"
        case (3, 1): return "host unreachable"
        case (3, 2): return "protocol unreachable"
        case (3, 3): return "port unreachable"
        case (3, 4): return "fragmentation needed"
        case (3, 9): return "network administratively prohibited"
        case (3, 10): return "host administratively prohibited"
        case (3, 13): return "communication administratively prohibited"
        case (11, _): return "TTL exceeded"
        default: return "ICMP type \(type) code \(code)"
        }
    }

    /// ICMP errors that mean "a filter said no" rather than "nothing there".
    public static func icmpIsAdministrative(isV6: Bool, type: UInt8, code: UInt8) -> Bool {
        isV6 ? (type == 1 && (code == 1 || code == 5 || code == 6)) : (type == 3 && (code == 9 || code == 10 || code == 13))
    }

    /// ICMP errors that mean "no host at that address".
    public static func icmpIsNoHost(isV6: Bool, type: UInt8, code: UInt8) -> Bool {
        isV6 ? (type == 1 && (code == 0 || code == 3)) : (type == 3 && (code == 0 || code == 1))
    }

    // MARK: - Remediation (commands and settings a Windows or network admin would use)
    // Placeholders: {server} (name when DNS named it, else address), {address}, {port},
    // {reporter} (the router that sent an ICMP error), {time} (start of the attempt),
    // {issuer} (certificate issuer), {name} (the DNS name).

    public static let remediation: [String: [String]] = [
        "syn-unanswered": [
            "Test the path from the client: `Test-NetConnection -ComputerName {server} -Port {port}` (PowerShell) or `nc -vz {server} {port}`.",
            "On the server, check that Windows Firewall allows Remote Desktop: `Get-NetFirewallRule -DisplayGroup \"Remote Desktop\" | Format-Table Name,Enabled,Profile`; enable with `Enable-NetFirewallRule -DisplayGroup \"Remote Desktop\"`.",
            "Check every filter on the path for TCP {port}: network ACLs, cloud security groups / NSGs, perimeter firewalls, NAT and port-forward rules.",
            "Confirm the server is up and the address is right: `Resolve-DnsName {server}`, `ping {server}` (ICMP may be blocked even when RDP is not).",
        ],
        "rst-refused": [
            "Nothing accepts connections on {port} at {server}: check the service `Get-Service TermService` and the listener `netstat -ano | findstr :{port}` on the server.",
            "Check that Remote Desktop is enabled: `HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\fDenyTSConnections` must be 0 (System Properties → Remote).",
            "Check the listening port: `HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\\PortNumber` (default 3389); a changed port needs the client to use {server}:port.",
            "A firewall configured to reject (rather than drop) also answers with an RST: check host and network firewall logs for {port}.",
        ],
        "icmp-admin": [
            "The router or firewall at {reporter} rejects the connection with \"administratively prohibited\": find the ACL or firewall rule there that matches TCP {port} to {server} and allow the client.",
            "On Linux firewalls look for `reject with icmp type admin-prohibited` (nftables) or `REJECT --reject-with icmp-admin-prohibited` (iptables); on Cisco, an ACL deny with `ip unreachables` enabled.",
        ],
        "icmp-nohost": [
            "{reporter} says no host answers at {address}: the address is wrong or the host is down.",
            "Check the name the client used: `Resolve-DnsName {name}` on the client and compare with the server's real address (`ipconfig` on the server); flush stale entries with `ipconfig /flushdns`; check the DNS record and its TTL on the DNS server.",
            "If the address is right, check that the server is powered on and on the expected network (ARP/neighbour table of the router {reporter}).",
        ],
        "icmp-other": [
            "An ICMP error from {reporter} stopped the connection: check routing and filtering at that router for TCP {port} to {server}.",
        ],
        "reset-by-middlebox": [
            "The RST did not come from the server (its TTL/IP ID differ from the server's packets): a firewall, IPS, proxy or VPN between client and server reset the connection.",
            "Check the logs of firewalls and intrusion-prevention systems on the path for RDP (TCP {port}) resets, TLS/SSL-inspection or application-control policies, and allow-list the server.",
            "Compare with a capture taken on the server: if the server never saw the RST, the device is between the two capture points.",
        ],
        "mtu-blackhole": [
            "Large packets from the server never arrive while small ones do: a path MTU black hole (a link with a smaller MTU, typically a VPN or tunnel, and ICMP \"fragmentation needed\" blocked).",
            "Find the working size from the client: `ping -f -l 1372 {server}` (Windows) or `ping -M do -s 1372 {server}` (Linux), lowering until it passes.",
            "Allow ICMP type 3 code 4 (\"fragmentation needed\") and ICMPv6 type 2 (\"packet too big\") through firewalls on the path, or clamp the TCP MSS on the tunnel/router (`iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu`).",
            "As a workaround, lower the MTU of the client's VPN interface: `netsh interface ipv4 set subinterface \"VPN\" mtu=1350 store=persistent`.",
        ],
        "path-loss": [
            "The client's packets stop on the way to the server while the server's reach the client: check firewalls, ACLs and NAT state on the path from the client (`Test-NetConnection -ComputerName {server} -Port {port}`), and compare with a capture on the server, which will miss the client's ACK and data.",
            "Look for asymmetric routing (the return path bypasses a stateful firewall that then drops the client's packets) and for loss on the client's uplink (VPN, Wi-Fi, mobile).",
        ],
        "client-stall": [
            "The client stopped answering in the middle of the handshake and the server timed it out: check the client (a hung client, security software holding the connection, or a scanner or brute-force tool that opens connections and waits).",
            "If the client was a legitimate user, check the path for loss of the client's packets (retransmissions in the capture) and capture on the client.",
        ],
        "negotiation-SSL_REQUIRED_BY_SERVER": [
            "The server only accepts TLS (or NLA) but the client offered standard RDP security only: use a client that supports TLS, or on the server allow RDP security: `HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp\\SecurityLayer` = 0 (not recommended).",
            "For FreeRDP clients, drop `/sec:rdp` (or use `/sec:tls` / `/sec:nla`).",
        ],
        "negotiation-SSL_NOT_ALLOWED_BY_SERVER": [
            "The server is set to standard RDP security only and refuses TLS: set `SecurityLayer` to 1 (negotiate) or 2 (TLS) under `HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp` (or the GPO \"Require use of specific security layer for remote (RDP) connections\"); for xrdp set `security_layer=negotiate` in xrdp.ini.",
            "Or let the client fall back to RDP security (FreeRDP: `/sec:rdp`; mstsc does this automatically unless NLA is required).",
        ],
        "negotiation-SSL_CERT_NOT_ON_SERVER": [
            "The server has no usable TLS certificate for RDP: check `Get-CimInstance -Namespace root\\cimv2\\TerminalServices -ClassName Win32_TSGeneralSetting | Select SSLCertificateSHA1Hash` and the \"Remote Desktop\" certificate store; deleting the self-signed certificate and restarting TermService recreates it.",
        ],
        "negotiation-HYBRID_REQUIRED_BY_SERVER": [
            "The server requires Network Level Authentication (CredSSP) but the client did not offer it: enable CredSSP on the client (.rdp file `enablecredsspsupport:i:1`; FreeRDP `/sec:nla`), and supply credentials before connecting.",
            "Or, less safe, turn off \"Allow connections only from computers running Remote Desktop with Network Level Authentication\" on the server: `(Get-CimInstance -Namespace root\\cimv2\\TerminalServices -ClassName Win32_TSGeneralSetting -Filter \"TerminalName='RDP-tcp'\") | Invoke-CimMethod -MethodName SetUserAuthenticationRequired -Arguments @{UserAuthenticationRequired=0}`.",
        ],
        "negotiation-SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER": [
            "The server requires TLS with user authentication (RDSTLS/CredSSP): enable NLA on the client and supply credentials before connecting.",
        ],
        "negotiation-other": [
            "The server refused the security protocols the client offered: compare the client's requested protocols with the server's SecurityLayer and UserAuthentication settings (`HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp`).",
        ],
        "tls-alert-protocol_version": [
            "Client and server share no TLS version. On Windows check Schannel: `HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Server` (Enabled=1, DisabledByDefault=0) on the server and `...\\Client` on the client; install the TLS 1.2 updates for RDP on older systems.",
            "For xrdp check `ssl_protocols=` in xrdp.ini; for OpenSSL clients, the `MinProtocol`/`MaxProtocol` settings in openssl.cnf.",
        ],
        "tls-alert-handshake_failure": [
            "No common cipher suite or signature algorithm: compare `Get-TlsCipherSuite` on both sides (or the GPO \"SSL Cipher Suite Order\"); for xrdp check `tls_ciphers=` in xrdp.ini.",
            "Check that the RDP certificate's key type is one both sides accept (e.g. RSA 2048 or larger).",
        ],
        "tls-alert-certificate": [
            "The client rejected the server's certificate: check its subject/SAN against the name the client uses, its expiry, and that the client trusts the issuer (`certlm.msc` on the server: Remote Desktop store; `Test-Certificate` on the client).",
            "Deploy a certificate from a trusted CA to the RDP listener (GPO \"Server authentication certificate template\" or `SSLCertificateSHA1Hash` in Win32_TSGeneralSetting).",
        ],
        "tls-alert-other": [
            "A TLS fatal alert ended the handshake: check the System event log for Schannel events (36874, 36888) on the side that sent it, and compare TLS settings (versions, cipher suites, certificate).",
        ],
        "tls-rejected": [
            "The server closed the TLS handshake without an alert: typical when the RDP certificate's private key is unusable (Schannel event 36870, error 0x8009030D).",
            "Check permissions on `C:\\ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys` (NETWORK SERVICE needs read access to the key), or delete the self-signed certificate in the \"Remote Desktop\" store and restart TermService to recreate it.",
            "Check the System event log for Schannel errors (36870, 36871, 36874, 36888) on the server at {time}.",
        ],
        "tls-inspection": [
            "The certificate the client received was issued by a TLS-inspection product ({issuer}), not by the server: exempt the RDP server (TCP {port}) from SSL/TLS inspection on that product, or trust its root only where intended.",
            "Confirm with a capture on the server or from a machine outside the inspection path: the real server certificate will differ.",
        ],
        "credssp-failure": [
            "The server ended the connection after the client's NTLM/Kerberos AUTHENTICATE: the credentials were refused. Check the Security event log on the server (event 4625 with its Status/Sub Status, or 4776 on the domain controller) at {time}.",
            "Typical causes: wrong password, unknown or disabled user, locked-out or expired account, user not in \"Remote Desktop Users\" / missing \"Allow log on through Remote Desktop Services\".",
            "If the client says \"the function requested is not supported\", check CredSSP updates and the \"Encryption Oracle Remediation\" policy (`HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\CredSSP\\Parameters\\AllowEncryptionOracle`) on both sides.",
        ],
        "credssp-early": [
            "CredSSP stopped before the client sent its credentials: check CredSSP versions and the \"Encryption Oracle Remediation\" policy on both sides (`AllowEncryptionOracle`), Kerberos/NTLM restrictions (\"Network security: Restrict NTLM\"), and time skew for Kerberos.",
        ],
        "early-disconnect": [
            "The server accepted TCP and then closed the connection before the security handshake: typical when new sessions are refused (connections disabled, session limit reached, licensing grace period over, or the listener is unhealthy).",
            "On the server: `qwinsta` (sessions in use), `HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\fDenyTSConnections`, the GPO \"Limit number of connections\", RD Licensing configuration, and the event logs TerminalServices-RemoteConnectionManager and RemoteDesktopServices-RdpCoreTS at {time}.",
            "Restarting the Remote Desktop Services service (TermService) clears a wedged listener.",
        ],
        "server-refused": [
            "The server stated why it refused (above): it accepted the security handshake and the logon information, then ended the connection itself. Act on that reason; it is a policy or licensing decision of the server, not a network fault.",
            "On the server: the event logs TerminalServices-LocalSessionManager, TerminalServices-RemoteConnectionManager and TerminalServices-Licensing at {time}.",
        ],
        "logon-not-granted": [
            "The account authenticated (NLA succeeded), then the server's Early User Authorization Result said ACCESS_DENIED: this account may not log on to {server} through Remote Desktop. Add the account, or a group it is in, to \"Remote Desktop Users\" on the server (on an RD Session Host, the collection's user groups), and check the user rights \"Allow log on through Remote Desktop Services\" and \"Deny log on through Remote Desktop Services\" (secpol.msc, or the GPO that sets them).",
            "On the server: the Security log's failed logon (event 4625) at {time}, Status 0xC000015B (STATUS_LOGON_TYPE_NOT_GRANTED), names the account and the logon type it was refused.",
        ],
        "nla-policy-mismatch": [
            "Enable Network Level Authentication on the server: \"Allow connections only from computers running Remote Desktop with Network Level Authentication\" (System Properties > Remote), or `(Get-CimInstance -Namespace root\\cimv2\\TerminalServices -ClassName Win32_TSGeneralSetting -Filter \"TerminalName='RDP-tcp'\") | Invoke-CimMethod -MethodName SetUserAuthenticationRequired -Arguments @{UserAuthenticationRequired=1}`; on xrdp, `security_layer=negotiate` in xrdp.ini.",
            "Or allow the client to connect without NLA: in the .rdp file `enablecredsspsupport:i:0` (and `authentication level:i:0` if it insists), or FreeRDP `/sec:tls`; only where the server cannot offer NLA, since NLA keeps unauthenticated users from reaching a logon session.",
        ],
        "client-abort": [
            "The client closed the connection itself after a valid answer from the server: look at the client's own message and policy (it may require NLA while the server offers TLS only, refuse a certificate, or enforce \"Encryption Oracle Remediation\").",
            "Check local security software or VPN clients that terminate RDP connections.",
        ],
        "non-rdp-service": [
            "Something other than RDP answers on {server}:{port}: check port-forwarding/NAT rules and DNS so that {port} reaches the RDP host, and whether RDP listens on another port.",
            "On the host that answered, find the process listening on {port} (`ss -ltnp 'sport = :{port}'` on Linux, `Get-NetTCPConnection -LocalPort {port} -State Listen` on Windows).",
        ],
        "reset": [
            "The connection was reset by the side shown; check that side's event logs at the time of the reset (TerminalServices-RemoteConnectionManager, RdpCoreTS, System/Schannel on Windows servers).",
        ],
        "session-reset": [
            "The session was established and later reset: check the server's session time limits and the network path for idle timeouts (NAT/firewall state tables).",
        ],
        "incomplete": [
            "The capture ended before the attempt finished or showed a cause: capture on the client for the whole attempt (start the capture before connecting, stop it after the error).",
        ],
        "handshake-incomplete": [
            "The server's SYN-ACK reached the capture point but the client never completed the handshake: a host firewall or security agent on the client may drop it, or the capture saw only one direction of an asymmetric path.",
        ],
        "udp-unanswered": [
            "For RDP over UDP (better on lossy or distant links), allow UDP {port} to {address} on the path and on the server's firewall, and check that the server allows it (policy \"Select RDP transport protocols\"); nothing to do when TCP alone is intended.",
        ],
        "mid-session": [
            "The capture began after the connection was opened, so it cannot show how the connection was set up: to see why a connection fails, start the capture before connecting and stop it after the error.",
        ],
        "no-rdp-request": [
            "The client opened TCP and never sent an RDP Connection Request: a port check, a scanner, or a client that gave up before sending; not an RDP failure by itself.",
        ],
        "proxy-refused": [
            "The proxy reached {target} and was refused: nothing accepts RDP connections there. On the target check the service `Get-Service TermService`, the listener `netstat -ano | findstr :3389`, and that Remote Desktop is enabled (`fDenyTSConnections` = 0).",
            "Check the target's host and network firewalls for connections from the proxy's address (not the client's: the target sees the proxy), and that the client asked the proxy for the right host and port.",
        ],
        "proxy-denied": [
            "The proxy {server}:{port} refused the request for {target} by its own policy or authentication: ask its administrator to allow CONNECT to the RDP port (Squid `http_access` and `SSL_ports`/`Safe_ports` ACLs, tinyproxy `ConnectPort`, Dante `socks pass` rules), or supply the proxy credentials it expects.",
            "Or reach the server another way: RD Gateway (HTTPS on 443), a VPN, or an SSH tunnel (`ssh -L 3389:{target} jumphost`).",
        ],
        "proxy-unreachable": [
            "The proxy {server}:{port} could not reach {target}: check the name and address the client asked for, DNS as the proxy resolves it, and routing and firewalls between the proxy and the target (the proxy's own log names the error).",
        ],
        "proxy-unsupported": [
            "The proxy {server}:{port} does not support what the client asked for (the command, the address type, or the HTTP method): check the client's proxy settings (type SOCKS5, SOCKS4 or HTTP, and the port) against what the proxy speaks.",
        ],
        "proxy-failed": [
            "The proxy {server}:{port} did not open the connection to {target}: its log says why (for HTTP 502/503/504, the proxy's own connection to the target failed or timed out).",
            "Test the path from the proxy itself: `nc -vz` to the target's host and port from the proxy host.",
        ],
        "success": [],
    ]
}
