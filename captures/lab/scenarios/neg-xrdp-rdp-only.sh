#!/usr/bin/env bash
# neg-xrdp-rdp-only: xrdp with security_layer=rdp answers a TLS-only request by selecting standard
# RDP security (not RDP_NEG_FAILURE); the client gives up.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init neg-xrdp-rdp-only
lab_topology
lab_xrdp xrdp security_layer=rdp
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'rdp.negReq.selectedProtocol == 0' "RDP_NEG_RSP selecting standard RDP security" raw
expect_none 'rdp.negFailure.failureCode' "no RDP_NEG_FAILURE" raw
lab_expected <<EOF
{
  "description": "xrdp 0.9 with security_layer=rdp (standard RDP security only); xfreerdp asks
    with /sec:tls for TLS only (requestedProtocols 0x1). Unlike the specification (which calls
    for RDP_NEG_FAILURE SSL_NOT_ALLOWED_BY_SERVER, see neg-ssl-not-allowed), xrdp answers with
    an RDP_NEG_RSP selecting PROTOCOL_RDP (0), a protocol the client did not offer. xfreerdp
    treats that as a protocol security negotiation failure and closes at once (FIN right after
    the Confirm); xrdp closes too. The same security-layer mismatch as an SSL_NOT_ALLOWED
    failure, but ended by the client and without a failure code on the wire.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "negotiation-failure", "cause": "tls-credssp", "stage": "x224-negotiation",
     "ended_by": "client",
     "confidence": "high", "client_code": "negotiation", "remediation": "negotiation-SSL_NOT_ALLOWED_BY_SERVER",
     "evidence": ["x224_request", "x224_confirm"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 0}}
  ]
}
EOF
