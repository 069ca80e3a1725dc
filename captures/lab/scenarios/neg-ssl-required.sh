#!/usr/bin/env bash
# neg-ssl-required: the server allows only TLS, the client asks for standard RDP security:
# RDP_NEG_FAILURE SSL_REQUIRED_BY_SERVER.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init neg-ssl-required
lab_topology
lab_shadow shadow /port:3389 /sec:tls
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:rdp /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'rdp.negFailure.failureCode == 1' "RDP_NEG_FAILURE code 1 in the Connection Confirm" raw
expect_none 'rdp.negReq.requestedProtocols' "xfreerdp /sec:rdp sends no RDP_NEG_REQ" raw
lab_expected <<EOF
{
  "description": "freerdp-shadow-cli with /sec:tls (TLS only) in rdpt-server; xfreerdp with
    /sec:rdp asks for standard RDP security. FreeRDP then sends a Connection Request with only
    the cookie and no RDP_NEG_REQ at all (like a pre-Vista client, i.e. protocol 0). The server
    still answers with a Connection Confirm carrying RDP_NEG_FAILURE SSL_REQUIRED_BY_SERVER
    (1). xfreerdp reports a protocol security negotiation failure and closes. A security-layer
    mismatch: the server requires TLS, the client is set to legacy RDP security.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "negotiation-failure", "cause": "tls-credssp", "stage": "x224-negotiation",
     "ended_by": "server",
     "confidence": "high", "client_code": "negotiation", "remediation": "negotiation-SSL_REQUIRED_BY_SERVER",
     "evidence": ["x224_request", "x224_confirm"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "fin", "last"],
     "details": {"negotiation_failure": "SSL_REQUIRED_BY_SERVER"}}
  ]
}
EOF
