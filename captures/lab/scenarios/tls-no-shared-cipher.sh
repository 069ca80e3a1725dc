#!/usr/bin/env bash
# tls-no-shared-cipher: disjoint cipher lists (xrdp tls_ciphers vs xfreerdp /tls-ciphers):
# fatal alert handshake_failure from the server.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init tls-no-shared-cipher
lab_topology
lab_xrdp xrdp security_layer=tls "ssl_protocols=TLSv1.2" "tls_ciphers=ECDHE-RSA-AES256-GCM-SHA384"
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore /tls-ciphers:ECDHE-RSA-CHACHA20-POLY1305
lab_capture_stop 0.5
lab_save_keys
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls, ssl_protocols=TLSv1.2 and
    tls_ciphers=ECDHE-RSA-AES256-GCM-SHA384; xfreerdp with /sec:tls and
    /tls-ciphers:ECDHE-RSA-CHACHA20-POLY1305, so the TLS 1.2 cipher suites offered and
    accepted do not overlap. After X.224 selects TLS and the client sends its ClientHello,
    xrdp's OpenSSL (no shared cipher) answers with a fatal alert handshake_failure (40) in
    clear. The client closes (FIN) with ERRCONNECT_TLS_CONNECT_FAILED; xrdp then writes a
    9-byte MCS Disconnect Provider Ultimatum in clear, usually answered by the client's RST. A TLS
    configuration mismatch (cipher suites).",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "tls-alert", "cause": "tls-credssp", "stage": "tls-handshake",
     "ended_by": "server",
     "confidence": "high", "client_code": "security", "remediation": "tls-alert-handshake_failure",
     "evidence": ["client_hello", "alert"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello", "alert",
                    "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1,
                 "tls_alert": {"level": 2, "description": 40, "sender": "server"}}}
  ]
}
EOF
