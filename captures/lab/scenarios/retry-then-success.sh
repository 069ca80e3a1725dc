#!/usr/bin/env bash
# retry-then-success: several attempts in one capture. The RDP service is still starting
# (refused, and FreeRDP's own retry refused too); then the user tries with NLA required, which
# this TLS-only xrdp cannot give (client gives up); then with /sec:tls, which works.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init retry-then-success
lab_topology
lab_capture_start
# 1) xrdp not running yet: refused (FreeRDP retries once by itself)
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
sleep 1
# the service comes up
lab_xrdp xrdp security_layer=tls
sleep 1
# 2) the user insists on NLA: xrdp selects TLS, the client gives up
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /p:"$LAB_PASS" /sec:nla /cert:ignore
sleep 1
# 3) the user allows TLS: success, then closes the window
lab_client 20 -c 4 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
lab_check_decrypt
expect 't125' "the last attempt reaches MCS"
lab_expected <<EOF
{
  "description": "Four TCP connections from one client to 198.51.100.20:3389 in one capture,
    made by three xfreerdp runs a few seconds apart. First the RDP service is not running
    yet: xfreerdp /sec:tls gets RST to its SYN and FreeRDP 2 retries once by itself, refused
    again (attempts 1 and 2, rst-refused). Then xrdp (security_layer=tls) starts. The second
    run uses /sec:nla: it offers TLS and CredSSP (0x3), xrdp selects TLS (1), and the client,
    which requires NLA, gives up with FIN right after the Connection Confirm (attempt 3,
    client-abort from a security-layer policy mismatch; xrdp's decode_error alert follows the FIN). The third run uses /sec:tls and
    works: TLS 1.3, the connection sequence up to xrdp's login screen, then the lab closes the
    window after 4 s (attempt 4, success). client_command lists the three runs in order;
    client_error holds the error lines of all of them in order.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "rst-refused", "cause": "host-not-accepting", "stage": "tcp-handshake",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x204", "remediation": "rst-refused",
     "evidence": ["syn", "rst"], "tcp": {"outcome": "refused", "established": false},
     "key_frames": ["syn", "rst", "last"], "details": {"rst_ttl": 63}},
    {"label": "rst-refused", "cause": "host-not-accepting", "stage": "tcp-handshake",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x204", "remediation": "rst-refused",
     "evidence": ["syn", "rst"], "tcp": {"outcome": "refused", "established": false},
     "key_frames": ["syn", "rst", "last"], "details": {"rst_ttl": 63}},
    {"label": "client-abort", "cause": "tls-credssp", "stage": "x224-negotiation",
     "ended_by": "client",
     "confidence": "high", "client_code": "local", "remediation": "nla-policy-mismatch",
     "evidence": ["x224_confirm", "fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "x224_confirm", "fin", "last"],
     "details": {"requested_protocols": 3, "selected_protocol": 1}},
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
