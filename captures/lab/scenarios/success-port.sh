#!/usr/bin/env bash
# success-port: like success-tls, but xrdp listens on the non-standard port 3390.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init success-port
lab_topology
lab_xrdp xrdp security_layer=tls port=3390
TLS_PORTS="3390"
lab_capture_start
lab_client 20 -c 4 -- /v:"$SERVER4:3390" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect_none 'tcp.port == 3389' "nothing on 3389"
lab_expected <<EOF
{
  "description": "xrdp with security_layer=tls listening on TCP port 3390 instead of 3389;
    xfreerdp connects to 198.51.100.20:3390 with /sec:tls. Everything else is as in success-tls:
    X.224 selects TLS, TLS completes, the connection sequence runs up to xrdp's login screen,
    and after 4 s the lab closes the client window (close_notify, FIN). A working connection
    on a non-standard port; tshark needs -d tcp.port==3390,tls (and sees no RDP by port).",
  "server": "$SERVER4",
  "server_port": 3390,
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
