#!/usr/bin/env bash
# credssp-unknown-user: NLA against freerdp-shadow-cli with an unknown user:
# the server closes after the client's NTLM AUTHENTICATE.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init credssp-unknown-user
lab_topology
lab_shadow shadow /port:3389 /sec:nla /sam-file:"$LAB_TMP/sam" +auth
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:mallory /p:"$LAB_PASS" /sec:nla /cert:ignore
lab_capture_stop 0.5
lab_save_keys
lab_check_decrypt
expect 'ntlmssp.messagetype == 3 && ntlmssp.auth.username == "mallory"' "NTLM AUTHENTICATE for mallory visible after decryption"
expect_none 'credssp.authInfo' "no credentials delegated: authentication failed"
expect_none 't125' "no MCS after CredSSP"
lab_expected <<EOF
{
  "description": "freerdp-shadow-cli with /sec:nla and +auth, authenticating with NTLM against
    a SAM file (made by winpr-hash) that holds only the lab user alice. xfreerdp with /sec:nla
    sends a user name that is not in the SAM file (mallory). The server cannot find the user (winpr logs 'Could not find user in SAM database', SEC_E_INTERNAL_ERROR). X.224 selects CredSSP (0x2), TLS completes, CredSSP runs NEGOTIATE, CHALLENGE,
    then the client's AUTHENTICATE with pubKeyAuth. The FreeRDP server does not send a
    TSRequest with an errorCode (a Windows server would, e.g. 0xC0000064 (STATUS_NO_SUCH_USER)): it just sends TLS
    close_notify and FIN. The client answers with its own close_notify, the server's closed
    socket resets, and xfreerdp, after ERRCONNECT_CONNECT_TRANSPORT_FAILED, tries once more
    the same way: two identical attempts. Decrypt with the key log to see the NTLM messages.
    An authentication failure in CredSSP.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "credssp-failure", "cause": "tls-credssp", "stage": "credssp",
     "ended_by": "server",
     "confidence": "medium", "client_code": "0x807", "remediation": "credssp-failure",
     "evidence": ["fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "rst", "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 2, "tls_version": "auto"}},
    {"label": "credssp-failure", "cause": "tls-credssp", "stage": "credssp",
     "ended_by": "server",
     "confidence": "medium", "client_code": "0x807", "remediation": "credssp-failure",
     "evidence": ["fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "rst", "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 2, "tls_version": "auto"}}
  ]
}
EOF
