#!/usr/bin/env bash
# rst-refused: nothing listens on 198.51.100.20:3389; the server's kernel answers the SYN with RST.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init rst-refused
lab_topology
SOFTWARE_SERVER="none (port closed)"
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop 0.5
lab_save_keys
lab_expected <<EOF
{
  "description": "The server host is up but no RDP service runs (no process listens on
    198.51.100.20:3389, no firewall). Its kernel answers each SYN with RST/ACK (TTL 63, the
    server itself, one hop behind the router). xfreerdp reports a transport failure and,
    as FreeRDP 2 does after ERRCONNECT_CONNECT_TRANSPORT_FAILED, tries once more a few
    milliseconds later from a new source port with the same result: two refused attempts.
    The host does not accept RDP connections (service stopped or listening elsewhere).",
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
     "key_frames": ["syn", "rst", "last"], "details": {"rst_ttl": 63}}
  ]
}
EOF
