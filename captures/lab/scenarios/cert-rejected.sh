#!/usr/bin/env bash
# cert-rejected: the client does not trust xrdp's self-signed certificate (/cert:deny) and
# closes right after the TLS handshake.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init cert-rejected
lab_topology
lab_xrdp xrdp security_layer=tls
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:deny
lab_capture_stop 0.5
lab_save_keys
lab_check_decrypt
expect_none 't125' "no MCS: the client stops right after the handshake"
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls and a self-signed certificate (CN
    rdp-lab-server); xfreerdp with /sec:tls and /cert:deny (abort when the certificate
    cannot be verified, no prompt) connects by address. X.224 selects TLS and the TLS 1.3
    handshake completes, but FreeRDP then verifies the certificate (self-signed, and its
    name does not match 198.51.100.20), refuses it and closes with close_notify and FIN
    before sending any MCS data (ERRCONNECT_TLS_CONNECT_FAILED). The server did nothing
    wrong on the wire: the client aborted after a valid server answer because of its
    certificate policy.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "client-abort", "cause": "client-side", "stage": "tls-handshake",
     "ended_by": "client",
     "confidence": "medium", "client_code": "local", "remediation": "tls-alert-certificate",
     "evidence": ["server_hello", "fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto"}}
  ]
}
EOF
