#!/usr/bin/env bash
# success-nla: freerdp-shadow-cli (NLA only, NTLM SAM file from winpr-hash) under Xvfb;
# xfreerdp /sec:nla authenticates with CredSSP and gets a full session, then the user closes it.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init success-nla
lab_topology
lab_shadow shadow /port:3389 /sec:nla /sam-file:"$LAB_TMP/sam" +auth
lab_capture_start
lab_client 20 -c 4 -- /v:"$SERVER4" /u:"$LAB_USER" /p:"$LAB_PASS" /sec:nla /cert:ignore
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect 'ntlmssp.messagetype == 3' "NTLM AUTHENTICATE visible inside CredSSP after decryption"
expect 'credssp.authInfo' "CredSSP authInfo (delegated credentials) sent: authentication succeeded"
lab_expected <<EOF
{
  "description": "freerdp-shadow-cli (FreeRDP 2 shadow server) in rdpt-server, sharing an Xvfb
    screen, with /sec:nla only and +auth: CredSSP/NTLM against a SAM file made by winpr-hash for
    the lab user alice. xfreerdp connects with /sec:nla (requested protocols 0x3, TLS and
    CredSSP); the server selects CredSSP (0x2). After the TLS handshake the CredSSP exchange
    runs (NEGOTIATE, CHALLENGE, AUTHENTICATE with pubKeyAuth, the server's pubKeyAuth, the
    client's authInfo with the credentials), then MCS and the session with screen updates.
    After 4 s the lab closes the client window the way a user does; the client disconnects
    and the server answers with close_notify and FIN. A working NLA connection.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "success", "cause": "none", "stage": "session", "ended_by": "client",
     "confidence": "high", "client_code": null, "remediation": "success",
     "evidence": ["x224_confirm", "fin"],
     "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 2, "tls_version": "auto"}}
  ]
}
EOF
