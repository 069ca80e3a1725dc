#!/usr/bin/env bash
# socks5-refused: through a SOCKS5 proxy (microsocks) on the router, xfreerdp asks for
# 198.51.100.20:3389 where nothing listens; the proxy answers reply 0x05 (connection refused).
# shellcheck source=../lib.sh disable=SC2034  # SOFTWARE_SERVER, CLIENT_* are read by lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lab_init socks5-refused
command -v microsocks >/dev/null || die 1 "microsocks is missing (captures/lab/packages.txt)"
lab_topology
PROXY_PORT=1080
lab_bg microsocks "$NS_R" -- microsocks -i "$ROUTER_C4" -p "$PROXY_PORT"
lab_wait_listen "$NS_R" "$PROXY_PORT"
SOFTWARE_SERVER="microsocks $(dpkg-query -W -f '${Version}' microsocks); no RDP server (port closed)"
lab_capture_start
lab_client 15 -- /v:"$SERVER4" /u:"$LAB_USER" /sec:tls /cert:ignore /proxy:socks5://"$ROUTER_C4:$PROXY_PORT"
lab_capture_stop 0.5
lab_save_keys
expect_none "tcp.port == 3389" "no direct connection to the server"
expect "socks.results == 5" "the proxy answered 'connection refused'" raw
expect_none "cotp" "no X.224 in the tunnel" raw
lab_expected <<EOF
{
  "description": "No RDP service runs on $SERVER4 (nothing listens on 3389, no firewall); a
    SOCKS5 proxy (microsocks) listens on the router at $ROUTER_C4:$PROXY_PORT. xfreerdp connects
    with /proxy:socks5://$ROUTER_C4:$PROXY_PORT to $SERVER4:3389: the TCP connection to the proxy
    succeeds, the SOCKS5 greeting selects no authentication, the CONNECT request names the
    server's port 3389, the proxy's own connection to it is refused (RST from the server), and the
    proxy answers reply 0x05 'connection refused' and closes. The target refused, seen through
    the proxy; no RDP byte was sent. FreeRDP does not retry after a proxy refusal: one attempt.",
  "server": "$ROUTER_C4",
  "server_port": $PROXY_PORT,
  "attempts": [
    {"label": "proxy-refused", "cause": "host-not-accepting", "stage": "tcp-handshake",
    "ended_by": "server", "confidence": "high", "client_code": "0x204", "remediation": "proxy-refused",
    "evidence": ["proxy_reply", "fin"], "tcp": {"outcome": "closed", "established": true},
    "key_frames": ["syn", "syn_ack", "proxy_request", "proxy_reply", "fin", "last"],
    "details": {"proxy": {"kind": "socks5", "target": "$SERVER4:3389", "reply": 5}}}
  ]
}
EOF
