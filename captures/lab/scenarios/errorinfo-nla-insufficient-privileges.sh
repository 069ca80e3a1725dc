#!/usr/bin/env bash
# errorinfo-nla-insufficient-privileges: TLS security against the purpose-built peer
# (peers/rdp_peer.py): MCS and the Client Info PDU, then licensing (no license needed), a Set
# Error Info PDU ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES (0x9) and Disconnect Provider Ultimatum.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init errorinfo-nla-insufficient-privileges
lab_topology
lab_peer peer --refuse error-info --status 0x9 --nla
lab_capture_start
lab_client 12 -- /v:"$SERVER4" /u:"$LAB_USER" /p:"$LAB_PASS" /sec:nla /cert:ignore
lab_capture_stop 0.5
lab_save_keys
lab_check_decrypt
expect 't125.connect_response_element' "MCS Connect Response visible after decryption"
expect 'rdp.pduType2 == 0x2f' "Set Error Info PDU with ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES"
expect 't124.DomainMCSPDU == 8' "MCS Disconnect Provider Ultimatum"
expect 'credssp.pubKeyAuth && ip.src == 198.51.100.20' "the server's pubKeyAuth: NLA succeeded"
expect 'credssp.authInfo' "the client delegated its credentials"
lab_expected <<EOF
{
  "description": "The purpose-built peer rdp_peer.py (see purpose_built_peer) in rdpt-server selects CredSSP (0x2) for xfreerdp /sec:nla. NLA succeeds: the peer verifies alice's NTLMv2 response against the lab password and sends its pubKeyAuth, and the client delegates its credentials (authInfo). Then MCS Connect Initial and Response, Erect Domain, Attach User, Channel Joins and the Client Info PDU; the peer then refuses the user as a Windows server does for an account without the right to log on through Remote Desktop: licensing STATUS_VALID_CLIENT, a Set Error Info PDU ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES (0x9), MCS Disconnect Provider Ultimatum, close_notify and FIN. xfreerdp logs ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES and closes. The Windows client shows the errorInfo (0x9) as the extended reason (FACTS.md sections 1 and 5), so client_code is errorInfo/0x9. Decrypt with the key log to see CredSSP and the PDUs. The server stated that it does not accept this user's session, after a successful NLA.",
  "verdict_needs_keys": true,
  "purpose_built_peer": "captures/lab/peers/rdp_peer.py: a Python 3 (standard library) RDP server written for the lab, because neither xrdp 0.9.21 nor freerdp-shadow-cli 2.11.7 sends a Set Error Info PDU. It follows MS-RDPBCGR, MS-CSSP and MS-NLMP byte for byte only as far as this refusal needs: X.224 Connection Confirm, TLS (Python ssl, OpenSSL 3), CredSSP version 6 with NTLMv2 checked against the lab password (CHALLENGE with AV pairs and timestamp, NTProofStr, key exchange, MIC, the SHA-256 ClientServerHashMagic/ServerClientHashMagic pubKeyAuth binding, sealing with RC4), MCS Connect Response with a GCC Conference Create Response (SC_CORE, SC_SECURITY without RDP encryption, SC_NET with one channel per requested static channel), Attach User and Channel Join Confirms, the licensing answer, Set Error Info and Disconnect Provider Ultimatum. It is not a Windows server; only the refusal's bytes follow Windows' documented behaviour.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "early-disconnect", "cause": "host-not-accepting", "stage": "mcs-connect",
     "ended_by": "server",
     "confidence": "high", "client_code": "errorInfo/0x9", "remediation": "server-refused",
     "evidence": [], "tcp": "auto",
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 2, "tls_version": "auto"}}
  ]
}
EOF
