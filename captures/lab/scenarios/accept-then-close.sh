#!/usr/bin/env bash
# accept-then-close: a TCP port forwarder (socat) accepts on 3389 but its RDP backend is down;
# it closes the client's connection after the X.224 Connection Request, without a Confirm.
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init accept-then-close
lab_topology
BACKEND=198.51.100.21   # the RDP host behind the forwarder: switched off (no such host)
lab_bg socat "$NS_S" -- socat TCP-LISTEN:3389,bind="$SERVER4",reuseaddr,fork \
	TCP:"$BACKEND":3389,connect-timeout=2
lab_wait_listen "$NS_S" 3389
SOFTWARE_SERVER="socat $(dpkg-query -W -f '${Version}' socat) (port forwarder to a dead backend)"
lab_capture_start
lab_client 20 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore
lab_capture_stop
lab_save_keys
expect_none 'cotp.type == 0x0d' "no Connection Confirm" raw
lab_expected <<EOF
{
  "description": "On 198.51.100.20:3389 runs a TCP port forwarder (socat
    TCP-LISTEN:3389,fork TCP:198.51.100.21:3389,connect-timeout=2), as a NAT rule, load
    balancer or jump host would; the RDP host behind it (198.51.100.21) is switched off. The
    forwarder completes the client's TCP handshake at once (TTL 63, the forwarder host),
    receives the X.224 Connection Request but never forwards or answers it: its connection to
    the backend fails (no ARP answer, at most its 2 s connect timeout) and it then closes the
    client's connection without a Connection Confirm: FIN, followed by an RST when the unread
    Connection Request is still in its socket. xfreerdp reports
    ERRCONNECT_CONNECT_TRANSPORT_FAILED and FreeRDP 2 retries once, with the same result. From the client's side the host at the
    address accepts TCP and then refuses the RDP connection: no RDP service is reachable
    there.",
  "server": "$SERVER4",
  "server_port": 3389,
  "attempts": [
    {"label": "early-disconnect", "cause": "host-not-accepting", "stage": "x224-negotiation",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x904/0x7", "remediation": "early-disconnect",
     "evidence": ["x224_request", "fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "fin", "last"], "details": {}},
    {"label": "early-disconnect", "cause": "host-not-accepting", "stage": "x224-negotiation",
     "ended_by": "server",
     "confidence": "high", "client_code": "0x904/0x7", "remediation": "early-disconnect",
     "evidence": ["x224_request", "fin"], "tcp": {"outcome": "closed", "established": true},
     "key_frames": ["syn", "syn_ack", "x224_request", "fin", "last"], "details": {}}
  ]
}
EOF
