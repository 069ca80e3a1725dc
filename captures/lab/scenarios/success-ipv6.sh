#!/usr/bin/env bash
# success-ipv6: like success-tls, over IPv6 (2001:db8:1::10 -> [2001:db8:2::20]:3389).
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init success-ipv6
lab_topology
lab_xrdp xrdp security_layer=tls
lab_capture_start
lab_client 20 -c 4 -- /v:"[$SERVER6]" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect_none 'ip' "no IPv4 in the capture"
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls (listening on all addresses, IPv4 and IPv6);
    xfreerdp connects over IPv6 to [2001:db8:2::20]:3389 from 2001:db8:1::10 through the lab
    router (hop limit 63 at the client). X.224 selects TLS, TLS completes, the connection
    sequence runs up to xrdp's login screen, and after 4 s the lab closes the client window
    (close_notify, FIN). A working connection over IPv6.",
  "server": "$SERVER6",
  "server_port": 3389,
  "attempts": [
    {"label": "success", "cause": "none", "stage": "session", "ended_by": "client",
     "confidence": "high", "client_code": null, "remediation": "success",
     "evidence": ["x224_confirm", "fin"],
     "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "client_hello",
                    "server_hello", "fin", "last"],
     "details": {"requested_protocols": 1, "selected_protocol": 1, "tls_version": "auto"}}
  ]
}
EOF
