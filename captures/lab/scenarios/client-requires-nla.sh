#!/usr/bin/env bash
# client-requires-nla: xfreerdp /sec:nla against xrdp that offers TLS only; the server selects TLS,
# the client gives up right after the Connection Confirm.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init client-requires-nla
lab_topology
lab_xrdp xrdp security_layer=tls
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /p:"$LAB_PASS" /sec:nla /cert:ignore
lab_capture_stop 0.5
lab_save_keys
expect 'rdp.negReq.selectedProtocol == 1' "RDP_NEG_RSP selecting TLS" raw
expect_none 'tls.handshake.type == 1' "no ClientHello: the client never starts TLS"
expect 'tls.alert_message.desc == 50 && ip.src == 198.51.100.20' "xrdp's decode_error alert after the client's FIN"
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls (TLS, no CredSSP); xfreerdp with /sec:nla, i.e.
    a client whose policy requires Network Level Authentication. FreeRDP 2 still offers TLS
    and CredSSP (requestedProtocols 0x3); xrdp validly selects TLS (selectedProtocol 1).
    The client refuses to go on without NLA: it logs a protocol security negotiation failure
    and sends FIN immediately after the Connection Confirm, without a ClientHello. xrdp, which
    had already started its TLS accept, reads end-of-stream where the ClientHello should be
    and sends a fatal TLS alert decode_error (50) in clear; the client's closed socket answers
    it with RST. That alert is a consequence of the client's FIN, not the cause. Ended by the
    client after a valid server answer, because client and server cannot agree on the security
    layer: the client's policy requires NLA and the server does not offer it (a security-layer
    policy mismatch, cause tls-credssp; fixed by enabling NLA on the server or allowing the
    client to connect without it).",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "client-abort", "cause": "tls-credssp", "stage": "x224-negotiation",
     "ended_by": "client",
     "confidence": "high", "client_code": "local", "remediation": "nla-policy-mismatch",
     "evidence": ["x224_confirm", "fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "alert", "fin", "rst",
                    "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 1}}
  ]
}
EOF
