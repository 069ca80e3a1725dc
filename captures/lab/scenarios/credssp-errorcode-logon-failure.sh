#!/usr/bin/env bash
# credssp-errorcode-logon-failure: the purpose-built peer (peers/rdp_peer.py) refuses a wrong
# password the way a recent Windows server does: a TSRequest with errorCode STATUS_LOGON_FAILURE.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init credssp-errorcode-logon-failure
lab_topology
lab_peer peer --refuse credssp-error
lab_capture_start
lab_client 12 -- /v:"$SERVER4" /u:"$LAB_USER" /p:Wrong-Passw0rd /sec:nla /cert:ignore
lab_capture_stop 0.5
lab_save_keys
lab_check_decrypt
expect 'ntlmssp.messagetype == 3 && ntlmssp.auth.username == "alice"' "NTLM AUTHENTICATE for alice visible after decryption"
expect 'credssp.errorCode == -1073741715' "the server's TSRequest carries errorCode 0xC000006D"
expect_none 'credssp.pubKeyAuth && ip.src == 198.51.100.20' "the server sent no pubKeyAuth: it refused the credentials"
expect_none 'credssp.authInfo' "no credentials delegated"
expect_none 't125' "no MCS after CredSSP"
lab_expected <<EOF
{
  "description": "The purpose-built peer rdp_peer.py (see purpose_built_peer) in rdpt-server selects CredSSP (0x2) for xfreerdp /sec:nla (requested 0x3). After TLS, CredSSP runs NEGOTIATE and CHALLENGE; the client's AUTHENTICATE for alice carries an NTLMv2 response computed from a wrong password, which the peer checks against the lab password, so it answers, as a recent Windows server does, with a TSRequest (version 6) carrying only errorCode 0xC000006D STATUS_LOGON_FAILURE, then waits 0.2 s and sends close_notify and FIN. xfreerdp logs STATUS_LOGON_FAILURE and ERRCONNECT_LOGON_FAILURE and closes first (close_notify, FIN); it does not retry. The Windows client names the NTSTATUS: 0x807 (logon failure, FACTS.md section 1). Decrypt with the key log to see the errorCode. A CredSSP logon failure stated by the server.",
  "verdict_needs_keys": true,
  "purpose_built_peer": "captures/lab/peers/rdp_peer.py: a Python 3 (standard library) RDP server written for the lab, because neither xrdp 0.9.21 nor freerdp-shadow-cli 2.11.7 sends a TSRequest errorCode. It follows MS-RDPBCGR, MS-CSSP and MS-NLMP byte for byte only as far as this refusal needs: X.224 Connection Confirm, TLS (Python ssl, OpenSSL 3), CredSSP version 6 with NTLMv2 checked against the lab password (CHALLENGE with AV pairs and timestamp, NTProofStr, key exchange, MIC, the SHA-256 ClientServerHashMagic/ServerClientHashMagic pubKeyAuth binding, sealing with RC4), then the errorCode reply. It is not a Windows server; only the refusal's bytes follow Windows' documented behaviour.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "credssp-failure", "cause": "tls-credssp", "stage": "credssp",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x807", "remediation": "credssp-failure",
     "evidence": [], "tcp": "auto",
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 2, "tls_version": "auto",
                 "credssp": {"ntstatus": "0xC000006D"}}}
  ]
}
EOF
