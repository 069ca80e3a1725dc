#!/usr/bin/env bash
# tls-version-mismatch: xrdp accepts TLS 1.3 only, xfreerdp is limited to TLS 1.2
# (+enforce-tlsv1_2): fatal alert protocol_version from the server.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init tls-version-mismatch
lab_topology
lab_xrdp xrdp security_layer=tls "ssl_protocols=TLSv1.3"
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore +enforce-tlsv1_2
lab_capture_stop 0.5
lab_save_keys
expect_none 'tls.handshake.extensions.supported_version == 0x0304' "the ClientHello does not offer TLS 1.3"
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls and ssl_protocols=TLSv1.3 (TLS 1.3 only);
    xfreerdp with /sec:tls and +enforce-tlsv1_2, so its ClientHello offers TLS 1.2 at most.
    X.224 selects TLS, the client sends its ClientHello, and xrdp's OpenSSL answers with a
    fatal alert protocol_version (70) in clear instead of a ServerHello. The client closes
    (FIN) with ERRCONNECT_TLS_CONNECT_FAILED; xrdp then writes a 9-byte X.224 Data PDU (MCS
    Disconnect Provider Ultimatum) in clear, which the client's closed socket usually
    answers with RST. A TLS version mismatch between client and server.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "tls-alert", "cause": "tls-credssp", "stage": "tls-handshake",
     "ended_by": "server",
     "confidence": "high", "client_code": "security", "remediation": "tls-alert-protocol_version",
     "evidence": ["client_hello", "alert"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello", "alert",
                    "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1,
                 "tls_alert": {"level": 2, "description": 70, "sender": "server"}}}
  ]
}
EOF
