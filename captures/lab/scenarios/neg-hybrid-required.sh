#!/usr/bin/env bash
# neg-hybrid-required: the server allows only NLA (CredSSP), the client offers only TLS:
# RDP_NEG_FAILURE HYBRID_REQUIRED_BY_SERVER.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init neg-hybrid-required
lab_topology
lab_shadow shadow /port:3389 /sec:nla /sam-file:"$LAB_TMP/sam" +auth
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'rdp.negFailure.failureCode == 5' "RDP_NEG_FAILURE code 5 in the Connection Confirm" raw
lab_expected <<EOF
{
  "description": "freerdp-shadow-cli with /sec:nla (NLA only) in rdpt-server; xfreerdp asks
    with /sec:tls for TLS only (requestedProtocols 0x1). The server answers the X.224
    Connection Request with a Connection Confirm carrying RDP_NEG_FAILURE
    HYBRID_REQUIRED_BY_SERVER (5). xfreerdp reports a protocol security negotiation failure
    and closes (FIN); the server closes too. No TLS ever starts. A security-layer mismatch:
    the server requires Network Level Authentication, the client is set not to use it.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "negotiation-failure", "cause": "tls-credssp", "stage": "x224-negotiation",
     "ended_by": "server",
     "confidence": "high", "client_code": "negotiation", "remediation": "negotiation-HYBRID_REQUIRED_BY_SERVER",
     "evidence": ["x224_request", "x224_confirm"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "fin", "last"],
     "details": {"requested_protocols": 1, "negotiation_failure": "HYBRID_REQUIRED_BY_SERVER"}}
  ]
}
EOF
