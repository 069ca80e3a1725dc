#!/usr/bin/env bash
# neg-ssl-not-allowed: the server allows only standard RDP security, the client offers only TLS:
# RDP_NEG_FAILURE SSL_NOT_ALLOWED_BY_SERVER.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init neg-ssl-not-allowed
lab_topology
lab_shadow shadow /port:3389 /sec:rdp
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'rdp.negFailure.failureCode == 2' "RDP_NEG_FAILURE code 2 in the Connection Confirm" raw
lab_expected <<EOF
{
  "description": "freerdp-shadow-cli with /sec:rdp (standard RDP security only, no TLS) in
    rdpt-server; xfreerdp asks with /sec:tls for TLS only (requestedProtocols 0x1). The server
    answers with RDP_NEG_FAILURE SSL_NOT_ALLOWED_BY_SERVER (2). xfreerdp reports a protocol
    security negotiation failure and closes. A security-layer mismatch: the server offers only
    the legacy RDP security the client refuses. (xrdp 0.9 with security_layer=rdp does not send
    this code; see neg-xrdp-rdp-only.)",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "negotiation-failure", "cause": "tls-credssp", "stage": "x224-negotiation",
     "ended_by": "server",
     "confidence": "high", "client_code": "negotiation", "remediation": "negotiation-SSL_NOT_ALLOWED_BY_SERVER",
     "evidence": ["x224_request", "x224_confirm"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "fin", "last"],
     "details": {"requested_protocols": 1, "negotiation_failure": "SSL_NOT_ALLOWED_BY_SERVER"}}
  ]
}
EOF
