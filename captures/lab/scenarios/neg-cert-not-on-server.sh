#!/usr/bin/env bash
# neg-cert-not-on-server: xrdp with TLS configured but its private key file missing:
# RDP_NEG_FAILURE SSL_CERT_NOT_ON_SERVER.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init neg-cert-not-on-server
lab_topology
lab_cert "$LAB_TMP/xrdp/cert"
rm -f "$LAB_TMP/xrdp/cert/key.pem"   # the configured key_file does not exist
lab_xrdp xrdp security_layer=tls
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'rdp.negFailure.failureCode == 3' "RDP_NEG_FAILURE code 3 in the Connection Confirm" raw
grep -q 'Cannot read private key file' "$LAB_TMP/xrdp/log/xrdp.log" || die 1 "xrdp did not complain about the key"
lab_expected <<EOF
{
  "description": "xrdp 0.9 with security_layer=tls whose configured private key file does not
    exist (the certificate is there). xfreerdp asks with /sec:tls for TLS (0x1); xrdp, which
    checks that it can read certificate and key when the Connection Request arrives, answers
    with RDP_NEG_FAILURE SSL_CERT_NOT_ON_SERVER (3) and logs 'Cannot accept TLS connections
    because certificate or private key file is not readable'. xfreerdp closes (FIN) with a protocol
    security negotiation failure; xrdp then sends a 9-byte X.224 Data PDU with an MCS
    Disconnect Provider Ultimatum in clear, which the client's closed socket answers with
    RST. A server-side TLS misconfiguration reported during
    negotiation.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "negotiation-failure", "cause": "tls-credssp", "stage": "x224-negotiation",
     "ended_by": "server",
     "confidence": "high", "client_code": "negotiation", "remediation": "negotiation-SSL_CERT_NOT_ON_SERVER",
     "evidence": ["x224_request", "x224_confirm"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "fin", "last"],
     "details": {"requested_protocols": 1, "negotiation_failure": "SSL_CERT_NOT_ON_SERVER"}}
  ]
}
EOF
