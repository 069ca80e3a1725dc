#!/usr/bin/env bash
# credssp-errorcode-locked-out: the purpose-built peer (peers/rdp_peer.py) refuses a locked-out
# account the way a recent Windows server does, even with the right password: a TSRequest with
# errorCode STATUS_ACCOUNT_LOCKED_OUT.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init credssp-errorcode-locked-out
lab_topology
lab_peer peer --refuse credssp-error --status 0xC0000234
lab_capture_start
lab_client 12 -- /v:"$SERVER4" /u:"$LAB_USER" /p:"$LAB_PASS" /sec:nla /cert:ignore
lab_capture_stop 0.5
lab_save_keys
lab_check_decrypt
expect 'ntlmssp.messagetype == 3 && ntlmssp.auth.username == "alice"' "NTLM AUTHENTICATE for alice visible after decryption"
expect 'credssp.errorCode == -1073741260' "the server's TSRequest carries errorCode 0xC0000234"
expect_none 'credssp.pubKeyAuth && ip.src == 198.51.100.20' "the server sent no pubKeyAuth: it refused the credentials"
expect_none 'credssp.authInfo' "no credentials delegated"
expect_none 't125' "no MCS after CredSSP"
lab_expected <<EOF
{
  "description": "The purpose-built peer rdp_peer.py (see purpose_built_peer) in rdpt-server selects CredSSP (0x2) for xfreerdp /sec:nla (requested 0x3) and treats alice as locked out: the client sends the right password, the peer verifies the NTLMv2 response and still answers the AUTHENTICATE, as a Windows server does for a locked-out account, with a TSRequest (version 6) carrying only errorCode 0xC0000234 STATUS_ACCOUNT_LOCKED_OUT, then close_notify and FIN after 0.2 s. xfreerdp closes first (close_notify, FIN) and does not retry. The Windows client shows 0xD07 (account locked out, FACTS.md section 1). Decrypt with the key log to see the errorCode. A CredSSP logon failure stated by the server.",
  "verdict_needs_keys": true,
  "purpose_built_peer": "captures/lab/peers/rdp_peer.py: a Python 3 (standard library) RDP server written for the lab, because neither xrdp 0.9.21 nor freerdp-shadow-cli 2.11.7 sends a TSRequest errorCode. It follows MS-RDPBCGR, MS-CSSP and MS-NLMP byte for byte only as far as this refusal needs: X.224 Connection Confirm, TLS (Python ssl, OpenSSL 3), CredSSP version 6 with NTLMv2 checked against the lab password (CHALLENGE with AV pairs and timestamp, NTProofStr, key exchange, MIC, the SHA-256 ClientServerHashMagic/ServerClientHashMagic pubKeyAuth binding, sealing with RC4), then the errorCode reply. It is not a Windows server; only the refusal's bytes follow Windows' documented behaviour.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "credssp-failure", "cause": "tls-credssp", "stage": "credssp",
     "ended_by": "server",
     "confidence": "high", "client_code": "0xD07", "remediation": "credssp-failure",
     "evidence": [], "tcp": "auto",
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 2, "tls_version": "auto",
                 "credssp": {"ntstatus": "0xC0000234"}}}
  ]
}
EOF
