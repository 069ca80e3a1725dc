#!/usr/bin/env bash
# success-tls: xrdp with TLS security; xfreerdp /sec:tls runs the whole connection sequence up to
# xrdp's login screen, then the user closes the window.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init success-tls
lab_topology
lab_xrdp xrdp security_layer=tls
lab_capture_start
lab_client 20 -c 4 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect 't125' "MCS connect sequence visible after decryption"
lab_expected <<EOF
{
  "description": "xrdp 0.9 in rdpt-server with security_layer=tls and a fresh self-signed RSA 2048
    certificate (CN rdp-lab-server); xfreerdp in rdpt-client connects with /sec:tls (requested
    protocols 0x1, TLS). X.224 selects TLS, the TLS handshake completes, and MCS, licensing and
    capability exchange run inside TLS until xrdp's own login screen is drawn. No password is
    given, so xrdp just waits at its login dialog. After 4 s the lab closes xfreerdp's window
    the way a user does (WM_DELETE_WINDOW): the client sends close_notify and FIN. A working
    connection, nothing wrong; the client printed only its normal end-of-session line.",
  "server": "$SERVER4",
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
